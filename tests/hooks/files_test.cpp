// files_test.cpp — the hooks on regular files in link mode: plain libc calls
// (read, pread, write, open, stat, fsync...) in tasks go through grove::file,
// so a read that waits for the disk parks the task, not the hub, and every
// result and errno is what the same call gives natively (on a thread with no hub).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "hooks_support.hpp"

using namespace std::chrono_literals;
using grove_test::leak_check;
using grove_test::natively;

namespace {

struct scratch_dir {
  std::string dir;
  scratch_dir() {
    char tmpl[] = "/tmp/grove-hooked-files-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
  }
  ~scratch_dir() { (void)std::system(("rm -rf " + dir).c_str()); }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
};

// cold_file writes `bytes` of a counting pattern (bytes[i] = i % 251), syncs
// it and drops it from the page cache.
void cold_file(const std::string& path, std::size_t bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  REQUIRE(fd >= 0);
  std::vector<char> chunk(1 << 20);
  for (std::size_t done = 0; done < bytes;) {
    const std::size_t n = std::min(bytes - done, chunk.size());
    for (std::size_t i = 0; i < n; ++i) chunk[i] = static_cast<char>((done + i) % 251);
    REQUIRE(::write(fd, chunk.data(), n) == static_cast<ssize_t>(n));
    done += n;
  }
  REQUIRE(::fsync(fd) == 0);
  REQUIRE(::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0);
  ::close(fd);
}

bool counts_from(const char* p, std::size_t n, std::size_t offset) {
  for (std::size_t i = 0; i < n; ++i)
    if (p[i] != static_cast<char>((offset + i) % 251)) return false;
  return true;
}

struct outcome {
  long result = 0;
  int err = 0;
  bool operator==(const outcome&) const = default;
};
template <class F>
outcome call(F f) {
  errno = 0;
  const long r = f();
  return {r, r < 0 ? errno : 0};
}

}  // namespace

