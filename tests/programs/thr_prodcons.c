/* thr_prodcons.c — producers and consumers on a bounded buffer guarded by a
 * mutex and two condition variables; then 300 threads waiting on one
 * condition variable for a broadcast (the report_threads sample).
 * Only aggregates are printed: which consumer gets which item depends on
 * scheduling. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "thr_common.h"

enum { producers = 4, consumers = 3, items_each = 20000, capacity = 8 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER;
static long buffer[capacity];
static int head, count;
static int max_count;

static void put(long v) {
  pthread_mutex_lock(&lock);
  while (count == capacity) pthread_cond_wait(&not_full, &lock);
  buffer[(head + count) % capacity] = v;
  if (++count > max_count) max_count = count;
  pthread_cond_signal(&not_empty);
  pthread_mutex_unlock(&lock);
}

static long take(void) {
  pthread_mutex_lock(&lock);
  while (count == 0) pthread_cond_wait(&not_empty, &lock);
  const long v = buffer[head];
  head = (head + 1) % capacity;
  --count;
  pthread_cond_signal(&not_full);
  pthread_mutex_unlock(&lock);
  return v;
}

struct consumed {
  long items;
  long sum;
  long per_producer[producers];
  int out_of_order; /* one producer's items seen in a wrong order */
};

static void* producer(void* arg) {
  const long p = (long)arg;
  for (long i = 0; i < items_each; ++i) {
    put(p * 1000000 + i);
    /* Now and then a producer sleeps, so consumers find the buffer empty. */
    if (i % 5000 == 4999) usleep(1000);
  }
  return NULL;
}

static void* consumer(void* arg) {
  struct consumed* c = arg;
  long last[producers];
  for (int p = 0; p < producers; ++p) last[p] = -1;
  for (;;) {
    const long v = take();
    if (v < 0) break;
    const int p = (int)(v / 1000000);
    const long i = v % 1000000;
    /* The buffer is FIFO and each producer puts in order, so any one
     * consumer sees each producer's items in increasing order. */
    if (i <= last[p]) c->out_of_order++;
    last[p] = i;
    c->items++;
    c->sum += v;
    c->per_producer[p] += i;
    if (c->items % 7000 == 0) usleep(500);
  }
  return NULL;
}

/* The broadcast phase. */
enum { waiters = 300 };
static pthread_cond_t go_cond = PTHREAD_COND_INITIALIZER;
static pthread_cond_t all_waiting = PTHREAD_COND_INITIALIZER;
static int waiting, go, woken;

static void* waiter(void* arg) {
  (void)arg;
  pthread_mutex_lock(&lock);
  if (++waiting == waiters) pthread_cond_signal(&all_waiting);
  while (!go) pthread_cond_wait(&go_cond, &lock);
  ++woken;
  pthread_mutex_unlock(&lock);
  return NULL;
}

int main(void) {
  pthread_t pt[producers], ct[consumers];
  struct consumed results[consumers] = {0};
  for (long p = 0; p < producers; ++p) pthread_create(&pt[p], NULL, producer, (void*)p);
  for (int c = 0; c < consumers; ++c) pthread_create(&ct[c], NULL, consumer, &results[c]);
  for (int p = 0; p < producers; ++p) pthread_join(pt[p], NULL);
  for (int c = 0; c < consumers; ++c) put(-1); /* one stop marker each */
  for (int c = 0; c < consumers; ++c) pthread_join(ct[c], NULL);

  long items = 0, sum = 0, out_of_order = 0, per_producer[producers] = {0};
  for (int c = 0; c < consumers; ++c) {
    items += results[c].items;
    sum += results[c].sum;
    out_of_order += results[c].out_of_order;
    for (int p = 0; p < producers; ++p) per_producer[p] += results[c].per_producer[p];
  }
  long expected_sum = 0;
  for (long p = 0; p < producers; ++p)
    for (long i = 0; i < items_each; ++i) expected_sum += p * 1000000 + i;
  printf("items consumed: %ld of %d\n", items, producers * items_each);
  printf("checksum: %ld, expected %ld\n", sum, expected_sum);
  for (int p = 0; p < producers; ++p)
    printf("producer %d: index sum %ld (expected %ld)\n", p, per_producer[p], (long)items_each * (items_each - 1) / 2);
  printf("items out of their producer's order: %ld\n", out_of_order);
  printf("buffer never above capacity: %s\n", max_count <= capacity ? "yes" : "no");
  printf("buffer filled up at some point: %s\n", max_count == capacity ? "yes" : "no");
  printf("left in the buffer: %d\n", count);

  pthread_t wt[waiters];
  int started = 0;
  for (; started < waiters; ++started)
    if (pthread_create(&wt[started], NULL, waiter, NULL) != 0) break;
  pthread_mutex_lock(&lock);
  while (waiting < started) pthread_cond_wait(&all_waiting, &lock);
  /* All of them wait on go_cond (each released the mutex in its wait). */
  report_threads("peak");
  printf("threads waiting for the broadcast: %d\n", waiting);
  go = 1;
  pthread_cond_broadcast(&go_cond);
  pthread_mutex_unlock(&lock);
  for (int i = 0; i < started; ++i) pthread_join(wt[i], NULL);
  printf("threads woken by one broadcast: %d\n", woken);
  return 0;
}
