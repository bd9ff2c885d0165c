# bench/server_harness.sh — what the server benchmarks (bench/echo/run.sh, bench/threads/run.sh)
# share: sourced, after `cd` to the repository root, with harness_prefix set (the name of the
# temporary directory). Gives:
#   die MESSAGE              "run.sh: MESSAGE" on stderr, exit 1
#   $tmp                     a temporary directory, removed at exit
#   server_pid, load_pid     the children to end at exit, whatever went wrong (set them)
#   process_exited PID       true once PID is gone or a zombie waiting to be reaped
#   now_ns                   the time, in ns
#   load_wait_pct            the load generator's own report of waiting for its CPU, in percent
#   stop_server NAME         SIGTERM, then require exit status 0 within 10 s
#   check_server NAME        the server must still be running after a load run
# A server NAME writes its stderr to $tmp/NAME.err; the load generator to $tmp/load.err.

die() {
  echo "run.sh: $*" >&2
  exit 1
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/$harness_prefix.XXXXXX")
server_pid=""
load_pid=""
cleanup() {
  local pid
  for pid in $load_pid $server_pid; do
    # The load generator runs under timeout(1), which passes TERM on to it.
    kill -TERM "$pid" 2>/dev/null || true
  done
  sleep 0.2
  for pid in $load_pid $server_pid; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# No fork: it runs in sampling loops, which share the CPUs with what they measure.
process_exited() {
  local stat
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 0
  [[ ${stat##*) } == Z* ]]
}

now_ns() { date +%s%N; }

# The load generator warns on stderr when it waited for its CPU more than 1% of the run.
load_wait_pct() {
  local warning
  warning=$(grep -o 'waited [0-9]* ms of [0-9]* ms' "$tmp/load.err" || true)
  if [[ $warning =~ waited\ ([0-9]+)\ ms\ of\ ([0-9]+)\ ms ]]; then
    awk -v w="${BASH_REMATCH[1]}" -v t="${BASH_REMATCH[2]}" 'BEGIN { printf "%.1f", w * 100 / t }'
  else
    echo 0
  fi
}

stop_server() {
  local name=$1 i status=0
  kill -TERM "$server_pid"
  for ((i = 0; i < 100; i++)); do
    process_exited "$server_pid" && break
    sleep 0.1
  done
  if ! process_exited "$server_pid"; then
    kill -KILL "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    die "$name server did not exit within 10 s of SIGTERM"
  fi
  wait "$server_pid" || status=$?
  server_pid=""
  if ((status != 0)); then
    cat "$tmp/$name.err" >&2
    die "$name server exited with status $status on SIGTERM (expected 0)"
  fi
}

check_server() {
  if process_exited "$server_pid"; then
    cat "$tmp/$1.err" >&2
    die "$1 server died during the run"
  fi
}
