#!/usr/bin/env bash
# check.sh BUILD_DIR SOURCE_DIR — install grove from BUILD_DIR into a scratch
# prefix, then build and run a tiny consumer against it with find_package and
# with pkg-config; and run the installed grove-run.
set -euo pipefail
build=$1
src=$2
work=$build/install-check
rm -rf "$work"
cmake --install "$build" --prefix "$work/prefix" >/dev/null

cmake -S "$src/tests/install/consumer" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/cmake" >/dev/null
"$work/cmake/consumer"

pc=$(dirname "$(find "$work/prefix" -name grove.pc)")
flags=$(PKG_CONFIG_PATH="$pc" pkg-config --cflags --libs grove)
# shellcheck disable=SC2086
c++ "$src/tests/install/consumer/main.cpp" $flags -o "$work/pkgconfig-consumer"
"$work/pkgconfig-consumer"

# The installed grove-run finds the installed preload library.
out=$("$work/prefix/bin/grove-run" /bin/sh -c 'echo "$LD_PRELOAD"')
case "$out" in
  "$work/prefix/"*libgrove-preload.so*) echo "installed grove-run preloads $out" ;;
  *) echo "installed grove-run preloaded \"$out\", not the installed library" >&2; exit 1 ;;
esac
