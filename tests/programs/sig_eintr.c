/* sig_eintr.c — signals and EINTR in one thread, as signal(7) describes them:
 * a handler without SA_RESTART makes the blocking call it interrupts fail
 * with EINTR (or return what it had moved), with SA_RESTART the call goes on,
 * except those that are never restarted (poll, select, sleeps, calls with a
 * socket timeout). Also sigsuspend, pause, raise of a blocked signal,
 * sigpending, sigpause (XSI's and BSD's), signal()'s BSD semantics, sysv_signal's one-shot handler,
 * siginterrupt and what sigaction reports. Prints what each call returned; the
 * output is the same natively and under grove-run. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* glibc's other two sigpause entry points: BSD's, which takes a mask (the
 * symbol sigpause), and the one both end in. */
extern int bsd_sigpause(int mask) __asm__("sigpause");
extern int __sigpause(int sig_or_mask, int is_sig);

static volatile sig_atomic_t got;
static volatile sig_atomic_t count;

static void on_signal(int sig) {
  got = sig;
  count++;
}

static void handle(int sig, int flags) {
  struct sigaction a;
  memset(&a, 0, sizeof a);
  a.sa_handler = on_signal;
  a.sa_flags = flags;
  sigaction(sig, &a, NULL);
}

/* after_ms raises SIGALRM once, ms milliseconds from now. */
static void after_ms(long ms) {
  struct itimerval t;
  memset(&t, 0, sizeof t);
  t.it_value.tv_sec = ms / 1000;
  t.it_value.tv_usec = (ms % 1000) * 1000;
  setitimer(ITIMER_REAL, &t, NULL);
}

static const char* result(long r) {
  static char buf[64];
  if (r >= 0) {
    snprintf(buf, sizeof buf, "%ld", r);
  } else {
    snprintf(buf, sizeof buf, "-1 %s", errno == EINTR ? "EINTR" : strerror(errno));
  }
  return buf;
}

