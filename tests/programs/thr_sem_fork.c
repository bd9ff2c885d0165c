/* thr_sem_fork.c — semaphores shared with another process: an unnamed one
 * (pshared 1) in a MAP_SHARED mapping and a named one (sem_open), each posted
 * by a forked child while a thread of the parent waits for it. Meanwhile
 * another thread of the parent keeps running: a wait for another process
 * holds up only the thread that waits. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "thr_common.h"

static int result(int r) { return r == 0 ? 0 : errno; }

/* The ticker counts while it runs; stop ends it. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int ticks, stop;
static void* ticker(void* arg) {
  (void)arg;
  for (;;) {
    usleep(5000);
    pthread_mutex_lock(&lock);
    const int done = stop;
    ticks++;
    pthread_mutex_unlock(&lock);
    if (done) return NULL;
  }
}
static int ticks_now(void) {
  pthread_mutex_lock(&lock);
  const int t = ticks;
  pthread_mutex_unlock(&lock);
  return t;
}

/* waiter waits for the semaphore in a thread of its own: ends with 0 or errno. */
struct wait_for {
  sem_t* s;
  int timed;
  int result;
};
static void* waiter(void* arg) {
  struct wait_for* w = arg;
  if (w->timed) {
    const struct timespec deadline = realtime_in(10000);
    w->result = result(sem_timedwait(w->s, &deadline));
  } else {
    w->result = result(sem_wait(w->s));
  }
  return NULL;
}

/* posted_by_child forks a child that posts s after 100 ms (and waits for
 * `back` first when given), waits in a thread, and says what happened. */
static void posted_by_child(const char* what, sem_t* s, int timed) {
  fflush(stdout);
  const pid_t child = fork();
  if (child == 0) {
    usleep(100000);
    _exit(sem_post(s) == 0 ? 0 : 1);
  }
  const int ticks_before = ticks_now();
  struct wait_for w = {s, timed, -1};
  pthread_t t;
  pthread_create(&t, NULL, waiter, &w);
  pthread_join(t, NULL);
  const int ticked = ticks_now() - ticks_before;
  int status = 0;
  waitpid(child, &status, 0);
  printf("%s, posted by a child after 100 ms: %s; child exit %d; other threads ran meanwhile: %s\n", what,
         error_name(w.result), WIFEXITED(status) ? WEXITSTATUS(status) : -1, ticked >= 3 ? "yes" : "no");
}

int main(void) {
  pthread_t tick;
  pthread_create(&tick, NULL, ticker, NULL);

  sem_t* shared = mmap(NULL, sizeof(sem_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared == MAP_FAILED) return 1;
  printf("sem_init pshared 1: %s\n", error_name(result(sem_init(shared, 1, 0))));
  posted_by_child("unnamed sem_wait", shared, 0);
  posted_by_child("unnamed sem_timedwait", shared, 1);
  printf("sem_trywait afterwards: %s\n", error_name(result(sem_trywait(shared))));
  sem_destroy(shared);
  munmap(shared, sizeof(sem_t));

  char name[64];
  snprintf(name, sizeof name, "/grove_thr_sem_fork_%d", (int)getpid());
  sem_t* named = sem_open(name, O_CREAT | O_EXCL, 0600, 0);
  printf("sem_open: %s\n", named == SEM_FAILED ? error_name(errno) : "ok");
  if (named == SEM_FAILED) return 1;
  posted_by_child("named sem_wait", named, 0);
  posted_by_child("named sem_timedwait", named, 1);
  sem_close(named);
  printf("sem_unlink: %s\n", error_name(result(sem_unlink(name))));

  pthread_mutex_lock(&lock);
  stop = 1;
  pthread_mutex_unlock(&lock);
  pthread_join(tick, NULL);
  return 0;
}
