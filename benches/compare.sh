#!/usr/bin/env bash
# The comparison of issue 7: tls-sidecar against the TLS originators an
# operator would otherwise use, on loopback, through one shared TLS
# terminator, figure by figure, in one table with ratios.
#
#   bash benches/compare.sh                 # full run (under 10 minutes on 2 cores)
#   QUICK=1 bash benches/compare.sh         # tiny sizes: checks the apparatus, numbers mean little
#   ONLY=tls-sidecar,haproxy-tls bash benches/compare.sh
#
# Topology, the same for every originator (one originator runs at a time):
#
#   client ──plain──▶ originator ──TLS 1.3──▶ nginx terminator ──plain──▶ backend
#   (iperf3 -c,        (under test)            (stream, AES-128-GCM,        (iperf3 -s, sockperf server,
#    sockperf, wrk,                             no resumption except on     nginx `return 200`,
#    idle holder)                               the "resumable" port)       an echo server)
#
# haproxy-plain talks plain TCP to plain ports of the same terminator: the
# same hops without TLS, the copy-only floor.
#
# Inbound, the other way round: the terminator is under test (one at a
# time) and the originator is fixed, an nginx stream with `proxy_ssl on`:
#
#   client ──plain──▶ nginx originator ──TLS 1.3──▶ terminator ──plain──▶ backend
#                     (fixed: AES-128-GCM,           (under test: tls-sidecar
#                      session reuse only on the      listen_tls, nginx `ssl`,
#                      "resumable" port)              HAProxy `bind … ssl crt`)
#
# Every terminator has resumption off (tls-sidecar `resumption = false`;
# nginx ssl_session_cache off + ssl_session_tickets off; HAProxy
# no-tls-tickets + tune.ssl.cachesize 0) except on the resumable port.
#
# Knobs (environment):
#   QUICK=1          tiny sizes and durations (validation only)
#   FIGURES=a,b      figures to take (default all): idle bulk ping newconn resumed keepalive scale
#   ONLY=a,b         originators to run: tls-sidecar haproxy-plain haproxy-tls nginx-stream stunnel socat
#   INBOUND=a,b      terminators to run (inbound table): tls-sidecar nginx haproxy; INBOUND= for none
#   KEY=ec|rsa       terminator certificate key: ECDSA P-256 (default) or RSA 2048
#   ROUNDS=3         rounds of the noisy figures, originators in turn; the table shows medians
#   BULK=512M        bytes per bulk transfer (iperf3 -n)
#   SECS=3           seconds per wrk figure; PP_SECS=2 seconds per ping-pong figure
#   IDLE_CONNS=2000  idle connections held for the memory figure
#   SCALE_STREAMS="1 4 16 64"  tls-sidecar only: plain→TLS bulk again at these stream counts,
#   SCALE_BULK=2G              SCALE_BULK bytes in all (round 1, after its other figures)
#   SCALE_CONNS=10000      tls-sidecar only: idle memory again at this many connections (capped to
#                          what the open-file limit allows: two descriptors per connection)
#   SKIP_BUILD=1     use target/release/tls-sidecar as it is
#   BIN=path         the tls-sidecar binary to measure (with SKIP_BUILD=1: A/B of two builds)
#   SKIP_INSTALL=1   do not apt-get anything
#   KEEP=1           keep the work directory (configs, logs, raw outputs)
#   OUT=path         where the markdown goes (default benches/results/latest.md;
#                    benches/results/quick.md with QUICK=1)
#
# Everything listens on 127.0.0.1 only, every transfer is bounded in bytes
# or seconds, and every process started here is stopped on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
T_START=$(date +%s)

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
  BULK=${BULK:-64M} SECS=${SECS:-1} PP_SECS=${PP_SECS:-1} IDLE_CONNS=${IDLE_CONNS:-200} SCALE_CONNS=${SCALE_CONNS:-1000}
else
  BULK=${BULK:-512M} SECS=${SECS:-3} PP_SECS=${PP_SECS:-2} IDLE_CONNS=${IDLE_CONNS:-2000} SCALE_CONNS=${SCALE_CONNS:-10000}
fi
# Rounds: every originator's throughput, latency and connection figures are
# taken ROUNDS times, the originators in turn (round 1 all of them, then
# round 2 in reverse order, ...), and the table shows each figure's median. This machine is
# shared: a neighbour's burst hits whichever originator runs at that moment,
# and one round alone can swing a figure by 2-3x. Idle memory and the
# sidecar's scale figures are taken in round 1 only (they are not noisy).
ROUNDS=${ROUNDS:-$([ "$QUICK" = 1 ] && echo 1 || echo 3)}
KEY=${KEY:-ec}
SCALE_STREAMS=${SCALE_STREAMS:-1 4 16 64}
SCALE_BULK=${SCALE_BULK:-$([ "$QUICK" = 1 ] && echo "$BULK" || echo 2G)}
ALL_ORIGINATORS=(tls-sidecar haproxy-plain haproxy-tls nginx-stream stunnel socat)
ONLY=${ONLY:-$(IFS=,; echo "${ALL_ORIGINATORS[*]}")}
ALL_TERMINATORS=(tls-sidecar nginx haproxy)
INBOUND=${INBOUND-$(IFS=,; echo "${ALL_TERMINATORS[*]}")}
ALL_FIGURES=idle,bulk,ping,newconn,resumed,keepalive,scale
FIGURES=${FIGURES:-$ALL_FIGURES}
want() { case ",$FIGURES," in *",$1,"*) return 0 ;; esac; return 1; } # figure
# A QUICK run never overwrites the full run's table.
if [ "$QUICK" = 1 ]; then OUT=${OUT:-$ROOT/benches/results/quick.md}; else OUT=${OUT:-$ROOT/benches/results/latest.md}; fi
BIN=${BIN:-$ROOT/target/release/tls-sidecar}

IFS=, read -r -a ORIGINATORS <<<"$ONLY"
for o in "${ORIGINATORS[@]}"; do
  case " ${ALL_ORIGINATORS[*]} " in *" $o "*) ;; *) echo "compare: unknown originator '$o' (known: ${ALL_ORIGINATORS[*]})" >&2; exit 2 ;; esac
done
IFS=, read -r -a TERMINATORS <<<"$INBOUND"
for o in ${TERMINATORS[@]+"${TERMINATORS[@]}"}; do
  case " ${ALL_TERMINATORS[*]} " in *" $o "*) ;; *) echo "compare: unknown terminator '$o' (known: ${ALL_TERMINATORS[*]})" >&2; exit 2 ;; esac
done