/* writer_after forks a child that writes one byte to fd after ms milliseconds. */
static pid_t writer_after(int fd, long ms) {
  const pid_t pid = fork();
  if (pid == 0) {
    usleep((useconds_t)(ms * 1000));
    if (write(fd, "x", 1) != 1) _exit(1);
    _exit(0);
  }
  return pid;
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  int p[2];
  if (pipe(p) != 0) return 1;
  char c;

  handle(SIGALRM, 0);
  got = 0;
  after_ms(100);
  long r = read(p[0], &c, 1);
  printf("read, no SA_RESTART: %s, handler ran: %d\n", result(r), got == SIGALRM);

  handle(SIGALRM, SA_RESTART);
  got = 0;
  pid_t w = writer_after(p[1], 400);
  after_ms(100);
  r = read(p[0], &c, 1);
  printf("read, SA_RESTART: %s, handler ran: %d\n", result(r), got == SIGALRM);
  waitpid(w, NULL, 0);

  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 1;
  handle(SIGALRM, 0);
  after_ms(100);
  printf("recv, no SA_RESTART: %s\n", result(recv(sv[0], &c, 1, 0)));

  handle(SIGALRM, SA_RESTART);
  w = writer_after(sv[1], 400);
  after_ms(100);
  printf("recv, SA_RESTART: %s\n", result(recv(sv[0], &c, 1, 0)));
  waitpid(w, NULL, 0);

  struct timeval tv = {5, 0};
  setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  after_ms(100);
  printf("recv with SO_RCVTIMEO, SA_RESTART: %s\n", result(recv(sv[0], &c, 1, 0)));

  struct pollfd pf = {p[0], POLLIN, 0};
  after_ms(100);
  printf("poll, SA_RESTART: %s\n", result(poll(&pf, 1, 5000)));

  fd_set rs;
  FD_ZERO(&rs);
  FD_SET(p[0], &rs);
  struct timeval st = {5, 0};
  after_ms(100);
  printf("select, SA_RESTART: %s\n", result(select(p[0] + 1, &rs, NULL, NULL, &st)));
  printf("  its set as it came (a retry waits for the same): %d\n", FD_ISSET(p[0], &rs) != 0);

  after_ms(300);
  const unsigned left = sleep(3);
  printf("sleep(3) cut short: %u seconds left\n", left);

  struct timespec req = {3, 0}, rem = {0, 0};
  after_ms(100);
  const int ns = nanosleep(&req, &rem);
  printf("nanosleep: %s, rem about 2.9 s: %d\n", result(ns), rem.tv_sec == 2 && rem.tv_nsec > 500000000L);

  after_ms(100);
  printf("usleep: %s\n", result(usleep(3000000)));

  req.tv_sec = 3;
  req.tv_nsec = 0;
  after_ms(100);
  printf("clock_nanosleep: %s\n", strerror(clock_nanosleep(CLOCK_MONOTONIC, 0, &req, &rem)));

  /* A write into a full pipe that moved some bytes returns their count. */
  int q[2];
  if (pipe(q) != 0) return 1;
  fcntl(q[1], F_SETPIPE_SZ, 4096);
  static char big[65536];
  handle(SIGALRM, 0);
  after_ms(100);
  const ssize_t wrote = write(q[1], big, sizeof big);
  printf("write into a 4 KiB pipe: partial %d\n", wrote > 0 && wrote < (ssize_t)sizeof big);
  close(q[0]);
  close(q[1]);

  /* raise of a blocked signal: pending until unblocked, then delivered. */
  sigset_t usr1, old, pend;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  handle(SIGUSR1, 0);
  sigprocmask(SIG_BLOCK, &usr1, &old);
  got = 0;
  raise(SIGUSR1);
  sigpending(&pend);
  printf("raise blocked: handler ran: %d, pending: %d\n", got != 0, sigismember(&pend, SIGUSR1));
  sigprocmask(SIG_SETMASK, &old, NULL);
  sigpending(&pend);
  printf("unblocked: handler ran: %d, pending: %d\n", got == SIGUSR1, sigismember(&pend, SIGUSR1));

  /* sigsuspend with SIGALRM blocked outside it. */
  sigset_t alrm, during;
  sigemptyset(&alrm);
  sigaddset(&alrm, SIGALRM);
  sigprocmask(SIG_BLOCK, &alrm, &old);
  got = 0;
  after_ms(100);
  usleep(200000); /* the signal comes while blocked: pending */
  sigpending(&pend);
  printf("blocked SIGALRM pending: %d, handler ran: %d\n", sigismember(&pend, SIGALRM), got != 0);
  sigemptyset(&during);
  r = sigsuspend(&during);
  printf("sigsuspend: %s, handler ran: %d\n", result(r), got == SIGALRM);
  sigset_t now;
  sigprocmask(SIG_SETMASK, &old, &now);
  printf("mask after sigsuspend still blocks SIGALRM: %d\n", sigismember(&now, SIGALRM));

  got = 0;
  after_ms(100);
  r = pause();
  printf("pause: %s, handler ran: %d\n", result(r), got == SIGALRM);

  /* sigpause: XSI's lets one blocked signal in for the wait, BSD's waits with
   * an old-style mask in place of the thread's; both restore the mask. */
  sigprocmask(SIG_BLOCK, &alrm, &old);
  got = 0;
  after_ms(100);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  r = sigpause(SIGALRM); /* deprecated, and still what programs call */
#pragma GCC diagnostic pop
  sigprocmask(SIG_SETMASK, NULL, &now);
  printf("sigpause(SIGALRM) with it blocked: %s, handler ran: %d, still blocked after: %d\n", result(r),
         got == SIGALRM, sigismember(&now, SIGALRM));
  got = 0;
  after_ms(100);
  r = bsd_sigpause(0);
  sigprocmask(SIG_SETMASK, NULL, &now);
  printf("BSD sigpause(0) with SIGALRM blocked: %s, handler ran: %d, still blocked after: %d\n", result(r),
         got == SIGALRM, sigismember(&now, SIGALRM));
  handle(SIGUSR1, 0);
  got = 0;
  after_ms(100);
  pid_t usr1_sender = fork();
  if (usr1_sender == 0) {
    usleep(300000);
    kill(getppid(), SIGUSR1);
    _exit(0);
  }
  r = __sigpause(1 << (SIGALRM - 1), 0); /* SIGALRM stays out: SIGUSR1 ends the wait */
  printf("__sigpause with a BSD mask of SIGALRM: %s, ended by SIGUSR1: %d\n", result(r), got == SIGUSR1);
  waitpid(usr1_sender, NULL, 0);
  sigprocmask(SIG_SETMASK, &old, NULL);
  printf("SIGALRM let in after: handler ran: %d\n", got == SIGALRM);

  /* signal(): BSD semantics, the handler stays and calls restart. */
  signal(SIGALRM, on_signal);
  struct sigaction q2;
  sigaction(SIGALRM, NULL, &q2);
  printf("signal(): SA_RESTART %d, handler kept %d\n", (q2.sa_flags & SA_RESTART) != 0, q2.sa_handler == on_signal);
  w = writer_after(p[1], 400);
  after_ms(100);
  printf("read after signal(): %s\n", result(read(p[0], &c, 1)));
  waitpid(w, NULL, 0);

  /* siginterrupt(sig, 1): no SA_RESTART any more. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  siginterrupt(SIGALRM, 1); /* deprecated, and still what programs call */
#pragma GCC diagnostic pop
  after_ms(100);
  printf("read after siginterrupt(1): %s\n", result(read(p[0], &c, 1)));

  /* sysv_signal: one shot. */
  sysv_signal(SIGUSR2, on_signal);
  count = 0;
  raise(SIGUSR2);
  struct sigaction q3;
  sigaction(SIGUSR2, NULL, &q3);
  printf("sysv_signal: ran %d, reset to SIG_DFL: %d\n", (int)count, q3.sa_handler == SIG_DFL);

  /* What sigaction reports back. */
  struct sigaction a, back;
  memset(&a, 0, sizeof a);
  a.sa_handler = on_signal;
  a.sa_flags = SA_RESTART | SA_NODEFER;
  sigemptyset(&a.sa_mask);
  sigaddset(&a.sa_mask, SIGTERM);
  sigaction(SIGHUP, &a, NULL);
  sigaction(SIGHUP, NULL, &back);
  printf("sigaction reports: handler %d, flags %#x, SIGTERM in mask %d\n", back.sa_handler == on_signal,
         (unsigned)back.sa_flags, sigismember(&back.sa_mask, SIGTERM));
  printf("sigaction(SIGKILL): %s\n", result(sigaction(SIGKILL, &a, NULL)));
  printf("sigaction(0): %s\n", result(sigaction(0, &a, NULL)));
  printf("sigprocmask(99): %s\n", result(sigprocmask(99, &usr1, NULL)));
  return 0;
}
