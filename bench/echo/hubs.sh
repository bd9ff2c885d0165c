#!/usr/bin/env bash
# bench/echo/hubs.sh — grove's example servers on one hub, and on a hub_group of two with each way
# of spreading connections (stream_server::spread), in the same run.
#
#   [BUILD=build/release] bash bench/echo/hubs.sh [--connections N] [--seconds T] [--repeat R]
#
# Servers (nothing is pinned: the server and the load generator share the machine's CPUs):
#   one        SERVER 0                              the handlers on main's hub
#   acceptor   SERVER 0 --hubs 2 --spread acceptor   one acceptor hands each connection to the hub
#                                                    with the fewest handlers
#   reuseport  SERVER 0 --hubs 2 --spread reuseport  a SO_REUSEPORT listener per hub
# Two loads, each server under each R times (default 3), interleaved; the best run is kept:
#   echo     examples/echo_server driven by bench_echo_load: N long-lived connections (default
#            1,000), 64-byte requests, one in flight on each
#   connect  examples/http_hello driven by wrk with "Connection: close" (50 connections, one
#            thread): every request is a new connection, so this measures the accept path
# Prints requests/s, p50 and p99, the server's CPU time over the wall time (how many CPUs it
# kept busy), the busiest thread's share of that CPU time (how evenly the hubs shared the work:
# 100% is one thread doing it all, 50% two hubs sharing it evenly), and the ratios to one hub.
# On this 2-core machine the load generator takes much of a CPU, so two hubs cannot double one
# hub's figure: the ratio between the two spreads is the figure this measures.
#
# Exits 1 if a build or a run fails (a wrk error or non-2xx answer too), 2 on a bad command line.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BUILD=${BUILD:-build/release}
connections=1000
seconds=5
repeat=3

usage() {
  sed -n '5p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
while (($# > 0)); do
  case $1 in
    --connections) connections=${2:?}; shift 2 ;;
    --seconds) seconds=${2:?}; shift 2 ;;
    --repeat) repeat=${2:?}; shift 2 ;;
    -h | --help) usage ;;
    *) echo "hubs.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
[[ $connections =~ ^[1-9][0-9]*$ && $seconds =~ ^[1-9][0-9]*$ && $repeat =~ ^[1-9][0-9]*$ ]] ||
  { echo "hubs.sh: --connections, --seconds and --repeat take whole numbers >= 1" >&2; exit 2; }

harness_prefix=grove-echo-hubs
source bench/server_harness.sh

if [[ ! -f $BUILD/CMakeCache.txt ]]; then
  echo "configuring $BUILD (it has no CMakeCache.txt)"
  cmake -S . -B "$BUILD" -DGROVE_TESTS=OFF -DGROVE_EXAMPLES=ON -DGROVE_BENCH=ON >/dev/null
fi
source cmake/debian-deps.sh
grove_packages+=(wrk)
grove_install_deps
cmake --build "$BUILD" -j2 --target echo_server http_hello bench_echo_load >"$tmp/build.log" 2>&1 ||
  { cat "$tmp/build.log" >&2; die "building echo_server, http_hello and bench_echo_load in $BUILD failed"; }
load_bin=$BUILD/bench/echo/bench_echo_load
ulimit -n "$(ulimit -Hn)"

