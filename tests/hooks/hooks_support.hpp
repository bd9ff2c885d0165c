// hooks_support.hpp — what the link-mode hooks tests share.
//
// The hooks tests link grove::hooks, so every libc call they make is hooked.
// A call made on a thread without a hub goes straight to libc: `natively` runs
// code there, which gives the native behaviour to compare with.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <utility>

#include <doctest/doctest.h>

#include <grove/detail/wait.hpp>
#include <grove/sleep.hpp>
#include <grove/task.hpp>

#include "../runtime/io_support.hpp"
#include "../support.hpp"

namespace grove_test {

// natively runs f on a fresh OS thread with no hub (so its calls reach libc
// directly) and returns what it returns.
template <class F>
auto natively(F f) {
  using R = decltype(f());
  R result{};
  bool had_hub = true;
  std::thread t([&] {
    result = f();
    had_hub = grove::detail::tls_hub != nullptr;
  });
  t.join();
  CHECK_MESSAGE(!had_hub, "a hooked call created a hub on a plain thread");
  return result;
}

// outcome is a call's result and errno, to compare hooked and native runs.
struct outcome {
  long result = 0;
  int error = 0;
  bool operator==(const outcome&) const = default;
};
inline doctest::String toString(const outcome& o) {
  return ("result " + std::to_string(o.result) + ", errno " + std::to_string(o.error)).c_str();
}

template <class F>
outcome outcome_of(F f) {
  errno = 0;
  const long r = static_cast<long>(f());
  return {r, r < 0 ? errno : 0};
}

// ticker counts how often it gets to run while it lives: proof that the hub
// kept running tasks while another one blocked in a hooked call.
class ticker {
 public:
  ticker()
      : task_(grove::spawn([this] {
          for (;;) {
            grove::sleep(std::chrono::milliseconds(5));
            ++ticks_;
          }
        })) {}
  ticker(const ticker&) = delete;
  ticker& operator=(const ticker&) = delete;
  ~ticker() { task_.kill(); }
  int ticks() const { return ticks_; }

 private:
  int ticks_ = 0;
  grove::task<void> task_;
};

// socket_pair is a connected pair of blocking Unix stream sockets.
struct socket_pair {
  int fd[2] = {-1, -1};
  explicit socket_pair(int type = SOCK_STREAM) { REQUIRE(::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fd) == 0); }
  socket_pair(const socket_pair&) = delete;
  socket_pair& operator=(const socket_pair&) = delete;
  ~socket_pair() {
    for (int f : fd) {
      if (f >= 0) ::close(f);
    }
  }
};

}  // namespace grove_test
