/* thr_mutex.c — mutex kinds and their errors: error-checking mutexes
 * (EDEADLK on relock, EPERM on unlock by a non-owner or when unlocked),
 * recursive mutexes (a lock count, EPERM from a non-owner), trylock's EBUSY,
 * timedlock's ETIMEDOUT, the static initialisers, and mutual exclusion with
 * threads that block while they hold the lock. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "thr_common.h"

/* on_other_thread runs f(m) on a new thread and returns its result. */
typedef int (*mutex_op)(pthread_mutex_t*);
struct call {
  mutex_op f;
  pthread_mutex_t* m;
  int result;
};
static void* run_call(void* arg) {
  struct call* c = arg;
  c->result = c->f(c->m);
  return NULL;
}
static int on_other_thread(mutex_op f, pthread_mutex_t* m) {
  struct call c = {f, m, -1};
  pthread_t t;
  pthread_create(&t, NULL, run_call, &c);
  pthread_join(t, NULL);
  return c.result;
}

/* try_then_unlock is trylock, and unlock when that locked it. */
static int try_then_unlock(pthread_mutex_t* m) {
  const int r = pthread_mutex_trylock(m);
  if (r == 0) pthread_mutex_unlock(m);
  return r;
}

/* A holder thread: locks m, tells main, holds it for hold_ms, unlocks. */
struct holder {
  pthread_mutex_t* m;
  long hold_ms;
  pthread_mutex_t gate;
  pthread_cond_t locked_cond;
  int locked;
};
static void* hold(void* arg) {
  struct holder* h = arg;
  pthread_mutex_lock(h->m);
  pthread_mutex_lock(&h->gate);
  h->locked = 1;
  pthread_cond_signal(&h->locked_cond);
  pthread_mutex_unlock(&h->gate);
  usleep((useconds_t)h->hold_ms * 1000);
  pthread_mutex_unlock(h->m);
  return NULL;
}
static void start_holder(struct holder* h, pthread_t* t, pthread_mutex_t* m, long hold_ms) {
  h->m = m;
  h->hold_ms = hold_ms;
  h->locked = 0;
  pthread_mutex_init(&h->gate, NULL);
  pthread_cond_init(&h->locked_cond, NULL);
  pthread_create(t, NULL, hold, h);
  pthread_mutex_lock(&h->gate);
  while (!h->locked) pthread_cond_wait(&h->locked_cond, &h->gate);
  pthread_mutex_unlock(&h->gate);
}

/* Counting under contention: each increment reads, sometimes sleeps holding
 * the lock, then writes; any overlap loses increments. */
enum { counters = 8, increments = 2000 };
static pthread_mutex_t static_plain = PTHREAD_MUTEX_INITIALIZER;
static long counter;
static void* count(void* arg) {
  (void)arg;
  for (int i = 0; i < increments; ++i) {
    pthread_mutex_lock(&static_plain);
    const long seen = counter;
    if (i % 200 == 0) usleep(200);
    counter = seen + 1;
    pthread_mutex_unlock(&static_plain);
  }
  return NULL;
}

static pthread_mutex_t static_recursive = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static pthread_mutex_t static_errorcheck = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;

static int depth_reached;
static void recurse(int depth) {
  pthread_mutex_lock(&static_recursive);
  if (depth > depth_reached) depth_reached = depth;
  if (depth < 10) recurse(depth + 1);
  pthread_mutex_unlock(&static_recursive);
}

