#!/usr/bin/env bash
# bench/file/run.sh — file calls in tasks: what grove::file costs where the page cache has the
# data, what the ways off the hub give on cold random reads, and what a cold read does to the
# other connections of its hub; every figure beside its baseline from the same run.
#
#   [BUILD=build/release] bash bench/file/run.sh [--cold-ops N] [--big-mib M]
#
# 1. cached   4 KiB pread of a cached file in a task: grove::file::pread (RWF_NOWAIT) against
#             libc's pread, ns per call (best of 9 runs of 200,000 each, alternated).
# 2. cold     N random 4 KiB preads (default 20,000) of a cold 1 GiB file by 64 tasks on one
#             hub, through its io_uring and through its thread pool (GROVE_THREADPOOL_SIZE=64),
#             against 64 OS threads calling pread: IOPS, and their ratio to the threads'.
# 3. stall    100 echo connections on one hub (ping every 1 ms): round-trip p50/p99 alone, while
#             a task reads a cold M MiB file (default 256) in 8 MiB calls through grove::file, and
#             while one reads it with plain blocking ::read (what a hub did before grove::file).
#
# The cold files are made once in $TMPDIR (/tmp) and kept: grove-bench-1g.bin,
# grove-bench-big.bin. Exits 1 if a build or run fails, 2 on a bad command line.
set -Eeuo pipefail
trap 'echo "run.sh: line $LINENO: unexpected failure (status $?)" >&2' ERR

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BUILD=${BUILD:-build/release}
cold_ops=20000
big_mib=256
usage() {
  sed -n '6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
while (($# > 0)); do
  case $1 in
    --cold-ops) cold_ops=${2:?}; shift 2 ;;
    --big-mib) big_mib=${2:?}; shift 2 ;;
    -h | --help) usage ;;
    *) echo "run.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
[[ $cold_ops =~ ^[1-9][0-9]*$ && $big_mib =~ ^[1-9][0-9]*$ ]] ||
  { echo "run.sh: --cold-ops and --big-mib take whole numbers >= 1" >&2; exit 2; }

if [[ ! -f $BUILD/CMakeCache.txt ]]; then
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null || { echo "run.sh: configure failed" >&2; exit 1; }
fi
cmake --build "$BUILD" --target bench_file -j"$(nproc)" >/dev/null || { echo "run.sh: build failed" >&2; exit 1; }
bin=$BUILD/bench/file/bench_file

dir=${TMPDIR:-/tmp}
gig=$dir/grove-bench-1g.bin
big=$dir/grove-bench-big.bin
make_file() {  # path MiB
  if [[ ! -f $1 || $(stat -c %s "$1") -ne $(($2 << 20)) ]]; then
    head -c $(($2 << 20)) /dev/urandom >"$1.tmp" && sync "$1.tmp" && mv "$1.tmp" "$1"
  fi
}
make_file "$gig" 1024
make_file "$big" "$big_mib"

echo "== cached reads"
"$bin" cached

echo "== cold random reads ($cold_ops preads of 4 KiB, 1 GiB file)"
iops() { sed -n 's/.*: \([0-9]*\) IOPS$/\1/p'; }
t=$("$bin" cold-threads "$gig" "$cold_ops")
echo "$t"
u=$(GROVE_FILE_IO=io_uring "$bin" cold "$gig" "$cold_ops")
echo "$u"
p=$(GROVE_FILE_IO=pool GROVE_THREADPOOL_SIZE=64 "$bin" cold "$gig" "$cold_ops")
echo "$p"
ti=$(iops <<<"$t") ui=$(iops <<<"$u") pi=$(iops <<<"$p")
awk -v t="$ti" -v u="$ui" -v p="$pi" 'BEGIN { printf "IOPS against 64 OS threads: io_uring %.2fx, pool %.2fx\n", u / t, p / t }'

echo "== a cold ${big_mib} MiB read and 100 echo connections on the same hub"
"$bin" stall "$big"
