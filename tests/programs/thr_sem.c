/* thr_sem.c — POSIX semaphores: sem_init, sem_wait, sem_timedwait,
 * sem_trywait, sem_post and sem_getvalue on one semaphore; a worker pool fed
 * through a semaphore with a second one limiting how many jobs run at once;
 * and a named semaphore (sem_open, sem_close, sem_unlink) whose name holds
 * the process id, so concurrent runs do not collide. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "thr_common.h"

/* result is 0, or the errno of a failed semaphore call. */
static int result(int r) { return r == 0 ? 0 : errno; }

static int value_of(sem_t* s) {
  int v = -100;
  sem_getvalue(s, &v);
  return v;
}

static sem_t later;
static void* post_later(void* arg) {
  usleep((useconds_t)(long)arg * 1000);
  sem_post(&later);
  return NULL;
}

/* The worker pool. */
enum { workers = 8, jobs = 60, at_once = 3 };
static sem_t pending; /* counts queued jobs */
static sem_t slots;   /* at most at_once jobs run */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int queue[jobs + workers], queue_head, queue_tail;
static int running, max_running;
static long job_sum;
static int jobs_done[workers];

static void* worker(void* arg) {
  const int id = (int)(long)arg;
  for (;;) {
    sem_wait(&pending);
    pthread_mutex_lock(&lock);
    const int job = queue[queue_head++];
    pthread_mutex_unlock(&lock);
    if (job < 0) break;
    sem_wait(&slots);
    pthread_mutex_lock(&lock);
    if (++running > max_running) max_running = running;
    pthread_mutex_unlock(&lock);
    usleep(2000); /* the job's work, holding a slot */
    pthread_mutex_lock(&lock);
    --running;
    job_sum += (long)job * job;
    pthread_mutex_unlock(&lock);
    sem_post(&slots);
    jobs_done[id]++;
  }
  return NULL;
}

static void submit(int job) {
  pthread_mutex_lock(&lock);
  queue[queue_tail++] = job;
  pthread_mutex_unlock(&lock);
  sem_post(&pending);
}

/* The named semaphore: a thread opens it by name and posts twice. */
static char sem_name[64];
static void* named_poster(void* arg) {
  (void)arg;
  sem_t* s = sem_open(sem_name, 0);
  if (s == SEM_FAILED) return (void*)1;
  usleep(20000);
  sem_post(s);
  usleep(20000);
  sem_post(s);
  sem_close(s);
  return NULL;
}

