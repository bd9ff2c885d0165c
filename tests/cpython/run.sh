#!/usr/bin/env bash
# tests/cpython/run.sh — CPython's own regression tests, natively and under grove-run.
#
# Usage: tests/cpython/run.sh GROVE_RUN [MODULE...]
#
# Runs each module of Debian's libpython3.11-testsuite (the list below, or the
# ones given) with /usr/bin/python3 -m test, once natively and once under
# GROVE_RUN, each under a hard time limit, and prints a table of both results
# and times. Exits non-zero when a module that passes natively does not pass
# under grove-run. The logs (-v output) of every module that fails under
# grove-run (and natively) are kept in the directory the script prints at the end.
#
# Two modules run at once (each one natively, then under grove-run): most of a
# run's time is modules that hang under grove-run until they are killed, which
# costs no CPU. Each module is killed after a hard time limit: natively
# CPYTHON_TEST_LIMIT seconds (default 300); under grove-run three times its
# native time plus 30 s, at least 60 s and at most that limit, so a module that
# hangs costs a few times its own run, not the whole limit.
#
# Settings: CPYTHON_TEST_LIMIT (above), CPYTHON_TEST_JOBS (modules at once;
# default 2), CPYTHON_TEST_LOGS (where the logs go; default a new directory
# under ${TMPDIR:-/tmp}).
set -uo pipefail

if [ $# -lt 1 ]; then
  echo "usage: $0 GROVE_RUN [MODULE...]" >&2
  exit 2
fi
grove_run=$(realpath "$1")
shift
[ -x "$grove_run" ] || { echo "cpython tests: $grove_run is not executable" >&2; exit 2; }
python=/usr/bin/python3
if ! "$python" -c 'import test.libregrtest' 2>/dev/null; then
  echo "cpython tests: $python has no test package (Debian's libpython3.11-testsuite)" >&2
  exit 2
fi

modules=("$@")
if [ ${#modules[@]} -eq 0 ]; then
  # Longest first, so that two at a time finish close together.
  modules=(test_asyncio test_socket test_signal test_subprocess test_selectors test_threading test_ftplib
    test_fork1 test_wait3 test_wait4 test_poplib test_os test_io test_socketserver test_wsgiref test_httpservers
    test_urllib2_localnet test_shutil test_fileio test_largefile test_tempfile test_file)
fi

limit=${CPYTHON_TEST_LIMIT:-300}
jobs=${CPYTHON_TEST_JOBS:-2}
logs=${CPYTHON_TEST_LOGS:-$(mktemp -d "${TMPDIR:-/tmp}/grove-cpython.XXXXXX")}
mkdir -p "$logs"

# regrtest's flags: -v (the log shows every case), -u network (test_socketserver
# needs it; it only talks to localhost, and the one test_socket case that
# reaches the internet skips itself when names do not resolve), -w (a case that
# fails is run once more, alone, as CPython's own CI does: some cases race with
# their own server thread natively too, e.g. test_ftplib's test_storlines
# decodes each recv(1024) of UTF-8 on its own, so a chunk that ends inside the
# last line's two-byte character reads as two characters). A module whose
# cases pass only on that rerun counts as passing, is reported as such, and
# keeps its log. The test runs in regrtest's own process (no -j), so all of it
# runs under grove-run.
regrtest_flags=(-v -w -u network)

# extra_flags MODULE prints the module's own regrtest flags, one a line.
extra_flags() {
  case $1 in
    # Where /dev/vsock exists but no VM host answers (containers), the VSOCK
    # client connects for ever, natively too.
    test_socket) printf '%s\n' -i ThreadedVSOCKSocketStreamTest ;;
  esac
}

# grove_known_limits MODULE prints, one a line, regrtest's -i flags for the
# cases of MODULE that test what grove-run documents it does not do (README,
# *Limits and caveats*: no preemption). The rest of the module must pass under
# grove-run, and the whole module natively.
grove_known_limits() {
  case $1 in
    # No preemption: a pure-Python loop that waits for another thread to run
    # (a mocked selector that never blocks; signal.signal in a loop until the
    # other thread has sent 100 signals; a busy loop the main thread must stop).
    # In test_asyncio these are BaseEventLoopTests' and BaseSelectorEventLoopTests'
    # cases that run a loop on a mocked selector while a thread (an executor's,
    # or the test's own) must do something.
    test_asyncio)
      printf '%s\n' -i '*test_asyncgen_finalization_by_gc_in_other_thread' -i '*BaseEventLoopTests.test_check_thread' \
        -i '*test_sock_connect_resolve_using_socket_params'
      ;;
    test_signal) printf '%s\n' -i '*test_stress_modifying_handlers' ;;
    test_threading) printf '%s\n' -i '*test_can_interrupt_tight_loops' ;;
  esac
}

