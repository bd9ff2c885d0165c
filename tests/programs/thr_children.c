/* thr_children.c — child processes waited for by threads: 20 threads each in
 * system("sleep 0.5; exit N") and 20 more each waiting in waitpid for a shell
 * they started with posix_spawn, all at once; the wait family's cases (any
 * child, WNOHANG, ECHILD, EINVAL, stops and continues, rusage, siginfo,
 * WNOWAIT, pidfds, SIGCHLD ignored); system's and popen's semantics. A
 * ticking thread runs throughout: under grove-run, where the threads are green
 * threads of one OS thread, it ticks only if the waits leave that OS thread
 * free. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "thr_common.h"

extern char** environ;

static atomic_int ticks;
static atomic_int stop_ticking;

static void* ticker(void* arg) {
  (void)arg;
  while (!atomic_load(&stop_ticking)) {
    usleep(10000);
    atomic_fetch_add(&ticks, 1);
  }
  return NULL;
}

static const char* yes(int b) { return b ? "yes" : "no"; }

/* ---- 40 children at once ---- */

enum { pairs = 20 };
static int system_status[pairs];
static int spawn_status[pairs];

static void* run_system(void* arg) {
  const int n = (int)(long)arg;
  char line[64];
  snprintf(line, sizeof line, "sleep 0.5; exit %d", n);
  system_status[n] = system(line);
  return NULL;
}

static void* run_spawned(void* arg) {
  const int n = (int)(long)arg;
  char line[64];
  snprintf(line, sizeof line, "sleep 0.5; exit %d", 100 + n);
  char* argv[] = {"sh", "-c", line, NULL};
  pid_t pid;
  if (posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ) != 0) return NULL;
  int status = 0;
  if (waitpid(pid, &status, 0) == pid) spawn_status[n] = status;
  return NULL;
}

static void many_at_once(void) {
  pthread_t threads[2 * pairs];
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  const int ticks_before = atomic_load(&ticks);
  for (long i = 0; i < pairs; ++i) {
    pthread_create(&threads[i], NULL, run_system, (void*)i);
    pthread_create(&threads[pairs + i], NULL, run_spawned, (void*)i);
  }
  for (int i = 0; i < 2 * pairs; ++i) pthread_join(threads[i], NULL);
  const double took = seconds_since(&t0);
  int right = 0;
  for (int i = 0; i < pairs; ++i) {
    right += WIFEXITED(system_status[i]) && WEXITSTATUS(system_status[i]) == i;
    right += WIFEXITED(spawn_status[i]) && WEXITSTATUS(spawn_status[i]) == 100 + i;
  }
  printf("40 children of 0.5 s, 20 through system and 20 through posix_spawn and waitpid, at once:\n");
  printf("  statuses right: %d of 40\n", right);
  printf("  all done in under 3 s: %s\n", yes(took < 3.0));
  printf("  the ticking thread ticked meanwhile: %s\n", yes(atomic_load(&ticks) - ticks_before >= 10));
}

/* ---- the wait family ---- */

/* child starts a child that sleeps ms milliseconds and exits with code. */
static pid_t child(int ms, int code) {
  const pid_t pid = fork();
  if (pid == 0) {
    usleep((useconds_t)ms * 1000);
    _exit(code);
  }
  return pid;
}

