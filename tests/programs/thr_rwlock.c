/* thr_rwlock.c — read-write locks: many readers hold one at once, writers
 * alone; tryrdlock/trywrlock's EBUSY and the timed variants' ETIMEDOUT while
 * the other kind holds it; EDEADLK when the writer asks again; a waiting
 * writer keeps new readers out with PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP;
 * and readers and writers mixed, with writers sleeping inside. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "thr_common.h"

static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;

/* Readers that all hold the lock at once: each waits, holding it, until
 * every reader is in (or 10 s pass, which would mean they were kept apart). */
enum { readers = 16 };
static int readers_in, readers_release, readers_all_in;
static void* reader_together(void* arg) {
  (void)arg;
  pthread_rwlock_rdlock(&rw);
  pthread_mutex_lock(&lock);
  if (++readers_in == readers) pthread_cond_broadcast(&changed);
  const struct timespec limit = in_ms(CLOCK_REALTIME, 10000);
  while (readers_in < readers)
    if (pthread_cond_timedwait(&changed, &lock, &limit) == ETIMEDOUT) break;
  if (readers_in == readers) readers_all_in++;
  while (!readers_release) pthread_cond_wait(&changed, &lock);
  pthread_mutex_unlock(&lock);
  pthread_rwlock_unlock(&rw);
  return NULL;
}

typedef int (*rw_op)(pthread_rwlock_t*);
struct call {
  rw_op f;
  pthread_rwlock_t* l;
  int result;
};
static void* run_call(void* arg) {
  struct call* c = arg;
  c->result = c->f(c->l);
  if (c->result == 0) pthread_rwlock_unlock(c->l);
  return NULL;
}
/* on_other_thread runs f on a new thread (unlocking again what it locked). */
static int on_other_thread(rw_op f, pthread_rwlock_t* l) {
  struct call c = {f, l, -1};
  pthread_t t;
  pthread_create(&t, NULL, run_call, &c);
  pthread_join(t, NULL);
  return c.result;
}

/* Mixed readers and writers: writers change a and b together, sleeping in
 * between now and then; readers must never see them differ, nor see a writer
 * inside, and no two writers may be inside together. */
static long a, b;
static int writers_inside, readers_inside, violations;
static void* writer(void* arg) {
  (void)arg;
  for (int i = 0; i < 300; ++i) {
    pthread_rwlock_wrlock(&rw);
    pthread_mutex_lock(&lock);
    if (writers_inside != 0 || readers_inside != 0) violations++;
    writers_inside++;
    pthread_mutex_unlock(&lock);
    a++;
    if (i % 50 == 0) usleep(1000);
    b++;
    pthread_mutex_lock(&lock);
    writers_inside--;
    pthread_mutex_unlock(&lock);
    pthread_rwlock_unlock(&rw);
    if (i % 20 == 0) usleep(100);
  }
  return NULL;
}
static void* reader(void* arg) {
  (void)arg;
  for (int i = 0; i < 600; ++i) {
    pthread_rwlock_rdlock(&rw);
    pthread_mutex_lock(&lock);
    if (writers_inside != 0) violations++;
    readers_inside++;
    pthread_mutex_unlock(&lock);
    if (a != b) violations++;
    if (i % 100 == 0) usleep(500);
    if (a != b) violations++;
    pthread_mutex_lock(&lock);
    readers_inside--;
    pthread_mutex_unlock(&lock);
    pthread_rwlock_unlock(&rw);
  }
  return NULL;
}

/* A writer that blocks on a reader-held, writer-preferring lock. */
static pthread_rwlock_t prefer_writer;
static void* waiting_writer(void* arg) {
  (void)arg;
  pthread_rwlock_wrlock(&prefer_writer);
  pthread_rwlock_unlock(&prefer_writer);
  return NULL;
}
static int try_read(pthread_rwlock_t* l) { return pthread_rwlock_tryrdlock(l); }
static int timed_read_100ms(pthread_rwlock_t* l) {
  const struct timespec deadline = in_ms(CLOCK_REALTIME, 100);
  return pthread_rwlock_timedrdlock(l, &deadline);
}

