#!/usr/bin/env bash
# The flake hunt of issue 27: `cargo test --all-targets` RUNS times in a row
# (default 10) while another `cargo build` keeps the machine busy, with a
# tally at the end. Every run is kept in full under $OUT (default
# /tmp/tls-sidecar-soak): a failure is a bug to fix, not luck to retry.
#
#   bash tests/soak.sh            # 10 runs beside a looping release build
#   RUNS=3 BUSY=0 bash tests/soak.sh   # 3 runs, no build beside them
#
# The busy build is a clean release build of this tree in a target dir of
# its own ($OUT/busy-target), started again each time it ends, stopped when
# the last run ends. Run from a checkout whose tests/setup.sh has been run.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-10}
BUSY=${BUSY:-1}
OUT=${OUT:-/tmp/tls-sidecar-soak}
mkdir -p "$OUT"

cargo test --all-targets --no-run --quiet >"$OUT/build.log" 2>&1

busy_pid=
if [ "$BUSY" = 1 ]; then
  (
    while true; do
      cargo clean --release --target-dir "$OUT/busy-target" >/dev/null 2>&1 || true
      cargo build --release --target-dir "$OUT/busy-target" >>"$OUT/busy.log" 2>&1 || true
      echo "busy build done $(date -u +%T)" >>"$OUT/busy.log"
    done
  ) &
  busy_pid=$!
  stop_busy() {
    local kids
    kids=$(pgrep -P "$busy_pid" || true)
    kill "$busy_pid" 2>/dev/null || true
    # shellcheck disable=SC2086
    [ -z "$kids" ] || kill $kids 2>/dev/null || true
  }
  trap stop_busy EXIT
fi

pass=0
fail=0
for i in $(seq 1 "$RUNS"); do
  t0=$(date +%s)
  if cargo test --all-targets --no-fail-fast >"$OUT/run-$i.log" 2>&1; then
    rc=0
    pass=$((pass + 1))
  else
    rc=$?
    fail=$((fail + 1))
  fi
  tests=$(grep -Eo '^test result: [a-zA-Z]+\. [0-9]+ passed; [0-9]+ failed' "$OUT/run-$i.log" |
    awk '{p += $4; f += $6} END {printf "%d passed, %d failed", p, f}')
  failed=$(grep -E '^test .* \.\.\. FAILED$' "$OUT/run-$i.log" | sed 's/^test //; s/ \.\.\. FAILED$//' | tr '\n' ' ' || true)
  printf 'run %2d: rc=%d %4ds load=%s %s %s\n' "$i" "$rc" $(($(date +%s) - t0)) \
    "$(cut -d' ' -f1 /proc/loadavg)" "$tests" "$failed" | tee -a "$OUT/tally"
done
echo "soak: $pass of $RUNS runs green, $fail red ($(grep -c 'busy build done' "$OUT/busy.log" 2>/dev/null || echo 0) busy builds beside them)" | tee -a "$OUT/tally"
[ "$fail" = 0 ]
