#!/usr/bin/env bash
# check.sh SOURCE_DIR WORK_DIR — build grove's Debian packages (cmake/GrovePackage.cmake)
# and check them: configure a build for prefix /usr in WORK_DIR/build (kept, so
# a second run is incremental), `cpack -G DEB`, lintian (errors fail, warnings
# are shown), the packages' contents and control fields, then unpack them all
# into WORK_DIR/root and use that tree: its grove-run must preload its own
# libgrove-preload.so and print the project's version, and consumers must build
# against it (tests/install/check.sh with PREFIX=WORK_DIR/root/usr). The packages
# are compressed with gzip, not xz, which takes half a minute more.
# Needs cmake, dpkg-dev, lintian, file and man-db (cmake/debian-deps.sh).
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: $0 SOURCE_DIR WORK_DIR" >&2; exit 2; }
src=$(realpath "$1")
mkdir -p "$2"
work=$(realpath "$2")
build=$work/build
root=$work/root

say() { echo "package check [${SECONDS}s]: $*"; }
fail() { echo "package check: FAILED: $*" >&2; exit 1; }

for tool in cmake cpack dpkg-deb dpkg-shlibdeps dpkg-architecture lintian file readelf man; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (cmake/debian-deps.sh lists the packages)"
done

version=$(sed -n 's/^project(grove VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
[ -n "$version" ] || fail "no project(grove VERSION ...) in $src/CMakeLists.txt"
major=${version%%.*}
arch=$(dpkg --print-architecture)
triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
libdir=usr/lib/$triplet
runtime_pkg=libgrove$major

# --- build and package --------------------------------------------------------
say "configuring $build (prefix /usr)"
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
  -DGROVE_TESTS=OFF -DGROVE_EXAMPLES=OFF -DGROVE_BENCH=OFF -DGROVE_WERROR=ON \
  -DGROVE_PACKAGE_COMPRESSION=gzip >"$work/configure.log" 2>&1 ||
  { cat "$work/configure.log" >&2; fail "configure"; }
say "building"
cmake --build "$build" -j "$(nproc)" >"$work/build.log" 2>&1 || { tail -50 "$work/build.log" >&2; fail "build"; }

say "cpack -G DEB"
rm -rf "$build"/*.deb "$build/_CPack_Packages" "$root"
(cd "$build" && cpack -G DEB) >"$work/cpack.log" 2>&1 || { cat "$work/cpack.log" >&2; fail "cpack"; }
if grep -q -i 'warning' "$work/cpack.log"; then
  cat "$work/cpack.log" >&2
  fail "cpack warned"
fi

debs() { (cd "$build" && shopt -s nullglob && printf "%s " *.deb *.ddeb); }
declare -A deb ddeb
for p in "$runtime_pkg" libgrove-dev grove-run; do
  deb[$p]=$build/${p}_${version}-1_${arch}.deb
  [ -f "${deb[$p]}" ] || fail "no $(basename "${deb[$p]}") (cpack made: $(debs))"
done
# The -dbgsym packages (GROVE_PACKAGE_DBGSYM, on by default) of the two with binaries.
if grep -q '^GROVE_PACKAGE_DBGSYM:BOOL=ON' "$build/CMakeCache.txt"; then
  for p in "$runtime_pkg" grove-run; do
    ddeb[$p-dbgsym]=$build/${p}-dbgsym_${version}-1_${arch}.ddeb
    [ -f "${ddeb[$p-dbgsym]}" ] || fail "no $(basename "${ddeb[$p-dbgsym]}") (cpack made: $(debs))"
  done
fi
count=$(find "$build" -maxdepth 1 \( -name '*.deb' -o -name '*.ddeb' \) | wc -l)
[ "$count" -eq $((${#deb[@]} + ${#ddeb[@]})) ] || fail "cpack made $count packages: $(debs)"
say "made $(debs)"

# --- lintian --------------------------------------------------------------------
say "lintian"
lintian_rc=0
lintian --fail-on error --no-tag-display-limit "${deb[@]}" "${ddeb[@]}" >"$work/lintian.log" 2>"$work/lintian.err" || lintian_rc=$?
cat "$work/lintian.log"
errors=$(grep -c '^E: ' "$work/lintian.log" || true)
warnings=$(grep -c '^W: ' "$work/lintian.log" || true)
say "lintian: $errors errors, $warnings warnings"
if [ "$lintian_rc" -ne 0 ] || [ "$errors" -ne 0 ]; then
  grep -v 'running with root privileges' "$work/lintian.err" >&2 || true
  fail "lintian found errors (exit status $lintian_rc)"
fi

# --- contents and control fields ------------------------------------------------
# has PACKAGE PATH...: every PATH (as dpkg-deb -c prints it, without "./") is in PACKAGE.
has() {
  local p=$1 f
  shift
  for f in "$@"; do
    grep -q -E "^\S+ \S+ +[0-9]+ \S+ \S+ \./$f( -> .*)?$" "$work/$p.contents" || fail "$p does not contain /$f"
  done
}
# lacks PACKAGE REGEX: no path in PACKAGE (symbolic links' targets aside) matches REGEX.
lacks() {
  if sed 's/ -> .*//' "$work/$1.contents" | grep -E " \./$2"; then fail "$1 contains files matching /$2"; fi
}
# field PACKAGE FIELD: the value of FIELD in PACKAGE's control file.
field() { dpkg-deb -f "${deb[$1]}" "$2"; }