TEST_CASE_FIXTURE(leak_check,
                  "hooked read of a cold 32 MiB file in a task leaves a 1 ms ticker running, and reads it whole") {
  scratch_dir s;
  const std::string path = s.dir + "/cold";
  constexpr std::size_t size = 32 << 20;
  cold_file(path, size);
  std::vector<char> buf(size);
  bool done = false;
  int ticks = 0;
  auto ticker = grove::spawn([&] {
    while (!done) {
      grove::sleep(1ms);
      ++ticks;
    }
  });
  grove::sleep(3ms);
  const int before = ticks;
  const auto t0 = std::chrono::steady_clock::now();
  const int fd = ::open(path.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  const ssize_t n = ::read(fd, buf.data(), size);  // one call: natively it returns all of it
  const auto took = std::chrono::steady_clock::now() - t0;
  const int during = ticks - before;
  ::close(fd);
  done = true;
  ticker.join();
  CHECK(n == static_cast<ssize_t>(size));
  CHECK(counts_from(buf.data(), size, 0));
  MESSAGE("cold 32 MiB hooked read: ", std::chrono::duration<double, std::milli>(took).count(), " ms, ", during,
          " ticks meanwhile");
  // A read that held the hub would leave no tick in between.
  CHECK(during >= std::max<long>(1, std::chrono::duration_cast<std::chrono::milliseconds>(took).count() / 8));
}

TEST_CASE_FIXTURE(leak_check,
                  "hooked reads by 8 tasks through one shared descriptor get every byte once, as threads do natively") {
  scratch_dir s;
  const std::string path = s.dir + "/shared";
  constexpr std::size_t size = 2 << 20, chunk = 32 << 10;
  cold_file(path, size);
  const int fd = ::open(path.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  std::vector<std::size_t> starts;
  bool consistent = true;
  std::vector<grove::task<void>> readers;
  for (int t = 0; t < 8; ++t) {
    readers.push_back(grove::spawn([&] {
      std::vector<char> buf(chunk);
      for (;;) {
        const ssize_t n = ::read(fd, buf.data(), buf.size());
        REQUIRE(n >= 0);
        if (n == 0) return;
        // Which offset it came from: the pattern repeats every 251 bytes, so
        // find it among the chunk-aligned offsets.
        std::size_t at = size;
        for (std::size_t o = 0; o < size; o += chunk) {
          if (counts_from(buf.data(), 64, o) && counts_from(buf.data(), static_cast<std::size_t>(n), o)) {
            at = o;
            break;
          }
        }
        consistent = consistent && at != size;
        starts.push_back(at);
      }
    }));
  }
  for (auto& r : readers) r.join();
  CHECK(consistent);
  CHECK(starts.size() == size / chunk);
  CHECK(::lseek(fd, 0, SEEK_CUR) == static_cast<off_t>(size));
  ::close(fd);
}

TEST_CASE_FIXTURE(leak_check, "hooked O_APPEND writes from 50 tasks, each with its own descriptor, land whole") {
  scratch_dir s;
  const std::string path = s.dir + "/log";
  std::vector<grove::task<void>> writers;
  for (int t = 0; t < 50; ++t) {
    writers.push_back(grove::spawn([&, t] {
      const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      REQUIRE(fd >= 0);
      for (int r = 0; r < 10; ++r) {
        std::string line = "task " + std::to_string(t) + " record " + std::to_string(r);
        line.resize(63, '.');
        line += '\n';
        REQUIRE(::write(fd, line.data(), line.size()) == 64);
        grove::sleep(0s);
      }
      REQUIRE(::fdatasync(fd) == 0);
      ::close(fd);
    }));
  }
  for (auto& w : writers) w.join();
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK(st.st_size == 50 * 10 * 64);
  std::vector<char> all(static_cast<std::size_t>(st.st_size));
  const int fd = ::open(path.c_str(), O_RDONLY);
  REQUIRE(::pread(fd, all.data(), all.size(), 0) == st.st_size);
  ::close(fd);
  bool whole = true;
  for (std::size_t i = 0; i < all.size(); i += 64) {
    whole = whole && std::strncmp(all.data() + i, "task ", 5) == 0 && all[i + 63] == '\n';
  }
  CHECK(whole);
}

TEST_CASE_FIXTURE(leak_check,
                  "hooked file calls in a task return what they return natively: EOF, EBADF, EISDIR, ENOENT, "
                  "EEXIST, a /proc file") {
  scratch_dir s;
  const std::string file = s.dir + "/f", missing = s.dir + "/missing/x";
  cold_file(file, 10'000);
  auto run = [&] {
    std::vector<outcome> o;
    char buf[8192];
    const int fd = ::open(file.c_str(), O_RDONLY);
    o.push_back({fd >= 0 ? 1 : -1, fd >= 0 ? 0 : errno});
    o.push_back(call([&] { return ::pread(fd, buf, sizeof buf, 8192); }));   // short at the end: 1808
    o.push_back(call([&] { return ::pread(fd, buf, sizeof buf, 10'000); }));  // 0 at EOF
    o.push_back(call([&] { return ::pread(fd, buf, sizeof buf, -1); }));      // EINVAL
    o.push_back(call([&] { return ::write(fd, "x", 1); }));                  // EBADF: read-only
    o.push_back(call([&] { return ::lseek(fd, 9000, SEEK_SET); }));
    o.push_back(call([&] { return ::read(fd, buf, sizeof buf); }));  // 1000
    o.push_back(call([&] { return ::read(fd, buf, sizeof buf); }));  // 0
    ::close(fd);
    o.push_back(call([&] { return ::read(fd, buf, sizeof buf); }));  // EBADF: closed
    const int dir = ::open(s.dir.c_str(), O_RDONLY | O_DIRECTORY);
    o.push_back(call([&] { return ::read(dir, buf, sizeof buf); }));  // EISDIR
    o.push_back(call([&] { return ::fsync(dir); }));
    ::close(dir);
    o.push_back(call([&] { return ::open(missing.c_str(), O_RDONLY); }));                // ENOENT
    o.push_back(call([&] { return ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600); }));  // EEXIST
    struct stat st {};
    o.push_back(call([&] { return ::stat(missing.c_str(), &st); }));  // ENOENT
    o.push_back(call([&] { return ::stat(file.c_str(), &st) == 0 ? static_cast<long>(st.st_size) : -1L; }));
    o.push_back(call([&] { return ::unlink(missing.c_str()); }));  // ENOENT
    const int proc = ::open("/proc/self/stat", O_RDONLY);
    o.push_back(call([&] { return ::read(proc, buf, sizeof buf) > 0 ? 1L : -1L; }));
    ::close(proc);
    return o;
  };
  const std::vector<outcome> native = natively(run);
  std::vector<outcome> hooked;
  grove::spawn([&] { hooked = run(); }).join();
  REQUIRE(native.size() == hooked.size());
  for (std::size_t i = 0; i < native.size(); ++i) {
    CAPTURE(i);
    CHECK(hooked[i].result == native[i].result);
    CHECK(hooked[i].err == native[i].err);
  }
  CHECK(native[1].result == 1808);
  CHECK(native[6].result == 1000);
  CHECK(native[8].err == EBADF);
  CHECK(native[9].err == EISDIR);
}

namespace {

// stdio_passes reads path with stdio, a pass per way (fgets lines; fread in
// 1 MiB calls; getc for 256 KiB; fscanf of hex words; fgets on a line-buffered
// stream), evicting it first when
// cold, and describes what each read. With a counter that another task
// advances, `moved` counts the passes in which it moved during a call.
struct stdio_result {
  std::string read;
  int moved = 0;
};
stdio_result stdio_passes(const std::string& path, bool cold, const long* counter) {
  stdio_result r;
  auto mark = [&] { return counter != nullptr ? *counter : 0; };
  auto moved_since = [&](long before) { return counter != nullptr && *counter != before; };
  auto open_cold = [&] {
    if (cold) {
      const int fd = ::open(path.c_str(), O_RDONLY);
      (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
      ::close(fd);
    }
    return std::fopen(path.c_str(), "r");
  };
  std::uint64_t sum = 0;
  bool moved = false;
  // fgets_pass reads f line by line, noting whether the counter moved.
  auto fgets_pass = [&](FILE* f) {
    char line[300];
    int lines = 0;
    moved = false;
    for (;;) {
      const long before = mark();
      char* got = std::fgets(line, sizeof line, f);
      moved = moved_since(before) || moved;
      if (got == nullptr) break;
      ++lines;
      for (const char* p = line; *p != '\0'; ++p) sum = sum * 31 + static_cast<unsigned char>(*p);
    }
    r.moved += moved;
    return std::to_string(lines) + " " + std::to_string(sum);
  };
  FILE* f = open_cold();
  r.read += "fgets " + fgets_pass(f) + " eof " + std::to_string(std::feof(f)) + "\n";
  std::fclose(f);

  f = open_cold();
  std::vector<char> big(1 << 20);
  std::size_t total = 0;
  moved = false;
  for (;;) {
    const long before = mark();
    const std::size_t got = std::fread(big.data(), 1, big.size(), f);
    moved = moved_since(before) || moved;
    for (std::size_t i = 0; i < got; ++i) sum = sum * 31 + static_cast<unsigned char>(big[i]);
    total += got;
    if (got < big.size()) break;
  }
  r.read +=
      "fread " + std::to_string(total) + " " + std::to_string(sum) + " ftell " + std::to_string(std::ftell(f)) + "\n";
  r.moved += moved;
  std::fclose(f);

  f = open_cold();
  moved = false;
  for (int i = 0; i < (256 << 10); ++i) {
    const long before = mark();
    const int c = std::getc(f);
    moved = moved_since(before) || moved;
    sum = sum * 31 + static_cast<unsigned>(c);
  }
  r.read += "getc " + std::to_string(sum) + " ftell " + std::to_string(std::ftell(f)) + "\n";
  r.moved += moved;
  std::fclose(f);

  f = open_cold();
  moved = false;
  unsigned word = 0;
  int words = 0;
  for (;;) {
    const long before = mark();
    const int n = std::fscanf(f, "%x", &word);
    moved = moved_since(before) || moved;
    if (n != 1) break;
    ++words;
    sum += word;
  }
  r.read += "fscanf " + std::to_string(words) + " " + std::to_string(sum) + "\n";
  r.moved += moved;
  std::fclose(f);

  // Line-buffered: glibc refills it itself (after flushing stdout), once the
  // hooks have the page cache hold the block.
  f = open_cold();
  std::setvbuf(f, nullptr, _IOLBF, 4096);
  r.read += "line-buffered fgets " + fgets_pass(f) + "\n";
  std::fclose(f);
  return r;
}

}  // namespace

TEST_CASE_FIXTURE(
    leak_check,
    "stdio reads of a cold file in a task (fgets, fread, getc, fscanf, line-buffered) park the task while the disk "
    "reads, another task runs during the call, and each reads what it reads on a thread with no hub") {
  scratch_dir s;
  const std::string path = s.dir + "/words";
  {
    FILE* out = std::fopen(path.c_str(), "w");
    REQUIRE(out != nullptr);
    for (unsigned i = 0; i < 200000; ++i) std::fprintf(out, "%08x%c", i * 2654435761u, i % 8 == 7 ? '\n' : ' ');
    REQUIRE(std::fclose(out) == 0);
    const int fd = ::open(path.c_str(), O_RDONLY);
    REQUIRE(::fsync(fd) == 0);
    ::close(fd);
  }
  const stdio_result native = natively([&] { return stdio_passes(path, true, nullptr); });
  CHECK(native.read.find("fgets 25000 ") != std::string::npos);
  CHECK(native.read.find("fscanf 200000 ") != std::string::npos);
  long counted = 0;
  bool done = false;
  auto counter = grove::spawn([&] {
    while (!done) {
      ++counted;
      grove::yield();
    }
  });
  grove::yield();
  const stdio_result green = stdio_passes(path, true, &counted);
  done = true;
  counter.join();
  CHECK(green.read == native.read);
  CHECK(green.moved == 5);  // in every pass, a call waited for the disk with the task parked
  // Cached: the same bytes.
  const stdio_result cached = stdio_passes(path, false, nullptr);
  CHECK(cached.read == native.read);
}
