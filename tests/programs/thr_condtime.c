/* thr_condtime.c — pthread_cond_timedwait timeouts: on CLOCK_REALTIME (the
 * default), on CLOCK_MONOTONIC chosen with pthread_condattr_setclock, and
 * with pthread_cond_clockwait. A timeout is ETIMEDOUT, never early by its own
 * clock, and the mutex is held again; a signal before the deadline ends the
 * wait with 0; a past deadline times out at once; a bad one is EINVAL. Then
 * 200 threads with staggered timeouts, all alive at once (the report_threads
 * sample). Only coarse facts about time are printed. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "thr_common.h"

/* reached: clock has passed deadline. */
static int reached(clockid_t clock, const struct timespec* deadline) {
  struct timespec now;
  clock_gettime(clock, &now);
  return now.tv_sec > deadline->tv_sec || (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

/* An error-checking mutex: unlock succeeds only for its owner, which proves
 * the wait gave it back. */
static pthread_mutex_t lock;
static pthread_cond_t realtime_cond, monotonic_cond;
static int signalled;

static void timeout_on(const char* what, pthread_cond_t* c, clockid_t clock, long ms) {
  pthread_mutex_lock(&lock);
  const struct timespec deadline = in_ms(clock, ms);
  const int r = pthread_cond_timedwait(c, &lock, &deadline);
  const int late_enough = reached(clock, &deadline);
  printf("%s, %ld ms: %s, not early: %s, mutex held again: %s\n", what, ms, error_name(r), late_enough ? "yes" : "no",
         pthread_mutex_unlock(&lock) == 0 ? "yes" : "no");
}

struct signal_later {
  pthread_cond_t* c;
  long ms;
};
static void* signal_after(void* arg) {
  const struct signal_later* s = arg;
  usleep((useconds_t)s->ms * 1000);
  pthread_mutex_lock(&lock);
  signalled = 1;
  pthread_cond_signal(s->c);
  pthread_mutex_unlock(&lock);
  return NULL;
}

static void signalled_before(const char* what, pthread_cond_t* c, clockid_t clock) {
  struct signal_later s = {c, 50};
  pthread_t t;
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pthread_mutex_lock(&lock);
  signalled = 0;
  pthread_create(&t, NULL, signal_after, &s);
  const struct timespec deadline = in_ms(clock, 10000);
  int r = 0;
  while (!signalled && r == 0) r = pthread_cond_timedwait(c, &lock, &deadline);
  pthread_mutex_unlock(&lock);
  pthread_join(t, NULL);
  printf("%s, signalled after 50 ms of 10 s: %s, well before the deadline: %s\n", what, error_name(r),
         seconds_since(&t0) < 8.0 ? "yes" : "no");
}

/* Many waiters, each with its own timeout: 100 to 190 ms. */
enum { waiters = 200 };
static pthread_cond_t crowd_cond;
static int crowd_started, crowd_timed_out, crowd_early;
static int crowd_expected = waiters;
static pthread_cond_t crowd_ready = PTHREAD_COND_INITIALIZER;
static pthread_cond_t crowd_go = PTHREAD_COND_INITIALIZER;
static void* crowd_waiter(void* arg) {
  const long i = (long)arg;
  pthread_mutex_lock(&lock);
  /* The timeouts start once every waiter is there, so all are alive at once
   * however long starting 200 threads takes on a busy machine. */
  if (++crowd_started == crowd_expected) {
    pthread_cond_signal(&crowd_ready);
    pthread_cond_broadcast(&crowd_go);
  }
  while (crowd_started < crowd_expected) pthread_cond_wait(&crowd_go, &lock);
  const struct timespec deadline = in_ms(CLOCK_MONOTONIC, 100 + 10 * (i % 10));
  int r = 0;
  while (r == 0) r = pthread_cond_timedwait(&crowd_cond, &lock, &deadline); /* nobody signals */
  if (r == ETIMEDOUT) crowd_timed_out++;
  if (!reached(CLOCK_MONOTONIC, &deadline)) crowd_early++;
  pthread_mutex_unlock(&lock);
  return NULL;
}

int main(void) {
  pthread_mutexattr_t ma;
  pthread_mutexattr_init(&ma);
  pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
  pthread_mutex_init(&lock, &ma);
  pthread_mutexattr_destroy(&ma);

  pthread_condattr_t ca;
  clockid_t clock = -1;
  pthread_condattr_init(&ca);
  pthread_condattr_getclock(&ca, &clock);
  printf("condattr default clock: %s\n", clock == CLOCK_REALTIME ? "CLOCK_REALTIME" : "other");
  pthread_cond_init(&realtime_cond, &ca);
  printf("condattr_setclock(CLOCK_MONOTONIC): %s\n", error_name(pthread_condattr_setclock(&ca, CLOCK_MONOTONIC)));
  pthread_condattr_getclock(&ca, &clock);
  printf("condattr clock reads back: %s\n", clock == CLOCK_MONOTONIC ? "CLOCK_MONOTONIC" : "other");
  printf("condattr_setclock(CLOCK_PROCESS_CPUTIME_ID): %s\n",
         error_name(pthread_condattr_setclock(&ca, CLOCK_PROCESS_CPUTIME_ID)));
  pthread_cond_init(&monotonic_cond, &ca);
  pthread_cond_init(&crowd_cond, &ca);
  pthread_condattr_destroy(&ca);

  timeout_on("realtime cond", &realtime_cond, CLOCK_REALTIME, 100);
  timeout_on("realtime cond", &realtime_cond, CLOCK_REALTIME, 250);
  timeout_on("monotonic cond", &monotonic_cond, CLOCK_MONOTONIC, 100);
  timeout_on("monotonic cond", &monotonic_cond, CLOCK_MONOTONIC, 250);
  timeout_on("realtime cond, a past deadline", &realtime_cond, CLOCK_REALTIME, -500);
  timeout_on("monotonic cond, a past deadline", &monotonic_cond, CLOCK_MONOTONIC, -500);

  pthread_mutex_lock(&lock);
  struct timespec deadline = in_ms(CLOCK_MONOTONIC, 100);
  int r = pthread_cond_clockwait(&realtime_cond, &lock, CLOCK_MONOTONIC, &deadline);
  printf("clockwait on CLOCK_MONOTONIC, 100 ms: %s, not early: %s\n", error_name(r),
         reached(CLOCK_MONOTONIC, &deadline) ? "yes" : "no");
  deadline = in_ms(CLOCK_REALTIME, 100);
  r = pthread_cond_clockwait(&monotonic_cond, &lock, CLOCK_REALTIME, &deadline);
  printf("clockwait on CLOCK_REALTIME, 100 ms: %s, not early: %s\n", error_name(r),
         reached(CLOCK_REALTIME, &deadline) ? "yes" : "no");
  deadline = in_ms(CLOCK_REALTIME, 100);
  deadline.tv_nsec = 1000000000L;
  printf("timedwait with tv_nsec 1e9: %s\n", error_name(pthread_cond_timedwait(&realtime_cond, &lock, &deadline)));
  pthread_mutex_unlock(&lock);

  signalled_before("realtime cond", &realtime_cond, CLOCK_REALTIME);
  signalled_before("monotonic cond", &monotonic_cond, CLOCK_MONOTONIC);

  pthread_t t[waiters];
  int started = 0;
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (; started < waiters; ++started)
    if (pthread_create(&t[started], NULL, crowd_waiter, (void*)(long)started) != 0) break;
  pthread_mutex_lock(&lock);
  if (started < waiters) {
    crowd_expected = started;
    pthread_cond_broadcast(&crowd_go);
  }
  while (crowd_started < started) pthread_cond_wait(&crowd_ready, &lock);
  /* Holding the mutex, so none can return yet: a waiter whose time is up
   * waits to lock it again. */
  report_threads("peak");
  pthread_mutex_unlock(&lock);
  for (int i = 0; i < started; ++i) pthread_join(t[i], NULL);
  printf("%d waiters with 100-190 ms timeouts: %d timed out, %d early\n", started, crowd_timed_out, crowd_early);
  printf("  all done within 10 s: %s\n", seconds_since(&t0) < 10.0 ? "yes" : "no");
  return 0;
}