for p in "${!deb[@]}"; do
  dpkg-deb -c "${deb[$p]}" >"$work/$p.contents"
  has "$p" "usr/share/doc/$p/copyright" "usr/share/doc/$p/changelog.Debian.gz"
  lacks "$p" 'usr/local/'
  [ "$(field "$p" Version)" = "$version-1" ] || fail "$p's version is $(field "$p" Version), not $version-1"
  [ "$(field "$p" Architecture)" = "$arch" ] || fail "$p's architecture is $(field "$p" Architecture)"
  for f in Maintainer Homepage Description Priority; do
    [ -n "$(field "$p" "$f")" ] || fail "$p has no $f field"
  done
  changelog_version=$(dpkg-deb --fsys-tarfile "${deb[$p]}" | tar -xO "./usr/share/doc/$p/changelog.Debian.gz" |
    gzip -dc | sed -n '1s/^grove (\([^)]*\)).*/\1/p')
  [ "$changelog_version" = "$version-1" ] || fail "$p's changelog.Debian is for version '$changelog_version'"
done

has "$runtime_pkg" "$libdir/libgrove.so.$major" "$libdir/libgrove.so.$version" \
  "$libdir/libgrove-hooks.so.$major" "$libdir/libgrove-hooks.so.$version" \
  "usr/share/gdb/auto-load/$libdir/libgrove.so.$version-gdb.py"
lacks "$runtime_pkg" '(usr/include/|.*\.so$|.*\.a$)'
[ "$(field "$runtime_pkg" Section)" = libs ] || fail "$runtime_pkg's section is $(field "$runtime_pkg" Section)"
shlibs=$(dpkg-deb -I "${deb[$runtime_pkg]}" shlibs) || fail "$runtime_pkg has no shlibs file"
for lib in libgrove libgrove-hooks; do
  grep -q -x "$lib $major $runtime_pkg (>= $version-1)" <<<"$shlibs" ||
    fail "$runtime_pkg's shlibs has no line for $lib: $shlibs"
done
dpkg-deb -I "${deb[$runtime_pkg]}" triggers | grep -q -x 'activate-noawait ldconfig' ||
  fail "$runtime_pkg has no ldconfig trigger"
for dep in libboost-context1.74.0 libev4 libc6 libstdc++6; do
  field "$runtime_pkg" Depends | grep -q "$dep" ||
    fail "$runtime_pkg does not depend on $dep (dpkg-shlibdeps): $(field "$runtime_pkg" Depends)"
done

has libgrove-dev usr/include/grove/grove.hpp "$libdir/libgrove.so" "$libdir/libgrove-hooks.so" \
  "$libdir/libgrove.a" "$libdir/libgrove-hooks.a" "$libdir/grove/hooked.dynlist" \
  "$libdir/cmake/grove/groveConfig.cmake" "$libdir/cmake/grove/groveConfigVersion.cmake" \
  "$libdir/cmake/grove/groveTargets.cmake" "$libdir/pkgconfig/grove.pc" "$libdir/pkgconfig/grove-hooks.pc"
lacks libgrove-dev '.*\.so\.[0-9]'
[ "$(field libgrove-dev Section)" = libdevel ] || fail "libgrove-dev's section is $(field libgrove-dev Section)"
for dep in "$runtime_pkg (= $version-1)" libboost-context-dev libev-dev libc-ares-dev pkg-config; do
  field libgrove-dev Depends | grep -q -F "$dep" ||
    fail "libgrove-dev does not depend on $dep: $(field libgrove-dev Depends)"
done

has grove-run usr/bin/grove-run "$libdir/grove/libgrove-preload.so" usr/share/man/man1/grove-run.1.gz \
  "usr/share/gdb/auto-load/$libdir/grove/libgrove-preload.so-gdb.py"
