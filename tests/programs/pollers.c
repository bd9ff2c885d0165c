/* pollers.c — poll, select and epoll loops in blocking style, fed by a child
 * process that writes to pipes with pauses. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <unistd.h>

static void feed(int fd, const char* tag) {
  for (int i = 0; i < 3; ++i) {
    usleep(30000);
    char line[32];
    const int n = snprintf(line, sizeof line, "%s %d\n", tag, i);
    if (write(fd, line, (size_t)n) != n) _exit(1);
  }
  _exit(0);
}

static pid_t start_feeder(int* read_end, const char* tag) {
  int p[2];
  if (pipe(p) != 0) _exit(1);
  fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    feed(p[1], tag);
  }
  close(p[1]);
  *read_end = p[0];
  return pid;
}

static int drain(int fd, const char* how) {
  char buf[64];
  const ssize_t n = read(fd, buf, sizeof buf);
  if (n > 0) printf("%s read: %.*s", how, (int)n, buf);
  return (int)n;
}

int main(void) {
  int fd;
  pid_t pid = start_feeder(&fd, "poll");
  struct pollfd p = {fd, POLLIN, 0};
  int timeouts = 0;
  for (;;) {
    const int r = poll(&p, 1, 10);
    if (r == 0) {
      ++timeouts;
      continue;
    }
    if (drain(fd, "poll") <= 0) break;
  }
  printf("poll: some timeouts: %s\n", timeouts > 0 ? "yes" : "no");
  close(fd);
  waitpid(pid, NULL, 0);

  pid = start_feeder(&fd, "select");
  for (;;) {
    fd_set set;
    FD_ZERO(&set);
    FD_SET(fd, &set);
    struct timeval tv = {5, 0};
    const int r = select(fd + 1, &set, NULL, NULL, &tv);
    if (r != 1 || !FD_ISSET(fd, &set)) break;
    if (drain(fd, "select") <= 0) break;
  }
  close(fd);
  waitpid(pid, NULL, 0);

  pid = start_feeder(&fd, "epoll");
  const int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  for (;;) {
    struct epoll_event got[4];
    const int r = epoll_wait(ep, got, 4, 5000);
    if (r != 1 || got[0].data.fd != fd) break;
    if (drain(fd, "epoll") <= 0) break;
  }
  close(ep);
  close(fd);
  waitpid(pid, NULL, 0);

  struct pollfd none = {-1, POLLIN, 0};
  printf("poll on nothing for 50 ms: %d\n", poll(&none, 1, 50));
  int pp[2];
  if (pipe(pp) != 0) return 1;
  close(pp[1]);
  struct pollfd closed = {pp[0], POLLIN, 0};
  const int ready = poll(&closed, 1, 1000);
  printf("poll on a pipe with no writer: %d, POLLHUP %s\n", ready, (closed.revents & POLLHUP) ? "yes" : "no");

  /* The wrong end of a pipe: never ready that way, and the call fails at once. */
  int wrong[2];
  if (pipe(wrong) != 0) return 1;
  static char big[100000];
  char c;
  ssize_t r = read(wrong[1], &c, 1);
  printf("read of a pipe's write end: %zd %s\n", r, r < 0 ? strerror(errno) : "");
  r = write(wrong[0], "x", 1);
  printf("write to a pipe's read end: %zd %s\n", r, r < 0 ? strerror(errno) : "");
  r = write(wrong[0], big, sizeof big);
  printf("large write to a pipe's read end: %zd %s\n", r, r < 0 ? strerror(errno) : "");
  return 0;
}
