// hub_group, spawn_on and remote_result: tasks on hubs of their own OS threads.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <mutex>
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
#include <grove/stream_server.hpp>
#include <grove/task.hpp>
#include <grove/timeout.hpp>

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

namespace {
// echo_clients connects `clients` tasks of this thread's hub to port, each
// sending 3,000 bytes of its own; returns how many got exactly their bytes back.
int echo_clients(std::uint16_t port, int clients) {
  std::atomic<int> exact{0};
  std::vector<grove::task<void>> load;
  for (int c = 0; c < clients; ++c) {
    load.push_back(grove::spawn([c, port, &exact] {
      grove::socket s = grove::connect("127.0.0.1", port, 10s);
      std::string sent;
      for (int k = 0; k < 3000; ++k) sent.push_back(static_cast<char>('a' + (c * 7 + k) % 26));
      s.send_all(sent);
      s.shutdown();
      std::string got;
      char buf[4096];
      while (std::size_t n = s.recv(buf, sizeof buf)) got.append(buf, n);
      if (got == sent) ++exact;
    }));
  }
  for (auto& t : load) t.get();
  return exact.load();
}

const char* spread_name(grove::stream_server::spread by) {
  return by == grove::stream_server::spread::acceptor ? "acceptor" : "reuseport";
}
}  // namespace

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
  CHECK(echo_clients(port, clients) == clients);
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


TEST_CASE("stream_server on a hub_group of two: each spread echoes 200 connections byte for byte, with handlers "
          "on both hubs' OS threads; stop returns once they are done") {
  for (const auto by : {grove::stream_server::spread::acceptor, grove::stream_server::spread::reuseport}) {
    CAPTURE(spread_name(by));
    grove::hub_group hubs(2);
    std::mutex m;
    std::set<long> threads;
    grove::stream_server server(
        "127.0.0.1:0",
        [&](grove::socket conn, grove::address) {
          {
            const std::lock_guard<std::mutex> hold(m);
            threads.insert(kernel_tid());
          }
          char buf[4096];
          while (std::size_t n = conn.recv(buf, sizeof buf)) conn.send_all(buf, n);
        },
        {.hubs = &hubs, .by = by});
    server.start();
    REQUIRE(server.address().port() != 0);
    CHECK(echo_clients(server.address().port(), 200) == 200);
    server.stop(5s);
    CHECK(server.connections() == 0);
    const std::lock_guard<std::mutex> hold(m);
    CHECK(threads.size() == 2);
    CHECK(threads.count(kernel_tid()) == 0);
  }
}

TEST_CASE("stream_server on a hub_group: with max_connections, each hub runs at most that many handlers, and a "
          "connection beyond them waits until one ends (acceptor spread, other threads' hubs)") {
  grove::hub_group hubs(2);
  std::atomic<int> running{0};
  std::atomic<int> most{0};
  std::atomic<bool> release{false};
  grove::stream_server server(
      "127.0.0.1:0",
      [&](grove::socket conn, grove::address) {
        const int now = ++running;
        for (int seen = most.load(); now > seen && !most.compare_exchange_weak(seen, now);) {
        }
        while (!release.load()) grove::sleep(1ms);
        conn.send_all("x", 1);
        --running;
      },
      {.max_connections = 1, .hubs = &hubs, .by = grove::stream_server::spread::acceptor});
  server.start();
  std::vector<grove::socket> conns;
  for (int i = 0; i < 3; ++i) conns.push_back(grove::connect("127.0.0.1", server.address().port(), 10s));
  for (int i = 0; i < 2000 && server.connections() < 2; ++i) grove::sleep(1ms);
  grove::sleep(50ms);  // time for a wrong third handler to start
  CHECK(server.connections() == 2);
  CHECK(running.load() == 2);
  release = true;
  char c = 0;
  for (auto& s : conns) {
    s.set_timeout(10s);
    CHECK(s.recv(&c, 1) == 1);  // the third too, once a hub had room
  }
  CHECK(most.load() == 2);
  server.stop(5s);
}

