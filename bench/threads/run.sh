#!/usr/bin/env bash
# bench/threads/run.sh — an unmodified thread-per-connection echo server, natively and under
# grove-run's green pthreads, beside bench/echo's hand-written epoll server, in the same run.
#
#   [BUILD=build/release] bash bench/threads/run.sh [--servers "epoll native grove-run"]
#        [--connections "100 1000 10000"] [--seconds T] [--warmup W] [--repeat R]
#
# Servers: epoll      bench/echo's single-thread epoll server (the physical limit)
#          native     bench_threads_echo: one pthread per connection, blocking recv/send
#          grove-run  the same binary under `grove-run` (every pthread a grove task on one OS
#                     thread; GROVE_THREADS is unset so that green threads are the default)
#          grove-native  (not run by default) under `grove-run --threads=native`: OS threads,
#                     with grove's hooks preloaded
#
# For each server and each number of connections (all active, 64-byte echoes, one request in
# flight each, by bench/echo's bench_echo_load): start a fresh server pinned to CPU 0, drive it
# from CPU 1, and sample the server's /proc status every 0.25 s while the load runs: its peak
# VmRSS, peak OS thread count (Threads:), and two costs that RSS leaves out: page tables
# (VmPTE: each thread's stack is its own 8 MiB mapping, with a page-table page of its own) and
# kernel stacks (the machine's KernelStack growth: 16 KiB per OS thread). Each server is
# stopped with SIGTERM and must exit 0. Prints one table, the grove-run/epoll and
# grove-run/native ratios and the 10,000-connection memory and thread figures, each beside its
# target.
#
# Disturbance: "others" is the CPU time that every other user process on the machine (and the
# hypervisor, as steal) took during the run, as a percent of one CPU; rows above 3% are marked
# "disturbed". Kernel threads are not counted: at 10,000 connections ksoftirqd does part of
# the loopback traffic's work, for the benchmark. "load wait" is the time the load generator
# waited for CPU 1, for information only: that same kernel work keeps it waiting at 10,000
# connections without any other process running. (bench/echo/run.sh reads the server's
# schedstat wait instead, which for a server with thousands of threads on one CPU counts its
# threads waiting for each other.)
#
# With --repeat R each configuration runs R times and the run with the most requests/s is kept,
# with its latencies, memory and threads: the least disturbed one.
#
# Exits 1 on any failure (a build error, a server that dies or exits non-zero, a wrong echo),
# 2 on a bad command line; numbers that miss their targets are reported, not failures.
set -Eeuo pipefail
# A failure of the script itself (not one it reports) must not exit 1 without a word.
trap 'echo "run.sh: line $LINENO: unexpected failure (status $?)" >&2' ERR

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BUILD=${BUILD:-build/release}
servers="epoll native grove-run"
connection_counts="100 1000 10000"
seconds=5
warmup=1
repeat=1
size=64

usage() {
  sed -n '5,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
while (($# > 0)); do
  case $1 in
    --servers) servers=${2:?}; shift 2 ;;
    --connections) connection_counts=${2:?}; shift 2 ;;
    --seconds) seconds=${2:?}; shift 2 ;;
    --warmup) warmup=${2:?}; shift 2 ;;
    --repeat) repeat=${2:?}; shift 2 ;;
    -h | --help) usage ;;
    *) echo "run.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
for s in $servers; do
  [[ $s == epoll || $s == native || $s == grove-run || $s == grove-native ]] ||
    { echo "run.sh: --servers takes epoll, native, grove-run and/or grove-native, got '$s'" >&2; exit 2; }
done
for n in $connection_counts; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --connections takes whole numbers >= 1, got '$n'" >&2; exit 2; }
done
[[ -n $servers && -n $connection_counts ]] || { echo "run.sh: --servers and --connections must not be empty" >&2; exit 2; }
[[ $seconds =~ ^[1-9][0-9]*$ && $warmup =~ ^[0-9]+$ && $repeat =~ ^[1-9][0-9]*$ ]] ||
  { echo "run.sh: --seconds and --repeat take whole numbers >= 1, --warmup >= 0" >&2; exit 2; }

# Processes, and the helpers every server benchmark shares (die, $tmp, stop_server...).
harness_prefix=grove-threads
source bench/server_harness.sh

