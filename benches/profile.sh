#!/usr/bin/env bash
# Where the sidecar's CPU goes under bulk load (issue 7, item 5): the release
# binary relays a bounded plain→TLS transfer while a profiler counts, then
# the cost is grouped as AES-GCM (aws-lc), memcpy, syscalls/kernel, tokio,
# rustls, ours (tls_sidecar) and the rest.
#
#   bash benches/profile.sh                # 256 MiB plain→TLS
#   DIR=down bash benches/profile.sh       # TLS→plain: the sidecar decrypts
#   BULK=64M TOOL=callgrind bash benches/profile.sh
#
# Topology (as benches/compare.sh, one route, one stream):
#
#   iperf3 -c ──plain──▶ tls-sidecar ──TLS 1.3──▶ nginx stream ──plain──▶ iperf3 -s
#                        (profiled)               (ssl, AES-128-GCM)
#
# The profiler: `perf record -e instructions` if hardware counters work here
# (`perf stat -e instructions true` counts), else `valgrind --tool=callgrind`
# (instructions executed by the sidecar, in user space: repeatable, and
# indifferent to other load on the machine; it runs the sidecar ~50× slower,
# so the transfer is bounded in bytes, not seconds).
#
# Knobs (environment):
#   BULK=256M        bytes carried under the profiler (iperf3 -n)
#   NATIVE_BULK=2G   bytes carried by the native run that splits CPU time into user and kernel
#   DIR=up|down      up: plain→TLS, the sidecar encrypts (default); down: iperf3 -R, it decrypts
#   TOOL=perf|callgrind   force the profiler
#   TOP=12           functions listed per table
#   SKIP_BUILD=1     use target/release/tls-sidecar as it is
#   SKIP_INSTALL=1   do not apt-get anything
#   KEEP=1           keep the work directory (configs, logs, raw profile)
#   OUT=path         where the markdown goes (default benches/results/profile.md)
#
# Everything listens on 127.0.0.1 only; every process started here is
# stopped on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
T_START=$(date +%s)
BULK=${BULK:-256M}
NATIVE_BULK=${NATIVE_BULK:-2G}
DIR=${DIR:-up}
TOP=${TOP:-12}
OUT=${OUT:-$ROOT/benches/results/profile.md}
BIN=$ROOT/target/release/tls-sidecar
case "$DIR" in up | down) ;; *) echo "profile: DIR is up or down" >&2; exit 2 ;; esac

log() { printf '[%4ds] %s\n' $(($(date +%s) - T_START)) "$*" >&2; }

# ---------------------------------------------------------------- install
. "$ROOT/benches/lib.sh"
install_pkgs() { apt_install profile "nginx iperf3" "$@"; }
missing=()
for p in nginx iperf3 openssl python3; do command -v "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || missing+=(libnginx-mod-stream)
install_pkgs "${missing[@]}"

perf_counts() { # true if perf can count instructions here (not in most VMs)
  command -v perf >/dev/null 2>&1 || return 1
  local out
  out=$(perf stat -x, -e instructions true 2>&1) || return 1
  ! grep -qiE 'not supported|not counted|<not' <<<"$out" && grep -q instructions <<<"$out"
}
if [ -z "${TOOL:-}" ]; then
  command -v perf >/dev/null 2>&1 || install_pkgs linux-perf || true
  if perf_counts; then TOOL=perf; else TOOL=callgrind; fi
fi
case "$TOOL" in
  perf) perf_counts || { echo "profile: perf cannot count instructions here" >&2; exit 2; } ;;
  callgrind) command -v callgrind_annotate >/dev/null 2>&1 || install_pkgs valgrind ;;
  *) echo "profile: TOOL is perf or callgrind" >&2; exit 2 ;;
esac
log "profiler: $TOOL"

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  log "cargo build --release"
  cargo build --release --quiet
