// server_test.cpp — stream_server: port 0, handlers in tasks served
// concurrently, max_connections, stop with a grace period (from outside and
// from a handler), serve_forever, handlers that throw, running out of
// descriptors (EMFILE), Unix addresses. Loopback only.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <grove/error.hpp>
#include <grove/event.hpp>
#include <grove/pool.hpp>
#include <grove/sleep.hpp>
#include <grove/socket.hpp>
#include <grove/stream_server.hpp>
#include <grove/task.hpp>
#include <grove/timeout.hpp>

#include "../support.hpp"
#include "io_support.hpp"

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define GROVE_TEST_HAS_VALGRIND 1
#else
#define GROVE_TEST_HAS_VALGRIND 0
#endif

using namespace std::chrono_literals;
using grove_test::errno_of;
using grove_test::guard;
using grove_test::leak_check;
using grove_test::seconds_since;
using grove_test::task_scope;
using grove_test::temp_dir;

namespace {

// read_to_end reads until the peer closes.
std::string read_to_end(grove::socket& s) {
  std::string out;
  char buf[4096];
  while (std::size_t n = s.recv(buf, sizeof buf)) out.append(buf, n);
  return out;
}

// ask connects to a, sends request, and returns everything the server sends
// back before it closes (each operation limited to 10 s).
std::string ask(const grove::address& a, std::string_view request) {
  grove::socket s = grove::connect(a, 10s);
  s.set_timeout(10s);
  s.send_all(request);
  return read_to_end(s);
}

// wait_for polls cond every millisecond (the caller's timeout scope bounds it).
template <class F>
void wait_for(F&& cond) {
  while (!cond()) grove::sleep(1ms);
}

// cpu_seconds is the CPU time this process has used, all threads together.
double cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

std::size_t count_of(const std::string& text, std::string_view what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

// under_valgrind: this process runs on valgrind, which emulates some limits.
bool under_valgrind() {
#if GROVE_TEST_HAS_VALGRIND
  return RUNNING_ON_VALGRIND != 0;
#else
  return false;
#endif
}

}  // namespace

TEST_CASE_FIXTURE(leak_check, "start binds a free port when asked for port 0, and address() tells which") {
  grove::stream_server server("127.0.0.1:0", [](grove::socket conn, grove::address) { conn.send_all("hello"); });
  CHECK_FALSE(server.started());
  server.start();
  CHECK(server.started());
  CHECK(server.address().family() == AF_INET);
  CHECK(server.address().host() == "127.0.0.1");
  CHECK(server.address().port() != 0);
  grove::timeout limit(10s);
  CHECK(ask(server.address(), "") == "hello");
  CHECK(ask(grove::address::parse("127.0.0.1:" + std::to_string(server.address().port())), "") == "hello");
  server.stop();
}

TEST_CASE_FIXTURE(leak_check,
                  "handlers run in tasks of their own: twenty clients whose handlers sleep 50 ms are "
                  "served in well under a second") {
  int running = 0;
  int peak = 0;
  grove::stream_server server("[::1]:0", [&](grove::socket conn, grove::address) {
    ++running;
    peak = std::max(peak, running);
    char name[3];
    conn.recv_exact(name, sizeof name);
    grove::sleep(50ms);
    conn.send_all("served " + std::string(name, sizeof name));
    --running;
  });
  server.start();
  task_scope tasks;
  grove::timeout limit(10s);
  std::vector<grove::task<std::string>> clients;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) {
    clients.push_back(tasks.spawn([&, i] {
      const std::string name = std::string(i < 10 ? "c0" : "c") + std::to_string(i);
      return ask(server.address(), name);
    }));
  }
  for (int i = 0; i < 20; ++i) {
    CAPTURE(i);
    CHECK(clients[static_cast<std::size_t>(i)].get() ==
          std::string("served ") + (i < 10 ? "c0" : "c") + std::to_string(i));
  }
  const double took = seconds_since(t0);
  CHECK(took >= 0.049);
  CHECK(took < 0.5);  // one after another would take 20 x 50 ms = 1 s
  CHECK(peak > 10);
  server.stop();
}

