/* thr_locks.c — waits nothing can poll for: file locks held by another
 * process (flock, fcntl F_SETLKW, lockf F_LOCK) or by another open file
 * description (F_OFD_SETLKW), EDEADLK between two processes, and SysV message
 * queues and semaphores (blocking msgrcv, msgsnd on a full queue, semop,
 * semtimedop, EIDRM when the object is removed). A ticking thread runs
 * throughout: under grove-run, where the threads are green threads of one OS
 * thread, it ticks only if the waits leave that OS thread free. Last, a
 * SIGALRM handler interrupts each of these waits: as signal(7) says, the lock
 * waits fail with EINTR unless the handler has SA_RESTART, the SysV waits fail
 * with EINTR either way. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "thr_common.h"

static atomic_int ticks;
static atomic_int stop_ticking;

static void* ticker(void* arg) {
  (void)arg;
  sigset_t alarm;
  sigemptyset(&alarm);
  sigaddset(&alarm, SIGALRM);
  pthread_sigmask(SIG_BLOCK, &alarm, NULL); /* SIGALRM is main's, natively and green */
  while (!atomic_load(&stop_ticking)) {
    usleep(10000);
    atomic_fetch_add(&ticks, 1);
  }
  return NULL;
}

static const char* yes(int b) { return b ? "yes" : "no"; }

static char path[] = "/tmp/thr-locks-XXXXXX";

/* holder forks a child that takes a lock with take(fd), says so on a pipe,
 * holds it for ms milliseconds and exits (which releases it). */
static pid_t holder(void (*take)(int), int ms) {
  int p[2];
  if (pipe(p) != 0) exit(1);
  const pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    const int fd = open(path, O_RDWR);
    take(fd);
    if (write(p[1], "x", 1) != 1) _exit(1);
    usleep((useconds_t)ms * 1000);
    _exit(0);
  }
  close(p[1]);
  char c;
  if (read(p[0], &c, 1) != 1) exit(1);
  close(p[0]);
  return pid;
}

static void take_flock(int fd) { flock(fd, LOCK_EX); }
static void take_record(int fd) {
  struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
  fcntl(fd, F_SETLK, &l);
}
static void take_lockf(int fd) {
  if (lockf(fd, F_LOCK, 10) != 0) _exit(1);
}

/* report prints how a wait of a lock held for 0.5 s by another went. */
static void report(const char* what, int r, const struct timespec* t0, int ticks_before) {
  const int e = errno;
  const double took = seconds_since(t0);
  printf("%s: %d %s, waited for the holder %s, the ticking thread ticked meanwhile %s\n", what, r,
         error_name(r == 0 ? 0 : e), yes(took > 0.3 && took < 5), yes(atomic_load(&ticks) - ticks_before >= 10));
}

static void file_locks(void) {
  const int fd = open(path, O_RDWR);
  struct timespec t0;

  pid_t pid = holder(take_flock, 500);
  int r = flock(fd, LOCK_EX | LOCK_NB);
  printf("flock LOCK_NB while another process holds it: %d %s\n", r, error_name(errno));
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int before = atomic_load(&ticks);
  r = flock(fd, LOCK_EX);
  report("flock LOCK_EX", r, &t0, before);
  flock(fd, LOCK_UN);
  waitpid(pid, NULL, 0);

  pid = holder(take_record, 500);
  struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
  r = fcntl(fd, F_SETLK, &l);
  printf("F_SETLK while another process holds it: %d %s\n", r, error_name(errno));
  struct flock probe = l;
  fcntl(fd, F_GETLK, &probe);
  printf("F_GETLK names the holder: %s\n", yes(probe.l_type == F_WRLCK && probe.l_pid == pid));
  clock_gettime(CLOCK_MONOTONIC, &t0);
  before = atomic_load(&ticks);
  r = fcntl(fd, F_SETLKW, &l);
  report("F_SETLKW", r, &t0, before);
  l.l_type = F_UNLCK;
  fcntl(fd, F_SETLK, &l);
  waitpid(pid, NULL, 0);

  pid = holder(take_lockf, 500);
  r = lockf(fd, F_TLOCK, 10);
  printf("lockf F_TLOCK while another process holds it: %d %s\n", r, error_name(errno));
  r = lockf(fd, F_TEST, 10);
  printf("lockf F_TEST: %d %s\n", r, error_name(errno));
  clock_gettime(CLOCK_MONOTONIC, &t0);
  before = atomic_load(&ticks);
  r = lockf(fd, F_LOCK, 10);
  report("lockf F_LOCK", r, &t0, before);
  lockf(fd, F_ULOCK, 10);
  waitpid(pid, NULL, 0);
  close(fd);
}

