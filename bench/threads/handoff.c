/* bench/threads/handoff — what it costs one pthread to hand control to another, through
 * pthread sync objects only. Plain C, no grove: bench/threads/handoff.sh runs it natively and
 * under grove-run (green pthreads): with --hubs=1 every thread is a task on one OS thread; with
 * --hubs=2 the two threads land on different hubs (OS threads), so every hand-off crosses hubs.
 *
 * Usage: bench_threads_handoff [--rounds R] [--round-ms M]
 *
 * Two benchmarks, each between two threads created for the round:
 *
 *   condvar   a flag passed back and forth under one mutex: each thread waits on its own
 *             condition variable until the flag names it, hands the flag to the other and
 *             signals the other's condition variable.
 *   mutex     a ring of three mutexes and only mutexes: each thread holds one, locks the next
 *             round the ring, then unlocks the one it held. The next is always the one the
 *             other thread holds or is about to release, so in steady state every lock waits
 *             for the other thread's unlock: each step is a hand-off.
 *
 * A hand-off is one flag pass, or one ring step. The first round sizes the others to about
 * M ms (default 100); of R rounds (default 7) the fastest is kept: the least disturbed one
 * (like bench/common.hpp's best_ns). One line per benchmark on stdout:
 *
 *   <name> ns_per_handoff=<x> rounds=<R> handoffs=<per round> os_threads=<n> split_rounds=<s>
 *
 * os_threads is the Threads: line of /proc/self/status while both threads run: 3 natively
 * (main and the two), under green pthreads one per hub: 1 with --hubs=1, 2 with --hubs=2 (plus
 * grove's helper threads, if any). split_rounds counts the rounds whose two threads ran on two
 * OS threads (/proc/thread-self): when any did, the fastest of those is kept, so that with
 * several hubs a round that put both green threads on one hub does not pass for a cross-hub one.
 * Exits 1 if a hand-off goes wrong, 2 on a bad command line. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

_Noreturn static void fail(const char* what, int error) {
  fprintf(stderr, "bench_threads_handoff: %s: %s\n", what, strerror(error));
  exit(1);
}

#define CHECK(call)                                   \
  do {                                                \
    const int check_error_ = (call);                  \
    if (check_error_ != 0) fail(#call, check_error_); \
  } while (0)

static long long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* os_threads reads this process's Threads: line, or -1. */
static int os_threads(void) {
  FILE* f = fopen("/proc/self/status", "r");
  if (f == NULL) return -1;
  char line[256];
  int threads = -1;
  while (fgets(line, sizeof line, f) != NULL) {
    if (sscanf(line, "Threads: %d", &threads) == 1) break;
  }
  fclose(f);
  return threads;
}

/* ------------------------------------------------------------------------------------------
 * A start gate: both threads are ready (holding what they must hold at the start) before the
 * clock starts, and start together. Mutex and condition variable only, the objects measured. */
struct gate {
  pthread_mutex_t lock;
  pthread_cond_t changed;
  int ready;
  int open;
  char where[2][64]; /* each worker's OS thread: /proc/thread-self's target (green threads share theirs) */
};

static void gate_init(struct gate* g) {
  CHECK(pthread_mutex_init(&g->lock, NULL));
  CHECK(pthread_cond_init(&g->changed, NULL));
  g->ready = 0;
  g->open = 0;
}

static void gate_destroy(struct gate* g) {
  CHECK(pthread_cond_destroy(&g->changed));
  CHECK(pthread_mutex_destroy(&g->lock));
}

/* gate_arrive: a worker says it is ready, then waits for the gate to open. */
static void gate_arrive(struct gate* g) {
  char where[64];
  const ssize_t n = readlink("/proc/thread-self", where, sizeof where - 1);
  where[n > 0 ? n : 0] = '\0';
  CHECK(pthread_mutex_lock(&g->lock));
  strcpy(g->where[g->ready], where);
  ++g->ready;
  CHECK(pthread_cond_broadcast(&g->changed));
  while (!g->open) CHECK(pthread_cond_wait(&g->changed, &g->lock));
  CHECK(pthread_mutex_unlock(&g->lock));
}

/* gate_wait: main waits until n workers are at the gate. */
static void gate_wait(struct gate* g, int n) {
  CHECK(pthread_mutex_lock(&g->lock));
  while (g->ready < n) CHECK(pthread_cond_wait(&g->changed, &g->lock));
  CHECK(pthread_mutex_unlock(&g->lock));
}

