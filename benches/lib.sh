# What the shell benchmarks share; sourced (`. benches/lib.sh`), not run.
# The caller defines log().

# apt_install WHO "SERVICE..." PACKAGE...: installs the Debian packages (none:
# nothing to do), or, with SKIP_INSTALL=1, exits 2 naming them; then stops
# the SERVICEs their post-install scripts may have started: the benchmarks
# run their own instances on their own ports.
apt_install() {
  local who=$1 services=$2 svc
  shift 2
  [ $# -gt 0 ] || return 0
  if [ "${SKIP_INSTALL:-0}" = 1 ]; then
    echo "$who: missing $* and SKIP_INSTALL=1" >&2
    exit 2
  fi
  log "installing $*"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  for svc in $services; do
    if command -v service >/dev/null 2>&1; then service "$svc" stop >/dev/null 2>&1 || true; fi
  done
}

# listening PORT: true if something listens on 127.0.0.1:PORT.
listening() {
  grep -qi "^ *[0-9]*: 0100007F:$(printf '%04X' "$1") 00000000:0000 0A" /proc/net/tcp
}

# established PORT: the number of established TCP connections with that
# local port.
established() {
  awk -v p=":$(printf '%04X' "$1")" '$4 == "01" && substr($2, length($2) - 4) == p' /proc/net/tcp | wc -l
}

# raise_nofile WHO CONNS: the open-file limit raised as far as allowed (the
# hard one where CAP_SYS_RESOURCE lets us, then the soft one), or exit 2
# when it cannot hold CONNS connections at two descriptors each.
raise_nofile() {
  ulimit -Hn 65536 2>/dev/null || true
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $(($2 * 2 + 512)) ]; then
    echo "$1: open-file limit $(ulimit -n) is too low for $2 connections" >&2
    exit 2
  fi
}

# make_certs DIR CA_NAME KEYARGS...: a CA (DIR/ca.pem, DIR/ca.key) and a
# server certificate it signed for localhost and 127.0.0.1 (DIR/server.pem,
# DIR/server.key), both valid 7 days, their keys made by `openssl req
# KEYARGS` (`-newkey ec -pkeyopt ec_paramgen_curve:P-256`, `-newkey rsa:2048`).
make_certs() {
  local dir=$1 name=$2
  shift 2
  openssl req -x509 "$@" -nodes -keyout "$dir/ca.key" -out "$dir/ca.pem" -days 7 -subj "/CN=$name" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
  openssl req "$@" -nodes -keyout "$dir/server.key" -out "$dir/server.csr" -subj "/CN=localhost" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' >"$dir/server.ext"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 7 \
    -extfile "$dir/server.ext" -out "$dir/server.pem" 2>/dev/null
}

# keepalive_peer DIR [TOP-LEVEL TOML LINE...]: the keep-alive path that
# keepalive-ab.sh and keepalive-instructions.sh measure. A throwaway ECDSA
# certificate; TLS 1.3 nginx on 127.0.0.1:24443 answering `return 200`,
# started (its pid in DIR/nginx.pid: the caller stops it); and DIR/sc.toml,
# one route from 127.0.0.1:24080 to it, with the given top-level lines.
keepalive_peer() {
  local w=$1 line
  shift
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$w/k.pem" \
    -out "$w/c.pem" -days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost 2>/dev/null
  cat >"$w/nginx.conf" <<EOF
worker_processes 1;
error_log $w/nginx.err;
pid $w/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  server {
    listen 127.0.0.1:24443 ssl;
    ssl_certificate $w/c.pem;
    ssl_certificate_key $w/k.pem;
    ssl_protocols TLSv1.3;
    keepalive_requests 1000000;
    location / { return 200 "ok\n"; }
  }
}
EOF
  {
    echo 'shutdown_grace = "1s"'
    for line in "$@"; do echo "$line"; done
    # verify = "none": the throwaway certificate is its own CA, which full
    # verification refuses as an end entity; the record path is the same.
    cat <<EOF
[log]
level = "warn"
[[route]]
name = "r"
listen = "127.0.0.1:24080"
connect = ["127.0.0.1:24443"]
[route.connect_tls]
server_name = "localhost"
verify = "none"
EOF
  } >"$w/sc.toml"
  nginx -p "$w" -c "$w/nginx.conf"
  sleep 0.5
}
