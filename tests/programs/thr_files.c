/* thr_files.c — pthreads sharing files, in plain blocking style:
 *   - 8 threads read one cold file through one shared descriptor (its offset
 *     shared): every 64 KiB chunk is read by exactly one of them, whole, and
 *     the offset ends at the file's size;
 *   - 4 threads read it through descriptors of their own, half with read and
 *     half with pread: each gets all of it;
 *   - 50 threads append 20 records of 100 bytes each through descriptors of
 *     their own opened with O_APPEND: every record lands whole.
 * Under grove-run the threads are green threads, and the reads of the cold
 * file wait off the hub; the output is the same as natively.
 *
 *   thr_files DIR   (a scratch directory) */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { file_size = 8 << 20, chunk = 64 << 10, shared_readers = 8, own_readers = 4, writers = 50, records = 20,
       record_len = 100 };

static char data_path[4096], log_path[4096];
static int shared_fd;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int chunk_seen[file_size / chunk];
static int bad_chunks, own_whole;

/* word i of the file holds i */
static int pattern_ok(const char* p, size_t n, size_t offset) {
  for (size_t i = 0; i + 4 <= n; i += 4) {
    uint32_t w;
    memcpy(&w, p + i, 4);
    if (w != (uint32_t)((offset + i) / 4)) return 0;
  }
  return 1;
}

static void make_cold_file(void) {
  int fd = open(data_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  uint32_t* block = malloc(chunk);
  for (size_t done = 0; done < file_size; done += chunk) {
    for (size_t i = 0; i < chunk / 4; i++) block[i] = (uint32_t)((done / 4) + i);
    if (write(fd, block, chunk) != chunk) exit(1);
  }
  free(block);
  fsync(fd);
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  close(fd);
}

static void* shared_reader(void* arg) {
  (void)arg;
  char* buf = malloc(chunk);
  for (;;) {
    ssize_t n = read(shared_fd, buf, chunk);
    if (n <= 0) break;
    uint32_t first;
    memcpy(&first, buf, 4);
    size_t at = (size_t)first * 4;
    pthread_mutex_lock(&lock);
    if (n != chunk || at % chunk != 0 || at >= file_size || !pattern_ok(buf, (size_t)n, at)) {
      bad_chunks++;
    } else {
      chunk_seen[at / chunk]++;
    }
    pthread_mutex_unlock(&lock);
  }
  free(buf);
  return NULL;
}

static void* own_reader(void* arg) {
  int positioned = (int)(intptr_t)arg % 2;
  int fd = open(data_path, O_RDONLY);
  char* buf = malloc(file_size);
  size_t got = 0;
  while (got < file_size) {
    ssize_t n = positioned ? pread(fd, buf + got, 100000 < file_size - got ? 100000 : file_size - got, (off_t)got)
                           : read(fd, buf + got, 100000 < file_size - got ? 100000 : file_size - got);
    if (n <= 0) break;
    got += (size_t)n;
  }
  int whole = got == file_size && pattern_ok(buf, file_size, 0);
  pthread_mutex_lock(&lock);
  own_whole += whole;
  pthread_mutex_unlock(&lock);
  free(buf);
  close(fd);
  return NULL;
}

static void* appender(void* arg) {
  int t = (int)(intptr_t)arg;
  int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
  for (int r = 0; r < records; r++) {
    char rec[record_len];
    memset(rec, 'a' + t % 26, sizeof rec);
    int len = snprintf(rec, sizeof rec, "%03d:%03d|", t, r);
    rec[len] = 'a' + t % 26; /* snprintf's terminator */
    rec[record_len - 1] = '\n';
    if (write(fd, rec, sizeof rec) != record_len) exit(1);
    if (r % 4 == 0) usleep(100);
  }
  close(fd);
  return NULL;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: thr_files DIR\n");
    return 2;
  }
  snprintf(data_path, sizeof data_path, "%s/data", argv[1]);
  snprintf(log_path, sizeof log_path, "%s/log", argv[1]);
  unlink(log_path);
  make_cold_file();

  pthread_t t[writers];
  shared_fd = open(data_path, O_RDONLY);
  for (int i = 0; i < shared_readers; i++) pthread_create(&t[i], NULL, shared_reader, NULL);
  for (int i = 0; i < shared_readers; i++) pthread_join(t[i], NULL);
  int once = 0;
  for (int i = 0; i < file_size / chunk; i++) once += chunk_seen[i] == 1;
  printf("shared descriptor: %d of %d chunks read exactly once, %d bad, offset at the end: %s\n", once,
         file_size / chunk, bad_chunks, lseek(shared_fd, 0, SEEK_CUR) == file_size ? "the size" : "wrong");
  close(shared_fd);

  posix_fadvise(open(data_path, O_RDONLY), 0, 0, POSIX_FADV_DONTNEED); /* cold again (the descriptor leaks) */
  for (int i = 0; i < own_readers; i++) pthread_create(&t[i], NULL, own_reader, (void*)(intptr_t)i);
  for (int i = 0; i < own_readers; i++) pthread_join(t[i], NULL);
  printf("own descriptors: %d of %d readers got the whole file\n", own_whole, own_readers);

  for (int i = 0; i < writers; i++) pthread_create(&t[i], NULL, appender, (void*)(intptr_t)i);
  for (int i = 0; i < writers; i++) pthread_join(t[i], NULL);
  struct stat st;
  stat(log_path, &st);
  char* all = malloc((size_t)st.st_size + 1);
  int fd = open(log_path, O_RDONLY);
  ssize_t n = pread(fd, all, (size_t)st.st_size, 0);
  close(fd);
  int whole = 0, seen[writers][records];
  memset(seen, 0, sizeof seen);
  for (ssize_t i = 0; i + record_len <= n; i += record_len) {
    int w = -1, r = -1;
    char rec[record_len + 1];
    memcpy(rec, all + i, record_len);
    rec[record_len] = '\0';
    if (sscanf(rec, "%3d:%3d|", &w, &r) != 2 || w < 0 || w >= writers || r < 0 || r >= records) continue;
    int ok = rec[record_len - 1] == '\n';
    for (int k = 8; k < record_len - 1; k++) ok = ok && rec[k] == 'a' + w % 26;
    if (ok && !seen[w][r]) {
      seen[w][r] = 1;
      whole++;
    }
  }
  free(all);
  printf("O_APPEND: %ld bytes, %d of %d records whole\n", (long)st.st_size, whole, writers * records);
  return 0;
}