declare -A args=([one]="" [acceptor]="--hubs 2 --spread acceptor" [reuseport]="--hubs 2 --spread reuseport")
names=(one acceptor reuseport)
loads=(echo connect)
declare -A server_of=([echo]=$BUILD/examples/echo_server [connect]=$BUILD/examples/http_hello)
declare -A rps p50 p99 cpus busiest

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# thread_ticks PID: "tid ticks" for each of the process's threads (user + system).
thread_ticks() {
  local t
  for t in /proc/"$1"/task/*; do awk '{ print $1, $14 + $15 }' "$t/stat" 2>/dev/null || true; done
}

# busiest_share BEFORE AFTER: the busiest thread's share of the CPU time all threads took between
# two thread_ticks samples, in percent.
busiest_share() {
  awk 'NR == FNR { before[$1] = $2; next } { d = $2 - before[$1]; total += d; if (d > most) most = d }
       END { printf "%.0f%%", (total > 0 ? most * 100 / total : 0) }' <(echo "$1") <(echo "$2")
}

# to_us VALUE: wrk's latency (850.00us, 1.20ms, 2.00s) in microseconds.
to_us() {
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else print n * 1e6 }'
}

run_one() {
  local load=$1 name=$2 line="" i t0 c0 c1 t1 out threads0 threads1 key="$1:$2"
  rm -f "$tmp/$name.out"
  # shellcheck disable=SC2086  # the arguments are words
  ("exec" "${server_of[$load]}" 0 ${args[$name]} >"$tmp/$name.out" 2>"$tmp/$name.err") &
  server_pid=$!
  for ((i = 0; i < 100; i++)); do
    line=$(head -n 1 "$tmp/$name.out" 2>/dev/null || true)
    [[ -n $line ]] && break
    process_exited "$server_pid" && { cat "$tmp/$name.err" >&2; die "$name: echo_server exited at start"; }
    sleep 0.1
  done
  [[ $line =~ :([0-9]+)$ ]] || die "$name: echo_server printed '$line'"
  server_port=${BASH_REMATCH[1]}
  if [[ $load == echo ]]; then
    (exec timeout -k 5 $((seconds + 60)) "$load_bin" --port "$server_port" --connections "$connections" \
      --seconds "$seconds" --warmup 1 >"$tmp/load.out" 2>"$tmp/load.err") &
  else
    (exec timeout -k 5 $((seconds + 60)) wrk -t1 -c50 -d"$((seconds + 1))s" --latency -H "Connection: close" \
      "http://127.0.0.1:$server_port/" >"$tmp/load.out" 2>"$tmp/load.err") &
  fi
  load_pid=$!
  sleep 1  # the warm-up: every connection is open, and the timed part is about to begin
  t0=$(now_ns)
  c0=$(cpu_ticks "$server_pid")
  threads0=$(thread_ticks "$server_pid")
  wait "$load_pid" || { cat "$tmp/load.err" >&2; die "$key: the load generator failed"; }
  load_pid=""
  c1=$(cpu_ticks "$server_pid")
  threads1=$(thread_ticks "$server_pid")
  t1=$(now_ns)
  check_server "$name"
  stop_server "$name"
  local r50 r99 r
  if [[ $load == echo ]]; then
    out=$(grep '^requests/s=' "$tmp/load.out") || die "$key: no result from the load generator"
    [[ $out =~ ^requests/s=([0-9.]+)\ p50_us=([0-9.]+)\ p99_us=([0-9.]+) ]] || die "$key: '$out'"
    r=${BASH_REMATCH[1]} r50=${BASH_REMATCH[2]} r99=${BASH_REMATCH[3]}
  else
    if grep -q "Socket errors\|Non-2xx" "$tmp/load.out"; then
      cat "$tmp/load.out" >&2
      die "$key: wrk saw errors"
    fi
    r=$(awk '/Requests\/sec/ { print $2 }' "$tmp/load.out")
    r50=$(to_us "$(awk '$1 == "50%" { print $2 }' "$tmp/load.out")")
    r99=$(to_us "$(awk '$1 == "99%" { print $2 }' "$tmp/load.out")")
    [[ -n $r ]] || { cat "$tmp/load.out" >&2; die "$key: no result from wrk"; }
  fi
  if [[ -z ${rps[$key]:-} ]] || awk -v a="$r" -v b="${rps[$key]}" 'BEGIN { exit !(a > b) }'; then
    rps[$key]=$r
    p50[$key]=$r50
    p99[$key]=$r99
    cpus[$key]=$(awk -v c=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v ns=$((t1 - t0)) \
      'BEGIN { printf "%.2f", c / hz / (ns / 1e9) }')
    busiest[$key]=$(busiest_share "$threads0" "$threads1")
  fi
}

for ((r = 1; r <= repeat; r++)); do
  for load in "${loads[@]}"; do
    for name in "${names[@]}"; do run_one "$load" "$name"; done
  done
done

for load in "${loads[@]}"; do
  if [[ $load == echo ]]; then
    printf '\necho: echo_server, %d long-lived connections, %d s, best of %d\n\n' "$connections" "$seconds" "$repeat"
  else
    printf '\nconnect: http_hello under wrk, a new connection per request (50 at once), %d s, best of %d\n\n' \
      "$seconds" "$repeat"
  fi
  printf '%-10s %12s %10s %10s %6s %16s %8s\n' server requests/s p50_us p99_us cpus "busiest thread" "vs one"
  for name in "${names[@]}"; do
    key=$load:$name
    printf '%-10s %12.0f %10.1f %10.1f %6s %16s %7.2fx\n' "$name" "${rps[$key]}" "${p50[$key]}" "${p99[$key]}" \
      "${cpus[$key]}" "${busiest[$key]}" "$(awk -v a="${rps[$key]}" -v b="${rps[$load:one]}" 'BEGIN { print a / b }')"
  done
  printf 'acceptor / reuseport: %.2fx requests/s\n' \
    "$(awk -v a="${rps[$load:acceptor]}" -v b="${rps[$load:reuseport]}" 'BEGIN { print a / b }')"
done