TEST_CASE("stream_server on a hub_group: a handler on another hub's thread can stop the server, which kills the "
          "handlers that outlive the grace; serve_forever on this thread then returns") {
  grove::hub_group hubs(2);
  std::atomic<int> killed{0};
  grove::stream_server* self = nullptr;
  grove::stream_server server(
      "127.0.0.1:0",
      [&](grove::socket conn, grove::address) {
        try {
          char c = 0;
          if (conn.recv(&c, 1) == 1 && c == 's') {
            self->stop(100ms);  // returns at once: a task of this hub stops the server
            conn.send_all("k", 1);
            return;
          }
        } catch (const grove::greenlet_exit&) {
          ++killed;  // an idle connection's handler, waiting in recv
          throw;
        }
      },
      {.hubs = &hubs, .by = grove::stream_server::spread::reuseport});
  self = &server;
  server.start();
  std::vector<grove::socket> idle;
  for (int i = 0; i < 4; ++i) idle.push_back(grove::connect("127.0.0.1", server.address().port(), 10s));
  for (int i = 0; i < 2000 && server.connections() < 4; ++i) grove::sleep(1ms);
  REQUIRE(server.connections() == 4);
  auto stopper = grove::connect("127.0.0.1", server.address().port(), 10s);
  stopper.send_all("s", 1);
  const auto began = std::chrono::steady_clock::now();
  auto forever = grove::spawn([&] { server.serve_forever(); });
  CHECK(forever.get(10s));
  CHECK(std::chrono::steady_clock::now() - began < 9s);
  CHECK(killed.load() == 4);
  CHECK(server.connections() == 0);
  char c = 0;
  stopper.set_timeout(5s);
  CHECK(stopper.recv(&c, 1) == 1);
  // Nothing listens on the port any more.
  CHECK_THROWS_AS(grove::connect("127.0.0.1", server.address().port(), 2s), std::system_error);
}

TEST_CASE("stream_server on a hub_group: a unix: address is served by one acceptor spreading to both hubs' OS threads "
          "(reuseport asked for)") {
  grove::hub_group hubs(2);
  const std::string path = "/tmp/grove-hubs-" + std::to_string(::getpid()) + ".sock";
  ::unlink(path.c_str());
  std::mutex m;
  std::set<long> threads;
  grove::stream_server server(
      "unix:" + path,
      [&](grove::socket conn, grove::address) {
        {
          const std::lock_guard<std::mutex> hold(m);
          threads.insert(kernel_tid());
        }
        char buf[256];
        while (std::size_t n = conn.recv(buf, sizeof buf)) conn.send_all(buf, n);
      },
      {.hubs = &hubs, .by = grove::stream_server::spread::reuseport});
  server.start();
  std::vector<grove::task<bool>> clients;
  for (int i = 0; i < 20; ++i) {
    clients.push_back(grove::spawn([&, i] {
      grove::socket s(AF_UNIX, SOCK_STREAM);
      s.connect(grove::address::parse("unix:" + path));
      const std::string msg = "hello " + std::to_string(i);
      s.send_all(msg);
      s.shutdown();
      std::string got;
      char buf[64];
      while (std::size_t n = s.recv(buf, sizeof buf)) got.append(buf, n);
      return got == msg;
    }));
  }
  int ok = 0;
  for (auto& t : clients) ok += t.get() ? 1 : 0;
  CHECK(ok == 20);
  server.stop(5s);
  ::unlink(path.c_str());
  const std::lock_guard<std::mutex> hold(m);
  CHECK(threads.size() == 2);
}

TEST_CASE("stream_server on a hub_group: a stop cut short by a timeout scope still kills the handlers on both hubs' "
          "OS threads before the timeout propagates") {
  grove::hub_group hubs(2);
  std::atomic<int> unwound{0};
  std::vector<grove::socket> clients;  // outlive the server: a handler left behind could still be ended
  {
    grove::stream_server server(
        "127.0.0.1:0",
        [&](grove::socket conn, grove::address) {
          struct count_unwind {
            std::atomic<int>& n;
            ~count_unwind() { ++n; }
          } on_stack{unwound};
          char byte;
          conn.recv(&byte, 1);  // until the client closes
        },
        {.hubs = &hubs});
    server.start();
    for (int i = 0; i < 4; ++i) clients.push_back(grove::connect(server.address(), 5s));
    for (int i = 0; i < 2000 && server.connections() < 4; ++i) grove::sleep(1ms);
    REQUIRE(server.connections() == 4);
    const auto began = std::chrono::steady_clock::now();
    {
      grove::timeout impatient(50ms);
      CHECK_THROWS_AS(server.stop(20s), grove::timeout_error);
    }
    CHECK(std::chrono::steady_clock::now() - began < 10s);
    CHECK(server.connections() == 0);
    CHECK(unwound.load() == 4);
  }
  CHECK(unwound.load() == 4);
}