# ---------------------------------------------------------------------------------------------
# Build.
if [[ ! -f $BUILD/CMakeCache.txt ]]; then
  echo "configuring $BUILD (it has no CMakeCache.txt)"
  cmake -S . -B "$BUILD" -DGROVE_TESTS=OFF >/dev/null
fi
targets="bench_echo_load"
[[ " $servers " == *" epoll "* ]] && targets+=" bench_echo_epoll"
[[ " $servers " == *" native "* || " $servers " == *" grove-"* ]] && targets+=" bench_threads_echo"
[[ " $servers " == *" grove-"* ]] && targets+=" grove_run grove_preload"
# shellcheck disable=SC2086  # the targets are words
cmake --build "$BUILD" -j2 --target $targets >"$tmp/build.log" 2>&1 ||
  { cat "$tmp/build.log" >&2; die "building $targets in $BUILD failed"; }
load_bin=$BUILD/bench/echo/bench_echo_load
epoll_bin=$BUILD/bench/echo/bench_echo_epoll
threads_bin=$BUILD/bench/threads/bench_threads_echo
grove_run=$BUILD/hooks/grove-run

# The grove-run row is green pthreads, whatever the caller's environment says.
unset GROVE_THREADS LD_PRELOAD

# Every connection is a descriptor in both the server and the load generator.
max_connections=0
for n in $connection_counts; do ((n > max_connections)) && max_connections=$n; done
hard_fd_limit=$(ulimit -Hn)
[[ $hard_fd_limit == unlimited ]] && hard_fd_limit=$(cat /proc/sys/fs/nr_open)
ulimit -n "$hard_fd_limit"
if (($(ulimit -n) < max_connections + 64)); then
  die "the descriptor limit ($(ulimit -n)) is below the $((max_connections + 64)) a run needs; lower --connections or raise ulimit -Hn"
fi

# ---------------------------------------------------------------------------------------------
# Helpers.

# nap SECONDS: sleep(1) without a fork, by waiting for a line that never comes.
mkfifo "$tmp/never"
exec {never}<>"$tmp/never"
nap() { read -r -t "$1" -u "$never" _ || true; }

# others_ticks (bench/threads/others.sh): the CPU the rest of the machine takes meanwhile; the
# server is named, so its time is left out too.
source bench/threads/others.sh

# others_pct TICKS0 TICKS1 SINCE_NS: others_ticks' growth as a percent of the wall time since
# SINCE_NS, i.e. of one CPU.
others_pct() {
  awk -v a="$1" -v b="$2" -v t0="$3" -v t1="$(now_ns)" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.1f", (b - a) / hz * 100 / ((t1 - t0) / 1e9) }'
}

# start_server NAME: runs it on CPU 0, sets server_pid and server_port.
start_server() {
  local name=$1 line="" i
  rm -f "$tmp/$name.out"
  # exec: $! must be the server itself (taskset and grove-run exec it too), not a shell that
  # bash may keep between them, or SIGTERM and the samples would go to the wrong process.
  case $name in
    epoll) (exec taskset -c 0 "$epoll_bin" 0 >"$tmp/$name.out" 2>"$tmp/$name.err") & ;;
    native) (exec taskset -c 0 "$threads_bin" 0 >"$tmp/$name.out" 2>"$tmp/$name.err") & ;;
    grove-run) (exec taskset -c 0 "$grove_run" "$threads_bin" 0 >"$tmp/$name.out" 2>"$tmp/$name.err") & ;;
    grove-native)
      (exec taskset -c 0 "$grove_run" --threads=native "$threads_bin" 0 >"$tmp/$name.out" 2>"$tmp/$name.err") &
      ;;
  esac
  server_pid=$!
  for ((i = 0; i < 100; i++)); do
    line=$(head -n 1 "$tmp/$name.out" 2>/dev/null || true)
    [[ -n $line ]] && break
    if process_exited "$server_pid"; then
      cat "$tmp/$name.err" >&2
      die "$name server exited before it printed its port"
    fi
    sleep 0.1
  done
  [[ $line =~ ^listening\ on\ 127\.0\.0\.1:([0-9]+)$ ]] ||
    die "$name server's first line should be 'listening on 127.0.0.1:<port>', got '${line:-nothing within 10 s}'"
  server_port=${BASH_REMATCH[1]}
  local bin=$threads_bin
  [[ $name == epoll ]] && bin=$epoll_bin
  [[ /proc/$server_pid/exe -ef $bin ]] || die "process $server_pid is not $bin: cannot signal or measure the server"
}