/* ---- OFD locks: two open file descriptions of one process ---- */

static int ofd_a, ofd_b;
static void* hold_ofd(void* arg) {
  (void)arg;
  usleep(500000);
  struct flock l = {.l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
  fcntl(ofd_a, F_OFD_SETLK, &l);
  return NULL;
}

static void ofd_locks(void) {
  ofd_a = open(path, O_RDWR);
  ofd_b = open(path, O_RDWR);
  struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
  fcntl(ofd_a, F_OFD_SETLK, &l);
  int r = fcntl(ofd_b, F_OFD_SETLK, &l);
  printf("F_OFD_SETLK held by another open file description: %d %s\n", r, error_name(errno));
  pthread_t t;
  pthread_create(&t, NULL, hold_ofd, NULL);
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  const int before = atomic_load(&ticks);
  r = fcntl(ofd_b, F_OFD_SETLKW, &l);
  report("F_OFD_SETLKW", r, &t0, before);
  pthread_join(t, NULL);
  close(ofd_a);
  close(ofd_b);
}

/* ---- EDEADLK: each process holds a byte the other waits for ---- */

static void deadlock(void) {
  const int fd = open(path, O_RDWR);
  struct flock first = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
  struct flock second = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 1, .l_len = 1};
  fcntl(fd, F_SETLK, &first);
  int p[2];
  if (pipe(p) != 0) exit(1);
  const pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    const int own = open(path, O_RDWR);
    fcntl(own, F_SETLK, &second);
    if (write(p[1], "x", 1) != 1) _exit(1);
    const int r = fcntl(own, F_SETLKW, &first); /* waits for the parent */
    _exit(r == 0 ? 0 : 1);
  }
  close(p[1]);
  char c;
  if (read(p[0], &c, 1) != 1) exit(1);
  close(p[0]);
  usleep(300000); /* the child is waiting by now */
  const int r = fcntl(fd, F_SETLKW, &second);
  printf("F_SETLKW that would deadlock with another process: %d %s\n", r, error_name(errno));
  close(fd); /* releases the parent's lock: the child gets it */
  int status = 0;
  waitpid(pid, &status, 0);
  printf("  the other process got its lock: %s\n", yes(WIFEXITED(status) && WEXITSTATUS(status) == 0));
}

/* ---- SysV message queues ---- */

struct message {
  long type;
  char text[32];
};

static int queue;
static struct message received;
static ssize_t received_bytes;
static int received_errno;

static void* receiver(void* arg) {
  (void)arg;
  received_bytes = msgrcv(queue, &received, sizeof received.text, 0, 0);
  received_errno = errno;
  return NULL;
}

static int sent;
static int sent_errno;
static void* sender(void* arg) {
  (void)arg;
  struct message m = {.type = 2, .text = "second"};
  sent = msgsnd(queue, &m, 16, 0);
  sent_errno = errno;
  return NULL;
}

static void messages(void) {
  queue = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
  struct message m;
  ssize_t n = msgrcv(queue, &m, sizeof m.text, 0, IPC_NOWAIT);
  printf("msgrcv IPC_NOWAIT on an empty queue: %d %s\n", (int)n, error_name(errno));

  pthread_t t;
  pthread_create(&t, NULL, receiver, NULL);
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int before = atomic_load(&ticks);
  usleep(500000);
  struct message hello = {.type = 1, .text = "hello"};
  msgsnd(queue, &hello, 6, 0);
  pthread_join(t, NULL);
  printf("msgrcv waited for a message: %d bytes, type %ld, \"%s\", after the send %s, ticking meanwhile %s\n",
         (int)received_bytes, received.type, received.text, yes(seconds_since(&t0) > 0.3),
         yes(atomic_load(&ticks) - before >= 10));

  struct message big = {.type = 1, .text = "a message too long"};
  msgsnd(queue, &big, 19, 0);
  n = msgrcv(queue, &m, 4, 0, 0);
  printf("msgrcv into too small a buffer: %d %s\n", (int)n, error_name(errno));
  n = msgrcv(queue, &m, sizeof m.text, 0, 0);
  printf("  the message is still there: %d bytes\n", (int)n);

  /* A full queue: msgsnd waits until a message is taken. */
  struct msqid_ds ds;
  msgctl(queue, IPC_STAT, &ds);
  ds.msg_qbytes = 16;
  msgctl(queue, IPC_SET, &ds);
  struct message first = {.type = 1, .text = "first"};
  msgsnd(queue, &first, 16, 0);
  const int r = msgsnd(queue, &first, 16, IPC_NOWAIT);
  printf("msgsnd IPC_NOWAIT on a full queue: %d %s\n", r, error_name(errno));
  pthread_create(&t, NULL, sender, NULL);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  before = atomic_load(&ticks);
  usleep(500000);
  msgrcv(queue, &m, sizeof m.text, 0, 0);
  pthread_join(t, NULL);
  n = msgrcv(queue, &m, sizeof m.text, 0, 0);
  printf("msgsnd waited for room: %d %s, then \"%s\" arrived, after the receive %s, ticking meanwhile %s\n", sent,
         error_name(sent == 0 ? 0 : sent_errno), m.text, yes(seconds_since(&t0) > 0.3),
         yes(atomic_load(&ticks) - before >= 10));

  pthread_create(&t, NULL, receiver, NULL);
  usleep(300000);
  msgctl(queue, IPC_RMID, NULL);
  pthread_join(t, NULL);
  printf("msgrcv on a queue removed meanwhile: %d %s\n", (int)received_bytes, error_name(received_errno));
}

