/* thr_stdio.c — stdio on pipes and sockets whose data arrives in delayed
 * pieces, while a ticker thread counts 10 ms sleeps. Each reading function
 * waits for input that a writer thread delivers piece by piece (30 ms apart);
 * the ticker must run meanwhile. Under grove-run every thread is green on one
 * OS thread, so a read that blocked the OS thread would stop both the ticker
 * and the writer (the program would hang). Then EOF and error indicators,
 * timeouts, line buffering, writers that fill a pipe (dprintf too), and two
 * threads sharing one FILE. Everything printed must be the same natively and under grove-run. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "thr_common.h"

static int ticks, stop_ticking;

static void* ticker(void* arg) {
  (void)arg;
  while (!__atomic_load_n(&stop_ticking, __ATOMIC_RELAXED)) {
    usleep(10000);
    __atomic_add_fetch(&ticks, 1, __ATOMIC_RELAXED);
  }
  return NULL;
}

/* make_pipe is pipe() that ends the program if it fails. */
static void make_pipe(int fds[2]) {
  if (pipe(fds) != 0) {
    perror("pipe");
    exit(1);
  }
}

static int tick_count(void) { return __atomic_load_n(&ticks, __ATOMIC_RELAXED); }

/* ticked says whether the ticker ran at least 3 times since t0. */
static const char* ticked(int t0) { return tick_count() - t0 >= 3 ? "yes" : "no"; }

struct pieces {
  int fd;
  const char* parts[8];
  int close_at_end;
};

static void* deliver(void* arg) {
  struct pieces* p = arg;
  for (int i = 0; i < 8 && p->parts[i] != NULL; ++i) {
    usleep(30000);
    const size_t n = strlen(p->parts[i]);
    if (write(p->fd, p->parts[i], n) != (ssize_t)n) perror("write");
  }
  if (p->close_at_end) close(p->fd);
  return NULL;
}

/* start_pieces makes a pipe (socket = 0) or a socketpair and a thread that
 * writes parts to it, 30 ms apart, then closes its end. Returns the read end. */
static int start_pieces(int socket, struct pieces* p, pthread_t* writer) {
  int fds[2];
  if ((socket ? socketpair(AF_UNIX, SOCK_STREAM, 0, fds) : pipe(fds)) != 0) {
    perror("pipe");
    exit(1);
  }
  p->fd = fds[1];
  p->close_at_end = 1;
  pthread_create(writer, NULL, deliver, p);
  return fds[0];
}

/* show prints s with its newlines visible. */
static void show(const char* label, const char* s, size_t n) {
  printf("  %s \"", label);
  for (size_t i = 0; i < n; ++i) {
    if (s[i] == '\n') {
      fputs("\\n", stdout);
    } else {
      putchar(s[i]);
    }
  }
  puts("\"");
}

static void indicators(FILE* fp) { printf("  feof %d ferror %d\n", feof(fp) != 0, ferror(fp) != 0); }

static const char* kinds[] = {"pipe", "socketpair"};
static volatile int line_size = 64; /* not a constant: fgets becomes __fgets_chk */

static void test_fgets(int socket) {
  printf("fgets on a %s, a line in pieces:\n", kinds[socket]);
  struct pieces p = {.parts = {"first ", "li", "ne\nsecond", " line\n", "tail"}};
  pthread_t w;
  FILE* fp = fdopen(start_pieces(socket, &p, &w), "r");
  const int t0 = tick_count();
  char buf[64];
  while (fgets(buf, line_size, fp) != NULL) show("line", buf, strlen(buf));
  indicators(fp);
  printf("  ticker ran while fgets waited: %s\n", ticked(t0));
  pthread_join(w, NULL);
  fclose(fp);
}

static void test_fgets_unlocked_short(void) {
  puts("fgets_unlocked with room for 4 bytes:");
  struct pieces p = {.parts = {"abcdef", "gh\n"}};
  pthread_t w;
  FILE* fp = fdopen(start_pieces(0, &p, &w), "r");
  char buf[8];
  while (fgets_unlocked(buf, 5, fp) != NULL) show("piece", buf, strlen(buf));
  indicators(fp);
  pthread_join(w, NULL);
  fclose(fp);
}

