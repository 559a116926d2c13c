#!/usr/bin/env bash
# The sidecar's own CPU per GiB on a plain ↔ plain route, splice(2) against
# the buffered relay (TLS_SIDECAR_SPLICE=off), same binary, alternating runs.
#
#   bash benches/splice.sh                 # 3 rounds × 2 GiB each way, about a minute
#   ROUNDS=5 BULK=4G bash benches/splice.sh
#
#   iperf3 -c ──plain──▶ tls-sidecar (plain route) ──plain──▶ iperf3 -s
#
# CPU is the sidecar's utime + stime from /proc over the measured transfer
# (after a 64 MiB warm-up on the same process); bytes are the sidecar's own
# count from its log. Knobs: ROUNDS, BULK, SKIP_BUILD=1, SKIP_INSTALL=1.
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
BULK=${BULK:-2G}
BIN=$PWD/target/release/tls-sidecar

if ! command -v iperf3 >/dev/null 2>&1; then
  [ "${SKIP_INSTALL:-0}" = 1 ] && { echo "splice: iperf3 missing and SKIP_INSTALL=1" >&2; exit 2; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends iperf3 >/dev/null
  if command -v service >/dev/null 2>&1; then service iperf3 stop >/dev/null 2>&1 || true; fi
fi
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release --quiet
[ -x "$BIN" ] || { echo "splice: $BIN not built" >&2; exit 2; }

W=$(mktemp -d /tmp/tls-sidecar-splice.XXXXXX)
IPERF=
SC=
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for p in $SC $IPERF; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$W"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

P_BACK=25001 P_ROUTE=25002
iperf3 -s -B 127.0.0.1 -p $P_BACK >"$W/iperf3-s.log" 2>&1 &
IPERF=$!
cat >"$W/plain.toml" <<EOF
shutdown_grace = "1s"
[log]
level = "info"
format = "json"
[[route]]
name = "plain"
listen = "127.0.0.1:$P_ROUTE"
connect = ["127.0.0.1:$P_BACK"]
EOF
HZ=$(getconf CLK_TCK)
SUM_BYTES='
import json, sys
n = 0
for line in sys.stdin:
    try:
        f = json.loads(line)
    except ValueError:
        continue
    n += int(f.get("bytes_up", 0)) + int(f.get("bytes_down", 0))
print(n)'

: >"$W/results.tsv"
for round in $(seq "$ROUNDS"); do
  for engine in splice buffered; do
    for dir in up down; do
      sw=on
      [ $engine = buffered ] && sw=off
      TLS_SIDECAR_SPLICE=$sw "$BIN" run -c "$W/plain.toml" >"$W/sc.log" 2>&1 &
      SC=$!
      for _ in $(seq 100); do grep -q '"serving"' "$W/sc.log" 2>/dev/null && break; sleep 0.1; done
      rev=()
      [ $dir = down ] && rev=(-R)
      iperf3 -c 127.0.0.1 -p $P_ROUTE -n 64M "${rev[@]}" >/dev/null
      sleep 0.3
      mark=$(wc -l <"$W/sc.log")
      read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$SC/stat")
      iperf3 -c 127.0.0.1 -p $P_ROUTE -n "$BULK" "${rev[@]}" -J >"$W/i.json"
      sleep 0.3
      read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$SC/stat")
      kill -TERM "$SC"
      wait "$SC" 2>/dev/null || true
      SC=
      bytes=$(tail -n +$((mark + 1)) "$W/sc.log" | python3 -c "$SUM_BYTES")
      gbit=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"] / 1e9)' "$W/i.json")
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$engine" "$dir" $((u1 - u0)) $((s1 - s0)) "$bytes" "$gbit" >>"$W/results.tsv"
      echo "round $round: $engine $dir done" >&2
    done
  done
done

python3 - "$W/results.tsv" "$HZ" "$ROUNDS" "$BULK" <<'EOF'
import statistics, sys
from collections import defaultdict
path, hz, rounds, bulk = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
r = defaultdict(list)
for line in open(path):
    e, d, u, s, b, g = line.split("\t")
    gib = int(b) / 2**30
    r[e, d].append((int(u) / hz / gib, int(s) / hz / gib, float(g)))
print(f"# splice(2) vs the buffered relay, plain route, iperf3 -n {bulk}, {rounds} rounds (medians)\n")
print("| direction | engine | CPU s per GiB (user + kernel) | Gbit/s |")
print("|---|---|---|---|")
med = {}
for d in ("up", "down"):
    for e in ("splice", "buffered"):
        rows = r[e, d]
        u = statistics.median(x[0] for x in rows)
        s = statistics.median(x[1] for x in rows)
        t = statistics.median(x[0] + x[1] for x in rows)
        g = statistics.median(x[2] for x in rows)
        med[e, d] = (t, g)
        print(f"| {d} | {e} | {t:.3f} ({u:.3f} + {s:.3f}) | {g:.2f} |")
print()
for d in ("up", "down"):
    (ts, gs), (tb, gb) = med["splice", d], med["buffered", d]
    print(f"- {d}: splice uses {tb / ts:.2f}× less CPU per GiB than the buffered relay; throughput {gs / gb:.2f}×")
EOF