TEST_CASE_FIXTURE(leak_check,
                  "start throws std::system_error when the address is taken, and the constructor "
                  "grove::error for a bad one") {
  grove::stream_server first("127.0.0.1:0", [](grove::socket, grove::address) {});
  first.start();
  grove::stream_server second("127.0.0.1:" + std::to_string(first.address().port()),
                              [](grove::socket, grove::address) {});
  CHECK(errno_of([&] { second.start(); }) == EADDRINUSE);
  CHECK_FALSE(second.started());
  CHECK_THROWS_AS(grove::stream_server("localhost:80", [](grove::socket, grove::address) {}), grove::error);
  first.stop();
}

TEST_CASE_FIXTURE(leak_check,
                  "with max_connections 2, at most two handlers run at once and all six clients are "
                  "served") {
  int running = 0;
  int peak = 0;
  int served = 0;
  grove::stream_server server(
      "127.0.0.1:0",
      [&](grove::socket conn, grove::address) {
        ++running;
        peak = std::max(peak, running);
        grove::sleep(30ms);
        conn.send_all("ok");
        ++served;
        --running;
      },
      2);
  server.start();
  task_scope tasks;
  grove::timeout limit(10s);
  std::vector<grove::task<std::string>> clients;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 6; ++i) clients.push_back(tasks.spawn([&] { return ask(server.address(), ""); }));
  for (auto& c : clients) CHECK(c.get() == "ok");
  CHECK(peak == 2);
  CHECK(served == 6);
  CHECK(seconds_since(t0) >= 0.085);  // three rounds of 30 ms
  server.stop();
}

TEST_CASE_FIXTURE(leak_check,
                  "stop(grace) stops accepting, lets a handler that finishes in time complete, kills "
                  "one that does not, and returns after") {
  int unwound = 0;
  bool slow_finished = false;
  grove::stream_server server("127.0.0.1:0", [&](grove::socket conn, grove::address) {
    char kind;
    conn.recv_exact(&kind, 1);
    if (kind == 'q') {
      grove::sleep(50ms);
      conn.send_all("quick answer, in full");
    } else {
      guard on_stack(&unwound);
      conn.send_all("slow answer, part one; ");
      grove::sleep(10s);
      conn.send_all("part two");
      slow_finished = true;
    }
  });
  server.start();
  const grove::address where = server.address();
  task_scope tasks;
  grove::timeout limit(10s);
  auto quick = tasks.spawn([&] { return ask(where, "q"); });
  auto slow = tasks.spawn([&] { return ask(where, "s"); });
  wait_for([&] { return server.connections() == 2; });
  // Comes while stop waits out the grace period.
  auto late = tasks.spawn([&] {
    grove::sleep(50ms);
    return errno_of([&] { ask(where, "q"); });
  });
  const auto t0 = std::chrono::steady_clock::now();
  server.stop(300ms);
  const double took = seconds_since(t0);
  CHECK(took >= 0.29);
  CHECK(took < 2.0);
  CHECK(server.connections() == 0);
  CHECK(unwound == 1);
  CHECK_FALSE(slow_finished);
  CHECK(quick.get() == "quick answer, in full");
  CHECK(slow.get() == "slow answer, part one; ");  // then the close
  CHECK(late.get() == ECONNREFUSED);
  CHECK(errno_of([&] { ask(where, "q"); }) == ECONNREFUSED);
  server.stop();  // again: nothing to do
}

TEST_CASE_FIXTURE(leak_check,
                  "stop while max_connections is reached kills the handler and closes the connection "
                  "that waits for a slot") {
  int unwound = 0;
  grove::stream_server server(
      "127.0.0.1:0",
      [&](grove::socket conn, grove::address) {
        guard on_stack(&unwound);
        conn.send_all("in");
        grove::sleep(10s);
      },
      1);
  server.start();
  task_scope tasks;
  grove::timeout limit(10s);
  auto first = tasks.spawn([&] { return ask(server.address(), ""); });
  wait_for([&] { return server.connections() == 1; });
  auto second = tasks.spawn([&] { return ask(server.address(), ""); });
  grove::sleep(50ms);  // accepted, and waiting in the acceptor for the one slot
  const auto t0 = std::chrono::steady_clock::now();
  server.stop();
  CHECK(seconds_since(t0) < 2.0);
  CHECK(unwound == 1);
  CHECK(first.get() == "in");
  CHECK(second.get() == "");  // closed without service
  CHECK(server.connections() == 0);
}