lacks grove-run '(usr/include/|.*\.a$)'
[ "$(field grove-run Section)" = utils ] || fail "grove-run's section is $(field grove-run Section)"
field grove-run Depends | grep -q libc6 || fail "grove-run has no dependencies from dpkg-shlibdeps"
for p in "${!ddeb[@]}"; do
  [ "$(dpkg-deb -f "${ddeb[$p]}" Section)" = debug ] || fail "$p's section is not debug"
  dpkg-deb -f "${ddeb[$p]}" Depends | grep -q -x -F "${p%-dbgsym} (= $version-1)" || fail "$p's Depends"
done
say "contents and control fields are as expected"

# --- the unpacked tree ------------------------------------------------------------
for f in "${deb[@]}" "${ddeb[@]}"; do dpkg-deb -x "$f" "$root"; done
say "unpacked into $root"

# The binaries are stripped; with -dbgsym packages, their debug information is
# there under their build ids, and gdb finds grove's types in it (the gdb
# extension reads grove's data structures through them).
for f in usr/bin/grove-run "$libdir/libgrove.so.$version" "$libdir/libgrove-hooks.so.$version" \
  "$libdir/grove/libgrove-preload.so"; do
  file "$root/$f" | grep -q ', stripped' || fail "/$f is not stripped"
  [ ${#ddeb[@]} -gt 0 ] || continue
  id=$(readelf -n "$root/$f" | sed -n 's/.*Build ID: \([0-9a-f]*\)/\1/p')
  debug=usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug
  if [ -z "$id" ] || [ ! -f "$root/$debug" ]; then fail "no -dbgsym package has /$f's debug information (/$debug)"; fi
done
if [ ${#ddeb[@]} -gt 0 ] && command -v gdb >/dev/null; then
  gdb -nx -batch -ex "set debug-file-directory $root/usr/lib/debug" \
    -ex "file $root/$libdir/libgrove.so.$version" \
    -ex 'python print(gdb.lookup_type("grove::detail::hub_state"))' \
    >"$work/gdb.log" 2>&1 || true
  if ! grep -q -x 'struct grove::detail::hub_state' "$work/gdb.log"; then
    cat "$work/gdb.log" >&2
    fail "gdb does not find grove::detail::hub_state in libgrove0-dbgsym"
  fi
  say "gdb reads grove's types from the -dbgsym packages"
fi

# The manual page is well-formed, names this version and documents every option
# and setting of --help.
grep -q "^\.TH GROVE-RUN 1 .* \"grove $version\"" "$src/docs/grove-run.1" ||
  fail "docs/grove-run.1's .TH line does not name grove $version"
LC_ALL=C.UTF-8 MANWIDTH=1000 man --warnings -l "$root/usr/share/man/man1/grove-run.1.gz" \
  >"$work/grove-run.1.txt" 2>"$work/man.err" || { cat "$work/man.err" >&2; fail "man grove-run.1.gz"; }
[ ! -s "$work/man.err" ] || { cat "$work/man.err" >&2; fail "man warns about grove-run.1"; }
env -u LD_PRELOAD "$root/usr/bin/grove-run" --help >"$work/help.txt" || fail "grove-run --help exited $?"
grep -o -E -- '(--[a-z][a-z-]*|GROVE_[A-Z_]+)' "$work/help.txt" | sort -u | while read -r word; do
  grep -q -F -- "$word" "$work/grove-run.1.txt" || fail "grove-run(1) does not mention $word, which --help lists"
done
say "grove-run(1) renders without warnings and covers every option and setting of --help"

# The unpacked grove-run preloads the unpacked library, not one elsewhere.
preload=$(realpath "$root/$libdir/grove/libgrove-preload.so")
# shellcheck disable=SC2016  # $LD_PRELOAD is the program's
out=$(env -u LD_PRELOAD -u GROVE_PRELOAD "$root/usr/bin/grove-run" /bin/sh -c 'echo "$LD_PRELOAD"') ||
  fail "grove-run /bin/sh exited $?"
[ "$out" = "$preload" ] || fail "the unpacked grove-run preloaded \"$out\", not $preload"
say "the unpacked grove-run preloads $out"
out=$(env -u LD_PRELOAD "$root/usr/bin/grove-run" --version)
[ "$out" = "grove-run $version" ] || fail "grove-run --version printed \"$out\", not \"grove-run $version\""
say "grove-run --version: $out"

# Consumers of the CMake package and the pkg-config files build and run against it.
mkdir -p "$work/consumer-build"
say "building consumers against $root/usr (tests/install/check.sh)"
PREFIX=$root/usr bash "$src/tests/install/check.sh" "$work/consumer-build" "$src" ||
  fail "tests/install/check.sh against the unpacked packages"

say "passed"