fi
[ -x "$BIN" ] || { echo "profile: $BIN not built" >&2; exit 2; }

# ---------------------------------------------------------------- processes
W=$(mktemp -d /tmp/tls-sidecar-profile.XXXXXX)
STARTED=()
cleanup() {
  local rc=$? p
  trap - EXIT INT TERM
  for p in "${STARTED[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${STARTED[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${KEEP:-0}" = 1 ]; then echo "profile: work directory kept: $W" >&2; else rm -rf "$W"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() { # name cmd... : in the background, log to $W/name.log
  local name=$1
  shift
  "$@" >"$W/$name.log" 2>&1 &
  STARTED+=("$!")
  LAST_PID=$!
}
wait_port() { # name pid port seconds
  for _ in $(seq $(($4 * 10))); do
    listening "$3" && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  echo "profile: $1 is not listening on 127.0.0.1:$3; its log:" >&2
  cat "$W/$1.log" >&2 2>/dev/null
  return 1
}

# Sums the bytes of the "connection closed" lines of a JSON log on stdin.
SUM_BYTES='
import json, sys
n = 0
for line in sys.stdin:
    try:
        f = json.loads(line)  # flattened: fields at the top level
    except ValueError:
        continue
    n += int(f.get("bytes_up", 0)) + int(f.get("bytes_down", 0))
print(n)'

# Ports: 24001 iperf3 -s, 24002 terminator (TLS), 24003 the sidecar's route.
P_BACK=24001 P_TLS=24002 P_ROUTE=24003

log "a CA and the terminator's certificate (ECDSA P-256) in $W"
make_certs "$W" "profile CA" -newkey ec -pkeyopt ec_paramgen_curve:P-256

cat >"$W/terminator.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes 1;
pid $W/terminator.pid;
error_log $W/terminator.err warn;
events { worker_connections 64; }
stream {
    ssl_certificate     $W/server.pem;
    ssl_certificate_key $W/server.key;
    ssl_protocols TLSv1.3;
    ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;
    server { listen 127.0.0.1:$P_TLS ssl; proxy_pass 127.0.0.1:$P_BACK; }
}
EOF
cat >"$W/tls-sidecar.toml" <<EOF
shutdown_grace = "1s"
[log]
level = "info"    # one line per connection, with the bytes it carried
format = "json"
[[route]]
name = "bulk"
listen = "127.0.0.1:$P_ROUTE"
connect = ["127.0.0.1:$P_TLS"]
[route.connect_tls]
start = "direct"
verify = "full"
server_name = "localhost"
ca = "$W/ca.pem"
EOF
"$BIN" check -c "$W/tls-sidecar.toml" >"$W/check.log" 2>&1 || { cat "$W/check.log" >&2; exit 1; }

log "starting iperf3 -s and the nginx terminator"
start iperf3 iperf3 -s -B 127.0.0.1 -p $P_BACK
wait_port iperf3 "$LAST_PID" $P_BACK 10
start terminator nginx -e "$W/terminator.err" -p "$W" -c "$W/terminator.conf" -g 'daemon off;'
wait_port terminator "$LAST_PID" $P_TLS 10

rev=()
[ "$DIR" = down ] && rev=(-R)

# First natively, for the split of its CPU time between user space and the
# kernel (what an instruction profile of user space cannot show).
log "native run: $NATIVE_BULK, CPU time from /proc"
start native "$BIN" run -c "$W/tls-sidecar.toml"
NATIVE=$LAST_PID
wait_port native "$NATIVE" $P_ROUTE 30
timeout 300 iperf3 -c 127.0.0.1 -p $P_ROUTE -n 4M -P 4 "${rev[@]}" >/dev/null 2>&1 || true
ticks() { awk '{print $14, $15}' "/proc/$1/stat"; } # utime stime, clock ticks
read -r U0 S0 < <(ticks "$NATIVE")
N_MARK=$(wc -l <"$W/native.log")
timeout 600 iperf3 -c 127.0.0.1 -p $P_ROUTE -n "$NATIVE_BULK" "${rev[@]}" -J >"$W/native-iperf3.json"
sleep 0.5
read -r U1 S1 < <(ticks "$NATIVE")
kill -TERM "$NATIVE"
wait "$NATIVE" 2>/dev/null || true
NATIVE_BYTES=$(tail -n +$((N_MARK + 1)) "$W/native.log" | python3 -c "$SUM_BYTES")
NATIVE_CPU="$((U1 - U0)) $((S1 - S0)) $(getconf CLK_TCK) $NATIVE_BYTES"
for _ in $(seq 50); do listening $P_ROUTE || break; sleep 0.1; done

