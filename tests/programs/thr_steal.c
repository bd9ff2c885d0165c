/* thr_steal — threads created while another thread computes without a
 * pause must still start. Natively the kernel runs them on another CPU; under
 * grove-run with several hubs, a thread placed on the hub whose green thread
 * computes waits in that hub's queue, and must be taken by another hub (an idle
 * one takes it; one that is busy but switching gets it from the blocking
 * monitor, GROVE_MONITOR_MS). Without that it would start only once the
 * computing thread ends.
 *
 * Usage: thr_steal idle|busy
 *
 * main starts `spinner`, which computes (no system call) until `late` threads
 * have all run or 20 s have passed. Then main starts:
 *   idle: one short thread, then `late` threads, and joins them: its hub has
 *         nothing else to run and goes idle;
 *   busy: one thread that calls sched_yield until the spinner stops (its hub
 *         always has something ready), then `late` threads, and joins them.
 * With --hubs=2 the spinner goes to the second hub, the next thread to main's,
 * and the late threads alternate from the second: so some wait behind the
 * spinner.
 *
 * Prints whether every late thread ran while the spinner still computed, and
 * the spinner's result (the same natively and under grove-run). Exits 0, 1 when
 * a thread cannot be created, 2 on a bad command line. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { late = 3 };

static atomic_int ran = 0;        /* late threads that have run */
static atomic_int spinning = 1;   /* the spinner still computes */
static int ran_while_spinning = 0;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void* spinner(void* arg) {
  (void)arg;
  const double give_up = now() + 20.0;
  uint64_t x = 1;
  unsigned long rounds = 0;
  while (atomic_load(&ran) < late) {
    for (int i = 0; i < 100000; ++i) x = x * 6364136223846793005u + 1442695040888963407u;
    if (++rounds % 16 == 0 && now() > give_up) break;
  }
  ran_while_spinning = atomic_load(&ran) == late;
  atomic_store(&spinning, 0);
  return (void*)(uintptr_t)(x != 0);
}

static void* short_one(void* arg) { return arg; }

static void* yielder(void* arg) {
  (void)arg;
  while (atomic_load(&spinning)) sched_yield();
  return NULL;
}

static void* late_one(void* arg) {
  atomic_fetch_add(&ran, 1);
  return arg;
}

int main(int argc, char** argv) {
  if (argc != 2 || (strcmp(argv[1], "idle") != 0 && strcmp(argv[1], "busy") != 0)) {
    fprintf(stderr, "usage: thr_steal idle|busy\n");
    return 2;
  }
  const int busy = strcmp(argv[1], "busy") == 0;
  pthread_t spin, second, lates[late];
  if (pthread_create(&spin, NULL, spinner, NULL) != 0) return 1;
  if (pthread_create(&second, NULL, busy ? yielder : short_one, NULL) != 0) return 1;
  for (int i = 0; i < late; ++i) {
    if (pthread_create(&lates[i], NULL, late_one, NULL) != 0) return 1;
  }
  for (int i = 0; i < late; ++i) pthread_join(lates[i], NULL);
  void* result = NULL;
  pthread_join(spin, &result);
  pthread_join(second, NULL);
  printf("%s: the %d late threads ran while a thread computed: %d, its result: %d\n", argv[1], late,
         ran_while_spinning, (int)(uintptr_t)result);
  return 0;
}
