// io_test.cpp — waiting on descriptors: readiness, several waiters on one fd,
// close waking waiters with EBADF, fd reuse, time limits.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <system_error>
#include <vector>

#include <grove/io.hpp>
#include <grove/sleep.hpp>
#include <grove/task.hpp>
#include <grove/timeout.hpp>

#include "../support.hpp"

using namespace std::chrono_literals;
using grove_test::leak_check;
using grove_test::seconds_since;

namespace {

// a_pipe is a non-blocking pipe, closed through grove::close.
struct a_pipe {
  a_pipe() { REQUIRE(::pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0); }
  a_pipe(const a_pipe&) = delete;
  a_pipe& operator=(const a_pipe&) = delete;
  ~a_pipe() {
    for (int fd : fds) {
      if (fd >= 0) grove::close(fd);
    }
  }
  int read_end() const { return fds[0]; }
  int write_end() const { return fds[1]; }
  int fds[2] = {-1, -1};
};

void put(int fd, const std::string& s) { REQUIRE(::write(fd, s.data(), s.size()) == static_cast<ssize_t>(s.size())); }

}  // namespace

TEST_CASE_FIXTURE(leak_check, "wait_readable blocks the task until data arrives, while other tasks run") {
  a_pipe p;
  std::string got;
  auto reader = grove::spawn([&] {
    grove::wait_readable(p.read_end());
    char buf[16];
    const ssize_t n = ::read(p.read_end(), buf, sizeof buf);
    got.assign(buf, static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
  });
  grove::sleep(10ms);
  CHECK(got.empty());
  put(p.write_end(), "hello");
  reader.join();
  CHECK(got == "hello");
}

TEST_CASE_FIXTURE(leak_check, "wait_writable returns at once for a writable fd and waits while a pipe is full") {
  a_pipe p;
  grove::wait_writable(p.write_end());
  std::string chunk(65536, 'x');
  while (::write(p.write_end(), chunk.data(), chunk.size()) > 0) {
  }
  CHECK_FALSE(grove::wait_writable(p.write_end(), 20ms));
  auto drainer = grove::spawn([&] {
    char buf[65536];
    while (::read(p.read_end(), buf, sizeof buf) > 0) {
    }
  });
  CHECK(grove::wait_writable(p.write_end(), 5s));
  drainer.join();
}

TEST_CASE_FIXTURE(leak_check, "wait_readable with a limit returns false, and a timeout scope throws") {
  a_pipe p;
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_FALSE(grove::wait_readable(p.read_end(), 20ms));
  CHECK(seconds_since(t0) >= 0.019);
  grove::timeout limit(10ms);
  CHECK_THROWS_AS(grove::wait_readable(p.read_end()), grove::timeout_error);
}

TEST_CASE_FIXTURE(leak_check, "several tasks wait on one fd: each readiness wakes the longest waiter first") {
  a_pipe p;
  std::vector<int> order;
  std::vector<grove::task<void>> readers;
  for (int i = 0; i < 3; ++i) {
    readers.push_back(grove::spawn([&, i] {
      for (;;) {
        grove::wait_readable(p.read_end());
        char c;
        if (::read(p.read_end(), &c, 1) == 1) {  // another reader may have taken it
          order.push_back(i);
          return;
        }
      }
    }));
  }
  grove::yield();
  for (int i = 0; i < 3; ++i) {
    put(p.write_end(), "x");
    grove::sleep(5ms);
  }
  grove::joinall(readers);
  CHECK(order == std::vector<int>{0, 1, 2});
}

TEST_CASE_FIXTURE(leak_check, "grove::close wakes every task waiting on the fd with EBADF") {
  int fds[2];
  REQUIRE(::pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
  int ebadf = 0;
  std::vector<grove::task<void>> waiters;
  for (int i = 0; i < 2; ++i) {
    waiters.push_back(grove::spawn([&] {
      try {
        grove::wait_readable(fds[0]);
      } catch (const std::system_error& e) {
        if (e.code().value() == EBADF) ++ebadf;
      }
    }));
  }
  grove::yield();
  CHECK(grove::close(fds[0]) == 0);
  grove::joinall(waiters);
  CHECK(ebadf == 2);
  grove::close(fds[1]);
}

TEST_CASE_FIXTURE(leak_check, "notify_close wakes the fd's waiters with EBADF and leaves the fd open") {
  a_pipe p;
  int code = 0;
  auto waiter = grove::spawn([&] {
    try {
      grove::wait_readable(p.read_end());
    } catch (const std::system_error& e) {
      code = e.code().value();
    }
  });
  grove::yield();
  grove::notify_close(p.read_end());
  waiter.join();
  CHECK(code == EBADF);
  CHECK(::fcntl(p.read_end(), F_GETFD) != -1);  // still open: the caller closes it
  put(p.write_end(), "x");
  CHECK(grove::wait_readable(p.read_end(), 1s));  // and a new wait watches it afresh
}

TEST_CASE_FIXTURE(leak_check, "an fd number reused after close never wakes a stale waiter") {
  int fds[2];
  REQUIRE(::pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
  bool stale_woke_normally = false;
  auto stale = grove::spawn([&] {
    try {
      grove::wait_readable(fds[0]);
      stale_woke_normally = true;
    } catch (const std::system_error&) {
    }
  });
  grove::yield();
  grove::close(fds[0]);
  grove::close(fds[1]);
  a_pipe reused;  // very likely the same numbers
  put(reused.write_end(), "data for someone else");
  stale.join();
  CHECK_FALSE(stale_woke_normally);
  CHECK(grove::wait_readable(reused.read_end(), 1s));  // the new fd still works
}

TEST_CASE_FIXTURE(leak_check, "a task killed while waiting on an fd stops watching it") {
  a_pipe p;
  auto waiter = grove::spawn([&] { grove::wait_readable(p.read_end()); });
  grove::yield();
  CHECK(waiter.kill());
  put(p.write_end(), "late");
  CHECK(grove::wait_readable(p.read_end(), 1s));
}

TEST_CASE_FIXTURE(leak_check, "waiting on a negative descriptor is an EBADF error") {
  CHECK_THROWS_AS(grove::wait_readable(-1), std::system_error);
}
