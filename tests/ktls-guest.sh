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
# Skipped in the guest (they still run on the host): two tests whose
# bounds emulation cannot meet and that do not touch TLS's engine: a plain
# route's 1 s idle timeout against a slow reader, and Python's http.server
# starting within 5 s.
default_set=(
  ktls
  relay_tls
  "endings:--skip idle_timeout_with_bytes_stuck_in_flight_resets_the_client"
  "listen_tls:--skip client_certificates_are_required_and_checked_against_client_ca --skip curl_gets_a_real_page_through_the_terminator"
  upgrade_servers
)
own_engine=" ktls "
own_engine_filter="every_sidecar_a_test_starts_runs_the_engine_the_environment_chooses"
if [ $# -gt 0 ]; then set_=("$@"); else set_=("${default_set[@]}"); fi
engines=${KTLS_GUEST_ENGINES:-${KTLS_GUEST_KERNEL_TLS:-auto off}}
for e in $engines; do
  case $e in auto | off) ;; *) echo "ktls-guest: engine $e is not auto or off" >&2; exit 2 ;; esac
done
per_binary_timeout=${KTLS_GUEST_TEST_TIMEOUT:-300}
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
  echo "export KTLS_GUEST=1 CARGO_TARGET_DIR='$root/target' RUST_BACKTRACE=0"
  echo "export CARGO_BIN_EXE_tls_sidecar='$root/target/debug/tls-sidecar'"
  echo "work='$work' keep='$root/target/ktls-guest/last' per_binary_timeout=$per_binary_timeout"
  echo 'ip link set lo up 2>/dev/null || true'
  echo 'if modprobe tls; then echo "guest: tls module loaded"; else echo "guest: modprobe tls FAILED"; fi'
  echo 'grep -q "^tls " /proc/modules && echo "guest: kTLS available" || echo "guest: kTLS NOT available"'
  cat <<'EOF'
status=0
declare -A passed failed bins_ok bins_bad
# run ENGINE NAME EXE [LIBTEST ARGS]: one test binary on one engine. Prints
# one line, and on failure the failing tests' names and the output; keeps
# every test's result line in $keep/ENGINE.txt.
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
  passed[$engine]=$(( ${passed[$engine]:-0} + $(grep -cE '^test .* \.\.\. ok$' "$out") ))
  failed[$engine]=$(( ${failed[$engine]:-0} + $(grep -cE '^test .* \.\.\. FAILED$' "$out") ))
  if [ $rc -eq 0 ]; then
    echo "guest: PASS [kernel_tls=$engine] $name (${took}s): $counts"
    bins_ok[$engine]=$(( ${bins_ok[$engine]:-0} + 1 ))
    return
  fi
  status=1
  bins_bad[$engine]="${bins_bad[$engine]:-} $name"
  [ $rc -eq 124 ] && echo "guest: TIMEOUT [kernel_tls=$engine] $name after ${per_binary_timeout}s"
  echo "guest: FAIL [kernel_tls=$engine] $name (exit $rc, ${took}s): ${counts:-no libtest summary}"
  grep -E '^test .* \.\.\. FAILED$' "$out" |
    sed "s/^test /guest:   failed [kernel_tls=$engine] $name: /; s/ \.\.\. FAILED\$//"
  echo "    --- [kernel_tls=$engine] $name: its output (passing tests' lines left out) ---"
  grep -vE '^test .* \.\.\. ok$' "$out" | tail -150 | sed 's/^/    /'
}
# summary ENGINE SECONDS
summary() {
  echo "guest: engine kernel_tls=$1: ${passed[$1]:-0} tests passed, ${failed[$1]:-0} failed;" \
    "${bins_ok[$1]:-0} binaries passed${bins_bad[$1]:+, failed:${bins_bad[$1]}} (${2}s)"
}
EOF
  for engine in $engines; do
    echo "echo 'guest: --- engine kernel_tls=$engine ---'; engine_start=\$(date +%s)"
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
      echo "run $engine $name '$exe' $filter"
    done
    echo "summary $engine \$(( \$(date +%s) - engine_start ))"
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
timeout -k 10 "$guest_timeout" vng "${kvm[@]}" --force-9p --memory 2G --cpus 2 \
  --run "$kernel" --rwdir "$root/target" --exec "$inner" </dev/null >"$log" 2>&1
vrc=$?
set -e
took=$(( $(date +%s) - start ))
grep -E '^(guest:|    )' "$log" || true
# The summary lines again, last, where a reader of a long CI log looks.
grep -E '^guest: engine ' "$log" | sed 's/^guest: /ktls-guest: /' || true
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
