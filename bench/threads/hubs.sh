#!/usr/bin/env bash
# bench/threads/hubs.sh — unmodified programs whose threads compute in parallel, natively and
# under grove-run with one hub and with two (GROVE_HUBS), in the same run.
#
#   [BUILD=build/release] bash bench/threads/hubs.sh [--repeat R] [--programs "cpu_threads xz sort"]
#
# Programs (nothing is pinned: each may use both CPUs):
#   cpu_threads  bench_threads_cpu (tests/programs/cpu_threads.c): 8 threads of about 0.25 s of
#                CPU-bound work each, with no syscall or lock while they compute
#   xz           xz -T2 -1 -c: two compressing threads over 64 MiB of made-up words (about 2.6:1)
#   sort         LC_ALL=C sort --parallel=2 -S 64M of 50 MiB of random alphanumeric lines
# xz's and sort's inputs are generated once per run by python3 from a fixed seed: the same bytes
# every run. Each program runs four ways:
#   native       OS threads
#   hubs=1       grove-run --hubs=1: every thread a green thread on one OS thread
#   hubs=2       grove-run --hubs=2: green threads spread over two hubs, each an OS thread
#   hubs=3       grove-run --hubs=3: one hub more than this machine's CPUs, so that the kernel
#                time-slices the hubs' OS threads (xz's main thread then has a hub of its own)
# A grove-run that has no --hubs option (before several hubs) is given GROVE_HUBS in its
# environment instead, which it ignores: its hubs=2 rows then show one hub's figures.
#
# Each way runs R times (default 5), the ways and programs interleaved. Prints the best and the
# median wall time, the best run's CPU time (user + system) and CPU/wall (how many CPUs it kept
# busy), then the ratios of best times (medians' beside them) and their targets:
#   cpu_threads  hubs=2 / hubs=1 <= 0.55x, hubs=2 / native <= 1.1x
#   xz, sort     hubs=2 / native <= 1.15x; hubs=1 and hubs=3 / native for reference
#
# "others" is the CPU time that every other user process on the machine (and the hypervisor, as
# steal) took during a way's most disturbed run, as a percent of one CPU; above 3% the row is
# marked "disturbed": these programs keep both CPUs busy, so whatever else runs slows them.
#
# Every run's output must equal the first native run's byte for byte (cpu_threads' lines, xz's
# compressed stream, sort's lines), and that one is checked itself: cpu_threads printed a line
# per thread, xz's stream decompresses to its input, sort's lines are in order.
#
# Exits 1 if a build, a run or an output check fails (or a run hangs), 2 on a bad command line;
# numbers that miss their targets are reported, not failures.
set -Eeuo pipefail
# A failure of the script itself (not one it reports) must not exit 1 without a word.
trap 'echo "hubs.sh: line $LINENO: unexpected failure (status $?)" >&2' ERR

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BUILD=${BUILD:-build/release}
repeat=5
programs="cpu_threads xz sort"
ways=(native hubs=1 hubs=2 hubs=3)
cpu_threads=8
cpu_units=64
xz_level=-1
text_bytes=$((64 << 20))
lines_bytes=$((50 << 20))

usage() {
  sed -n '5p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
while (($# > 0)); do
  case $1 in
    --repeat | --programs) (($# >= 2)) || { echo "hubs.sh: $1 takes a value" >&2; usage; } ;;&
    --repeat) repeat=$2; shift 2 ;;
    --programs) programs=$2; shift 2 ;;
    -h | --help) usage ;;
    *) echo "hubs.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
[[ $repeat =~ ^[1-9][0-9]*$ ]] || { echo "hubs.sh: --repeat takes a whole number >= 1" >&2; exit 2; }
[[ -n $programs ]] || { echo "hubs.sh: --programs must not be empty" >&2; exit 2; }
for p in $programs; do
  [[ $p == cpu_threads || $p == xz || $p == sort ]] ||
    { echo "hubs.sh: --programs takes cpu_threads, xz and/or sort, got '$p'" >&2; exit 2; }
