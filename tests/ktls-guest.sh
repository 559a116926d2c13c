#!/usr/bin/env bash
# Runs a chosen set of the already-built integration tests inside a throwaway
# QEMU guest that boots Debian's stock kernel (linux-image-amd64, which ships
# the `tls` ULP as a module) over this machine's own filesystem (virtme-ng,
# 9p). The host kernel may lack kTLS; the guest has it, so the kernel-TLS
# engine is exercised for real there (issue 18). One boot runs the set on
# both engines in turn: every sidecar the tests start gets
# TLS_SIDECAR__KERNEL_TLS=auto (kTLS), then =off (the userspace engine).
#
#   bash tests/ktls-guest.sh                  # the default set, both engines
#   bash tests/ktls-guest.sh relay_tls endings # only these test binaries
#   bash tests/ktls-guest.sh 'endings:--skip idle' # NAME:ARGS passes libtest arguments
#   KTLS_GUEST_ENGINES=auto bash tests/ktls-guest.sh   # one engine only
#   KTLS_GUEST_FILTER='ktls' bash tests/ktls-guest.sh  # a libtest name filter
#   KTLS_GUEST_PARALLEL=0 ...   # the engines one after the other (default: side by side)
#   KTLS_GUEST_SLOWDOWN=4 ...   # the tests' patience factor in the guest (TEST_SLOWDOWN)
#   KTLS_GUEST_NO_VM=1 ...      # the same script on this host (checks the runner)
#
# Installs what it needs when missing (idempotent, non-interactive):
#   apt: qemu-system-x86 linux-image-amd64 busybox-static kmod (python3-pip)
#   pip: virtme-ng (vng)
# Builds the test binaries on the host (`cargo test --no-run`), then boots the
# guest without KVM (TCG: KVM guests stop with an emulation failure on some
# hosts; set KTLS_GUEST_KVM=1 to try it), loads `tls` and runs each binary by
# path with one test thread, bounded by `timeout`, once per engine. Prints a
# line per engine and binary (PASS/FAIL, the libtest counts, the failing
# tests' names and output), a summary per engine, and exits non-zero if any
# failed or the guest did not come up. Every test's result, per engine, is
# kept in target/ktls-guest/last/ENGINE.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export DEBIAN_FRONTEND=noninteractive

# The guest sees this machine's files read-only, but for target/ (the tests
# write their summaries there) and its own /tmp.
# Test binaries (tests/NAME.rs) run in the guest, each with an optional
# libtest filter after a colon, once per engine (KTLS_GUEST_ENGINES, by
# default "auto off"). tests/ktls.rs expects "auto" (its configs say so;
# the variable would override that): on another engine only its test of
# the variable itself runs (own_engine below).
# The set: the relay (bulk, half-close, truncation, resets), endings,
# listen_tls, upgrades against real servers, handshakes of every size
# (record-by-record reads on the listen side), client identity rules, PROXY
# headers and CONNECT proxies: everything that relays over a TLS leg.
# Skipped in the guest (they still run on the host): tests whose bounds
# emulation cannot meet and that do not touch TLS's engine: a plain
# route's 1 s idle timeout against a slow reader, Python's http.server
# starting within 5 s, and a healthy client's whole handshake within a 1 s
# handshake_timeout (the handshake is done before any engine switch).
default_set=(
  ktls
  relay_tls
  "endings:--skip idle_timeout_with_bytes_stuck_in_flight_resets_the_client"
  "listen_tls:--skip client_certificates_are_required_and_checked_against_client_ca --skip curl_gets_a_real_page_through_the_terminator --skip slow_and_garbage_clients_are_closed_while_a_healthy_one_is_served"
  upgrade_servers
  large_handshake
  client_identity
  proxy_protocol
  via_proxy
)
own_engine=" ktls "
own_engine_filter="every_sidecar_a_test_starts_runs_the_engine_the_environment_chooses"
if [ $# -gt 0 ]; then set_=("$@"); else set_=("${default_set[@]}"); fi
engines=${KTLS_GUEST_ENGINES:-${KTLS_GUEST_KERNEL_TLS:-auto off}}
for e in $engines; do
  case $e in auto | off) ;; *) echo "ktls-guest: engine $e is not auto or off" >&2; exit 2 ;; esac
done
per_binary_timeout=${KTLS_GUEST_TEST_TIMEOUT:-300}
# 1: the engines' runs go side by side (two vCPUs; most of the tests' time
# is waiting on bounded timers and peers, not CPU).
parallel=${KTLS_GUEST_PARALLEL:-1}
# How many times slower than a host the guest's tests may be (TEST_SLOWDOWN).
slowdown=${KTLS_GUEST_SLOWDOWN:-4}
guest_timeout=${KTLS_GUEST_TIMEOUT:-1200}

