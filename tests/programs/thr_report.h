/* thr_report.h — what the thr_*.c programs share: a report of how many OS
 * threads the process has, kept off stdout so the output natively and under
 * grove-run can be compared byte for byte.
 *
 * report_threads(label) appends "LABEL N\n" to the file named by the
 * environment variable THR_THREADS_FILE, where N is the "Threads:" count of
 * /proc/self/status: the kernel's count of this process's OS threads, which
 * green threads do not add to. Without THR_THREADS_FILE it does nothing. */
#ifndef THR_REPORT_H
#define THR_REPORT_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