log "starting the sidecar under $TOOL"
if [ "$TOOL" = callgrind ]; then
  # --collect-systime: the syscalls' count and kernel CPU time, per caller.
  start tls-sidecar valgrind --tool=callgrind --callgrind-out-file="$W/callgrind.out" \
    --collect-systime=nsec --instr-atstart=no "$BIN" run -c "$W/tls-sidecar.toml"
else
  start tls-sidecar perf record -q -e instructions -g -o "$W/perf.data" -- "$BIN" run -c "$W/tls-sidecar.toml"
fi
SIDECAR=$LAST_PID
wait_port tls-sidecar "$SIDECAR" $P_ROUTE 120

# Warm-up: a few connections over every worker thread first, so one-off
# costs (aws-lc seeding its random generators from CPU jitter, the metrics
# clock calibration, first handshakes) stay out of the profile, which
# starts from zero here.
log "warm-up: iperf3 -n 4M -P 4 ${rev[*]}"
timeout 600 iperf3 -c 127.0.0.1 -p $P_ROUTE -n 4M -P 4 "${rev[@]}" >"$W/warmup.log" 2>&1 || {
  echo "profile: the warm-up transfer failed:" >&2
  cat "$W/warmup.log" >&2
  exit 1
}
LOG_MARK=$(wc -l <"$W/tls-sidecar.log")
if [ "$TOOL" = callgrind ]; then
  callgrind_control -i on "$SIDECAR" >"$W/zero.log" 2>&1 || { echo "profile: callgrind_control -i on failed:" >&2; cat "$W/zero.log" >&2; exit 1; }
else
  ZERO_NOTE="perf counts from the start (no reset): the warm-up is included"
fi
log "iperf3 -n $BULK ${rev[*]} through the sidecar"
timeout 1800 iperf3 -c 127.0.0.1 -p $P_ROUTE -n "$BULK" "${rev[@]}" -J >"$W/iperf3.json"

log "stopping the sidecar (the profile is written at exit)"
if [ "$TOOL" = perf ]; then
  # perf forwards nothing: stop the sidecar under it, perf then exits.
  kill -TERM "$(pgrep -P "$SIDECAR" | head -n1)" 2>/dev/null || true
else
  kill -TERM "$SIDECAR"
fi
for _ in $(seq 600); do kill -0 "$SIDECAR" 2>/dev/null || break; sleep 0.1; done
wait "$SIDECAR" 2>/dev/null || true
# The bytes the sidecar itself carried while profiled, from its own log
# (iperf3's counts miss what was still in flight when its test ended).
BYTES=$(tail -n +$((LOG_MARK + 1)) "$W/tls-sidecar.log" | python3 -c "$SUM_BYTES")
[ "$BYTES" -gt 0 ] || { echo "profile: no connection with bytes in the sidecar log" >&2; exit 1; }

