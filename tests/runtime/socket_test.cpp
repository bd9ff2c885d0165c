// socket_test.cpp — cooperative sockets: TCP over IPv4 and IPv6, Unix stream
// sockets and UDP between tasks of one thread; addresses and resolve; connect
// errors and time limits; resets, half-closes, peers that never read; SIGPIPE,
// sendfile, EINTR, closing under a waiter; ten thousand connections at once.
// Loopback only.
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <grove/error.hpp>
#include <grove/event.hpp>
#include <grove/io.hpp>
#include <grove/pool.hpp>
#include <grove/sleep.hpp>
#include <grove/socket.hpp>
#include <grove/stack.hpp>
#include <grove/stream_server.hpp>
#include <grove/task.hpp>
#include <grove/thread_pool.hpp>
#include <grove/timeout.hpp>

#include "../support.hpp"
#include "io_support.hpp"

using namespace std::chrono_literals;
using grove_test::errno_of;
using grove_test::leak_check;
using grove_test::seconds_since;
using grove_test::task_scope;
using grove_test::temp_dir;

namespace {

// pattern is n bytes that differ from one position to the next.
std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 31 + i / 251) % 251);
  return s;
}

// listening is a listening socket and where it listens.
struct listening {
  grove::socket sock;
  grove::address where;  // with the port the kernel picked
};

// listen_on binds and listens on `where` ("127.0.0.1:0", "[::1]:0", "unix:/path").
listening listen_on(std::string_view where, int backlog = SOMAXCONN) {
  const grove::address a = grove::address::parse(where);
  grove::socket s(a.family(), SOCK_STREAM);
  s.bind(a);
  s.listen(backlog);
  const grove::address bound = s.local_address();
  return {std::move(s), bound};
}

// connection is both ends of a stream connection.
struct connection {
  grove::socket client;
  grove::socket server;
};

// connected returns both ends of a new stream connection over `where`, each
// with a 10 s limit per operation so that a bug cannot hang the case.
connection connected(std::string_view where) {
  listening l = listen_on(where);
  l.sock.set_timeout(10s);
  grove::socket client = grove::connect(l.where, 10s);
  grove::socket server = l.sock.accept().first;
  client.set_timeout(10s);
  server.set_timeout(10s);
  return {std::move(client), std::move(server)};
}

// file_with holds a temporary file with the given content, open for reading.
class file_with {
 public:
  explicit file_with(const std::string& content) {
    const std::string path = dir_.path() + "/data";
    {
      std::ofstream out(path, std::ios::binary);
      out.write(content.data(), static_cast<std::streamsize>(content.size()));
      REQUIRE(out.good());
    }
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd_ >= 0);
  }
  file_with(const file_with&) = delete;
  file_with& operator=(const file_with&) = delete;
  ~file_with() { ::close(fd_); }
  int fd() const noexcept { return fd_; }

 private:
  temp_dir dir_;
  int fd_ = -1;
};

// read_to_end reads until the peer closes.
std::string read_to_end(grove::socket& s) {
  std::string out;
  char buf[16384];
  while (std::size_t n = s.recv(buf, sizeof buf)) out.append(buf, n);
  return out;
}

// open_fd_count is how many descriptors this process has open.
std::size_t open_fd_count() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

// What the signal handlers below count.
std::atomic<int> sigpipes{0};
std::atomic<int> alarms{0};
static_assert(std::atomic<int>::is_always_lock_free, "a signal handler needs a lock-free counter");

// sigpipe_counter counts SIGPIPEs while it lives, with SIGPIPE unblocked on this
// thread. Under the default action a SIGPIPE would end the process; counting
// proves the same without taking the whole test run down when it fails.
class sigpipe_counter {
 public:
  sigpipe_counter() {
    sigpipes = 0;
    struct sigaction sa {};
    sa.sa_handler = [](int) { sigpipes.fetch_add(1, std::memory_order_relaxed); };
    sigemptyset(&sa.sa_mask);
    REQUIRE(::sigaction(SIGPIPE, &sa, &old_action_) == 0);
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    REQUIRE(::pthread_sigmask(SIG_UNBLOCK, &pipe_only, &old_mask_) == 0);
  }
  sigpipe_counter(const sigpipe_counter&) = delete;
  sigpipe_counter& operator=(const sigpipe_counter&) = delete;
  ~sigpipe_counter() {
    ::pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
    ::sigaction(SIGPIPE, &old_action_, nullptr);
  }
  int count() const noexcept { return sigpipes.load(std::memory_order_relaxed); }

