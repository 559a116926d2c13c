#!/usr/bin/env bash
# Kernel TLS (kernel_tls = "auto") against the userspace TLS engine ("off"),
# same binary, alternating runs, with real peers: CPU per GiB of bulk
# transfers, new connections per second and request latency, both engines
# in one run, in one table (issue 18).
#
# Where: on this host when its kernel has the `tls` ULP (detected: the
# module is loaded, or loads with modprobe); otherwise inside the QEMU guest
# of tests/ktls-guest.sh (Debian's stock kernel, which has the module).
# A guest run is MEASURED UNDER EMULATION (QEMU TCG, no KVM) unless run with
# KTLS_GUEST_KVM=1: absolute numbers are far from a real machine's, only
# the ratio between the engines in the same guest means something; the
# table says which it was.
#
#   bash benches/ktls-guest.sh                       # full sizes (quiet machine)
#   BULK=8M SECS=2 CONNS=4 ROUNDS=1 OUT=/tmp/k.md bash benches/ktls-guest.sh
#                                                    # the apparatus only
#   NATIVE=1 bash benches/ktls-guest.sh               # this host, whatever it has
#   GUEST=1 bash benches/ktls-guest.sh                # the guest, whatever the host has
#
# Peers and cases (everything on 127.0.0.1):
#   up    socat ──plain──▶ sidecar ══TLS══▶ socat OPENSSL-LISTEN (sink)     sidecar kTLS TX
#   down  curl  ──plain──▶ sidecar ══TLS══▶ nginx (sendfile, kTLS)          sidecar kTLS RX
#   rx    socat ══TLS══▶ sidecar (listen_tls) ──plain──▶ socat (sink)       listen-side kTLS RX
#   conn-connect  wrk, a new connection per request: plain ▶ sidecar ══TLS══▶ nginx `return 200`
#   conn-listen   wrk over TLS, a new connection per request ▶ sidecar (listen_tls) ▶ nginx plain
#   keepalive     wrk keep-alive: plain ▶ sidecar ══TLS══▶ nginx: req/s and latency
# nginx runs with `ssl_conf_command Options KTLS` (OpenSSL 3): whether its
# own sends really went through the kernel is checked from
# /proc/net/tls_stat and said in the table.
#
# CPU is the sidecar's utime + stime from /proc over the measured part
# (after a warm-up on the same process); bytes are the sidecar's own count
# from its log; the engine that ran is checked from the log (engine="ktls" /
# "userspace"). Latency is wrk's (p50, p99 per request).
# Knobs: ROUNDS (2), BULK (128M per transfer), SECS (5 s per wrk figure),
# CONNS (16 wrk connections), CASES (default all: up down rx conn-connect
# conn-listen keepalive), SKIP_BUILD=1, BIN (target/release/tls-sidecar),
# OUT (benches/results/ktls-guest.md, or ktls-native.md natively).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
ROUNDS=${ROUNDS:-2}
BULK=${BULK:-128M}
SECS=${SECS:-5}
CONNS=${CONNS:-16}
CASES=${CASES:-up down rx conn-connect conn-listen keepalive}
BIN=${BIN:-$root/target/release/tls-sidecar}
export ROUNDS BULK SECS CONNS CASES BIN

