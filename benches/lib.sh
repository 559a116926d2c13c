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