/* ---- SysV semaphores ---- */

static int sems;
static int op_result;
static int op_errno;
static double op_took;

static void* take_one(void* arg) {
  (void)arg;
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  struct sembuf down = {.sem_num = 0, .sem_op = -1, .sem_flg = 0};
  op_result = semop(sems, &down, 1);
  op_errno = errno;
  op_took = seconds_since(&t0);
  return NULL;
}

static void semaphores(void) {
  sems = semget(IPC_PRIVATE, 2, IPC_CREAT | 0600);
  struct sembuf down = {.sem_num = 0, .sem_op = -1, .sem_flg = IPC_NOWAIT};
  int r = semop(sems, &down, 1);
  printf("semop IPC_NOWAIT on 0: %d %s\n", r, error_name(errno));

  pthread_t t;
  pthread_create(&t, NULL, take_one, NULL);
  int before = atomic_load(&ticks);
  usleep(500000);
  struct sembuf up = {.sem_num = 0, .sem_op = 1, .sem_flg = 0};
  semop(sems, &up, 1);
  pthread_join(t, NULL);
  printf("semop waited for a post: %d, after it %s, ticking meanwhile %s, value now %d\n", op_result,
         yes(op_took > 0.3), yes(atomic_load(&ticks) - before >= 10), semctl(sems, 0, GETVAL));

  /* Both operations or none: the first could go, the second cannot. */
  semop(sems, &up, 1);
  struct sembuf both[2] = {{.sem_num = 0, .sem_op = -1, .sem_flg = 0}, {.sem_num = 1, .sem_op = -1, .sem_flg = 0}};
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  const struct timespec limit = {0, 300000000};
  before = atomic_load(&ticks);
  r = semtimedop(sems, both, 2, &limit);
  printf("semtimedop of two, one of which cannot go, for 300 ms: %d %s, after the timeout %s, ticking meanwhile %s\n",
         r, error_name(errno), yes(seconds_since(&t0) > 0.25), yes(atomic_load(&ticks) - before >= 10));
  printf("  the other was left alone: value %d\n", semctl(sems, 0, GETVAL));
  const struct timespec bad = {0, 1000000000};
  r = semtimedop(sems, both, 2, &bad);
  printf("semtimedop with a bad timeout: %d %s\n", r, error_name(errno));
  r = semop(sems, both, 0);
  printf("semop of no operations: %d %s\n", r, error_name(errno));

  semctl(sems, 0, SETVAL, 0);
  pthread_create(&t, NULL, take_one, NULL);
  usleep(300000);
  semctl(sems, 0, IPC_RMID);
  pthread_join(t, NULL);
  printf("semop on a set removed meanwhile: %d %s\n", op_result, error_name(op_errno));
}

/* ---- A signal handler while these wait ---- */

static volatile sig_atomic_t alarms;
static void on_alarm(int sig) {
  (void)sig;
  alarms++;
}

/* alarm_after installs on_alarm for SIGALRM with flags and arms a one-shot
 * SIGALRM 100 ms from now. */
static void alarm_after(int flags) {
  struct sigaction a;
  memset(&a, 0, sizeof a);
  a.sa_handler = on_alarm;
  a.sa_flags = flags;
  sigaction(SIGALRM, &a, NULL);
  alarms = 0;
  struct itimerval t = {.it_interval = {0, 0}, .it_value = {0, 100000}};
  setitimer(ITIMER_REAL, &t, NULL);
}

