/* thr_spin.c — spin locks: mutual exclusion among threads, trylock's EBUSY,
 * and a holder that sleeps holding the lock while another thread spins for
 * it (under green threads the spinner must let the holder run). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "thr_common.h"

static pthread_spinlock_t spin;
static long spin_counter;
enum { spinners = 4, spins = 20000 };
static void* spin_count(void* arg) {
  (void)arg;
  for (int i = 0; i < spins; ++i) {
    pthread_spin_lock(&spin);
    spin_counter++;
    pthread_spin_unlock(&spin);
  }
  return NULL;
}

static volatile int holder_has_it;
static void* sleepy_holder(void* arg) {
  (void)arg;
  pthread_spin_lock(&spin);
  holder_has_it = 1;
  usleep(50000); /* sleeps holding the spin lock: others spin meanwhile */
  spin_counter = -1;
  pthread_spin_unlock(&spin);
  return NULL;
}

int main(void) {
  printf("spin: init: %s\n", error_name(pthread_spin_init(&spin, PTHREAD_PROCESS_PRIVATE)));
  pthread_t s[spinners];
  for (int i = 0; i < spinners; ++i) pthread_create(&s[i], NULL, spin_count, NULL);
  for (int i = 0; i < spinners; ++i) pthread_join(s[i], NULL);
  printf("spin: %d threads counted to %ld (expected %d)\n", spinners, spin_counter, spinners * spins);
  printf("spin: trylock: %s\n", error_name(pthread_spin_trylock(&spin)));
  printf("spin: trylock while held: %s\n", error_name(pthread_spin_trylock(&spin)));
  printf("spin: unlock: %s\n", error_name(pthread_spin_unlock(&spin)));
  pthread_t holder;
  pthread_create(&holder, NULL, sleepy_holder, NULL);
  while (!holder_has_it) usleep(1000);
  printf("spin: trylock while another thread holds it: %s\n", error_name(pthread_spin_trylock(&spin)));
  pthread_spin_lock(&spin); /* spins until the sleeping holder lets go */
  printf("spin: lock, after the sleeping holder let go: %s\n", spin_counter == -1 ? "yes" : "no");
  pthread_spin_unlock(&spin);
  pthread_join(holder, NULL);
  printf("spin: destroy: %s\n", error_name(pthread_spin_destroy(&spin)));
  return 0;
}
