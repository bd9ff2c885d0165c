#!/usr/bin/env bash
# demo.sh — a guided tour of grove, from a fresh Debian 12 machine.
# Installs missing Debian packages, builds the examples, and runs them in order.
set -euo pipefail
cd "$(dirname "$0")"
source cmake/debian-deps.sh
grove_install_deps

cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGROVE_EXAMPLES=ON -DGROVE_BENCH=ON >/dev/null
examples=(greenlet_pingpong generator sleepers producer_consumer semaphore_workers future wait_with_timeout
  blocking_in_thread fetcher chat_server echo_server echo_client bug_service grove_run grove_preload
  bench_threads_echo bench_echo_load)
cmake --build build/release -j "$(nproc)" --target "${examples[@]}" >/dev/null

step() {
  echo
  echo "──── $1"
  echo "$2" | fold -s -w 78
  echo
  shift 2
  "$@"
}

step "1. greenlets: switching by hand (examples/greenlet_pingpong.cpp)" \
  "Three greenlets pass a ball round a ring. Nothing schedules them: each runs until it calls switch_to on the next. The one that finishes hands its result to its parent; the others are killed, with their destructors run, when the last handles to them go away." \
  build/release/examples/greenlet_pingpong

step "2. generators from greenlets (examples/generator.cpp)" \
  "A generator is a greenlet that yields values by switching back to whoever asked. One generator consumes another while producing; an endless one is simply abandoned." \
  build/release/examples/generator

step "3. tasks on the hub (examples/sleepers.cpp)" \
  "Tasks are greenlets that a hub (a libev loop in its own greenlet) switches for you. Four tasks sleep 1, 2, 3 and 4 seconds: while one sleeps the hub runs the others, so all are done in about 4 seconds." \
  build/release/examples/sleepers

step "4. a bounded queue between a producer and two consumers (examples/producer_consumer.cpp)" \
  "put blocks while the queue (maxsize 2) is full: backpressure between tasks, with no thread and no lock." \
  build/release/examples/producer_consumer

step "5. a semaphore lets three workers in at a time (examples/semaphore_workers.cpp)" \
  "Ten workers share three slots; std::lock_guard works on grove's semaphore and mutex." \
  build/release/examples/semaphore_workers

step "6. a future: async_result set by another task (examples/future.cpp)" \
  "One task computes, another waits for the result (or the exception) with a time limit or without." \
  build/release/examples/future

step "7. waiting on tasks with a time limit (examples/wait_with_timeout.cpp)" \
  "wait_any returns the first to finish; joinall with a limit tells which are done and which still pending; the slow ones are killed." \
  build/release/examples/wait_with_timeout

step "8. a blocking call on the hub's thread pool (examples/blocking_in_thread.cpp)" \
  "run_in_thread hands a blocking call to a real thread; the task waits, and the hub keeps ticking." \
  build/release/examples/blocking_in_thread

step "9. the crawler: concurrent fetches over real sockets (examples/fetcher.cpp)" \
  "An HTTP server embedded in the program serves pages slowly; each fetch is plain sequential socket code in its own task, four at a time. The total is about the slowest pages, not the sum." \
  build/release/examples/fetcher

step "10. a chat server that pushes every line to every client (examples/chat_server.cpp)" \
  "Each client has a reader task and a writer task joined by a queue; three clients join, talk, and print what they heard." \
  build/release/examples/chat_server

echo_demo() {
  build/release/examples/echo_server 0 >/tmp/grove-demo-echo.out &
  local server=$!
  for _ in $(seq 50); do grep -q listening /tmp/grove-demo-echo.out 2>/dev/null && break; sleep 0.1; done
  local port
  port=$(sed -n 's/listening on 127.0.0.1://p' /tmp/grove-demo-echo.out)
  echo "echo_server listening on port $port"
  build/release/examples/echo_client "$port" 100
  kill -TERM "$server" && wait "$server" && echo "echo_server stopped cleanly on SIGTERM"
}
step "11. an echo server and 100 clients (examples/echo_server.cpp, echo_client.cpp)" \
  "A task per connection, plain recv/send_all loops; the server exits cleanly on SIGTERM." \
  echo_demo

