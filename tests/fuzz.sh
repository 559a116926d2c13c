#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (FUZZ_SECONDS each, default 60):
# the config loader, the upgrade engine, the relay, PROXY headers, the
# CONNECT answer decoder, the admin endpoint's request handling, and the
# readers of files written by others (Jetty XML, Genesys parameters,
# stunnel.conf). FUZZ_TARGETS="a b" runs only those.
# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP=1 lets the one stable
# toolchain of this project accept them. A crash fails the run and leaves
# its input in tests/fuzz/artifacts/TARGET/: turn it into a regression test
# (a unit test feeding that input) before fixing it. An input that takes
# over 10 s (-timeout) counts as a hang and fails the run the same way.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzz=tests/fuzz
secs=${FUZZ_SECONDS:-60}
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --quiet
targets=${FUZZ_TARGETS:-"config upgrade relay proxy_protocol connect_answer admin jetty genesys stunnel"}
for target in $targets; do
  mkdir -p "$fuzz/corpus/$target"
  cp -n "$fuzz/seeds/$target"/* "$fuzz/corpus/$target/" 2>/dev/null || true
  echo "fuzz: $target for ${secs}s"
  log=$(mktemp)
  if cargo fuzz run --fuzz-dir "$fuzz" "$target" "$fuzz/corpus/$target" -- -max_total_time="$secs" -max_len=8192 -timeout=10 -rss_limit_mb=2048 >"$log" 2>&1; then
    grep -E "^(#[0-9]+ +DONE|Done [0-9]+ runs)" "$log" || tail -n 2 "$log"
  else
    tail -n 40 "$log"
    echo "fuzz: $target FAILED (input saved under tests/fuzz/artifacts/$target/)"
    exit 1
  fi
done
echo "fuzz: $(wc -w <<<"$targets") passed, 0 failed"
