#!/usr/bin/env bash
# Runs a chosen set of the already-built integration tests inside a throwaway
# QEMU guest that boots Debian's stock kernel (linux-image-amd64, which ships
# the `tls` ULP as a module) over this machine's own filesystem (virtme-ng,
# 9p). The host kernel may lack kTLS; the guest has it, so the kernel-TLS
# engine is exercised for real there (issue 18).
#
#   bash tests/ktls-guest.sh                  # the default set below
#   bash tests/ktls-guest.sh relay_tls endings # only these test binaries
#   bash tests/ktls-guest.sh 'endings:--skip idle' # NAME:ARGS passes libtest arguments
#   KTLS_GUEST_FILTER='ktls' bash tests/ktls-guest.sh  # a libtest name filter
#
# Installs what it needs when missing (idempotent, non-interactive):
#   apt: qemu-system-x86 linux-image-amd64 busybox-static kmod (python3-pip)
#   pip: virtme-ng (vng)
# Builds the test binaries on the host (`cargo test --no-run`), then boots the
# guest without KVM (TCG: KVM guests stop with an emulation failure on some
# hosts; set KTLS_GUEST_KVM=1 to try it), loads `tls` and runs each binary by
# path with one test thread, bounded by `timeout`. Prints each binary's
# result, the failing output, and exits non-zero if any failed or the guest
# did not come up.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export DEBIAN_FRONTEND=noninteractive

# The guest sees this machine's files read-only, but for target/ (the tests
# write their summaries there) and its own /tmp.
# Test binaries (tests/NAME.rs) run in the guest, every sidecar they start
# with TLS_SIDECAR__KERNEL_TLS=auto (KTLS_GUEST_KERNEL_TLS=off for the
# userspace engine in the same guest), each with an optional
# libtest filter after a colon.
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
if [ $# -gt 0 ]; then set_=("$@"); else set_=("${default_set[@]}"); fi
per_binary_timeout=${KTLS_GUEST_TEST_TIMEOUT:-300}
guest_timeout=${KTLS_GUEST_TIMEOUT:-900}

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
mkdir -p target/ktls-guest
work=$(mktemp -d "$root/target/ktls-guest/run.XXXXXX")
trap 'rm -rf "$work"' EXIT
inner="$work/inner.sh"
{
  echo '#!/bin/bash'
  echo 'set -u'
  echo "cd '$root'"
  echo "export KTLS_GUEST=1 CARGO_TARGET_DIR='$root/target' RUST_BACKTRACE=0"
  echo "export CARGO_BIN_EXE_tls_sidecar='$root/target/debug/tls-sidecar'"
  # Every sidecar the tests start runs kernel_tls = "auto" (a config that
  # sets the key itself still wins), so the same tests cover kTLS here.
  echo "export TLS_SIDECAR__KERNEL_TLS=${KTLS_GUEST_KERNEL_TLS:-auto}"
  echo 'ip link set lo up 2>/dev/null || true'
  echo 'if modprobe tls; then echo "guest: tls module loaded"; else echo "guest: modprobe tls FAILED"; fi'
  echo 'grep -q "^tls " /proc/modules && echo "guest: kTLS available" || echo "guest: kTLS NOT available"'
  echo "status=0"
  for t in "${set_[@]}"; do
    name=${t%%:*}
    filter=""
    if [ "$t" != "$name" ]; then filter=${t#*:}; fi
    if [ -n "${KTLS_GUEST_FILTER:-}" ]; then filter=$KTLS_GUEST_FILTER; fi
    exe=$(printf '%s\n' "$paths" | awk -v n="$name" '$1 == n { print $2 }' | tail -1)
    [ -n "$exe" ] || { echo "ktls-guest: no binary for $name" >&2; exit 2; }
    out="$work/$name.out"
    cat <<EOF
start=\$(date +%s)
timeout -k 5 $per_binary_timeout '$exe' --test-threads=1 $filter >'$out' 2>&1
rc=\$?
took=\$(( \$(date +%s) - start ))
if [ \$rc -eq 0 ]; then
  echo "guest: PASS $name (\${took}s) \$(grep -E '^test result' '$out' | tail -1)"
else
  [ \$rc -eq 124 ] && echo "guest: TIMEOUT $name after ${per_binary_timeout}s"
  echo "guest: FAIL $name (exit \$rc, \${took}s); its output:"
  grep -vE '^test .* \.\.\. ok$' '$out' | tail -150 | sed 's/^/    /'
  status=1
fi
EOF
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
