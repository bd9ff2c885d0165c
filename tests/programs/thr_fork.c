/* thr_fork.c — fork in a multithreaded process keeps POSIX semantics: the
 * child has one thread, the one that called fork.
 *
 * 1. A thread forks while 50 others are blocked (16 in usleep, one of them
 *    holding a mutex, 17 in pthread_cond_wait, 17 in read on a pipe) and main
 *    waits in pthread_join. The child runs on the forking thread alone: it keeps
 *    its pthread_self and its thread-specific data, finds the mutex still locked,
 *    sees none of the other threads run, creates threads, sleeps, does I/O,
 *    forks and waits for a grandchild, and when the forking thread returns the
 *    child exits with status 0, running its atexit handler. pthread_atfork
 *    handlers run in POSIX order (prepare in reverse, parent and child in
 *    order); a child handler may block. The parent's 50 threads carry on.
 * 2. main forks while 5 threads wait on a condition variable: the child goes
 *    on in main alone, and exits with main's return value.
 * 3. A thread starts programs with fork + exec, vfork + exec, posix_spawn and
 *    system.
 * With THR_FORK_JOIN_VANISHED set, the child of part 1 also joins a thread
 *    that does not exist there and prints the error (grove-run's choice,
 *    ESRCH: natively that join is undefined, and hangs). */
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "thr_common.h"

extern char** environ;

