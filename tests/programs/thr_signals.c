/* thr_signals.c — signals among threads, as the kernel directs them: a
 * process-directed signal runs its handler in a thread that does not block
 * it, and interrupts that thread's blocking call (EINTR without SA_RESTART,
 * the call goes on with it); pthread_kill interrupts only the thread it names
 * (one of 100 blocked in read, or main blocked in send); masks are per
 * thread; a signal pthread_kill sends to a thread that blocks it stays
 * pending for that thread alone until it unblocks it; sigwait in a thread of
 * its own takes signals every thread blocks; every thread has an id of its
 * own (gettid), and tgkill of it interrupts only that thread; sigsuspend,
 * pause and sigpause wait in one thread while the others run, until a signal
 * sent to that thread. The output is the same natively and under grove-run. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "thr_common.h"

static volatile sig_atomic_t handled;
static pthread_t handled_in;

static void on_signal(int sig) {
  handled = sig;
  handled_in = pthread_self();
}

static void handle(int sig, int flags) {
  struct sigaction a;
  memset(&a, 0, sizeof a);
  a.sa_handler = on_signal;
  a.sa_flags = flags;
  sigaction(sig, &a, NULL);
}

static void block(int sig, int how) {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, sig);
  pthread_sigmask(how, &s, NULL);
}

static int blocks(int sig) {
  sigset_t now;
  pthread_sigmask(SIG_BLOCK, NULL, &now);
  return sigismember(&now, sig);
}

/* --- a thread blocked in recv, and SIGINT sent to the process --- */

static int sv[2];
static long recv_result;
static int recv_errno;

static void* receiver(void* arg) {
  (void)arg;
  char c;
  recv_result = recv(sv[0], &c, 1, 0);
  recv_errno = errno;
  return NULL;
}

/* --- pthread_kill to one of 100 threads blocked in read --- */

#define readers 100
static int pipes[readers][2];
static int interrupted[readers];

static void* reader(void* arg) {
  const long i = (long)arg;
  char c;
  for (;;) {
    const ssize_t n = read(pipes[i][0], &c, 1);
    if (n < 0 && errno == EINTR) {
      interrupted[i]++;
      continue;
    }
    return NULL; /* end of file */
  }
}

static void pthread_kill_one_of_many(void) {
  handle(SIGUSR1, 0);
  pthread_t t[readers];
  for (long i = 0; i < readers; i++) {
    if (pipe(pipes[i]) != 0) exit(1);
    pthread_create(&t[i], NULL, reader, (void*)i);
  }
  usleep(200000);
  report_threads("peak");
  handled = 0;
  pthread_kill(t[42], SIGUSR1);
  usleep(200000);
  for (int i = 0; i < readers; i++) close(pipes[i][1]);
  int total = 0;
  for (int i = 0; i < readers; i++) {
    pthread_join(t[i], NULL);
    total += interrupted[i];
  }
  for (int i = 0; i < readers; i++) close(pipes[i][0]);
  printf("pthread_kill: threads interrupted %d, thread 42 interrupted %d, handler ran in it: %d\n", total,
         interrupted[42], handled == SIGUSR1 && pthread_equal(handled_in, t[42]));
}

/* --- per-thread masks --- */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int stage;

static void wait_stage(int s) {
  pthread_mutex_lock(&lock);
  while (stage < s) pthread_cond_wait(&cond, &lock);
  pthread_mutex_unlock(&lock);
}

static void set_stage(int s) {
  pthread_mutex_lock(&lock);
  stage = s;
  pthread_cond_broadcast(&cond);
  pthread_mutex_unlock(&lock);
}

static int a_blocks, b_blocks;

static void* thread_a(void* arg) { /* blocks SIGUSR2 */
  (void)arg;
  block(SIGUSR2, SIG_BLOCK);
  a_blocks = blocks(SIGUSR2);
  pthread_mutex_lock(&lock);
  stage++;
  pthread_cond_broadcast(&cond);
  pthread_mutex_unlock(&lock);
  wait_stage(10);
  return NULL;
}

static void* thread_b(void* arg) { /* does not */
  (void)arg;
  b_blocks = blocks(SIGUSR2);
  pthread_mutex_lock(&lock);
  stage++;
  pthread_cond_broadcast(&cond);
  pthread_mutex_unlock(&lock);
  wait_stage(10);
  return NULL;
}

static void masks_per_thread(void) {
  handle(SIGUSR2, 0);
  handled = 0;
  stage = 0;
  pthread_t a, b;
  pthread_create(&a, NULL, thread_a, NULL);
  pthread_create(&b, NULL, thread_b, NULL);
  block(SIGUSR2, SIG_BLOCK);
  wait_stage(2);
  kill(getpid(), SIGUSR2); /* only b takes it, in its condvar wait */
  usleep(100000);
  set_stage(10);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  printf("masks: a blocks %d, b blocks %d, main blocks %d, handler ran in b: %d\n", a_blocks, b_blocks,
         blocks(SIGUSR2), handled == SIGUSR2 && pthread_equal(handled_in, b));
  block(SIGUSR2, SIG_UNBLOCK);
}

