/* file_signals.c — reads of a cold file while a signal handler runs every
 * millisecond: a disk read is not interrupted by a signal that does not kill
 * (no EINTR, no short read), and the handler runs meanwhile or right after.
 *
 *   file_signals FILE
 *
 * The program evicts FILE from the page cache, arms a 1 ms interval timer
 * whose SIGALRM handler (installed without SA_RESTART) counts, and reads FILE
 * in 8 MiB read() calls, then once more with pread() of the whole file. It
 * prints what the reads returned and whether the handler ran, so its output
 * is the same natively and under grove-run, where the reads park the task and
 * the handler runs when each read returns. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static volatile sig_atomic_t ticks;

static void on_alarm(int sig) {
  (void)sig;
  ticks++;
}

static void evict(const char* path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0 || fdatasync(fd) != 0 || posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) != 0) {
    perror(path);
    exit(1);
  }
  close(fd);
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: file_signals FILE\n");
    return 2;
  }
  struct stat st;
  if (stat(argv[1], &st) != 0) {
    perror(argv[1]);
    return 1;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;  /* no SA_RESTART: a call the kernel would interrupt fails with EINTR */
  sigaction(SIGALRM, &sa, NULL);
  const size_t chunk = 8 << 20;
  char* buf = malloc((size_t)st.st_size > chunk ? (size_t)st.st_size : chunk);
  if (buf == NULL) return 1;

  evict(argv[1]);
  struct itimerval every_ms = {{0, 1000}, {0, 1000}};
  setitimer(ITIMER_REAL, &every_ms, NULL);
  int fd = open(argv[1], O_RDONLY);
  long total = 0, calls = 0, short_reads = 0, eintr = 0;
  for (;;) {
    ssize_t n = read(fd, buf, chunk);
    if (n < 0) {
      if (errno == EINTR) {
        eintr++;
        continue;
      }
      perror("read");
      return 1;
    }
    if (n == 0) break;
    calls++;
    if ((size_t)n < chunk && total + n < (long)st.st_size) short_reads++;
    total += n;
  }
  evict(argv[1]);
  ssize_t whole = pread(fd, buf, (size_t)st.st_size, 0);
  int whole_errno = whole < 0 ? errno : 0;
  struct itimerval off = {{0, 0}, {0, 0}};
  setitimer(ITIMER_REAL, &off, NULL);
  close(fd);

  printf("read: %ld bytes of %ld in %ld calls, short reads before the end: %ld, EINTR: %ld\n", total,
         (long)st.st_size, calls, short_reads, eintr);
  printf("pread of the whole file: %s\n", whole == st.st_size ? "whole" : whole_errno == EINTR ? "EINTR" : "short");
  printf("the handler ran: %s\n", ticks > 0 ? "yes" : "no");
  free(buf);
  return 0;
}
