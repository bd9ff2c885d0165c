/* thr_fds.c — the descriptors a program sees are its own: its first open
 * gets the lowest free number, fstat and fcntl over every number find what it
 * opened and nothing else, and a program that closes every descriptor it did
 * not open (close_range, closefrom, or close in a loop, as daemons and
 * children before exec do) goes on working: its threads sleep and meet
 * afterwards, a pipe dup2'd onto 3 carries data. Under grove-run the hub's own
 * descriptors must stay out of the way of all of it. The output is the same
 * natively and under grove-run. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sys/stat.h>

#include "thr_common.h"

/* listing prints the descriptors below 1024 that fstat and fcntl find open. */
static void listing(const char* when) {
  printf("%s:", when);
  int disagree = 0;
  for (int fd = 0; fd < 1024; ++fd) {
    struct stat st;
    const int by_stat = fstat(fd, &st) == 0;
    const int by_fcntl = fcntl(fd, F_GETFD) != -1;
    disagree |= by_stat != by_fcntl;
    if (by_stat) printf(" %d", fd);
  }
  printf("%s\n", disagree ? " (fstat and fcntl disagree)" : "");
}

static void* nap(void* arg) {
  (void)arg;
  usleep(200000);
  return NULL;
}

/* threads_meet runs 10 threads that each sleep 200 ms, and says whether they
 * slept at once (a hub that lost its descriptors could not wake them). */
static void threads_meet(const char* after) {
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pthread_t t[10];
  for (int i = 0; i < 10; ++i) pthread_create(&t[i], NULL, nap, NULL);
  for (int i = 0; i < 10; ++i) pthread_join(t[i], NULL);
  printf("10 threads slept 200 ms together after %s: %s\n", after, seconds_since(&t0) < 1.5 ? "yes" : "no");
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("first open got: %d\n", open("/dev/null", O_RDONLY)); /* the lowest number the program left free */
  listing("open below 1024");

  printf("close_range(3, ~0): %d\n", close_range(3, ~0u, 0));
  listing("after close_range");
  threads_meet("close_range");

  int closed = 0;
  for (int fd = 3; fd < 1024; ++fd) closed += close(fd) == 0;
  printf("close of 3 to 1023 one by one closed: %d\n", closed);
  threads_meet("closing one by one");

  const int hold = open("/dev/null", O_RDONLY); /* 3: the pipe goes higher */
  int p[2];
  if (pipe(p) != 0) return 1;
  close(hold);
  printf("dup2 of a pipe onto 3: %d\n", dup2(p[1], 3));
  close(p[1]);
  char buf[8] = {0};
  const ssize_t wrote = write(3, "via 3", 5);
  const ssize_t got = read(p[0], buf, sizeof buf - 1);
  printf("wrote %zd through 3, read %zd: %s\n", wrote, got, buf);
  closefrom(3);
  listing("after closefrom(3)");
  threads_meet("closefrom");
  return 0;
}
