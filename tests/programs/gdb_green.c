/* gdb_green — plain C pthreads for the gdb extension's test: under the preload
 * library they are green threads, parked in sleep and read, when main calls
 * all_parked (where gdb stops the program). */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static int fds[2];
static volatile int after_call;

__attribute__((noinline)) static void* sleeping_worker(void* arg) {
  (void)arg;
  sleep(30);
  after_call = 1;
  return NULL;
}

__attribute__((noinline)) static void* reading_worker(void* arg) {
  (void)arg;
  char c;
  if (read(fds[0], &c, 1) < 0) perror("read");
  after_call = 2;
  return NULL;
}

__attribute__((noinline)) void all_parked(void) { after_call = 3; }

int main(void) {
  if (pipe(fds) != 0) return 1;
  pthread_t a, b;
  pthread_create(&a, NULL, sleeping_worker, NULL);
  pthread_create(&b, NULL, reading_worker, NULL);
  usleep(100000); /* both block */
  all_parked();
  if (write(fds[1], "x", 1) != 1) return 1;
  pthread_join(b, NULL);
  pthread_cancel(a);
  pthread_join(a, NULL);
  puts("gdb_green: done");
  return 0;
}
