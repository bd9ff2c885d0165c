#!/usr/bin/env bash
# bench/threads/handoff.sh — what a hand-off between two pthreads costs through a pthread
# mutex + condition variable and through mutexes alone: natively and under grove-run's green
# pthreads on one hub and on two, in the same run.
#
#   [BUILD=build/release] bash bench/threads/handoff.sh [--rounds R] [--round-ms M] [--repeat N]
#
# Runs bench_threads_handoff (see handoff.c: best of R rounds of about M ms each) four ways:
#   native, CPU 1                 both threads on one CPU, as under --hubs=1
#   native, CPUs 0,1              the threads free to run on both CPUs (wake-ups cross CPUs)
#   grove-run --hubs=1, CPU 1     green pthreads: both threads are tasks on one hub, one OS
#                                 thread (--hubs=1 given: the default is a hub per CPU)
#   grove-run --hubs=2, CPUs 0,1  green pthreads on two hubs, each its own OS thread: a new
#                                 green thread goes to the least-loaded hub, so the two threads
#                                 land on different hubs and every hand-off crosses hubs (an
#                                 OS-thread wake through the parking lot and the other hub's post)
# and prints ns per hand-off, the OS threads seen while the two threads ran (1 for --hubs=1,
# 2 for --hubs=2, plus grove's helper threads if any), and the ratios: --hubs=1 to native on
# CPU 1, --hubs=2 to native on CPUs 0,1, and --hubs=2 to --hubs=1 (for information). A
# grove-run that has no --hubs option (before several hubs) is given GROVE_HUBS in its
# environment instead, which it ignores: its --hubs=2 row then shows one hub's figures (and
# 1 OS thread, which is noted). With --repeat N each way runs N times and keeps its fastest
# figures.
#
# "others" is the CPU time that every other user process on the machine (and the hypervisor, as
# steal) took during the run, as a percent of one CPU; above 3% the row is marked "disturbed".
#
# Exits 1 if a build or a run fails (or hangs for 120 s), 2 on a bad command line.
set -Eeuo pipefail
# A failure of the script itself (not one it reports) must not exit 1 without a word.
trap 'echo "handoff.sh: line $LINENO: unexpected failure (status $?)" >&2' ERR

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BUILD=${BUILD:-build/release}
rounds=7
round_ms=100
repeat=1

usage() {
  sed -n '6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
while (($# > 0)); do
  case $1 in
    --rounds) rounds=${2:?}; shift 2 ;;
    --round-ms) round_ms=${2:?}; shift 2 ;;
    --repeat) repeat=${2:?}; shift 2 ;;
    -h | --help) usage ;;
    *) echo "handoff.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
[[ $rounds =~ ^[1-9][0-9]*$ && $round_ms =~ ^[1-9][0-9]*$ && $repeat =~ ^[1-9][0-9]*$ ]] ||
  { echo "handoff.sh: --rounds, --round-ms and --repeat take whole numbers >= 1" >&2; exit 2; }

