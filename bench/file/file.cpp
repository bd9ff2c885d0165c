// bench/file/file.cpp — grove::file against the plain calls (bench/file/run.sh runs it).
//
//   bench_file cached             4 KiB pread of a cached file in a task: grove::file vs libc, ns per call
//   bench_file cold FILE N        N random 4 KiB preads of FILE by 64 tasks (GROVE_FILE_IO picks the way)
//   bench_file cold-threads FILE N  the same by 64 OS threads calling pread
//   bench_file stall FILE         p50/p99 of 100 echo connections on the hub (a ping every 10 ms each): alone, while a task reads
//                                 FILE (cold) with grove::file::read, and while one reads it with ::read
//
// Each cold run evicts FILE first (posix_fadvise DONTNEED).
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <grove/file.hpp>
#include <grove/io.hpp>
#include <grove/sleep.hpp>
#include <grove/task.hpp>

#include "../common.hpp"

using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;

namespace {

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: bench_file cached | cold FILE N | cold-threads FILE N | stall FILE\n");
  std::exit(2);
}

// readable_file exits 2 with a message unless path is a file it can read.
void readable_file(const char* path) {
  const int fd = ::open(path, O_RDONLY);
  if (fd < 0) {
    std::fprintf(stderr, "bench_file: %s: %s\n", path, std::strerror(errno));
    std::exit(2);
  }
  ::close(fd);
}

void evict(const char* path) {
  const int fd = ::open(path, O_RDONLY);
  if (fd < 0 || ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) != 0) {
    std::perror(path);
    std::exit(1);
  }
  ::close(fd);
}

off_t size_of(int fd) { return ::lseek(fd, 0, SEEK_END); }

void cached() {
  char path[] = "/tmp/grove-bench-cached-XXXXXX";
  const int fd = ::mkstemp(path);
  std::vector<char> data(1 << 20, 'x');
  if (fd < 0 || ::write(fd, data.data(), data.size()) != static_cast<ssize_t>(data.size())) std::exit(1);
  ::unlink(path);
  constexpr long ops = 200'000;
  alignas(4096) static char buf[4096];
  double libc_ns = 1e300, nowait_ns = 1e300, grove_ns = 1e300;
  auto t = grove::spawn([&] {
    for (int round = 0; round < 3; ++round) {  // alternated, best of each
      libc_ns = std::min(libc_ns, grove_bench::best_ns(3, ops, [&] {
        for (long i = 0; i < ops; ++i) (void)::pread(fd, buf, sizeof buf, (i % 256) * 4096);
      }));
      nowait_ns = std::min(nowait_ns, grove_bench::best_ns(3, ops, [&] {
        for (long i = 0; i < ops; ++i) {
          const iovec one{buf, sizeof buf};
          (void)::preadv2(fd, &one, 1, (i % 256) * 4096, RWF_NOWAIT);
        }
      }));
      grove_ns = std::min(grove_ns, grove_bench::best_ns(3, ops, [&] {
        for (long i = 0; i < ops; ++i) (void)grove::file::pread(fd, buf, sizeof buf, (i % 256) * 4096);
      }));
    }
  });
  t.join();
  // Writes: where the file system takes RWF_NOWAIT for buffered writes (XFS,
  // btrfs) they stay on the hub; ext4 refuses it, so each goes off the hub.
  constexpr long wops = 20'000;
  double wlibc_ns = 1e300, wgrove_ns = 1e300;
  grove::spawn([&] {
    for (int round = 0; round < 3; ++round) {
      wlibc_ns = std::min(wlibc_ns, grove_bench::best_ns(1, wops, [&] {
        for (long i = 0; i < wops; ++i) (void)::pwrite(fd, buf, sizeof buf, (i % 256) * 4096);
      }));
      wgrove_ns = std::min(wgrove_ns, grove_bench::best_ns(1, wops, [&] {
        for (long i = 0; i < wops; ++i) (void)grove::file::pwrite(fd, buf, sizeof buf, (i % 256) * 4096);
      }));
    }
  }).join();
  ::close(fd);
  std::printf("4 KiB pwrite in a task: libc %.0f ns, grove::file (%s) %.0f ns, ratio %.2fx\n", wlibc_ns,
              grove::file::way(), wgrove_ns, wgrove_ns / wlibc_ns);
  std::printf("cached 4 KiB pread in a task: libc pread %.0f ns, libc preadv2(RWF_NOWAIT) %.0f ns, grove::file::pread "
              "%.0f ns\n  grove::file / pread %.3fx (the kernel's preadv2 alone: %.3fx), grove::file / preadv2 %.3fx\n",
              libc_ns, nowait_ns, grove_ns, grove_ns / libc_ns, nowait_ns / libc_ns, grove_ns / nowait_ns);
}

