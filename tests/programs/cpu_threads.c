/* cpu_threads — N threads of fixed CPU-bound work and nothing else: no
 * syscall, lock or shared write while they compute, so their wall time shows
 * how many CPUs their threads get (natively, or under grove-run with one hub or
 * several). bench/threads/hubs.sh times it.
 *
 * Usage: cpu_threads [THREADS [UNITS]]
 *
 * Each of THREADS threads (default 8) runs UNITS work units (default 64, about
 * 0.25 s of one CPU of a 2-core Debian 12 VM at -O2): 2^20 rounds each of a
 * 64-bit mix (splitmix64's finaliser) chained through an accumulator seeded by
 * the thread's index. A thread stores its result in its own slot; main joins
 * them all and prints "thread I: RESULT" for each in index order. The output
 * depends on the arguments only, so natively and under grove-run it is the
 * same byte for byte. Exits 0, 1 if a thread cannot be created or joined, 2 on
 * a bad command line.
 *
 * With CPU_THREADS_TASKS naming a file, main then writes one line per OS
 * thread the process still has, "ticks N": the CPU time it has used, user plus
 * system, in clock ticks (/proc/self/task/TID/stat). Natively the workers'
 * threads are gone by then; under grove-run the hubs' OS threads remain, and
 * show which of them computed, however busy the machine was. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { max_threads = 4096, max_units = 1000000, rounds_per_unit = 1 << 20 };

struct worker {
  pthread_t thread;
  uint64_t seed;
  long units;
  uint64_t result;
};

/* mix is splitmix64's finaliser: a bijection of 64-bit words with no closed
 * form the compiler could fold a loop of into. */
static inline uint64_t mix(uint64_t x) {
  x ^= x >> 30;
  x *= UINT64_C(0xbf58476d1ce4e5b9);
  x ^= x >> 27;
  x *= UINT64_C(0x94d049bb133111eb);
  x ^= x >> 31;
  return x;
}

static void* work(void* arg) {
  struct worker* w = arg;
  uint64_t x = mix(w->seed + 1);
  /* Each round depends on the last: a chain of multiplies the CPU cannot run
   * ahead of, and a loop the compiler cannot shorten. */
  for (long u = 0; u < w->units; ++u)
    for (uint32_t i = 0; i < rounds_per_unit; ++i) x = mix(x + i);
  w->result = x;
  return NULL;
}

/* report_tasks writes "ticks N" for each OS thread of the process to path. */
static void report_tasks(const char* path) {
  FILE* out = fopen(path, "w");
  DIR* tasks = opendir("/proc/self/task");
  if (out == NULL || tasks == NULL) {
    fprintf(stderr, "cpu_threads: cannot report the OS threads' CPU time to %s\n", path);
    exit(1);
  }
  for (struct dirent* e; (e = readdir(tasks)) != NULL;) {
    if (e->d_name[0] == '.') continue;
    char name[300];
    snprintf(name, sizeof name, "/proc/self/task/%s/stat", e->d_name);
    FILE* f = fopen(name, "r");
    if (f == NULL) continue; /* ended meanwhile */
    char line[1024];
    const char* got = fgets(line, sizeof line, f);
    fclose(f);
    const char* after_name = got != NULL ? strrchr(line, ')') : NULL;
    unsigned long utime = 0, stime = 0;
    /* After "(comm)": state, then fields 4 to 13, then utime and stime. */
    if (after_name != NULL &&
        sscanf(after_name + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) == 2)
      fprintf(out, "ticks %lu\n", utime + stime);
  }
  closedir(tasks);
  fclose(out);
}

/* parse_count reads argv[index] as a whole number in [1, max], or def when absent. */
static long parse_count(int argc, char** argv, int index, long def, long max) {
  if (argc <= index) return def;
  char* end;
  const long n = strtol(argv[index], &end, 10);
  if (end == argv[index] || *end != '\0' || n < 1 || n > max) {
    fprintf(stderr, "cpu_threads: '%s' is not a whole number from 1 to %ld\n", argv[index], max);
    fprintf(stderr, "usage: cpu_threads [THREADS [UNITS]]\n");
    exit(2);
  }
  return n;
}

int main(int argc, char** argv) {
  if (argc > 3) {
    fprintf(stderr, "usage: cpu_threads [THREADS [UNITS]]\n");
    return 2;
  }
  const long threads = parse_count(argc, argv, 1, 8, max_threads);
  const long units = parse_count(argc, argv, 2, 64, max_units);
  struct worker* workers = calloc((size_t)threads, sizeof *workers);
  if (workers == NULL) {
    fprintf(stderr, "cpu_threads: out of memory\n");
    return 1;
  }
  for (long i = 0; i < threads; ++i) {
    workers[i].seed = (uint64_t)i;
    workers[i].units = units;
    const int e = pthread_create(&workers[i].thread, NULL, work, &workers[i]);
    if (e != 0) {
      fprintf(stderr, "cpu_threads: pthread_create of thread %ld: %s\n", i, strerror(e));
      return 1;
    }
  }
  for (long i = 0; i < threads; ++i) {
    const int e = pthread_join(workers[i].thread, NULL);
    if (e != 0) {
      fprintf(stderr, "cpu_threads: pthread_join of thread %ld: %s\n", i, strerror(e));
      return 1;
    }
  }
  for (long i = 0; i < threads; ++i) printf("thread %ld: %016" PRIx64 "\n", i, workers[i].result);
  free(workers);
  const char* report = getenv("CPU_THREADS_TASKS");
  if (report != NULL && *report != '\0') report_tasks(report);
  return fflush(stdout) == 0 ? 0 : 1;
}