/* gate_open: main waits for both workers, samples the thread count, says
 * whether they run on two OS threads (*split), starts the clock (*start) and
 * lets them go. The clock starts first: on other CPUs the workers may be done
 * before main runs again. */
static int gate_open(struct gate* g, int* split, long long* start) {
  CHECK(pthread_mutex_lock(&g->lock));
  while (g->ready < 2) CHECK(pthread_cond_wait(&g->changed, &g->lock));
  const int threads = os_threads();
  *split = strcmp(g->where[0], g->where[1]) != 0;
  *start = now_ns();
  g->open = 1;
  CHECK(pthread_cond_broadcast(&g->changed));
  CHECK(pthread_mutex_unlock(&g->lock));
  return threads;
}

/* ------------------------------------------------------------------------------------------
 * condvar: the flag ping-pong. */
struct pingpong {
  struct gate gate;
  pthread_mutex_t lock;
  pthread_cond_t wake[2];
  int turn;
  long passes; /* per thread */
};

struct pingpong_arg {
  struct pingpong* p;
  int me;
};

static void* pingpong_thread(void* raw) {
  const struct pingpong_arg* a = raw;
  struct pingpong* p = a->p;
  const int me = a->me;
  gate_arrive(&p->gate);
  for (long i = 0; i < p->passes; ++i) {
    CHECK(pthread_mutex_lock(&p->lock));
    while (p->turn != me) CHECK(pthread_cond_wait(&p->wake[me], &p->lock));
    p->turn = 1 - me;
    CHECK(pthread_cond_signal(&p->wake[1 - me]));
    CHECK(pthread_mutex_unlock(&p->lock));
  }
  return NULL;
}

/* ------------------------------------------------------------------------------------------
 * mutex: the ring of three. Thread 0 starts holding mutex 0, thread 1 mutex 1. A thread at
 * position p may step to p+1 only while the other is not there, and it holds both during the
 * step, so the threads can never pass each other and never deadlock: with two threads on a
 * ring of three there is always one free mutex, in front of exactly one of them. */
struct ring {
  struct gate gate;
  pthread_mutex_t lock[3];
  long steps; /* per thread */
};

struct ring_arg {
  struct ring* r;
  int start;
};

static void* ring_thread(void* raw) {
  const struct ring_arg* a = raw;
  struct ring* r = a->r;
  int at = a->start;
  CHECK(pthread_mutex_lock(&r->lock[at]));
  gate_arrive(&r->gate);
  for (long i = 0; i < r->steps; ++i) {
    const int next = (at + 1) % 3;
    CHECK(pthread_mutex_lock(&r->lock[next]));
    CHECK(pthread_mutex_unlock(&r->lock[at]));
    at = next;
  }
  CHECK(pthread_mutex_unlock(&r->lock[at]));
  return NULL;
}

/* ------------------------------------------------------------------------------------------
 * Rounds. */
enum benchmark { condvar, mutex };

/* run_round: `handoffs` hand-offs (split between the two threads) on fresh threads; returns
 * the ns they took, and the thread count seen while they ran in *threads. */
static long long run_round(enum benchmark which, long handoffs, int* threads, int* split) {
  pthread_t t[2];
  long long start = 0;
  long long end = 0;
  /* Under grove-run with several hubs a new thread goes to the hub with the
   * fewest threads and the least recent CPU use (ties stay on the creator's),
   * and an idle hub takes threads not started yet from a busy one. Once the
   * last round's CPU use has faded (about 100 ms), the first worker goes to an
   * empty hub; once it waits at the gate, the second goes to main's, which
   * runs it as main waits: every hand-off crosses hubs, round after round. */
  usleep(300000);
  if (which == condvar) {
    struct pingpong p;
    gate_init(&p.gate);
    CHECK(pthread_mutex_init(&p.lock, NULL));
    CHECK(pthread_cond_init(&p.wake[0], NULL));
    CHECK(pthread_cond_init(&p.wake[1], NULL));
    p.turn = 0;
    p.passes = handoffs / 2;
    struct pingpong_arg args[2] = {{&p, 0}, {&p, 1}};
    for (int i = 0; i < 2; ++i) {
      CHECK(pthread_create(&t[i], NULL, pingpong_thread, &args[i]));
      if (i == 0) gate_wait(&p.gate, 1);
    }
    *threads = gate_open(&p.gate, split, &start);
    for (int i = 0; i < 2; ++i) CHECK(pthread_join(t[i], NULL));
    end = now_ns();
    if (p.turn != 0) {
      fprintf(stderr, "bench_threads_handoff: condvar: the flag ended with thread %d\n", p.turn);
      exit(1);
    }
    CHECK(pthread_cond_destroy(&p.wake[1]));
    CHECK(pthread_cond_destroy(&p.wake[0]));
    CHECK(pthread_mutex_destroy(&p.lock));
    gate_destroy(&p.gate);
  } else {
    struct ring r;
    gate_init(&r.gate);
    for (int i = 0; i < 3; ++i) CHECK(pthread_mutex_init(&r.lock[i], NULL));
    r.steps = handoffs / 2;
    struct ring_arg args[2] = {{&r, 0}, {&r, 1}};
    for (int i = 0; i < 2; ++i) {
      CHECK(pthread_create(&t[i], NULL, ring_thread, &args[i]));
      if (i == 0) gate_wait(&r.gate, 1);
    }
    *threads = gate_open(&r.gate, split, &start);
    for (int i = 0; i < 2; ++i) CHECK(pthread_join(t[i], NULL));
    end = now_ns();
    /* Every mutex must be free again: each thread unlocked what it ended on. */
    for (int i = 0; i < 3; ++i) {
      const int error = pthread_mutex_trylock(&r.lock[i]);
      if (error != 0) fail("mutex: a ring mutex is still held after both threads finished", error);
      CHECK(pthread_mutex_unlock(&r.lock[i]));
      CHECK(pthread_mutex_destroy(&r.lock[i]));
    }
    gate_destroy(&r.gate);
  }
  return end - start;
}