 private:
  struct sigaction old_action_ {};
  sigset_t old_mask_{};
};

// sigpipe_blocked_here: SIGPIPE is blocked on this thread.
bool sigpipe_blocked_here() {
  sigset_t now;
  ::pthread_sigmask(SIG_SETMASK, nullptr, &now);
  return sigismember(&now, SIGPIPE) == 1;
}

// check_stream_round_trip sends a megabyte through a connection over `where`
// and back: one task echoes, one writes, the caller reads.
void check_stream_round_trip(std::string_view where) {
  listening l = listen_on(where);
  const std::string payload = pattern(std::size_t{1} << 20);
  grove::socket client;
  task_scope tasks;
  grove::timeout limit(10s);
  auto echo = tasks.spawn([&] {
    auto [conn, peer] = l.sock.accept();
    char buf[4096];
    std::size_t total = 0;
    while (std::size_t n = conn.recv(buf, sizeof buf)) {
      conn.send_all(buf, n);
      total += n;
    }
    return std::make_pair(total, peer.to_string());
  });
  client = grove::connect(l.where);
  CHECK(client.peer_address().to_string() == l.where.to_string());
  const std::string local = client.local_address().to_string();
  auto writer = tasks.spawn([&] {
    client.send_all(payload);
    client.shutdown(SHUT_WR);
  });
  const std::string echoed = read_to_end(client);
  writer.get();
  const auto [total, peer] = echo.get();
  CHECK(total == payload.size());
  CHECK(echoed.size() == payload.size());
  const bool same = echoed == payload;
  CHECK(same);
  if (l.where.family() != AF_UNIX) CHECK(peer == local);
}

}  // namespace

// ---------------------------------------------------------------------------
// data between tasks

TEST_CASE_FIXTURE(leak_check, "TCP over IPv4 carries a megabyte both ways between tasks of one thread") {
  check_stream_round_trip("127.0.0.1:0");
}

TEST_CASE_FIXTURE(leak_check, "TCP over IPv6 carries a megabyte both ways between tasks of one thread") {
  check_stream_round_trip("[::1]:0");
}

TEST_CASE_FIXTURE(leak_check, "a Unix stream socket carries a megabyte both ways between tasks of one thread") {
  temp_dir dir;
  check_stream_round_trip("unix:" + dir.path() + "/stream.sock");
}

TEST_CASE_FIXTURE(leak_check, "UDP datagrams round-trip between tasks with send_to and recv_from, over IPv4 and IPv6") {
  for (const std::string where : {"127.0.0.1:0", "[::1]:0"}) {
    CAPTURE(where);
    const grove::address any = grove::address::parse(where);
    grove::socket a(any.family(), SOCK_DGRAM);
    grove::socket b(any.family(), SOCK_DGRAM);
    a.bind(any);
    b.bind(any);
    const grove::address a_at = a.local_address();
    const grove::address b_at = b.local_address();
    task_scope tasks;
    grove::timeout limit(10s);
    auto reverser = tasks.spawn([&] {
      char buf[512];
      grove::address from;
      const std::size_t n = a.recv_from(buf, sizeof buf, from);
      std::string reply(buf, n);
      std::reverse(reply.begin(), reply.end());
      CHECK(a.send_to(reply.data(), reply.size(), from) == reply.size());
      return from.to_string();
    });
    grove::yield();  // the reverser waits in recv_from before anything is sent
    CHECK(b.send_to("datagram", 8, a_at) == 8);
    char buf[512];
    grove::address from;
    const std::size_t n = b.recv_from(buf, sizeof buf, from);
    CHECK(std::string(buf, n) == "margatad");
    CHECK(from.to_string() == a_at.to_string());
    CHECK(reverser.get() == b_at.to_string());
  }
}

TEST_CASE_FIXTURE(leak_check, "recv_exact reads exactly the bytes asked for, across several small sends") {
  connection c = connected("127.0.0.1:0");
  task_scope tasks;
  grove::timeout limit(10s);
  auto sender = tasks.spawn([&] {
    for (std::string_view piece : {"ab", "cde", "f", "ghij", "klmno"}) {
      c.server.send_all(piece);
      grove::sleep(5ms);
    }
  });
  char first[10];
  c.client.recv_exact(first, sizeof first);
  CHECK(std::string(first, sizeof first) == "abcdefghij");
  char second[5];
  c.client.recv_exact(second, sizeof second);
  CHECK(std::string(second, sizeof second) == "klmno");
  sender.get();
}