constexpr int readers = 64;

void cold(const char* path, long n, bool threads) {
  evict(path);
  const int fd = ::open(path, O_RDONLY);
  const off_t blocks = size_of(fd) / 4096;
  std::atomic<long> left{n};
  auto body = [&](unsigned seed, bool green) {
    std::mt19937_64 rng(seed);
    alignas(4096) char buf[4096];
    while (left.fetch_sub(1, std::memory_order_relaxed) > 0) {
      const off_t at = static_cast<off_t>(rng() % static_cast<std::uint64_t>(blocks)) * 4096;
      const ssize_t r = green ? grove::file::pread(fd, buf, sizeof buf, at) : ::pread(fd, buf, sizeof buf, at);
      if (r != 4096) std::exit(1);
    }
  };
  const auto t0 = clk::now();
  if (threads) {
    std::vector<std::thread> ts;
    for (int i = 0; i < readers; ++i) ts.emplace_back(body, 1000u + static_cast<unsigned>(i), false);
    for (auto& t : ts) t.join();
  } else {
    std::vector<grove::task<void>> ts;
    for (int i = 0; i < readers; ++i) ts.push_back(grove::spawn(body, 1000u + static_cast<unsigned>(i), true));
    for (auto& t : ts) t.join();
  }
  const double s = std::chrono::duration<double>(clk::now() - t0).count();
  ::close(fd);
  std::printf("cold random 4 KiB preads, %d %s (%s): %.0f IOPS\n", readers, threads ? "OS threads" : "tasks",
              threads ? "pread" : grove::file::way(), static_cast<double>(n) / s);
}

struct latencies {
  std::vector<double> us;
  double at(double q) {
    if (us.empty()) return 0;
    std::sort(us.begin(), us.end());
    return us[std::min(us.size() - 1, static_cast<std::size_t>(q * static_cast<double>(us.size())))];
  }
};

// echo_phase runs 100 echo connections (socket pairs; echo and client tasks on
// this hub) for as long as `during` (a task body) runs, or `alone` if null,
// and returns their round-trip latencies.
latencies echo_phase(const std::function<void()>& during, std::chrono::milliseconds alone) {
  constexpr int conns = 100;
  latencies lat;
  bool stop = false;
  bool measuring = false;
  std::vector<grove::task<void>> tasks;
  std::vector<int> fds;
  for (int i = 0; i < conns; ++i) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0) std::exit(1);
    fds.push_back(sv[0]);
    fds.push_back(sv[1]);
    tasks.push_back(grove::spawn([&stop, fd = sv[1]] {  // the echo side
      char buf[64];
      while (!stop) {
        if (!grove::wait_readable(fd, 20ms)) continue;
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) return;
        (void)::write(fd, buf, static_cast<std::size_t>(n));
      }
    }));
    // The client side: a ping due every 10 ms, its latency counted from when it
    // was due (a ping held up by a stalled hub counts the stall: no coordinated omission).
    tasks.push_back(grove::spawn([&stop, &lat, &measuring, fd = sv[0], first = i * 100us] {
      char buf[64] = "ping";
      auto due = clk::now() + first;  // staggered over the 10 ms: not all at once
      while (!stop) {
        const auto now = clk::now();
        if (due > now) grove::sleep(due - now);
        (void)::write(fd, buf, sizeof buf);
        std::size_t got = 0;
        while (got < sizeof buf) {
          if (!grove::wait_readable(fd, 20ms)) {
            if (stop) return;  // the echo side may have stopped before it answered
            continue;
          }
          const ssize_t n = ::read(fd, buf + got, sizeof buf - got);
          if (n > 0) got += static_cast<std::size_t>(n);
        }
        if (measuring) lat.us.push_back(std::chrono::duration<double, std::micro>(clk::now() - due).count());
        due += 10ms;
      }
    }));
  }
  grove::sleep(50ms);  // every connection under way
  measuring = true;
  if (during) {
    grove::spawn(during).join();
  } else {
    grove::sleep(alone);
  }
  grove::sleep(100ms);  // pings held up until the end are answered and counted
  stop = true;
  for (auto& t : tasks) t.join();
  for (int fd : fds) grove::close(fd);  // forgets their watchers: the next phase reuses the numbers
  return lat;
}