enum { sleepers = 16, cond_waiters = 17, readers = 17 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static pthread_cond_t all_blocked = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;  /* a sleeper holds it across the fork */
static int blocked = 0;  /* under lock */
static int go = 0;       /* under lock */
static atomic_int sleepers_done, cond_woken, readers_got;
static int reader_pipe[2];
static pthread_key_t key;
static pthread_t vanished_thread;

/* The atfork handlers log into a buffer (printing before the fork would copy
 * unflushed output into the child). */
static char fork_log[256];
static void note(const char* s) {
  strncat(fork_log, s, sizeof fork_log - strlen(fork_log) - 1);
}
static void prepare_a(void) { note(" prepare-a"); }
static void prepare_b(void) { note(" prepare-b"); }
static void parent_a(void) { note(" parent-a"); }
static void parent_b(void) { note(" parent-b"); }
static void child_a(void) {
  usleep(1000); /* a child handler may block */
  note(" child-a");
}
static void child_b(void) { note(" child-b"); }

static void mark_blocked(void) {
  pthread_mutex_lock(&lock);
  if (++blocked == sleepers + cond_waiters + readers) pthread_cond_broadcast(&all_blocked);
  pthread_mutex_unlock(&lock);
}

static void* sleeper(void* arg) {
  const int first = arg != NULL;
  if (first) pthread_mutex_lock(&held);
  mark_blocked();
  usleep(500000);
  if (first) pthread_mutex_unlock(&held);
  atomic_fetch_add(&sleepers_done, 1);
  return NULL;
}

static void* cond_waiter(void* arg) {
  (void)arg;
  pthread_mutex_lock(&lock);
  if (++blocked == sleepers + cond_waiters + readers) pthread_cond_broadcast(&all_blocked);
  while (!go) pthread_cond_wait(&cond, &lock);
  pthread_mutex_unlock(&lock);
  atomic_fetch_add(&cond_woken, 1);
  return NULL;
}

static void* reader(void* arg) {
  (void)arg;
  mark_blocked();
  char c;
  if (read(reader_pipe[0], &c, 1) == 1) atomic_fetch_add(&readers_got, 1);
  return NULL;
}

static void* pipe_writer(void* arg) {
  usleep(20000);
  if (write(*(int*)arg, "x", 1) != 1) return (void*)1;
  return NULL;
}

static void child_atexit(void) { printf("child: atexit handler ran\n"); }

/* in_child is the forking thread's life in the child of part 1. */
static void* in_child(pthread_t self_before, int* tsd_value) {
  printf("child: atfork handlers:%s\n", fork_log);
  printf("child: pthread_self unchanged: %s\n", pthread_equal(pthread_self(), self_before) ? "yes" : "no");
  printf("child: thread-specific value kept: %s\n", pthread_getspecific(key) == tsd_value ? "yes" : "no");
  printf("child: mutex held by a vanished thread: trylock %s\n", error_name(pthread_mutex_trylock(&held)));
  atexit(child_atexit);
  /* New threads, sleeping and writing to a pipe. */
  int p[2];
  if (pipe(p) != 0) return NULL;
  pthread_t t[3];
  for (int i = 0; i < 3; ++i) pthread_create(&t[i], NULL, pipe_writer, &p[1]);
  char buf[8];
  ssize_t got = 0;
  while (got < 3) {
    const ssize_t n = read(p[0], buf + got, (size_t)(3 - got));
    if (n <= 0) break;
    got += n;
  }
  int joined = 0;
  for (int i = 0; i < 3; ++i) joined += pthread_join(t[i], NULL) == 0;
  printf("child: 3 new threads wrote %d bytes and were joined: %d\n", (int)got, joined);
  /* Longer than the parent's sleepers sleep: none of them runs here. */
  usleep(700000);
  printf("child: the parent's other threads ran here: sleepers %d, cond waiters %d, readers %d\n",
         atomic_load(&sleepers_done), atomic_load(&cond_woken), atomic_load(&readers_got));
  if (getenv("THR_FORK_JOIN_VANISHED") != NULL) {
    printf("child: join of a vanished thread: %s\n", error_name(pthread_join(vanished_thread, NULL)));
  }
  fflush(stdout);
  const pid_t grandchild = fork();
  if (grandchild == 0) _exit(5);
  int status = 0;
  waitpid(grandchild, &status, 0);
  printf("child: grandchild exited with %d\n", WEXITSTATUS(status));
  return NULL; /* the last thread of the child ends: exit(0) */
}

static void* forker(void* arg) {
  (void)arg;
  static int tsd_value;
  pthread_setspecific(key, &tsd_value);
  const pthread_t self = pthread_self();
  fflush(stdout);
  const pid_t child = fork();
  if (child == 0) return in_child(self, &tsd_value);
  printf("parent: atfork handlers:%s\n", fork_log);
  int status = -1;
  waitpid(child, &status, 0);
  printf("parent: child exited: %s, status %d\n", WIFEXITED(status) ? "yes" : "no", WEXITSTATUS(status));
  printf("parent: thread-specific value kept: %s\n", pthread_getspecific(key) == &tsd_value ? "yes" : "no");
  return NULL;
}

static void part1(void) {
  pthread_atfork(prepare_a, parent_a, child_a);
  pthread_atfork(prepare_b, parent_b, child_b);
  pthread_key_create(&key, NULL);
  if (pipe(reader_pipe) != 0) exit(1);
  pthread_t t[sleepers + cond_waiters + readers];
  int n = 0;
  for (int i = 0; i < sleepers; ++i) pthread_create(&t[n++], NULL, sleeper, i == 0 ? (void*)1 : NULL);
  for (int i = 0; i < cond_waiters; ++i) pthread_create(&t[n++], NULL, cond_waiter, NULL);
  for (int i = 0; i < readers; ++i) pthread_create(&t[n++], NULL, reader, NULL);
  vanished_thread = t[sleepers];
  pthread_mutex_lock(&lock);
  while (blocked < n) pthread_cond_wait(&all_blocked, &lock);
  pthread_mutex_unlock(&lock);
  usleep(50000); /* into their blocking calls */
  pthread_t f;
  pthread_create(&f, NULL, forker, NULL);
  pthread_join(f, NULL);
  pthread_mutex_lock(&lock);
  go = 1;
  pthread_cond_broadcast(&cond);
  pthread_mutex_unlock(&lock);
  char bytes[readers];
  memset(bytes, 'r', sizeof bytes);
  if (write(reader_pipe[1], bytes, sizeof bytes) != (ssize_t)sizeof bytes) exit(1);
  for (int i = 0; i < n; ++i) pthread_join(t[i], NULL);
  printf("parent: sleepers done %d of %d, cond waiters woken %d of %d, readers got %d of %d\n",
         atomic_load(&sleepers_done), sleepers, atomic_load(&cond_woken), cond_waiters, atomic_load(&readers_got),
         readers);
}

static atomic_int main_waiters_woken;
static int main_go = 0; /* under lock */

static void* main_waiter(void* arg) {
  (void)arg;
  pthread_mutex_lock(&lock);
  ++blocked;
  pthread_cond_broadcast(&all_blocked);
  while (!main_go) pthread_cond_wait(&cond, &lock);
  pthread_mutex_unlock(&lock);
  atomic_fetch_add(&main_waiters_woken, 1);
  return NULL;
}

static void part2(void) {
  blocked = 0;
  pthread_t t[5];
  for (int i = 0; i < 5; ++i) pthread_create(&t[i], NULL, main_waiter, NULL);
  pthread_mutex_lock(&lock);
  while (blocked < 5) pthread_cond_wait(&all_blocked, &lock);
  pthread_mutex_unlock(&lock);
  usleep(20000);
  fflush(stdout);
  const pid_t child = fork();
  if (child == 0) {
    usleep(100000);
    printf("child of main: the other threads ran here: %d\n", atomic_load(&main_waiters_woken));
    exit(3);
  }
  int status = -1;
  waitpid(child, &status, 0);
  printf("parent: child of main exited with %d\n", WEXITSTATUS(status));
  pthread_mutex_lock(&lock);
  main_go = 1;
  pthread_cond_broadcast(&cond);
  pthread_mutex_unlock(&lock);
  for (int i = 0; i < 5; ++i) pthread_join(t[i], NULL);
  printf("parent: main's waiters woken: %d\n", atomic_load(&main_waiters_woken));
}

static int wait_status(pid_t pid) {
  int status = -1;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void* vfork_reader(void* arg) {
  char c;
  const ssize_t n = read(*(int*)arg, &c, 1);
  if (n == 1) return "read its byte";
  return n == 0 ? "end of file" : (void*)error_name(errno);
}

static void* starter(void* arg) {
  (void)arg;
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/echo", "echo", "exec after fork in a thread", (char*)NULL);
    _exit(127);
  }
  printf("fork+exec: %d\n", wait_status(pid));
  /* The vfork child closes its copy of a pipe another thread reads from: the
   * reader, in the parent, still gets its byte. */
  int q[2];
  if (pipe(q) != 0) return NULL;
  pthread_t r;
  pthread_create(&r, NULL, vfork_reader, &q[0]);
  usleep(50000); /* into its read */
  fflush(stdout);
  pid = vfork();
  if (pid == 0) {
    close(q[0]);
    dup2(q[1], q[0]);
    execl("/bin/echo", "echo", "exec after vfork in a thread", (char*)NULL);
    _exit(127);
  }
  printf("vfork+exec: %d\n", wait_status(pid));
  if (write(q[1], "v", 1) != 1) return NULL;
  void* got = NULL;
  pthread_join(r, &got);
  printf("a thread reading a pipe the vfork child closed: %s\n", (const char*)got);
  fflush(stdout);
  char* argv[] = {"echo", "posix_spawn from a thread", NULL};
  if (posix_spawn(&pid, "/bin/echo", NULL, NULL, argv, environ) == 0) printf("posix_spawn: %d\n", wait_status(pid));
  fflush(stdout);
  const int rc = system("echo system from a thread");
  printf("system: %d\n", WIFEXITED(rc) ? WEXITSTATUS(rc) : -1);
  return NULL;
}

static void part3(void) {
  pthread_t t;
  pthread_create(&t, NULL, starter, NULL);
  pthread_join(t, NULL);
}

int main(void) {
  setvbuf(stdout, NULL, _IOFBF, 1 << 16);
  part1();
  part2();
  part3();
  return 0;
}