static void wait_family(void) {
  int status = 0;
  int r = waitpid(-1, &status, 0);
  printf("waitpid(-1) with no children: %d %s\n", r, error_name(errno));
  r = wait(&status);
  printf("wait() with no children: %d %s\n", r, error_name(errno));
  r = waitpid(-1, &status, 0x4000);
  printf("waitpid with bad options: %d %s\n", r, error_name(errno));

  pid_t pid = child(300, 3);
  printf("WNOHANG while the child runs: %d\n", waitpid(pid, &status, WNOHANG));
  int ticks_before = atomic_load(&ticks);
  errno = 0;
  pid_t got = waitpid(-1, &status, 0);
  printf("waitpid(-1): the child %s, exit %d, errno %s\n", yes(got == pid), WEXITSTATUS(status), error_name(errno));
  printf("  the ticking thread ticked while waitpid waited: %s\n", yes(atomic_load(&ticks) - ticks_before >= 5));

  pid = child(200, 4);
  ticks_before = atomic_load(&ticks);
  got = waitpid(pid, &status, 0);
  printf("waitpid(pid): %s, exit %d\n", yes(got == pid), WEXITSTATUS(status));
  printf("  the ticking thread ticked while waitpid waited: %s\n", yes(atomic_load(&ticks) - ticks_before >= 5));

  pid = child(5000, 0);
  usleep(50000);
  kill(pid, SIGTERM);
  got = wait(&status);
  printf("wait(): a child killed by SIGTERM: %s, signaled %s, signal %s\n", yes(got == pid),
         yes(WIFSIGNALED(status)), WTERMSIG(status) == SIGTERM ? "SIGTERM" : "other");

  pid = child(100, 5);
  got = waitpid(0, &status, 0);
  printf("waitpid(0), the caller's process group: %s, exit %d\n", yes(got == pid), WEXITSTATUS(status));
  pid = child(100, 6);
  got = waitpid(-getpgrp(), &status, 0);
  printf("waitpid(-pgid): %s, exit %d\n", yes(got == pid), WEXITSTATUS(status));

  /* Stops and continues. */
  pid = fork();
  if (pid == 0) {
    raise(SIGSTOP);
    usleep(200000); /* continued: the parent's WCONTINUED wait sees that before the exit */
    _exit(8);
  }
  got = waitpid(pid, &status, WUNTRACED);
  printf("WUNTRACED: %s, stopped %s by %s\n", yes(got == pid), yes(WIFSTOPPED(status)),
         WSTOPSIG(status) == SIGSTOP ? "SIGSTOP" : "other");
  kill(pid, SIGCONT);
  got = waitpid(pid, &status, WCONTINUED);
  printf("WCONTINUED: %s, continued %s\n", yes(got == pid), yes(WIFCONTINUED(status)));
  got = waitpid(pid, &status, 0);
  printf("then its exit: %s, exit %d\n", yes(got == pid), WEXITSTATUS(status));

  /* rusage */
  pid = child(150, 9);
  struct rusage usage;
  memset(&usage, 0, sizeof usage);
  got = wait4(pid, &status, 0, &usage);
  printf("wait4: %s, exit %d, rusage filled %s\n", yes(got == pid), WEXITSTATUS(status), yes(usage.ru_maxrss > 0));
  pid = child(150, 10);
  memset(&usage, 0, sizeof usage);
  got = wait3(&status, 0, &usage);
  printf("wait3: %s, exit %d, rusage filled %s\n", yes(got == pid), WEXITSTATUS(status), yes(usage.ru_maxrss > 0));
  r = wait4(-1, &status, 0, &usage);
  printf("wait4 with no children: %d %s\n", r, error_name(errno));

  /* waitid */
  siginfo_t info;
  pid = child(150, 11);
  memset(&info, 0, sizeof info);
  printf("waitid WNOHANG while the child runs: %d, si_pid %d\n", waitid(P_ALL, 0, &info, WEXITED | WNOHANG),
         (int)info.si_pid);
  memset(&info, 0, sizeof info);
  r = waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT);
  printf("waitid(P_PID, WNOWAIT): %d, the child %s, CLD_EXITED %s, status %d\n", r, yes(info.si_pid == pid),
         yes(info.si_code == CLD_EXITED), info.si_status);
  memset(&info, 0, sizeof info);
  r = waitid(P_ALL, 0, &info, WEXITED);
  printf("then waitid(P_ALL) reaps it: %d, the child %s, signo SIGCHLD %s, status %d\n", r, yes(info.si_pid == pid),
         yes(info.si_signo == SIGCHLD), info.si_status);
  pid = child(100, 12);
  memset(&info, 0, sizeof info);
  r = waitid(P_PGID, (id_t)getpgrp(), &info, WEXITED);
  printf("waitid(P_PGID): %d, the child %s, status %d\n", r, yes(info.si_pid == pid), info.si_status);
  pid = child(100, 13);
  const int fd = (int)syscall(SYS_pidfd_open, pid, 0);
  memset(&info, 0, sizeof info);
  r = waitid(P_PIDFD, (id_t)fd, &info, WEXITED);
  printf("waitid(P_PIDFD): %d, the child %s, status %d\n", r, yes(info.si_pid == pid), info.si_status);
  close(fd);
  r = waitid(P_ALL, 0, &info, 0);
  printf("waitid without WEXITED, WSTOPPED or WCONTINUED: %d %s\n", r, error_name(errno));
  r = waitid(P_ALL, 0, &info, WEXITED);
  printf("waitid with no children: %d %s\n", r, error_name(errno));
  pid = child(100, 0);
  r = waitid(P_PID, (id_t)getppid(), &info, WEXITED);
  printf("waitid(P_PID) of a pid not our child: %d %s\n", r, error_name(errno));
  waitpid(pid, NULL, 0);

  /* SIGCHLD ignored: the kernel reaps the children, and wait says ECHILD
   * once they are all gone. */
  signal(SIGCHLD, SIG_IGN);
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 0; i < 3; ++i) child(200, 0);
  errno = 0;
  got = wait(&status);
  printf("wait with SIGCHLD ignored: %d %s, after the children exited %s\n", got, error_name(errno),
         yes(seconds_since(&t0) > 0.15));
  const pid_t one = child(200, 0);
  errno = 0;
  got = waitpid(one, &status, 0);
  printf("waitpid(pid) with SIGCHLD ignored: %d %s, after the child exited %s\n", got, error_name(errno),
         yes(seconds_since(&t0) > 0.3));
  signal(SIGCHLD, SIG_DFL);
}