done
has() { [[ " $programs " == *" $1 "* ]]; }

die() {
  echo "hubs.sh: $*" >&2
  exit 1
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/grove-hubs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# ---------------------------------------------------------------------------------------------
# Build, and what the programs need.
if [[ ! -f $BUILD/CMakeCache.txt ]]; then
  echo "configuring $BUILD (it has no CMakeCache.txt)"
  cmake -S . -B "$BUILD" -DGROVE_TESTS=OFF >"$tmp/build.log" 2>&1 ||
    { cat "$tmp/build.log" >&2; die "configuring $BUILD failed"; }
else
  # Again: a Makefile build configured before bench_threads_cpu existed has no rule for it.
  cmake -S . -B "$BUILD" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log" >&2; die "configuring $BUILD failed"; }
fi
cmake --build "$BUILD" -j2 --target bench_threads_cpu grove_run grove_preload >"$tmp/build.log" 2>&1 ||
  { cat "$tmp/build.log" >&2; die "building bench_threads_cpu and grove_run in $BUILD failed"; }
cpu_bin=$BUILD/bench/threads/bench_threads_cpu
grove_run=$BUILD/hooks/grove-run
tools="python3"
has xz && tools+=" xz"
has sort && tools+=" sort"
for tool in $tools; do
  command -v "$tool" >/dev/null || die "$tool is not installed (cmake/debian-deps.sh lists its Debian package)"
done

# The ways are set here alone, whatever the caller's environment says. sort compares bytes: the
# same order on every machine, and no locale's collation in the figures.
unset GROVE_THREADS GROVE_HUBS LD_PRELOAD
export LC_ALL=C

hubs_option=no
[[ $("$grove_run" --help 2>&1 || true) == *--hubs=* ]] && hubs_option=yes

# ---------------------------------------------------------------------------------------------
# The inputs.
if has xz || has sort; then
  # words: made-up lowercase words of 2-13 letters, the rank-k word drawn with probability
  # about 1/k (as in natural text), one in 12 followed by a newline. lines: random bytes mapped
  # to 62 alphanumerics and, for 10 byte values of 256, a newline (lines of 25 bytes on average).
  python3 - "$text_bytes" "$tmp/words.txt" "$lines_bytes" "$tmp/lines.txt" <<'EOF' || die "generating the inputs failed"
import random, string, sys
from array import array

text_bytes, text_path, lines_bytes, lines_path = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
rnd = random.Random(20240601)
words = ["".join(rnd.choices(string.ascii_lowercase, k=rnd.randint(2, 13))) for _ in range(8192)]
# A uniformly random 16-bit index into the table picks rank k (1-based) with probability ~1/k.
table = [words[int(8192 ** rnd.random()) - 1] + ("\n" if rnd.random() < 1 / 12 else " ") for _ in range(65536)]
with open(text_path, "w") as f:
    written = 0
    while written < text_bytes:
        chunk = "".join([table[i] for i in array("H", rnd.randbytes(2 * 65536))])
        f.write(chunk)
        written += len(chunk)
    f.truncate(text_bytes)

alphabet = (string.ascii_letters + string.digits).encode()
to_text = bytes(10 if b < 10 else alphabet[b % len(alphabet)] for b in range(256))
with open(lines_path, "wb") as f:
    f.write(rnd.randbytes(lines_bytes - 1).translate(to_text) + b"\n")
EOF
fi
mkdir "$tmp/sort-tmp"

# set_command PROGRAM WAY: sets cmd to the command line of PROGRAM run WAY.
set_command() {
  local program=$1 way=$2
  case $way in
    native) cmd=() ;;
    hubs=*)
      if [[ $hubs_option == yes ]]; then
        cmd=("$grove_run" "--$way")
      else
        cmd=(env "GROVE_HUBS=${way#hubs=}" "$grove_run")
      fi
      ;;
  esac
  case $program in
    cpu_threads) cmd+=("$cpu_bin" "$cpu_threads" "$cpu_units") ;;
    xz) cmd+=(xz -T2 "$xz_level" -c "$tmp/words.txt") ;;
    sort) cmd+=(sort --parallel=2 -S 64M -T "$tmp/sort-tmp" "$tmp/lines.txt") ;;
  esac
}

