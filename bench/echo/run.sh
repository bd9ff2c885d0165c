#!/usr/bin/env bash
# bench/echo/run.sh — grove's echo server beside a hand-written epoll one, in the same run.
#
#   [BUILD=build/release] bash bench/echo/run.sh [--servers "epoll grove"] [--seconds T] [--warmup W]
#                                                [--idle M] [--repeat R]
#
# For each server: start it pinned to CPU 0 and drive it from CPU 1 with bench_echo_load
# (64-byte messages) at 100 and at 1,000 connections; then, on a freshly started server, at
# 100 connections while M (default 10,000) idle connections are held, sampling its RSS before
# and while they are held. Each server is stopped with SIGTERM and must exit 0. Prints one
# table, the grove/epoll ratios and the memory per idle connection, each beside its target.
#
# Each row also shows how much of the run the server and the load generator spent runnable
# but waiting for their CPU (schedstat): near 0% when they have CPUs 0 and 1 to themselves.
# Rows above 3% are marked "disturbed": another process ran there and the figures say more
# about it than about the server.
#
# With --repeat R each configuration runs R times and the run with the most requests/s is
# kept (its p50, p99 and memory with it): like bench/common.hpp's best_ns, the least disturbed
# run, since on two shared cores anyone else's compile lands on the server's or the load
# generator's CPU.
#
# Until examples/echo_server exists the epoll server stands in for grove, and the output says
# so. Exits 1 on any failure (a build error, a server that dies or exits non-zero, a wrong
# echo); numbers that miss their targets are reported, not failures.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BUILD=${BUILD:-build/release}
servers="epoll grove"
seconds=5
warmup=1
idle=10000
repeat=1
size=64

usage() {
  sed -n '4,5p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
while (($# > 0)); do
  case $1 in
    --servers) servers=${2:?}; shift 2 ;;
    --seconds) seconds=${2:?}; shift 2 ;;
    --warmup) warmup=${2:?}; shift 2 ;;
    --idle) idle=${2:?}; shift 2 ;;
    --repeat) repeat=${2:?}; shift 2 ;;
    -h | --help) usage ;;
    *) echo "run.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
for s in $servers; do
  [[ $s == epoll || $s == grove ]] || { echo "run.sh: --servers takes epoll and/or grove, got '$s'" >&2; exit 2; }
done
[[ $seconds =~ ^[1-9][0-9]*$ && $warmup =~ ^[0-9]+$ && $idle =~ ^[1-9][0-9]*$ && $repeat =~ ^[1-9][0-9]*$ ]] ||
  { echo "run.sh: --seconds, --idle and --repeat take whole numbers >= 1, --warmup >= 0" >&2; exit 2; }

# Processes, and the helpers every server benchmark shares (die, $tmp, stop_server...).
harness_prefix=grove-echo
source bench/server_harness.sh

# ---------------------------------------------------------------------------------------------
# Build.
if [[ ! -f $BUILD/CMakeCache.txt ]]; then
  echo "configuring $BUILD (it has no CMakeCache.txt)"
  cmake -S . -B "$BUILD" -DGROVE_TESTS=OFF >/dev/null
fi
cmake --build "$BUILD" -j2 --target bench_echo_epoll bench_echo_load >"$tmp/build.log" 2>&1 ||
  { cat "$tmp/build.log" >&2; die "building bench_echo_epoll and bench_echo_load in $BUILD failed"; }
epoll_bin=$BUILD/bench/echo/bench_echo_epoll
load_bin=$BUILD/bench/echo/bench_echo_load
grove_bin=$BUILD/examples/echo_server
grove_stand_in=""

if [[ " $servers " == *" grove "* ]]; then
  if cmake --build "$BUILD" -j2 --target echo_server >"$tmp/build.log" 2>&1; then
    :
  elif grep -Eq "No rule to make target '?echo_server|unknown target '?echo_server" "$tmp/build.log"; then
    # examples/echo_server is still being written: measure the harness itself with the
    # epoll server in both roles rather than not at all.
    grove_bin=$epoll_bin
    grove_stand_in="NOTE: $BUILD has no echo_server target yet: the epoll server stands in for grove (grove*)"
    echo "$grove_stand_in"
  else
    cat "$tmp/build.log" >&2
    die "building echo_server in $BUILD failed"
  fi
fi

