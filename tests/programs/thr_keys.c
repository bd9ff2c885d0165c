/* thr_keys.c — thread-specific data: pthread_key_create and _delete,
 * pthread_getspecific and _setspecific, each thread with its own values, and
 * destructors at thread exit (by return and by pthread_exit), including ones
 * that set a value again and so run again, up to PTHREAD_DESTRUCTOR_ITERATIONS
 * rounds. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "thr_common.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* key_id: each thread's own id, freed by its destructor. */
static pthread_key_t key_id;
static long id_destructor_sum;
static int id_destructor_runs;
static void free_id(void* value) {
  pthread_mutex_lock(&lock);
  id_destructor_sum += *(int*)value;
  id_destructor_runs++;
  pthread_mutex_unlock(&lock);
  free(value);
}

enum { threads = 50 };
static int wrong_values;

static void* own_value(void* arg) {
  const int id = (int)(long)arg;
  if (pthread_getspecific(key_id) != NULL) {
    pthread_mutex_lock(&lock);
    wrong_values++;
    pthread_mutex_unlock(&lock);
  }
  int* mine = malloc(sizeof *mine);
  *mine = id;
  pthread_setspecific(key_id, mine);
  for (int i = 0; i < 5; ++i) {
    usleep(1000); /* the others set their own values meanwhile */
    const int* seen = pthread_getspecific(key_id);
    if (seen != mine || *seen != id) {
      pthread_mutex_lock(&lock);
      wrong_values++;
      pthread_mutex_unlock(&lock);
    }
  }
  if (id % 2 == 1) pthread_exit(NULL); /* destructors run on pthread_exit too */
  return NULL;
}

/* key_forever: a destructor that always sets the value again. */
static pthread_key_t key_forever;
static int forever_runs;
static void set_again(void* value) {
  forever_runs++;
  pthread_setspecific(key_forever, value);
}

/* key_twice: a destructor that sets it again once, and also sets key_late,
 * whose destructor then runs in the next round. */
static pthread_key_t key_twice, key_late;
static int twice_runs, late_runs, late_round;
static void set_again_once(void* value) {
  twice_runs++;
  if (twice_runs == 1) {
    pthread_setspecific(key_twice, value);
    pthread_setspecific(key_late, value);
  }
}
static void late(void* value) {
  (void)value;
  late_runs++;
  late_round = twice_runs; /* after the first round of key_twice */
}

/* key_null: set to NULL, so its destructor never runs. */
static pthread_key_t key_null;
static int null_runs;
static void null_destructor(void* value) {
  (void)value;
  null_runs++;
}

static void* set_keys(void* arg) {
  (void)arg;
  static int token;
  pthread_setspecific(key_forever, &token);
  pthread_setspecific(key_twice, &token);
  pthread_setspecific(key_null, &token);
  pthread_setspecific(key_null, NULL);
  return NULL;
}

/* A key deleted while a thread holds a value: no destructor runs, and a key
 * created afterwards (perhaps in the same slot) starts out NULL there. */
static pthread_key_t key_deleted, key_new;
static int deleted_runs;
static void deleted_destructor(void* value) {
  (void)value;
  deleted_runs++;
}
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int phase;
static void* outlives_its_key(void* arg) {
  (void)arg;
  static int token;
  pthread_setspecific(key_deleted, &token);
  pthread_mutex_lock(&lock);
  phase = 1;
  pthread_cond_broadcast(&changed);
  while (phase != 2) pthread_cond_wait(&changed, &lock);
  pthread_mutex_unlock(&lock);
  return pthread_getspecific(key_new) == NULL ? (void*)"NULL" : (void*)"not NULL";
}

int main(void) {
  printf("PTHREAD_DESTRUCTOR_ITERATIONS: %d\n", PTHREAD_DESTRUCTOR_ITERATIONS);
  pthread_key_create(&key_id, free_id);
  printf("main's value before set: %s\n", pthread_getspecific(key_id) == NULL ? "NULL" : "set");
  static int main_value = -1;
  pthread_setspecific(key_id, &main_value);

  pthread_t t[threads];
  for (long i = 0; i < threads; ++i) pthread_create(&t[i], NULL, own_value, (void*)i);
  for (int i = 0; i < threads; ++i) pthread_join(t[i], NULL);
  printf("threads that saw another's value: %d\n", wrong_values);
  printf("id destructors: %d runs, sum %ld (expected %d)\n", id_destructor_runs, id_destructor_sum,
         threads * (threads - 1) / 2);
  printf("main's value after the threads: %s\n", pthread_getspecific(key_id) == &main_value ? "its own" : "changed");

  pthread_key_create(&key_forever, set_again);
  pthread_key_create(&key_twice, set_again_once);
  pthread_key_create(&key_late, late);
  pthread_key_create(&key_null, null_destructor);
  pthread_t one;
  pthread_create(&one, NULL, set_keys, NULL);
  pthread_join(one, NULL);
  printf("a destructor that always sets again ran %d times\n", forever_runs);
  printf("a destructor that sets again once ran %d times\n", twice_runs);
  printf("a key set by a destructor: its destructor ran %d time(s), after round %d\n", late_runs, late_round);
  printf("a key set to NULL: its destructor ran %d times\n", null_runs);

  pthread_key_create(&key_deleted, deleted_destructor);
  pthread_create(&one, NULL, outlives_its_key, NULL);
  pthread_mutex_lock(&lock);
  while (phase != 1) pthread_cond_wait(&changed, &lock);
  printf("pthread_key_delete with a value set in a live thread: %s\n", error_name(pthread_key_delete(key_deleted)));
  printf("pthread_setspecific on the deleted key: %s\n", error_name(pthread_setspecific(key_deleted, &phase)));
  printf("pthread_key_delete again: %s\n", error_name(pthread_key_delete(key_deleted)));
  pthread_key_create(&key_new, NULL);
  phase = 2;
  pthread_cond_broadcast(&changed);
  pthread_mutex_unlock(&lock);
  void* seen = NULL;
  pthread_join(one, &seen);
  printf("its destructor ran %d times\n", deleted_runs);
  printf("a key created after the delete reads %s in that thread\n", (const char*)seen);
  pthread_key_delete(key_new);

  enum { many = 300 };
  pthread_key_t keys[many];
  int created = 0, distinct = 1, kept = 1;
  for (; created < many; ++created)
    if (pthread_key_create(&keys[created], NULL) != 0) break;
  for (int i = 0; i < created; ++i) pthread_setspecific(keys[i], &keys[i]);
  for (int i = 0; i < created; ++i) {
    if (pthread_getspecific(keys[i]) != &keys[i]) kept = 0;
    for (int j = 0; j < i; ++j)
      if (keys[i] == keys[j]) distinct = 0;
  }
  int deleted = 0;
  for (int i = 0; i < created; ++i) deleted += pthread_key_delete(keys[i]) == 0;
  printf("%d keys created, distinct: %s, values kept: %s, deleted: %d\n", created, distinct ? "yes" : "no",
         kept ? "yes" : "no", deleted);
  return 0;
}