# --- what the guest runner needs -------------------------------------------
need=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
command -v busybox >/dev/null 2>&1 || need+=(busybox-static)
command -v modprobe >/dev/null 2>&1 || need+=(kmod)
command -v vng >/dev/null 2>&1 || command -v pip3 >/dev/null 2>&1 || need+=(python3-pip)
ls /boot/vmlinuz-*-amd64 >/dev/null 2>&1 || need+=(linux-image-amd64)
if [ ${#need[@]} -gt 0 ]; then
  echo "ktls-guest: installing ${need[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" </dev/null >/dev/null
fi
if ! command -v vng >/dev/null 2>&1; then
  echo "ktls-guest: installing virtme-ng (pip)"
  pip3 install -q virtme-ng 2>/dev/null || pip3 install -q --break-system-packages virtme-ng
  hash -r
fi
kernel=$(ls /boot/vmlinuz-*-amd64 | sort -V | tail -1)
kver=${kernel#/boot/vmlinuz-}
echo "ktls-guest: kernel $kver"

# --- build on the host --------------------------------------------------------
bins=()
for t in "${set_[@]}"; do
  name=${t%%:*}
  [ -f "tests/$name.rs" ] || { echo "ktls-guest: no tests/$name.rs" >&2; exit 2; }
  bins+=(--test "$name")
done
# The binary paths, from cargo's JSON messages (no jq needed).
paths=$(cargo test --no-run --message-format=json "${bins[@]}" 2>/dev/null |
  python3 -c '
import json, sys
for line in sys.stdin:
    try: m = json.loads(line)
    except ValueError: continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["target"]["name"] + " " + m["executable"])
')
cargo build -q --bin tls-sidecar

# --- the script the guest runs ------------------------------------------------
mkdir -p target/ktls-guest/last
rm -f target/ktls-guest/last/*.txt
work=$(mktemp -d "$root/target/ktls-guest/run.XXXXXX")
trap 'rm -rf "$work"' EXIT
inner="$work/inner.sh"
{
  echo '#!/bin/bash'
  echo 'set -u'
  echo "cd '$root'"
  # Emulation (TCG) with both engines side by side is several times slower
  # than a host: every wait of the tests' harness, and every bound a test
  # sets on how long an event may take, is scaled by this one factor
  # (tests/common: patience). Bounds the sidecar itself must keep are not.
  echo "export KTLS_GUEST=1 CARGO_TARGET_DIR='$root/target' RUST_BACKTRACE=0 TEST_SLOWDOWN=$slowdown"
  echo "export CARGO_BIN_EXE_tls_sidecar='$root/target/debug/tls-sidecar'"
  echo "export work='$work' keep='$root/target/ktls-guest/last' per_binary_timeout=$per_binary_timeout"
  echo 'ip link set lo up 2>/dev/null || true'
  echo 'if modprobe tls; then echo "guest: tls module loaded"; else echo "guest: modprobe tls FAILED"; fi'
  echo 'grep -q "^tls " /proc/modules && echo "guest: kTLS available" || echo "guest: kTLS NOT available"'
  # What the sidecar makes of this kernel, and how long its probe takes
  # (twice: the kernel sets a cipher up on its first use).
  printf 'kernel_tls = "auto"\n[[route]]\nname = "probe"\nlisten = "127.0.0.1:1"\nconnect = ["localhost:2"]\n[route.connect_tls]\n' >"$work/probe.toml"
  cat <<EOF
for i in 1 2; do
  t=\$(date +%s%N)
  line=\$('$root/target/debug/tls-sidecar' check -c '$work/probe.toml' 2>&1 | grep 'engine:' | sed 's/^ *//')
  echo "guest: sidecar's kernel probe \$i: \$line (\$(( (\$(date +%s%N) - t) / 1000000 )) ms)"
done
EOF
  cat <<'EOF'
# Each engine's run is a subshell (the engines may run side by side):
# it counts in its own variables and leaves its summary line in
# $work/summary.ENGINE and the failing binaries' output in
# $work/fail.ENGINE, printed after every engine is done.
status=0 passed=0 failed=0 bins_ok=0 bins_bad=""
# run ENGINE NAME EXE [LIBTEST ARGS]: one test binary on one engine: one
# line, PASS or FAIL with the libtest counts, and each failing test named;
# every test's result line goes to $keep/ENGINE.txt.
run() {
  local engine=$1 name=$2 exe=$3; shift 3
  local out="$work/$engine.$name.out" start took rc counts
  start=$(date +%s)
  # Every sidecar the tests start runs this engine (tests/common keeps
  # this one variable; a route's own kernel_tls still wins).
  TLS_SIDECAR__KERNEL_TLS=$engine timeout -k 5 "$per_binary_timeout" "$exe" --test-threads=1 "$@" >"$out" 2>&1
  rc=$?
  took=$(( $(date +%s) - start ))
  counts=$(grep -E '^test result' "$out" | tail -1 | sed 's/^test result: //')
  grep -E '^test .* \.\.\. ' "$out" | sed "s/^test /$name: /" >>"$keep/$engine.txt"
  passed=$(( passed + $(grep -cE '^test .* \.\.\. ok$' "$out") ))
  failed=$(( failed + $(grep -cE '^test .* \.\.\. FAILED$' "$out") ))
  if [ $rc -eq 0 ]; then
    echo "guest: PASS [kernel_tls=$engine] $name (${took}s): $counts"
    bins_ok=$(( bins_ok + 1 ))
    return
  fi
  status=1
  bins_bad="$bins_bad $name"
  local why="exit $rc"
  [ $rc -eq 124 ] && why="TIMEOUT after ${per_binary_timeout}s"
  echo "guest: FAIL [kernel_tls=$engine] $name ($why, ${took}s): ${counts:-no libtest summary}"
  grep -E '^test .* \.\.\. FAILED$' "$out" |
    sed "s/^test /guest:   failed [kernel_tls=$engine] $name: /; s/ \.\.\. FAILED\$//"
  {
    echo "    --- [kernel_tls=$engine] $name: its output (passing tests' lines left out) ---"
    grep -vE '^test .* \.\.\. ok$' "$out" | tail -150 | sed 's/^/    /'
  } >>"$work/fail.$engine"
}
# done_engine ENGINE START: its summary line and status, for the end.
done_engine() {
  echo "guest: engine kernel_tls=$1: $passed tests passed, $failed failed;" \
    "$bins_ok binaries passed${bins_bad:+, failed:$bins_bad} ($(( $(date +%s) - $2 ))s)" >"$work/summary.$1"
  echo $status >"$work/status.$1"
}
EOF
  for engine in $engines; do
    echo "engine_$engine() {"
    echo "  local start=\$(date +%s)"
    echo "  status=0 passed=0 failed=0 bins_ok=0 bins_bad=''"
    echo "  echo 'guest: --- engine kernel_tls=$engine ---'"
    for t in "${set_[@]}"; do
      name=${t%%:*}
      filter=""
      if [ "$t" != "$name" ]; then filter=${t#*:}; fi
      if [ -n "${KTLS_GUEST_FILTER:-}" ]; then filter=$KTLS_GUEST_FILTER; fi
      if [ "$engine" != auto ] && [[ "$own_engine" == *" $name "* ]]; then
        filter="$own_engine_filter"
      fi
      exe=$(printf '%s\n' "$paths" | awk -v n="$name" '$1 == n { print $2 }' | tail -1)
      [ -n "$exe" ] || { echo "ktls-guest: no binary for $name" >&2; exit 2; }
      echo "  run $engine $name '$exe' $filter"
    done
    echo "  done_engine $engine \$start"
    echo "}"
  done
  # Each engine's run in a network namespace of its own (a loopback of
  # its own): side by side, the tests' free ports (bind :0, close, hand
  # to a sidecar) would otherwise race the other engine's.
  echo "export -f run done_engine $(for e in $engines; do printf 'engine_%s ' "$e"; done)"
  echo "if unshare --net true 2>/dev/null; then netns='unshare --net'; else netns=''; fi"
  for engine in $engines; do
    echo "engine_run_$engine() { \$netns bash -c 'ip link set lo up 2>/dev/null; engine_$engine'; }"
  done
  if [ "$parallel" = 1 ]; then
    echo "echo \"guest: the engines run side by side\${netns:+, each in its own network namespace}\""
    for engine in $engines; do echo "engine_run_$engine &"; done
    echo "wait"
  else
    for engine in $engines; do echo "engine_run_$engine"; done
  fi
  for engine in $engines; do
    echo "[ -s '$work/fail.$engine' ] && cat '$work/fail.$engine'"
    echo "cat '$work/summary.$engine' 2>/dev/null || echo 'guest: engine kernel_tls=$engine: no summary (its run did not finish)'"
    echo "[ \"\$(cat '$work/status.$engine' 2>/dev/null)\" = 0 ] || status=1"
  done
  echo 'echo "guest: done status=$status"'
  echo 'exit $status'
} >"$inner"
chmod +x "$inner"

# --- boot ---------------------------------------------------------------------
kvm=(--disable-kvm)
if [ "${KTLS_GUEST_KVM:-0}" = 1 ]; then kvm=(); fi
log="$work/guest.log"
start=$(date +%s)
set +e
if [ "${KTLS_GUEST_NO_VM:-0}" = 1 ]; then
  # The same script on this host's kernel: for checking the runner itself.
  timeout -k 10 "$guest_timeout" bash "$inner" </dev/null >"$log" 2>&1
else
  timeout -k 10 "$guest_timeout" vng "${kvm[@]}" --force-9p --memory 2G --cpus 2 \
    --run "$kernel" --rwdir "$root/target" --exec "$inner" </dev/null >"$log" 2>&1
fi
vrc=$?
set -e
took=$(( $(date +%s) - start ))
grep -E '^(guest:|    )' "$log" || true
if grep -q '^guest: done status=0' "$log"; then
  echo "ktls-guest: all passed in the guest (${took}s in all, kernel $kver)"
  exit 0
fi
if ! grep -q '^guest: done' "$log"; then
  echo "ktls-guest: the guest did not finish (exit $vrc after ${took}s); its console:" >&2
  tail -60 "$log" | sed 's/^/  | /' >&2
  exit 1
fi
echo "ktls-guest: failures in the guest (${took}s)" >&2
exit 1