/* --- pthread_kill to a thread that blocks the signal --- */

static int pending_in_target, pending_in_other, ran_before_unblock, ran_after_unblock;

static void* target(void* arg) {
  (void)arg;
  block(SIGHUP, SIG_BLOCK);
  set_stage(1);
  wait_stage(2);
  sigset_t p;
  sigpending(&p);
  pending_in_target = sigismember(&p, SIGHUP);
  ran_before_unblock = handled == SIGHUP;
  block(SIGHUP, SIG_UNBLOCK);
  ran_after_unblock = handled == SIGHUP && pthread_equal(handled_in, pthread_self());
  return NULL;
}

static void directed_and_blocked(void) {
  handle(SIGHUP, 0);
  handled = 0;
  stage = 0;
  pthread_t t;
  pthread_create(&t, NULL, target, NULL);
  wait_stage(1);
  pthread_kill(t, SIGHUP);
  sigset_t p;
  sigpending(&p);
  pending_in_other = sigismember(&p, SIGHUP);
  set_stage(2);
  pthread_join(t, NULL);
  printf("blocked target: pending there %d, pending in main %d, ran before unblock %d, ran in it after %d\n",
         pending_in_target, pending_in_other, ran_before_unblock, ran_after_unblock);
}

/* --- sigwait in a thread of its own --- */

static int waited_for;

static void* signal_thread(void* arg) {
  sigset_t* set = arg;
  int sig = 0;
  if (sigwait(set, &sig) == 0) waited_for = sig;
  return NULL;
}

static void sigwait_thread(void) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, NULL); /* inherited: every thread blocks it */
  pthread_t t;
  pthread_create(&t, NULL, signal_thread, &set);
  usleep(100000);
  kill(getpid(), SIGTERM);
  pthread_join(t, NULL);
  printf("sigwait: took %s\n", waited_for == SIGTERM ? "SIGTERM" : "something else");
}

/* The receiver is created with SIGINT unblocked, then main blocks it: the
 * process-directed SIGINT can only go to the receiver. */
static void sigint_into_recv(int flags) {
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) exit(1);
  handle(SIGINT, flags);
  handled = 0;
  pthread_t t;
  pthread_create(&t, NULL, receiver, NULL);
  block(SIGINT, SIG_BLOCK);
  usleep(100000);
  kill(getpid(), SIGINT);
  usleep(100000);
  if ((flags & SA_RESTART) != 0 && write(sv[1], "x", 1) != 1) exit(1);
  pthread_join(t, NULL);
  block(SIGINT, SIG_UNBLOCK);
  printf("SIGINT into a thread in recv, %s: recv %ld %s, handler ran in it: %d\n",
         flags ? "SA_RESTART" : "no SA_RESTART", recv_result,
         recv_result < 0 ? (recv_errno == EINTR ? "EINTR" : strerror(recv_errno)) : "",
         handled == SIGINT && pthread_equal(handled_in, t));
  close(sv[0]);
  close(sv[1]);
}

/* --- pthread_kill from a thread to main, blocked in send --- */

static pthread_t main_thread;
static int send_returned[2]; /* main writes a byte once its send has returned */

static void* kill_main(void* arg) {
  (void)arg;
  char buf[100];
  if (recv(sv[1], buf, sizeof buf, MSG_WAITALL) != (ssize_t)sizeof buf) exit(1); /* main is sending by now */
  usleep(100000);
  pthread_kill(main_thread, SIGUSR2);
  /* Drain only once main's send has returned: reading at once could make room
   * each time main's send looks for it before the kernel looks at the pending
   * signal, and then the send moves all 4 MiB (seen natively on a busy machine). */
  char c;
  if (read(send_returned[0], &c, 1) != 1) exit(1);
  char big[65536];
  while (recv(sv[1], big, sizeof big, 0) > 0) {
  }
  return NULL;
}

/* main sends 4 MiB into a socket a thread stops reading: the thread's
 * pthread_kill interrupts main's send, which returns what it had moved. */
static void pthread_kill_main(void) {
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) exit(1);
  if (pipe(send_returned) != 0) exit(1);
  handle(SIGUSR2, 0);
  handled = 0;
  main_thread = pthread_self();
  pthread_t t;
  pthread_create(&t, NULL, kill_main, NULL);
  const size_t size = 4 << 20;
  char* data = calloc(1, size);
  errno = 0;
  const ssize_t sent = send(sv[0], data, size, 0);
  printf("pthread_kill to main in send: sent part %d, handler ran in main: %d, errno left alone: %d\n",
         sent > 0 && (size_t)sent < size, handled == SIGUSR2 && pthread_equal(handled_in, main_thread), errno == 0);
  if (write(send_returned[1], "x", 1) != 1) exit(1);
  shutdown(sv[0], SHUT_WR);
  pthread_join(t, NULL);
  free(data);
  close(send_returned[0]);
  close(send_returned[1]);
  close(sv[0]);
  close(sv[1]);
}

