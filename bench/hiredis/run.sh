#!/usr/bin/env bash
# bench/hiredis/run.sh — blocking hiredis in grove tasks (grove::hooks) beside hiredis's own
# asynchronous API on libev, in the same run, against one redis-server.
#
#   [BUILD=build/release] bash bench/hiredis/run.sh [--transport unix|tcp|both] [--connections N]
#                                                   [--seconds T] [--warmup W] [--rounds R]
#
# For each transport (default: both; a Unix socket, then TCP on loopback), starts a fresh
# redis-server (no persistence) pinned to CPU 0 and runs bench_hiredis pinned to CPU 1 (on a
# machine with one CPU, unpinned, and the output says so): N connections (default 100) each
# doing SET then GET with one command in flight, T seconds (default 3) after W of warm-up (1),
# alternating the two modes for R rounds (3) and keeping each mode's best. Prints each mode's
# requests/s and client CPU per request, and the hooks/async ratios beside the target
# (requests/s >= 0.8x). Exits 1 on any failure (a build error, a server that does not start, a
# wrong reply); a ratio that misses its target is reported, not a failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BUILD=${BUILD:-build/release}
transports="unix tcp"
connections=100
seconds=3
warmup=1
rounds=3

usage() {
  sed -n '5,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
while (($# > 0)); do
  case $1 in
    --transport)
      case ${2:?} in
        unix | tcp) transports=$2 ;;
        both) transports="unix tcp" ;;
        *) echo "run.sh: --transport takes unix, tcp or both, got '$2'" >&2; exit 2 ;;
      esac
      shift 2 ;;
    --connections) connections=${2:?}; shift 2 ;;
    --seconds) seconds=${2:?}; shift 2 ;;
    --warmup) warmup=${2:?}; shift 2 ;;
    --rounds) rounds=${2:?}; shift 2 ;;
    -h | --help) usage ;;
    *) echo "run.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
[[ $connections =~ ^[1-9][0-9]*$ && $seconds =~ ^[1-9][0-9]*$ && $warmup =~ ^[0-9]+$ && $rounds =~ ^[1-9][0-9]*$ ]] ||
  { echo "run.sh: --connections, --seconds and --rounds take whole numbers >= 1, --warmup >= 0" >&2; exit 2; }

die() {
  echo "run.sh: $*" >&2
  exit 1
}

source cmake/debian-deps.sh
grove_install_deps

tmp=$(mktemp -d "${TMPDIR:-/tmp}/grove-hiredis.XXXXXX")
server_pid=""
cleanup() {
  if [[ -n $server_pid ]]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ ! -f $BUILD/CMakeCache.txt ]]; then
  echo "configuring $BUILD (it has no CMakeCache.txt)"
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGROVE_TESTS=OFF >/dev/null
fi
cmake --build "$BUILD" -j2 --target bench_hiredis >"$tmp/build.log" 2>&1 ||
  { cat "$tmp/build.log" >&2; die "building bench_hiredis in $BUILD failed"; }
bench_bin=$BUILD/bench/hiredis/bench_hiredis

server_cpu=()
client_cpu=()
pinning="redis-server on CPU 0, bench_hiredis on CPU 1"
if command -v taskset >/dev/null && (($(nproc) >= 2)); then
  server_cpu=(taskset -c 0)
  client_cpu=(taskset -c 1)
else
  pinning="NOT pinned (needs taskset and 2 CPUs): server and client share CPUs"
fi

# start_server TRANSPORT: a fresh redis-server, sets server_pid and target (bench_hiredis's
# server arguments).
start_server() {
  local transport=$1 i
  local args=(--save "" --appendonly no --dir "$tmp" --daemonize no --logfile "$tmp/redis.log")
  local ping=()
  if [[ $transport == unix ]]; then
    args+=(--port 0 --unixsocket "$tmp/redis.sock")
    target=(--unix "$tmp/redis.sock")
    ping=(-s "$tmp/redis.sock")
  else
    local port
    port=$("$bench_bin" --free-port)
    args+=(--port "$port" --bind 127.0.0.1)
    target=(--port "$port")
    ping=(-h 127.0.0.1 -p "$port")
  fi
  ("${server_cpu[@]}" redis-server "${args[@]}" >/dev/null 2>&1) &
  server_pid=$!
  for ((i = 0; i < 100; i++)); do
    [[ $(redis-cli "${ping[@]}" ping 2>/dev/null) == PONG ]] && return
    kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/redis.log" >&2; die "redis-server exited at start"; }
    sleep 0.1
  done
  cat "$tmp/redis.log" >&2
  die "redis-server did not answer PING within 10 s"
}

stop_server() {
  kill -TERM "$server_pid"
  wait "$server_pid" || true
  server_pid=""
}

echo "bench/hiredis: $connections connections, SET+GET with one command in flight each, ${seconds} s after" \
  "${warmup} s warm-up, best of $rounds alternating rounds; $pinning"
declare -A output
for transport in $transports; do
  start_server "$transport"
  output[$transport]=$("${client_cpu[@]}" "$bench_bin" "${target[@]}" --connections "$connections" \
    --seconds "$seconds" --warmup "$warmup" --rounds "$rounds") || die "bench_hiredis failed over $transport"
  stop_server
done

echo
printf '%-9s %-6s %12s %24s\n' transport mode requests/s "client CPU us/request"
for transport in $transports; do
  while read -r line; do
    [[ $line =~ ^mode=([a-z]+)\ requests/s=([0-9.]+)\ client_cpu_us/request=([0-9.]+) ]] || continue
    printf '%-9s %-6s %12s %24s\n' "$transport" "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "${BASH_REMATCH[3]}"
  done <<<"${output[$transport]}"
done
echo
printf '%-9s %24s %34s\n' "hooks/async" "requests/s (>= 0.8x)" "client CPU per request (lower: better)"
for transport in $transports; do
  line=$(grep '^ratio' <<<"${output[$transport]}")
  [[ $line =~ requests/s=([0-9.]+)\ client_cpu_per_request=([0-9.]+) ]] || die "unexpected output: '$line'"
  awk -v t="$transport" -v r="${BASH_REMATCH[1]}" -v c="${BASH_REMATCH[2]}" \
    'BEGIN { printf "%-9s %19.2fx %-4s %30.2fx\n", t, r, (r >= 0.8 ? "ok" : "MISS"), c }'
done
