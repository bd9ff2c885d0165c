/* thr_detach.c — detached threads (created detached, and detached with
 * pthread_detach), thread attributes read back (detach state, stack size,
 * guard size; pthread_getattr_np inside the thread), pthread_self and
 * pthread_equal (every thread its own identity, the one pthread_create gave),
 * and thread names (pthread_setname_np, pthread_getname_np, ERANGE). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "thr_common.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;

/* Detached workers report in and leave; nobody joins them. */
enum { detached = 100 };
static int finished;
static long finished_sum;
static void* detached_worker(void* arg) {
  usleep(1000);
  pthread_mutex_lock(&lock);
  finished++;
  finished_sum += (long)arg;
  pthread_cond_signal(&changed);
  pthread_mutex_unlock(&lock);
  return NULL;
}

/* A thread that reads its own attributes. */
struct seen_attr {
  int detach_state;
  size_t stack_size;
  int ok;
};
static void* read_own_attr(void* arg) {
  struct seen_attr* s = arg;
  pthread_attr_t a;
  s->ok = pthread_getattr_np(pthread_self(), &a) == 0;
  if (s->ok) {
    pthread_attr_getdetachstate(&a, &s->detach_state);
    pthread_attr_getstacksize(&a, &s->stack_size);
    pthread_attr_destroy(&a);
  }
  pthread_mutex_lock(&lock);
  finished++;
  pthread_cond_signal(&changed);
  pthread_mutex_unlock(&lock);
  return NULL;
}

/* A detached thread that waits until released. */
static int release;
static void* wait_for_release(void* arg) {
  (void)arg;
  pthread_mutex_lock(&lock);
  while (!release) pthread_cond_wait(&changed, &lock);
  finished++;
  pthread_cond_broadcast(&changed);
  pthread_mutex_unlock(&lock);
  return NULL;
}

/* Identities. */
enum { identities = 20 };
static pthread_t seen_self[identities];
static int self_stable = 1;
static void* record_self(void* arg) {
  const long i = (long)arg;
  seen_self[i] = pthread_self();
  usleep(1000); /* the others run meanwhile */
  if (!pthread_equal(seen_self[i], pthread_self())) self_stable = 0;
  return NULL;
}

/* Names: each thread names itself, sleeps while the others do, and reads its
 * name back. */
enum { named = 10 };
static int names_kept;
static void* name_self(void* arg) {
  const long i = (long)arg;
  char name[16], back[16] = "";
  snprintf(name, sizeof name, "worker-%ld", i);
  pthread_setname_np(pthread_self(), name);
  usleep(2000);
  pthread_getname_np(pthread_self(), back, sizeof back);
  pthread_mutex_lock(&lock);
  names_kept += strcmp(name, back) == 0;
  pthread_mutex_unlock(&lock);
  return NULL;
}
static int named_by_main;
static void* wait_for_name(void* arg) {
  char* out = arg;
  pthread_mutex_lock(&lock);
  while (!named_by_main) pthread_cond_wait(&changed, &lock);
  pthread_mutex_unlock(&lock);
  pthread_getname_np(pthread_self(), out, 16);
  return NULL;
}

static void wait_finished(int n) {
  pthread_mutex_lock(&lock);
  while (finished < n) pthread_cond_wait(&changed, &lock);
  finished = 0;
  pthread_mutex_unlock(&lock);
}