void stall(const char* path) {
  std::vector<char> buf(8 << 20);
  double read_ms = 0;
  auto reader = [&](bool green) {
    evict(path);  // before the phase: dropping the pages is the hub's own work
    return [&, green] {
      const int fd = ::open(path, O_RDONLY);
      const auto t0 = clk::now();
      for (;;) {
        const ssize_t n = green ? grove::file::read(fd, buf.data(), buf.size()) : ::read(fd, buf.data(), buf.size());
        if (n <= 0) break;
      }
      read_ms = std::chrono::duration<double, std::milli>(clk::now() - t0).count();
      ::close(fd);
    };
  };
  // The reference: the same read on an OS thread of its own, the best any way
  // off the hub can do on this machine (it shares the CPUs and the memory bus).
  auto on_thread = [&] {
    auto r = reader(false);
    return [r] {
      bool done = false;
      std::thread t([&] {
        r();
        done = true;
      });
      while (!done) grove::sleep(1ms);
      t.join();
    };
  };
  latencies base = echo_phase(nullptr, 1000ms);
  latencies thread = echo_phase(on_thread(), {});
  const double thread_ms = read_ms;
  latencies green = echo_phase(reader(true), {});
  const double green_ms = read_ms;
  latencies plain = echo_phase(reader(false), {});
  const double plain_ms = read_ms;
  const double b99 = base.at(0.99), g99 = green.at(0.99), p99 = plain.at(0.99);
  std::printf("100 echo connections, round trip p50/p99 in us:\n");
  std::printf("  no disk read:                     %8.0f / %8.0f\n", base.at(0.5), b99);
  std::printf("  cold read on an OS thread:        %8.0f / %8.0f  (p99 %.2fx; the read took %.0f ms)\n",
              thread.at(0.5), thread.at(0.99), thread.at(0.99) / b99, thread_ms);
  std::printf("  cold read, grove::file (%-8s): %8.0f / %8.0f  (p99 %.2fx; the read took %.0f ms)\n",
              grove::file::way(), green.at(0.5), g99, g99 / b99, green_ms);
  std::printf("  cold read, plain ::read:          %8.0f / %8.0f  (p99 %.2fx; the read took %.0f ms)\n",
              plain.at(0.5), p99, p99 / b99, plain_ms);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) usage();
  const std::string what = argv[1];
  if (what == "cached" && argc == 2) {
    cached();
  } else if ((what == "cold" || what == "cold-threads") && argc == 4) {
    const long n = std::atol(argv[3]);
    if (n <= 0) usage();
    readable_file(argv[2]);
    if (what == "cold-threads") {
      cold(argv[2], n, true);
    } else {
      grove::spawn([&] { cold(argv[2], n, false); }).join();
    }
  } else if (what == "stall" && argc == 3) {
    readable_file(argv[2]);
    grove::spawn([&] { stall(argv[2]); }).join();
  } else {
    usage();
  }
  return 0;
}
