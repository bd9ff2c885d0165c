// Hooked poll, ppoll, select, pselect, epoll_wait, epoll_pwait, name lookups and
// the fortified entry points in tasks, each compared with what libc does natively.
#include <arpa/inet.h>
#include <dirent.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "hooks_support.hpp"

// glibc's checked entry points, which fortified builds call; no header declares
// them unless _FORTIFY_SOURCE is on.
extern "C" {
ssize_t __read_chk(int fd, void* buf, size_t nbytes, size_t buflen);
int __poll_chk(pollfd* fds, nfds_t n, int timeout, size_t fdslen);
}

using namespace std::chrono_literals;
using namespace grove_test;

namespace {

// a_pipe is a blocking pipe, closed when it goes.
struct a_pipe {
  int fd[2] = {-1, -1};
  a_pipe() { REQUIRE(::pipe(fd) == 0); }
  a_pipe(const a_pipe&) = delete;
  a_pipe& operator=(const a_pipe&) = delete;
  ~a_pipe() {
    for (int f : fd) {
      if (f >= 0) ::close(f);
    }
  }
  int read_end() const { return fd[0]; }
  int write_end() const { return fd[1]; }
};

// write_later spawns a task that writes one byte to fd after d.
grove::task<void> write_later(int fd, std::chrono::milliseconds d) {
  return grove::spawn([fd, d] {
    grove::sleep(d);
    CHECK(::write(fd, "x", 1) == 1);
  });
}

// open_descriptors counts this process's open descriptors.
int open_descriptors() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  REQUIRE(d != nullptr);
  while (::readdir(d) != nullptr) ++n;
  ::closedir(d);
  return n;
}

// a_closed_descriptor returns a descriptor number that is not open.
int a_closed_descriptor() {
  const int fd = ::dup(0);
  REQUIRE(fd >= 0);
  ::close(fd);
  return fd;
}

// lookup is what getaddrinfo answered, flattened to compare two runs.
struct lookup {
  int rc = 0;
  std::vector<std::string> entries;
  bool operator==(const lookup&) const = default;
};
doctest::String toString(const lookup& l) {
  std::string s = "rc " + std::to_string(l.rc) + ":";
  for (const auto& e : l.entries) s += " [" + e + "]";
  return s.c_str();
}

lookup look_up(const char* node, const char* service, const addrinfo* hints) {
  addrinfo* list = nullptr;
  lookup out;
  out.rc = ::getaddrinfo(node, service, hints, &list);
  if (out.rc != 0) return out;
  for (addrinfo* a = list; a != nullptr; a = a->ai_next) {
    std::string e = std::to_string(a->ai_family) + "/" + std::to_string(a->ai_socktype) + "/" +
                    std::to_string(a->ai_protocol) + "/" + (a->ai_canonname ? a->ai_canonname : "-") + "/";
    e.append(reinterpret_cast<const char*>(a->ai_addr), a->ai_addrlen);
    out.entries.push_back(e);
  }
  ::freeaddrinfo(list);
  return out;
}

// host_entry is a hostent flattened to compare two runs.
std::string host_entry(const hostent* h) {
  if (h == nullptr) return "null";
  std::string s = std::string(h->h_name) + "/" + std::to_string(h->h_addrtype) + "/" + std::to_string(h->h_length);
  for (char** a = h->h_aliases; *a != nullptr; ++a) s += " alias " + std::string(*a);
  for (char** a = h->h_addr_list; *a != nullptr; ++a) s += " addr " + std::string(*a, h->h_length);
  return s;
}

}  // namespace

// ---- poll, ppoll ----

TEST_CASE_FIXTURE(leak_check, "poll in a task waits cooperatively: other tasks run while it waits") {
  socket_pair p;
  ticker t;
  auto sender = grove::spawn([&] {
    grove::sleep(60ms);
    CHECK(::send(p.fd[1], "x", 1, 0) == 1);
  });
  pollfd fds{p.fd[0], POLLIN, 0};
  CHECK(::poll(&fds, 1, -1) == 1);
  CHECK(fds.revents == POLLIN);
  CHECK(t.ticks() >= 3);
  sender.join();
}

