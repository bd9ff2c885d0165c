/* sleeps.c — every kind of sleep, in blocking style. Prints what each returned
 * and whether it slept at least as long as asked. */
#include <errno.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void report(const char* what, long result, double asked, double t0) {
  const double took = now() - t0;
  printf("%s: returned %ld, slept enough: %s, not far too long: %s\n", what, result, took >= asked * 0.99 ? "yes" : "no",
         took < asked + 1.0 ? "yes" : "no");
}

int main(void) {
  double t0 = now();
  report("sleep(1)", (long)sleep(1), 1.0, t0);
  t0 = now();
  report("usleep(150000)", usleep(150000), 0.15, t0);
  t0 = now();
  struct timespec req = {0, 120000000};
  report("nanosleep(0.12)", nanosleep(&req, NULL), 0.12, t0);
  t0 = now();
  report("clock_nanosleep(MONOTONIC, 0.12)", clock_nanosleep(CLOCK_MONOTONIC, 0, &req, NULL), 0.12, t0);
  t0 = now();
  struct timespec at;
  clock_gettime(CLOCK_REALTIME, &at);
  at.tv_nsec += 200000000;
  if (at.tv_nsec >= 1000000000) {
    at.tv_sec += 1;
    at.tv_nsec -= 1000000000;
  }
  report("clock_nanosleep(REALTIME, ABSTIME +0.2)", clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &at, NULL), 0.2, t0);
  struct timespec bad = {0, 2000000000};
  errno = 0;
  const int r = nanosleep(&bad, NULL);
  printf("nanosleep(bad): returned %d, errno %s\n", r, errno == EINVAL ? "EINVAL" : "other");
  printf("clock_nanosleep(bad): returned %s\n",
         clock_nanosleep(CLOCK_MONOTONIC, 0, &bad, NULL) == EINVAL ? "EINVAL" : "other");
  return 0;
}
