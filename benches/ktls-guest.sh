#!/usr/bin/env bash
# The sidecar's own CPU per GiB on TLS routes, kernel TLS (kernel_tls =
# "auto") against the userspace engine ("off"), same binary, alternating
# runs, inside the QEMU guest of tests/ktls-guest.sh (Debian's stock kernel
# with the `tls` module). MEASURED UNDER EMULATION (QEMU TCG, no KVM) unless
# run with KTLS_GUEST_KVM=1: absolute numbers are far from a real machine's,
# only the ratio between the engines in the same guest means something.
#
#   bash benches/ktls-guest.sh                  # 2 rounds × 128 MiB per case
#   ROUNDS=3 BULK=256M bash benches/ktls-guest.sh
#   NATIVE=1 bash benches/ktls-guest.sh          # on this host's own kernel
#                                                # (it must have the tls ULP)
#
# Two cases, each direction of TLS the sidecar does:
#   tx (connect side):  socat ──plain──▶ sidecar ══TLS══▶ socat OPENSSL-LISTEN (sink)
#   rx (listen side):   socat ══TLS══▶ sidecar (listen_tls) ──plain──▶ socat (sink)
#
# CPU is the sidecar's utime + stime from /proc over the measured transfer
# (after a 4 MiB warm-up connection on the same process); bytes are the
# sidecar's own count from its log; the engine that ran is checked from the
# log (engine="ktls" / "userspace"). Results: benches/results/ktls-guest.md.
# Knobs: ROUNDS, BULK, SKIP_BUILD=1, BIN (default target/release/tls-sidecar).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
ROUNDS=${ROUNDS:-2}
BULK=${BULK:-128M}
BIN=${BIN:-$root/target/release/tls-sidecar}
OUT=${OUT:-$root/benches/results/ktls-guest.md}