die() {
  echo "handoff.sh: $*" >&2
  exit 1
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/grove-handoff.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

cmake --build "$BUILD" -j2 --target bench_threads_handoff grove_run grove_preload >"$tmp/build.log" 2>&1 ||
  { cat "$tmp/build.log" >&2; die "building bench_threads_handoff and grove_run in $BUILD failed"; }
bin=$BUILD/bench/threads/bench_threads_handoff
grove_run=$BUILD/hooks/grove-run
# The ways are set here alone, whatever the caller's environment says.
unset GROVE_THREADS GROVE_HUBS LD_PRELOAD

hubs_option=no
[[ $("$grove_run" --help 2>&1 || true) == *--hubs=* ]] && hubs_option=yes
# grove_hubs N: sets cmd to grove-run with N hubs, before the program's name.
grove_hubs() {
  if [[ $hubs_option == yes ]]; then
    cmd=("$grove_run" "--hubs=$1")
  else
    cmd=(env "GROVE_HUBS=$1" "$grove_run")
  fi
}

# others_ticks (bench/threads/others.sh): the CPU the rest of the machine takes meanwhile.
source bench/threads/others.sh

# run_way KEY CPUS COMMAND...: one run, kept if faster.
declare -A condvar_ns mutex_ns os_threads others
run_way() {
  local key=$1 cpus=$2 others0 t0 status=0 line other
  shift 2
  others_ticks
  others0=$other_ticks
  t0=$(date +%s%N)
  timeout -k 5 120 taskset -c "$cpus" "$@" --rounds "$rounds" --round-ms "$round_ms" >"$tmp/out" 2>"$tmp/err" || status=$?
  others_ticks
  other=$(awk -v a="$others0" -v b="$other_ticks" -v t0="$t0" -v t1="$(date +%s%N)" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.1f", (b - a) / hz * 100 / ((t1 - t0) / 1e9) }')
  if ((status == 124 || status == 137)); then
    cat "$tmp/out" "$tmp/err" >&2
    die "$key: $* did not finish within 120 s (a hand-off that never happens?)"
  elif ((status != 0)); then
    cat "$tmp/out" "$tmp/err" >&2
    die "$key: $* failed (status $status)"
  fi
  local c m t
  line=$(grep '^condvar ' "$tmp/out") || die "$key: no condvar line in: $(cat "$tmp/out")"
  [[ $line =~ ns_per_handoff=([0-9.]+).*os_threads=(-?[0-9]+) ]] || die "$key: unexpected output '$line'"
  c=${BASH_REMATCH[1]}
  t=${BASH_REMATCH[2]}
  line=$(grep '^mutex ' "$tmp/out") || die "$key: no mutex line in: $(cat "$tmp/out")"
  [[ $line =~ ns_per_handoff=([0-9.]+).*os_threads=(-?[0-9]+) ]] || die "$key: unexpected output '$line'"
  m=${BASH_REMATCH[1]}
  ((BASH_REMATCH[2] > t)) && t=${BASH_REMATCH[2]}
  if [[ -z ${condvar_ns[$key]:-} ]] || awk -v a="$c" -v b="${condvar_ns[$key]}" 'BEGIN { exit !(a < b) }'; then
    condvar_ns[$key]=$c
  fi
  if [[ -z ${mutex_ns[$key]:-} ]] || awk -v a="$m" -v b="${mutex_ns[$key]}" 'BEGIN { exit !(a < b) }'; then
    mutex_ns[$key]=$m
  fi
  os_threads[$key]=$t
  # The most disturbed of the repeats: a kept figure may come from any of them.
  if [[ -z ${others[$key]:-} ]] || awk -v a="$other" -v b="${others[$key]}" 'BEGIN { exit !(a > b) }'; then
    others[$key]=$other
  fi
}

ways=("native, CPU 1" "native, CPUs 0,1" "grove-run --hubs=1, CPU 1" "grove-run --hubs=2, CPUs 0,1")
best=""
((repeat > 1)) && best=", fastest of $repeat runs"
echo "bench/threads handoff: two pthreads handing control back and forth; best of $rounds rounds of ~$round_ms ms$best"
if [[ $hubs_option == yes ]]; then
  echo "  $bin; grove-run: $grove_run --hubs=N"
else
  echo "  $bin; grove-run: GROVE_HUBS=N $grove_run  (it has no --hubs option: GROVE_HUBS is ignored)"
fi
for ((r = 0; r < repeat; r++)); do
  run_way "${ways[0]}" 1 "$bin"
  run_way "${ways[1]}" 0,1 "$bin"
  grove_hubs 1
  run_way "${ways[2]}" 1 "${cmd[@]}" "$bin"
  grove_hubs 2
  run_way "${ways[3]}" 0,1 "${cmd[@]}" "$bin"
done

echo
disturbed=""
printf '%-28s %16s %16s %11s %11s\n' "" "condvar ns/hand" "mutex ns/hand" "OS threads" "others"
for way in "${ways[@]}"; do
  mark=""
  if awk -v o="${others[$way]}" 'BEGIN { exit !(o > 3) }'; then
    mark="  disturbed"
    disturbed=yes
  fi
  printf '%-28s %16.1f %16.1f %11d %10.1f%%%s\n' "$way" "${condvar_ns[$way]}" "${mutex_ns[$way]}" "${os_threads[$way]}" \
    "${others[$way]}" "$mark"
done
[[ -n $disturbed ]] && echo "disturbed: other processes took more than 3% of a CPU during the run (the worst of the repeats)"

# ratio NAME WAY OVER [NOTE]: WAY's ns per hand-off over OVER's, and the speed-up (OVER's over WAY's).
ratio() {
  awk -v name="$1" -v gc="${condvar_ns[$2]}" -v nc="${condvar_ns[$3]}" -v gm="${mutex_ns[$2]}" \
    -v nm="${mutex_ns[$3]}" -v note="${4:-}" 'BEGIN {
      printf "%-37s ns per hand-off: condvar %.3fx (speed-up %.2fx), mutex %.3fx (speed-up %.2fx)%s\n", name ":", gc / nc, nc / gc, gm / nm, nm / gm, note
    }'
}
echo
hubs1=${ways[2]}
hubs2=${ways[3]}
ratio "hubs=1, CPU 1 / native, CPU 1" "$hubs1" "${ways[0]}"
ratio "hubs=2, CPUs 0,1 / native, CPUs 0,1" "$hubs2" "${ways[1]}"
ratio "hubs=2 / hubs=1" "$hubs2" "$hubs1" "  (for information)"
notes=()
((${os_threads[$hubs1]} > 1)) &&
  notes+=("under grove-run --hubs=1 the two threads ran on ${os_threads[$hubs1]} OS threads: green pthreads were not in effect.")
if ((${os_threads[$hubs2]} < 2)); then
  notes+=("under grove-run --hubs=2 the two threads ran on ${os_threads[$hubs2]} OS thread: the second hub did not run, so no hand-off crossed hubs.")
elif ((${os_threads[$hubs2]} > 2)); then
  notes+=("under grove-run --hubs=2 there were ${os_threads[$hubs2]} OS threads, not 2 (one per hub): grove's helper threads, or threads that were not green.")
fi
if ((${#notes[@]} > 0)); then
  echo
  for note in "${notes[@]}"; do echo "NOTE: $note"; done
fi
exit 0
