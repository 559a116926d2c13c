#!/usr/bin/env bash
# A/B of two (or more) tls-sidecar builds on one small-record figure: CPU
# per keep-alive request, plain → sidecar → TLS 1.3 nginx `return 200`, wrk
# with 16 connections for 5 s, the builds alternating ROUNDS times; each
# round's figure split into user and system time, and the medians last. For
# telling a regression from compare.sh's noise on this figure (issue 17).
# benches/keepalive-instructions.sh counts the user-space instructions per
# request, which timing noise does not move.
#
#   bash benches/keepalive-ab.sh OLD_BINARY NEW_BINARY [MORE...]
#   ROUNDS=5 bash benches/keepalive-ab.sh ...
#
# Needs nginx, wrk and openssl (benches/compare.sh installs them). Listens
# on 127.0.0.1:24080 and :24443 only; everything it starts is stopped.
set -euo pipefail
[ $# -ge 2 ] || { sed -n 2,14p "$0"; exit 2; }
ROUNDS=${ROUNDS:-3}
W=$(mktemp -d)
trap 'kill $(cat "$W/nginx.pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$W"' EXIT
. "$(dirname "$0")/lib.sh"
keepalive_peer "$W"

one() {
  local bin=$1 pid t0 t1 out req
  "$bin" run -c "$W/sc.toml" 2>/dev/null &
  pid=$!
  sleep 1.5
  wrk -c16 -t2 -d1s http://127.0.0.1:24080/ >/dev/null 2>&1 # warm-up
  t0=$(awk '{print $14, $15}' "/proc/$pid/stat") # user, system ticks
  out=$(wrk -c16 -t2 -d5s http://127.0.0.1:24080/ 2>&1)
  t1=$(awk '{print $14, $15}' "/proc/$pid/stat")
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  req=$(echo "$out" | awk '/requests in/ {print $1}')
  set -- $t0 $t1
  awk -v u0="$1" -v s0="$2" -v u1="$3" -v s1="$4" -v r="$req" -v n="$bin" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { u = (u1 - u0) * 1e6 / hz / r; s = (s1 - s0) * 1e6 / hz / r
             printf "%-40s %8d req  %5.1f µs CPU per request (user %.1f, system %.1f)\n", n, r, u + s, u, s }'
}

for round in $(seq "$ROUNDS"); do
  echo "round $round"
  for bin in "$@"; do one "$bin"; done
done | tee "$W/rounds"

# Per build: the median, least and most CPU per request over the rounds.
for bin in "$@"; do
  awk -v n="$bin" '$1 == n { print $4 }' "$W/rounds" | sort -n |
    awk -v n="$bin" '{ a[NR] = $1 } END { printf "median %-33s %5.1f µs (%.1f to %.1f, %d rounds)\n", n, a[int((NR + 1) / 2)], a[1], a[NR], NR }'
done