TEST_CASE_FIXTURE(leak_check, "poll times out as natively, and other tasks run meanwhile") {
  a_pipe p;
  ticker t;
  pollfd hooked_fds{p.read_end(), POLLIN, 0};
  const auto t0 = std::chrono::steady_clock::now();
  const outcome hooked = outcome_of([&] { return ::poll(&hooked_fds, 1, 80); });
  const double took = seconds_since(t0);
  pollfd native_fds{p.read_end(), POLLIN, 0};
  const outcome native = natively([&] { return outcome_of([&] { return ::poll(&native_fds, 1, 80); }); });
  CHECK(hooked == native);
  CHECK(hooked == outcome{0, 0});
  CHECK(hooked_fds.revents == 0);
  CHECK(took >= 0.079);
  CHECK(took < 2.0);
  CHECK(t.ticks() >= 3);
}

TEST_CASE_FIXTURE(leak_check, "poll of several descriptors wakes for the one that becomes ready, as natively") {
  a_pipe a, b;
  ticker t;
  auto writer = write_later(b.write_end(), 60ms);
  pollfd hooked[3] = {{a.read_end(), POLLIN, 0}, {-1, POLLIN, 0}, {b.read_end(), POLLIN | POLLPRI, 0}};
  CHECK(::poll(hooked, 3, 5000) == 1);
  CHECK(t.ticks() >= 3);
  writer.join();
  pollfd native[3] = {{a.read_end(), POLLIN, 0}, {-1, POLLIN, 0}, {b.read_end(), POLLIN | POLLPRI, 0}};
  CHECK(natively([&] { return ::poll(native, 3, 0); }) == 1);
  for (int i = 0; i < 3; ++i) CHECK(hooked[i].revents == native[i].revents);
  CHECK(hooked[2].revents == POLLIN);
}

TEST_CASE_FIXTURE(leak_check, "poll of one descriptor listed twice reports each entry as natively") {
  socket_pair p;
  auto sender = grove::spawn([&] {
    grove::sleep(30ms);
    CHECK(::send(p.fd[1], "x", 1, 0) == 1);
  });
  pollfd hooked[2] = {{p.fd[0], POLLPRI, 0}, {p.fd[0], POLLIN, 0}};
  CHECK(::poll(hooked, 2, 5000) == 1);
  sender.join();
  pollfd native[2] = {{p.fd[0], POLLPRI, 0}, {p.fd[0], POLLIN, 0}};
  CHECK(natively([&] { return ::poll(native, 2, 0); }) == 1);
  CHECK(hooked[0].revents == native[0].revents);
  CHECK(hooked[1].revents == native[1].revents);
  CHECK(hooked[1].revents == POLLIN);
}

TEST_CASE_FIXTURE(leak_check, "poll for writing waits until a full socket drains") {
  socket_pair p;
  REQUIRE(::fcntl(p.fd[0], F_SETFL, O_NONBLOCK) == 0);
  const std::string block(64 * 1024, 'w');
  while (::send(p.fd[0], block.data(), block.size(), 0) > 0) {
  }
  REQUIRE(::fcntl(p.fd[0], F_SETFL, 0) == 0);
  ticker t;
  auto drainer = grove::spawn([&] {
    grove::sleep(60ms);
    std::vector<char> buf(1 << 20);
    while (::recv(p.fd[1], buf.data(), buf.size(), MSG_DONTWAIT) > 0) {
    }
  });
  pollfd fds{p.fd[0], POLLOUT, 0};
  CHECK(::poll(&fds, 1, 5000) == 1);
  CHECK(fds.revents == POLLOUT);
  CHECK(t.ticks() >= 3);
  drainer.join();
}