/* --- thread ids: one each, and tgkill reaches the thread it names --- */

enum { id_threads = 20 };
static pid_t ids[id_threads];
static int id_pipes[id_threads][2];
static long id_read[id_threads];
static int id_errno[id_threads];

static void* id_reader(void* arg) {
  const long i = (long)arg;
  ids[i] = gettid();
  if (syscall(SYS_gettid) != ids[i]) ids[i] = -1;
  char c;
  id_read[i] = read(id_pipes[i][0], &c, 1);
  id_errno[i] = errno;
  return NULL;
}

static void thread_ids(void) {
  handle(SIGUSR1, 0);
  handled = 0;
  pthread_t t[id_threads];
  for (long i = 0; i < id_threads; ++i) {
    if (pipe(id_pipes[i]) != 0) exit(1);
    pthread_create(&t[i], NULL, id_reader, (void*)i);
  }
  usleep(100000);
  int distinct = 1;
  for (int i = 0; i < id_threads; ++i) {
    for (int j = 0; j < i; ++j) distinct &= ids[i] != ids[j];
    distinct &= ids[i] > 0 && ids[i] != getpid();
  }
  printf("thread ids: main's is the process id: %d, %d threads with ids of their own: %d\n", gettid() == getpid(),
         id_threads, distinct);
  const int r = (int)syscall(SYS_tgkill, getpid(), ids[7], SIGUSR1);
  usleep(100000);
  for (int i = 0; i < id_threads; ++i) {
    if (i != 7 && write(id_pipes[i][1], "x", 1) != 1) exit(1);
  }
  int others_read = 1;
  for (int i = 0; i < id_threads; ++i) {
    pthread_join(t[i], NULL);
    if (i != 7) others_read &= id_read[i] == 1;
  }
  printf("tgkill of thread 7's id: %d, its read %ld %s, handler ran in it: %d, the others read: %d\n", r, id_read[7],
         error_name(id_read[7] < 0 ? id_errno[7] : 0), handled == SIGUSR1 && pthread_equal(handled_in, t[7]), others_read);
  const int gone = tgkill(getpid(), ids[3], SIGUSR1);
  printf("tgkill of an id whose thread ended: %d %s\n", gone, error_name(gone == 0 ? 0 : errno));
  for (int i = 0; i < id_threads; ++i) {
    close(id_pipes[i][0]);
    close(id_pipes[i][1]);
  }
}

/* --- sigsuspend, pause and sigpause wait in their thread alone --- */

extern int bsd_sigpause(int mask) __asm__("sigpause"); /* BSD's: an old-style mask */

static int suspend_result[4];
static int suspend_errno[4];

static void* suspender(void* arg) {
  const int kind = (int)(long)arg;
  block(SIGUSR1, SIG_BLOCK);
  sigset_t none;
  sigemptyset(&none);
  int r = 0;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  switch (kind) {
    case 0: r = sigsuspend(&none); break;
    case 1: block(SIGUSR1, SIG_UNBLOCK); r = pause(); break;
    case 2: r = sigpause(SIGUSR1); break; /* XSI's: lets SIGUSR1 in */
    case 3: r = bsd_sigpause(0); break;
  }
#pragma GCC diagnostic pop
  suspend_result[kind] = r;
  suspend_errno[kind] = errno;
  return NULL;
}

static void suspended_threads(void) {
  static const char* names[4] = {"sigsuspend", "pause", "sigpause", "BSD sigpause"};
  handle(SIGUSR1, 0);
  for (int kind = 0; kind < 4; ++kind) {
    handled = 0;
    pthread_t t;
    pthread_create(&t, NULL, suspender, (void*)(long)kind);
    int steps = 0;
    for (; steps < 10; ++steps) usleep(10000); /* main runs while t waits */
    pthread_kill(t, SIGUSR1);
    pthread_join(t, NULL);
    printf("%s in a thread: %d %s, main ran meanwhile: %d, handler ran in it: %d\n", names[kind],
           suspend_result[kind], error_name(suspend_errno[kind]), steps == 10,
           handled == SIGUSR1 && pthread_equal(handled_in, t));
  }
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  sigint_into_recv(0);
  sigint_into_recv(SA_RESTART);
  pthread_kill_one_of_many();
  masks_per_thread();
  directed_and_blocked();
  sigwait_thread();
  pthread_kill_main();
  thread_ids();
  suspended_threads();
  return 0;
}