// ---------------------------------------------------------------------------
// addresses and names

TEST_CASE_FIXTURE(leak_check, "address::parse reads IPv4, IPv6 and Unix addresses, and to_string writes them back") {
  const grove::address v4 = grove::address::parse("127.0.0.1:8080");
  CHECK(v4.family() == AF_INET);
  CHECK(v4.port() == 8080);
  CHECK(v4.host() == "127.0.0.1");
  CHECK(v4.to_string() == "127.0.0.1:8080");
  CHECK(v4.size() == sizeof(sockaddr_in));

  const grove::address v6 = grove::address::parse("[::1]:80");
  CHECK(v6.family() == AF_INET6);
  CHECK(v6.port() == 80);
  CHECK(v6.host() == "::1");
  CHECK(v6.to_string() == "[::1]:80");
  CHECK(v6.size() == sizeof(sockaddr_in6));

  const grove::address un = grove::address::parse("unix:/tmp/grove.sock");
  CHECK(un.family() == AF_UNIX);
  CHECK(un.port() == 0);
  CHECK(un.host() == "/tmp/grove.sock");
  CHECK(un.to_string() == "unix:/tmp/grove.sock");

  CHECK(grove::address::parse("0.0.0.0:0").port() == 0);
  CHECK(grove::address::parse("[::]:65535").to_string() == "[::]:65535");
  CHECK(grove::address::ip("::1", 443).to_string() == "[::1]:443");
  CHECK(grove::address::unix_path("/run/x").to_string() == "unix:/run/x");
  CHECK(grove::address().to_string() == "(no address)");
}

