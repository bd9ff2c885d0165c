/* thr_offset64.c — built with _FILE_OFFSET_BITS=64, as Python and most
 * distribution binaries are, so that its fcntl is glibc's fcntl64 and its
 * sendfile is sendfile64: a pipe made non-blocking with fcntl(F_SETFL) says
 * EAGAIN when empty, and a file sent with sendfile into a blocking socket whose
 * reader is another thread arrives whole (under green threads the sender must
 * let the reader run while the socket is full). */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "thr_common.h"

enum { file_bytes = 4 << 20 };
static int pair[2];

static void* reader(void* arg) {
  (void)arg;
  static char buf[65536];
  long total = 0;
  ssize_t n;
  while ((n = read(pair[1], buf, sizeof buf)) > 0) total += n;
  return (void*)total;
}

int main(void) {
  int p[2];
  if (pipe(p) != 0) return 1;
  printf("fcntl F_SETFL O_NONBLOCK: %d\n", fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK));
  char c;
  const ssize_t r = read(p[0], &c, 1);
  printf("read of the empty non-blocking pipe: %zd %s\n", r, error_name(r < 0 ? errno : 0));

  char path[] = "/tmp/thr_offset64-XXXXXX";
  const int f = mkstemp(path);
  unlink(path);
  char* block = calloc(1, 65536);
  for (int i = 0; i < file_bytes / 65536; ++i) {
    if (write(f, block, 65536) != 65536) return 1;
  }
  free(block);
  socketpair(AF_UNIX, SOCK_STREAM, 0, pair);
  pthread_t t;
  pthread_create(&t, NULL, reader, NULL);
  off_t offset = 1000;
  long sent = 0;
  while (sent < file_bytes - 1000) {
    const ssize_t n = sendfile(pair[0], f, &offset, (size_t)(file_bytes - 1000 - sent));
    if (n <= 0) break;
    sent += n;
  }
  close(pair[0]);
  void* got = NULL;
  pthread_join(t, &got);
  printf("sendfile from offset 1000: sent %ld, received %ld, offset now %lld\n", sent, (long)got, (long long)offset);
  return 0;
}