# sample_server: raises peak_rss and peak_pte (KiB) and peak_threads from the server's status,
# and peak_kstack (KiB) from the machine's kernel stacks, without a fork.
sample_server() {
  local key value rest
  while IFS=$': \t' read -r key value rest; do
    case $key in
      VmRSS) ((value > peak_rss)) && peak_rss=$value ;;
      VmPTE) ((value > peak_pte)) && peak_pte=$value ;;
      Threads) ((value > peak_threads)) && peak_threads=$value ;;
    esac
  done <"/proc/$server_pid/status" 2>/dev/null || true
  kernel_stacks
  if ((kstack > peak_kstack)); then peak_kstack=$kstack; fi
}

# kernel_stacks: sets kstack to the KernelStack line of /proc/meminfo (KiB): 16 KiB per OS
# thread on x86-64, which no process's RSS shows.
kernel_stacks() {
  local key value rest
  while IFS=$': \t' read -r key value rest; do
    [[ $key == KernelStack ]] && { kstack=$value; return; }
  done </proc/meminfo
}

# thread_names: the server's threads by name, e.g. "1 bench_threads_ec", when there are few.
thread_names() {
  local tasks=("/proc/$server_pid/task/"*)
  ((${#tasks[@]} <= 64)) || { echo "${#tasks[@]} threads"; return; }
  cat "/proc/$server_pid/task/"*/comm 2>/dev/null | sort | uniq -c | awk '{ printf "%s%d %s", (NR > 1 ? ", " : ""), $1, $2 }'
}

# keep_result KEY LINE OTHERS LOAD_WAIT RSS THREADS NAMES PTE KSTACK: records a run under KEY unless an
# earlier repeat reached more requests/s.
declare -A rps p50 p99 others load_wait rss threads names pte kstacks
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
  others[$key]=$3
  load_wait[$key]=$4
  rss[$key]=$5
  threads[$key]=$6
  names[$key]=$7
  pte[$key]=$8
  kstacks[$key]=$9
}

# run_one NAME CONNECTIONS: a fresh server, one load run, samples while it runs.
run_one() {
  local name=$1 connections=$2 others0 since status=0 waited thread_list kstack0
  kernel_stacks
  kstack0=$kstack
  start_server "$name"
  peak_kstack=0
  peak_rss=0
  peak_pte=0
  peak_threads=0
  others_ticks "$server_pid"
  others0=$other_ticks
  since=$(now_ns)
  (exec timeout -k 5 $((seconds + warmup + 120)) taskset -c 1 "$load_bin" --port "$server_port" --size "$size" \
    --seconds "$seconds" --warmup "$warmup" --connections "$connections" >"$tmp/load.out" 2>"$tmp/load.err") &
  load_pid=$!
  while ! process_exited "$load_pid"; do
    sample_server
    nap 0.25
  done
  wait "$load_pid" || status=$?
  load_pid=""
  check_server "$name"
  others_ticks "$server_pid"
  waited=$(others_pct "$others0" "$other_ticks" "$since")
  thread_list=$(thread_names)
  if ((status == 124 || status == 137)); then
    cat "$tmp/load.err" >&2
    die "load generator against $name at $connections connections did not finish in time"
  elif ((status != 0)); then
    cat "$tmp/load.err" >&2
    die "load generator against $name at $connections connections failed (status $status)"
  fi
  stop_server "$name"
  keep_result "$name:$connections" "$(grep '^requests/s=' "$tmp/load.out" || true)" "$waited" "$(load_wait_pct)" \
    "$peak_rss" "$peak_threads" "$thread_list" "$peak_pte" $((peak_kstack - kstack0))
}

# ---------------------------------------------------------------------------------------------
# The runs.
best=""
((repeat > 1)) && best=", best of $repeat"
echo "bench/threads: ${size}-byte echoes, all connections active, ${seconds} s after ${warmup} s warm-up$best;"
echo "  server (fresh for each run) on CPU 0, load (busy-polling) on CPU 1"
for name in $servers; do
  case $name in
    epoll) echo "  epoll:     $epoll_bin" ;;
    native) echo "  native:    $threads_bin" ;;
    grove-run) echo "  grove-run: $grove_run $threads_bin" ;;
    grove-native) echo "  grove-native: $grove_run --threads=native $threads_bin" ;;
  esac
