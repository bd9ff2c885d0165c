#!/usr/bin/env bash
# debian-deps.sh — install the Debian 12 packages grove's build and tests need,
# if any are missing. Sourced by demo.sh and test.sh; safe to run again.
set -euo pipefail

grove_packages=(g++ clang cmake make pkg-config libboost-context-dev libev-dev libc-ares-dev doctest-dev valgrind
  libhiredis-dev redis-server libpq-dev postgresql libcurl4-openssl-dev
  curl wget netcat-openbsd redis-tools python3 libpython3.11-testsuite siege xz-utils
  libdw-dev liburing-dev gdb lintian dpkg-dev file man-db)

grove_install_deps() {
  local missing=()
  for p in "${grove_packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "grove: installing missing Debian packages: ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then
      sudo="sudo"
    else
      echo "grove: these packages are missing and this is not root (and there is no sudo): ${missing[*]}" >&2
      exit 2
    fi
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}