# ---------------------------------------------------------------- report
log "grouping the cost"
if [ "$TOOL" = callgrind ]; then
  # After a zeroing, the profile of interest is the last dump (at exit).
  CG=$(ls -1 "$W"/callgrind.out* | sort -t. -k3 -n | tail -n1)
  callgrind_annotate --threshold=100 --auto=no --inclusive=no "$CG" >"$W/self.txt" 2>/dev/null
  callgrind_annotate --threshold=100 --auto=no --inclusive=yes "$CG" >"$W/incl.txt" 2>/dev/null
  callgrind_annotate --threshold=100 --auto=no --inclusive=no --tree=caller "$CG" >"$W/callers.txt" 2>/dev/null
else
  perf report -i "$W/perf.data" --stdio --no-children -g none --percent-limit 0 --sort dso,symbol >"$W/self.txt" 2>/dev/null
  perf report -i "$W/perf.data" --stdio --children -g none --percent-limit 0 --sort dso,symbol >"$W/incl.txt" 2>/dev/null
  : >"$W/callers.txt"
fi
mkdir -p "$(dirname "$OUT")"
python3 - "$TOOL" "$W" "$BYTES" "$DIR" "$TOP" "$BULK" "$(git rev-parse --short HEAD 2>/dev/null || echo '?')" "${ZERO_NOTE:-}" "$NATIVE_CPU" >"$OUT" <<'EOF'
import re, sys
from collections import defaultdict

tool, w, nbytes, direction, top, bulk, rev, zero_note, native = sys.argv[1:10]
nbytes, top = int(nbytes), int(top)

AES, MEMCPY, SYS, RUSTLS, TOKIO, OURS, ALLOC, STARTUP, OTHER = (
    "AES-GCM (aws-lc)", "memcpy", "syscalls/kernel", "rustls", "tokio", "ours (tls_sidecar)",
    "allocator", "one-off start-up (RNG seeding, clock calibration)", "other (std, libc, handshake crypto, …)")
ORDER = [AES, MEMCPY, SYS, TOKIO, RUSTLS, OURS, ALLOC, STARTUP, OTHER]
CRATE = re.compile(r"^[<&\s]*(?:mut\s+|dyn\s+|const\s+)*([A-Za-z_][A-Za-z0-9_]*)::")

def group(fn, syscalls=0):
    """The group of a function (name without file or object)."""
    if syscalls > 0 or fn.endswith("[k]"):
        return SYS
    if re.search(r"jent_|jitterentropy|quanta::Calibration", fn):
        return STARTUP
    if re.search(r"^(__)?mem(cpy|move|set|cmp)|__mem(cpy|move|set)|^bcmp|copy_nonoverlapping|copy_from_slice", fn):
        return MEMCPY
    m = CRATE.match(fn)
    crate = m[1] if m else ""
    if crate in ("rustls", "tokio_rustls"):
        return RUSTLS
    if crate in ("tokio", "mio", "tokio_util"):
        return TOKIO
    if crate == "tls_sidecar":
        return OURS
    if re.search(r"aes|gcm|ghash|clmul|aead", fn, re.I):
        return AES
    if re.search(r"^(_int_)?(malloc|free|realloc|calloc|cfree)\b|^__rust_(alloc|dealloc|realloc)|^_int_free|^malloc_|^tcache|^unlink_chunk|^alloc::alloc|^__libc_(malloc|free|calloc|realloc)", fn):
        return ALLOC
    return OTHER

def num(x):
    return 0 if x == "." else int(x.replace(",", ""))

def bare(name):
    """'file:function [object]' -> 'function'."""
    name = re.sub(r" \[[^\]]*\]$", "", name.strip())
    name = re.sub(r" \([\d,]+x\)$", "", name)
    return re.sub(r"^[^:\s]*:(?!:)", "", name, count=1)

COL = r"([\d,]+|\.)(?: \(\s*[\d.]+%\))?\s+"
CG_LINE = re.compile(r"^\s*" + COL * 4 + r"(\S.*)$")