# ---------------------------------------------------------------------------------------------
# Helpers.

# others_ticks (bench/threads/others.sh): the CPU the rest of the machine takes meanwhile.
source bench/threads/others.sh

# check_first PROGRAM FILE: the first native output is right in itself.
check_first() {
  local program=$1 file=$2
  case $program in
    cpu_threads)
      local good
      good=$(grep -c -E '^thread [0-9]+: [0-9a-f]{16}$' "$file" || true)
      [[ $good == "$cpu_threads" && $(wc -l <"$file") == "$cpu_threads" ]] ||
        die "cpu_threads natively: expected $cpu_threads lines 'thread I: RESULT', got: $(head -c 1000 "$file")"
      ;;
    xz) xz -dc "$file" | cmp -s - "$tmp/words.txt" || die "xz natively: its output does not decompress to its input" ;;
    sort) sort -c "$file" 2>"$tmp/err" || die "sort natively: its output is not in order: $(cat "$tmp/err")" ;;
  esac
}

# run_once PROGRAM WAY: one timed run; its output checked against the first native one.
declare -A walls cpu best_wall others limit
run_once() {
  local program=$1 way=$2 key="$1 $2" status=0 others0 real user sys other
  local out=$tmp/out expected=$tmp/$1.expected
  set_command "$program" "$way"
  # A hang (several hubs waiting for each other) ends the run: natively after 300 s, under
  # grove-run after 10 times the first native run and a minute.
  local seconds=${limit[$program]:-300}
  [[ $way == native ]] && seconds=300
  others_ticks
  others0=$other_ticks
  local TIMEFORMAT='%3R %3U %3S'
  { time timeout -k 5 "$seconds" "${cmd[@]}" >"$out" 2>"$tmp/err" || status=$?; } 2>"$tmp/time"
  others_ticks
  read -r real user sys <"$tmp/time"
  if ((status == 124 || status == 137)); then
    cat "$tmp/err" >&2
    die "$key: ${cmd[*]} did not finish within $seconds s"
  elif ((status != 0)); then
    cat "$tmp/err" >&2
    [[ $way != native && $hubs_option == no && -z ${walls[$key]:-} ]] && echo "(this grove-run has no --hubs option)" >&2
    die "$key: ${cmd[*]} failed (status $status)"
  fi
  if [[ ! -f $expected ]]; then
    check_first "$program" "$out"
    mv "$out" "$expected"
    limit[$program]=$(awk -v r="$real" 'BEGIN { printf "%d", 10 * r + 60 }')
  elif ! cmp -s "$out" "$expected"; then
    local kept
    kept=$(mktemp -d "${TMPDIR:-/tmp}/grove-hubs-mismatch.XXXXXX")
    mv "$out" "$kept/$program.$way.out"
    mv "$expected" "$kept/$program.native.out"
    die "$key: the output differs from the native run's ($(cmp "$kept/$program.native.out" "$kept/$program.$way.out" 2>&1 | head -n 1)); both kept in $kept"
  fi
  other=$(awk -v a="$others0" -v b="$other_ticks" -v r="$real" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.1f", (b - a) / hz * 100 / (r > 0 ? r : 0.001) }')
  walls[$key]+=" $real"
  if [[ -z ${best_wall[$key]:-} ]] || awk -v a="$real" -v b="${best_wall[$key]}" 'BEGIN { exit !(a < b) }'; then
    best_wall[$key]=$real
    cpu[$key]=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.3f", u + s }')
  fi
  if [[ -z ${others[$key]:-} ]] || awk -v a="$other" -v b="${others[$key]}" 'BEGIN { exit !(a > b) }'; then
    others[$key]=$other
  fi
  progress+=" $way $real"
}

# median LIST: the median of the numbers in LIST.
median() {
  tr ' ' '\n' <<<"$1" | grep . | sort -g |
    awk '{ v[NR] = $1 } END { printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# ---------------------------------------------------------------------------------------------
# The runs.
declare -A label=(
  [cpu_threads]="cpu_threads"
  [xz]="xz -T2"
  [sort]="sort"
)
echo "bench/threads hubs: programs with parallel threads, natively and under grove-run with 1 and 2 hubs;"
echo "  wall time in s, best and median of $repeat runs; nothing pinned ($(nproc) CPUs)"
for program in $programs; do
  set_command "$program" native
  echo "  ${label[$program]}: ${cmd[*]}"
done
if [[ $hubs_option == yes ]]; then
  echo "  hubs=N: $grove_run --hubs=N PROGRAM..."
else
  echo "  hubs=N: GROVE_HUBS=N $grove_run PROGRAM...  ($grove_run has no --hubs option: GROVE_HUBS is ignored)"
fi
# Repeats interleave the ways, so that a neighbour's burst of work does not land on all the runs
# of one way.
for ((r = 1; r <= repeat; r++)); do
  line="run $r/$repeat:"
  for program in $programs; do
    progress=""
    for way in "${ways[@]}"; do run_once "$program" "$way"; done
    line+="  ${label[$program]}$progress"
  done
  echo "$line"
done

# ---------------------------------------------------------------------------------------------
# Report.
echo
disturbed=""
printf '%-12s %-7s %9s %9s %9s %9s %9s\n' program way best median "CPU" "CPU/wall" others
for program in $programs; do
  for way in "${ways[@]}"; do
    key="$program $way"
    mark=""
    if awk -v o="${others[$key]}" 'BEGIN { exit !(o > 3) }'; then
      mark="  disturbed"
      disturbed=yes
    fi
    printf '%-12s %-7s %9.3f %9.3f %9.3f %9.2f %8.1f%%%s\n' "${label[$program]}" "$way" "${best_wall[$key]}" \
      "$(median "${walls[$key]}")" "${cpu[$key]}" "$(awk -v c="${cpu[$key]}" -v w="${best_wall[$key]}" 'BEGIN { print c / w }')" \
      "${others[$key]}" "$mark"
  done
done
if [[ -n $disturbed ]]; then
  echo "disturbed: other processes took more than 3% of a CPU during a run (the worst of the repeats);"
  echo "compare such rows with care, rerun on a quiet machine or with more --repeat"
fi

# ratio PROGRAM WAY OVER TARGET: WAY's best time over OVER's (and the medians'), beside TARGET if any.
ratio() {
  local program=$1 way=$2 over=$3 target=$4
  awk -v name="${label[$program]}" -v what="$way / $over" -v a="${best_wall[$program $way]}" \
    -v b="${best_wall[$program $over]}" -v ma="$(median "${walls[$program $way]}")" \
    -v mb="$(median "${walls[$program $over]}")" -v target="$target" 'BEGIN {
      r = a / b
      verdict = target == "" ? "reference" : sprintf("target <= %sx: %s", target, r <= target + 0 ? "ok" : "MISS")
      printf "%-12s %-16s %6.3fx (medians %.3fx)   %s\n", name, what, r, ma / mb, verdict
    }'
}
echo
if has cpu_threads; then
  ratio cpu_threads hubs=2 hubs=1 0.55
  ratio cpu_threads hubs=2 native 1.1
  ratio cpu_threads hubs=1 native ""
fi
for program in xz sort; do
  has "$program" || continue
  ratio "$program" hubs=2 native 1.15
  ratio "$program" hubs=1 native ""
  ratio "$program" hubs=3 native ""
done

if has cpu_threads && awk -v c="${cpu[cpu_threads hubs=2]}" -v w="${best_wall[cpu_threads hubs=2]}" 'BEGIN { exit !(c / w < 1.5) }'; then
  echo
  echo "NOTE: under hubs=2 cpu_threads kept fewer than 1.5 CPUs busy: its threads did not run on two hubs in parallel."
fi
exit 0