/* after_ms forks a child that calls act() after ms milliseconds and exits. */
static pid_t after_ms(int ms, void (*act)(void)) {
  const pid_t pid = fork();
  if (pid == 0) {
    usleep((useconds_t)ms * 1000);
    act();
    _exit(0);
  }
  return pid;
}

/* report_interrupted prints how a wait that another process ends after
 * 600 ms went when SIGALRM came after 100 ms. */
static void report_interrupted(const char* what, const char* how, long r, const struct timespec* t0) {
  const int e = errno;
  const double took = seconds_since(t0);
  printf("%s, SIGALRM handler %s: %ld %s, handler ran %s, returned %s\n", what, how, r, error_name(r >= 0 ? 0 : e),
         yes(alarms == 1), took < 0.4 ? "before the other process acted" : "after the other process acted");
}

static int interrupted_queue;
static int interrupted_sems;
static void send_one(void) {
  struct message m = {.type = 1, .text = "late"};
  msgsnd(interrupted_queue, &m, 5, 0);
}
static void receive_one(void) {
  struct message m;
  msgrcv(interrupted_queue, &m, sizeof m.text, 0, 0);
}
static void post_one(void) {
  struct sembuf up = {.sem_num = 0, .sem_op = 1, .sem_flg = 0};
  semop(interrupted_sems, &up, 1);
}

static void interrupted(void) {
  const int fd = open(path, O_RDWR);
  struct timespec t0;
  for (int restart = 0; restart < 2; ++restart) {
    const int flags = restart ? SA_RESTART : 0;
    const char* how = restart ? "with SA_RESTART" : "without SA_RESTART";

    pid_t pid = holder(take_flock, 600);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    alarm_after(flags);
    int r = flock(fd, LOCK_EX);
    report_interrupted("flock LOCK_EX", how, r, &t0);
    flock(fd, LOCK_UN);
    waitpid(pid, NULL, 0);

    pid = holder(take_record, 600);
    struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    alarm_after(flags);
    r = fcntl(fd, F_SETLKW, &l);
    report_interrupted("F_SETLKW", how, r, &t0);
    l.l_type = F_UNLCK;
    fcntl(fd, F_SETLK, &l);
    waitpid(pid, NULL, 0);

    pid = holder(take_lockf, 600);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    alarm_after(flags);
    r = lockf(fd, F_LOCK, 10);
    report_interrupted("lockf F_LOCK", how, r, &t0);
    lockf(fd, F_ULOCK, 10);
    waitpid(pid, NULL, 0);

    interrupted_queue = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    struct message m;
    pid = after_ms(600, send_one);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    alarm_after(flags);
    const long n = msgrcv(interrupted_queue, &m, sizeof m.text, 0, 0);
    report_interrupted("msgrcv", how, n, &t0);
    waitpid(pid, NULL, 0);

    struct msqid_ds ds;
    msgctl(interrupted_queue, IPC_STAT, &ds);
    ds.msg_qbytes = 16;
    msgctl(interrupted_queue, IPC_SET, &ds);
    struct message full = {.type = 1, .text = "full"};
    msgsnd(interrupted_queue, &full, 16, IPC_NOWAIT);
    pid = after_ms(600, receive_one);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    alarm_after(flags);
    r = msgsnd(interrupted_queue, &full, 16, 0);
    report_interrupted("msgsnd", how, r, &t0);
    waitpid(pid, NULL, 0);
    msgctl(interrupted_queue, IPC_RMID, NULL);

    interrupted_sems = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
    struct sembuf down = {.sem_num = 0, .sem_op = -1, .sem_flg = 0};
    pid = after_ms(600, post_one);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    alarm_after(flags);
    r = semop(interrupted_sems, &down, 1);
    report_interrupted("semop", how, r, &t0);
    waitpid(pid, NULL, 0);
    semctl(interrupted_sems, 0, IPC_RMID);
  }
  close(fd);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const int fd = mkstemp(path);
  if (fd < 0 || write(fd, "0123456789", 10) != 10) return 1;
  close(fd);
  pthread_t tick;
  pthread_create(&tick, NULL, ticker, NULL);
  file_locks();
  ofd_locks();
  deadlock();
  messages();
  semaphores();
  interrupted();
  atomic_store(&stop_ticking, 1);
  pthread_join(tick, NULL);
  unlink(path);
  return 0;
}