int main(void) {
  pthread_attr_t attr;
  int state = -1;
  size_t size = 0;
  pthread_attr_init(&attr);
  pthread_attr_getdetachstate(&attr, &state);
  printf("default detach state: %s\n", state == PTHREAD_CREATE_JOINABLE ? "joinable" : "detached");
  printf("setdetachstate(DETACHED): %s\n", error_name(pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED)));
  pthread_attr_getdetachstate(&attr, &state);
  printf("detach state reads back: %s\n", state == PTHREAD_CREATE_DETACHED ? "detached" : "joinable");
  printf("setdetachstate(42): %s\n", error_name(pthread_attr_setdetachstate(&attr, 42)));
  printf("setstacksize(256 KiB): %s\n", error_name(pthread_attr_setstacksize(&attr, 256 * 1024)));
  pthread_attr_getstacksize(&attr, &size);
  printf("stack size reads back: %zu KiB\n", size / 1024);
  printf("setstacksize(1 byte): %s\n", error_name(pthread_attr_setstacksize(&attr, 1)));
  pthread_attr_setguardsize(&attr, 8192);
  pthread_attr_getguardsize(&attr, &size);
  printf("guard size reads back: %zu\n", size);

  for (long i = 0; i < detached; ++i) {
    pthread_t t;
    if (pthread_create(&t, &attr, detached_worker, (void*)i) != 0) printf("pthread_create %ld failed\n", i);
  }
  wait_finished(detached);
  pthread_mutex_lock(&lock);
  printf("detached threads finished: sum %ld (expected %d)\n", finished_sum, detached * (detached - 1) / 2);
  pthread_mutex_unlock(&lock);

  struct seen_attr s = {-1, 0, 0};
  pthread_t t;
  pthread_create(&t, &attr, read_own_attr, &s);
  wait_finished(1);
  printf("a detached thread's getattr_np: %s, %s, stack at least 256 KiB: %s\n", s.ok ? "ok" : "failed",
         s.detach_state == PTHREAD_CREATE_DETACHED ? "detached" : "joinable",
         s.stack_size >= 256 * 1024 ? "yes" : "no");
  pthread_attr_destroy(&attr);
  struct seen_attr j = {-1, 0, 0};
  pthread_create(&t, NULL, read_own_attr, &j);
  pthread_join(t, NULL);
  wait_finished(1);
  printf("a joinable thread's getattr_np: %s, %s\n", j.ok ? "ok" : "failed",
         j.detach_state == PTHREAD_CREATE_DETACHED ? "detached" : "joinable");

  /* pthread_join on a detached thread that is still running is EINVAL. */
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_create(&t, &attr, wait_for_release, NULL);
  pthread_attr_destroy(&attr);
  printf("pthread_join on a running detached thread: %s\n", error_name(pthread_join(t, NULL)));
  /* pthread_detach of a running joinable thread; it then exits on its own. */
  pthread_t later;
  pthread_create(&later, NULL, wait_for_release, NULL);
  printf("pthread_detach on a running thread: %s\n", error_name(pthread_detach(later)));
  printf("pthread_join on it afterwards: %s\n", error_name(pthread_join(later, NULL)));
  pthread_mutex_lock(&lock);
  release = 1;
  pthread_cond_broadcast(&changed);
  pthread_mutex_unlock(&lock);
  wait_finished(2);
  printf("both detached threads finished\n");

  pthread_t created[identities];
  for (long i = 0; i < identities; ++i) pthread_create(&created[i], NULL, record_self, (void*)i);
  for (int i = 0; i < identities; ++i) pthread_join(created[i], NULL);
  int match = 0, distinct = 1, not_main = 1;
  for (int i = 0; i < identities; ++i) {
    match += pthread_equal(seen_self[i], created[i]) != 0;
    if (pthread_equal(seen_self[i], pthread_self())) not_main = 0;
    for (int k = 0; k < i; ++k)
      if (pthread_equal(seen_self[i], seen_self[k])) distinct = 0;
  }
  printf("pthread_self matches pthread_create's id: %d of %d\n", match, identities);
  printf("pthread_self distinct in every thread: %s, none equal to main's: %s, stable: %s\n", distinct ? "yes" : "no",
         not_main ? "yes" : "no", self_stable ? "yes" : "no");
  printf("pthread_equal(self, self) in main: %s\n", pthread_equal(pthread_self(), pthread_self()) ? "yes" : "no");

  char name[32] = "";
  printf("setname_np on main to \"main-thread\": %s\n", error_name(pthread_setname_np(pthread_self(), "main-thread")));
  pthread_getname_np(pthread_self(), name, sizeof name);
  printf("main's name: %s\n", name);
  printf("setname_np with 16 characters: %s\n", error_name(pthread_setname_np(pthread_self(), "sixteen-chars-xx")));
  printf("getname_np into 4 bytes: %s\n", error_name(pthread_getname_np(pthread_self(), name, 4)));
  pthread_t n[named];
  for (long i = 0; i < named; ++i) pthread_create(&n[i], NULL, name_self, (void*)i);
  for (int i = 0; i < named; ++i) pthread_join(n[i], NULL);
  printf("threads that read back their own name: %d of %d\n", names_kept, named);
  char other_name[16] = "";
  pthread_create(&t, NULL, wait_for_name, other_name);
  printf("main names another thread: %s\n", error_name(pthread_setname_np(t, "named-by-main")));
  name[0] = '\0';
  pthread_getname_np(t, name, sizeof name);
  printf("main reads that thread's name: %s\n", name);
  pthread_mutex_lock(&lock);
  named_by_main = 1;
  pthread_cond_broadcast(&changed);
  pthread_mutex_unlock(&lock);
  pthread_join(t, NULL);
  printf("the thread reads its own name: %s\n", other_name);
  pthread_getname_np(pthread_self(), name, sizeof name);
  printf("main's name still: %s\n", name);
  return 0;
}
