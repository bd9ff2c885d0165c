/* thr_tls.c — thread-local storage (__thread / _Thread_local): each thread
 * has its own copy, initialised from the initialiser, kept across blocking
 * calls while other threads change theirs. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static __thread int counter = 7;
static __thread char label[32];

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
enum { threads = 20 };
static int started_at_initialiser, kept;

static void* own_copy(void* arg) {
  const int id = (int)(long)arg;
  pthread_mutex_lock(&lock);
  started_at_initialiser += counter == 7 && label[0] == '\0';
  pthread_mutex_unlock(&lock);
  counter = id;
  snprintf(label, sizeof label, "thread %d", id);
  int ok = 1;
  for (int i = 0; i < 5; ++i) {
    usleep(1000); /* the others change their copies meanwhile */
    char expected[32];
    snprintf(expected, sizeof expected, "thread %d", id);
    if (counter != id + i || strcmp(label, expected) != 0) ok = 0;
    counter++;
  }
  pthread_mutex_lock(&lock);
  kept += ok;
  pthread_mutex_unlock(&lock);
  return NULL;
}

int main(void) {
  counter = -1;
  snprintf(label, sizeof label, "main");
  pthread_t t[threads];
  for (long i = 0; i < threads; ++i) pthread_create(&t[i], NULL, own_copy, (void*)i);
  for (int i = 0; i < threads; ++i) pthread_join(t[i], NULL);
  printf("threads that started with the initial values: %d of %d\n", started_at_initialiser, threads);
  printf("threads that kept their own values across sleeps: %d of %d\n", kept, threads);
  printf("main's values: %d, %s\n", counter, label);
  return 0;
}
