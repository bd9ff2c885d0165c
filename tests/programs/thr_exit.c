/* thr_exit.c — pthread_exit: from a function nested three deep, with a value
 * pthread_join returns, running the cleanup handlers pushed on the way (last
 * pushed first) and the thread's key destructors; a start routine's return
 * value; and pthread_exit from main while other threads still run: the
 * process lives on until the last of them finishes, then exits with status 0,
 * running its atexit handlers and flushing stdout. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char cleanup_order[64];

static void cleanup(void* arg) {
  pthread_mutex_lock(&lock);
  if (strlen(cleanup_order) < 8) strcat(cleanup_order, (const char*)arg); /* the first thread's */
  pthread_mutex_unlock(&lock);
}

static int after_exit_ran; /* code after pthread_exit must never run */
static void level3(long v) {
  pthread_cleanup_push(cleanup, "3");
  usleep(1000);
  pthread_exit((void*)(v * 2));
  after_exit_ran = 1;
  pthread_cleanup_pop(0);
}
static void level2(long v) {
  pthread_cleanup_push(cleanup, "2");
  level3(v + 1);
  after_exit_ran = 1;
  pthread_cleanup_pop(0);
}
static void level1(long v) {
  pthread_cleanup_push(cleanup, "1");
  pthread_cleanup_push(cleanup, "0");
  pthread_cleanup_pop(1); /* runs "0" now */
  level2(v + 1);
  after_exit_ran = 1;
  pthread_cleanup_pop(0);
}

static pthread_key_t key;
static int key_destructor_runs;
static void key_destructor(void* v) {
  (void)v;
  pthread_mutex_lock(&lock);
  key_destructor_runs++;
  pthread_mutex_unlock(&lock);
}

static void* nested_exit(void* arg) {
  static int token;
  pthread_setspecific(key, &token);
  level1((long)arg);
  return (void*)-1; /* not reached */
}

static void* returns(void* arg) { return (void*)((long)arg + 1); }

/* The threads that outlive main. */
enum { survivors = 5 };
static int main_exited, survivors_done;
static long survivors_sum;
static void* survivor(void* arg) {
  const long i = (long)arg;
  usleep((useconds_t)(200000 + 20000 * i));
  pthread_mutex_lock(&lock);
  const int main_gone = main_exited;
  survivors_sum += i;
  const int last = ++survivors_done == survivors;
  pthread_mutex_unlock(&lock);
  if (last)
    printf("the last survivor: main had exited: %s, %d survivors done, sum %ld\n", main_gone ? "yes" : "no",
           survivors_done, survivors_sum);
  if (i == 2) pthread_exit(NULL); /* one leaves by pthread_exit */
  return NULL;
}

static void at_exit(void) { printf("atexit handler ran, survivors done: %d\n", survivors_done); }

static void main_key_destructor(void* v) { printf("main's key destructor ran with %s\n", (const char*)v); }

int main(void) {
  pthread_key_create(&key, key_destructor);
  pthread_t t;
  void* value = NULL;
  pthread_create(&t, NULL, nested_exit, (void*)20);
  pthread_join(t, &value);
  printf("pthread_exit three calls deep: join returned %ld\n", (long)value);
  printf("cleanup handlers ran in the order: %s\n", cleanup_order);
  printf("code after pthread_exit ran: %s\n", after_exit_ran ? "yes" : "no");
  printf("the thread's key destructor ran %d time(s)\n", key_destructor_runs);
  pthread_create(&t, NULL, returns, (void*)41);
  pthread_join(t, &value);
  printf("a start routine's return: join returned %ld\n", (long)value);

  pthread_t many[50];
  for (long i = 0; i < 50; ++i) pthread_create(&many[i], NULL, i % 2 ? returns : nested_exit, (void*)i);
  long sum = 0;
  for (int i = 0; i < 50; ++i) {
    pthread_join(many[i], &value);
    sum += (long)value;
  }
  printf("50 threads, half by pthread_exit: sum of join values %ld\n", sum);

  atexit(at_exit);
  pthread_key_t main_key;
  pthread_key_create(&main_key, main_key_destructor);
  pthread_setspecific(main_key, "main's value");
  for (long i = 0; i < survivors; ++i) {
    pthread_create(&t, NULL, survivor, (void*)i);
    pthread_detach(t);
  }
  printf("main calls pthread_exit with %d threads running\n", survivors);
  fflush(stdout);
  pthread_mutex_lock(&lock);
  main_exited = 1;
  pthread_mutex_unlock(&lock);
  pthread_exit(NULL);
}
