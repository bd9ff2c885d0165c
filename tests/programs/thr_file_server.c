/* thr_file_server.c — a thread-per-connection file server in plain blocking
 * style, with its own clients: 199 of them fetch a small file over and over
 * while one fetches a big file that the server must read from disk.
 *
 *   thr_file_server DIR BIG
 *
 * DIR is a scratch directory (the small file is made there); BIG is a large
 * file that the program first evicts from the page cache (posix_fadvise
 * DONTNEED, after an fsync), so the server's reads of it wait for the disk.
 * The server reads BIG in 8 MiB read() calls, each of which waits for the disk
 * for milliseconds.
 *
 * Natively the other connections' threads run during those reads. Under
 * grove-run every thread is a green thread on one OS thread (or a few hubs):
 * if a read of a regular file blocked its hub, no small reply could complete
 * while a big read is under way. The program counts the small replies that
 * complete while the server is inside a read of BIG, and prints whether there
 * were any ("some"), so its output is the same natively and under grove-run
 * only if disk reads leave the other threads running. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "thr_common.h"

enum { small_clients = 199, small_size = 4096, big_chunk = 8 << 20 };

static char small_path[4096];
static const char* big_path;
static int listener;
static atomic_int big_reads_under_way;   /* the server is inside a read() of BIG */
static atomic_int big_done;              /* the big client has its whole file */
static atomic_long replies_during_big;   /* small replies completed while a big read was under way */
static atomic_long small_replies;
static atomic_int bad_replies;

static void die(const char* what) {
  fprintf(stderr, "thr_file_server: %s: %s\n", what, strerror(errno));
  exit(1);
}

static int write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* serve answers one connection: "PATH\n" in, the file's bytes out, then close. */
static void* serve(void* arg) {
  int c = (int)(intptr_t)arg;
  char path[4096];
  size_t len = 0;
  while (len < sizeof path - 1) {
    ssize_t n = read(c, path + len, 1);
    if (n <= 0) break;
    if (path[len] == '\n') break;
    len++;
  }
  path[len] = '\0';
  int big = strcmp(path, big_path) == 0;
  int fd = open(path, O_RDONLY);
  if (fd < 0) die("open");
  size_t room = big ? big_chunk : 65536;
  char* buf = malloc(room);
  for (;;) {
    if (big) atomic_fetch_add(&big_reads_under_way, 1);
    ssize_t n = read(fd, buf, room);
    if (big) atomic_fetch_sub(&big_reads_under_way, 1);
    if (n < 0) die("read");
    if (n == 0) break;
    if (write_all(c, buf, (size_t)n) != 0) break;
  }
  free(buf);
  close(fd);
  close(c);
  return NULL;
}

static void* accept_loop(void* arg) {
  (void)arg;
  for (;;) {
    int c = accept(listener, NULL, NULL);
    if (c < 0) {
      if (errno == EINTR) continue;
      return NULL;
    }
    pthread_t t;
    if (pthread_create(&t, NULL, serve, (void*)(intptr_t)c) != 0) die("pthread_create");
    pthread_detach(t);
  }
}

static int dial(void) {
  struct sockaddr_in a;
  socklen_t alen = sizeof a;
  if (getsockname(listener, (struct sockaddr*)&a, &alen) != 0) die("getsockname");
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) die("socket");
  if (connect(s, (struct sockaddr*)&a, alen) != 0) die("connect");
  return s;
}

/* fetch asks for path and reads the reply to its end; returns its length,
 * with a checksum of it in *sum. */
static long fetch(const char* path, uint64_t* sum, char* buf, size_t room) {
  int s = dial();
  char req[4200];
  int n = snprintf(req, sizeof req, "%s\n", path);
  if (write_all(s, req, (size_t)n) != 0) die("send");
  long total = 0;
  uint64_t h = 1469598103934665603ull;
  for (;;) {
    ssize_t r = read(s, buf, room);
    if (r < 0) die("recv");
    if (r == 0) break;
    for (ssize_t i = 0; i < r; i++) h = (h ^ (unsigned char)buf[i]) * 1099511628211ull;
    total += r;
  }
  close(s);
  *sum = h;
  return total;
}

static void* small_client(void* arg) {
  (void)arg;
  char buf[small_size * 2];
  uint64_t want = 0;
  {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < small_size; i++) h = (h ^ (unsigned char)('a' + i % 26)) * 1099511628211ull;
    want = h;
  }
  do {
    uint64_t sum;
    long n = fetch(small_path, &sum, buf, sizeof buf);
    if (n != small_size || sum != want) atomic_fetch_add(&bad_replies, 1);
    atomic_fetch_add(&small_replies, 1);
    if (atomic_load(&big_reads_under_way) > 0) atomic_fetch_add(&replies_during_big, 1);
    usleep(20000); /* a client's pace: 199 of them, each a new connection, stay far from the port range's end */
  } while (!atomic_load(&big_done));
  return NULL;
}

static uint64_t big_sum;
static long big_bytes;

static void* big_client(void* arg) {
  (void)arg;
  char* buf = malloc(1 << 20);
  big_bytes = fetch(big_path, &big_sum, buf, 1 << 20);
  free(buf);
  atomic_store(&big_done, 1);
  return NULL;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: thr_file_server DIR BIG\n");
    return 2;
  }
  big_path = argv[2];
  snprintf(small_path, sizeof small_path, "%s/small", argv[1]);
  int fd = open(small_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) die("open small");
  char small[small_size];
  for (int i = 0; i < small_size; i++) small[i] = (char)('a' + i % 26);
  if (write_all(fd, small, sizeof small) != 0) die("write small");
  close(fd);
  fd = open(big_path, O_RDONLY);
  if (fd < 0) die("open big");
  struct stat st;
  if (fstat(fd, &st) != 0) die("fstat big");
  fdatasync(fd);
  if (posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) != 0) die("posix_fadvise");
  close(fd);

  listener = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listener, (struct sockaddr*)&a, sizeof a) != 0 || listen(listener, 512) != 0) die("listen");
  pthread_t acceptor;
  if (pthread_create(&acceptor, NULL, accept_loop, NULL) != 0) die("pthread_create");
  pthread_detach(acceptor);

  pthread_t clients[small_clients + 1];
  for (int i = 0; i < small_clients; i++)
    if (pthread_create(&clients[i], NULL, small_client, NULL) != 0) die("pthread_create");
  if (pthread_create(&clients[small_clients], NULL, big_client, NULL) != 0) die("pthread_create");
  for (int i = 0; i <= small_clients; i++) pthread_join(clients[i], NULL);

  printf("big file: %ld bytes of %ld, whole: %s\n", big_bytes, (long)st.st_size,
         big_bytes == (long)st.st_size ? "yes" : "no");
  printf("big file checksum: %016llx\n", (unsigned long long)big_sum);
  printf("small clients: %d, replies: %s, bad replies: %d\n", small_clients,
         atomic_load(&small_replies) >= small_clients ? "every client at least one" : "missing",
         atomic_load(&bad_replies));
  printf("small replies while the server read the big file from disk: %s\n",
         atomic_load(&replies_during_big) > 0 ? "some" : "none");
  if (getenv("THR_FILE_SERVER_COUNTS") != NULL)
    fprintf(stderr, "small replies %ld, during big reads %ld\n", atomic_load(&small_replies),
            atomic_load(&replies_during_big));
  return 0;
}