def parse_callgrind(path, inclusive=False):
    """{function: [Ir, syscalls, kernel ns]}, totals. A function inlined in
    several files has one line per file: self costs add up, inclusive ones
    overlap (the largest is kept)."""
    rows, totals = defaultdict(lambda: [0, 0, 0]), None
    for line in open(path, errors="replace"):
        m = CG_LINE.match(line)
        if not m:
            continue
        ir, calls, cpu, name = num(m[1]), num(m[2]), num(m[4]), m[5]
        if name.startswith("PROGRAM TOTALS"):
            totals = (ir, calls, cpu)
            continue
        r = rows[re.sub(r"'\d+$", "", bare(name))]
        if inclusive:
            r[0], r[1], r[2] = max(r[0], ir), max(r[1], calls), max(r[2], cpu)
        else:
            r[0] += ir; r[1] += calls; r[2] += cpu
    return rows, totals

PERF_LINE = re.compile(r"^\s*([\d.]+)%\s+(?:([\d.]+)%\s+)?(\S+)\s+\[([.k])\]\s+(.*)$")

def parse_perf(path, children):
    rows = defaultdict(lambda: [0.0, 0, 0])
    for line in open(path, errors="replace"):
        m = PERF_LINE.match(line)
        if m:
            pct = float(m[1]) if not children or m[2] is None else float(m[1])
            fn = m[5].strip() + (" [k]" if m[4] == "k" else "")
            rows[fn][0] += pct
    return rows, (100.0, 0, 0)

if tool == "callgrind":
    self_rows, totals = parse_callgrind(f"{w}/self.txt")
    incl_rows, _ = parse_callgrind(f"{w}/incl.txt", inclusive=True)
else:
    self_rows, totals = parse_perf(f"{w}/self.txt", False)
    incl_rows, _ = parse_perf(f"{w}/incl.txt", True)
total = totals[0] if totals else sum(r[0] for r in self_rows.values())
unit = "instructions" if tool == "callgrind" else "% of instructions"
fmt = (lambda c: f"{c:,.0f}") if tool == "callgrind" else (lambda c: f"{c:.2f}")

def pct(c):
    return f"{100 * c / total:.1f}%" if total else "—"

def short(fn, n=120):
    fn = re.sub(r"::h[0-9a-f]{16}\b", "", fn)
    return (fn if len(fn) <= n else fn[: n - 1] + "…").replace("|", "\\|")

groups = {bare_fn: group(bare_fn, r[1]) for bare_fn, r in self_rows.items()}
by_group = defaultdict(float)
for fn, r in self_rows.items():
    by_group[groups[fn]] += r[0]

out = []
p = out.append
p("# Where the sidecar's CPU goes (benches/profile.sh)\n")
what = "plain→TLS (the sidecar encrypts)" if direction == "up" else "TLS→plain (the sidecar decrypts)"
p(f"`iperf3 -c -n {bulk}`, one stream, {what}, through one route to an nginx TLS 1.3 terminator "
  f"(TLS_AES_128_GCM_SHA256); the sidecar carried **{nbytes:,} bytes** (its own count, from its log: iperf3 ends "
  f"its test with bytes still in flight). tls-sidecar `{rev}`, release build, under **{tool}**, counted after a "
  f"warm-up (the transfer's own connection set-up and handshake are included).\n")
nu, ns, hz, nb = (int(x) for x in native.split())
if nb:
    gib = nb / 2**30
    p(f"**Natively** (the same route without a profiler, {nb:,} bytes): {nu / hz / gib:.2f} s user + "
      f"{ns / hz / gib:.2f} s kernel per GiB carried, so **{100 * ns / max(nu + ns, 1):.0f}% of the sidecar's CPU "
      f"time is in the kernel** (system calls: socket reads and writes, epoll); clock ticks of "
      f"{1000 // hz} ms, so a short transfer is coarse. The rest of this page is user space only.\n")
if zero_note:
    p(f"Note: {zero_note}.\n")