# Every connection is a descriptor in both the server and the load generator.
hard_fd_limit=$(ulimit -Hn)
[[ $hard_fd_limit == unlimited ]] && hard_fd_limit=$(cat /proc/sys/fs/nr_open)
ulimit -n "$hard_fd_limit"
if (($(ulimit -n) < idle + 1200)); then
  die "the descriptor limit ($(ulimit -n)) is below the $((idle + 1200)) a run needs; lower --idle or raise ulimit -Hn"
fi

# ---------------------------------------------------------------------------------------------
# Helpers.

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
fd_count() { ls -U "/proc/$1/fd" | wc -l; }

# server_wait_ns: how long the server's threads have sat runnable without their CPU (field 2
# of schedstat). Pinned to CPU 0 with nothing else there, it stays near zero; anything more
# is another process taking the server's CPU.
server_wait_ns() { cat "/proc/$server_pid/task/"*/schedstat 2>/dev/null | awk '{ s += $2 } END { printf "%d", s }'; }

# wait_pct FROM_NS TO_NS SINCE_NS: percent of the wall time since SINCE_NS the server waited.
wait_pct() { awk -v a="$1" -v b="$2" -v t0="$3" -v t1="$(now_ns)" 'BEGIN { printf "%.1f", (b - a) * 100 / (t1 - t0) }'; }

# start_server NAME BINARY: runs it on CPU 0, sets server_pid and server_port.
start_server() {
  local name=$1 bin=$2 line="" i
  # A restart must not read the previous instance's port from a file its shell has not yet
  # truncated.
  rm -f "$tmp/$name.out"
  # exec: $! must be the server itself (taskset execs it too), not a shell that bash may
  # keep between them, or SIGTERM and the RSS samples would go to the wrong process.
  (exec taskset -c 0 "$bin" 0 >"$tmp/$name.out" 2>"$tmp/$name.err") &
  server_pid=$!
  for ((i = 0; i < 100; i++)); do
    # The server's shell may not have created the file yet.
    line=$(head -n 1 "$tmp/$name.out" 2>/dev/null || true)
    [[ -n $line ]] && break
    if process_exited "$server_pid"; then
      cat "$tmp/$name.err" >&2
      die "$name server ($bin) exited before it printed its port"
    fi
    sleep 0.1
  done
  [[ $line =~ ^listening\ on\ 127\.0\.0\.1:([0-9]+)$ ]] ||
    die "$name server's first line should be 'listening on 127.0.0.1:<port>', got '${line:-nothing within 10 s}'"
  server_port=${BASH_REMATCH[1]}
  [[ /proc/$server_pid/exe -ef $bin ]] || die "process $server_pid is not $bin: cannot signal or measure the server"
}

# start_load LIMIT IN OUT ARGS...: the load generator on CPU 1 with stdin IN and stdout OUT,
# killed by timeout(1) after LIMIT s. The redirections belong to the background command: on
# the function call they would be opened by this shell, which blocks on a FIFO.
start_load() {
  local limit=$1 in=$2 out=$3
  shift 3
  (exec timeout -k 5 "$limit" taskset -c 1 "$load_bin" --port "$server_port" --size "$size" \
    --seconds "$seconds" --warmup "$warmup" "$@" <"$in" >"$out" 2>"$tmp/load.err") &
  load_pid=$!
}

# finish_load NAME: waits for the load generator and checks its exit status.
finish_load() {
  local name=$1 status=0
  wait "$load_pid" || status=$?
  load_pid=""
  if ((status == 124 || status == 137)); then
    cat "$tmp/load.err" >&2
    die "load generator against $name did not finish in time"
  elif ((status != 0)); then
    cat "$tmp/load.err" >&2
    die "load generator against $name failed (status $status)"
  fi
}

