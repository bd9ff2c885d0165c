/* thr_stdio_files.c — stdio on cold files beside a thread that keeps running,
 * in plain blocking style.
 *
 * One thread counts: it adds one to a counter and calls sched_yield, until
 * told to stop. The main thread reads files with stdio, each pass on a file
 * just evicted from the page cache (fsync, then POSIX_FADV_DONTNEED), and
 * notes whether the counter moved during one of its calls:
 *   fgets    a 4 MiB file of numbered lines, line by line;
 *   getline  the same;
 *   fread    the same in 1 MiB calls;
 *   getc     its first 256 KiB, byte by byte;
 *   fscanf   a file of 100,000 numbers, "%d" at a time;
 * then, on the cached file, fseek/ftell/ungetc/fread mixed with fgets; and a
 * stream that is read and written ("w+", "a+"), read on after EOF once more
 * was appended, and a write-only one read.
 *
 * Natively the counting thread runs on another CPU, or while the reader
 * waits for the disk. Under grove-run --hubs=1 both are green threads of one
 * hub: the counter moves during a call only if the read that misses the page
 * cache parks the reader instead of blocking the hub. The output (what was
 * read, and "yes" for each pass) is the same either way.
 *
 *   thr_stdio_files DIR   (a scratch directory) */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { lines = 40000, numbers = 100000 };

static atomic_ulong ticks;
static atomic_int stop;

static void* counter(void* arg) {
  (void)arg;
  while (!atomic_load(&stop)) {
    atomic_fetch_add(&ticks, 1);
    sched_yield();
  }
  return NULL;
}

static void evict(const char* path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) exit(1);
  fdatasync(fd);
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  close(fd);
}

static FILE* cold(const char* path) {
  evict(path);
  FILE* f = fopen(path, "r");
  if (f == NULL) exit(1);
  return f;
}

