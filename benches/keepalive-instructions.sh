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
. "$(dirname "$0")/lib.sh"
keepalive_peer "$W" "workers = 1"

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
