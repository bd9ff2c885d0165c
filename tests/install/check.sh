#!/usr/bin/env bash
# check.sh BUILD_DIR SOURCE_DIR — install grove from BUILD_DIR into a scratch
# prefix (or, with PREFIX set, use the grove already installed there), then
# build and run consumers of every installed target against it: with
# find_package (grove::grove, grove::grove_static, grove::hooks,
# grove::hooks_static) and with pkg-config (grove, grove-hooks); and run the
# installed grove-run.
set -euo pipefail
build=$1
src=$(realpath "$2")
work=$(realpath "$build")/install-check
rm -rf "$work"
mkdir -p "$work"
prefix=${PREFIX:-}
if [ -z "$prefix" ]; then
  prefix=$work/prefix
  cmake --install "$build" --prefix "$prefix" >/dev/null
fi
fail() { echo "install check: $*" >&2; exit 1; }

libdir=$(dirname "$(find "$prefix" -name 'libgrove.so.0' | head -1)")
[ -n "$libdir" ] || fail "no libgrove.so.0 under $prefix"
for f in libgrove.so libgrove.a libgrove-hooks.so.0 libgrove-hooks.so libgrove-hooks.a; do
  [ -e "$libdir/$f" ] || fail "$f is not installed in $libdir"
done
soname=$(readelf -d "$libdir/libgrove.so.0" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libgrove.so.0 ] || fail "libgrove's SONAME is '$soname', not libgrove.so.0"

# needs BINARY LIB: BINARY has LIB among its DT_NEEDED (or, with !, has not).
needs() {
  if readelf -d "$1" | grep -q "(NEEDED).*\[$2"; then
    [ "${3:-}" != "!" ] || fail "$(basename "$1") needs $2 but should be static"
  else
    [ "${3:-}" = "!" ] || fail "$(basename "$1") does not need $2"
  fi
}

export LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
cmake -S "$src/tests/install/consumer" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/cmake" >/dev/null
needs "$work/cmake/consumer" libgrove.so.0
needs "$work/cmake/consumer_static" libgrove.so !
needs "$work/cmake/hooks_consumer" libgrove-hooks.so.0
needs "$work/cmake/hooks_consumer_static" libgrove- !
for p in consumer consumer_static hooks_consumer hooks_consumer_static; do
  echo "$p: $("$work/cmake/$p")"
done

pc=$(dirname "$(find "$prefix" -name grove.pc)")
flags=$(PKG_CONFIG_PATH="$pc" pkg-config --cflags --libs grove)
# shellcheck disable=SC2086
c++ "$src/tests/install/consumer/main.cpp" $flags -o "$work/pkgconfig-consumer"
echo "pkg-config grove: $("$work/pkgconfig-consumer")"
flags=$(PKG_CONFIG_PATH="$pc" pkg-config --cflags --libs grove-hooks)
# --as-needed (Ubuntu's default, not Debian's) must not drop the hooks.
# shellcheck disable=SC2086
c++ "$src/tests/install/consumer/hooks_main.cpp" -Wl,--as-needed $flags -o "$work/pkgconfig-hooks-consumer"
needs "$work/pkgconfig-hooks-consumer" libgrove-hooks.so.0
echo "pkg-config grove-hooks: $("$work/pkgconfig-hooks-consumer")"

# The installed grove-run finds the installed preload library.
out=$("$prefix/bin/grove-run" /bin/sh -c 'echo "$LD_PRELOAD"')
case "$out" in
  "$prefix/"*libgrove-preload.so*) echo "installed grove-run preloads $out" ;;
  *) fail "installed grove-run preloaded \"$out\", not the installed library" ;;
esac
