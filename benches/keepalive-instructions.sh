#!/usr/bin/env bash
# User-space instructions per keep-alive request of one or more tls-sidecar
# builds, counted by valgrind's callgrind: the same path as
# benches/keepalive-ab.sh (plain → sidecar → TLS 1.3 nginx `return 200`,
# one curl connection), run twice per build with N1 and N2 requests; the
# difference over N2 - N1 leaves out start-up, the handshakes and the stop.
# Timing on this shared machine moves by 5-10% between runs; an instruction
# count does not depend on the CPU's load (it still moves a few percent
# with how often tokio finds a socket not ready).
#
#   bash benches/keepalive-instructions.sh BINARY [MORE...]
#   N1=200 N2=3200 ROUNDS=2 bash benches/keepalive-instructions.sh OLD NEW
#
# Needs valgrind, nginx, curl and openssl. Listens on 127.0.0.1:24080 and
# :24443 only; everything it starts is stopped. The kernel's share of the
# CPU (about 80% of it on this path) is not counted: keepalive-ab.sh
# reports it.
set -euo pipefail
[ $# -ge 1 ] || { sed -n 2,17p "$0"; exit 2; }
N1=${N1:-200}
N2=${N2:-3200}
ROUNDS=${ROUNDS:-2}
for tool in valgrind nginx curl openssl; do
  command -v "$tool" >/dev/null || { echo "keepalive-instructions: $tool is not installed" >&2; exit 2; }
done
W=$(mktemp -d)
trap 'kill $(cat "$W/nginx.pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$W"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/k.pem" \
  -out "$W/c.pem" -days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost 2>/dev/null
cat >"$W/nginx.conf" <<EOF
worker_processes 1;
error_log $W/nginx.err;
pid $W/nginx.pid;
events { worker_connections 64; }
http {
  access_log off;
  server {
    listen 127.0.0.1:24443 ssl;
    ssl_certificate $W/c.pem;
    ssl_certificate_key $W/k.pem;
    ssl_protocols TLSv1.3;
    keepalive_requests 1000000;
    location / { return 200 "ok\n"; }
  }
}
EOF
# verify = "none": the throwaway certificate is its own CA (as keepalive-ab.sh).
cat >"$W/sc.toml" <<EOF
shutdown_grace = "1s"
workers = 1
[log]
level = "warn"
[[route]]
name = "r"
listen = "127.0.0.1:24080"
connect = ["127.0.0.1:24443"]
[route.connect_tls]
server_name = "localhost"
verify = "none"
EOF
nginx -p "$W" -c "$W/nginx.conf"
sleep 0.5

# instructions BINARY N: the whole run's user-space instruction count with
# one probe request (its own connection) and then N on one connection.
instructions() {
  local bin=$1 n=$2 pid
  valgrind --tool=callgrind --callgrind-out-file="$W/cg.out" "$bin" run -c "$W/sc.toml" 2>"$W/vg.err" &
  pid=$!
  for _ in $(seq 100); do
    curl -s -o /dev/null http://127.0.0.1:24080/ && break
    sleep 0.3
  done
  curl -s -o /dev/null "http://127.0.0.1:24080/[1-$n]"
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  awk '/^(summary|totals):/ { print $2; exit }' "$W/cg.out"
}

for round in $(seq "$ROUNDS"); do
  for bin in "$@"; do
    a=$(instructions "$bin" "$N1")
    b=$(instructions "$bin" "$N2")
    printf '%-40s round %d  %6d instructions per request\n' "$bin" "$round" $(((b - a) / (N2 - N1)))
  done
done | tee "$W/rounds"

for bin in "$@"; do
  awk -v n="$bin" '$1 == n { print $4 }' "$W/rounds" | sort -n |
    awk -v n="$bin" '{ a[NR] = $1 } END { printf "median %-33s %6d instructions per request (%d to %d, %d rounds)\n", n, a[int((NR + 1) / 2)], a[1], a[NR], NR }'
done
