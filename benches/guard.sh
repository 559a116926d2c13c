#!/usr/bin/env bash
# The performance guard CI runs: the figures a noisy neighbour does not
# move, compared with the committed benches/baseline.toml. Fails (exit 1)
# when an instruction count rose by more than 5 % or the idle memory by
# more than 10 %, printing every figure, its baseline and the ratio.
#
#   bash benches/guard.sh                      # builds target/release itself
#   BIN=target/release/tls-sidecar bash benches/guard.sh
#   UPDATE=1 bash benches/guard.sh             # writes the figures into benches/baseline.toml
#
# Updating the baseline is a deliberate commit that says why the figures
# moved. The figures (one sidecar process per count, `workers = 1`):
#
#   keepalive_request   user-space instructions (valgrind's callgrind) per
#                       keep-alive HTTP request, plain → sidecar → TLS 1.3
#                       nginx `return 200` (as benches/keepalive-instructions.sh)
#   mib_plain_to_tls    per MiB carried plain → TLS (the sidecar encrypts)
#   mib_tls_to_plain    per MiB carried TLS → plain (the sidecar decrypts)
#   handshake_connect   per new connection with a full TLS 1.3 handshake on
#                       the connect side (ECDSA P-256, verify full, no resumption)
#   handshake_listen    the same on the listen side (listen_tls, resumption = false)
#   idle_kib_per_conn   RSS per idle relayed TLS connection, 2,000 held
#                       (measured natively, not under valgrind)
#
# Each count is taken twice, with a small and a larger workload, and the
# difference divided by the difference of the workloads, so the first
# connection's set-up and the measuring itself are left out. An instruction count does not
# depend on the machine's load; it still moves by a few tenths of a percent
# with how often a socket is found not ready.
#
# Needs valgrind, nginx, curl, openssl and python3 (installed through
# benches/lib.sh's apt_install; SKIP_INSTALL=1 refuses instead). Listens on
# 127.0.0.1 only (ports 24080, 24101-24104, 24200-24203, 24443); every
# process it starts is stopped on exit. About 2-3 minutes after the build.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
T0=$(date +%s)
log() { printf '[guard %4ds] %s\n' $(($(date +%s) - T0)) "$*" >&2; }
BASELINE=${BASELINE:-$ROOT/benches/baseline.toml}
IDLE_CONNS=${IDLE_CONNS:-2000}

. "$ROOT/benches/lib.sh"
missing=()
# (callgrind_control comes with valgrind)
for p in valgrind nginx curl openssl python3; do command -v "$p" >/dev/null 2>&1 || missing+=("$p"); done
apt_install guard nginx ${missing[@]+"${missing[@]}"}

if [ -z "${BIN:-}" ]; then
  log "cargo build --release"
  cargo build --release --quiet
  BIN=$ROOT/target/release/tls-sidecar
fi
[ -x "$BIN" ] || { echo "guard: $BIN is not an executable" >&2; exit 2; }

