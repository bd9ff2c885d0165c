// hub_group, spawn_on and remote_result: tasks on hubs of their own OS threads.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <grove/error.hpp>
#include <grove/hub_group.hpp>
#include <grove/io.hpp>
#include <grove/sleep.hpp>
#include <grove/socket.hpp>
#include <grove/task.hpp>

#include "../support.hpp"

using namespace std::chrono_literals;

namespace {
long kernel_tid() { return ::syscall(SYS_gettid); }
}  // namespace

TEST_CASE("hub_group: spawn_on runs a task on each hub's own OS thread, and a task of another thread waits for "
          "its result cooperatively") {
  grove::hub_group hubs(2);
  REQUIRE(hubs.size() == 2);
  std::atomic<int> ticks{0};
  auto ticker = grove::spawn([&] {
    for (;;) {
      grove::sleep(1ms);
      ++ticks;
    }
  });
  std::vector<grove::remote_result<long>> tids;
  for (std::size_t i = 0; i < hubs.size(); ++i) {
    tids.push_back(grove::spawn_on(hubs[i], [] {
      grove::sleep(50ms);  // a cooperative wait on that hub
      return kernel_tid();
    }));
  }
  std::set<long> seen;
  for (auto& r : tids) seen.insert(r.get());
  CHECK(seen.size() == 2);
  CHECK(seen.count(kernel_tid()) == 0);
  CHECK(ticks.load() >= 5);  // this hub ran its ticker while get() waited
  ticker.kill();
  CHECK_THROWS_AS(hubs[2], grove::error);
}

TEST_CASE("remote_result across threads: exceptions are rethrown, timed gets expire, a plain thread blocks in get, "
          "a second set is refused") {
  grove::hub_group hubs(1);
  auto failing = grove::spawn_on(hubs[0], []() -> int { throw std::runtime_error("on the other hub"); });
  CHECK_THROWS_WITH_AS(failing.get(), "on the other hub", std::runtime_error);

  auto slow = grove::spawn_on(hubs[0], [] {
    grove::sleep(200ms);
    return 7;
  });
  CHECK_FALSE(slow.get(10ms).has_value());
  int from_plain_thread = 0;
  std::thread plain([&] { from_plain_thread = slow.get(); });
  plain.join();
  CHECK(from_plain_thread == 7);
  CHECK(slow.get() == 7);

  grove::remote_result<void> once;
  once.set();
  CHECK_THROWS_AS(once.set(), grove::error);
  CHECK(once.get(1ms));
}

TEST_CASE("hub_group: two hubs' threads accept on one listening socket and echo 200 connections byte for byte; "
          "closing it wakes both acceptors with EBADF") {
  grove::hub_group hubs(2);
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  REQUIRE(listener >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(listener, 512) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  const std::uint16_t port = ntohs(addr.sin_port);

  // Each hub accepts on the shared socket and echoes in a task per connection.
  std::vector<grove::remote_result<int>> acceptors;
  for (std::size_t i = 0; i < hubs.size(); ++i) {
    acceptors.push_back(grove::spawn_on(hubs[i], [listener] {
      int accepted = 0;
      for (;;) {
        try {
          grove::wait_readable(listener);
        } catch (const std::system_error& e) {
          return e.code().value() == EBADF ? accepted : -1;
        }
        const int fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) continue;  // the other hub took it
        ++accepted;
        grove::spawn([fd] {
          grove::socket conn = grove::socket::adopt(fd);
          char buf[4096];
          while (std::size_t n = conn.recv(buf, sizeof buf)) conn.send_all(buf, n);
        });
      }
    }));
  }

  constexpr int clients = 200;
  std::atomic<int> exact{0};
  std::vector<grove::task<void>> load;
  for (int c = 0; c < clients; ++c) {
    load.push_back(grove::spawn([c, port, &exact] {
      grove::socket s = grove::connect("127.0.0.1", port, 10s);
      std::string sent;
      for (int k = 0; k < 3000; ++k) sent.push_back(static_cast<char>('a' + (c + k) % 26));
      s.send_all(sent);
      s.shutdown();
      std::string got;
      char buf[4096];
      while (std::size_t n = s.recv(buf, sizeof buf)) got.append(buf, n);
      if (got == sent) ++exact;
    }));
  }
  for (auto& t : load) t.get();
  CHECK(exact.load() == clients);
  grove::close(listener);  // wakes the acceptor waiting on each hub
  int total = 0;
  for (auto& a : acceptors) {
    const auto n = a.get(10s);
    REQUIRE(n.has_value());
    CHECK(*n >= 0);
    total += *n;
  }
  CHECK(total == clients);
}