TEST_CASE_FIXTURE(leak_check, "serve_forever returns once another task calls stop") {
  grove::stream_server server("127.0.0.1:0", [](grove::socket conn, grove::address) { conn.send_all("up"); });
  task_scope tasks;
  grove::timeout limit(10s);
  auto stopper = tasks.spawn([&] {
    wait_for([&] { return server.started(); });
    const std::string answer = ask(server.address(), "");
    server.stop();
    return answer;
  });
  const auto t0 = std::chrono::steady_clock::now();
  server.serve_forever();
  CHECK(seconds_since(t0) < 5.0);
  CHECK(stopper.get() == "up");
  CHECK(errno_of([&] { ask(server.address(), ""); }) == ECONNREFUSED);
}

TEST_CASE_FIXTURE(leak_check,
                  "stop called from inside a handler stops the server, and the handler's client sees "
                  "the close") {
  grove::stream_server* self = nullptr;
  grove::stream_server server("127.0.0.1:0", [&](grove::socket conn, grove::address) {
    conn.send_all("bye");
    self->stop();
    conn.send_all(", still here");  // stop returned at once: the handler runs on until it blocks
  });
  self = &server;
  task_scope tasks;
  grove::timeout limit(10s);
  auto client = tasks.spawn([&] {
    wait_for([&] { return server.started(); });
    return ask(server.address(), "");
  });
  server.serve_forever();
  CHECK(client.get() == "bye, still here");
  CHECK(server.connections() == 0);
  CHECK(errno_of([&] { ask(server.address(), ""); }) == ECONNREFUSED);
}

TEST_CASE_FIXTURE(leak_check, "stop(grace) called from inside a handler lets that handler finish within the grace") {
  grove::stream_server* self = nullptr;
  bool finished = false;
  grove::stream_server server("127.0.0.1:0", [&](grove::socket conn, grove::address) {
    self->stop(5s);
    grove::sleep(50ms);  // the stop runs meanwhile, and waits for this handler
    conn.send_all("finished in time");
    finished = true;
  });
  self = &server;
  task_scope tasks;
  grove::timeout limit(10s);
  auto client = tasks.spawn([&] {
    wait_for([&] { return server.started(); });
    return ask(server.address(), "");
  });
  const auto t0 = std::chrono::steady_clock::now();
  server.serve_forever();
  CHECK(seconds_since(t0) < 4.0);
  CHECK(finished);
  CHECK(client.get() == "finished in time");
}

TEST_CASE_FIXTURE(leak_check, "a handler that throws is reported on stderr and the server keeps serving others") {
  grove_test::stderr_capture err;
  {
    grove::stream_server server("127.0.0.1:0", [](grove::socket conn, grove::address) {
      char kind;
      conn.recv_exact(&kind, 1);
      if (kind == 'x') throw std::runtime_error("handler blew up");
      conn.send_all("fine");
    });
    server.start();
    grove::timeout limit(10s);
    CHECK(ask(server.address(), "x") == "");  // its connection is closed as the handler unwinds
    CHECK(ask(server.address(), "y") == "fine");
    CHECK(ask(server.address(), "x") == "");
    CHECK(ask(server.address(), "y") == "fine");
    server.stop();
  }
  const std::string out = err.text();
  CAPTURE(out);
  CHECK(count_of(out, "died of an exception nobody waited for: handler blew up") == 2);
}

