// file_test.cpp — grove::file: file calls that park the task, not the hub,
// with the blocking calls' results, offsets and errno. Run twice by ctest: with
// the hub's io_uring (the default) and with GROVE_FILE_IO=pool.
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <grove/file.hpp>
#include <grove/sleep.hpp>
#include <grove/task.hpp>
#include <grove/thread_pool.hpp>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif

#include "../support.hpp"

using namespace std::chrono_literals;
using grove_test::leak_check;

namespace {

// scratch is a file in a fresh temporary directory, removed with it.
struct scratch {
  std::string dir;
  std::string path;
  scratch() {
    char tmpl[] = "/tmp/grove-file-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    path = dir + "/data";
  }
  ~scratch() { (void)std::system(("rm -rf " + dir).c_str()); }
  scratch(const scratch&) = delete;
  scratch& operator=(const scratch&) = delete;
};

// word_at is the content of the pattern file: each 4-byte word holds its index.
std::uint32_t word_at(std::size_t offset) { return static_cast<std::uint32_t>(offset / 4); }

// write_pattern writes `bytes` of the pattern (plainly), then evicts the file
// from the page cache, so that reading it must go to the disk.
void write_pattern(const std::string& path, std::size_t bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  REQUIRE(fd >= 0);
  std::vector<std::uint32_t> chunk(1 << 16);
  for (std::size_t done = 0; done < bytes;) {
    const std::size_t n = std::min(bytes - done, chunk.size() * 4);
    for (std::size_t i = 0; i < n / 4; ++i) chunk[i] = word_at(done + i * 4);
    REQUIRE(::write(fd, chunk.data(), n) == static_cast<ssize_t>(n));
    done += n;
  }
  REQUIRE(::fsync(fd) == 0);
  REQUIRE(::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0);
  ::close(fd);
}

// cold_open writes a cold pattern file of `bytes` at s.path and opens it to read.
int cold_open(const scratch& s, std::size_t bytes) {
  write_pattern(s.path, bytes);
  const int fd = grove::file::open(s.path.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  return fd;
}

void evict(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  REQUIRE(::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0);
  ::close(fd);
}

bool matches_pattern(const char* data, std::size_t n, std::size_t offset) {
  for (std::size_t i = 0; i + 4 <= n; i += 4) {
    std::uint32_t w;
    std::memcpy(&w, data + i, 4);
    if (w != word_at(offset + i)) return false;
  }
  return true;
}

// expected_way: the setting's, but under valgrind (which cannot see the
// kernel write a buffer through a ring) always the pool.
const char* expected_way() {
#if __has_include(<valgrind/valgrind.h>)
  if (RUNNING_ON_VALGRIND) return "pool";
#endif
  const char* v = std::getenv("GROVE_FILE_IO");
  return v != nullptr && std::string_view(v) == "pool" ? "pool" : "io_uring";
}

}  // namespace

TEST_CASE_FIXTURE(leak_check, "grove::file: the hub completes waiting calls the way GROVE_FILE_IO says") {
  CHECK(std::string(grove::file::way()) == expected_way());
}

TEST_CASE_FIXTURE(leak_check,
                  "grove::file: eight tasks reading one cold file through a shared descriptor get every byte "
                  "once, and the offset advances by the file's size") {
  scratch s;
  constexpr std::size_t size = 4 << 20;
  const int fd = cold_open(s, size);
  std::vector<std::size_t> seen;  // offsets of the chunks read, found from their content
  bool all_match = true;
  std::vector<grove::task<void>> readers;
  for (int t = 0; t < 8; ++t) {
    readers.push_back(grove::spawn([&] {
      std::vector<char> buf(64 << 10);
      for (;;) {
        const ssize_t n = grove::file::read(fd, buf.data(), buf.size());
        REQUIRE(n >= 0);
        if (n == 0) return;
        std::uint32_t first;
        std::memcpy(&first, buf.data(), 4);
        const std::size_t at = std::size_t{first} * 4;
        all_match = all_match && matches_pattern(buf.data(), static_cast<std::size_t>(n), at);
        seen.push_back(at);
      }
    }));
  }
  for (auto& r : readers) r.join();
  CHECK(all_match);
  std::sort(seen.begin(), seen.end());
  CHECK(seen.size() == size / (64 << 10));
  CHECK(std::adjacent_find(seen.begin(), seen.end()) == seen.end());  // no chunk read twice
  CHECK(::lseek(fd, 0, SEEK_CUR) == static_cast<off_t>(size));
  ::close(fd);
}

TEST_CASE_FIXTURE(leak_check,
                  "grove::file: tasks reading one cold file through descriptors of their own each get all of it") {
  scratch s;
  constexpr std::size_t size = 2 << 20;
  write_pattern(s.path, size);
  int whole = 0;
  std::vector<grove::task<void>> readers;
  for (int t = 0; t < 6; ++t) {
    readers.push_back(grove::spawn([&, t] {
      const int fd = grove::file::open(s.path.c_str(), O_RDONLY);
      REQUIRE(fd >= 0);
      std::vector<char> buf(size);
      std::size_t got = 0;
      // Half read with read, half with pread at their own offsets.
      while (got < size) {
        const std::size_t want = std::min<std::size_t>(100'000, size - got);
        const ssize_t n = t % 2 == 0 ? grove::file::read(fd, buf.data() + got, want)
                                     : grove::file::pread(fd, buf.data() + got, want, static_cast<off_t>(got));
        REQUIRE(n > 0);
        got += static_cast<std::size_t>(n);
      }
      if (matches_pattern(buf.data(), size, 0)) ++whole;
      CHECK(grove::file::read(fd, buf.data(), 10) == (t % 2 == 0 ? 0 : 10));  // pread left the offset at 0
      ::close(fd);
    }));
  }
  for (auto& r : readers) r.join();
  CHECK(whole == 6);
}

TEST_CASE_FIXTURE(leak_check, "grove::file: O_APPEND writes from 50 tasks land whole, none lost or split") {
  scratch s;
  constexpr int tasks = 50;
  constexpr int records = 20;
  constexpr std::size_t len = 100;
  std::vector<grove::task<void>> writers;
  for (int t = 0; t < tasks; ++t) {
    writers.push_back(grove::spawn([&, t] {
      // Each its own descriptor; half the records through writev.
      const int fd = grove::file::open(s.path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      REQUIRE(fd >= 0);
      for (int r = 0; r < records; ++r) {
        char rec[len];
        std::memset(rec, 'a' + t % 26, len);
        std::snprintf(rec, 16, "%03d:%03d", t, r);
        rec[7] = '|';
        rec[len - 1] = '\n';
        if (r % 2 == 0) {
          REQUIRE(grove::file::write(fd, rec, len) == static_cast<ssize_t>(len));
        } else {
          const iovec two[2] = {{rec, 30}, {rec + 30, len - 30}};
          REQUIRE(grove::file::writev(fd, two, 2) == static_cast<ssize_t>(len));
        }
        if (r % 5 == 0) grove::sleep(0s);
      }
      REQUIRE(grove::file::fsync(fd) == 0);
      ::close(fd);
    }));
  }
  for (auto& w : writers) w.join();
  struct stat st {};
  REQUIRE(grove::file::stat(s.path.c_str(), &st) == 0);
  REQUIRE(st.st_size == static_cast<off_t>(tasks * records * len));
  std::vector<char> all(static_cast<std::size_t>(st.st_size));
  const int fd = grove::file::open(s.path.c_str(), O_RDONLY);
  REQUIRE(grove::file::pread(fd, all.data(), all.size(), 0) == st.st_size);
  ::close(fd);
  std::set<std::pair<int, int>> got;
  bool whole = true;
  for (std::size_t i = 0; i < all.size(); i += len) {
    int t = -1, r = -1;
    const std::string record(all.data() + i, len);  // sscanf needs a terminated string
    whole = whole && std::sscanf(record.c_str(), "%3d:%3d|", &t, &r) == 2 && all[i + len - 1] == '\n';
    for (std::size_t k = 8; k + 1 < len; ++k) whole = whole && all[i + k] == 'a' + t % 26;
    got.insert({t, r});
  }
  CHECK(whole);
  CHECK(got.size() == static_cast<std::size_t>(tasks * records));
}

TEST_CASE_FIXTURE(leak_check,
                  "grove::file: a 64 MiB read that must go to the disk leaves a 1 ms ticker running meanwhile") {
  scratch s;
  constexpr std::size_t size = 64 << 20;
  write_pattern(s.path, size);
  std::vector<char> buf(size);  // touched now: zeroing 64 MiB is the hub's own work
  bool done = false;
  int ticks = 0;
  auto longest = std::chrono::steady_clock::duration::zero();
  auto ticker = grove::spawn([&] {
    auto last = std::chrono::steady_clock::now();
    while (!done) {
      grove::sleep(1ms);
      const auto now = std::chrono::steady_clock::now();
      longest = std::max(longest, now - last);
      last = now;
      ++ticks;
    }
  });
  grove::sleep(5ms);  // the ticker runs
  const auto t0 = std::chrono::steady_clock::now();
  const int fd = grove::file::open(s.path.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  std::size_t got = 0;
  int calls = 0;
  while (got < size) {
    const ssize_t n = grove::file::read(fd, buf.data() + got, size - got);  // one call asks for all of it
    REQUIRE(n > 0);
    got += static_cast<std::size_t>(n);
    ++calls;
  }
  const auto took = std::chrono::steady_clock::now() - t0;
  const int ticks_during = ticks;
  done = true;
  ticker.join();
  ::close(fd);
  CHECK(matches_pattern(buf.data(), size, 0));
  CHECK(calls == 1);  // a read from disk is not cut short
  MESSAGE("cold 64 MiB read: ", std::chrono::duration<double, std::milli>(took).count(), " ms, ", ticks_during,
          " ticks, longest gap ", std::chrono::duration<double, std::milli>(longest).count(), " ms");
  // The read took tens of milliseconds or more; the ticker's longest gap stays
  // well below it (a stalled hub would show the whole read as one gap; under
  // valgrind, which runs one thread at a time, the gap is half the read).
  CHECK(longest < std::max<std::chrono::steady_clock::duration>(took * 3 / 4, 30ms));
  // And it ticked through the read (every 1 ms natively; a quarter of that is plenty).
  CHECK(ticks_during >= std::max<long>(3, std::chrono::duration_cast<std::chrono::milliseconds>(took).count() / 4));
}

TEST_CASE_FIXTURE(leak_check,
                  "grove::file: while a large read runs off the hub (io_uring's workers or the pool) the hub's thread "
                  "keeps to its CPU, threads started meanwhile do not inherit that, and the hub's thread has its own "
                  "CPU affinity back once the read is done") {
  cpu_set_t own;
  REQUIRE(::sched_getaffinity(0, sizeof own, &own) == 0);
  scratch s;
  constexpr std::size_t size = 32 << 20;
  write_pattern(s.path, size);
  std::vector<char> buf(size);
  bool done = false;
  int most_cpus = 0, fewest_cpus = CPU_SETSIZE;
  auto watcher = grove::spawn([&] {  // runs on the hub's thread while the read is in flight
    while (!done) {
      cpu_set_t now;
      REQUIRE(::sched_getaffinity(0, sizeof now, &now) == 0);
      most_cpus = std::max(most_cpus, CPU_COUNT(&now));
      fewest_cpus = std::min(fewest_cpus, CPU_COUNT(&now));
      grove::sleep(100us);
    }
  });
  // A thread the pool starts meanwhile has the hub thread's own affinity, not
  // its binding.
  int helper_cpus = 0;
  auto helper = grove::spawn([&] {
    while (!done && fewest_cpus != 1) grove::sleep(100us);
    if (done) return;
    helper_cpus = grove::run_in_thread([] {
      cpu_set_t mine;
      return ::sched_getaffinity(0, sizeof mine, &mine) == 0 ? CPU_COUNT(&mine) : -1;
    });
  });
  grove::sleep(1ms);
  const int fd = grove::file::open(s.path.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  const ssize_t n = grove::file::read(fd, buf.data(), size);
  done = true;
  watcher.join();
  helper.join();
  ::close(fd);
  if (helper_cpus != 0) CHECK(helper_cpus == CPU_COUNT(&own));
  CHECK(n == static_cast<ssize_t>(size));
  CHECK(matches_pattern(buf.data(), size, 0));
  cpu_set_t after;
  REQUIRE(::sched_getaffinity(0, sizeof after, &after) == 0);
  CHECK(CPU_EQUAL(&after, &own));
  CHECK(most_cpus == CPU_COUNT(&own));  // before the read began
  CHECK(fewest_cpus == 1);  // meanwhile the hub kept to one CPU (always so on a machine of one)
}

TEST_CASE_FIXTURE(leak_check, "grove::file: reads end short at end of file, and read 0 there, cached or cold") {
  scratch s;
  write_pattern(s.path, 10'000);
  const int fd = grove::file::open(s.path.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  char buf[8192];
  for (int round = 0; round < 2; ++round) {  // cold, then cached
    CHECK(grove::file::pread(fd, buf, sizeof buf, 8192) == 10'000 - 8192);
    CHECK(matches_pattern(buf, 10'000 - 8192, 8192));
    CHECK(grove::file::pread(fd, buf, sizeof buf, 10'000) == 0);
    CHECK(grove::file::pread(fd, buf, sizeof buf, 1 << 30) == 0);
    CHECK(::lseek(fd, 9000, SEEK_SET) == 9000);
    CHECK(grove::file::read(fd, buf, sizeof buf) == 1000);
    CHECK(grove::file::read(fd, buf, sizeof buf) == 0);
    CHECK(::lseek(fd, 0, SEEK_CUR) == 10'000);
    evict(s.path);
  }
  ::close(fd);
}

// failed_with: a call returned -1 with errno `want` (read before anything else runs).
bool failed_with(long result, int want) {
  const int err = errno;
  return result == -1 && err == want;
}

TEST_CASE_FIXTURE(leak_check, "grove::file: bad calls fail with the errno of the blocking call, errno kept on success") {
  scratch s;
  write_pattern(s.path, 4096);
  char buf[64];
  CHECK(failed_with(grove::file::read(-1, buf, sizeof buf), EBADF));
  const int dir = grove::file::open(s.dir.c_str(), O_RDONLY | O_DIRECTORY);
  REQUIRE(dir >= 0);
  CHECK(failed_with(grove::file::read(dir, buf, sizeof buf), EISDIR));
  ::close(dir);
  const int ro = grove::file::open(s.path.c_str(), O_RDONLY);
  CHECK(failed_with(grove::file::write(ro, "x", 1), EBADF));
  CHECK(failed_with(grove::file::pread(ro, buf, sizeof buf, -1), EINVAL));
  errno = 1234;
  const ssize_t n = grove::file::pread(ro, buf, sizeof buf, 0);
  const int kept = errno;
  CHECK(n == static_cast<ssize_t>(sizeof buf));
  CHECK(kept == 1234);
  ::close(ro);
  CHECK(failed_with(grove::file::open((s.dir + "/none/such").c_str(), O_RDONLY), ENOENT));
  CHECK(failed_with(grove::file::open((s.path + "/under-a-file").c_str(), O_RDONLY), ENOTDIR));
  CHECK(failed_with(grove::file::open(s.path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600), EEXIST));
  struct stat st {};
  CHECK(failed_with(grove::file::stat((s.dir + "/none").c_str(), &st), ENOENT));
  CHECK(failed_with(grove::file::fsync(-1), EBADF));
  CHECK(failed_with(grove::file::unlink((s.dir + "/none").c_str()), ENOENT));
  CHECK(failed_with(grove::file::rename((s.dir + "/none").c_str(), (s.dir + "/other").c_str()), ENOENT));
}

TEST_CASE_FIXTURE(leak_check, "grove::file: a /proc file reads as with the plain call") {
  const int fd = grove::file::open("/proc/self/status", O_RDONLY);
  REQUIRE(fd >= 0);
  std::string text;
  char buf[512];
  for (;;) {
    const ssize_t n = grove::file::read(fd, buf, sizeof buf);
    REQUIRE(n >= 0);
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  CHECK(text.find("Pid:\t" + std::to_string(::getpid()) + "\n") != std::string::npos);
}

TEST_CASE_FIXTURE(leak_check,
                  "grove::file: open with O_CREAT and O_TRUNC, stat, lstat, fstatat, statx, ftruncate, fallocate, "
                  "copy_file_range, sendfile, rename and unlink do what the plain calls do") {
  scratch s;
  const std::string a = s.dir + "/a", b = s.dir + "/b", c = s.dir + "/c", link = s.dir + "/link";
  int fd = grove::file::open(a.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0640);
  REQUIRE(fd >= 0);
  CHECK(grove::file::write(fd, "hello, file", 11) == 11);
  CHECK(grove::file::fdatasync(fd) == 0);
  CHECK(grove::file::ftruncate(fd, 5) == 0);
  CHECK(grove::file::fallocate(fd, 0, 0, 1 << 16) == 0);
  struct stat st {};
  CHECK(grove::file::stat(a.c_str(), &st) == 0);
  CHECK(st.st_size == 1 << 16);
  CHECK((st.st_mode & 0777) == 0640);
  CHECK(grove::file::ftruncate(fd, 5) == 0);
  REQUIRE(::symlink(a.c_str(), link.c_str()) == 0);
  CHECK(grove::file::lstat(link.c_str(), &st) == 0);
  CHECK(S_ISLNK(st.st_mode));
  CHECK(grove::file::fstatat(AT_FDCWD, link.c_str(), &st, 0) == 0);
  CHECK(st.st_size == 5);
  struct statx sx {};
  CHECK(grove::file::statx(AT_FDCWD, a.c_str(), 0, STATX_SIZE, &sx) == 0);
  CHECK(sx.stx_size == 5);
  const int out = grove::file::open(b.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  REQUIRE(out >= 0);
  off_t from = 0;
  CHECK(grove::file::copy_file_range(fd, &from, out, nullptr, 5, 0) == 5);
  CHECK(from == 5);
  CHECK(grove::file::sendfile(out, fd, nullptr, 100) == 0);  // fd's own offset is at 11: past the end
  CHECK(::lseek(fd, 0, SEEK_SET) == 0);
  CHECK(grove::file::sendfile(out, fd, nullptr, 100) == 5);
  char buf[16] = {};
  CHECK(grove::file::pread(out, buf, sizeof buf, 0) == 10);
  CHECK(std::string(buf, 10) == "hellohello");
  ::close(out);
  ::close(fd);
  CHECK(grove::file::rename(b.c_str(), c.c_str()) == 0);
  CHECK(grove::file::stat(b.c_str(), &st) == -1);
  CHECK(grove::file::stat(c.c_str(), &st) == 0);
  CHECK(grove::file::unlink(c.c_str()) == 0);
  CHECK(failed_with(grove::file::stat(c.c_str(), &st), ENOENT));
}

TEST_CASE_FIXTURE(leak_check,
                  "grove::file: a task killed while its read waits for the disk dies once the read is done, "
                  "and its buffer is never written after it is gone") {
  scratch s;
  constexpr std::size_t size = 32 << 20;
  const int fd = cold_open(s, size);
  ssize_t got = -2;
  auto reader = grove::spawn([&] {
    std::vector<char> buf(size);
    got = grove::file::pread(fd, buf.data(), size, 0);
    grove::sleep(10s);  // the kill lands here, at the next blocking call
  });
  grove::sleep(0s);  // the reader starts and parks in its read
  CHECK(reader.kill(20s));
  CHECK(reader.killed());
  CHECK(got == static_cast<ssize_t>(size));  // the read finished and returned before the task died
  ::close(fd);
}

TEST_CASE("grove::file: outside a task's hub (a plain thread) the calls are the plain ones") {
  scratch s;
  write_pattern(s.path, 8192);
  ssize_t n = -2;
  std::thread([&] {
    const int fd = grove::file::open(s.path.c_str(), O_RDONLY);
    char buf[8192];
    n = grove::file::read(fd, buf, sizeof buf);
    ::close(fd);
  }).join();
  CHECK(n == 8192);
}

TEST_CASE_FIXTURE(leak_check,
                  "grove::file: a child of fork completes its own cold reads, and the parent's go on after it") {
  scratch s;
  constexpr std::size_t size = 1 << 20;
  write_pattern(s.path, size);
  std::vector<char> buf(size);
  const int fd = grove::file::open(s.path.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  REQUIRE(grove::file::pread(fd, buf.data(), 4096, 0) == 4096);  // the hub's way off it is made
  evict(s.path);
  int verdict[2];
  REQUIRE(::pipe(verdict) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    const ssize_t n = grove::file::pread(fd, buf.data(), size, 0);
    const char ok = n == static_cast<ssize_t>(size) && matches_pattern(buf.data(), size, 0) ? 'y' : 'n';
    (void)::write(verdict[1], &ok, 1);
    ::_exit(0);
  }
  ::close(verdict[1]);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));  // (under valgrind its status is valgrind's verdict on the child's leftovers)
  char ok = 0;
  CHECK(::read(verdict[0], &ok, 1) == 1);
  CHECK(ok == 'y');
  ::close(verdict[0]);
  evict(s.path);
  CHECK(grove::file::pread(fd, buf.data(), size, 0) == static_cast<ssize_t>(size));
  CHECK(matches_pattern(buf.data(), size, 0));
  ::close(fd);
}