int main(void) {
  sem_t s;
  printf("sem_init: %s\n", error_name(result(sem_init(&s, 0, 0))));
  printf("value: %d\n", value_of(&s));
  printf("sem_trywait on 0: %s\n", error_name(result(sem_trywait(&s))));
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  struct timespec deadline = realtime_in(100);
  printf("sem_timedwait on 0 for 100 ms: %s\n", error_name(result(sem_timedwait(&s, &deadline))));
  printf("  waited at least 100 ms: %s\n", seconds_since(&t0) >= 0.099 ? "yes" : "no");
  clock_gettime(CLOCK_MONOTONIC, &t0);
  deadline = realtime_in(-1000);
  printf("sem_timedwait with a past deadline: %s\n", error_name(result(sem_timedwait(&s, &deadline))));
  printf("  returned at once: %s\n", seconds_since(&t0) < 2.0 ? "yes" : "no");
  deadline.tv_nsec = 1000000000L;
  printf("sem_timedwait with tv_nsec 1e9: %s\n", error_name(result(sem_timedwait(&s, &deadline))));
  for (int i = 0; i < 3; ++i) sem_post(&s);
  printf("value after 3 posts: %d\n", value_of(&s));
  int r = result(sem_trywait(&s));
  printf("sem_trywait: %s, value %d\n", error_name(r), value_of(&s));
  r = result(sem_wait(&s));
  printf("sem_wait: %s, value %d\n", error_name(r), value_of(&s));
  deadline = realtime_in(100);
  r = result(sem_timedwait(&s, &deadline));
  printf("sem_timedwait on 1: %s, value %d\n", error_name(r), value_of(&s));
  printf("sem_destroy: %s\n", error_name(result(sem_destroy(&s))));

  /* A wait that another thread's post ends, well before its deadline. */
  sem_init(&later, 0, 0);
  pthread_t poster;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pthread_create(&poster, NULL, post_later, (void*)50L);
  deadline = realtime_in(10000);
  printf("sem_timedwait posted by a thread after 50 ms: %s\n", error_name(result(sem_timedwait(&later, &deadline))));
  printf("  before the 10 s deadline: %s\n", seconds_since(&t0) < 8.0 ? "yes" : "no");
  pthread_join(poster, NULL);
  pthread_create(&poster, NULL, post_later, (void*)30L);
  printf("sem_wait posted by a thread after 30 ms: %s\n", error_name(result(sem_wait(&later))));
  pthread_join(poster, NULL);
  sem_destroy(&later);

  /* The worker pool. */
  sem_init(&pending, 0, 0);
  sem_init(&slots, 0, at_once);
  pthread_t pool[workers];
  for (long i = 0; i < workers; ++i) pthread_create(&pool[i], NULL, worker, (void*)i);
  long expected = 0;
  for (int j = 1; j <= jobs; ++j) {
    submit(j);
    expected += (long)j * j;
  }
  for (int i = 0; i < workers; ++i) submit(-1);
  for (int i = 0; i < workers; ++i) pthread_join(pool[i], NULL);
  int done = 0;
  for (int i = 0; i < workers; ++i) done += jobs_done[i];
  printf("pool: %d jobs done, sum of squares %ld (expected %ld)\n", done, job_sum, expected);
  printf("pool: never more than %d jobs at once: %s\n", at_once, max_running <= at_once ? "yes" : "no");
  printf("pool: %d jobs at once at some point: %s\n", at_once, max_running == at_once ? "yes" : "no");
  printf("pool: slots back to %d, queue empty: %s\n", value_of(&slots), value_of(&pending) == 0 ? "yes" : "no");
  sem_destroy(&pending);
  sem_destroy(&slots);

  /* A named semaphore. */
  snprintf(sem_name, sizeof sem_name, "/grove_thr_sem_%d", (int)getpid());
  sem_t* named = sem_open(sem_name, O_CREAT | O_EXCL, 0600, 0);
  printf("sem_open O_CREAT|O_EXCL: %s\n", named == SEM_FAILED ? error_name(errno) : "ok");
  errno = 0;
  sem_t* again = sem_open(sem_name, O_CREAT | O_EXCL, 0600, 0);
  printf("sem_open O_CREAT|O_EXCL again: %s\n", again == SEM_FAILED ? error_name(errno) : "ok");
  if (named == SEM_FAILED) return 1;
  printf("named value: %d\n", value_of(named));
  void* poster_result = NULL;
  pthread_create(&poster, NULL, named_poster, NULL);
  printf("sem_wait on the named semaphore: %s\n", error_name(result(sem_wait(named))));
  deadline = realtime_in(10000);
  printf("sem_timedwait on the named semaphore: %s\n", error_name(result(sem_timedwait(named, &deadline))));
  pthread_join(poster, &poster_result);
  printf("the poster opened it by name: %s\n", poster_result == NULL ? "yes" : "no");
  printf("named value: %d\n", value_of(named));
  printf("sem_close: %s\n", error_name(result(sem_close(named))));
  printf("sem_unlink: %s\n", error_name(result(sem_unlink(sem_name))));
  errno = 0;
  again = sem_open(sem_name, 0);
  printf("sem_open after unlink: %s\n", again == SEM_FAILED ? error_name(errno) : "ok");
  printf("sem_unlink again: %s\n", error_name(result(sem_unlink(sem_name))));
  return 0;
}