static uint32_t mix(uint32_t h, const char* s, size_t n) {
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

static const char* yes(int moved) { return moved ? "yes" : "no"; }

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: thr_stdio_files DIR\n");
    return 2;
  }
  char text[4096], nums[4096];
  snprintf(text, sizeof text, "%s/lines.txt", argv[1]);
  snprintf(nums, sizeof nums, "%s/numbers.txt", argv[1]);
  FILE* out = fopen(text, "w");
  for (int i = 0; i < lines; i++) {
    fprintf(out, "line %06d: %.*s\n", i, 80 + i % 17, "the quick brown fox jumps over the lazy dog, the quick brown fox "
                                                     "jumps over the lazy dog, once more");
  }
  fclose(out);
  out = fopen(nums, "w");
  for (int i = 0; i < numbers; i++) fprintf(out, "%d\n", i * 7 - 3000);
  fclose(out);

  pthread_t t;
  if (pthread_create(&t, NULL, counter, NULL) != 0) return 1;
  while (atomic_load(&ticks) == 0) sched_yield();

  /* fgets */
  FILE* f = cold(text);
  char line[256];
  int count = 0, moved = 0;
  uint32_t h = 2166136261u;
  for (;;) {
    const unsigned long before = atomic_load(&ticks);
    char* got = fgets(line, sizeof line, f);
    moved |= atomic_load(&ticks) != before;
    if (got == NULL) break;
    h = mix(h, line, strlen(line));
    count++;
  }
  printf("fgets: %d lines, hash %08x, eof %d, the other thread ran during a call: %s\n", count, h, feof(f) != 0,
         yes(moved));
  fclose(f);

  /* getline */
  f = cold(text);
  char* buf = NULL;
  size_t cap = 0;
  ssize_t n;
  count = moved = 0;
  h = 2166136261u;
  for (;;) {
    const unsigned long before = atomic_load(&ticks);
    n = getline(&buf, &cap, f);
    moved |= atomic_load(&ticks) != before;
    if (n < 0) break;
    h = mix(h, buf, (size_t)n);
    count++;
  }
  free(buf);
  printf("getline: %d lines, hash %08x, the other thread ran during a call: %s\n", count, h, yes(moved));
  fclose(f);

  /* fread */
  f = cold(text);
  char* big = malloc(1 << 20);
  size_t total = 0;
  moved = 0;
  h = 2166136261u;
  for (;;) {
    const unsigned long before = atomic_load(&ticks);
    size_t got = fread(big, 1, 1 << 20, f);
    moved |= atomic_load(&ticks) != before;
    h = mix(h, big, got);
    total += got;
    if (got < (1 << 20)) break;
  }
  printf("fread: %zu bytes, hash %08x, eof %d, ftell %ld, the other thread ran during a call: %s\n", total, h,
         feof(f) != 0, ftell(f), yes(moved));
  fclose(f);

  /* getc */
  f = cold(text);
  moved = 0;
  h = 2166136261u;
  for (int i = 0; i < 256 << 10; i++) {
    const unsigned long before = atomic_load(&ticks);
    const int c = getc(f);
    moved |= atomic_load(&ticks) != before;
    const char ch = (char)c;
    h = mix(h, &ch, 1);
  }
  printf("getc: hash %08x, ftell %ld, the other thread ran during a call: %s\n", h, ftell(f), yes(moved));
  fclose(f);

  /* fscanf */
  f = cold(nums);
  long sum = 0;
  int x;
  count = moved = 0;
  for (;;) {
    const unsigned long before = atomic_load(&ticks);
    const int r = fscanf(f, "%d", &x);
    moved |= atomic_load(&ticks) != before;
    if (r != 1) break;
    sum += x;
    count++;
  }
  printf("fscanf: %d numbers, sum %ld, eof %d, the other thread ran during a call: %s\n", count, sum, feof(f) != 0,
         yes(moved));
  fclose(f);

  /* positions, on the cached file */
  f = fopen(text, "r");
  fseek(f, 100000, SEEK_SET);
  if (fgets(line, sizeof line, f) == NULL) return 1;
  printf("after fseek: \"%.20s\", ftell %ld\n", line, ftell(f));
  const int c = getc(f);
  ungetc(c, f);
  printf("ungetc: ftell %ld, ", ftell(f));
  const size_t got = fread(big, 1, 70000, f);
  printf("then fread %zu bytes, ftell %ld, first \"%.11s\"\n", got, ftell(f), big);
  rewind(f);
  if (fgets(line, sizeof line, f) == NULL) return 1;
  printf("after rewind: \"%.20s\", ftell %ld\n", line, ftell(f));
  fclose(f);

  /* reading and writing one stream, and reading on after EOF */
  char rw_path[4200];
  snprintf(rw_path, sizeof rw_path, "%s/rw.txt", argv[1]);
  f = fopen(rw_path, "w+");
  for (int i = 0; i < 2000; i++) fprintf(f, "record %04d\n", i);
  fseek(f, 0, SEEK_SET);
  if (fgets(line, sizeof line, f) == NULL) return 1;
  printf("w+: first \"%.11s\", ftell %ld", line, ftell(f));
  fseek(f, 0, SEEK_CUR);
  fputs("RECORD 0001\n", f);
  fseek(f, 12000, SEEK_SET);
  const size_t mid = fread(big, 1, 100, f);
  printf(", fread at 12000: %zu \"%.11s\"", mid, big);
  rewind(f);
  h = 2166136261u;
  count = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    h = mix(h, line, strlen(line));
    count++;
  }
  printf(", %d lines, hash %08x, eof %d\n", count, h, feof(f) != 0);
  FILE* appender = fopen(rw_path, "a");
  fputs("one more\n", appender);
  fflush(appender);
  const int after_eof = getc(f); /* EOF is sticky */
  clearerr(f);
  const char* more = fgets(line, sizeof line, f);
  printf("after EOF: getc %d, then fgets \"%.8s\"\n", after_eof, more != NULL ? line : "(null)");
  fclose(appender);
  fclose(f);
  f = fopen(rw_path, "a+");
  fputs("appended\n", f);
  rewind(f);
  if (fgets(line, sizeof line, f) == NULL) return 1;
  fseek(f, -9, SEEK_END);
  const int got_last = fgets(line + 100, 100, f) != NULL;
  printf("a+: first \"%.11s\", last \"%.8s\" %d, ftell %ld\n", line, line + 100, got_last, ftell(f));
  fclose(f);
  f = fopen(rw_path, "w");
  const int from_write_only = getc(f);
  printf("reading a write-only stream: %d, error %d\n", from_write_only, ferror(f) != 0);
  fclose(f);
  unlink(rw_path);
  free(big);

  atomic_store(&stop, 1);
  pthread_join(t, NULL);
  unlink(text);
  unlink(nums);
  return 0;
}