static void test_getc(int socket) {
  printf("fgetc, getc and getc_unlocked on a %s:\n", kinds[socket]);
  struct pieces p = {.parts = {"a", "bc", "d"}};
  pthread_t w;
  FILE* fp = fdopen(start_pieces(socket, &p, &w), "r");
  const int t0 = tick_count();
  int c1 = fgetc(fp), c2 = getc(fp), c3 = getc_unlocked(fp), c4 = fgetc(fp), c5 = getc(fp);
  printf("  got %c%c%c%c, then %s\n", c1, c2, c3, c4, c5 == EOF ? "EOF" : "more");
  indicators(fp);
  printf("  again after EOF: %s\n", fgetc(fp) == EOF ? "EOF" : "more");
  printf("  ticker ran while getc waited: %s\n", ticked(t0));
  pthread_join(w, NULL);
  fclose(fp);
}

static volatile size_t item_count = 5;

static void test_fread(int socket) {
  printf("fread of 5 items of 4 bytes on a %s:\n", kinds[socket]);
  struct pieces p = {.parts = {"0123", "45", "6789ab", "cdefghij", "klm"}};
  pthread_t w;
  FILE* fp = fdopen(start_pieces(socket, &p, &w), "r");
  const int t0 = tick_count();
  char buf[20];
  size_t n = fread(buf, 4, item_count, fp);
  printf("  items %zu\n", n);
  show("bytes", buf, n * 4);
  indicators(fp);
  n = fread_unlocked(buf, 4, item_count, fp);
  printf("  then items %zu (a partial item of 3 bytes is consumed)\n", n);
  indicators(fp);
  printf("  ticker ran while fread waited: %s\n", ticked(t0));
  pthread_join(w, NULL);
  fclose(fp);
}

static void test_getline(int socket) {
  printf("getline and getdelim on a %s:\n", kinds[socket]);
  struct pieces p = {.parts = {"a long", " line that needs ", "several reads\nshort\n", "x;y", ";last"}};
  pthread_t w;
  FILE* fp = fdopen(start_pieces(socket, &p, &w), "r");
  const int t0 = tick_count();
  char* line = NULL;
  size_t cap = 0;
  ssize_t n;
  for (int i = 0; i < 2 && (n = getline(&line, &cap, fp)) >= 0; ++i) {
    printf("  getline %zd:", n);
    show("", line, (size_t)n);
  }
  while ((n = getdelim(&line, &cap, ';', fp)) >= 0) {
    printf("  getdelim %zd:", n);
    show("", line, (size_t)n);
  }
  indicators(fp);
  free(line);
  printf("  ticker ran while getline waited: %s\n", ticked(t0));
  pthread_join(w, NULL);
  fclose(fp);
}

static void test_fscanf(int socket) {
  printf("fscanf on a %s, numbers and words split across pieces and lines:\n", kinds[socket]);
  struct pieces p = {.parts = {"12", "3 wo", "rd\n", "  45", "\n\n 6.5 rest\n"}};
  pthread_t w;
  FILE* fp = fdopen(start_pieces(socket, &p, &w), "r");
  const int t0 = tick_count();
  int a = 0, b = 0, consumed = 0;
  char word[16] = "";
  double d = 0;
  int r = fscanf(fp, "%d %15s %d%n", &a, word, &b, &consumed);
  printf("  fscanf: %d conversions: %d \"%s\" %d, %d bytes\n", r, a, word, b, consumed);
  r = fscanf(fp, "%lf", &d);
  printf("  then: %d conversion: %.1f\n", r, d);
  printf("  next byte left for fgetc: '%c'\n", fgetc(fp));
  char rest[16];
  printf("  fgets the rest: \"%s\"\n", fgets(rest, 5, fp));
  r = fscanf(fp, "%d", &a);
  printf("  at EOF: %s\n", r == EOF ? "EOF" : "a conversion");
  indicators(fp);
  printf("  ticker ran while fscanf waited: %s\n", ticked(t0));
  pthread_join(w, NULL);
  fclose(fp);
}

static void test_stdin(void) {
  puts("scanf and getchar on stdin (a pipe):");
  struct pieces p = {.parts = {"7", "7 ", "and", " more\n"}};
  pthread_t w;
  const int fd = start_pieces(0, &p, &w);
  dup2(fd, 0);
  close(fd);
  const int t0 = tick_count();
  int n = 0;
  char word[8];
  const int r = scanf("%d %7s", &n, word);
  printf("  scanf: %d conversions: %d \"%s\"\n", r, n, word);
  int c, count = 0;
  while ((c = getchar()) != EOF) ++count;
  printf("  getchar read %d more bytes, then EOF\n", count);
  printf("  ticker ran while scanf waited: %s\n", ticked(t0));
  pthread_join(w, NULL);
}