# keep_result KEY LINE SERVER_WAIT LOAD_WAIT [BEFORE HELD AFTER]: records a load generator
# line, the percent of the run the server and the load generator waited for their CPUs (and
# the RSS samples of an idle run) under KEY, unless an earlier repeat reached more requests/s.
declare -A rps p50 p99 server_wait load_wait idle_before idle_held idle_after
keep_result() {
  local key=$1 line=$2
  [[ $line =~ ^requests/s=([0-9.]+)\ p50_us=([0-9.]+)\ p99_us=([0-9.]+)\  ]] ||
    die "unexpected load generator output: '$line'"
  if [[ -n ${rps[$key]:-} ]] && awk -v new="${BASH_REMATCH[1]}" -v old="${rps[$key]}" 'BEGIN { exit !(new <= old) }'; then
    return
  fi
  rps[$key]=${BASH_REMATCH[1]}
  p50[$key]=${BASH_REMATCH[2]}
  p99[$key]=${BASH_REMATCH[3]}
  server_wait[$key]=$3
  load_wait[$key]=$4
  if (($# > 4)); then
    idle_before[$key]=$5
    idle_held[$key]=$6
    idle_after[$key]=$7
  fi
}

# run_plain NAME CONFIG CONNECTIONS
run_plain() {
  local name=$1 config=$2 connections=$3 wait0 since waited
  wait0=$(server_wait_ns)
  since=$(now_ns)
  start_load $((seconds + warmup + 60)) /dev/null "$tmp/load.out" --connections "$connections"
  finish_load "$name"
  check_server "$name"
  waited=$(wait_pct "$wait0" "$(server_wait_ns)" "$since")
  keep_result "$name:$config" "$(grep '^requests/s=' "$tmp/load.out" || true)" "$waited" "$(load_wait_pct)"
}

# expect_line NAME FD LINE: the next line the load generator prints on FD must be LINE.
expect_line() {
  local line
  if ! IFS= read -r -t 200 -u "$2" line; then
    cat "$tmp/load.err" >&2
    die "load generator against $1 stopped before it printed '$3'"
  fi
  [[ $line == "$3" ]] || die "load generator against $1 printed '$line', expected '$3'"
}

# settled_rss: the server's RSS in KiB once two samples 0.2 s apart agree (grove's tasks may
# still be running up to their first read when the descriptors are all there), at most 5 s.
settled_rss() {
  local i rss last=-1
  for ((i = 0; i < 25; i++)); do
    rss=$(rss_kib "$server_pid")
    ((rss == last)) && break
    last=$rss
    sleep 0.2
  done
  echo "$rss"
}

# run_idle NAME CONFIG: 100 active connections plus $idle idle ones. The load generator
# stops at each phase (--sync) while this script samples the server's RSS.
run_idle() {
  local name=$1 config=$2 to_load from_load line fds_before i before held after wait0 since waited
  mkfifo "$tmp/to_load" "$tmp/from_load"
  start_load $((seconds + 2 * warmup + 240)) "$tmp/to_load" "$tmp/from_load" --connections 100 --idle "$idle" --sync
  # Read-write open of the input FIFO cannot block; the output FIFO opens once the load
  # generator's shell has opened its end.
  exec {to_load}<>"$tmp/to_load" {from_load}<"$tmp/from_load"

  expect_line "$name" "$from_load" "sync before_idle"
  check_server "$name"
  before=$(settled_rss)
  fds_before=$(fd_count "$server_pid")
  echo go >&"$to_load"

  expect_line "$name" "$from_load" "sync idle_held"
  # The handshakes are done but the server may still be accepting: wait until it holds a
  # descriptor for every idle connection.
  for ((i = 0; i < 300; i++)); do
    (($(fd_count "$server_pid") >= fds_before + idle)) && break
    check_server "$name"
    sleep 0.1
  done
  (($(fd_count "$server_pid") >= fds_before + idle)) ||
    die "$name server holds $(($(fd_count "$server_pid") - fds_before)) of the $idle idle connections after 30 s"
  held=$(settled_rss)
  wait0=$(server_wait_ns)
  since=$(now_ns)
  echo go >&"$to_load"

  expect_line "$name" "$from_load" "sync done"
  check_server "$name"
  waited=$(wait_pct "$wait0" "$(server_wait_ns)" "$since")
  after=$(rss_kib "$server_pid")
  echo go >&"$to_load"

  IFS= read -r -t 60 -u "$from_load" line || line=""
  exec {to_load}>&- {from_load}<&-
  rm -f "$tmp/to_load" "$tmp/from_load"
  finish_load "$name"
  check_server "$name"
  keep_result "$name:$config" "$line" "$waited" "$(load_wait_pct)" "$before" "$held" "$after"
}

# ---------------------------------------------------------------------------------------------
# The runs.
configs=(c100 c1000 idle)
declare -A config_label=([c100]="100 conns" [c1000]="1000 conns" [idle]="100 + $idle idle")

best=""
((repeat > 1)) && best=", best of $repeat"
echo "bench/echo: ${size}-byte echoes, ${seconds} s after ${warmup} s warm-up$best; server on CPU 0, load (busy-polling) on CPU 1"
for name in $servers; do
  bin=$epoll_bin
  [[ $name == grove ]] && bin=$grove_bin
  start_server "$name" "$bin"
  echo "  $name: $bin on 127.0.0.1:$server_port"
  for ((r = 0; r < repeat; r++)); do run_plain "$name" c100 100; done
  for ((r = 0; r < repeat; r++)); do run_plain "$name" c1000 1000; done
  stop_server "$name"
  # Each idle run gets a fresh server: memory a runtime keeps after earlier connections
  # close (grove pools stacks) would otherwise be counted in "before" and be reused by the
  # idle connections, hiding what holding them costs.
  for ((r = 0; r < repeat; r++)); do
    start_server "$name" "$bin"
    echo "  $name: restarted for the idle run, on 127.0.0.1:$server_port"
    run_idle "$name" idle
    stop_server "$name"
  done
done

# ---------------------------------------------------------------------------------------------
# Report.
label() { [[ $1 == grove && -n $grove_stand_in ]] && echo "grove*" || echo "$1"; }
echo
disturbed=""
printf '%-22s %-7s %12s %10s %10s   %s\n' configuration server requests/s p50_us p99_us "cpu wait server/load"
for config in "${configs[@]}"; do
  for name in $servers; do
    key=$name:$config
    mark=""
    if awk -v s="${server_wait[$key]}" -v l="${load_wait[$key]}" 'BEGIN { exit !(s > 3 || l > 3) }'; then
      mark="  disturbed"
      disturbed=yes
    fi
    printf '%-22s %-7s %12.0f %10.1f %10.1f   %5.1f%% / %4.1f%%%s\n' "${config_label[$config]}" "$(label "$name")" \
      "${rps[$key]}" "${p50[$key]}" "${p99[$key]}" "${server_wait[$key]}" "${load_wait[$key]}" "$mark"
  done
done
if [[ -n $disturbed ]]; then
  echo "disturbed: the server or the load generator waited more than 3% of the run for its CPU, i.e. another"
  echo "process ran on it; compare such rows with care, rerun on a quiet machine or use --repeat 3"
fi

if [[ " $servers " == *" epoll "* && " $servers " == *" grove "* ]]; then
  echo
  printf '%-22s %20s %16s\n' "grove/epoll" "requests/s (>= 0.9x)" "p99 (<= 1.2x)"
  for config in "${configs[@]}"; do
    awk -v label="${config_label[$config]}" \
      -v gr="${rps[grove:$config]}" -v er="${rps[epoll:$config]}" \
      -v gp="${p99[grove:$config]}" -v ep="${p99[epoll:$config]}" \
      -v waits="${server_wait[grove:$config]} ${load_wait[grove:$config]} ${server_wait[epoll:$config]} ${load_wait[epoll:$config]}" 'BEGIN {
        r = gr / er; p = (ep > 0) ? gp / ep : 0
        n = split(waits, w, " "); disturbed = ""
        for (i = 1; i <= n; i++) if (w[i] > 3) disturbed = "   (disturbed)"
        printf "%-22s %13.2fx %-4s %9.2fx %-4s%s\n", label, r, (r >= 0.9 ? "ok" : "MISS"), p, (p <= 1.2 ? "ok" : "MISS"), disturbed
      }'
  done
fi

echo
echo "memory per idle connection (server RSS: before the $idle idle connections, while held, after the measured run)"
for name in $servers; do
  awk -v name="$(label "$name")" -v idle="$idle" -v b="${idle_before[$name:idle]}" -v h="${idle_held[$name:idle]}" \
    -v a="${idle_after[$name:idle]}" 'BEGIN {
      per = (h - b) * 1024 / idle
      printf "%-7s %8.1f MiB -> %8.1f MiB (%8.1f MiB after load): %7.0f B = %5.2f KiB per idle connection (target <= 8 KiB%s)\n",
        name, b / 1024, h / 1024, a / 1024, per, per / 1024, (name ~ /^grove/ ? (per <= 8192 ? ": ok" : ": MISS") : ", for grove")
    }'
done
[[ -n $grove_stand_in ]] && echo "$grove_stand_in"
exit 0
