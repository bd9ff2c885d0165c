/* thr_busy_poll.c — threads that loop on poll, select and epoll_wait calls
 * that return at once (a descriptor that is always writable, a zero timeout),
 * as an asyncore or game loop does, while main sleeps and then tells them to
 * stop. Natively the loops only waste CPU; under green threads they must still
 * let the sleeping main thread, and a thread waiting to read a socket, run. */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include "thr_common.h"

static atomic_int stop;
static int spare[2]; /* a socket pair whose first end is always writable */

static void* poll_loop(void* arg) {
  (void)arg;
  long returns = 0;
  struct pollfd p = {spare[0], POLLOUT, 0};
  while (!atomic_load(&stop)) returns += poll(&p, 1, 1000) == 1;
  return (void*)(returns > 0 ? "poll" : "poll: never ready");
}

static void* select_loop(void* arg) {
  (void)arg;
  long returns = 0;
  while (!atomic_load(&stop)) {
    fd_set w;
    FD_ZERO(&w);
    FD_SET(spare[0], &w);
    struct timeval t = {1, 0};
    returns += select(spare[0] + 1, NULL, &w, NULL, &t) == 1;
  }
  return (void*)(returns > 0 ? "select" : "select: never ready");
}

static void* zero_timeout_loop(void* arg) {
  (void)arg;
  int ep = epoll_create1(0);
  struct epoll_event e = {.events = EPOLLIN, .data.fd = spare[1]};
  epoll_ctl(ep, EPOLL_CTL_ADD, spare[1], &e);
  while (!atomic_load(&stop)) {
    struct pollfd p = {spare[1], POLLIN, 0};
    poll(&p, 1, 0);
    epoll_wait(ep, &e, 1, 0);
  }
  close(ep);
  return (void*)"zero timeouts";
}

static int talk[2];
static void* reader(void* arg) {
  (void)arg;
  char c = 0;
  ssize_t n = read(talk[1], &c, 1); /* blocks until main writes */
  return (void*)(n == 1 && c == 'x' ? "reader" : "reader: no byte");
}

int main(void) {
  socketpair(AF_UNIX, SOCK_STREAM, 0, spare);
  socketpair(AF_UNIX, SOCK_STREAM, 0, talk);
  void* (*bodies[])(void*) = {poll_loop, select_loop, zero_timeout_loop, reader};
  enum { n = sizeof bodies / sizeof bodies[0] };
  pthread_t t[n];
  for (int i = 0; i < n; ++i) pthread_create(&t[i], NULL, bodies[i], NULL);
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  usleep(100000); /* the busy loops run meanwhile */
  const double slept = seconds_since(&t0);
  printf("main slept 100 ms while the loops ran, back within 2 s: %s\n", slept < 2.0 ? "yes" : "no");
  if (write(talk[0], "x", 1) != 1) perror("write");
  atomic_store(&stop, 1);
  for (int i = 0; i < n; ++i) {
    void* what = NULL;
    pthread_join(t[i], &what);
    printf("%s: stopped\n", (const char*)what);
  }
  printf("total within 2 s: %s\n", seconds_since(&t0) < 2.0 ? "yes" : "no");
  return 0;
}
