#!/usr/bin/env bash
# bench/http/run.sh — a keep-alive "Hello, World!" under wrk, same run, three
# servers: grove's examples/http_hello, the same server hand-written on epoll
# (bench/http/epoll_http_server.cpp), and nginx with one worker. Each server is
# pinned to CPU 0 and wrk (one thread) to CPU 1.
#   CONNECTIONS=100 SECONDS=5 BUILD=build/release bash bench/http/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${BUILD:-build/release}
connections=${CONNECTIONS:-100}
seconds=${SECONDS_PER_RUN:-5}

source cmake/debian-deps.sh
grove_packages+=(wrk nginx-light)
grove_install_deps
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)" --target http_hello bench_http_epoll >/dev/null

work=$(mktemp -d)
pids=()
cleanup() {
  if [ -f "$work/nginx/nginx.pid" ]; then
    nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" -s stop >/dev/null 2>&1 || true
  fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# start NAME CMD... : starts a server on CPU 0 that prints "listening on
# 127.0.0.1:<port>", and sets $port. (Not in a $(...) subshell: pids must stay ours.)
start() {
  local name=$1
  shift
  taskset -c 0 "$@" >"$work/$name.out" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    grep -q "listening on" "$work/$name.out" 2>/dev/null && break
    sleep 0.05
  done
  port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/$name.out" | head -1)
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_nginx() {
  port=$(free_port)
  mkdir -p "$work/nginx"
  cat >"$work/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  client_body_temp_path $work/nginx;
  proxy_temp_path $work/nginx;
  fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx;
  scgi_temp_path $work/nginx;
  server {
    listen 127.0.0.1:$port;
    location / { default_type text/plain; return 200 "Hello, World!"; }
  }
}
CONF
  taskset -c 0 nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" >/dev/null 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    curl -s "http://127.0.0.1:$port/" >/dev/null 2>&1 && break
    sleep 0.05
  done
}

# measure NAME PORT: prints "NAME requests/s p50 p99"
measure() {
  local name=$1 port=$2
  curl -sf "http://127.0.0.1:$port/" | grep -q "Hello, World!" || { echo "$name: wrong answer" >&2; exit 1; }
  taskset -c 1 wrk -t1 -c"$connections" -d1s "http://127.0.0.1:$port/" >/dev/null  # warm-up
  taskset -c 1 wrk -t1 -c"$connections" -d"${seconds}s" --latency "http://127.0.0.1:$port/" >"$work/$name.wrk"
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/$name.wrk")
  p50=$(awk '$1 == "50%" {print $2}' "$work/$name.wrk")
  p99=$(awk '$1 == "99%" {print $2}' "$work/$name.wrk")
  errors=$(grep -c "Socket errors\|Non-2xx" "$work/$name.wrk" || true)
  printf '%-8s %12.0f requests/s   p50 %-8s p99 %-8s %s\n' "$name" "$rps" "$p50" "$p99" \
    "$([ "$errors" -gt 0 ] && echo "(errors: see wrk output)" || echo "")"
  echo "$rps" >"$work/$name.rps"
}

echo "wrk -t1 -c$connections -d${seconds}s, server on CPU 0, wrk on CPU 1"
stop_all() {
  if [ -f "$work/nginx/nginx.pid" ]; then
    nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" -s stop >/dev/null 2>&1 || true
  fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
port=
start grove "$build/examples/http_hello" 0
measure grove "$port"
stop_all
start epoll "$build/bench/http/bench_http_epoll" 0
measure epoll "$port"
stop_all
start_nginx
measure nginx "$port"
stop_all
awk -v g="$(cat "$work/grove.rps")" -v e="$(cat "$work/epoll.rps")" -v n="$(cat "$work/nginx.rps")" \
  'BEGIN { printf "grove/epoll %.2fx (target >= 0.9x)   grove/nginx %.2fx (target >= 1.0x)\n", g / e, g / n }'
