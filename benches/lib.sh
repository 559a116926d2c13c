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
