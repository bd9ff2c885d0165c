/* spin — holds its thread for 300 ms in a loop that never blocks, then for
 * the blocking monitor's tests under grove-run (programs_test.cpp) waits on a
 * pipe and a sleep, as an ordinary program would. */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

__attribute__((noinline)) void spin_in_c_program(void) {
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  do {
    clock_gettime(CLOCK_MONOTONIC, &now);
  } while ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) < 300000000L);
}

int main(void) {
  usleep(1000);
  spin_in_c_program();
  usleep(1000);
  puts("spin: done");
  return 0;
}
