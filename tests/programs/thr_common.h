/* thr_common.h — what the thr_*.c programs share: error names, deadlines and
 * elapsed time, and a report of how many OS threads the process has, kept off
 * stdout so the output natively and under grove-run can be compared byte for
 * byte.
 *
 * report_threads(label) appends "LABEL N\n" to the file named by the
 * environment variable THR_THREADS_FILE, where N is the "Threads:" count of
 * /proc/self/status: the kernel's count of this process's OS threads, which
 * green threads do not add to. Without THR_THREADS_FILE it does nothing. */
#ifndef THR_COMMON_H
#define THR_COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* error_name spells an error number as the programs print it. */
static inline const char* error_name(int e) {
  switch (e) {
    case 0: return "0";
    case E2BIG: return "E2BIG";
    case EACCES: return "EACCES";
    case EAGAIN: return "EAGAIN";
    case EBADF: return "EBADF";
    case EBUSY: return "EBUSY";
    case ECHILD: return "ECHILD";
    case EDEADLK: return "EDEADLK";
    case EEXIST: return "EEXIST";
    case EIDRM: return "EIDRM";
    case EINTR: return "EINTR";
    case EINVAL: return "EINVAL";
    case ENOENT: return "ENOENT";
    case ENOMSG: return "ENOMSG";
    case EPERM: return "EPERM";
    case ERANGE: return "ERANGE";
    case ESRCH: return "ESRCH";
    case ETIMEDOUT: return "ETIMEDOUT";
    default: return strerror(e);
  }
}

/* in_ms is the time ms milliseconds from now (before now if ms < 0) on clock. */
static inline struct timespec in_ms(clockid_t clock, long ms) {
  struct timespec t;
  clock_gettime(clock, &t);
  t.tv_sec += ms / 1000;
  t.tv_nsec += (ms % 1000) * 1000000L;
  if (t.tv_nsec >= 1000000000L) {
    t.tv_sec++;
    t.tv_nsec -= 1000000000L;
  } else if (t.tv_nsec < 0) { /* ms < 0: a deadline in the past */
    t.tv_sec--;
    t.tv_nsec += 1000000000L;
  }
  return t;
}

static inline struct timespec realtime_in(long ms) { return in_ms(CLOCK_REALTIME, ms); }

/* seconds_since is the time since t0, read from CLOCK_MONOTONIC. */
static inline double seconds_since(const struct timespec* t0) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* os_threads is the "Threads:" count of /proc/self/status, or -1. */
static inline int os_threads(void) {
  const int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[4096];
  size_t got = 0;
  ssize_t n;
  while (got < sizeof buf - 1 && (n = read(fd, buf + got, sizeof buf - 1 - got)) > 0) got += (size_t)n;
  close(fd);
  buf[got] = '\0';
  const char* line = strstr(buf, "\nThreads:");
  return line == NULL ? -1 : atoi(line + strlen("\nThreads:"));
}

static inline void report_threads(const char* label) {
  const char* path = getenv("THR_THREADS_FILE");
  if (path == NULL || *path == '\0') return;
  const int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return;
  char line[128];
  const int len = snprintf(line, sizeof line, "%s %d\n", label, os_threads());
  if (len > 0 && write(fd, line, (size_t)len) != len) {
    /* The test finds the line missing and says so. */
  }
  close(fd);
}

#endif