/* ---- system ---- */

static volatile sig_atomic_t interrupts;
static void on_sigint(int sig) {
  (void)sig;
  interrupts++;
}

static int handler_is(int sig, void (*h)(int)) {
  struct sigaction now;
  sigaction(sig, NULL, &now);
  return now.sa_handler == h;
}

static void* short_system(void* arg) {
  (void)arg;
  return (void*)(long)system("sleep 0.2");
}
static void* long_system(void* arg) {
  (void)arg;
  return (void*)(long)system("sleep 0.6");
}

static void system_semantics(void) {
  printf("system(NULL): %d\n", system(NULL));
  int s = system("exit 7");
  printf("system(\"exit 7\"): exited %s with %d\n", yes(WIFEXITED(s)), WEXITSTATUS(s));
  s = system("kill -9 $$");
  printf("system(\"kill -9 $$\"): signaled %s by %d\n", yes(WIFSIGNALED(s)), WTERMSIG(s));
  s = system("exec /no/such/program 2>/dev/null");
  printf("system of a program that cannot run: exit %d\n", WEXITSTATUS(s));
  errno = EDOM;
  s = system("true");
  printf("errno after a successful system: %s, status %d\n", errno == EDOM ? "kept" : "changed", s);

  /* While system runs, SIGINT and SIGQUIT are ignored in the caller; two
   * overlapping calls share that, and the last one to end restores them. */
  signal(SIGINT, on_sigint);
  pthread_t a, b;
  pthread_create(&a, NULL, long_system, NULL);
  pthread_create(&b, NULL, short_system, NULL);
  usleep(100000);
  const int ignored_during_both = handler_is(SIGINT, SIG_IGN) && handler_is(SIGQUIT, SIG_IGN);
  pthread_join(b, NULL);
  usleep(100000);
  const int ignored_after_the_short_one = handler_is(SIGINT, SIG_IGN);
  pthread_join(a, NULL);
  printf("SIGINT and SIGQUIT ignored while two system calls run: %s\n", yes(ignored_during_both));
  printf("  still ignored after the shorter ended: %s\n", yes(ignored_after_the_short_one));
  printf("  the handler back after both: %s\n", yes(handler_is(SIGINT, on_sigint) && handler_is(SIGQUIT, SIG_DFL)));
  raise(SIGINT);
  printf("  and it runs: %d interrupt\n", (int)interrupts);
  signal(SIGINT, SIG_DFL);

  /* The shell gets SIGINT at its default, and the caller's mask (SIGUSR1
   * blocked: a SIGUSR1 it sends itself stays pending); the caller's mask is as
   * it was before. */
  s = system("kill -INT $$; exit 0");
  printf("a shell that sends itself SIGINT: signaled %s by SIGINT %s\n", yes(WIFSIGNALED(s)),
         yes(WIFSIGNALED(s) && WTERMSIG(s) == SIGINT));
  sigset_t usr1, now;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &usr1, NULL);
  s = system("kill -USR1 $$; exit 0");
  printf("with SIGUSR1 blocked, a shell that sends itself SIGUSR1: exited %s with %d\n", yes(WIFEXITED(s)),
         WIFEXITED(s) ? WEXITSTATUS(s) : -1);
  pthread_sigmask(SIG_BLOCK, NULL, &now);
  printf("the caller afterwards: SIGUSR1 blocked %s, SIGCHLD blocked %s\n", yes(sigismember(&now, SIGUSR1)),
         yes(sigismember(&now, SIGCHLD)));
  pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
}

