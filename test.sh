#!/usr/bin/env bash
# test.sh — grove's whole test suite, from a fresh Debian 12 machine.
#
# Installs missing Debian packages, then builds and runs:
#   1. the normal build (GCC, RelWithDebInfo): every test, the install/consumer test
#   2. CPython's own regression tests (tests/cpython/run.sh), natively and under
#      the normal build's grove-run: what passes natively must pass under it
#   3. ASan + UBSan (GCC, Debug): every test
#   4. valgrind memcheck over the normal build's runtime tests: zero errors
#   5. TSan: the cross-thread tests, grove::file on the thread pool (but in a
#      child of fork, where TSan refuses new threads), and green
#      pthreads shared with OS threads,
#      on one hub and spread over two (GROVE_HUBS=1, 2)
#   6. Release (GCC, -O3): every test but program_tests_1hub
#   7. clang (Debian's, RelWithDebInfo): every test but program_tests_1hub
#      (the one-hub rerun of the program tests runs in stages 1 and 3: two minutes less each)
#   8. the Debian packages (tests/package/check.sh): cpack, lintian without
#      errors, grove-run and consumers of both libraries from the unpacked packages
# Every build makes warnings errors (GROVE_WERROR). Build trees live in
# build/<kind>; a second run reuses them.
set -euo pipefail
cd "$(dirname "$0")"
source cmake/debian-deps.sh
grove_install_deps

jobs=$(nproc)
passed=0
failed=0
failed_logs=()
mkdir -p build/logs
stage() {  # each stage's output also goes to build/logs/N.log, for the summary
  local name=$1
  shift
  local log="build/logs/$((passed + failed + 1)).log"
  echo
  echo "=== grove test: $name"
  local start=$SECONDS
  if "$@" 2>&1 | tee "$log"; then
    passed=$((passed + 1))
    echo "=== grove test: $name: passed ($((SECONDS - start)) s)"
  else
    failed=$((failed + 1))
    failed_logs+=("$name|$log")
    echo "=== grove test: $name: FAILED ($((SECONDS - start)) s)"
  fi
}

summarize_failure() {  # the lines that say what failed, so that the end of a long log names it
  local name=${1%%|*} log=${1#*|}
  echo
  echo "=== grove test: FAILED: $name (whole output: $log)"
  grep -n -E -B3 -A12 'ERROR|FAILED|Failed|failed|\*\*\*|Sanitizer|runtime error|Timeout|Exception|==[0-9]+==' "$log" |
    grep -v -E '^[0-9]+[:-] *(Start|[0-9]+/[0-9]+ Test) .*Passed' | tail -n 120 || true
}

build() {  # build DIR [cmake options...]
  local dir=$1
  shift
  cmake -S . -B "$dir" -DGROVE_WERROR=ON "$@" >/dev/null && cmake --build "$dir" -j "$jobs"
}

normal() {
  build build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGROVE_EXAMPLES=ON -DGROVE_BENCH=ON &&
    ctest --test-dir build/release --output-on-failure
}

cpython() {
  bash tests/cpython/run.sh build/release/hooks/grove-run
}

asan() {
  build build/asan -DCMAKE_BUILD_TYPE=Debug -DGROVE_SANITIZE=address,undefined -DGROVE_BENCH=OFF -DGROVE_EXAMPLES=ON &&
    ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1 \
      UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      ctest --test-dir build/asan --output-on-failure
}

memcheck() {
  # Children the tests start (stack_probe) run natively: --trace-children=no.
  valgrind --tool=memcheck --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    --suppressions=tests/valgrind.supp \
    --child-silent-after-fork=yes -q build/release/tests/runtime_tests
}

tsan() {
  build build/tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGROVE_SANITIZE=thread -DGROVE_BENCH=OFF -DGROVE_EXAMPLES=OFF &&
    TSAN_OPTIONS=halt_on_error=1 build/tsan/tests/runtime_tests --test-case='*thread*' &&
    GROVE_FILE_IO=pool TSAN_OPTIONS=halt_on_error=1 build/tsan/tests/runtime_tests --test-case='grove::file*' \
      --test-case-exclude='*child of fork*' &&
    GROVE_THREADS=green GROVE_HUBS=1 TSAN_OPTIONS=halt_on_error=1 build/tsan/tests/thread_hooks_tests &&
    GROVE_THREADS=green GROVE_HUBS=2 TSAN_OPTIONS=halt_on_error=1 build/tsan/tests/thread_hooks_tests
}

release() {
  build build/gcc-release -DCMAKE_BUILD_TYPE=Release -DGROVE_EXAMPLES=ON -DGROVE_BENCH=ON &&
    ctest --test-dir build/gcc-release --output-on-failure -E '^program_tests_1hub$'
}

clang_build() {
  # -gdwarf-aranges: the backtrace tests check file:line, which libdw finds through .debug_aranges
  build build/clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_C_FLAGS=-gdwarf-aranges -DCMAKE_CXX_FLAGS=-gdwarf-aranges \
    -DGROVE_EXAMPLES=ON -DGROVE_BENCH=ON &&
    ctest --test-dir build/clang --output-on-failure -E '^program_tests_1hub$'
}

stage "normal build" normal
stage "CPython regression tests under grove-run" cpython
stage "ASan+UBSan build" asan
stage "valgrind memcheck" memcheck
stage "TSan, cross-thread tests" tsan
stage "Release build (GCC -O3)" release
stage "clang build" clang_build
stage "Debian packages" bash tests/package/check.sh . build/package

for f in "${failed_logs[@]}"; do summarize_failure "$f"; done
echo
names=$(for f in "${failed_logs[@]}"; do printf '%s; ' "${f%%|*}"; done)
echo "grove: $passed passed, $failed failed${names:+ (${names%; })}"
[ "$failed" -eq 0 ]