if [ "${KTLS_BENCH_INNER:-0}" != 1 ]; then
  # --- host side: build, then boot the guest running this same script ---
  [ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release --quiet
  [ -x "$BIN" ] || { echo "ktls-bench: $BIN not built" >&2; exit 2; }
  for p in socat openssl; do
    command -v $p >/dev/null || { apt-get update -qq; apt-get install -y -qq --no-install-recommends socat openssl >/dev/null; }
  done
  if [ "${NATIVE:-0}" = 1 ]; then
    KTLS_BENCH_INNER=1 KTLS_BENCH_WHERE="native, $(uname -r)" BIN=$BIN OUT=$OUT ROUNDS=$ROUNDS BULK=$BULK bash "$0"
    exit $?
  fi
  command -v vng >/dev/null && command -v qemu-system-x86_64 >/dev/null ||
    { echo "ktls-bench: run tests/ktls-guest.sh once first (it installs qemu, the kernel and virtme-ng)" >&2; exit 2; }
  kernel=$(ls /boot/vmlinuz-*-amd64 | sort -V | tail -1)
  kver=${kernel#/boot/vmlinuz-}
  kvm=(--disable-kvm); how="QEMU TCG, no KVM: measured under emulation"
  if [ "${KTLS_GUEST_KVM:-0}" = 1 ]; then kvm=(); how="QEMU with KVM"; fi
  mkdir -p target/ktls-guest
  work=$(mktemp -d "$root/target/ktls-guest/bench.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  cat >"$work/inner.sh" <<EOF
#!/bin/bash
ip link set lo up 2>/dev/null || true
modprobe tls || echo "guest: modprobe tls FAILED"
cd '$root'
KTLS_BENCH_INNER=1 KTLS_BENCH_WHERE='guest, kernel $kver, $how' BIN='$BIN' OUT='$work/result.md' ROUNDS=$ROUNDS BULK=$BULK bash benches/ktls-guest.sh
echo "guest: bench exit \$?"
EOF
  chmod +x "$work/inner.sh"
  timeout -k 10 "${KTLS_BENCH_TIMEOUT:-1800}" vng "${kvm[@]}" --force-9p --memory 2G --cpus 2 \
    --run "$kernel" --rwdir "$work" --exec "$work/inner.sh" </dev/null >"$work/guest.log" 2>&1 || true
  if [ -s "$work/result.md" ]; then
    cp "$work/result.md" "$OUT"
    cat "$OUT"
    exit 0
  fi
  echo "ktls-bench: no result; the guest's console:" >&2
  tail -60 "$work/guest.log" | sed 's/^/  | /' >&2
  exit 1
fi

# --- inner: the measurement, on whatever kernel this is ---
W=$(mktemp -d /tmp/ktls-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT

# A CA and a leaf for localhost.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=bench-ca -keyout "$W/ca.key" -out "$W/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
  -keyout "$W/leaf.key" -out "$W/leaf.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n' >"$W/ext"
openssl x509 -req -in "$W/leaf.csr" -CA "$W/ca.pem" -CAkey "$W/ca.key" -CAcreateserial \
  -days 2 -extfile "$W/ext" -out "$W/leaf.pem" 2>/dev/null

P_TLS=26001 P_TX=26002 P_PLAIN=26003 P_RX=26004
HZ=$(getconf CLK_TCK)

# Sinks: a TLS one for the tx case, a plain one for rx (socat, OpenSSL).
socat -u OPENSSL-LISTEN:$P_TLS,bind=127.0.0.1,reuseaddr,fork,cert="$W/leaf.pem",key="$W/leaf.key",verify=0 \
  OPEN:/dev/null >/dev/null 2>&1 &
PIDS+=($!)
socat -u TCP-LISTEN:$P_PLAIN,bind=127.0.0.1,reuseaddr,fork OPEN:/dev/null >/dev/null 2>&1 &
PIDS+=($!)
sleep 1

config() { # $1 = kernel_tls
  cat <<EOF
kernel_tls = "$1"
shutdown_grace = "1s"
sandbox = false
[log]
level = "info"
format = "json"
[[route]]
name = "tx"
listen = "127.0.0.1:$P_TX"
connect = ["localhost:$P_TLS"]
[route.connect_tls]
ca = "$W/ca.pem"
[[route]]
name = "rx"
listen = "127.0.0.1:$P_RX"
connect = ["127.0.0.1:$P_PLAIN"]
[route.listen_tls]
cert = "$W/leaf.pem"
key = "$W/leaf.key"
EOF
}

send() { # $1 = case, $2 = bytes
  case $1 in
    tx) head -c "$2" /dev/zero | socat -u - TCP:127.0.0.1:$P_TX ;;
    rx) head -c "$2" /dev/zero | socat -u - OPENSSL:127.0.0.1:$P_RX,verify=0,snihost=localhost ;;
  esac
}

SUM='
import json, sys
n = 0; eng = set()
for line in sys.stdin:
    try: f = json.loads(line)
    except ValueError: continue
    fl = f.get("fields", f)
    if "bytes_up" in fl:
        n += int(fl.get("bytes_up", 0)) + int(fl.get("bytes_down", 0))
        eng.add(fl.get("engine", "?"))
print(n, ",".join(sorted(eng)) or "?")'

: >"$W/results.tsv"
for round in $(seq "$ROUNDS"); do
  for setting in auto off; do
    config $setting >"$W/c.toml"
    "$BIN" run -c "$W/c.toml" >"$W/sc.log" 2>&1 &
    SC=$!
    for _ in $(seq 600); do grep -q '"serving"' "$W/sc.log" 2>/dev/null && break; sleep 0.1; done
    for case in tx rx; do
      send $case 4M || true
      sleep 0.5
      mark=$(wc -l <"$W/sc.log")
      read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$SC/stat")
      t0=$(date +%s.%N)
      send $case "$BULK" || echo "bench: $case transfer failed" >&2
      sleep 0.5
      t1=$(date +%s.%N)
      read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$SC/stat")
      read -r bytes eng < <(tail -n +$((mark + 1)) "$W/sc.log" | python3 -c "$SUM")
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$setting" "$case" $((u1 - u0)) $((s1 - s0)) "$bytes" "$eng" \
        "$(python3 -c "print($t1 - $t0)")" >>"$W/results.tsv"
      echo "round $round: kernel_tls=$setting $case: $bytes bytes, engine $eng" >&2
    done
    kill -TERM $SC; wait $SC 2>/dev/null || true
  done
done

python3 - "$W/results.tsv" "$HZ" "$ROUNDS" "$BULK" "${KTLS_BENCH_WHERE:-unknown}" >"$OUT" <<'EOF'
import statistics, sys
from collections import defaultdict
path, hz, rounds, bulk, where = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
r = defaultdict(list); engines = defaultdict(set)
for line in open(path):
    setting, case, u, s, b, eng, secs = line.rstrip("\n").split("\t")
    gib = int(b) / 2**30
    if gib == 0:
        continue
    r[setting, case].append((int(u) / hz / gib, int(s) / hz / gib, gib * 1024 / float(secs)))
    engines[setting, case].add(eng)
print(f"# Kernel TLS vs the userspace TLS engine: the sidecar's CPU per GiB\n")
print(f"Where: {where}. {bulk} per transfer, {rounds} round(s), medians; CPU is the")
print("sidecar's utime + stime over the transfer; bytes are its own count.")
print("Under emulation the absolute figures are meaningless; the ratio between")
print("the engines, measured in the same guest, is what this table is for.\n")
print("| case | kernel_tls | engine seen | CPU s per GiB (user + kernel) | MiB/s |")
print("|---|---|---|---|---|")
med = {}
for case, what in (("tx", "tx: plain → sidecar → TLS upstream"), ("rx", "rx: TLS client → sidecar (listen_tls) → plain")):
    for setting in ("auto", "off"):
        rows = r[setting, case]
        if not rows:
            print(f"| {what} | {setting} | - | no data | - |")
            continue
        u = statistics.median(x[0] for x in rows); s = statistics.median(x[1] for x in rows)
        t = statistics.median(x[0] + x[1] for x in rows); m = statistics.median(x[2] for x in rows)
        med[setting, case] = t
        print(f"| {what} | {setting} | {','.join(sorted(engines[setting, case]))} | {t:.2f} ({u:.2f} + {s:.2f}) | {m:.1f} |")
print()
for case in ("tx", "rx"):
    if ("auto", case) in med and ("off", case) in med and med["auto", case] > 0:
        print(f"- {case}: kTLS uses {med['off', case] / med['auto', case]:.2f}× less CPU per GiB than the userspace engine")
EOF
cat "$OUT"