TEST_CASE_FIXTURE(leak_check, "address::parse throws grove::error for what is not a numeric address") {
  for (const std::string bad :
       {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:8x", "127.0.0.1:65536", "127.0.0.1:-1",
        "localhost:80", "1.2.3:80", "999.0.0.1:80", "[::1]", "[::g]:80", "::1]:80", "::1:80", "127.0.0.1:+80",
        "127.0.0.1: 80", "127.0.0.1:000080"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(grove::address::parse(bad), grove::error);
  }
  CHECK_THROWS_AS(grove::address::parse("unix:/" + std::string(200, 'x')), grove::error);
  CHECK_THROWS_AS(grove::address::ip("localhost", 80), grove::error);
}

TEST_CASE_FIXTURE(leak_check, "resolve(\"localhost\", \"80\") returns loopback addresses with port 80") {
  grove::timeout limit(10s);
  const std::vector<grove::address> found = grove::resolve("localhost", "80");
  REQUIRE_FALSE(found.empty());
  for (const grove::address& a : found) {
    CAPTURE(a.to_string());
    CHECK((a.host() == "127.0.0.1" || a.host() == "::1"));
    CHECK(a.port() == 80);
  }
  for (const grove::address& a : grove::resolve("localhost", "80", AF_INET, SOCK_DGRAM)) {
    CHECK(a.family() == AF_INET);
  }
}

TEST_CASE_FIXTURE(leak_check,
                  "resolve throws std::system_error with getaddrinfo's message for a name that does not "
                  "resolve") {
  grove::timeout limit(30s);
  // What getaddrinfo itself says about the name, asked directly.
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  const int code = ::getaddrinfo("no-such-host.invalid", "80", &hints, &list);
  if (list != nullptr) ::freeaddrinfo(list);
  REQUIRE(code != 0);
  try {
    grove::resolve("no-such-host.invalid", "80");
    FAIL("resolve returned for a name that does not exist");
  } catch (const std::system_error& e) {
    const std::string what = e.what();
    CAPTURE(what);
    CHECK(what.find("no-such-host.invalid") != std::string::npos);
    CHECK(what.find(::gai_strerror(code)) != std::string::npos);
    CHECK(e.code().value() != 0);
  }
}

TEST_CASE_FIXTURE(leak_check, "resolve runs on the hub's thread pool: the hub runs a ticking task while it waits") {
  // With one pool thread kept busy for 200 ms, a resolve that goes through the
  // pool has to wait for it; one made on the hub's thread would not, and would
  // stop the ticker meanwhile.
  const std::size_t saved_size = grove::thread_pool_size();
  grove::set_thread_pool_size(1);
  struct restore_pool {
    std::size_t size;
    ~restore_pool() { grove::set_thread_pool_size(size); }
  } restore{saved_size};
  int ticks = 0;
  bool ticking = true;
  task_scope tasks;
  grove::timeout limit(10s);
  auto ticker = tasks.spawn([&] {
    while (ticking) {
      ++ticks;
      grove::sleep(5ms);
    }
  });
  auto busy = tasks.spawn([] { grove::run_in_thread([] { std::this_thread::sleep_for(200ms); }); });
  grove::yield();  // the ticker ticks once; busy hands its call to the pool's only thread
  const int ticks_before = ticks;
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<grove::address> found = grove::resolve("localhost", "80");
  const double took = seconds_since(t0);
  const int ticks_during = ticks - ticks_before;
  ticking = false;
  busy.get();
  ticker.get();
  CHECK_FALSE(found.empty());
  CHECK(took >= 0.1);         // it queued behind the busy call: it runs on the pool
  CHECK(ticks_during >= 10);  // and the hub kept running the ticker (about 40 ticks)
}

// ---------------------------------------------------------------------------
// connect

TEST_CASE_FIXTURE(leak_check, "connect to a port with no listener throws std::system_error with ECONNREFUSED") {
  grove::timeout limit(10s);
  for (const std::string where : {"127.0.0.1:0", "[::1]:0"}) {
    CAPTURE(where);
    std::uint16_t port = 0;
    {
      const grove::address any = grove::address::parse(where);
      grove::socket probe(any.family(), SOCK_STREAM);
      probe.bind(any);
      port = probe.local_address().port();
    }  // closed: nothing listens on the port now
    REQUIRE(port != 0);
    const std::string host = grove::address::parse(where).host();
    CHECK(errno_of([&] { grove::connect(grove::address::ip(host, port), 5s); }) == ECONNREFUSED);
    CHECK(errno_of([&] { grove::connect(host, port, 5s); }) == ECONNREFUSED);
    CHECK(errno_of([&] { grove::connect(host, port); }) == ECONNREFUSED);
  }
}

TEST_CASE_FIXTURE(leak_check, "connect with a time limit to a listener whose backlog is full throws timeout_error") {
  // A listener with backlog 1 that never accepts: Linux queues two
  // connections, then drops the SYNs of the next ones, so their connects hang.
  listening l = listen_on("127.0.0.1:0", 1);
  std::vector<grove::socket> queued;
  for (int i = 0; i < 16; ++i) {
    try {
      queued.push_back(grove::connect(l.where, 300ms));
    } catch (const grove::timeout_error&) {
      break;
    }
  }
  REQUIRE_FALSE(queued.empty());
  REQUIRE(queued.size() < 16);  // the backlog did fill

  auto t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(grove::connect(l.where, 200ms), grove::timeout_error);
  double took = seconds_since(t0);
  CHECK(took >= 0.19);
  CHECK(took < 2.0);

  t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(grove::connect("127.0.0.1", l.where.port(), 200ms), grove::timeout_error);
  took = seconds_since(t0);
  CHECK(took >= 0.19);
  CHECK(took < 2.0);

  // The socket's own limit does the same, with no scope to blame.
  grove::socket s(AF_INET, SOCK_STREAM);
  s.set_timeout(200ms);
  t0 = std::chrono::steady_clock::now();
  try {
    s.connect(l.where);
    FAIL("connect returned although the backlog is full");
  } catch (const grove::timeout_error& e) {
    CHECK(e.source() == nullptr);
  }
  took = seconds_since(t0);
  CHECK(took >= 0.19);
  CHECK(took < 2.0);
}

// ---------------------------------------------------------------------------
// how connections end

TEST_CASE_FIXTURE(leak_check,
                  "a peer that resets the connection mid-stream makes recv and recv_exact throw "
                  "ECONNRESET") {
  // The peer sends part of a message, then closes with SO_LINGER {1, 0}: a RST.
  auto abort_after = [](grove::socket& s, std::string_view part) {
    s.send_all(part);
    const linger abort_now{1, 0};
    REQUIRE(::setsockopt(s.fd(), SOL_SOCKET, SO_LINGER, &abort_now, sizeof abort_now) == 0);
    s.close();
  };
  grove::timeout limit(10s);
  {
    // recv: the bytes that arrived before the reset are read first, then the
    // reset is reported once; after it, the stream reads as ended.
    connection c = connected("127.0.0.1:0");
    abort_after(c.server, "first half");
    char buf[64];
    CHECK(std::string(buf, c.client.recv(buf, sizeof buf)) == "first half");
    int err = 0;
    try {
      c.client.recv(buf, sizeof buf);
    } catch (const std::system_error& e) {
      err = e.code().value();
      CHECK(std::string(e.what()).find("grove::socket::recv") != std::string::npos);
    }
    CHECK(err == ECONNRESET);
    CHECK(c.client.recv(buf, sizeof buf) == 0);
  }
  {
    // recv_exact, already waiting when the part and the reset arrive.
    connection c = connected("127.0.0.1:0");
    task_scope tasks;
    auto reader = tasks.spawn([&] {
      char buf[100];
      try {
        c.client.recv_exact(buf, sizeof buf);
      } catch (const std::system_error& e) {
        return std::make_pair(e.code().value(), std::string(e.what()));
      }
      return std::make_pair(0, std::string("recv_exact returned"));
    });
    grove::yield();  // the reader waits in recv_exact
    abort_after(c.server, "first half");
    const auto result = reader.get();
    const std::string& what = result.second;
    CAPTURE(what);
    CHECK(result.first == ECONNRESET);
    // The reset itself, not recv_exact's own report of a peer that closed early.
    CHECK(what.find("peer closed after") == std::string::npos);
  }
  {
    // recv_exact's own report: the peer closed normally (FIN) too early.
    connection c = connected("127.0.0.1:0");
    c.server.send_all("short");
    c.server.close();
    char buf[100];
    try {
      c.client.recv_exact(buf, sizeof buf);
      FAIL("recv_exact returned although the peer sent 5 of 100 bytes");
    } catch (const std::system_error& e) {
      CHECK(e.code().value() == ECONNRESET);
      CHECK(std::string(e.what()).find("the peer closed after 5 of 100 bytes") != std::string::npos);
    }
  }
}

TEST_CASE_FIXTURE(leak_check, "after a half-close the other side reads the data, then 0, and can still send back") {
  connection c = connected("127.0.0.1:0");
  task_scope tasks;
  grove::timeout limit(10s);
  auto responder = tasks.spawn([&] {
    const std::string request = read_to_end(c.server);  // ends at the half-close
    c.server.send_all("reply to " + request);
    c.server.close();
    return request;
  });
  c.client.send_all("request");
  c.client.shutdown(SHUT_WR);
  CHECK(errno_of([&] { c.client.send("more"); }) == EPIPE);  // this side's writing is over
  CHECK(read_to_end(c.client) == "reply to request");
  CHECK(responder.get() == "request");
}

TEST_CASE_FIXTURE(leak_check,
                  "send_all to a peer that never reads throws the socket's own timeout_error after its "
                  "limit") {
  const std::string big(64u << 20, 'x');  // far more than the loopback socket buffers hold
  connection c = connected("127.0.0.1:0");
  c.client.set_timeout(100ms);
  grove::timeout limit(30s);
  const auto t0 = std::chrono::steady_clock::now();
  try {
    c.client.send_all(big);
    FAIL("send_all finished although nobody reads");
  } catch (const grove::timeout_error& e) {
    CHECK(e.source() == nullptr);
    CHECK(std::string(e.what()).find("timed out after 100 ms") != std::string::npos);
  }
  const double took = seconds_since(t0);
  CHECK(took >= 0.09);
  CHECK(took < 10.0);
}

TEST_CASE_FIXTURE(leak_check,
                  "send_all to a peer that never reads throws timeout_error from an enclosing timeout "
                  "scope") {
  const std::string big(64u << 20, 'x');
  connection c = connected("127.0.0.1:0");
  c.client.set_timeout(30s);  // the scope is the shorter limit
  const auto t0 = std::chrono::steady_clock::now();
  {
    grove::timeout scope(150ms);
    try {
      c.client.send_all(big);
      FAIL("send_all finished although nobody reads");
    } catch (const grove::timeout_error& e) {
      CHECK(e.source() == &scope);
      CHECK(scope.expired());
    }
  }
  const double took = seconds_since(t0);
  CHECK(took >= 0.14);
  CHECK(took < 10.0);
}

// ---------------------------------------------------------------------------
// SIGPIPE and sendfile

TEST_CASE_FIXTURE(leak_check, "send to a peer that has closed throws EPIPE or ECONNRESET and raises no SIGPIPE") {
  sigpipe_counter counter;
  connection c = connected("127.0.0.1:0");
  grove::timeout limit(10s);
  c.server.close();
  char byte;
  CHECK(c.client.recv(&byte, 1) == 0);  // the peer's close is seen
  int err = 0;
  for (int i = 0; i < 100 && err == 0; ++i) {
    err = errno_of([&] { c.client.send_all("data after the peer left"); });
    if (err == 0) grove::sleep(1ms);
  }
  CHECK((err == EPIPE || err == ECONNRESET));
  // Keep sending after the reset: now it is EPIPE, the error that raises SIGPIPE without MSG_NOSIGNAL.
  CHECK(errno_of([&] { c.client.send_all("again"); }) == EPIPE);
  CHECK(counter.count() == 0);
}

TEST_CASE_FIXTURE(leak_check, "sendfile to a peer that has closed throws EPIPE or ECONNRESET and raises no SIGPIPE") {
  sigpipe_counter counter;
  const std::string content = pattern(64 * 1024);
  file_with file(content);
  connection c = connected("127.0.0.1:0");
  grove::timeout limit(10s);
  c.server.close();
  char byte;
  CHECK(c.client.recv(&byte, 1) == 0);
  int err = 0;
  for (int i = 0; i < 100 && err == 0; ++i) {
    err = errno_of([&] { c.client.sendfile(file.fd(), 0, content.size()); });
    if (err == 0) grove::sleep(1ms);
  }
  CHECK((err == EPIPE || err == ECONNRESET));
  CHECK(errno_of([&] { c.client.sendfile(file.fd(), 0, content.size()); }) == EPIPE);
  CHECK(counter.count() == 0);
  CHECK_FALSE(sigpipe_blocked_here());
}

TEST_CASE_FIXTURE(leak_check, "sendfile sends a file's bytes, from an offset, and stops where the file ends") {
  const std::string content = pattern((3u << 20) + 17);  // more than the socket buffers: sendfile waits
  file_with file(content);
  connection c = connected("127.0.0.1:0");
  task_scope tasks;
  grove::timeout limit(20s);
  auto sender = tasks.spawn([&] {
    std::vector<std::size_t> sent;
    sent.push_back(c.server.sendfile(file.fd(), 0, content.size()));
    sent.push_back(c.server.sendfile(file.fd(), 1000, 5000));
    sent.push_back(c.server.sendfile(file.fd(), static_cast<off_t>(content.size() - 10), 100));
    c.server.close();
    return sent;
  });
  const std::string got = read_to_end(c.client);
  CHECK(sender.get() == std::vector<std::size_t>{content.size(), 5000, 10});
  REQUIRE(got.size() == content.size() + 5000 + 10);
  const bool whole = got.compare(0, content.size(), content) == 0;
  CHECK(whole);
  const bool from_offset = got.compare(content.size(), 5000, content, 1000, 5000) == 0;
  CHECK(from_offset);
  CHECK(got.substr(content.size() + 5000) == content.substr(content.size() - 10));
}

TEST_CASE_FIXTURE(leak_check, "two sendfiles that wait in turn leave the thread's signal mask as they found it") {
  // sendfile keeps SIGPIPE blocked while it runs; when two tasks' sendfiles
  // wait and finish in turn, the thread must end with SIGPIPE unblocked, as it
  // began.
  sigpipe_counter counter;  // SIGPIPE unblocked here, as in a fresh thread
  REQUIRE_FALSE(sigpipe_blocked_here());
  const std::string content = pattern(32u << 20);  // far more than the socket buffers hold
  file_with file(content);
  connection one = connected("127.0.0.1:0");
  connection two = connected("127.0.0.1:0");
  task_scope tasks;
  grove::timeout limit(30s);
  auto first = tasks.spawn([&] { return one.server.sendfile(file.fd(), 0, content.size()); });
  auto second = tasks.spawn([&] { return two.server.sendfile(file.fd(), 0, content.size()); });
  grove::yield();  // both fill their buffers and wait
  std::string buf(content.size(), '\0');
  one.client.recv_exact(buf.data(), buf.size());  // the first finishes while the second waits
  CHECK(first.get() == content.size());
  two.client.recv_exact(buf.data(), buf.size());
  CHECK(second.get() == content.size());
  CHECK_FALSE(sigpipe_blocked_here());
  CHECK(counter.count() == 0);
}

// ---------------------------------------------------------------------------
// signals and closing

TEST_CASE_FIXTURE(leak_check,
                  "signals that interrupt system calls every millisecond (EINTR) lose no data and throw "
                  "nothing") {
  alarms = 0;
  struct sigaction sa {};
  sa.sa_handler = [](int) { alarms.fetch_add(1, std::memory_order_relaxed); };
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: blocking calls fail with EINTR
  struct sigaction old_action {};
  REQUIRE(::sigaction(SIGALRM, &sa, &old_action) == 0);
  const itimerval every_ms{{0, 1000}, {0, 1000}};
  itimerval old_timer{};
  REQUIRE(::setitimer(ITIMER_REAL, &every_ms, &old_timer) == 0);
  struct restore_signals {
    const struct sigaction& action;
    const itimerval& timer;
    ~restore_signals() {
      const itimerval off{};
      ::setitimer(ITIMER_REAL, &off, nullptr);
      // A SIGALRM raised before the timer stopped may still be on its way
      // (valgrind delivers signals late, to any thread): let it reach the
      // counting handler, not the default action, which ends the process.
      std::this_thread::sleep_for(20ms);
      sigset_t alarm_only;
      sigemptyset(&alarm_only);
      sigaddset(&alarm_only, SIGALRM);
      sigset_t old_mask;
      ::pthread_sigmask(SIG_BLOCK, &alarm_only, &old_mask);
      const timespec no_wait{0, 0};
      while (::sigtimedwait(&alarm_only, nullptr, &no_wait) == SIGALRM) {
      }
      ::sigaction(SIGALRM, &action, nullptr);
      ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
      ::setitimer(ITIMER_REAL, &timer, nullptr);
    }
  } restore{old_action, old_timer};

  const std::string payload = pattern(512 * 1024);
  connection c = connected("127.0.0.1:0");
  task_scope tasks;
  grove::timeout limit(20s);
  auto sender = tasks.spawn([&] {
    grove::sleep(50ms);
    c.server.send_all(payload.substr(0, 1000));
    grove::sleep(20ms);
    c.server.send_all(payload.substr(1000));
  });
  std::string got(payload.size(), '\0');
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_NOTHROW(c.client.recv_exact(got.data(), got.size()));
  CHECK(seconds_since(t0) >= 0.065);
  CHECK_NOTHROW(sender.get());
  const bool same = got == payload;
  CHECK(same);
  // A sleep, a connect and an accept under the same storm.
  const auto t1 = std::chrono::steady_clock::now();
  grove::sleep(30ms);
  CHECK(seconds_since(t1) >= 0.029);
  connection d = connected("[::1]:0");
  d.client.send_all("ok");
  char two[2];
  d.server.recv_exact(two, 2);
  CHECK(std::string(two, 2) == "ok");
  CHECK(alarms.load() >= 20);  // the timer really did fire throughout
}

TEST_CASE_FIXTURE(leak_check, "grove::close of a socket's descriptor wakes a task waiting in recv on it with EBADF") {
  connection c = connected("127.0.0.1:0");
  task_scope tasks;
  grove::timeout limit(10s);
  auto waiter = tasks.spawn([&] {
    char byte;
    return errno_of([&] { c.client.recv(&byte, 1); });
  });
  grove::yield();                     // it waits in recv
  const int fd = c.client.release();  // so that the socket does not close it again
  CHECK(grove::close(fd) == 0);
  CHECK(waiter.get() == EBADF);
}

TEST_CASE_FIXTURE(leak_check, "socket::close in one task wakes another task waiting in recv on it with EBADF") {
  connection c = connected("127.0.0.1:0");
  task_scope tasks;
  grove::timeout limit(10s);
  auto waiter = tasks.spawn([&] {
    char byte;
    return errno_of([&] { c.client.recv(&byte, 1); });
  });
  grove::yield();
  c.client.close();
  CHECK(waiter.get() == EBADF);
  CHECK_FALSE(c.client);
  char byte;
  CHECK(errno_of([&] { c.client.recv(&byte, 1); }) == EBADF);  // a closed socket says so
}

TEST_CASE_FIXTURE(leak_check, "grove::close of a raw descriptor wakes a task in wait_readable with EBADF") {
  int fds[2];
  REQUIRE(::pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
  task_scope tasks;
  grove::timeout limit(10s);
  auto waiter = tasks.spawn([&] { return errno_of([&] { grove::wait_readable(fds[0]); }); });
  auto timed = tasks.spawn([&] { return errno_of([&] { grove::wait_readable(fds[0], 10s); }); });
  grove::yield();
  CHECK(grove::close(fds[0]) == 0);
  CHECK(waiter.get() == EBADF);
  CHECK(timed.get() == EBADF);
  ::close(fds[1]);
}

// ---------------------------------------------------------------------------
// many connections

TEST_CASE_FIXTURE(leak_check,
                  "ten thousand simultaneous connections open, exchange a byte and close, leaving no "
                  "descriptor or task behind") {
  // The clients live in a child process (tests/runtime/conn_client.cpp), so
  // that each process needs about 10,000 descriptors (the hard limit here is
  // 20,000, and unprivileged).
  constexpr std::size_t total = 10000;
  constexpr rlim_t needed = total + 300;
  rlimit saved{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
  struct restore_limit {
    const rlimit& saved;
    ~restore_limit() { ::setrlimit(RLIMIT_NOFILE, &saved); }
  } restore{saved};
  REQUIRE_MESSAGE((saved.rlim_max == RLIM_INFINITY || saved.rlim_max >= needed),
                  "RLIMIT_NOFILE's hard limit is below " << needed);
  rlimit raised = saved;
  raised.rlim_cur = needed;
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &raised) == 0);

  grove::sleep(1ms);  // the hub has run: its stack is in the baseline
  const std::size_t fds_before = open_fd_count();
  std::size_t server_side_open = 0;
  std::size_t server_side_peak = 0;
  std::size_t server_saw_close = 0;
  std::size_t server_echoed = 0;
  {
    grove::stream_server server("127.0.0.1:0", [&](grove::socket conn, grove::address) {
      ++server_side_open;
      server_side_peak = std::max(server_side_peak, server_side_open);
      char byte;
      conn.recv_exact(&byte, 1);
      conn.send_all(&byte, 1);
      ++server_echoed;
      if (conn.recv(&byte, 1) == 0) ++server_saw_close;
      --server_side_open;
    });
    server.start();
    const std::uint16_t port = server.address().port();
    // Pipes: the child's ends must survive exec (no O_CLOEXEC), ours not.
    int to_child[2], from_child[2];
    REQUIRE(::pipe(to_child) == 0);
    REQUIRE(::pipe(from_child) == 0);
    ::fcntl(to_child[1], F_SETFD, FD_CLOEXEC);
    ::fcntl(from_child[0], F_SETFD, FD_CLOEXEC);
    const std::string args[] = {GROVE_CONN_CLIENT, std::to_string(port), std::to_string(total),
                                std::to_string(to_child[0]), std::to_string(from_child[1])};
    char* argv[] = {const_cast<char*>(args[0].c_str()), const_cast<char*>(args[1].c_str()),
                    const_cast<char*>(args[2].c_str()), const_cast<char*>(args[3].c_str()),
                    const_cast<char*>(args[4].c_str()), nullptr};
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      ::execv(argv[0], argv);
      _exit(127);
    }
    ::close(to_child[0]);
    ::close(from_child[1]);
    grove::timeout limit(300s);
    char ctl = 0;
    grove::wait_readable(from_child[0]);
    REQUIRE(::read(from_child[0], &ctl, 1) == 1);
    CHECK(ctl == 'O');
    while (server_side_open < total) grove::sleep(10ms);
    CHECK(server.connections() == total);
    CHECK(open_fd_count() >= fds_before + total);  // every connection's server end, open at once
    REQUIRE(::write(to_child[1], "G", 1) == 1);
    grove::wait_readable(from_child[0]);
    REQUIRE(::read(from_child[0], &ctl, 1) == 1);
    CHECK(ctl == 'E');
    CHECK(server_echoed == total);
    CHECK(server.connections() == total);  // still all open at once
    REQUIRE(::write(to_child[1], "C", 1) == 1);
    int status = 0;
    while (::waitpid(child, &status, WNOHANG) == 0) grove::sleep(10ms);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    ::close(to_child[1]);
    ::close(from_child[0]);
    while (server.connections() > 0) grove::sleep(10ms);
    server.stop();
  }
  CHECK(server_side_open == 0);
  CHECK(server_side_peak == total);
  CHECK(server_saw_close == total);
  CHECK(open_fd_count() == fds_before);
}