TEST_CASE_FIXTURE(leak_check,
                  "out of descriptors (EMFILE), the server reports once, backs off without spinning, "
                  "and serves the waiting clients once descriptors are free") {
  grove_test::stderr_capture err;  // its descriptors are taken before the limit drops
  int served = 0;
  grove::stream_server server("127.0.0.1:0", [&](grove::socket conn, grove::address) {
    char byte;
    conn.recv_exact(&byte, 1);
    conn.send_all(std::string("served ") + byte);
    ++served;
  });
  server.start();
  std::vector<grove::socket> clients;
  for (int i = 0; i < 3; ++i) clients.emplace_back(AF_INET, SOCK_STREAM);  // their descriptors, before the limit

  // In the sanitized build, UBSan's vptr check opens a pipe the first time it
  // meets a type at a call site; out of descriptors, it would call the
  // acceptor's e.what() on a std::system_error an invalid object. Let it meet
  // that pair here, while descriptors are free.
  try {
    throw std::system_error(EMFILE, std::generic_category(), "warm-up");
  } catch (const std::system_error& e) {
    CHECK(std::string(e.what()).find("warm-up") != std::string::npos);
  }

  // The lowest free descriptor number becomes the limit: no new descriptor at all.
  const int lowest_free = ::dup(STDIN_FILENO);
  REQUIRE(lowest_free >= 0);
  ::close(lowest_free);
  rlimit saved{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
  struct restore_limit {
    const rlimit& saved;
    bool done = false;
    void now() {
      if (!done) ::setrlimit(RLIMIT_NOFILE, &saved);
      done = true;
    }
    ~restore_limit() { now(); }
  } restore{saved};
  rlimit low = saved;
  low.rlim_cur = static_cast<rlim_t>(lowest_free);
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
  const int probe = ::dup(STDIN_FILENO);
  const int probe_errno = errno;
  CHECK(probe == -1);
  CHECK(probe_errno == EMFILE);
  if (probe >= 0) ::close(probe);

  task_scope tasks;
  grove::timeout limit(20s);
  for (std::size_t i = 0; i < clients.size(); ++i) {
    clients[i].set_timeout(10s);
    clients[i].connect(server.address());  // completes in the backlog: no descriptor needed on this side
    const char byte = static_cast<char>('a' + i);
    clients[i].send_all(&byte, 1);
  }
  const double cpu0 = cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  grove::sleep(500ms);
  const double cpu = cpu_seconds() - cpu0;
  const double wall = seconds_since(t0);
  CHECK(served == 0);
  CHECK(server.connections() == 0);
  CHECK(cpu < 0.4 * wall);  // backing off, not spinning on a listener that stays readable

  restore.now();
  if (under_valgrind()) {
    // valgrind emulates RLIMIT_NOFILE: the kernel accepted the waiting
    // connections and valgrind closed them, answering EMFILE. Only new
    // clients can show that the server serves again.
    for (const char* byte : {"d", "e", "f"}) CHECK(ask(server.address(), byte) == std::string("served ") + byte);
  } else {
    std::vector<grove::task<std::string>> answers;
    for (auto& c : clients) answers.push_back(tasks.spawn([&c] { return read_to_end(c); }));
    CHECK(answers[0].get() == "served a");
    CHECK(answers[1].get() == "served b");
    CHECK(answers[2].get() == "served c");
  }
  CHECK(served == 3);
  server.stop();
  const std::string out = err.text();
  CAPTURE(out);
  CHECK(count_of(out, "backing off") == 1);
  CHECK(out.find("Too many open files") != std::string::npos);
}

TEST_CASE_FIXTURE(leak_check, "a stream_server listens on a unix: address") {
  temp_dir dir;
  const std::string path = dir.path() + "/server.sock";
  grove::stream_server server("unix:" + path, [](grove::socket conn, grove::address peer) {
    char buf[5];
    conn.recv_exact(buf, sizeof buf);
    conn.send_all(std::string(buf, sizeof buf) + " from " + (peer.family() == AF_UNIX ? "unix" : "elsewhere"));
  });
  server.start();
  CHECK(server.address().family() == AF_UNIX);
  CHECK(server.address().to_string() == "unix:" + path);
  CHECK(std::filesystem::is_socket(path));
  grove::timeout limit(10s);
  CHECK(ask(server.address(), "hello") == "hello from unix");
  CHECK(ask(grove::address::parse("unix:" + path), "again") == "again from unix");
  server.stop();
  CHECK(errno_of([&] { ask(server.address(), "after"); }) == ECONNREFUSED);
}

TEST_CASE_FIXTURE(leak_check,
                  "a stop cut short by a timeout scope still kills the handlers before the timeout propagates") {
  grove::socket client;  // outlives the server, so that a handler left behind can still be ended
  auto unwound = std::make_shared<int>(0);
  {
    grove::stream_server server("127.0.0.1:0", [unwound](grove::socket conn, grove::address) {
      // Only the handler's own copies from here on: it must not need the server to exist.
      const std::shared_ptr<int> count = unwound;
      guard on_stack(count.get());
      char byte;
      conn.recv(&byte, 1);  // until the client closes
    });
    server.start();
    grove::timeout limit(10s);
    client = grove::connect(server.address(), 5s);
    wait_for([&] { return server.connections() == 1; });
    {
      grove::timeout impatient(50ms);
      CHECK_THROWS_AS(server.stop(5s), grove::timeout_error);
    }
    CHECK(server.connections() == 0);  // the interrupted stop killed it on the way out
    CHECK(*unwound == 1);
  }
  CHECK(*unwound == 1);
  // Clean-up if the destructor left the handler running: closing its client ends it.
  client.close();
  grove::sleep(20ms);
  CHECK(*unwound == 1);
}
