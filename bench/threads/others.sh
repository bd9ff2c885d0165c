# bench/threads/others.sh — sourced by the bench/threads scripts: how much CPU the rest of the
# machine took while a benchmark ran (their "others" column).
#
# others_ticks [PID...]: sets other_ticks to the CPU time, in clock ticks, of every user process
# on the machine but the calling script and the PIDs given (their own time and their reaped
# children's, which is how the compilers of a concurrent build are caught), plus the
# hypervisor's steal time. What the script runs as its children (the programs measured, a load
# generator) lands in the script's own time, which is left out. No fork.
others_ticks() {
  local p line skip
  local -a f
  other_ticks=0
  for p in /proc/[0-9]*; do
    [[ ${p#/proc/} == "$$" ]] && continue
    for skip in "$@"; do [[ ${p#/proc/} == "$skip" ]] && continue 2; done
    { read -r line <"$p/stat"; } 2>/dev/null || continue
    # After the command name: state is field 0, parent 1, utime 11, stime 12, cutime 13, cstime 14.
    read -r -a f <<<"${line##*) }"
    # Kernel threads (kthreadd's children) are left out: ksoftirqd's share of the loopback
    # traffic is part of the echo benchmarks, up to 10% of a CPU at 10,000 connections.
    ((f[1] == 2 || ${p#/proc/} == 2)) && continue
    ((other_ticks += f[11] + f[12] + f[13] + f[14]))
  done
  # The first line of /proc/stat sums all CPUs; steal is its 8th number.
  read -r -a f </proc/stat
  ((other_ticks += f[8]))
}