if [ "${KTLS_BENCH_INNER:-0}" != 1 ]; then
  # --- host side: build, then measure here or in the guest ---
  [ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release --quiet
  [ -x "$BIN" ] || { echo "ktls-bench: $BIN not built" >&2; exit 2; }
  need=()
  for p in socat openssl curl nginx wrk; do command -v $p >/dev/null || need+=($p); done
  if [ ${#need[@]} -gt 0 ]; then
    pkgs=("${need[@]/nginx/nginx-light}")
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${pkgs[@]}" </dev/null >/dev/null
  fi
  if [ -z "${NATIVE:-}" ] && [ "${GUEST:-0}" != 1 ]; then
    # kTLS here? Loaded (or built in), or loadable.
    if [ ! -e /proc/net/tls_stat ] && modprobe -n tls 2>/dev/null; then
      echo "ktls-bench: loading the tls module (modprobe tls)" >&2
      modprobe tls || true
    fi
    if [ -e /proc/net/tls_stat ]; then NATIVE=1; else NATIVE=0; fi
  fi
  if [ "${NATIVE:-0}" = 1 ]; then
    OUT=${OUT:-$root/benches/results/ktls-native.md}
    echo "ktls-bench: measuring on this host ($(uname -r))" >&2
    KTLS_BENCH_INNER=1 KTLS_BENCH_WHERE="native, kernel $(uname -r)" OUT=$OUT bash "$0"
    exit $?
  fi
  OUT=${OUT:-$root/benches/results/ktls-guest.md}
  command -v vng >/dev/null && command -v qemu-system-x86_64 >/dev/null ||
    { echo "ktls-bench: no kTLS here; run tests/ktls-guest.sh once first (it installs qemu, the kernel and virtme-ng)" >&2; exit 2; }
  kernel=$(ls /boot/vmlinuz-*-amd64 | sort -V | tail -1)
  kver=${kernel#/boot/vmlinuz-}
  kvm=(--disable-kvm); how="QEMU TCG, no KVM: MEASURED UNDER EMULATION"
  if [ "${KTLS_GUEST_KVM:-0}" = 1 ]; then kvm=(); how="QEMU with KVM"; fi
  echo "ktls-bench: no kTLS on this host; measuring in the guest (kernel $kver, $how)" >&2
  mkdir -p target/ktls-guest
  work=$(mktemp -d "$root/target/ktls-guest/bench.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  cat >"$work/inner.sh" <<EOF
#!/bin/bash
ip link set lo up 2>/dev/null || true
modprobe tls || echo "guest: modprobe tls FAILED"
cd '$root'
# The guest does not inherit this environment: the knobs go by name.
KTLS_BENCH_INNER=1 KTLS_BENCH_WHERE='guest, kernel $kver, $how' OUT='$work/result.md' \\
  BIN='$BIN' ROUNDS='$ROUNDS' BULK='$BULK' SECS='$SECS' CONNS='$CONNS' CASES='$CASES' \\
  bash benches/ktls-guest.sh 2>'$work/inner.err'
echo "guest: bench exit \$?"
EOF
  chmod +x "$work/inner.sh"
  timeout -k 10 "${KTLS_BENCH_TIMEOUT:-3600}" vng "${kvm[@]}" --force-9p --memory 2G --cpus 2 \
    --run "$kernel" --rwdir "$work" --exec "$work/inner.sh" </dev/null >"$work/guest.log" 2>&1 || true
  sed 's/^/  guest| /' "$work/inner.err" >&2 2>/dev/null || true
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
OUT=${OUT:?}
W=$(mktemp -d /tmp/ktls-bench.XXXXXX)
chmod 755 "$W"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT
say() { echo "bench: $*" >&2; }
want() { case " $CASES " in *" $1 "*) return 0 ;; esac; return 1; }

# A CA and a leaf for localhost.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=bench-ca -keyout "$W/ca.key" -out "$W/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
  -keyout "$W/leaf.key" -out "$W/leaf.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n' >"$W/ext"
openssl x509 -req -in "$W/leaf.csr" -CA "$W/ca.pem" -CAkey "$W/ca.key" -CAcreateserial \
  -days 2 -extfile "$W/ext" -out "$W/leaf.pem" 2>/dev/null
chmod 644 "$W"/*

# Peers' ports: 26001 socat TLS sink, 26003 socat plain sink, 26005 nginx
# TLS, 26006 nginx plain. The sidecar's: 26002 up, 26004 rx, 26007 down
# (and the wrk figures over nginx TLS), 26008 listen_tls in front of nginx.
P_TLS=26001 P_UP=26002 P_PLAIN=26003 P_RX=26004 P_NGX_TLS=26005 P_NGX=26006 P_DOWN=26007 P_LT=26008
HZ=$(getconf CLK_TCK)
KTLS_HERE=no
[ -e /proc/net/tls_stat ] && KTLS_HERE=yes

socat -u OPENSSL-LISTEN:$P_TLS,bind=127.0.0.1,reuseaddr,fork,cert="$W/leaf.pem",key="$W/leaf.key",verify=0 \
  OPEN:/dev/null >/dev/null 2>&1 &
PIDS+=($!)
socat -u TCP-LISTEN:$P_PLAIN,bind=127.0.0.1,reuseaddr,fork OPEN:/dev/null >/dev/null 2>&1 &
PIDS+=($!)

# nginx: the file `down` fetches (sendfile: through kTLS when it is on), a
# tiny answer for the wrk figures, TLS 1.3 with OpenSSL's kTLS option.
head -c "$BULK" /dev/zero >"$W/big.bin"
chmod 644 "$W/big.bin"
mkdir -p "$W/nginx/logs"
cat >"$W/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $W/nginx/nginx.pid;
error_log $W/nginx/logs/error.log warn;
events { worker_connections 1000; }
http {
  access_log off;
  client_body_temp_path $W/nginx/body;
  proxy_temp_path $W/nginx/proxy;
  fastcgi_temp_path $W/nginx/fastcgi;
  uwsgi_temp_path $W/nginx/uwsgi;
  scgi_temp_path $W/nginx/scgi;
  sendfile on;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$P_NGX_TLS ssl;
    ssl_certificate $W/leaf.pem;
    ssl_certificate_key $W/leaf.key;
    ssl_protocols TLSv1.3;
    ssl_session_tickets off;
    ssl_conf_command Options KTLS;
    location = /big { alias $W/big.bin; }
    location / { return 200 "ok\n"; }
  }
  server {
    listen 127.0.0.1:$P_NGX;
    location / { return 200 "ok\n"; }
  }
}
EOF
nginx -p "$W/nginx" -c "$W/nginx/nginx.conf" -e "$W/nginx/logs/error.log" &
PIDS+=($!)
for _ in $(seq 300); do
  curl -s -o /dev/null "http://127.0.0.1:$P_NGX/" && break
  sleep 0.1
done
sleep 1

tls_stat() { # TlsTxSw TlsRxSw (0 0 without kTLS)
  if [ -r /proc/net/tls_stat ]; then
    awk '$1 == "TlsTxSw" { t = $2 } $1 == "TlsRxSw" { r = $2 } END { print t + 0, r + 0 }' /proc/net/tls_stat
  else
    echo 0 0
  fi
}
# Does nginx itself send through kTLS? One fetch straight from it.
read -r t0 _ < <(tls_stat)
curl -sk --tlsv1.3 -o /dev/null "https://127.0.0.1:$P_NGX_TLS/big" || say "nginx: the direct fetch failed"
read -r t1 _ < <(tls_stat)
if [ "$KTLS_HERE" = no ]; then
  NGINX_KTLS="no (no kTLS in this kernel)"
elif [ $((t1 - t0)) -gt 0 ]; then
  NGINX_KTLS="yes (TlsTxSw +$((t1 - t0)) for one fetch straight from nginx)"
else
  NGINX_KTLS="NO: nginx did not use kTLS (TlsTxSw unchanged; see its error log)"
fi
say "nginx kTLS: $NGINX_KTLS"

config() { # $1 = kernel_tls
  cat <<EOF
kernel_tls = "$1"
shutdown_grace = "1s"
sandbox = false
[log]
level = "info"
format = "json"
[defaults]
max_connections = 100000
[[route]]
name = "up"
listen = "127.0.0.1:$P_UP"
connect = ["localhost:$P_TLS"]
[route.connect_tls]
ca = "$W/ca.pem"
[[route]]
name = "down"
listen = "127.0.0.1:$P_DOWN"
connect = ["localhost:$P_NGX_TLS"]
[route.connect_tls]
ca = "$W/ca.pem"
[[route]]
name = "rx"
listen = "127.0.0.1:$P_RX"
connect = ["127.0.0.1:$P_PLAIN"]
[route.listen_tls]
cert = "$W/leaf.pem"
key = "$W/leaf.key"
[[route]]
name = "lt"
listen = "127.0.0.1:$P_LT"
connect = ["127.0.0.1:$P_NGX"]
[route.listen_tls]
cert = "$W/leaf.pem"
key = "$W/leaf.key"
EOF
}

bulk() { # $1 = case, $2 = bytes
  case $1 in
    up) head -c "$2" /dev/zero | socat -u - TCP:127.0.0.1:$P_UP ;;
    rx) head -c "$2" /dev/zero | socat -u - OPENSSL:127.0.0.1:$P_RX,verify=0,snihost=localhost ;;
    down) curl -sf -o /dev/null -r "0-$(($(numfmt --from=iec "$2") - 1))" "http://127.0.0.1:$P_DOWN/big" ;;
  esac
}

wrk_case() { # $1 = case: runs wrk, prints "requests p50_us p99_us errors"
  local url args=()
  case $1 in
    conn-connect) url="http://127.0.0.1:$P_DOWN/"; args=(-H 'Connection: close') ;;
    conn-listen) url="https://localhost:$P_LT/"; args=(-H 'Connection: close') ;;
    keepalive) url="http://127.0.0.1:$P_DOWN/" ;;
  esac
  timeout $((SECS + 60)) wrk -t 1 -c "$CONNS" -d "${SECS}s" --latency "${args[@]}" "$url" >"$W/wrk.txt" 2>&1 || true
  python3 - "$W/wrk.txt" <<'EOF'
import re, sys
t = open(sys.argv[1]).read()
def us(v):
    m = re.match(r"([\d.]+)(us|ms|s)$", v)
    if not m: return -1
    return float(m.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6}[m.group(2)]
n = re.search(r"(\d+) requests in", t)
p = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", t, re.M))
errs = re.search(r"Socket errors: (.*)", t)
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
e = (errs.group(1).replace(" ", "") if errs else "") + (f",non2xx={non2xx.group(1)}" if non2xx else "")
print(n.group(1) if n else 0, us(p.get("50", "")), us(p.get("99", "")), e or "-")
EOF
}

SUM='
import json, sys
n = 0; c = 0; eng = set()
for line in sys.stdin:
    try: f = json.loads(line)
    except ValueError: continue
    fl = f.get("fields", f)
    if "bytes_up" in fl:
        n += int(fl.get("bytes_up", 0)) + int(fl.get("bytes_down", 0))
        c += 1
        eng.add(fl.get("engine", "?"))
print(n, c, ",".join(sorted(eng)) or "?")'

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }

: >"$W/results.tsv"
for round in $(seq "$ROUNDS"); do
  for setting in auto off; do
    config $setting >"$W/c.toml"
    "$BIN" run -c "$W/c.toml" >"$W/sc.log" 2>&1 &
    SC=$!
    for _ in $(seq 600); do grep -q '"serving"' "$W/sc.log" 2>/dev/null && break; sleep 0.1; done
    if ! kill -0 $SC 2>/dev/null || ! grep -q '"serving"' "$W/sc.log"; then
      say "the sidecar (kernel_tls = $setting) did not start; its log:"
      sed 's/^/  | /' "$W/sc.log" >&2
      exit 1
    fi
    for case in $CASES; do
      # A warm-up on the same process, then the measured part.
      case $case in
        up | rx | down) bulk $case 4M || true ;;
        *) curl -sk -o /dev/null "http://127.0.0.1:$P_DOWN/" || true ;;
      esac
      sleep 0.5
      mark=$(wc -l <"$W/sc.log")
      c0=$(cpu $SC)
      read -r x0 y0 < <(tls_stat)
      t0=$(date +%s.%N)
      case $case in
        up | rx | down)
          bulk $case "$BULK" || say "$case transfer failed"
          wrk_out="- -1 -1 -"
          ;;
        *) wrk_out=$(wrk_case $case) ;;
      esac
      sleep 0.5
      t1=$(date +%s.%N)
      c1=$(cpu $SC)
      read -r x1 y1 < <(tls_stat)
      read -r bytes conns eng < <(tail -n +$((mark + 1)) "$W/sc.log" | python3 -c "$SUM")
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$setting" "$case" $((c1 - c0)) "$bytes" "$conns" "$eng" \
        "$(python3 -c "print($t1 - $t0 - 0.5)")" "$wrk_out" "$((x1 - x0)) $((y1 - y0))" >>"$W/results.tsv"
      say "round $round: kernel_tls=$setting $case: $bytes bytes, $conns connections, engine $eng, wrk: $wrk_out"
    done
    kill -TERM $SC
    wait $SC 2>/dev/null || true
  done
done

python3 - "$W/results.tsv" "$HZ" "$ROUNDS" "$BULK" "$SECS" "$CONNS" "${KTLS_BENCH_WHERE:-unknown}" \
  "$NGINX_KTLS" "$KTLS_HERE" "$(nginx -v 2>&1 | sed 's/.*: //'), $(openssl version | cut -d' ' -f1-2)" >"$OUT" <<'EOF'
import statistics, sys
from collections import defaultdict
path, hz, rounds, bulk, secs, conns, where, nginx_ktls, ktls_here, versions = sys.argv[1:11]
hz = int(hz)
r = defaultdict(list); engines = defaultdict(set)
for line in open(path):
    setting, case, ticks, b, n, eng, wall, wrk, tls = line.rstrip("\n").split("\t")
    req, p50, p99, errs = wrk.split(" ")
    cpu = int(ticks) / hz
    engines[setting, case].add(eng)
    if case in ("up", "down", "rx"):
        gib = int(b) / 2**30
        if gib > 0:
            r[setting, case].append({"cpu": cpu / gib, "mibs": gib * 1024 / max(float(wall), 1e-3)})
    else:
        req = int(req)
        if req > 0:
            r[setting, case].append({"rate": req / float(secs), "cpu_us": cpu * 1e6 / req,
                                     "p50": float(p50), "p99": float(p99), "errs": errs})
def med(rows, k):
    return statistics.median(x[k] for x in rows)
emul = "EMULATION" in where
print("# Kernel TLS vs the userspace TLS engine\n")
print(f"Where: **{where}**.")
if emul:
    print("Measured under emulation: the absolute figures are meaningless; the ratio")
    print("between the engines, measured in the same guest, is what this table is for.")
if ktls_here != "yes":
    print("This kernel has no kTLS: the `auto` rows ran the userspace engine (see \"engine seen\").")
print(f"\n{rounds} round(s), engines alternating, medians. Bulk: {bulk} per transfer; CPU is the")
print("sidecar's utime + stime over the transfer, bytes its own count. Connections and latency:")
print(f"wrk, 1 thread, {conns} connections, {secs} s per figure; CPU per connection (or request) is the")
print(f"sidecar's. Peers: socat, curl, wrk, nginx with `ssl_conf_command Options KTLS` ({versions});")
print(f"nginx sending through kTLS itself: {nginx_ktls}.\n")
print("| bulk | kernel_tls | engine seen | CPU s per GiB | MiB/s |")
print("|---|---|---|---|---|")
cases = {"up": "up: plain → sidecar → TLS (socat sink)", "down": "down: nginx TLS (sendfile) → sidecar → plain",
         "rx": "rx: TLS client → sidecar (listen_tls) → plain"}
ratios = []
for case, what in cases.items():
    for s in ("auto", "off"):
        rows = r[s, case]
        if not rows:
            if (s, case) in engines: print(f"| {what} | {s} | - | no data | - |")
            continue
        print(f"| {what} | {s} | {','.join(sorted(engines[s, case]))} | {med(rows, 'cpu'):.2f} | {med(rows, 'mibs'):.1f} |")
    if r["auto", case] and r["off", case] and med(r["auto", case], "cpu") > 0:
        ratios.append(f"- {case}: userspace / kTLS CPU per GiB = {med(r['off', case], 'cpu') / med(r['auto', case], 'cpu'):.2f}× (above 1: kTLS cheaper)")
print()
print("| connections | kernel_tls | engine seen | per s | sidecar CPU µs each | p50 ms | p99 ms | errors |")
print("|---|---|---|---|---|---|---|---|")
cases = {"conn-connect": "new conn: plain → sidecar → nginx TLS", "conn-listen": "new conn: TLS → sidecar (listen_tls) → nginx",
         "keepalive": "keep-alive requests: plain → sidecar → nginx TLS"}
for case, what in cases.items():
    for s in ("auto", "off"):
        rows = r[s, case]
        if not rows:
            if (s, case) in engines: print(f"| {what} | {s} | - | no data | | | | |")
            continue
        errs = ";".join(sorted({x["errs"] for x in rows}))
        print(f"| {what} | {s} | {','.join(sorted(engines[s, case]))} | {med(rows, 'rate'):.0f} | {med(rows, 'cpu_us'):.0f} | "
              f"{med(rows, 'p50') / 1e3:.2f} | {med(rows, 'p99') / 1e3:.2f} | {errs} |")
    if r["auto", case] and r["off", case] and med(r["auto", case], "cpu_us") > 0:
        ratios.append(f"- {case}: kTLS / userspace per s = {med(r['auto', case], 'rate') / med(r['off', case], 'rate'):.2f}×, "
                      f"CPU per {'request' if case == 'keepalive' else 'connection'} userspace / kTLS = "
                      f"{med(r['off', case], 'cpu_us') / med(r['auto', case], 'cpu_us'):.2f}×")
print()
print("\n".join(ratios))
EOF
cat "$OUT"