TEST_CASE_FIXTURE(leak_check, "poll reports POLLNVAL for a closed descriptor at once, as natively") {
  const int closed = a_closed_descriptor();
  pollfd hooked{closed, POLLIN, 0};
  const auto t0 = std::chrono::steady_clock::now();
  const outcome h = outcome_of([&] { return ::poll(&hooked, 1, 5000); });
  CHECK(seconds_since(t0) < 1.0);
  pollfd native{closed, POLLIN, 0};
  const outcome n = natively([&] { return outcome_of([&] { return ::poll(&native, 1, 5000); }); });
  CHECK(h == n);
  CHECK(h == outcome{1, 0});
  CHECK(hooked.revents == POLLNVAL);
  CHECK(hooked.revents == native.revents);
}

TEST_CASE_FIXTURE(leak_check, "poll with no descriptors sleeps cooperatively for its timeout") {
  ticker t;
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(::poll(nullptr, 0, 60) == 0);
  CHECK(seconds_since(t0) >= 0.059);
  CHECK(t.ticks() >= 3);
}

TEST_CASE_FIXTURE(leak_check, "poll that waited keeps errno as it was, whatever other tasks did to it") {
  a_pipe p;
  auto writer = grove::spawn([&] {
    grove::sleep(30ms);
    errno = EIO;  // another task's failure, on the same thread
    CHECK(::write(p.write_end(), "x", 1) == 1);
    errno = EIO;
  });
  pollfd fds[2] = {{p.read_end(), POLLIN, 0}, {p.write_end(), 0, 0}};
  errno = 12345;
  CHECK(::poll(fds, 2, 5000) == 1);
  CHECK(errno == 12345);
  errno = 12345;
  CHECK(::poll(fds, 2, 30) == 1);  // still readable: found by the first look
  CHECK(errno == 12345);
  writer.join();
}

TEST_CASE_FIXTURE(leak_check, "poll with a bad pointer fails with EFAULT, as natively") {
  volatile std::uintptr_t unmapped = 8;  // volatile: the compiler would rightly refuse a known bad pointer
  auto* bad = reinterpret_cast<pollfd*>(unmapped);
  const outcome hooked = outcome_of([&] { return ::poll(bad, 1, 50); });
  CHECK(hooked == natively([&] { return outcome_of([&] { return ::poll(bad, 1, 50); }); }));
  CHECK(hooked.error == EFAULT);
}

TEST_CASE_FIXTURE(leak_check, "a task killed in poll leaves no descriptor behind") {
  a_pipe a, b;
  const int before = open_descriptors();
  auto poller = grove::spawn([&] {
    pollfd fds[2] = {{a.read_end(), POLLIN, 0}, {b.read_end(), POLLIN, 0}};
    ::poll(fds, 2, -1);
  });
  grove::sleep(20ms);
  CHECK(open_descriptors() == before + 1);  // the scratch epoll set it waits on
  poller.kill();
  CHECK(open_descriptors() == before);
}

TEST_CASE_FIXTURE(leak_check, "ppoll waits cooperatively and times out as natively") {
  a_pipe p;
  ticker t;
  const timespec timeout{0, 80'000'000};
  pollfd hooked_fds{p.read_end(), POLLIN, 0};
  const auto t0 = std::chrono::steady_clock::now();
  const outcome hooked = outcome_of([&] { return ::ppoll(&hooked_fds, 1, &timeout, nullptr); });
  CHECK(seconds_since(t0) >= 0.079);
  CHECK(t.ticks() >= 3);
  pollfd native_fds{p.read_end(), POLLIN, 0};
  CHECK(hooked == natively([&] { return outcome_of([&] { return ::ppoll(&native_fds, 1, &timeout, nullptr); }); }));
  CHECK(hooked == outcome{0, 0});
  auto writer = write_later(p.write_end(), 30ms);
  sigset_t mask;
  sigemptyset(&mask);
  CHECK(::ppoll(&hooked_fds, 1, nullptr, &mask) == 1);
  CHECK(hooked_fds.revents == POLLIN);
  writer.join();
}