done
# Repeats interleave the servers, so that a neighbour's burst of work does not land on all the
# runs of one server.
for n in $connection_counts; do
  for ((r = 0; r < repeat; r++)); do
    for name in $servers; do run_one "$name" "$n"; done
  done
done

# ---------------------------------------------------------------------------------------------
# Report.
echo
disturbed=""
printf '%-11s %-12s %11s %10s %10s %11s %10s   %s\n' connections server requests/s p50_us p99_us "peak RSS" "OS threads" \
  "others / load wait"
for n in $connection_counts; do
  for name in $servers; do
    key=$name:$n
    mark=""
    if awk -v o="${others[$key]}" 'BEGIN { exit !(o > 3) }'; then
      mark="  disturbed"
      disturbed=yes
    fi
    printf '%-11s %-12s %11.0f %10.1f %10.1f %7.1f MiB %10d   %5.1f%% / %4.1f%%%s\n' "$n" "$name" "${rps[$key]}" \
      "${p50[$key]}" "${p99[$key]}" "$(awk -v k="${rss[$key]}" 'BEGIN { print k / 1024 }')" "${threads[$key]}" \
      "${others[$key]}" "${load_wait[$key]}" "$mark"
  done
done
if [[ -n $disturbed ]]; then
  echo "disturbed: other processes took more than 3% of a CPU during the run; compare such rows with care,"
  echo "rerun on a quiet machine or with (more) --repeat"
fi

has() { [[ " $servers " == *" $1 "* ]]; }
has_count() { [[ " $connection_counts " == *" $1 "* ]]; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

if has grove-run && { has epoll || has native; }; then
  echo
  printf '%-11s %-28s %s\n' connections "grove-run/epoll requests/s" "grove-run/native requests/s"
  for n in $connection_counts; do
    vs_epoll="-"
    vs_native="-"
    if has epoll; then
      vs_epoll="$(ratio "${rps[grove-run:$n]}" "${rps[epoll:$n]}")x"
      ((n == 1000)) && vs_epoll+=$(awk -v r="${vs_epoll%x}" 'BEGIN { printf " (target >= 0.8x: %s)", (r >= 0.8 ? "ok" : "MISS") }')
    fi
    has native && vs_native="$(ratio "${rps[grove-run:$n]}" "${rps[native:$n]}")x"
    printf '%-11s %-28s %s\n' "$n" "$vs_epoll" "$vs_native"
  done
fi

if has grove-run && has_count 10000; then
  echo
  key=grove-run:10000
  if has native; then
    awk -v n="${rss[native:10000]}" -v g="${rss[$key]}" -v np="${pte[native:10000]}" -v gp="${pte[$key]}" \
      -v nk="${kstacks[native:10000]}" -v gk="${kstacks[$key]}" 'BEGIN {
      r = n / g
      printf "10000 connections: RSS native %.1f MiB / grove-run %.1f MiB = %.1fx (target >= 10x, i.e. grove-run <= 1/10: %s)\n",
        n / 1024, g / 1024, r, (r >= 10 ? "ok" : "MISS")
      printf "                   not in RSS: page tables (VmPTE) native %.1f MiB, grove-run %.1f MiB;\n", np / 1024, gp / 1024
      printf "                   kernel stacks (machine-wide KernelStack growth) native %.1f MiB, grove-run %.1f MiB\n", nk / 1024, gk / 1024
      printf "                   RSS + page tables + kernel stacks: native %.1f MiB / grove-run %.1f MiB = %.1fx\n",
        (n + np + nk) / 1024, (g + gp + gk) / 1024, (n + np + nk) / (g + gp + gk)
    }'
  fi
  verdict=MISS
  ((${threads[$key]} == 1)) && verdict=ok
  echo "10000 connections: grove-run OS threads ${threads[$key]} (target 1, plus grove helper threads if any: $verdict); at the end of the run: ${names[$key]}"
fi

if has grove-run; then
  for n in $connection_counts; do
    if ((n >= 100 && ${threads[grove-run:$n]} > n / 2)); then
      echo
      echo "NOTE: grove-run ran $n connections on ${threads[grove-run:$n]} OS threads: green pthreads were not in effect"
      echo "      (a grove-run without them runs each pthread natively)."
      break
    fi
  done
fi
exit 0
