/* thr_after_work.c — waits that start right after a thread has computed for a
 * while without blocking: a sleep, a condition variable's timed wait and a
 * semaphore's timed wait, in main and in a new thread, each sleep their full
 * time (an event loop that caches "now" must refresh it first). Only coarse
 * facts are printed. */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "thr_common.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* work computes for ms milliseconds without a blocking call. */
static void work(long ms) {
  const double until = now() + (double)ms / 1000;
  while (now() < until) {
  }
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;

/* waits runs each wait after 200 ms of work and says whether it lasted its
 * 100 ms (a 2 ms allowance for the clocks' granularity). */
static void waits(const char* who) {
  work(200);
  double t0 = now();
  usleep(100000);
  printf("%s: usleep(100 ms) after 200 ms of work slept its time: %s\n", who, now() - t0 >= 0.098 ? "yes" : "no");

  work(200);
  t0 = now();
  pthread_mutex_lock(&lock);
  const struct timespec deadline = realtime_in(100);
  int r = 0;
  while (r == 0) r = pthread_cond_timedwait(&never, &lock, &deadline);
  pthread_mutex_unlock(&lock);
  printf("%s: pthread_cond_timedwait(100 ms) after 200 ms of work: %s, waited its time: %s\n", who,
         r == ETIMEDOUT ? "ETIMEDOUT" : "other", now() - t0 >= 0.098 ? "yes" : "no");

  sem_t s;
  sem_init(&s, 0, 0);
  work(200);
  t0 = now();
  const struct timespec sem_deadline = realtime_in(100);
  r = sem_timedwait(&s, &sem_deadline);
  printf("%s: sem_timedwait(100 ms) after 200 ms of work: %s, waited its time: %s\n", who,
         r != 0 && errno == ETIMEDOUT ? "ETIMEDOUT" : "other", now() - t0 >= 0.098 ? "yes" : "no");
  sem_destroy(&s);
}

static void* thread(void* arg) {
  (void)arg;
  waits("a thread");
  return NULL;
}

int main(void) {
  waits("main");
  pthread_t t;
  pthread_create(&t, NULL, thread, NULL);
  pthread_join(t, NULL);
  return 0;
}