int main(void) {
  pthread_mutexattr_t attr;
  int type = -1;

  /* Error-checking. */
  pthread_mutex_t ec;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
  pthread_mutexattr_gettype(&attr, &type);
  printf("errorcheck: attr type reads back: %s\n", type == PTHREAD_MUTEX_ERRORCHECK ? "yes" : "no");
  pthread_mutex_init(&ec, &attr);
  pthread_mutexattr_destroy(&attr);
  printf("errorcheck: unlock while unlocked: %s\n", error_name(pthread_mutex_unlock(&ec)));
  printf("errorcheck: lock: %s\n", error_name(pthread_mutex_lock(&ec)));
  printf("errorcheck: lock again: %s\n", error_name(pthread_mutex_lock(&ec)));
  printf("errorcheck: trylock by the owner: %s\n", error_name(pthread_mutex_trylock(&ec)));
  struct timespec deadline = realtime_in(50);
  printf("errorcheck: timedlock by the owner: %s\n", error_name(pthread_mutex_timedlock(&ec, &deadline)));
  printf("errorcheck: unlock by another thread: %s\n", error_name(on_other_thread(pthread_mutex_unlock, &ec)));
  printf("errorcheck: trylock by another thread: %s\n", error_name(on_other_thread(pthread_mutex_trylock, &ec)));
  printf("errorcheck: unlock: %s\n", error_name(pthread_mutex_unlock(&ec)));
  printf("errorcheck: unlock again: %s\n", error_name(pthread_mutex_unlock(&ec)));
  printf("errorcheck: destroy: %s\n", error_name(pthread_mutex_destroy(&ec)));

  /* Recursive. */
  pthread_mutex_t rec;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutexattr_gettype(&attr, &type);
  printf("recursive: attr type reads back: %s\n", type == PTHREAD_MUTEX_RECURSIVE ? "yes" : "no");
  pthread_mutex_init(&rec, &attr);
  pthread_mutexattr_destroy(&attr);
  int r1 = pthread_mutex_lock(&rec), r2 = pthread_mutex_lock(&rec), r3 = pthread_mutex_lock(&rec);
  printf("recursive: lock three times: %s %s %s\n", error_name(r1), error_name(r2), error_name(r3));
  printf("recursive: trylock by the owner: %s\n", error_name(pthread_mutex_trylock(&rec)));
  deadline = realtime_in(50);
  printf("recursive: timedlock by the owner: %s\n", error_name(pthread_mutex_timedlock(&rec, &deadline)));
  printf("recursive: trylock by another thread: %s\n", error_name(on_other_thread(pthread_mutex_trylock, &rec)));
  printf("recursive: unlock by another thread: %s\n", error_name(on_other_thread(pthread_mutex_unlock, &rec)));
  int unlocked = 0;
  while (unlocked < 10 && pthread_mutex_unlock(&rec) == 0) ++unlocked;
  printf("recursive: unlocks until it fails: %d\n", unlocked);
  printf("recursive: unlock when unlocked: %s\n", error_name(pthread_mutex_unlock(&rec)));
  printf("recursive: trylock by another thread now: %s\n", error_name(on_other_thread(try_then_unlock, &rec)));
  printf("recursive: destroy: %s\n", error_name(pthread_mutex_destroy(&rec)));

  /* The static initialisers. */
  recurse(1);
  printf("PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP: locked %d deep\n", depth_reached);
  pthread_mutex_lock(&static_recursive);
  pthread_mutex_lock(&static_recursive);
  printf("PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP: trylock by another thread: %s\n",
         error_name(on_other_thread(pthread_mutex_trylock, &static_recursive)));
  pthread_mutex_unlock(&static_recursive);
  pthread_mutex_unlock(&static_recursive);
  r1 = pthread_mutex_lock(&static_errorcheck);
  r2 = pthread_mutex_lock(&static_errorcheck);
  printf("PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP: lock %s, lock again %s\n", error_name(r1), error_name(r2));
  printf("PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP: unlock by another thread: %s\n",
         error_name(on_other_thread(pthread_mutex_unlock, &static_errorcheck)));
  pthread_mutex_unlock(&static_errorcheck);
  pthread_t t[counters];
  for (int i = 0; i < counters; ++i) pthread_create(&t[i], NULL, count, NULL);
  for (int i = 0; i < counters; ++i) pthread_join(t[i], NULL);
  printf("PTHREAD_MUTEX_INITIALIZER: %d threads counted to %ld (expected %d)\n", counters, counter,
         counters * increments);

  /* A plain mutex held by another thread: trylock and timedlock. */
  pthread_mutex_t plain;
  pthread_mutex_init(&plain, NULL);
  struct holder h;
  pthread_t holder_thread;
  start_holder(&h, &holder_thread, &plain, 300);
  printf("normal: trylock while another thread holds it: %s\n", error_name(pthread_mutex_trylock(&plain)));
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  deadline = realtime_in(100);
  printf("normal: timedlock for 100 ms while it is held for 300: %s\n",
         error_name(pthread_mutex_timedlock(&plain, &deadline)));
  printf("  waited at least 100 ms: %s\n", seconds_since(&t0) >= 0.099 ? "yes" : "no");
  deadline = realtime_in(10000);
  printf("normal: timedlock for 10 s: %s\n", error_name(pthread_mutex_timedlock(&plain, &deadline)));
  printf("  got it when the holder let go, well before 10 s: %s\n",
         seconds_since(&t0) >= 0.25 && seconds_since(&t0) < 8.0 ? "yes" : "no");
  pthread_mutex_unlock(&plain);
  pthread_join(holder_thread, NULL);
  deadline = realtime_in(100);
  deadline.tv_nsec = -1;
  start_holder(&h, &holder_thread, &plain, 100);
  printf("normal: timedlock with tv_nsec -1 while held: %s\n", error_name(pthread_mutex_timedlock(&plain, &deadline)));
  deadline = realtime_in(-1000);
  printf("normal: timedlock with a past deadline while held: %s\n",
         error_name(pthread_mutex_timedlock(&plain, &deadline)));
  pthread_join(holder_thread, NULL);
  deadline = realtime_in(-1000);
  printf("normal: timedlock with a past deadline, free: %s\n", error_name(pthread_mutex_timedlock(&plain, &deadline)));
  pthread_mutex_unlock(&plain);

  /* An error-checking mutex held by another thread: timedlock times out. */
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
  pthread_mutex_init(&ec, &attr);
  pthread_mutexattr_destroy(&attr);
  start_holder(&h, &holder_thread, &ec, 200);
  deadline = realtime_in(50);
  printf("errorcheck: timedlock for 50 ms while another thread holds it: %s\n",
         error_name(pthread_mutex_timedlock(&ec, &deadline)));
  printf("errorcheck: lock, waiting for the holder: %s\n", error_name(pthread_mutex_lock(&ec)));
  printf("errorcheck: unlock: %s\n", error_name(pthread_mutex_unlock(&ec)));
  pthread_join(holder_thread, NULL);
  return 0;
}
