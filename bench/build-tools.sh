#!/usr/bin/env bash
# Installs the benchmark's tools, none of which is the system under test:
#   * wrk   (Debian package)  maximum throughput with keep-alive
#   * nginx (Debian package)  the reference mutual-TLS proxy chain, path (c)
#   * oha   (crates.io, built with cargo)  fixed-rate latency with correction for
#     coordinated omission (`-q <rate> --latency-correction`); Debian has no wrk2.
#     Built with the native-tls feature (Debian's OpenSSL: libssl-dev, pkg-config):
#     oha does not compile without a TLS feature, and this avoids building a crypto
#     library from source. The benchmark itself speaks plain HTTP to the proxies.
#
#   eval "$(bench/build-tools.sh)"     # sets BENCH_WRK, BENCH_NGINX, BENCH_OHA
#
# stdout is only the three KEY=path lines; progress goes to stderr. Idempotent:
# tools already installed are reused, and oha is built once into
# ${ZT_MESH_CACHE:-$HOME/.cache/zt-mesh}/oha-<version>/ (outside the repository).
set -euo pipefail

OHA_VERSION="${OHA_VERSION:-1.16.0}"
CACHE="${ZT_MESH_CACHE:-$HOME/.cache/zt-mesh}"
OHA_ROOT="$CACHE/oha-$OHA_VERSION"

log() { printf 'build-tools: %s\n' "$*" >&2; }

need_apt=()
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt+=(nginx-light)
if [ ! -x "$OHA_ROOT/bin/oha" ]; then
  dpkg -s libssl-dev >/dev/null 2>&1 || need_apt+=(libssl-dev)
  command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    log "need root to apt-get install ${need_apt[*]}"
    exit 1
  fi
  log "apt-get install ${need_apt[*]}"
  # Another session may be installing packages: wait for dpkg's lock instead of failing.
  apt_opts=(-o DPkg::Lock::Timeout=600)
  apt-get "${apt_opts[@]}" update -qq >&2
  # nginx's postinst tries to start the service; there is no init here, which is fine,
  # but policy-rc.d keeps it from trying at all.
  policy=/usr/sbin/policy-rc.d
  made_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends "${need_apt[@]}" >&2
  [ "$made_policy" = 1 ] && rm -f "$policy"
else
  log "reusing the installed Debian packages"
fi

WRK="$(command -v wrk)"
NGINX="$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)"

OHA="$OHA_ROOT/bin/oha"
if [ -x "$OHA" ]; then
  log "reusing $OHA"
else
  command -v cargo >/dev/null 2>&1 || { log "cargo not found: install Rust (rustup or Debian's cargo) to build oha"; exit 1; }
  mkdir -p "$CACHE"
  exec 9>"$CACHE/oha-$OHA_VERSION.lock"
  flock 9
  if [ ! -x "$OHA" ]; then
    log "building oha $OHA_VERSION from crates.io (several minutes on 2 cores)"
    CARGO_TARGET_DIR="$CACHE/oha-target" cargo install oha --version "$OHA_VERSION" --locked --no-default-features --features native-tls --root "$OHA_ROOT" >&2
    rm -rf "$CACHE/oha-target"
  fi
fi

echo "BENCH_WRK=$WRK"
echo "BENCH_NGINX=$NGINX"
echo "BENCH_OHA=$OHA"
