/* thr_unlock_turn — a thread woken from another core must soon run, even
 * while the thread that shares its core computes and only takes an
 * uncontended mutex now and then, as liblzma's compressing workers do (xz -T2).
 * Natively the woken thread has a core of its own, or the kernel preempts.
 * Under grove-run --hubs=2 it is a green thread woken from another hub: it
 * runs once its hub polls, and the computing thread's unlock is where the hub
 * gets that turn. Without it the woken thread would wait until the computing
 * one stops.
 *
 * main starts `far`, which computes, and sleeps 200 ms, so that far's hub is
 * the busy one; then main starts `near` (placed on main's hub, which is idle)
 * and waits on a condition variable. near computes, taking and releasing its
 * own mutex every 16,384 rounds, until main says stop or 20 s have passed. far,
 * once near runs, computes 50 ms more and then signals main.
 *
 * Prints whether main woke while near still computed, and whether near's
 * mutex was taken: "1, 1" natively and under grove-run --hubs=2. Exits 0, 1
 * when a thread cannot be created. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t near_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long near_rounds = 0; /* under near_lock */
static atomic_int near_running = 0;
static atomic_int near_computing = 1;
static atomic_int stop = 0;

static pthread_mutex_t wake_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static int woken = 0; /* under wake_lock */

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint64_t compute(uint64_t x, int rounds) {
  for (int i = 0; i < rounds; ++i) x = x * 6364136223846793005u + 1442695040888963407u;
  return x;
}

static void* near(void* arg) {
  (void)arg;
  atomic_store(&near_running, 1);
  const double give_up = now() + 20.0;
  uint64_t x = 1;
  unsigned long n = 0;
  while (!atomic_load(&stop)) {
    pthread_mutex_lock(&near_lock);
    ++near_rounds;
    pthread_mutex_unlock(&near_lock);
    x = compute(x, 16384);
    if (++n % 64 == 0 && now() > give_up) break;
  }
  atomic_store(&near_computing, 0);
  return (void*)(uintptr_t)(x | 1);
}

static void* far(void* arg) {
  (void)arg;
  uint64_t x = 1;
  /* Until near runs (20 s at most), then 50 ms more: computing all along. */
  const double give_up = now() + 20.0;
  while (!atomic_load(&near_running) && now() < give_up) x = compute(x, 16384);
  const double until = now() + 0.05;
  while (now() < until) x = compute(x, 16384);
  pthread_mutex_lock(&wake_lock);
  woken = 1;
  pthread_cond_signal(&wake);
  pthread_mutex_unlock(&wake_lock);
  return (void*)(uintptr_t)(x | 1);
}

int main(void) {
  pthread_t far_thread, near_thread;
  if (pthread_create(&far_thread, NULL, far, NULL) != 0) return 1;
  usleep(200000);
  if (pthread_create(&near_thread, NULL, near, NULL) != 0) return 1;
  pthread_mutex_lock(&wake_lock);
  while (!woken) pthread_cond_wait(&wake, &wake_lock);
  pthread_mutex_unlock(&wake_lock);
  const int while_computing = atomic_load(&near_computing);
  atomic_store(&stop, 1);
  pthread_join(near_thread, NULL);
  pthread_join(far_thread, NULL);
  pthread_mutex_lock(&near_lock);
  const int taken = near_rounds > 0;
  pthread_mutex_unlock(&near_lock);
  printf("main woke while the thread on its core computed: %d, that thread took its mutex: %d\n", while_computing,
         taken);
  return 0;
}
