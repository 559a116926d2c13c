#!/usr/bin/env bash
# The hardening summary (issue 9): runs the hardening-related tests one at a
# time (stable figures) and prints one Markdown table of what was tried and
# what held, the table the manual's docs/src/evidence.md quotes.
#
#   bash tests/hardening-summary.sh           # bad servers, bad clients, identity rules, sandbox, faults, load, issue 14's edges (~1 min warm)
#   bash tests/hardening-summary.sh --fuzz    # plus every fuzz target for FUZZ_SECONDS (default 30) each
#
# Each test writes its own rows to target/hardening-summary/CRATE__TEST.md
# (tests/common/mod.rs: Summary); this script clears that directory, runs the
# tests, adds a row for every test that failed, and concatenates the rows in
# the order below (tests of one file by name). Full output: target/hardening-summary/*.log;
# the table is also written to target/hardening-summary.md. Exits 1 if any
# test failed. Needs what tests/setup.sh installs.
set -uo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

fuzz=false
[ "${1:-}" = "--fuzz" ] && fuzz=true

out=target/hardening-summary
rm -rf "$out"
mkdir -p "$out"

# test file | libtest filters (empty: every test in the file)
runs=(
  "bad_servers|"
  "listen_tls|tls11 sni_ client_certificates slow_and_garbage"
  "hardening|"
  "endings|"
  "probe_is_run|"
  "client_identity|"
  "sandbox|"
  "load_redis|"
  "large_handshake|"
  "revocation|"
  "observability|peer_certificate_series"
  "live_ops|max_connections_holds_across_a_reload_that_moves a_certificate_replaced_while"
  "upgrade_servers|imaplib"
  "log_output|"
)

failed=0
for run in "${runs[@]}"; do
  t=${run%%|*}
  filters=${run#*|}
  echo "hardening-summary: cargo test --test $t -- --test-threads=1 --nocapture $filters" >&2
  # shellcheck disable=SC2086 # the filters are separate words
  if ! cargo test --test "$t" -- --test-threads=1 --nocapture $filters >"$out/$t.log" 2>&1; then
    failed=1
  fi
  # A row for each failed test (its own rows stop where it failed), and
  # one if the file did not even build or run.
  # libtest lists them, indented, after a `failures:` line.
  awk '/^failures:$/ {f = 1; next} f && /^    [^ ]+$/ {print $1; next} {f = 0}' "$out/$t.log" | sort -u | while read -r name; do
    why=$( (grep -A1 -E "^thread '$name' panicked" "$out/$t.log" || grep -A1 -E "^thread '.*' panicked" "$out/$t.log") | sed -n 2p | cut -c1-200 | sed 's/|/\\|/g')
    echo "| $t: \`$name\` | see $out/$t.log | passes | FAILED: ${why:-see the log} | **no** |  |" >>"$out/${t}__zz-failed.md"
  done
  if ! grep -qE '^test result: ' "$out/$t.log"; then
    echo "| $t | cargo test --test $t | builds and runs | did not run: $(tail -n1 "$out/$t.log" | cut -c1-200 | sed 's/|/\\|/g') | **no** |  |" >>"$out/${t}__zz-failed.md"
    failed=1
  fi
done

if $fuzz; then
  secs=${FUZZ_SECONDS:-30}
  echo "hardening-summary: FUZZ_SECONDS=$secs bash tests/fuzz.sh" >&2
  if FUZZ_SECONDS=$secs bash tests/fuzz.sh >"$out/fuzz.log" 2>&1; then ok=true; else ok=false; failed=1; fi
  target=""
  while read -r line; do
    case "$line" in
      "fuzz: "*" for "*) target=$(echo "$line" | awk '{print $2}') ;;
      "Done "*" runs in "*)
        runs_done=$(echo "$line" | awk '{print $2}')
        took=$(echo "$line" | awk '{print $5}')
        rate=$(( runs_done / (took > 0 ? took : 1) ))
        echo "| fuzz: $target | \`cargo fuzz run $target\` (libFuzzer, ASan) for ${secs} s from the seed corpus | no crash, leak or timeout | $runs_done runs, no crash | yes | $rate execs/s |" >>"$out/zz-fuzz__$target.md"
        ;;
    esac
  done <"$out/fuzz.log"
  if ! $ok; then
    echo "| fuzz | FUZZ_SECONDS=$secs bash tests/fuzz.sh | no crash | FAILED: $(grep -m1 'FAILED' "$out/fuzz.log" | sed 's/|/\\|/g') | **no** |  |" >>"$out/zz-fuzz__zz-failed.md"
  fi
fi

{
  echo "Produced by \`bash tests/hardening-summary.sh$($fuzz && echo " --fuzz")\` at commit $(git rev-parse --short HEAD 2>/dev/null || echo '?') on $(date -u +%Y-%m-%d), $(nproc) vCPU, Linux $(uname -r), $(rustc --version | cut -d' ' -f1-2), debug build (as \`cargo test\` builds it)."
  echo
  echo "| case | what was done | expected | observed | held | figure |"
  echo "|---|---|---|---|---|---|"
  for run in "${runs[@]}"; do
    t=${run%%|*}
    for f in $(LC_ALL=C ls "$out" | grep -E "^${t}__.*\.md$"); do cat "$out/$f"; done
  done
  for f in $(LC_ALL=C ls "$out" | grep -E '^zz-fuzz__.*\.md$'); do cat "$out/$f"; done
} >target/hardening-summary.md
cat target/hardening-summary.md
held=$(grep -c '| yes |' target/hardening-summary.md)
notheld=$(grep -c '| \*\*no\*\* |' target/hardening-summary.md)
echo >&2
echo "hardening-summary: $held held, $notheld not held" >&2
exit $failed
