/* spin [MS] — holds its thread for 1 s (or MS ms) in a loop that never
 * blocks (the monitor checks every 50 ms; a loaded machine may run its
 * watchdog late), between two short sleeps, then exits: the blocking
 * monitor's tests under grove-run (programs_test.cpp). With a spin a little
 * longer than the monitor's period, the program exits while the monitor
 * writes its report. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

__attribute__((noinline)) void spin_in_c_program(long ns) {
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  do {
    clock_gettime(CLOCK_MONOTONIC, &now);
  } while ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) < ns);
}

int main(int argc, char** argv) {
  const long ms = argc > 1 ? atol(argv[1]) : 1000;
  usleep(1000);
  spin_in_c_program(ms * 1000000L);
  usleep(1000);
  puts("spin: done");
  return 0;
}
