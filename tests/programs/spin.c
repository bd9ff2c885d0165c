/* spin — holds its thread for 1 s in a loop that never blocks (the monitor
 * checks every 50 ms; a loaded machine may run its watchdog late), between
 * two short sleeps: the blocking monitor's test under grove-run
 * (programs_test.cpp). */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

__attribute__((noinline)) void spin_in_c_program(void) {
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  do {
    clock_gettime(CLOCK_MONOTONIC, &now);
  } while ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) < 1000000000L);
}

int main(void) {
  usleep(1000);
  spin_in_c_program();
  usleep(1000);
  puts("spin: done");
  return 0;
}