bug_service_demo() {
  build/release/examples/bug_service 0 >/tmp/grove-demo-bugs.out 2>&1 &
  local server=$!
  for _ in $(seq 300); do grep -q listening /tmp/grove-demo-bugs.out 2>/dev/null && break; sleep 0.1; done
  local port
  port=$(sed -n 's/listening on 127.0.0.1://p' /tmp/grove-demo-bugs.out)
  echo "GET /bugs/1:     $(curl -s "http://127.0.0.1:$port/bugs/1")"
  echo "GET /bugs/999:   $(curl -s -w ' (%{http_code})' "http://127.0.0.1:$port/bugs/999")"
  echo "GET /bugs/abc:   $(curl -s -w ' (%{http_code})' "http://127.0.0.1:$port/bugs/abc")"
  echo "10 requests that each make PostgreSQL sleep 0.5 s, all at once:"
  local t0 clients=()
  t0=$(date +%s%N)
  for i in $(seq 10); do
    curl -s -o /dev/null "http://127.0.0.1:$port/bugs/$(( (i % 5) + 1 ))?delay=0.5" &
    clients+=($!)
  done
  wait "${clients[@]}"
  echo "  done in $(( ($(date +%s%N) - t0) / 1000000 )) ms (one after another: 5000 ms)"
  kill -TERM "$server" && wait "$server" 2>/dev/null
}
step "12. a web service on a blocking database client (examples/bug_service.cpp)" \
  "GET /bugs/{id} answered from PostgreSQL with plain blocking libpq calls over a pool of 10 connections. Linking grove::hooks makes those calls cooperative, so slow queries overlap. (It starts its own throwaway PostgreSQL cluster.)" \
  bug_service_demo

grove_run_demo() {
  local out=/tmp/grove-demo-cat.out
  for how in native grove-run; do
    local runner=()
    [ "$how" = grove-run ] && runner=(build/release/hooks/grove-run)
    (sleep 1; echo "input for cat") | "${runner[@]}" /bin/cat >"$out" &
    sleep 0.5
    local pid
    pid=$(pgrep -n -x cat)
    local call
    call=$(cut -d' ' -f1 "/proc/$pid/syscall" 2>/dev/null || echo "?")
    case "$call" in 0) call="read" ;; 232) call="epoll_wait (the hub)" ;; esac
    wait
    printf '  %-10s cat waits for input in: %-22s and prints: %s\n' "$how" "$call" "$(cat "$out")"
  done
}
step "13. an unmodified binary under grove-run (hooks/grove_run.cpp)" \
  "grove-run preloads libgrove-preload.so: the program's main thread gets a hub and its blocking calls wait on it. /bin/cat, untouched, waits for input in read() natively and in the hub's epoll_wait under grove-run, with the same output." \
  grove_run_demo

threads_demo() {
  # bench/threads/run.sh builds what it needs, starts each server fresh, drives it with 1,000
  # connections from bench/echo's load generator and samples its RSS and OS threads.
  bash bench/threads/run.sh --servers "native grove-run" --connections 1000 --seconds 3 --warmup 1
}
step "14. an unmodified threaded server, natively and under grove-run (bench/threads/thread_echo_server.c)" \
  "A plain C echo server that starts one pthread per connection, with blocking recv/send: the way servers were written before event loops. Natively each of its 1,000 connections is an OS thread with an 8 MiB stack. Under grove-run, each pthread is a green thread: a grove task on one OS thread, blocking in the same calls, which now wait on the hub. Same binary, side by side:" \
  threads_demo

echo
echo "──── That is the tour: greenlets, the hub, cooperative I/O, the hooks, and green pthreads."