static void* nothing(void* arg) { return arg; }

static void measure(enum benchmark which, const char* name, int rounds, long round_ms) {
  int threads = 0;
  /* Size the rounds from a short first one. */
  const long probe = 2000;
  int split = 0;
  long long took = run_round(which, probe, &threads, &split);
  if (took <= 0) took = 1;
  long handoffs = (long)((double)round_ms * 1e6 * (double)probe / (double)took);
  if (handoffs < 2000) handoffs = 2000;
  if (handoffs > 100000000) handoffs = 100000000;
  handoffs &= ~1L; /* split evenly between the two threads */

  /* The fastest round of those whose two threads ran on two OS threads, if
   * any did (a round of green threads on two hubs may find both on one). */
  double best = -1;
  int most_threads = 0;
  int split_rounds = 0;
  for (int r = 0; r < rounds; ++r) {
    const double ns = (double)run_round(which, handoffs, &threads, &split) / (double)handoffs;
    if (split && split_rounds++ == 0) best = -1;
    if ((split || split_rounds == 0) && (best < 0 || ns < best)) best = ns;
    if (threads > most_threads) most_threads = threads;
  }
  printf("%s ns_per_handoff=%.1f rounds=%d handoffs=%ld os_threads=%d split_rounds=%d\n", name, best, rounds, handoffs,
         most_threads, split_rounds);
  fflush(stdout);
}

static long parse(const char* flag, const char* text, long low, long high) {
  char* end = NULL;
  errno = 0;
  const long value = text == NULL ? 0 : strtol(text, &end, 10);
  if (text == NULL || errno != 0 || end == text || *end != '\0' || value < low || value > high) {
    fprintf(stderr, "bench_threads_handoff: %s wants an integer in [%ld, %ld], got '%s'\n", flag, low, high,
            text == NULL ? "nothing" : text);
    fprintf(stderr, "usage: bench_threads_handoff [--rounds R] [--round-ms M]\n");
    exit(2);
  }
  return value;
}

int main(int argc, char** argv) {
  int rounds = 7;
  long round_ms = 100;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--rounds") == 0) {
      rounds = (int)parse("--rounds", i + 1 < argc ? argv[++i] : NULL, 1, 1000);
    } else if (strcmp(argv[i], "--round-ms") == 0) {
      round_ms = parse("--round-ms", i + 1 < argc ? argv[++i] : NULL, 1, 60000);
    } else {
      fprintf(stderr, "bench_threads_handoff: unknown argument '%s'\n", argv[i]);
      fprintf(stderr, "usage: bench_threads_handoff [--rounds R] [--round-ms M]\n");
      return 2;
    }
  }
  /* Under grove-run the hubs other than main's start with the first green
   * thread: start them before the first round, so that it finds them running. */
  pthread_t first;
  CHECK(pthread_create(&first, NULL, nothing, NULL));
  CHECK(pthread_join(first, NULL));
  measure(condvar, "condvar", rounds, round_ms);
  measure(mutex, "mutex", rounds, round_ms);
  return 0;
}
