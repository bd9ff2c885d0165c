/* thr_deadlock — two threads take two mutexes in opposite orders and deadlock,
 * while main waits to join them: natively it hangs for ever. Under grove-run it
 * hangs the same, and grove says so on stderr (the deadlock report), with one
 * hub or several. Prints "locked" lines as it goes; never exits by itself. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static pthread_mutex_t a = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t b = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t both;

static void* first(void* arg) {
  (void)arg;
  pthread_mutex_lock(&a);
  printf("first: locked a\n");
  fflush(stdout);
  pthread_barrier_wait(&both);
  pthread_mutex_lock(&b);
  return NULL;
}

static void* second(void* arg) {
  (void)arg;
  pthread_mutex_lock(&b);
  printf("second: locked b\n");
  fflush(stdout);
  pthread_barrier_wait(&both);
  pthread_mutex_lock(&a);
  return NULL;
}

int main(void) {
  pthread_t t[2];
  pthread_barrier_init(&both, NULL, 2);
  pthread_create(&t[0], NULL, first, NULL);
  pthread_create(&t[1], NULL, second, NULL);
  pthread_join(t[0], NULL);
  pthread_join(t[1], NULL);
  printf("never\n");
  return 0;
}