/* ---- popen ---- */

static int popen_status[10];
static void* run_popen(void* arg) {
  const int n = (int)(long)arg;
  char line[64];
  snprintf(line, sizeof line, "sleep 0.5; exit %d", n);
  /* No reads: stdio's reads are not cooperative; pclose's wait is. */
  FILE* f = popen(line, "r");
  if (f == NULL) return NULL;
  const int s = pclose(f);
  popen_status[n] = WIFEXITED(s) && WEXITSTATUS(s) == n;
  return NULL;
}

static void popen_semantics(void) {
  FILE* f = popen("echo from the child; exit 3", "r");
  char got[64] = "";
  if (fgets(got, sizeof got, f) == NULL) strcpy(got, "nothing\n");
  int s = pclose(f);
  printf("popen(\"r\") read: %s  pclose: exit %d\n", got, WEXITSTATUS(s));
  f = popen("read x; test \"$x\" = hello && exit 4", "w");
  fputs("hello\n", f);
  s = pclose(f);
  printf("popen(\"w\"): the child read what was written: %s\n", yes(WEXITSTATUS(s) == 4));
  f = popen("kill -TERM $$", "r");
  s = pclose(f);
  printf("pclose of a child killed by SIGTERM: signaled %s\n", yes(WIFSIGNALED(s) && WTERMSIG(s) == SIGTERM));
  /* glibc's fclose of a popen stream is its pclose (called through a pointer:
   * the compiler rightly warns about fclose of a popen stream). */
  int (*volatile close_stream)(FILE*) = fclose;
  f = popen("sleep 0.2; exit 5", "r");
  s = close_stream(f);
  printf("fclose of a popen stream waits too: exit %d\n", WEXITSTATUS(s));

  pthread_t threads[10];
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  const int ticks_before = atomic_load(&ticks);
  for (long i = 0; i < 10; ++i) pthread_create(&threads[i], NULL, run_popen, (void*)i);
  for (int i = 0; i < 10; ++i) pthread_join(threads[i], NULL);
  int right = 0;
  for (int i = 0; i < 10; ++i) right += popen_status[i];
  printf("10 threads each popen a 0.5 s child and pclose it: %d right, all in under 3 s %s, ticking meanwhile %s\n", right,
         yes(seconds_since(&t0) < 3.0), yes(atomic_load(&ticks) - ticks_before >= 10));
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  pthread_t tick;
  pthread_create(&tick, NULL, ticker, NULL);
  many_at_once();
  wait_family();
  system_semantics();
  popen_semantics();
  atomic_store(&stop_ticking, 1);
  pthread_join(tick, NULL);
  return 0;
}
