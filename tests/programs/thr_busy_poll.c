/* thr_busy_poll.c — an event loop that never waits beside threads that do.
 *
 * In each round a spinner thread calls one kind of poll in a loop until a
 * flag is set: with a zero timeout, or on a descriptor that is always
 * writable, so the call never waits (redis-benchmark --threads does this once
 * its share of requests is sent). A waiter thread sets the flag once it wakes:
 * from a read of a pipe the spinner writes to after it starts spinning, or
 * from a 20 ms sleep. Natively the spinner has a core of its own and the
 * waiter wakes on another; under green threads both share one OS thread, and
 * the waiter's wake-up comes from the hub's poll, so the spinner's calls must
 * give way to it now and then. */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include "thr_common.h"

enum kind { poll_zero, poll_ready, ppoll_zero, select_zero, pselect_ready, epoll_zero, epoll_ready, epoll_pwait_zero, yield };
static const char* const kind_names[] = {
    "poll, zero timeout, no descriptor",      "poll, 1 s timeout, a writable socket", "ppoll, zero timeout",
    "select, zero timeout, a writable socket", "pselect, 1 s timeout, a writable socket",
    "epoll_wait, zero timeout, a writable socket", "epoll_wait, 1 s timeout, a writable socket",
    "epoll_pwait, zero timeout, a writable socket", "sched_yield"};

static atomic_int done;
static int writable;  /* one end of a socket pair with room to write: always writable */
static int epfd;      /* an epoll set watching `writable` for EPOLLOUT */
static int wake_pipe[2];
static enum kind spin_kind;
static int wake_by_io; /* the waiter reads wake_pipe; else it sleeps */
static long spins;

/* spin_once makes one call of the round's kind; none of them ever waits. */
static void spin_once(void) {
  struct pollfd p = {writable, POLLOUT, 0};
  struct epoll_event e;
  fd_set w;
  FD_ZERO(&w);
  FD_SET(writable, &w);
  switch (spin_kind) {
    case poll_zero: poll(NULL, 0, 0); break;
    case poll_ready: poll(&p, 1, 1000); break;
    case ppoll_zero: {
      const struct timespec zero = {0, 0};
      ppoll(&p, 1, &zero, NULL);
      break;
    }
    case select_zero: {
      struct timeval zero = {0, 0};
      select(writable + 1, NULL, &w, NULL, &zero);
      break;
    }
    case pselect_ready: {
      const struct timespec second = {1, 0};
      pselect(writable + 1, NULL, &w, NULL, &second, NULL);
      break;
    }
    case epoll_zero: epoll_wait(epfd, &e, 1, 0); break;
    case epoll_ready: epoll_wait(epfd, &e, 1, 1000); break;
    case epoll_pwait_zero: epoll_pwait(epfd, &e, 1, 0, NULL); break;
    case yield: sched_yield(); break;
  }
}

static void* spinner(void* arg) {
  (void)arg;
  while (!atomic_load(&done)) {
    spin_once();
    if (++spins == 1 && wake_by_io && write(wake_pipe[1], "x", 1) != 1) perror("write");
  }
  return NULL;
}

static void* waiter(void* arg) {
  (void)arg;
  if (wake_by_io) {
    char c;
    if (read(wake_pipe[0], &c, 1) != 1) perror("read");
  } else {
    usleep(20000);
  }
  atomic_store(&done, 1);
  return NULL;
}

int main(void) {
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0 || pipe(wake_pipe) != 0) return 1;
  writable = pair[0];
  epfd = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event e = {.events = EPOLLOUT, .data.fd = writable};
  if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, writable, &e) != 0) return 1;
  for (int k = poll_zero; k <= yield; ++k) {
    for (wake_by_io = 1; wake_by_io >= 0; --wake_by_io) {
      spin_kind = (enum kind)k;
      spins = 0;
      atomic_store(&done, 0);
      struct timespec t0;
      clock_gettime(CLOCK_MONOTONIC, &t0);
      pthread_t w, s;
      pthread_create(&w, NULL, waiter, NULL); /* green threads start in this order: the waiter waits first */
      pthread_create(&s, NULL, spinner, NULL);
      pthread_join(s, NULL);
      pthread_join(w, NULL);
      printf("%s, waiter woken by %s: it ran while the other spun: %s, within 10 s: %s\n", kind_names[k],
             wake_by_io ? "a read" : "a sleep", spins > 0 ? "yes" : "no", seconds_since(&t0) < 10 ? "yes" : "no");
    }
  }
  return 0;
}