int main(void) {
  pthread_t t[readers];
  for (int i = 0; i < readers; ++i) pthread_create(&t[i], NULL, reader_together, NULL);
  pthread_mutex_lock(&lock);
  while (readers_in < readers) pthread_cond_wait(&changed, &lock);
  pthread_mutex_unlock(&lock);
  printf("readers holding the lock at once: %d\n", readers_in);
  printf("with readers in: trywrlock: %s\n", error_name(pthread_rwlock_trywrlock(&rw)));
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  struct timespec deadline = in_ms(CLOCK_REALTIME, 100);
  printf("with readers in: timedwrlock for 100 ms: %s\n", error_name(pthread_rwlock_timedwrlock(&rw, &deadline)));
  printf("  waited at least 100 ms: %s\n", seconds_since(&t0) >= 0.099 ? "yes" : "no");
  clock_gettime(CLOCK_MONOTONIC, &t0);
  deadline = in_ms(CLOCK_MONOTONIC, 100);
  printf("with readers in: clockwrlock on CLOCK_MONOTONIC for 100 ms: %s\n",
         error_name(pthread_rwlock_clockwrlock(&rw, CLOCK_MONOTONIC, &deadline)));
  printf("  waited at least 100 ms: %s\n", seconds_since(&t0) >= 0.099 ? "yes" : "no");
  printf("with readers in: tryrdlock from another thread: %s\n", error_name(on_other_thread(try_read, &rw)));
  int r = pthread_rwlock_tryrdlock(&rw);
  printf("with readers in: tryrdlock: %s\n", error_name(r));
  if (r == 0) pthread_rwlock_unlock(&rw);
  deadline = in_ms(CLOCK_REALTIME, 100);
  r = pthread_rwlock_timedrdlock(&rw, &deadline);
  printf("with readers in: timedrdlock: %s\n", error_name(r));
  if (r == 0) pthread_rwlock_unlock(&rw);
  pthread_mutex_lock(&lock);
  readers_release = 1;
  pthread_cond_broadcast(&changed);
  pthread_mutex_unlock(&lock);
  for (int i = 0; i < readers; ++i) pthread_join(t[i], NULL);
  printf("readers that saw all %d in: %d\n", readers, readers_all_in);

  printf("wrlock: %s\n", error_name(pthread_rwlock_wrlock(&rw)));
  printf("with the writer in: tryrdlock from another thread: %s\n", error_name(on_other_thread(try_read, &rw)));
  printf("with the writer in: trywrlock from another thread: %s\n",
         error_name(on_other_thread(pthread_rwlock_trywrlock, &rw)));
  printf("with the writer in: rdlock by the writer: %s\n", error_name(pthread_rwlock_rdlock(&rw)));
  printf("with the writer in: wrlock by the writer: %s\n", error_name(pthread_rwlock_wrlock(&rw)));
  clock_gettime(CLOCK_MONOTONIC, &t0);
  printf("with the writer in: timedrdlock for 100 ms from another thread: ");
  printf("%s\n", error_name(on_other_thread(timed_read_100ms, &rw)));
  printf("  waited at least 100 ms: %s\n", seconds_since(&t0) >= 0.099 ? "yes" : "no");
  printf("unlock: %s\n", error_name(pthread_rwlock_unlock(&rw)));

  pthread_t w[3], rd[6];
  for (int i = 0; i < 3; ++i) pthread_create(&w[i], NULL, writer, NULL);
  for (int i = 0; i < 6; ++i) pthread_create(&rd[i], NULL, reader, NULL);
  for (int i = 0; i < 3; ++i) pthread_join(w[i], NULL);
  for (int i = 0; i < 6; ++i) pthread_join(rd[i], NULL);
  printf("3 writers and 6 readers: a %ld, b %ld, violations %d\n", a, b, violations);

  pthread_rwlockattr_t attr;
  pthread_rwlockattr_init(&attr);
  pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  int kind = -1;
  pthread_rwlockattr_getkind_np(&attr, &kind);
  printf("writer-preferring: kind reads back: %s\n",
         kind == PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP ? "yes" : "no");
  pthread_rwlock_init(&prefer_writer, &attr);
  pthread_rwlockattr_destroy(&attr);
  pthread_rwlock_rdlock(&prefer_writer);
  printf("writer-preferring, read-held: tryrdlock from another thread: %s\n",
         error_name(on_other_thread(try_read, &prefer_writer)));
  pthread_t ww;
  pthread_create(&ww, NULL, waiting_writer, NULL);
  usleep(200000); /* the writer is waiting by now */
  printf("writer-preferring, a writer waiting: tryrdlock from another thread: %s\n",
         error_name(on_other_thread(try_read, &prefer_writer)));
  pthread_rwlock_unlock(&prefer_writer);
  pthread_join(ww, NULL);
  printf("writer-preferring: destroy: %s\n", error_name(pthread_rwlock_destroy(&prefer_writer)));
  return 0;
}