if tool == "callgrind":
    sys_rows = sorted(((r[1], r[2], fn) for fn, r in self_rows.items() if r[1] > 0), reverse=True)
    clock = sum(c for c, _, fn in sys_rows if fn.startswith("clock_gettime"))
    real = totals[1] - clock
    p(f"Total: **{total:,} instructions** in user space, **{total / nbytes:.2f} per byte carried**; "
      f"{real:,} system calls besides clock_gettime ({nbytes / max(real, 1):,.0f} bytes carried per call); "
      f"{totals[2] / 1e6:,.0f} ms of kernel CPU time inside system calls. Under valgrind `clock_gettime` is a real "
      f"system call ({clock:,} of them; natively it is a vDSO call that never enters the kernel), and kernel times "
      f"are indicative only; instruction counts are repeatable.\n")
p("## By group, self cost\n")
p("A function's self cost excludes what it calls, and each function falls in one group, so the groups add up "
  "to the total. A generic function goes to the crate of its type (`<tls_sidecar::…::Stream as tokio::…>` is ours). "
  + ("syscalls/kernel is the user-space side of the system call wrappers; the kernel's work is the kernel CPU above "
     "and in the table of system calls." if tool == "callgrind" else "syscalls/kernel is every kernel sample.") + "\n")
p(f"| group | {unit} | share |")
p("|---|---:|---:|")
for g in ORDER:
    p(f"| {g} | {fmt(by_group.get(g, 0))} | {pct(by_group.get(g, 0))} |")

p(f"\n## Top {top} functions by self cost\n")
p(f"| {unit} | share | group | function |")
p("|---:|---:|---|---|")
for fn, r in sorted(self_rows.items(), key=lambda x: -x[1][0])[:top]:
    p(f"| {fmt(r[0])} | {pct(r[0])} | {groups[fn]} | `{short(fn)}` |")

if tool == "callgrind" and sys_rows:
    p("\n## System calls\n")
    p("| calls | kernel CPU ms | bytes carried per call | wrapper |")
    p("|---:|---:|---:|---|")
    for calls, cpu, fn in sys_rows[:top]:
        p(f"| {calls:,} | {cpu / 1e6:,.1f} | {nbytes / calls:,.0f} | `{short(fn)}` |")

p("\n## Top functions by inclusive cost, per group\n")
p("Inclusive: the function and all it calls. Shares overlap (the runtime's entry points are near 100%).\n")
for g in [OURS, RUSTLS, TOKIO, AES, MEMCPY]:
    rows = sorted(((r[0], fn) for fn, r in incl_rows.items() if group(fn) == g), reverse=True)[:max(5, top // 2)]
    if not rows:
        continue
    p(f"**{g}**\n")
    p(f"| {unit} | share | function |")
    p("|---:|---:|---|")
    for cost, fn in rows:
        p(f"| {fmt(cost)} | {pct(cost)} | `{short(fn)}` |")
    p("")

if tool == "callgrind":
    callers, pending = defaultdict(int), []
    rx = re.compile(r"^\s*([\d,]+|\.)(?: \(\s*[\d.]+%\))?.*?\s([<*>])\s+(\S.*)$")
    for line in open(f"{w}/callers.txt", errors="replace"):
        m = rx.match(line)
        if not m:
            pending = []
            continue
        kind, name = m[2], bare(m[3])
        if kind == "<":
            pending.append((num(m[1]), name))
        elif kind == "*":
            if group(name) == MEMCPY:
                for c, n in pending:
                    callers[n] += c
            pending = []
    if callers:
        p("## Who calls memcpy/memmove/memset\n")
        p(f"| {unit} in them | share | caller |")
        p("|---:|---:|---|")
        for n, c in sorted(callers.items(), key=lambda x: -x[1])[:max(5, top // 2)]:
            p(f"| {c:,} | {pct(c)} | `{short(n)}` |")
        p("")
print("\n".join(out))
EOF
cat "$OUT"
log "written to $OUT; done in $(($(date +%s) - T_START)) s"
