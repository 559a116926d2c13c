#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian 12 machine with Rust
# (run as root; idempotent: packages already present are skipped).
#
#   openssl, curl          real TLS peers and clients (s_server, s_client, curl)
#   postgresql             upgrade mode against a real server (psql, pgbench)
#   redis-server/-tools    load through a mutual-TLS route (redis-benchmark)
#   prometheus             promtool checks and a real Prometheus scraping the sidecar
#   systemd                systemd-analyze verify on the unit
#   aiosmtpd (PyPI)        an SMTP server with STARTTLS for the smtp profile
#
# Services the packages start are stopped again: the tests start their own
# instances on free loopback ports.
set -euo pipefail

pkgs=(openssl curl ca-certificates procps postgresql postgresql-contrib redis-server redis-tools prometheus systemd python3)
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Package post-install scripts may have started services on the default
# ports; the tests use their own instances.
for svc in postgresql redis-server prometheus prometheus-node-exporter; do
  if command -v systemctl >/dev/null 2>&1; then systemctl stop "$svc" >/dev/null 2>&1 || true; fi
  if command -v service >/dev/null 2>&1; then service "$svc" stop >/dev/null 2>&1 || true; fi
done
pkill -x prometheus >/dev/null 2>&1 || true
pkill -x redis-server >/dev/null 2>&1 || true

# Python's SMTP server for the smtp upgrade profile.
if ! python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
  python3 -m pip install --quiet aiosmtpd
fi

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
echo "setup: $(openssl version | cut -d' ' -f1-2), $(curl --version | head -n1 | cut -d' ' -f1-2)," \
  "postgres $("$pg_bin/postgres" --version | awk '{print $3}'), $(redis-server --version | awk '{print $1, $3}')," \
  "$(promtool --version 2>&1 | head -n1 | awk '{print $1, $3}'), python $(python3 -c 'import aiosmtpd, sys; print(sys.version.split()[0], "aiosmtpd", aiosmtpd.__version__)')"