# run_one MODE MODULE LIMIT: runs MODULE natively (MODE native) or under
# grove-run (MODE grove) for at most LIMIT seconds, writes its log to
# $logs/MODULE.MODE.log and prints "RESULT SECONDS", RESULT one of passed,
# passed-on-rerun, failed, skipped, timeout, crashed(STATUS).
run_one() {
  local mode=$1 module=$2 limit=$3 log="$logs/$2.$1.log"
  local -a extra
  mapfile -t extra < <(extra_flags "$module")
  [ "$mode" = grove ] && mapfile -t -O "${#extra[@]}" extra < <(grove_known_limits "$module")
  local -a cmd=("$python" -m test "${regrtest_flags[@]}" "${extra[@]}" "$module")
  [ "$mode" = grove ] && cmd=("$grove_run" "${cmd[@]}")
  local start end status result
  start=$(date +%s.%N)
  # timeout runs the command in a process group of its own and signals the
  # whole group, so the kill reaches every process the test started. SIGABRT
  # first: regrtest's faulthandler then writes every Python thread's traceback
  # to the log, which shows where a module hung; SIGKILL 10 s later, for a
  # process that blocks or ignores it.
  timeout --signal=ABRT --kill-after=10 "$limit" "${cmd[@]}" </dev/null >"$log" 2>&1
  status=$?
  end=$(date +%s.%N)
  case $status in
    0) result=passed ;;
    124 | 137) result=timeout ;;
    2) result=failed ;;
    *) result="crashed($status)" ;;
  esac
  # regrtest exits 0 when every case was skipped or the module was denied a resource.
  if [ $status -eq 0 ] && grep -q "^Result: NO TESTS RAN" "$log"; then result=skipped; fi
  if [ $status -eq 0 ] && grep -q " Re-running failed tests" "$log"; then result=passed-on-rerun; fi
  echo "$result $(awk "BEGIN { printf \"%.1f\", $end - $start }")"
}

# run_module MODULE: runs MODULE natively, then under grove-run with a limit
# from its native time, and writes "NATIVE_RESULT NATIVE_TIME GROVE_RESULT
# GROVE_TIME" to $logs/MODULE.result. The logs of passing runs go.
run_module() {
  local module=$1 native_result native_time grove_result grove_time grove_limit
  read -r native_result native_time < <(run_one native "$module" "$limit")
  grove_limit=$(awk "BEGIN { l = int(3 * $native_time + 30); print (l < 60 ? 60 : (l > $limit ? $limit : l)) }")
  read -r grove_result grove_time < <(run_one grove "$module" "$grove_limit")
  [ "$native_result" = passed ] && rm -f "$logs/$module.native.log"
  [ "$grove_result" = passed ] && rm -f "$logs/$module.grove.log"
  local mode
  for mode in native grove; do
    [ -f "$logs/$module.$mode.log" ] && grep -h -o "Re-running test_.* in verbose mode.*" "$logs/$module.$mode.log" |
      sed "s/^/cpython tests: $module ($mode): /"
  done
  echo "$native_result $native_time $grove_result $grove_time" >"$logs/$module.result"
  echo "cpython tests: $module: native $native_result ${native_time}s, grove-run $grove_result ${grove_time}s"
}

total_start=$(date +%s)
for module in "${modules[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
  run_module "$module" &
done
wait

regressions=()
echo
printf '%-24s %-22s %-22s\n' module native grove-run
for module in "${modules[@]}"; do
  read -r native_result native_time grove_result grove_time <"$logs/$module.result"
  rm -f "$logs/$module.result"
  printf '%-24s %-22s %-22s\n' "$module" "$native_result ${native_time}s" "$grove_result ${grove_time}s"
  # passed-on-rerun counts as passing (its reruns are printed above, its log kept).
  if [[ $native_result == passed* && $grove_result != passed* ]]; then regressions+=("$module"); fi
done
total=$(($(date +%s) - total_start))
echo
if [ -z "${CPYTHON_TEST_LOGS:-}" ] && rmdir "$logs" 2>/dev/null; then
  echo "cpython tests: ${#modules[@]} modules in ${total}s, $jobs at a time; no failure, no log kept"
else
  echo "cpython tests: ${#modules[@]} modules in ${total}s, $jobs at a time; logs of the failures in $logs"
fi
if [ ${#regressions[@]} -gt 0 ]; then
  echo "cpython tests: pass natively but not under grove-run: ${regressions[*]}"
  exit 1
fi
echo "cpython tests: every module that passes natively passes under grove-run"