static void test_timeout(void) {
  puts("fgets on a socket with SO_RCVTIMEO of 50 ms and nothing to read:");
  int fds[2];
  socketpair(AF_UNIX, SOCK_STREAM, 0, fds);
  struct timeval tv = {0, 50000};
  setsockopt(fds[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  FILE* fp = fdopen(fds[0], "r");
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  char buf[16];
  errno = 0;
  const char* r = fgets(buf, sizeof buf, fp);
  const int e = errno;
  printf("  fgets: %s, errno %s, waited 40 ms or more: %s\n", r == NULL ? "NULL" : "a line", error_name(e),
         seconds_since(&t0) >= 0.04 ? "yes" : "no");
  indicators(fp);
  fclose(fp);
  close(fds[1]);
}

static void test_nonblocking(void) {
  puts("fgets on a non-blocking pipe with nothing to read:");
  int fds[2];
  make_pipe(fds);
  fcntl(fds[0], F_SETFL, O_NONBLOCK);
  FILE* fp = fdopen(fds[0], "r");
  char buf[16];
  errno = 0;
  const char* r = fgets(buf, sizeof buf, fp);
  printf("  fgets: %s, errno %s\n", r == NULL ? "NULL" : "a line", error_name(errno));
  indicators(fp);
  if (write(fds[1], "ok\n", 3) != 3) perror("write");
  clearerr(fp);
  r = fgets(buf, sizeof buf, fp);
  printf("  after data arrived: %s", r == NULL ? "NULL\n" : r);
  fclose(fp);
  close(fds[1]);
}

static void* reset_later(void* arg) {
  const int fd = (int)(long)arg;
  usleep(50000);
  struct linger l = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd); /* with a zero linger: a reset */
  return NULL;
}

static void test_reset(void) {
  puts("fgets on a TCP connection that the peer resets while it waits:");
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  bind(listener, (struct sockaddr*)&a, sizeof a);
  listen(listener, 1);
  getsockname(listener, (struct sockaddr*)&a, &len);
  const int c = socket(AF_INET, SOCK_STREAM, 0);
  connect(c, (struct sockaddr*)&a, sizeof a);
  const int s = accept(listener, NULL, NULL);
  close(listener);
  pthread_t t;
  pthread_create(&t, NULL, reset_later, (void*)(long)s);
  FILE* fp = fdopen(c, "r");
  const int t0 = tick_count();
  char buf[16];
  errno = 0;
  const char* r = fgets(buf, sizeof buf, fp);
  printf("  fgets: %s, errno %s\n", r == NULL ? "NULL" : "a line", error_name(errno));
  indicators(fp);
  printf("  ticker ran while fgets waited: %s\n", ticked(t0));
  pthread_join(t, NULL);
  fclose(fp);
}

static size_t pending_bytes(int fd) {
  int n = 0;
  ioctl(fd, FIONREAD, &n);
  return (size_t)n;
}

static void test_buffering(void) {
  puts("buffering modes on a pipe (bytes that reached the pipe after each call):");
  int fds[2];
  make_pipe(fds);
  FILE* out = fdopen(fds[1], "w");
  setvbuf(out, NULL, _IOLBF, 0);
  fputs("abc", out);
  printf("  line buffered, fputs(\"abc\"): %zu\n", pending_bytes(fds[0]));
  fprintf(out, "%s\n%s", "def", "xyz");
  printf("  fprintf(\"def\\nxyz\"): %zu\n", pending_bytes(fds[0]));
  fputc('!', out);
  putc('\n', out);
  printf("  fputc('!'), putc('\\n'): %zu\n", pending_bytes(fds[0]));
  fwrite("1234\n56", 1, 7, out);
  printf("  fwrite(\"1234\\n56\"): %zu\n", pending_bytes(fds[0]));
  fflush(out);
  printf("  fflush: %zu\n", pending_bytes(fds[0]));
  fclose(out);
  char buf[64];
  const ssize_t n = read(fds[0], buf, sizeof buf);
  show("all", buf, n > 0 ? (size_t)n : 0);
  close(fds[0]);

  make_pipe(fds);
  out = fdopen(fds[1], "w");
  setvbuf(out, NULL, _IONBF, 0);
  fputs("ab", out);
  fputc('c', out);
  fprintf(out, "%d", 42);
  printf("  unbuffered, fputs, fputc, fprintf: %zu\n", pending_bytes(fds[0]));
  fclose(out);
  close(fds[0]);

  make_pipe(fds);
  out = fdopen(fds[1], "w");
  static char small_buffer[16];
  setvbuf(out, small_buffer, _IOFBF, sizeof small_buffer);
  fputs("0123456789", out);
  printf("  16-byte buffer, 10 bytes: %zu\n", pending_bytes(fds[0]));
  fputs("abcdefghij", out);
  printf("  then 10 more: %zu\n", pending_bytes(fds[0]));
  fwrite("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", 1, 52, out);
  printf("  then 52 more: %zu\n", pending_bytes(fds[0]));
  fclose(out);
  printf("  after fclose: %zu\n", pending_bytes(fds[0]));
  close(fds[0]);

  /* Buffers of 128 bytes and more: what does not fit goes out in whole
   * blocks, the rest is buffered; line buffered, up to the last newline. */
  static char block[300];
  memset(block, 'b', sizeof block);
  block[280] = '\n';
  for (int line = 0; line < 2; ++line) {
    make_pipe(fds);
    out = fdopen(fds[1], "w");
    static char buffer[128];
    setvbuf(out, buffer, line ? _IOLBF : _IOFBF, sizeof buffer);
    fputs("12345", out);
    const size_t n = fwrite(block, 1, sizeof block, out);
    printf("  %s 128-byte buffer, fwrite of 300 after 5: %zu, reached the pipe: %zu\n",
           line ? "line-buffered" : "fully buffered", n, pending_bytes(fds[0]));
    fclose(out);
    printf("  after fclose: %zu\n", pending_bytes(fds[0]));
    close(fds[0]);
  }
}

/* A slow reader of a pipe: 4 KiB at a time, 2 ms apart, until EOF. */
struct sink {
  int fd;
  size_t bytes;
  unsigned long sum;
};

static void* drain_slowly(void* arg) {
  struct sink* s = arg;
  char buf[4096];
  ssize_t n;
  while ((n = read(s->fd, buf, sizeof buf)) > 0) {
    for (ssize_t i = 0; i < n; ++i) s->sum = s->sum * 31 + (unsigned char)buf[i];
    s->bytes += (size_t)n;
    usleep(2000);
  }
  return NULL;
}

static void produce_fwrite(FILE* out) {
  static char block[300000];
  for (size_t i = 0; i < sizeof block; ++i) block[i] = (char)('a' + i % 26);
  printf("  fwrite returned %zu\n", fwrite(block, 1, sizeof block, out));
}

static void produce_fprintf(FILE* out) {
  int total = 0;
  for (int i = 0; i < 20000; ++i) total += fprintf(out, "line %d of the fprintf writer\n", i);
  printf("  fprintf wrote %d bytes\n", total);
}

static void produce_fputs(FILE* out) {
  int ok = 0;
  for (int i = 0; i < 20000; ++i) {
    ok += fputs("a line from fputs, ", out) >= 0;
    ok += fputc('x', out) == 'x';
    ok += putc('\n', out) == '\n';
  }
  printf("  fputs, fputc and putc calls that succeeded: %d\n", ok);
}

static void produce_dprintf(FILE* out) {
  int total = 0;
  for (int i = 0; i < 20000; ++i) total += dprintf(fileno(out), "line %d of the dprintf writer\n", i);
  printf("  dprintf wrote %d bytes\n", total);
}

static void test_full_pipe(const char* what, int socket, void (*produce)(FILE*)) {
  printf("%s into a %s that a slow reader drains:\n", what, kinds[socket]);
  int fds[2];
  if ((socket ? socketpair(AF_UNIX, SOCK_STREAM, 0, fds) : pipe(fds)) != 0) return;
  struct sink s = {fds[0], 0, 0};
  pthread_t reader;
  pthread_create(&reader, NULL, drain_slowly, &s);
  FILE* out = fdopen(fds[1], "w");
  const int t0 = tick_count();
  produce(out);
  printf("  fclose: %d\n", fclose(out));
  pthread_join(reader, NULL);
  printf("  reader got %zu bytes, checksum %lx\n", s.bytes, s.sum);
  printf("  ticker ran while the writer waited: %s\n", ticked(t0));
  close(fds[0]);
}

static void test_write_errors(void) {
  puts("write errors:");
  int fds[2];
  make_pipe(fds);
  close(fds[0]);
  FILE* out = fdopen(fds[1], "w");
  fputs("nobody reads this\n", out);
  errno = 0;
  const int r = fflush(out);
  printf("  fflush to a pipe with no reader: %d, errno %s\n", r, error_name(errno));
  indicators(out);
  fclose(out);
  make_pipe(fds);
  FILE* in = fdopen(fds[0], "r");
  errno = 0;
  const int w = fputs("x", in);
  printf("  fputs to a stream opened for reading: %d, errno %s\n", w, error_name(errno));
  indicators(in);
  fclose(in);
  close(fds[1]);
}

/* Two threads read lines from one FILE; the lines arrive in three pieces. */
enum { shared_lines = 20 };
static FILE* shared;
static int whole_lines, lines_read;
static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;

static void* read_shared(void* arg) {
  (void)arg;
  char buf[64];
  while (fgets(buf, sizeof buf, shared) != NULL) {
    int n = -1, end = 0;
    const int whole = sscanf(buf, "line %d of the shared FILE%n", &n, &end) == 1 && buf[end] == '\n';
    pthread_mutex_lock(&count_lock);
    whole_lines += whole;
    ++lines_read;
    pthread_mutex_unlock(&count_lock);
  }
  return NULL;
}

static void* write_shared_pieces(void* arg) {
  const int fd = (int)(long)arg;
  for (int i = 0; i < shared_lines; ++i) {
    char line[64];
    const int n = snprintf(line, sizeof line, "line %d of the shared FILE\n", i);
    const int cut1 = n / 3, cut2 = 2 * n / 3;
    if (write(fd, line, (size_t)cut1) != cut1) perror("write");
    usleep(3000);
    if (write(fd, line + cut1, (size_t)(cut2 - cut1)) != cut2 - cut1) perror("write");
    usleep(3000);
    if (write(fd, line + cut2, (size_t)(n - cut2)) != n - cut2) perror("write");
  }
  close(fd);
  return NULL;
}

static void test_shared_reader(void) {
  puts("two threads calling fgets on one FILE while lines arrive in pieces:");
  int fds[2];
  make_pipe(fds);
  shared = fdopen(fds[0], "r");
  pthread_t r1, r2, w;
  pthread_create(&r1, NULL, read_shared, NULL);
  pthread_create(&r2, NULL, read_shared, NULL);
  pthread_create(&w, NULL, write_shared_pieces, (void*)(long)fds[1]);
  pthread_join(w, NULL);
  pthread_join(r1, NULL);
  pthread_join(r2, NULL);
  printf("  lines read whole: %d of %d (%d read)\n", whole_lines, shared_lines, lines_read);
  fclose(shared);
}

/* Two threads write long lines to one FILE on a pipe that a slow reader drains. */
enum { long_line = 3000, long_lines = 40 };

static void* write_shared(void* arg) {
  char line[long_line + 1];
  memset(line, *(const char*)arg, long_line);
  line[long_line - 1] = '\n';
  line[long_line] = '\0';
  for (int i = 0; i < long_lines; ++i) fputs(line, shared);
  return NULL;
}

static void* check_shared_lines(void* arg) {
  FILE* in = fdopen((int)(long)arg, "r");
  static char line[long_line + 8];
  int whole = 0, total = 0;
  while (fgets(line, sizeof line, in) != NULL) {
    const size_t n = strlen(line);
    int same = n == long_line && line[n - 1] == '\n';
    for (size_t i = 1; same && i + 1 < n; ++i) same = line[i] == line[0];
    whole += same;
    ++total;
    if (total % 8 == 0) usleep(2000);
  }
  fclose(in);
  printf("  lines read whole: %d of %d (%d read)\n", whole, 2 * long_lines, total);
  return NULL;
}

static void test_shared_writers(void) {
  puts("two threads calling fputs on one FILE of a pipe that fills up:");
  int fds[2];
  make_pipe(fds);
  shared = fdopen(fds[1], "w");
  pthread_t w1, w2, r;
  pthread_create(&r, NULL, check_shared_lines, (void*)(long)fds[0]);
  pthread_create(&w1, NULL, write_shared, "A");
  pthread_create(&w2, NULL, write_shared, "B");
  pthread_join(w1, NULL);
  pthread_join(w2, NULL);
  fclose(shared);
  pthread_join(r, NULL);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  /* stdout is a pipe to the test: fully buffered, as natively. */
  pthread_t tick;
  pthread_create(&tick, NULL, ticker, NULL);
  for (int socket = 0; socket < 2; ++socket) {
    test_fgets(socket);
    test_getc(socket);
    test_fread(socket);
    test_getline(socket);
    test_fscanf(socket);
  }
  test_fgets_unlocked_short();
  test_stdin();
  test_timeout();
  test_nonblocking();
  test_reset();
  test_buffering();
  test_full_pipe("fwrite of 300000 bytes", 0, produce_fwrite);
  test_full_pipe("fprintf of 20000 lines", 0, produce_fprintf);
  test_full_pipe("fputs, fputc and putc of 20000 lines", 1, produce_fputs);
  test_full_pipe("dprintf of 20000 lines", 1, produce_dprintf);
  test_write_errors();
  test_shared_reader();
  test_shared_writers();
  __atomic_store_n(&stop_ticking, 1, __ATOMIC_RELAXED);
  pthread_join(tick, NULL);
  puts("done");
  return 0;
}
