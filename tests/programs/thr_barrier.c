/* thr_barrier.c — a barrier over several rounds (exactly one thread per round
 * gets PTHREAD_BARRIER_SERIAL_THREAD, and nobody leaves a round before all
 * arrive), and pthread_once (one run, even when the routine blocks and many
 * threads call at once). Spin locks are in thr_spin.c. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "thr_common.h"

/* The barrier: in each round every thread adds to that round's tally, waits,
 * and then checks the tally is complete. */
enum { parties = 6, rounds = 50 };
static pthread_barrier_t barrier;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int tally[rounds], serial[rounds], early_leavers, other_results;

static void* party(void* arg) {
  const int id = (int)(long)arg;
  for (int r = 0; r < rounds; ++r) {
    if ((id + r) % 7 == 0) usleep(200); /* a different latecomer each round */
    pthread_mutex_lock(&lock);
    tally[r] += id + 1;
    pthread_mutex_unlock(&lock);
    const int result = pthread_barrier_wait(&barrier);
    pthread_mutex_lock(&lock);
    if (result == PTHREAD_BARRIER_SERIAL_THREAD)
      serial[r]++;
    else if (result != 0)
      other_results++;
    if (tally[r] != parties * (parties + 1) / 2) early_leavers++;
    pthread_mutex_unlock(&lock);
  }
  return NULL;
}

/* pthread_once. */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int init_runs, initialised;
static void init_routine(void) {
  init_runs++;
  usleep(50000); /* the others must wait until it has finished */
  initialised = 1;
}
enum { once_callers = 20 };
static int saw_uninitialised;
static void* call_once(void* arg) {
  (void)arg;
  pthread_once(&once, init_routine);
  if (!initialised) {
    pthread_mutex_lock(&lock);
    saw_uninitialised++;
    pthread_mutex_unlock(&lock);
  }
  return NULL;
}

int main(void) {
  pthread_barrier_t bad;
  printf("pthread_barrier_init with count 0: %s\n", error_name(pthread_barrier_init(&bad, NULL, 0)));
  pthread_barrier_t alone;
  pthread_barrier_init(&alone, NULL, 1);
  int serial_alone = 0;
  for (int i = 0; i < 3; ++i) serial_alone += pthread_barrier_wait(&alone) == PTHREAD_BARRIER_SERIAL_THREAD;
  printf("a barrier for 1: %d of 3 waits were the serial thread\n", serial_alone);
  pthread_barrier_destroy(&alone);

  pthread_barrier_init(&barrier, NULL, parties);
  pthread_t t[parties];
  for (long i = 0; i < parties; ++i) pthread_create(&t[i], NULL, party, (void*)i);
  for (int i = 0; i < parties; ++i) pthread_join(t[i], NULL);
  int exactly_once = 0;
  for (int r = 0; r < rounds; ++r) exactly_once += serial[r] == 1;
  printf("barrier: %d rounds of %d threads\n", rounds, parties);
  printf("barrier: rounds with exactly one serial thread: %d\n", exactly_once);
  printf("barrier: results other than 0 and the serial value: %d\n", other_results);
  printf("barrier: threads that left a round before all arrived: %d\n", early_leavers);
  printf("barrier: destroy: %s\n", error_name(pthread_barrier_destroy(&barrier)));

  pthread_t o[once_callers];
  for (int i = 0; i < once_callers; ++i) pthread_create(&o[i], NULL, call_once, NULL);
  for (int i = 0; i < once_callers; ++i) pthread_join(o[i], NULL);
  pthread_once(&once, init_routine);
  printf("once: %d callers and main, the routine ran %d time(s)\n", once_callers, init_runs);
  printf("once: callers that returned before it finished: %d\n", saw_uninitialised);
  return 0;
}