W=$(mktemp -d /tmp/tls-sidecar-guard.XXXXXX)
PIDS=()
cleanup() {
  local rc=$? p
  trap - EXIT INT TERM
  [ -e "$W/nginx.pid" ] && kill "$(cat "$W/nginx.pid")" 2>/dev/null
  for p in ${PIDS[@]+"${PIDS[@]}"}; do kill "$p" 2>/dev/null || true; done
  for p in ${PIDS[@]+"${PIDS[@]}"}; do wait "$p" 2>/dev/null || true; done
  if [ "${KEEP:-0}" = 1 ]; then echo "guard: work directory kept: $W" >&2; else rm -rf "$W"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Two descriptors per relayed connection in the sidecar, one per
# connection in the peer and in the holder.
raise_nofile guard "$IDLE_CONNS"

wait_listening() { # pid port...
  local pid=$1 p
  shift
  for p in "$@"; do
    for _ in $(seq 300); do listening "$p" && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    listening "$p" || { echo "guard: nothing listens on $p" >&2; cat "$W"/*.err >&2 2>/dev/null; return 1; }
  done
}

# ---------------------------------------------------------------- peers
log "peers: certificates, TLS 1.3 nginx for keep-alive, python TLS and plain servers"
make_certs "$W" "guard CA" -newkey ec -pkeyopt ec_paramgen_curve:P-256
keepalive_peer "$W" "workers = 1" # nginx on :24443, its route on :24080 (sc.toml)
PEER="python3 $ROOT/benches/guard_peer.py"
$PEER serve 24200 "$W/server.pem" "$W/server.key" 2>"$W/peer.err" &
PIDS+=($!)
wait_listening $! 24200 24201 24202 24203

# The keep-alive route of keepalive-instructions.sh, and four more.
cp "$W/sc.toml" "$W/guard.toml"
for r in "echo 24101 24200" "sink 24102 24201" "source 24103 24202"; do
  set -- $r
  cat >>"$W/guard.toml" <<EOF
[[route]]
name = "$1"
listen = "127.0.0.1:$2"
connect = ["127.0.0.1:$3"]
[route.connect_tls]
server_name = "localhost"
ca = "$W/ca.pem"
resumption = false
EOF
done
cat >>"$W/guard.toml" <<EOF
[[route]]
name = "terminate"
listen = "127.0.0.1:24104"
connect = ["127.0.0.1:24203"]
[route.listen_tls]
cert = "$W/server.pem"
key = "$W/server.key"
resumption = false
EOF
"$BIN" check -c "$W/guard.toml" >"$W/check.out" 2>&1 || { cat "$W/check.out" >&2; exit 2; }

# ---------------------------------------------------------------- counts
# One sidecar under callgrind for every count: valgrind's start-up is most
# of a short run's time. Each workload is one segment, ended by a dump
# (`callgrind_control -d`, which zeroes the counters): a segment's count is
# the user-space instructions since the previous dump, the dump's own
# small cost included (the same in every segment).
valgrind --tool=callgrind --callgrind-out-file="$W/cg.out" "$BIN" run -c "$W/guard.toml" 2>"$W/vg.err" &
CG=$!
PIDS+=($CG)
wait_listening $CG 24080 24101 24102 24103 24104
SEG=0
segment() { # CMD... : COUNT = the instructions of CMD's segment
  "$@" >/dev/null
  SEG=$((SEG + 1))
  callgrind_control -d "segment$SEG" $CG >/dev/null 2>&1
  for _ in $(seq 600); do [ -s "$W/cg.out.$SEG" ] && grep -q '^totals:' "$W/cg.out.$SEG" && break; sleep 0.1; done
  COUNT=$(awk '/^(summary|totals):/ { print $2; exit }' "$W/cg.out.$SEG")
  [ -n "$COUNT" ] || { echo "guard: no count in $W/cg.out.$SEG" >&2; exit 2; }
}
segment true # start-up

FIGS=$W/figures.tsv
: >"$FIGS"
# count NAME UNIT N1 N2 CMD...: (segment with N2 - segment with N1) / (N2 - N1) * UNIT,
# CMD run with N1 or N2 in place of {}.
count() {
  local name=$1 unit=$2 n1=$3 n2=$4 a b
  shift 4
  log "$name: ${*//\{\}/N} with N = $n1, then $n1 and $n2"
  # The first with N1 warms up (what a route's first connections set up
  # once); the second and the third are compared.
  segment "${@//\{\}/$n1}"
  segment "${@//\{\}/$n1}"
  a=$COUNT
  segment "${@//\{\}/$n2}"
  b=$COUNT
  printf '%s\t%s\n' "$name" "$(((b - a) * unit / (n2 - n1)))" >>"$FIGS"
}
curl_n() { curl -s -o /dev/null "http://127.0.0.1:24080/[1-$1]"; }
MIB=1048576

count keepalive_request 1 200 1200 curl_n {}
count mib_plain_to_tls $MIB $((2 * MIB)) $((18 * MIB)) $PEER up 24102 {}
count mib_tls_to_plain $MIB $((2 * MIB)) $((18 * MIB)) $PEER down 24103 {}
count handshake_connect 1 4 24 $PEER conns 24101 {}
count handshake_listen 1 4 24 $PEER tlsconns 24104 {} "$W/ca.pem"
kill -TERM $CG
wait $CG 2>/dev/null || true

# ---------------------------------------------------------------- memory
# As compare.sh's idle figure: a fresh sidecar, a warm-up of 20
# connections set up and torn down, then RSS with IDLE_CONNS held open.
log "idle_kib_per_conn: RSS with $IDLE_CONNS idle relayed TLS connections"
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
hold() { # n -> holder pid, once it holds them all
  : >"$W/hold.out"
  timeout 700 $PEER hold 24101 "$1" >"$W/hold.out" 2>"$W/hold.err" &
  HOLDER=$!
  PIDS+=($HOLDER)
  for _ in $(seq 3000); do
    [ -s "$W/hold.out" ] || ! kill -0 $HOLDER 2>/dev/null && break
    sleep 0.1
  done
  [ "$(head -n1 "$W/hold.out")" = "$1" ] || { echo "guard: the holder failed: $(tail -n1 "$W/hold.err")" >&2; exit 2; }
}
unhold() {
  kill $HOLDER 2>/dev/null || true
  wait $HOLDER 2>/dev/null || true
  for _ in $(seq 300); do [ "$(established 24101)" = 0 ] && return 0; sleep 0.1; done
}
"$BIN" run -c "$W/guard.toml" 2>"$W/sidecar.err" &
SC=$!
PIDS+=($SC)
wait_listening $SC 24101
hold 20
unhold
before=$(rss $SC)
hold "$IDLE_CONNS"
sleep 1
after=$(rss $SC)
unhold
kill -TERM $SC
wait $SC 2>/dev/null || true
printf 'idle_kib_per_conn\t%s\n' "$(awk -v a="$after" -v b="$before" -v n="$IDLE_CONNS" 'BEGIN { printf "%.2f", (a - b) / n }')" >>"$FIGS"

# ---------------------------------------------------------------- verdict
python3 - "$FIGS" "$BASELINE" "${UPDATE:-0}" "$("$BIN" --version 2>&1 | head -n1)" <<'EOF'
import sys, tomllib
figs_path, base_path, update, version = sys.argv[1:5]
figs = dict(l.rstrip("\n").split("\t") for l in open(figs_path))
# figure: (table, allowed rise, unit)
SPEC = {
    "keepalive_request": ("instructions", 0.05, "instructions per keep-alive request"),
    "mib_plain_to_tls": ("instructions", 0.05, "instructions per MiB plain→TLS"),
    "mib_tls_to_plain": ("instructions", 0.05, "instructions per MiB TLS→plain"),
    "handshake_connect": ("instructions", 0.05, "instructions per full handshake, connect side"),
    "handshake_listen": ("instructions", 0.05, "instructions per full handshake, listen side"),
    "idle_kib_per_conn": ("memory", 0.10, "RSS KiB per idle relayed TLS connection (2,000)"),
}
if update == "1":
    with open(base_path, "w") as f:
        f.write("# The figures benches/guard.sh holds the build to (CI fails on a rise of more than\n")
        f.write("# 5 % in instructions, 10 % in memory). Written by `UPDATE=1 bash benches/guard.sh`;\n")
        f.write("# change it only in a commit that says why the figures moved.\n")
        f.write(f"# Measured with {version}.\n")
        for table in ("instructions", "memory"):
            f.write(f"\n[{table}]\n")
            for k, (t, _, what) in SPEC.items():
                if t == table:
                    f.write(f"{k} = {figs[k]}  # {what}\n")
    print(f"guard: wrote {base_path}")
base = tomllib.load(open(base_path, "rb"))
worse = []
print(f"{'figure':<20} {'now':>14} {'baseline':>14} {'ratio':>7}  limit")
for k, (table, allowed, what) in SPEC.items():
    now, was = float(figs[k]), float(base[table][k])
    ratio = now / was
    bad = ratio > 1 + allowed
    mark = "RISE" if bad else ("lower: update the baseline?" if ratio < 1 - allowed else "ok")
    print(f"{k:<20} {now:>14,.2f} {was:>14,.2f} {ratio:>6.3f}×  ≤{1 + allowed:.2f}× {mark}  ({what})")
    if bad:
        worse.append(k)
if worse:
    print(f"guard: FAILED: {', '.join(worse)} rose past the baseline (benches/baseline.toml)")
    sys.exit(1)
print("guard: every figure within its limit")
EOF
log "done"