# The figures are only comparable on a quiet machine: note any build seen
# running at a step (the table then says so).
BUSY=no
busy() { pgrep -x cargo >/dev/null || pgrep -x rustc >/dev/null; }
log() {
  if [ -n "${W:-}" ] && [ "$BUSY" = no ] && busy; then
    BUSY=yes
    printf 'compare: WARNING: a cargo/rustc build is running: the figures will be noisy\n' >&2
  fi
  printf '[%4ds] %s\n' $(($(date +%s) - T_START)) "$*" >&2
}

# ---------------------------------------------------------------- install
. "$ROOT/benches/lib.sh"
need_pkgs() {
  local -A cmd=([haproxy]=haproxy [nginx]=nginx [stunnel4]=stunnel4 [socat]=socat [iperf3]=iperf3
    [wrk]=wrk [sockperf]=sockperf [openssl]=openssl [python3]=python3 [procps]=pgrep [iproute2]=ss)
  local missing=() p
  for p in "${!cmd[@]}"; do command -v "${cmd[$p]}" >/dev/null 2>&1 || missing+=("$p"); done
  # nginx's stream module is a separate package on Debian.
  [ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || missing+=(libnginx-mod-stream)
  apt_install compare "haproxy nginx stunnel4 iperf3" ${missing[@]+"${missing[@]}"}
  [ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || { echo "compare: ngx_stream_module not found" >&2; exit 2; }
}
need_pkgs

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  log "cargo build --release"
  cargo build --release --quiet
fi
[ -x "$BIN" ] || { echo "compare: $BIN not built" >&2; exit 2; }
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- processes
W=$(mktemp -d /tmp/tls-sidecar-compare.XXXXXX)
STARTED=() # pids of every process started here (each one's descendants go with it)

# The process trees under given pids, read from /proc in one pass (socat
# forks a process per connection: thousands of them in the idle figure).
cat >"$W/procs.py" <<'EOF'
import os, sys
what, roots = sys.argv[1], [int(p) for p in sys.argv[2:]]
stat, kids = {}, {}
for d in os.listdir("/proc"):
    if d.isdigit():
        try:
            s = open(f"/proc/{d}/stat").read()
        except OSError:
            continue
        f = s[s.rindex(")") + 2:].split()  # f[0] is field 3 (state)
        stat[int(d)] = f
        kids.setdefault(int(f[1]), []).append(int(d))
tree, todo = [], [p for p in roots if p in stat]
while todo:
    p = todo.pop()
    tree.append(p)
    todo.extend(kids.get(p, []))
def mem(p, field):
    path = f"/proc/{p}/smaps_rollup" if field == "Pss" else f"/proc/{p}/status"
    try:
        for line in open(path):
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
if what == "pids":
    print(" ".join(map(str, tree)))
elif what == "cpu":  # utime + stime + cutime + cstime, in clock ticks
    print(sum(sum(int(x) for x in stat[p][11:15]) for p in tree))
else:  # VmRSS or Pss, KiB
    print(sum(mem(p, what) for p in tree))
EOF
descendants() { [ $# -gt 0 ] && python3 "$W/procs.py" pids "$@"; }

stop_pids() { # TERM the trees, then KILL what is left after 5 s
  local pids=() p i alive
  pids=($(descendants "$@"))
  [ ${#pids[@]} -gt 0 ] || return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for i in $(seq 50); do
    alive=0
    for p in "${pids[@]}"; do
      [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null || echo Z)" != Z ] && { alive=1; break; }
    done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  kill -KILL "${pids[@]}" 2>/dev/null || true
  for p in "$@"; do wait "$p" 2>/dev/null || true; done
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ ${#STARTED[@]} -gt 0 ] && stop_pids "${STARTED[@]}"
  if [ "${KEEP:-0}" = 1 ]; then echo "compare: work directory kept: $W" >&2; else rm -rf "$W"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Open files: 2 per relayed connection in the originator and the terminator.
raise_nofile compare "$IDLE_CONNS"

# Connections an originator may hold: two descriptors each, within the limit.
MAXCONN=$((($(ulimit -n) - 256) / 2))
# The scale figure's connections, within the limit (and the terminator's,
# whose nginx workers cannot go past it either), in hundreds.
if [ "$(ulimit -n)" != unlimited ] && [ "$SCALE_CONNS" -gt $((MAXCONN / 100 * 100)) ]; then
  echo "compare: open-file limit $(ulimit -n) (hard $(ulimit -Hn)): the scale figure holds $((MAXCONN / 100 * 100)) idle connections, not $SCALE_CONNS" >&2
  SCALE_CONNS=$((MAXCONN / 100 * 100))
fi
NOFILE=$(ulimit -n)
[ "$NOFILE" = unlimited ] && NOFILE=65536

wait_ports() { # name pid port... (gives up early if pid has exited)
  local name=$1 pid=$2 p i
  shift 2
  for p in "$@"; do
    for i in $(seq 100); do listening "$p" && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    listening "$p" || { echo "compare: $name is not listening on 127.0.0.1:$p; its log:" >&2; cat "$W/$name.log" >&2 2>/dev/null; return 1; }
  done
}

# CPU ticks (utime+stime, plus children already reaped: cutime+cstime) of
# the trees under the given pids. Threads are included in a process's line.
cpu_ticks() { python3 "$W/procs.py" cpu "$@"; }
HZ=$(getconf CLK_TCK)

# VmRSS (from status) or Pss (from smaps_rollup) summed over the trees, KiB.
mem_kib() { python3 "$W/procs.py" "$@"; }

# ---------------------------------------------------------------- ports
# Backends: 21001 iperf3, 21002 sockperf, 21003 http, 21004 echo.
# Terminator: TLS 2200k -> 2100k (k = 1..4), 22005 TLS with resumption -> http;
#             plain 2210k -> 2100k, 22105 plain -> http.
# Originator number i listens on 23i0k, k = 1..5, forwarding to 2200k (or 2210k).
ROUTES=(1 2 3 4 5)
BACKEND=([1]=21001 [2]=21002 [3]=21003 [4]=21004 [5]=21003)
R_BULK=1 R_PING=2 R_HTTP=3 R_ECHO=4 R_RESUME=5

# ---------------------------------------------------------------- PKI
log "making a CA and the terminator's certificate ($KEY) in $W"
if [ "$KEY" = rsa ]; then KEYARGS=(-newkey rsa:2048); else KEYARGS=(-newkey ec -pkeyopt ec_paramgen_curve:P-256); fi
make_certs "$W" "compare CA" "${KEYARGS[@]}"
CA=$W/ca.pem

# ---------------------------------------------------------------- helpers (Python)
cat >"$W/echo.py" <<'EOF'
# Echo server: every byte read is written back.
import asyncio, sys
async def serve(r, w):
    try:
        while True:
            d = await r.read(65536)
            if not d:
                break
            w.write(d)
            await w.drain()
    except OSError:
        pass
    finally:
        w.close()
async def main():
    srv = await asyncio.start_server(serve, "127.0.0.1", int(sys.argv[1]), backlog=4096)
    async with srv:
        await srv.serve_forever()
asyncio.run(main())
EOF
cat >"$W/hold.py" <<'EOF'
# Opens N connections, one byte round trip on each (so every hop is fully
# set up, TLS included), prints N and holds them until killed (at most 10 min).
import socket, sys, time
n, port = int(sys.argv[1]), int(sys.argv[2])
held = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"x")
    if s.recv(1) != b"x":
        sys.exit("no echo")
    held.append(s)
print(len(held), flush=True)
time.sleep(600)
EOF

# ---------------------------------------------------------------- shared servers
start() { # name cmd... : start a process in the background, log to $W/name.log
  local name=$1
  shift
  "$@" >"$W/$name.log" 2>&1 &
  STARTED+=($!)
  LAST_PID=$!
}

cat >"$W/terminator.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes auto;
worker_rlimit_nofile $NOFILE;
pid $W/terminator.pid;
error_log $W/terminator.err warn;
events { worker_connections $((NOFILE - 500)); }
stream {
    ssl_certificate     $W/server.pem;
    ssl_certificate_key $W/server.key;
    ssl_protocols TLSv1.3;
    ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256;
    ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;
    # Every handshake is a full one, except on the resumable port.
    ssl_session_tickets off;
    ssl_session_cache off;
$(for k in 1 2 3 4; do printf '    server { listen 127.0.0.1:2200%s ssl; proxy_pass 127.0.0.1:%s; }\n' "$k" "${BACKEND[$k]}"; done)
    server { listen 127.0.0.1:22005 ssl; proxy_pass 127.0.0.1:21003;
             ssl_session_tickets on; ssl_session_cache shared:resume:10m; }
$(for k in 1 2 3 4 5; do printf '    server { listen 127.0.0.1:2210%s; proxy_pass 127.0.0.1:%s; }\n' "$k" "${BACKEND[$k]}"; done)
}
http {
    access_log off;
    keepalive_requests 1000000;
    server { listen 127.0.0.1:21003; location / { return 200 "ok\n"; } }
}
EOF
log "starting the backends and the terminator"
start iperf3 iperf3 -s -B 127.0.0.1 -p 21001
start sockperf sockperf server --tcp -i 127.0.0.1 -p 21002
start echo python3 "$W/echo.py" 21004
start terminator nginx -e "$W/terminator.err" -p "$W" -c "$W/terminator.conf" -g 'daemon off;'
wait_ports terminator $LAST_PID 21003 22001 22002 22003 22004 22005 22101 22102 22103 22104 22105
wait_ports iperf3 "${STARTED[0]}" 21001
wait_ports sockperf "${STARTED[1]}" 21002
wait_ports echo "${STARTED[2]}" 21004

# ---------------------------------------------------------------- originators
# Each writes its config for listen ports $1k and starts, setting ORIG_PIDS.
orig_port() { echo $((23000 + $1 * 100 + $2)); } # originator-number route

start_tls_sidecar() {
  local i=$1 k
  {
    echo 'shutdown_grace = "1s"'
    echo '[log]'
    echo 'level = "warn"   # as quiet as the peers: no line per connection'
    echo '[defaults]'
    echo "max_connections = $MAXCONN"
    for k in "${ROUTES[@]}"; do
      cat <<EOF
[[route]]
name = "r$k"
listen = "127.0.0.1:$(orig_port "$i" "$k")"
connect = ["127.0.0.1:2200$k"]
[route.connect_tls]
start = "direct"
verify = "full"
server_name = "localhost"
ca = "$CA"
EOF
    done
  } >"$W/tls-sidecar.toml"
  "$BIN" check -c "$W/tls-sidecar.toml" >"$W/tls-sidecar.check" 2>&1 || { cat "$W/tls-sidecar.check" >&2; return 1; }
  start tls-sidecar "$BIN" run -c "$W/tls-sidecar.toml"
  ORIG_PIDS=($LAST_PID)
}

haproxy_conf() { # i tls(0|1)
  local i=$1 tls=$2 k
  cat <<EOF
global
    maxconn $MAXCONN
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
    maxconn $MAXCONN
EOF
  for k in "${ROUTES[@]}"; do
    echo "listen r$k"
    echo "    bind 127.0.0.1:$(orig_port "$i" "$k")"
    if [ "$tls" = 1 ]; then
      echo "    server s 127.0.0.1:2200$k ssl verify required ca-file $CA sni str(localhost) verifyhost localhost"
    else
      echo "    server s 127.0.0.1:2210$k"
    fi
  done
}
start_haproxy_plain() {
  haproxy_conf "$1" 0 >"$W/haproxy-plain.cfg"
  start haproxy-plain haproxy -db -f "$W/haproxy-plain.cfg"
  ORIG_PIDS=($LAST_PID)
}
start_haproxy_tls() {
  haproxy_conf "$1" 1 >"$W/haproxy-tls.cfg"
  start haproxy-tls haproxy -db -f "$W/haproxy-tls.cfg"
  ORIG_PIDS=($LAST_PID)
}

start_nginx_stream() {
  local i=$1 k
  cat >"$W/nginx-stream.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes auto;
worker_rlimit_nofile 20000;
pid $W/nginx-stream.pid;
error_log $W/nginx-stream.err warn;
events { worker_connections 16384; }
stream {
    proxy_ssl on;
    proxy_ssl_verify on;
    proxy_ssl_trusted_certificate $CA;
    proxy_ssl_name localhost;
    proxy_ssl_server_name on;
    proxy_ssl_protocols TLSv1.2 TLSv1.3;
$(for k in "${ROUTES[@]}"; do printf '    server { listen 127.0.0.1:%s; proxy_pass 127.0.0.1:2200%s; }\n' "$(orig_port "$i" "$k")" "$k"; done)
}
EOF
  start nginx-stream nginx -e "$W/nginx-stream.err" -p "$W" -c "$W/nginx-stream.conf" -g 'daemon off;'
  ORIG_PIDS=($LAST_PID)
}

start_stunnel() {
  local i=$1 k
  {
    echo "foreground = yes"
    echo "pid ="
    echo "syslog = no"
    echo "debug = 3"
    echo "socket = l:TCP_NODELAY=1"
    echo "socket = r:TCP_NODELAY=1"
    for k in "${ROUTES[@]}"; do
      cat <<EOF
[r$k]
client = yes
accept = 127.0.0.1:$(orig_port "$i" "$k")
connect = 127.0.0.1:2200$k
verifyChain = yes
CAfile = $CA
checkHost = localhost
sni = localhost
EOF
    done
  } >"$W/stunnel.conf"
  start stunnel stunnel "$W/stunnel.conf"
  ORIG_PIDS=($LAST_PID)
}

start_socat() {
  local i=$1 k
  ORIG_PIDS=()
  for k in "${ROUTES[@]}"; do
    start "socat-r$k" socat "TCP-LISTEN:$(orig_port "$i" "$k"),bind=127.0.0.1,reuseaddr,fork,backlog=1024,nodelay" \
      "OPENSSL:127.0.0.1:2200$k,cafile=$CA,verify=1,commonname=localhost,nodelay"
    ORIG_PIDS+=($LAST_PID)
  done
  ln -sf "$W/socat-r1.log" "$W/socat.log"
}

# ---------------------------------------------------------------- figures
RESULTS=$W/results.tsv
: >"$RESULTS"
put() { printf '%s\t%s\t%s\n' "$ORIG" "$1" "$2" >>"$RESULTS"; } # metric value

hold() { # n port out : start a holder of n idle connections, wait until it holds them all
  local n=$1 port=$2 out=$3 got
  # Empty first: the loop below must not read an earlier holder's count.
  : >"$out"
  : >"$out.err"
  timeout 700 python3 "$W/hold.py" "$n" "$port" >"$out" 2>"$out.err" &
  HOLDER=$!
  STARTED+=($HOLDER)
  for _ in $(seq 3000); do
    if [ -s "$out" ] || ! kill -0 "$HOLDER" 2>/dev/null; then break; fi
    sleep 0.1
  done
  got=$(head -n1 "$out" 2>/dev/null || true)
  [ "$got" = "$n" ] && return 0
  log "  idle: the holder opened ${got:-no} connections of $n: $(tail -n1 "$out.err" 2>/dev/null)"
  unhold
  return 1
}
unhold() { kill "$HOLDER" 2>/dev/null; wait "$HOLDER" 2>/dev/null || true; }

fig_idle() { # port [n] : idle memory per connection (n: IDLE_CONNS; another n adds _n to the names)
  # Run on a freshly started originator: measured against its memory after
  # a warm-up of a few connections set up and torn down.
  local port=$1 n=${2:-$IDLE_CONNS} sfx="" before after pss0 pss1
  [ "$n" != "$IDLE_CONNS" ] && sfx=_$n
  hold 20 "$port" "$W/warm.out" || return 1
  unhold
  settle "$port"
  before=$(mem_kib VmRSS "${ORIG_PIDS[@]}") pss0=$(mem_kib Pss "${ORIG_PIDS[@]}")
  hold "$n" "$port" "$W/hold.out" || return 1
  sleep 1
  after=$(mem_kib VmRSS "${ORIG_PIDS[@]}")
  pss1=$(mem_kib Pss "${ORIG_PIDS[@]}")
  put "idle_rss_kib_per_conn$sfx" "$(awk -v a="$after" -v b="$before" -v n="$n" 'BEGIN{printf "%.1f", (a-b)/n}')"
  put "idle_pss_kib_per_conn$sfx" "$(awk -v a="$pss1" -v b="$pss0" -v n="$n" 'BEGIN{printf "%.1f", (a-b)/n}')"
  put "idle_rss_mib_at_$n" "$(awk -v a="$after" 'BEGIN{printf "%.1f", a/1024}')"
  put "idle_rss_kib_before$sfx" "$before"
  unhold
  settle "$port"
}

settle() { # wait (at most 30 s) until the originator has no client connection left on port
  local i
  for i in $(seq 300); do [ "$(established "$1")" = 0 ] && return 0; sleep 0.1; done
  log "  connections on $1 still open after 30 s"
}

fig_bulk() { # port streams dir(up|down) [bytes [prefix]] : CPU s per GiB
  local port=$1 streams=$2 dir=$3 bytes=${4:-$BULK} prefix=${5:-} c0 c1 rev=() json=$W/iperf-$ORIG-$2-$3${5:+-$5}.json
  [ "$dir" = down ] && rev=(-R)
  c0=$(cpu_ticks "${ORIG_PIDS[@]}")
  timeout 300 iperf3 -c 127.0.0.1 -p "$port" -n "$bytes" -P "$streams" "${rev[@]}" -J >"$json" 2>&1 || {
    log "  iperf3 -P $streams ${rev[*]} failed: $(grep -o '"error":.*' "$json" | head -n1)"
    return 1
  }
  c1=$(cpu_ticks "${ORIG_PIDS[@]}")
  python3 - "$json" "$c0" "$c1" "$HZ" "$streams" "$dir" "$prefix" >>"$RESULTS.tmp" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
c0, c1, hz, streams, d, pre = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6], sys.argv[7]
s = j["end"]["sum_received"]
gib = s["bytes"] / 2**30
print(f"{pre}cpu_s_per_gib_{d}_{streams}\t{(c1 - c0) / hz / gib:.3f}")
print(f"{pre}gbit_s_{d}_{streams}\t{s['bits_per_second'] / 1e9:.2f}")
EOF
  while IFS=$'\t' read -r m v; do put "$m" "$v"; done <"$RESULTS.tmp"
  rm -f "$RESULTS.tmp"
}

fig_ping() { # port size : RTT avg and p99, microseconds
  local port=$1 size=$2 out=$W/sockperf-$ORIG-$2.txt avg p99
  timeout $((PP_SECS + 30)) sockperf ping-pong --tcp -i 127.0.0.1 -p "$port" -m "$size" -t "$PP_SECS" \
    --full-rtt --mps=max >"$out" 2>&1 || { log "  sockperf -m $size failed: $(tail -n1 "$out")"; return 1; }
  avg=$(sed 's/\x1b\[[0-9;]*m//g' "$out" | grep -o 'avg-rtt=[0-9.]*' | cut -d= -f2)
  p99=$(sed 's/\x1b\[[0-9;]*m//g' "$out" | awk '/percentile 99.000 =/ {print $NF}')
  [ -n "$avg" ] && [ -n "$p99" ] || { log "  sockperf -m $size: no result"; return 1; }
  put "rtt_avg_us_$size" "$avg"
  put "rtt_p99_us_$size" "$p99"
}

fig_wrk() { # port name extra-args... : requests/s and CPU microseconds per request
  local port=$1 name=$2 c0 c1 t0 t1 out=$W/wrk-$ORIG-$2.txt reqs rate errs
  shift 2
  c0=$(cpu_ticks "${ORIG_PIDS[@]}")
  timeout $((SECS + 30)) wrk -t 1 -c 16 -d "${SECS}s" "$@" "http://127.0.0.1:$port/" >"$out" 2>&1 || {
    log "  wrk $name failed: $(tail -n1 "$out")"
    return 1
  }
  c1=$(cpu_ticks "${ORIG_PIDS[@]}")
  reqs=$(awk '/requests in/ {print $1}' "$out")
  rate=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  errs=$(awk '/Socket errors|Non-2xx/ {sub(/^ */, ""); printf "%s; ", $0}' "$out")
  [ -n "$errs" ] && log "  wrk $name: $errs"
  [ -n "$reqs" ] && [ "$reqs" -gt 0 ] || { log "  wrk $name: no requests"; return 1; }
  put "${name}_per_s" "$rate"
  put "${name}_cpu_us" "$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v n="$reqs" 'BEGIN{printf "%.1f", c / hz * 1e6 / n}')"
  [ -n "$errs" ] && put "${name}_errors" "${errs%; }"
  return 0
}

run_originator() {
  local i=$1 k fn ports=()
  ORIG=${ORIGINATORS_ALL_NAMES[$i]}
  fn=start_${ORIG//-/_}
  log "$ORIG: starting (round $ROUND of $ROUNDS)"
  if ! "$fn" "$i"; then log "$ORIG: could not start"; put start failed; return 0; fi
  for k in "${ROUTES[@]}"; do ports+=("$(orig_port "$i" "$k")"); done
  if ! wait_ports "$ORIG" "${ORIG_PIDS[0]}" "${ports[@]}"; then put start failed; stop_pids "${ORIG_PIDS[@]}"; return 0; fi
  local p_bulk p_ping p_http p_echo p_resume
  p_bulk=$(orig_port "$i" $R_BULK) p_ping=$(orig_port "$i" $R_PING) p_http=$(orig_port "$i" $R_HTTP)
  p_echo=$(orig_port "$i" $R_ECHO) p_resume=$(orig_port "$i" $R_RESUME)
  run_figures "$p_bulk" "$p_ping" "$p_http" "$p_echo" "$p_resume"
  if [ "$ORIG" = tls-sidecar ] && [ "$ROUND" = 1 ] && want scale; then
    run_scale "$i" "$p_bulk" "$p_echo"
  fi
  stop_pids "${ORIG_PIDS[@]}"
  # Let the last connections' TIME_WAIT and sockets of this run go quiet.
  sleep 1
}

# run_figures PORT... : every figure through the given client-side ports
# (bulk ping http echo resumable) against ORIG, whose processes are ORIG_PIDS.
run_figures() {
  local p_bulk=$1 p_ping=$2 p_http=$3 p_echo=$4 p_resume=$5
  if [ "$ROUND" = 1 ] && want idle; then
    log "$ORIG: idle memory, $IDLE_CONNS connections"
    fig_idle "$p_echo" || put idle_rss_kib_per_conn fail
  fi
  local dir s
  want bulk && for dir in up down; do
    for s in 1 4; do
      log "$ORIG: bulk $dir, $s stream(s), $BULK"
      fig_bulk "$p_bulk" "$s" "$dir" || put "cpu_s_per_gib_${dir}_$s" fail
    done
  done
  want ping && for s in 64 1024; do
    log "$ORIG: ping-pong $s B, ${PP_SECS}s"
    fig_ping "$p_ping" "$s" || put "rtt_avg_us_$s" fail
  done
  if want newconn; then
    log "$ORIG: new connections, ${SECS}s"
    fig_wrk "$p_http" newconn -H 'Connection: close' || put newconn_per_s fail
  fi
  if want resumed; then
    log "$ORIG: new connections with resumption allowed, ${SECS}s"
    fig_wrk "$p_resume" resumed -H 'Connection: close' || put resumed_per_s fail
  fi
  if want keepalive; then
    log "$ORIG: keep-alive requests, ${SECS}s"
    fig_wrk "$p_http" keepalive || put keepalive_per_s fail
  fi
  # The same figures for every originator (the sidecar's scale figures come after).
  put cpu_s_total "$(awk -v c="$(cpu_ticks "${ORIG_PIDS[@]}")" -v hz="$HZ" 'BEGIN{printf "%.2f", c / hz}')"
}

run_scale() { # i p_bulk p_echo
  local i=$1 p_bulk=$2 p_echo=$3 s
  {
    # Scale: the sidecar alone, with many streams and many idle connections.
    # Last, so that every figure above is taken in the same order and state
    # as for the peers: the terminator and the echo backend tearing down
    # 10,000 connections disturb whatever is measured right after.
    # Every stream count again with SCALE_BULK bytes in all: with -n, what
    # is in flight along the chain when iperf3 stops is never received, and
    # at 64 streams of BULK/64 each that is a large part of the transfer.
    for s in $SCALE_STREAMS; do
      log "$ORIG: scale: bulk up, $s streams, $SCALE_BULK"
      fig_bulk "$p_bulk" "$s" up "$SCALE_BULK" scale_ || put "scale_cpu_s_per_gib_up_$s" fail
    done
    if [ "$SCALE_CONNS" != "$IDLE_CONNS" ]; then
      # On a fresh process, as the IDLE_CONNS figure is: heap the bulk runs
      # above grew and freed would otherwise be counted (or reused) here.
      log "$ORIG: scale: idle memory, $SCALE_CONNS connections (restarted first)"
      stop_pids "${ORIG_PIDS[@]}"
      if start_tls_sidecar "$i" && wait_ports "$ORIG" "${ORIG_PIDS[0]}" "$p_echo"; then
        fig_idle "$p_echo" "$SCALE_CONNS" || put "idle_rss_kib_per_conn_$SCALE_CONNS" fail
      else
        put "idle_rss_kib_per_conn_$SCALE_CONNS" fail
      fi
    fi
  }
}

# ---------------------------------------------------------------- inbound
# Terminator under test on 2400k (k = 1..5) -> the backends, TLS 1.3, no
# resumption but on k = 5; the fixed nginx originator on 2500k -> 2400k.
term_port() { echo $((24000 + $1)); }
in_port() { echo $((25000 + $1)); }

start_in_tls_sidecar() {
  local k
  {
    echo 'shutdown_grace = "1s"'
    echo '[log]'
    echo 'level = "warn"'
    echo '[defaults]'
    echo "max_connections = $MAXCONN"
    for k in "${ROUTES[@]}"; do
      cat <<EOF
[[route]]
name = "in$k"
listen = "127.0.0.1:$(term_port "$k")"
connect = ["127.0.0.1:${BACKEND[$k]}"]
[route.listen_tls]
cert = "$W/server.pem"
key = "$W/server.key"
protocols = ["TLSv1.3"]
resumption = $([ "$k" = $R_RESUME ] && echo true || echo false)
EOF
    done
  } >"$W/in-tls-sidecar.toml"
  "$BIN" check -c "$W/in-tls-sidecar.toml" >"$W/in-tls-sidecar.check" 2>&1 || { cat "$W/in-tls-sidecar.check" >&2; return 1; }
  start in-tls-sidecar "$BIN" run -c "$W/in-tls-sidecar.toml"
  ORIG_PIDS=($LAST_PID)
}

start_in_nginx() {
  local k
  cat >"$W/in-nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes auto;
worker_rlimit_nofile 20000;
pid $W/in-nginx.pid;
error_log $W/in-nginx.err warn;
events { worker_connections 16384; }
stream {
    ssl_certificate     $W/server.pem;
    ssl_certificate_key $W/server.key;
    ssl_protocols TLSv1.3;
    ssl_session_tickets off;
    ssl_session_cache off;
$(for k in 1 2 3 4; do printf '    server { listen 127.0.0.1:%s ssl; proxy_pass 127.0.0.1:%s; }\n' "$(term_port "$k")" "${BACKEND[$k]}"; done)
    server { listen 127.0.0.1:$(term_port $R_RESUME) ssl; proxy_pass 127.0.0.1:${BACKEND[$R_RESUME]};
             ssl_session_tickets on; ssl_session_cache shared:inresume:10m; }
}
EOF
  start in-nginx nginx -e "$W/in-nginx.err" -p "$W" -c "$W/in-nginx.conf" -g 'daemon off;'
  ORIG_PIDS=($LAST_PID)
}

start_in_haproxy() {
  local k tickets
  cat "$W/server.pem" "$W/server.key" >"$W/server-crt.pem"
  {
    cat <<EOF
global
    maxconn $MAXCONN
    tune.ssl.cachesize 0
    ssl-default-bind-options ssl-min-ver TLSv1.3
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
    maxconn $MAXCONN
EOF
    for k in "${ROUTES[@]}"; do
      tickets=" no-tls-tickets"
      [ "$k" = $R_RESUME ] && tickets=""
      echo "listen in$k"
      echo "    bind 127.0.0.1:$(term_port "$k") ssl crt $W/server-crt.pem$tickets"
      echo "    server s 127.0.0.1:${BACKEND[$k]}"
    done
  } >"$W/in-haproxy.cfg"
  start in-haproxy haproxy -db -f "$W/in-haproxy.cfg"
  ORIG_PIDS=($LAST_PID)
}

# The fixed originator of the inbound figures: nginx stream, proxy_ssl,
# TLS 1.3 with AES-128-GCM; session reuse only towards the resumable port.
start_in_client() {
  local k
  cat >"$W/in-client.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes auto;
worker_rlimit_nofile $NOFILE;
pid $W/in-client.pid;
error_log $W/in-client.err warn;
events { worker_connections $((NOFILE - 500)); }
stream {
    proxy_ssl on;
    proxy_ssl_verify on;
    proxy_ssl_trusted_certificate $CA;
    proxy_ssl_name localhost;
    proxy_ssl_server_name on;
    proxy_ssl_protocols TLSv1.3;
    proxy_ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;
    proxy_ssl_session_reuse off;
$(for k in 1 2 3 4; do printf '    server { listen 127.0.0.1:%s; proxy_pass 127.0.0.1:%s; }\n' "$(in_port "$k")" "$(term_port "$k")"; done)
    server { listen 127.0.0.1:$(in_port $R_RESUME); proxy_pass 127.0.0.1:$(term_port $R_RESUME); proxy_ssl_session_reuse on; }
}
EOF
  start in-client nginx -e "$W/in-client.err" -p "$W" -c "$W/in-client.conf" -g 'daemon off;'
  wait_ports in-client $LAST_PID $(for k in "${ROUTES[@]}"; do in_port "$k"; done)
}

run_terminator() { # name: every figure of one terminator, through the fixed originator
  local name=$1 k ports=()
  ORIG=in-$name
  log "$ORIG: starting (round $ROUND of $ROUNDS)"
  if ! "start_in_${name//-/_}"; then log "$ORIG: could not start"; put start failed; return 0; fi
  for k in "${ROUTES[@]}"; do ports+=("$(term_port "$k")"); done
  if ! wait_ports "$ORIG" "${ORIG_PIDS[0]}" "${ports[@]}"; then put start failed; stop_pids "${ORIG_PIDS[@]}"; return 0; fi
  run_figures "$(in_port $R_BULK)" "$(in_port $R_PING)" "$(in_port $R_HTTP)" "$(in_port $R_ECHO)" "$(in_port $R_RESUME)"
  stop_pids "${ORIG_PIDS[@]}"
  sleep 1
}

ORIGINATORS_ALL_NAMES=("${ALL_ORIGINATORS[@]}")
# Odd rounds in the listed order, even rounds in reverse: no originator
# always runs right after the same one (what one leaves behind, such as
# thousands of TIME_WAIT sockets after the new-connection figures, or a
# neighbour's burst, then falls on different ones).
for ROUND in $(seq "$ROUNDS"); do
  order=("${!ALL_ORIGINATORS[@]}")
  if [ $((ROUND % 2)) = 0 ]; then
    order=()
    for ((j = ${#ALL_ORIGINATORS[@]} - 1; j >= 0; j--)); do order+=("$j"); done
  fi
  for i in "${order[@]}"; do
    case ",$ONLY," in *",${ALL_ORIGINATORS[$i]},"*) run_originator "$i" ;; esac
  done
  [ ${#TERMINATORS[@]} -gt 0 ] || continue
  [ "$ROUND" = 1 ] && start_in_client
  order=("${TERMINATORS[@]}")
  if [ $((ROUND % 2)) = 0 ]; then
    order=()
    for ((j = ${#TERMINATORS[@]} - 1; j >= 0; j--)); do order+=("${TERMINATORS[$j]}"); done
  fi
  for t in "${order[@]}"; do run_terminator "$t"; done
done

# ---------------------------------------------------------------- report
log "writing $OUT"
mkdir -p "$(dirname "$OUT")"
ver() { "$@" 2>&1 | head -n1 | tr -d '\r' || true; }
{
  echo "nproc	$(nproc)"
  echo "cpu	$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "kernel	$(uname -sr)"
  echo "os	$(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "tls-sidecar	$("$BIN" --version 2>&1 | head -n1) ($(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src Cargo.toml 2>/dev/null || echo ', modified'))"
  echo "rustc	$(ver rustc --version)"
  echo "haproxy	$(ver haproxy -v)"
  echo "nginx	$(ver nginx -v)"
  echo "stunnel	$(stunnel -version 2>&1 | grep -m1 '^stunnel')"
  echo "socat	$(socat -V 2>&1 | grep -m1 'socat version')"
  echo "openssl	$(ver openssl version)"
  echo "iperf3	$(ver iperf3 -v)"
  echo "wrk	$(ver wrk -v)"
  echo "sockperf	$(ver sockperf --version)"
  echo "key	$KEY"
  echo "rounds	$ROUNDS (each throughput, latency and connection figure is the median of the rounds; idle memory and scale: round 1)"
  echo "sizes	bulk $BULK per transfer; ping-pong ${PP_SECS}s per size; wrk ${SECS}s, 1 thread, 16 connections; $IDLE_CONNS idle connections; scale (tls-sidecar): $SCALE_STREAMS streams with $SCALE_BULK each, $SCALE_CONNS idle connections"
  echo "nofile	open-file limit $(ulimit -n) (hard $(ulimit -Hn))"
  want scale && echo "scale	$SCALE_STREAMS;$IDLE_CONNS;$SCALE_CONNS;$SCALE_BULK"
  [ "$FIGURES" = "$ALL_FIGURES" ] || echo "figures	$FIGURES only"
  echo "load	load average at start $LOAD_START; at end $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "busy	$BUSY"
  echo "quick	$QUICK"
  echo "elapsed	$(($(date +%s) - T_START)) s"
} >"$W/machine.tsv"

python3 - "$RESULTS" "$W/machine.tsv" "$ONLY" "$INBOUND" >"$OUT" <<'EOF'
import statistics
import sys
from collections import defaultdict

results, machine, only = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
inbound = ["in-" + t for t in sys.argv[4].split(",") if t]
raw = defaultdict(lambda: defaultdict(list))
for line in open(results):
    o, m, v = line.rstrip("\n").split("\t")
    raw[o][m].append(v)

def floats(vs):
    out = []
    for v in vs:
        try:
            out.append(float(v))
        except ValueError:
            pass
    return out

# Each figure: the median of the rounds that produced a number (a failed
# round is left out); "fail" only if every round failed. `spread` keeps the
# rounds' range for the table of every measurement.
r = defaultdict(dict)
spread = defaultdict(dict)
for o, ms in raw.items():
    for m, vs in ms.items():
        xs = floats(vs)
        if xs:
            med = statistics.median(xs)
            r[o][m] = f"{med:.3f}".rstrip("0").rstrip(".") if med != int(med) else str(int(med))
            if len(xs) > 1:
                spread[o][m] = (min(xs), max(xs), len(xs))
        else:
            r[o][m] = vs[0]

NAMES = {
    "tls-sidecar": "tls-sidecar (verify full)",
    "haproxy-plain": "HAProxy, plain TCP (no TLS: the copy-only floor)",
    "haproxy-tls": "HAProxy (`ssl verify required`, verifyhost)",
    "nginx-stream": "nginx stream (`proxy_ssl on`, verify on)",
    "stunnel": "stunnel (client, verifyChain, checkHost)",
    "socat": "socat (`OPENSSL:`, cafile, verify)",
}
PEERS = ["haproxy-tls", "nginx-stream", "stunnel", "socat"]
LOW, HIGH = "low", "high"
# Columns: heading, [(metric, better)], digits
COLS = [
    ("CPU s per GiB, plain→TLS, 1 / 4 streams", [("cpu_s_per_gib_up_1", LOW), ("cpu_s_per_gib_up_4", LOW)], 2),
    ("CPU s per GiB, TLS→plain, 1 / 4 streams", [("cpu_s_per_gib_down_1", LOW), ("cpu_s_per_gib_down_4", LOW)], 2),
    ("64 B ping-pong RTT avg / p99 µs", [("rtt_avg_us_64", LOW), ("rtt_p99_us_64", LOW)], 0),
    ("1 KiB ping-pong RTT avg / p99 µs", [("rtt_avg_us_1024", LOW), ("rtt_p99_us_1024", LOW)], 0),
    ("new TLS conn/s (full handshake)", [("newconn_per_s", HIGH)], 0),
    ("CPU µs per new conn", [("newconn_cpu_us", LOW)], 0),
    ("conn/s, CPU µs per conn (resumption allowed)", [("resumed_per_s", HIGH), ("resumed_cpu_us", LOW)], 0),
    ("keep-alive req/s", [("keepalive_per_s", HIGH)], 0),
    ("CPU µs per keep-alive req", [("keepalive_cpu_us", LOW)], 1),
    ("idle KiB per conn, RSS / PSS", [("idle_rss_kib_per_conn", LOW), ("idle_pss_kib_per_conn", LOW)], 1),
]

def num(o, m):
    try:
        return float(r[o][m])
    except (KeyError, ValueError):
        return None

def fmt(v, digits):
    if v is None:
        return "—"
    if digits == 0 or abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"

def cell(o, metrics, digits):
    return " / ".join(fmt(num(o, m), digits) if r[o].get(m) != "fail" else "failed" for m, _ in metrics)

def best(m, better, among):
    vals = [(num(o, m), o) for o in among if num(o, m) is not None]
    if not vals:
        return None
    return (min if better == LOW else max)(vals)

def ratio_cell(metrics, among, me="tls-sidecar"):
    out = []
    for m, better in metrics:
        b, s = best(m, better, among), num(me, m)
        out.append("—" if b is None or s is None or b[0] == 0 else f"{s / b[0]:.2f}×")
    return " / ".join(out)

ran = [o for o in NAMES if o in only and o in r]
lines = []
lines.append("| originator | " + " | ".join(c[0] for c in COLS) + " |")
lines.append("|---" * (len(COLS) + 1) + "|")
for o in ran:
    if r[o].get("start") == "failed":
        lines.append(f"| {NAMES[o]} | did not start (see the log) |" + " |" * (len(COLS) - 1))
        continue
    lines.append(f"| {NAMES[o]} | " + " | ".join(cell(o, ms, d) for _, ms, d in COLS) + " |")
peers = [o for o in PEERS if o in ran]
if "tls-sidecar" in ran and peers:
    lines.append("| **tls-sidecar ÷ best TLS peer** | " + " | ".join(ratio_cell(ms, peers) for _, ms, _ in COLS) + " |")
    bests = []
    for _, ms, _ in COLS:
        bests.append(" / ".join((best(m, b, peers) or (None, "—"))[1] for m, b in ms))
    lines.append("| (best TLS peer) | " + " | ".join(bests) + " |")
if "tls-sidecar" in ran and "haproxy-plain" in ran:
    lines.append("| **tls-sidecar ÷ HAProxy plain** | " + " | ".join(ratio_cell(ms, ["haproxy-plain"]) for _, ms, _ in COLS) + " |")

# The inbound table: the terminators under test, behind one fixed originator.
IN_NAMES = {
    "in-tls-sidecar": "tls-sidecar (`listen_tls`)",
    "in-nginx": "nginx stream (`listen … ssl`)",
    "in-haproxy": "HAProxy (`bind … ssl crt`)",
}
# iperf3 -c sends client → server: through a terminator that is TLS→plain.
IN_COLS = [(h.replace("plain→TLS", "client→server (decrypts)").replace("TLS→plain", "server→client (encrypts)"), ms, d)
           for h, ms, d in COLS]
in_ran = [o for o in IN_NAMES if o in inbound]
in_lines = ["| terminator | " + " | ".join(c[0] for c in IN_COLS) + " |", "|---" * (len(IN_COLS) + 1) + "|"]
for o in in_ran:
    if o not in r:
        in_lines.append(f"| {IN_NAMES[o]} | to be measured on a quiet box |" + " |" * (len(IN_COLS) - 1))
    elif r[o].get("start") == "failed":
        in_lines.append(f"| {IN_NAMES[o]} | did not start (see the log) |" + " |" * (len(IN_COLS) - 1))
    else:
        in_lines.append(f"| {IN_NAMES[o]} | " + " | ".join(cell(o, ms, d) for _, ms, d in IN_COLS) + " |")
in_peers = [o for o in ("in-nginx", "in-haproxy") if o in in_ran and o in r]
if "in-tls-sidecar" in r and in_peers:
    in_lines.append("| **tls-sidecar ÷ best peer** | " + " | ".join(ratio_cell(ms, in_peers, "in-tls-sidecar") for _, ms, _ in IN_COLS) + " |")

m = dict(l.rstrip("\n").split("\t", 1) for l in open(machine))
print("# tls-sidecar vs TLS originators (benches/compare.sh)\n")
if m.get("quick") == "1":
    print("**QUICK=1 run: tiny sizes, for checking the apparatus only. Do not quote these numbers.**\n")
if m.get("busy") == "yes":
    print("**A cargo/rustc build ran during this run: the machine was not quiet, the figures are noisy.**\n")
print("Lower is better for CPU, RTT and memory; higher for conn/s and req/s. A ratio below 1× is better than")
print("the best TLS peer for CPU, RTT and memory columns; above 1× is better for conn/s and req/s.\n")
print("\n".join(lines))
if in_ran:
    print("\n## Inbound: TLS termination (the terminator under test; a fixed nginx `proxy_ssl` originator)\n")
    print("client ──plain──▶ nginx stream `proxy_ssl` (fixed) ──TLS 1.3, AES-128-GCM──▶ terminator ──plain──▶ backend.")
    print("CPU and memory are the terminator's. Full handshakes: resumption off on the terminator (tls-sidecar")
    print("`resumption = false`; nginx `ssl_session_cache off`, `ssl_session_tickets off`; HAProxy `no-tls-tickets`,")
    print("`tune.ssl.cachesize 0`) except on the port of the resumption column, where the originator reuses sessions.\n")
    print("\n".join(in_lines))
if "tls-sidecar" in ran and "scale" in m:
    streams, idle_n, scale_n, scale_bulk = m["scale"].split(";")
    t = r["tls-sidecar"]
    g = lambda k: t.get(k, "—")
    print("\n## Scale: tls-sidecar alone\n")
    print(f"Plain→TLS bulk (`iperf3 -P N -n {scale_bulk}`, the sidecar encrypts; round 1, after its other")
    print("figures) at more concurrent streams, and the sidecar's memory with many idle TLS connections")
    print("open (the second count is capped by the open-file limit: two descriptors per relayed connection).\n")
    print("| concurrent streams | CPU s per GiB | Gbit/s |")
    print("|---|---|---|")
    for n in sorted(map(int, streams.split())):
        print(f"| {n} | {g(f'scale_cpu_s_per_gib_up_{n}')} | {g(f'scale_gbit_s_up_{n}')} |")
    print("\n| idle connections | RSS MiB (whole process) | RSS KiB per conn | PSS KiB per conn |")
    print("|---|---|---|---|")
    for n in dict.fromkeys([idle_n, scale_n]):
        sfx = "" if n == idle_n else f"_{n}"
        print(f"| {int(n):,} | {g(f'idle_rss_mib_at_{n}')} | {g(f'idle_rss_kib_per_conn{sfx}')} | {g(f'idle_pss_kib_per_conn{sfx}')} |")
    print(f"\nPer connection: (RSS with them open − RSS after a 20-connection warm-up: {g('idle_rss_kib_before')} KiB, and for {int(scale_n):,}")
    print(f"on a restarted sidecar {g(f'idle_rss_kib_before_{scale_n}')} KiB) ÷ count.")
print("\n## Machine and versions\n")
for k, v in m.items():
    if k not in ("quick", "busy", "scale"):
        print(f"- {k}: {v}")
print("\n## Every measurement\n")
ran += [o for o in in_ran if o in r]
metrics = sorted({k for o in ran for k in r[o]})
print("| metric | " + " | ".join(ran) + " |")
print("|---" * (len(ran) + 1) + "|")
def every(o, k):
    v = r[o].get(k, "")
    if k in spread[o]:
        lo, hi, n = spread[o][k]
        v += f" ({lo:g}–{hi:g}, {n})"
    return v
for k in metrics:
    print(f"| {k} | " + " | ".join(every(o, k) for o in ran) + " |")
print("\nMetric names: `cpu_s_per_gib_up_N` plain→TLS (client → originator → terminator) with N iperf3 streams,")
print("`_down_N` TLS→plain (iperf3 -R); `gbit_s_*` their throughput; `rtt_*_us_SIZE` sockperf ping-pong round trip;")
print("`newconn_*` a new connection per HTTP request, full TLS handshake; `resumed_*` the same with resumption allowed;")
print("`keepalive_*` wrk keep-alive; `idle_*` memory of the originator's processes per idle connection (VmRSS and PSS);")
print("`cpu_s_total` the originator's CPU over one round's figures (the sidecar's scale figures not included).")
print("With several rounds a cell is the median, then (lowest–highest, rounds with a number).")
EOF

cat "$OUT"
log "done in $(($(date +%s) - T_START)) s"
