/* bench/threads/thread_echo_server — the typical threaded server: one pthread per connection,
 * doing blocking recv/send. Plain C, no grove: bench/threads/run.sh runs it natively and under
 * grove-run (green pthreads), beside bench/echo's epoll server.
 *
 * Usage: bench_threads_echo PORT      (PORT 0 picks a free port)
 *
 * Same contract as bench/echo's servers, so bench_echo_load drives it: binds 127.0.0.1:PORT,
 * prints exactly `listening on 127.0.0.1:<port>` on stdout (flushed) once it accepts
 * connections, echoes every byte back on every connection, and exits 0 on SIGINT or SIGTERM.
 * Errors go to stderr and exit 1.
 *
 * Threads are created with default attributes (glibc: 8 MiB stacks, from RLIMIT_STACK) and
 * detached, as a server written without thought for memory would. Each receives into a
 * 4 KiB buffer on its stack (ECHO_BUFFER_SIZE). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

_Noreturn static void die(const char* what) {
  fprintf(stderr, "bench_threads_echo: %s: %s\n", what, strerror(errno));
  exit(1);
}

/* A stop request ends the process at once: the connections' threads are blocked in recv, and
 * the kernel closes their sockets. _exit is async-signal-safe, and stdout was flushed when the
 * port was printed. */
static void on_stop(int signal_number) {
  (void)signal_number;
  _exit(0);
}

/* The receive buffer, on each thread's stack. -DECHO_BUFFER_SIZE=N changes it for experiments
 * (how much of each stack a connection touches). */
#ifndef ECHO_BUFFER_SIZE
#define ECHO_BUFFER_SIZE 4096
#endif

/* serve echoes one connection until the peer closes it or fails. */
static void* serve(void* arg) {
  const int fd = (int)(intptr_t)arg;
  char buffer[ECHO_BUFFER_SIZE];
  for (;;) {
    const ssize_t got = recv(fd, buffer, sizeof buffer, 0);
    if (got == 0) break;
    if (got < 0) {
      if (errno == EINTR) continue;
      break; /* ECONNRESET and friends: the peer is gone */
    }
    ssize_t sent = 0;
    while (sent < got) {
      const ssize_t n = send(fd, buffer + sent, (size_t)(got - sent), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        goto done;
      }
      sent += n;
    }
  }
done:
  close(fd);
  return NULL;
}

static void raise_fd_limit(void) {
  /* One descriptor per connection: the 10,000-connection run needs more than the usual soft
   * limit of 1,024. An unlimited hard limit still stops at fs.nr_open (default 2^20). */
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) die("getrlimit(RLIMIT_NOFILE)");
  limit.rlim_cur = limit.rlim_max == RLIM_INFINITY ? (rlim_t)1 << 20 : limit.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) die("setrlimit(RLIMIT_NOFILE)");
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s PORT   (0 picks a free port; binds 127.0.0.1)\n", argv[0]);
    return 2;
  }
  char* end = NULL;
  errno = 0;
  const long port = strtol(argv[1], &end, 10);
  if (errno != 0 || end == argv[1] || *end != '\0' || port < 0 || port > 65535) {
    fprintf(stderr, "bench_threads_echo: PORT must be 0..65535, got '%s'\n", argv[1]);
    return 2;
  }
  raise_fd_limit();

  struct sigaction stop;
  memset(&stop, 0, sizeof stop);
  stop.sa_handler = on_stop;
  sigemptyset(&stop.sa_mask);
  if (sigaction(SIGTERM, &stop, NULL) != 0 || sigaction(SIGINT, &stop, NULL) != 0) die("sigaction");

  const int listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd < 0) die("socket");
  const int one = 1;
  if (setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) die("setsockopt(SO_REUSEADDR)");
  struct sockaddr_in address;
  memset(&address, 0, sizeof address);
  address.sin_family = AF_INET;
  address.sin_port = htons((uint16_t)port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listen_fd, (struct sockaddr*)&address, sizeof address) != 0) die("bind 127.0.0.1");
  /* The largest backlog the kernel allows, as bench_echo_epoll: the load generator connects
   * in bursts, and an overflowing accept queue shows up as 1 s SYN retries. */
  if (listen(listen_fd, SOMAXCONN) != 0) die("listen");
  socklen_t length = sizeof address;
  if (getsockname(listen_fd, (struct sockaddr*)&address, &length) != 0) die("getsockname");
  printf("listening on 127.0.0.1:%d\n", ntohs(address.sin_port));
  fflush(stdout);

  for (;;) {
    const int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      die("accept4 (for EMFILE raise the hard limit: ulimit -Hn)");
    }
    /* As bench_echo_epoll: a 64-byte echo must not wait for the previous one's ACK. */
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) die("setsockopt(TCP_NODELAY)");
    pthread_t thread;
    const int error = pthread_create(&thread, NULL, serve, (void*)(intptr_t)fd);
    if (error != 0) {
      /* A benchmark server is better off stopping with the reason (EAGAIN: RLIMIT_NPROC,
       * kernel.threads-max or memory) than serving some connections and not others. */
      errno = error;
      die("pthread_create");
    }
    pthread_detach(thread);
  }
}
