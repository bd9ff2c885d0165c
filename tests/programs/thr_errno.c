/* thr_errno.c — each thread has its own errno: the main thread's failed call
 * sets its errno to EBADF, and another thread's failure with ENOENT while the
 * main thread blocks (in pthread_cond_wait, pthread_mutex_lock, usleep,
 * sem_wait, pthread_join) leaves it EBADF. A program that logs
 * strerror(errno) after taking a lock relies on this. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "thr_common.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;
static sem_t sem;
static int step, done, holding;

static int fail_with_enoent(void) { return open("/nonexistent/grove-thr-errno", O_RDONLY) < 0 && errno == ENOENT; }
static void fail_with_ebadf(void) {
  if (close(-1) == 0) printf("close(-1) succeeded\n");
}

static void wait_for_step(int s) {
  pthread_mutex_lock(&lock);
  while (step != s) pthread_cond_wait(&changed, &lock);
  pthread_mutex_unlock(&lock);
}
static void set(int* what, int v) {
  pthread_mutex_lock(&lock);
  *what = v;
  pthread_cond_broadcast(&changed);
  pthread_mutex_unlock(&lock);
}

/* The other thread: at each step, fails with ENOENT while main is blocked. */
static void* other(void* arg) {
  (void)arg;
  int failures = 0;
  wait_for_step(1); /* main waits on the condition variable */
  failures += fail_with_enoent();
  set(&done, 1);

  wait_for_step(2); /* main will wait for `held` */
  pthread_mutex_lock(&held);
  set(&holding, 1);
  usleep(30000);
  failures += fail_with_enoent();
  pthread_mutex_unlock(&held);

  wait_for_step(3); /* main sleeps */
  failures += fail_with_enoent();
  set(&done, 3);

  wait_for_step(4); /* main waits on the semaphore */
  usleep(20000);
  failures += fail_with_enoent();
  sem_post(&sem);

  wait_for_step(5); /* main joins this thread */
  usleep(20000);
  failures += fail_with_enoent();
  return (void*)(long)failures;
}

/* Many threads, each keeping its own errno value across sleeps. */
enum { threads = 50 };
static int kept;
static void* keep_own(void* arg) {
  const int mine = 1000 + (int)(long)arg;
  errno = mine;
  for (int i = 0; i < 5; ++i) {
    usleep(1000);
    if (errno != mine) return NULL;
  }
  pthread_mutex_lock(&lock);
  kept++;
  pthread_mutex_unlock(&lock);
  return NULL;
}

int main(void) {
  sem_init(&sem, 0, 0);
  pthread_t t;
  pthread_create(&t, NULL, other, NULL);

  pthread_mutex_lock(&lock);
  step = 1;
  pthread_cond_broadcast(&changed);
  fail_with_ebadf();
  while (done != 1) pthread_cond_wait(&changed, &lock);
  const int after_cond_wait = errno;
  pthread_mutex_unlock(&lock);
  printf("errno after pthread_cond_wait: %s\n", error_name(after_cond_wait));

  set(&step, 2);
  pthread_mutex_lock(&lock);
  while (!holding) pthread_cond_wait(&changed, &lock);
  pthread_mutex_unlock(&lock);
  fail_with_ebadf();
  pthread_mutex_lock(&held);
  printf("errno after pthread_mutex_lock: %s\n", error_name(errno));
  pthread_mutex_unlock(&held);

  set(&step, 3);
  fail_with_ebadf();
  usleep(100000);
  printf("errno after usleep: %s\n", error_name(errno));
  pthread_mutex_lock(&lock);
  while (done != 3) pthread_cond_wait(&changed, &lock);
  pthread_mutex_unlock(&lock);

  set(&step, 4);
  fail_with_ebadf();
  sem_wait(&sem);
  printf("errno after sem_wait: %s\n", error_name(errno));

  set(&step, 5);
  fail_with_ebadf();
  void* failures = NULL;
  pthread_join(t, &failures);
  printf("errno after pthread_join: %s\n", error_name(errno));
  printf("the other thread's calls failed with ENOENT: %ld of 5\n", (long)failures);

  pthread_t many[threads];
  for (long i = 0; i < threads; ++i) pthread_create(&many[i], NULL, keep_own, (void*)i);
  for (int i = 0; i < threads; ++i) pthread_join(many[i], NULL);
  printf("threads that kept their own errno across sleeps: %d of %d\n", kept, threads);
  return 0;
}