TEST_CASE_FIXTURE(leak_check, "ppoll with an invalid timeout fails with EINVAL, as natively") {
  a_pipe p;
  const timespec bad{0, 1'000'000'000};
  pollfd fds{p.read_end(), POLLIN, 0};
  const outcome hooked = outcome_of([&] { return ::ppoll(&fds, 1, &bad, nullptr); });
  CHECK(hooked == natively([&] { return outcome_of([&] { return ::ppoll(&fds, 1, &bad, nullptr); }); }));
  CHECK(hooked == outcome{-1, EINVAL});
}

// ---- select, pselect ----

TEST_CASE_FIXTURE(leak_check, "select on pipes waits cooperatively and reports the ready ones, as natively") {
  a_pipe a, b;
  ticker t;
  auto writer = write_later(b.write_end(), 60ms);
  const int nfds = std::max(a.read_end(), b.read_end()) + 1;
  fd_set hooked;
  FD_ZERO(&hooked);
  FD_SET(a.read_end(), &hooked);
  FD_SET(b.read_end(), &hooked);
  timeval timeout{2, 0};
  CHECK(::select(nfds, &hooked, nullptr, nullptr, &timeout) == 1);
  CHECK(t.ticks() >= 3);
  writer.join();
  CHECK(FD_ISSET(b.read_end(), &hooked));
  CHECK(!FD_ISSET(a.read_end(), &hooked));
  // As Linux does, the time not slept is left in the timeout.
  CHECK(timeout.tv_sec == 1);
  CHECK(timeout.tv_usec > 500'000);
  fd_set native;
  FD_ZERO(&native);
  FD_SET(a.read_end(), &native);
  FD_SET(b.read_end(), &native);
  timeval zero{0, 0};
  CHECK(natively([&] { return ::select(nfds, &native, nullptr, nullptr, &zero); }) == 1);
  CHECK(std::memcmp(&hooked, &native, sizeof hooked) == 0);
}

TEST_CASE_FIXTURE(leak_check, "select that times out clears the sets and the timeout, as natively") {
  a_pipe p;
  socket_pair s;
  ticker t;
  auto run = [&] {
    fd_set r, w;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_SET(p.read_end(), &r);
    FD_SET(s.fd[0], &r);
    timeval timeout{0, 80'000};
    const auto t0 = std::chrono::steady_clock::now();
    const int n = ::select(std::max(p.read_end(), s.fd[0]) + 1, &r, &w, nullptr, &timeout);
    const double took = seconds_since(t0);
    fd_set empty;
    FD_ZERO(&empty);
    return std::vector<long>{n, std::memcmp(&r, &empty, sizeof r) == 0, timeout.tv_sec, timeout.tv_usec, took >= 0.079};
  };
  const auto hooked = run();
  CHECK(t.ticks() >= 3);
  CHECK(hooked == natively(run));
  CHECK(hooked == std::vector<long>{0, 1, 0, 0, 1});
}

TEST_CASE_FIXTURE(leak_check, "select for writing and for exceptions reports as natively") {
  socket_pair s;
  a_pipe p;
  auto run = [&] {
    fd_set r, w, e;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_ZERO(&e);
    FD_SET(p.read_end(), &r);
    FD_SET(s.fd[0], &w);
    FD_SET(s.fd[0], &e);
    timeval timeout{1, 0};
    const int n = ::select(std::max(p.read_end(), s.fd[0]) + 1, &r, &w, &e, &timeout);
    return std::vector<int>{n, FD_ISSET(p.read_end(), &r), FD_ISSET(s.fd[0], &w), FD_ISSET(s.fd[0], &e)};
  };
  const auto hooked = run();
  CHECK(hooked == natively(run));
  CHECK(hooked == std::vector<int>{1, 0, 1, 0});
}

TEST_CASE_FIXTURE(leak_check, "select with bad arguments fails as natively: EINVAL, EBADF") {
  const int closed = a_closed_descriptor();
  auto run = [closed](int nfds, timeval timeout, bool with_closed) {
    fd_set r;
    FD_ZERO(&r);
    if (with_closed) FD_SET(closed, &r);
    return outcome_of([&] { return ::select(nfds, &r, nullptr, nullptr, &timeout); });
  };
  const outcome negative_nfds = run(-1, {1, 0}, false);
  const outcome negative_timeout = run(1, {-1, 0}, false);
  const outcome closed_fd = run(closed + 1, {1, 0}, true);
  CHECK(negative_nfds == outcome{-1, EINVAL});
  CHECK(negative_timeout == outcome{-1, EINVAL});
  CHECK(closed_fd == outcome{-1, EBADF});
  CHECK(negative_nfds == natively([&] { return run(-1, {1, 0}, false); }));
  CHECK(negative_timeout == natively([&] { return run(1, {-1, 0}, false); }));
  CHECK(closed_fd == natively([&] { return run(closed + 1, {1, 0}, true); }));
}

TEST_CASE_FIXTURE(leak_check, "select with nfds of FD_SETSIZE waits cooperatively, as the kernel allows") {
  a_pipe p;
  auto writer = write_later(p.write_end(), 30ms);
  fd_set r;
  FD_ZERO(&r);
  FD_SET(p.read_end(), &r);
  CHECK(::select(FD_SETSIZE, &r, nullptr, nullptr, nullptr) == 1);
  CHECK(FD_ISSET(p.read_end(), &r));
  writer.join();
}

TEST_CASE_FIXTURE(leak_check, "select with no descriptors sleeps cooperatively for its timeout") {
  ticker t;
  timeval timeout{0, 60'000};
  CHECK(::select(0, nullptr, nullptr, nullptr, &timeout) == 0);
  CHECK(t.ticks() >= 3);
  CHECK(timeout.tv_sec == 0);
  CHECK(timeout.tv_usec == 0);
}

TEST_CASE_FIXTURE(leak_check, "pselect waits cooperatively, leaving its timeout alone") {
  a_pipe p;
  ticker t;
  auto writer = write_later(p.write_end(), 60ms);
  fd_set r;
  FD_ZERO(&r);
  FD_SET(p.read_end(), &r);
  const timespec timeout{2, 0};
  sigset_t mask;
  sigemptyset(&mask);
  CHECK(::pselect(p.read_end() + 1, &r, nullptr, nullptr, &timeout, &mask) == 1);
  CHECK(FD_ISSET(p.read_end(), &r));
  CHECK(t.ticks() >= 3);
  writer.join();
  const timespec bad{0, -1};
  const outcome hooked = outcome_of([&] { return ::pselect(p.read_end() + 1, &r, nullptr, nullptr, &bad, nullptr); });
  CHECK(hooked == outcome{-1, EINVAL});
}

// ---- epoll_wait, epoll_pwait ----

TEST_CASE_FIXTURE(leak_check, "epoll_wait on the program's own epoll set waits cooperatively") {
  a_pipe p;
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  REQUIRE(ep >= 0);
  epoll_event e{};
  e.events = EPOLLIN;
  e.data.u64 = 42;
  REQUIRE(::epoll_ctl(ep, EPOLL_CTL_ADD, p.read_end(), &e) == 0);
  ticker t;
  epoll_event got[4] = {};
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(::epoll_wait(ep, got, 4, 80) == 0);  // nothing yet: times out
  CHECK(seconds_since(t0) >= 0.079);
  auto writer = write_later(p.write_end(), 60ms);
  CHECK(::epoll_wait(ep, got, 4, -1) == 1);
  const std::uint64_t data = got[0].data.u64;  // epoll_event is packed: copy before comparing
  const std::uint32_t events = got[0].events;
  CHECK(data == 42);
  CHECK(events == EPOLLIN);
  CHECK(t.ticks() >= 6);
  writer.join();
  sigset_t mask;
  sigemptyset(&mask);
  CHECK(::epoll_pwait(ep, got, 4, 1000, &mask) == 1);  // still readable
  const outcome hooked = outcome_of([&] { return ::epoll_wait(ep, got, 0, 100); });
  CHECK(hooked == natively([&] { return outcome_of([&] { return ::epoll_wait(ep, got, 0, 100); }); }));
  CHECK(hooked == outcome{-1, EINVAL});
  ::close(ep);
}

TEST_CASE_FIXTURE(leak_check, "epoll_pwait waits cooperatively and times out as natively") {
  a_pipe p;
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  REQUIRE(ep >= 0);
  epoll_event e{};
  e.events = EPOLLIN;
  REQUIRE(::epoll_ctl(ep, EPOLL_CTL_ADD, p.read_end(), &e) == 0);
  ticker t;
  epoll_event got{};
  const outcome hooked = outcome_of([&] { return ::epoll_pwait(ep, &got, 1, 60, nullptr); });
  CHECK(t.ticks() >= 3);
  CHECK(hooked == natively([&] { return outcome_of([&] { return ::epoll_pwait(ep, &got, 1, 60, nullptr); }); }));
  CHECK(hooked == outcome{0, 0});
  ::close(ep);
}

TEST_CASE_FIXTURE(leak_check,
                  "a loop of poll, select and epoll_wait calls that never wait gives way: a sleeping task and a "
                  "reading task still wake") {
  a_pipe p;
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  REQUIRE(ep >= 0);
  epoll_event e{};
  e.events = EPOLLOUT;  // an empty pipe's write end: always ready
  REQUIRE(::epoll_ctl(ep, EPOLL_CTL_ADD, p.write_end(), &e) == 0);
  bool slept = false, read_it = false;
  auto sleeper = grove::spawn([&] {
    ::usleep(20'000);
    slept = true;
  });
  auto reader = grove::spawn([&] {
    char c;
    read_it = ::read(p.read_end(), &c, 1) == 1;
  });
  // This task is an event loop that never waits, as redis-benchmark's threads
  // become: its polls have a zero timeout or find the pipe writable at once.
  // The other two only wake from the hub's poll of timers and I/O.
  const auto t0 = std::chrono::steady_clock::now();
  long spins = 0;
  while (!(slept && read_it) && seconds_since(t0) < 10) {
    epoll_event got{};
    pollfd out{p.write_end(), POLLOUT, 0};
    timeval zero{0, 0};
    switch (spins % 3) {
      case 0: ::epoll_wait(ep, &got, 1, 1000); break;
      case 1: ::poll(&out, 1, 0); break;
      default: ::select(0, nullptr, nullptr, nullptr, &zero); break;
    }
    if (++spins == 1) REQUIRE(::write(p.write_end(), "x", 1) == 1);
  }
  CHECK(slept);
  CHECK(read_it);
  CHECK(seconds_since(t0) < 5);
  sleeper.join();
  reader.join();
  ::close(ep);
}

TEST_CASE("on a thread with no hub, poll, select and epoll_wait go straight to libc") {
  const outcome r = natively([] {
    a_pipe p;
    pollfd fds{p.read_end(), POLLIN, 0};
    timeval timeout{0, 10'000};
    fd_set set;
    FD_ZERO(&set);
    FD_SET(p.read_end(), &set);
    const int ep = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event got{};
    const int n = ::poll(&fds, 1, 10) + ::select(p.read_end() + 1, &set, nullptr, nullptr, &timeout) +
                  ::epoll_wait(ep, &got, 1, 10);
    ::close(ep);
    return outcome{n, 0};
  });
  CHECK(r == outcome{0, 0});
}

// ---- names ----

// pool_resolver: lookups go to the thread pool (GROVE_RESOLVER=thread, which
// the hooks_tests_thread_resolver run sets) rather than to the hub.
bool pool_resolver() {
  const char* v = std::getenv("GROVE_RESOLVER");
  return v != nullptr && std::string(v) == "thread";
}

TEST_CASE_FIXTURE(leak_check,
                  "getaddrinfo(\"localhost\") returns the same as natively, and other tasks run meanwhile") {
  addrinfo hints{};
  hints.ai_flags = AI_CANONNAME;
  hints.ai_socktype = SOCK_STREAM;
  bool ran = false;
  auto other = grove::spawn([&] { ran = true; });
  const lookup hooked = look_up("localhost", "80", &hints);
  // With GROVE_RESOLVER=thread the lookup ran on the pool while this task
  // waited; by default /etc/hosts answers it on the hub, without a switch.
  CHECK(ran == pool_resolver());
  other.join();
  CHECK(hooked.rc == 0);
  CHECK(!hooked.entries.empty());
  CHECK(hooked == natively([&] { return look_up("localhost", "80", &hints); }));
  CHECK(look_up("127.0.0.1", nullptr, nullptr) == natively([] { return look_up("127.0.0.1", nullptr, nullptr); }));
}

TEST_CASE_FIXTURE(leak_check, "getaddrinfo fails with the native error code, and leaves *res alone") {
  addrinfo hints{};
  hints.ai_flags = AI_NUMERICHOST;
  const lookup hooked = look_up("not-a-number", "80", &hints);
  CHECK(hooked == natively([&] { return look_up("not-a-number", "80", &hints); }));
  CHECK(hooked.rc == EAI_NONAME);
  addrinfo bad_hints{};
  bad_hints.ai_flags = AI_CANONNAME;  // and no name: EAI_BADFLAGS
  CHECK(look_up(nullptr, "80", &bad_hints) == natively([&] { return look_up(nullptr, "80", &bad_hints); }));
  addrinfo* untouched = reinterpret_cast<addrinfo*>(0x1234);
  CHECK(::getaddrinfo("not-a-number", "80", &hints, &untouched) == EAI_NONAME);
  CHECK(untouched == reinterpret_cast<addrinfo*>(0x1234));
}

TEST_CASE_FIXTURE(leak_check, "getnameinfo of 127.0.0.1 answers as natively") {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(80);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  auto run = [&](int flags, socklen_t hostlen) {
    char host[NI_MAXHOST];
    char serv[NI_MAXSERV];
    std::memset(host, '#', sizeof host);
    std::memset(serv, '#', sizeof serv);
    const int rc =
        ::getnameinfo(reinterpret_cast<const sockaddr*>(&a), sizeof a, host, hostlen, serv, sizeof serv, flags);
    return std::to_string(rc) + "|" + std::string(host, sizeof host) + "|" + std::string(serv, sizeof serv);
  };
  for (int flags : {NI_NUMERICHOST | NI_NUMERICSERV, NI_NAMEREQD, 0}) {
    CAPTURE(flags);
    CHECK(run(flags, NI_MAXHOST) == natively([&] { return run(flags, NI_MAXHOST); }));
  }
  CHECK(run(NI_NUMERICHOST, 3) == natively([&] { return run(NI_NUMERICHOST, 3); }));  // EAI_OVERFLOW
}

TEST_CASE_FIXTURE(leak_check, "gethostbyname and gethostbyaddr answer as natively, h_errno included") {
  bool ran = false;
  auto other = grove::spawn([&] { ran = true; });
  const std::string hooked = host_entry(::gethostbyname("localhost"));
  CHECK(ran == pool_resolver());
  other.join();
  CHECK(hooked != "null");
  CHECK(hooked == natively([] { return host_entry(::gethostbyname("localhost")); }));
  h_errno = 0;
  const std::string numeric = host_entry(::gethostbyname("127.0.0.1"));
  CHECK(numeric == natively([] { return host_entry(::gethostbyname("127.0.0.1")); }));
  const in_addr loopback{htonl(INADDR_LOOPBACK)};
  const std::string by_addr = host_entry(::gethostbyaddr(&loopback, sizeof loopback, AF_INET));
  CHECK(by_addr == natively([&] { return host_entry(::gethostbyaddr(&loopback, sizeof loopback, AF_INET)); }));
  h_errno = 0;
  CHECK(::gethostbyaddr(&loopback, 3, AF_INET) == nullptr);  // a bad length
  const int hooked_herr = h_errno;
  CHECK(hooked_herr == natively([&] {
          h_errno = 0;
          ::gethostbyaddr(&loopback, 3, AF_INET);
          return h_errno;
        }));
}

TEST_CASE_FIXTURE(leak_check, "gethostbyname_r fills the caller's buffer as natively, ERANGE included") {
  auto run = [](std::size_t buflen) {
    hostent entry{};
    hostent* result = reinterpret_cast<hostent*>(0x1);
    int herr = -1;
    std::vector<char> buf(buflen + 1);
    // An odd address, to show the layout does not depend on where the worker's copy is.
    const int rc = ::gethostbyname_r("localhost", &entry, buf.data() + 1, buflen, &result, &herr);
    const bool in_buffer = result == nullptr || (entry.h_name >= buf.data() && entry.h_name < buf.data() + buf.size());
    return std::to_string(rc) + "|" + std::to_string(herr) + "|" + std::to_string(in_buffer) + "|" +
           (result == &entry    ? host_entry(result)
            : result == nullptr ? "null"
                                : "other");
  };
  const std::string hooked = run(4096);
  CHECK(hooked.rfind("0|", 0) == 0);
  CHECK(hooked == natively([&] { return run(4096); }));
  CHECK(run(8) == natively([&] { return run(8); }));  // ERANGE
}

// ---- fortified entry points ----

TEST_CASE_FIXTURE(leak_check, "fortified __read_chk and __poll_chk in a task wait cooperatively") {
  a_pipe p;
  ticker t;
  auto writer = write_later(p.write_end(), 60ms);
  char buf[8];
  CHECK(__read_chk(p.read_end(), buf, sizeof buf, sizeof buf) == 1);
  CHECK(t.ticks() >= 3);
  writer.join();
  auto writer2 = write_later(p.write_end(), 60ms);
  pollfd fds{p.read_end(), POLLIN, 0};
  CHECK(__poll_chk(&fds, 1, -1, sizeof fds) == 1);
  CHECK(t.ticks() >= 6);
  writer2.join();
}

TEST_CASE_FIXTURE(leak_check, "fortified __read_chk with a length past the buffer aborts, as glibc does") {
  a_pipe p;
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // Quietly: glibc's message goes to stderr, and doctest's crash handler would report in the child too.
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, STDOUT_FILENO);
    ::dup2(null, STDERR_FILENO);
    ::signal(SIGABRT, SIG_DFL);
    char buf[4];
    __read_chk(p.read_end(), buf, 16, sizeof buf);
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGABRT);
}

TEST_CASE_FIXTURE(leak_check, "select on exceptions of a hung-up socket times out as natively, without spinning") {
  // epoll reports the hang-up, select's exception set does not: the wait wakes
  // for nothing, and must back off rather than burn the CPU.
  socket_pair s;
  ::close(s.fd[1]);
  s.fd[1] = -1;
  auto run = [&] {
    fd_set e;
    FD_ZERO(&e);
    FD_SET(s.fd[0], &e);
    timeval timeout{0, 200'000};
    return outcome_of([&] { return ::select(s.fd[0] + 1, nullptr, nullptr, &e, &timeout); });
  };
  timespec cpu0{}, cpu1{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu0);
  const outcome hooked = run();
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu1);
  const double cpu =
      static_cast<double>(cpu1.tv_sec - cpu0.tv_sec) + static_cast<double>(cpu1.tv_nsec - cpu0.tv_nsec) / 1e9;
  CHECK(hooked == natively(run));
  CHECK(hooked == outcome{0, 0});
  CHECK(cpu < 0.05);
}
