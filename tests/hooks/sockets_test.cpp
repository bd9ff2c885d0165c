// Hooked descriptor I/O in tasks: sockets, pipes, their flags, timeouts and
// errors, each compared with what libc does natively.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/timerfd.h>
#include <sys/uio.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include <grove/timeout.hpp>

#include "hooks_support.hpp"

using namespace std::chrono_literals;
using namespace grove_test;

namespace {

// listener is a blocking TCP socket listening on 127.0.0.1 at a free port.
struct listener {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  listener() {
    REQUIRE(fd >= 0);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    REQUIRE(::listen(fd, 64) == 0);
  }
  listener(const listener&) = delete;
  listener& operator=(const listener&) = delete;
  ~listener() { ::close(fd); }
  const sockaddr* where() const { return reinterpret_cast<const sockaddr*>(&addr); }
};

int tcp_socket() { return ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); }

void set_timeout(int fd, int option, std::chrono::microseconds t) {
  timeval tv{static_cast<time_t>(t.count() / 1'000'000), static_cast<suseconds_t>(t.count() % 1'000'000)};
  REQUIRE(::setsockopt(fd, SOL_SOCKET, option, &tv, sizeof tv) == 0);
}

// a_free_port returns a loopback address where nothing listens.
sockaddr_in a_free_port() {
  listener l;
  return l.addr;  // closed when l goes
}

}  // namespace

TEST_CASE_FIXTURE(leak_check, "a blocking recv in a task waits on the hub while other tasks run") {
  socket_pair p;
  ticker t;
  auto sender = grove::spawn([&] {
    grove::sleep(60ms);
    CHECK(::send(p.fd[1], "hello", 5, 0) == 5);
  });
  char buf[16] = {};
  CHECK(::recv(p.fd[0], buf, sizeof buf, 0) == 5);
  CHECK(std::string(buf) == "hello");
  CHECK(t.ticks() >= 3);
  sender.join();
}

TEST_CASE_FIXTURE(leak_check, "read and write on a blocking pipe wait cooperatively, and a big write arrives whole") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  ticker t;
  const std::string big(1 << 20, 'p');  // far more than the pipe holds
  auto writer = grove::spawn([&] { return ::write(fds[1], big.data(), big.size()); });
  std::string got;
  std::vector<char> buf(10000);
  while (got.size() < big.size()) {
    const ssize_t n = ::read(fds[0], buf.data(), buf.size());
    REQUIRE(n > 0);
    got.append(buf.data(), static_cast<std::size_t>(n));
  }
  CHECK(writer.get() == static_cast<ssize_t>(big.size()));
  CHECK(got == big);
  CHECK((::fcntl(fds[0], F_GETFL) & O_NONBLOCK) == 0);  // the pipe stayed blocking
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST_CASE_FIXTURE(leak_check, "a descriptor the program made non-blocking still returns EAGAIN at once") {
  socket_pair p;
  REQUIRE(::fcntl(p.fd[0], F_SETFL, ::fcntl(p.fd[0], F_GETFL) | O_NONBLOCK) == 0);
  char c;
  const outcome hooked = outcome_of([&] { return ::recv(p.fd[0], &c, 1, 0); });
  const outcome native = natively([&] { return outcome_of([&] { return ::recv(p.fd[0], &c, 1, 0); }); });
  CHECK(hooked == native);
  CHECK(hooked.error == EAGAIN);
  int on = 0;
  REQUIRE(::ioctl(p.fd[0], FIONBIO, &on) == 0);  // blocking again, through ioctl this time
  auto sender = grove::spawn([&] { ::send(p.fd[1], "x", 1, 0); });
  CHECK(::recv(p.fd[0], &c, 1, 0) == 1);
  sender.join();
}

TEST_CASE_FIXTURE(leak_check,
                  "fcntl64, the fcntl of programs built with _FILE_OFFSET_BITS=64, makes a descriptor non-blocking "
                  "for the hooks too") {
  socket_pair p;
  REQUIRE(::fcntl64(p.fd[0], F_SETFL, ::fcntl64(p.fd[0], F_GETFL) | O_NONBLOCK) == 0);
  CHECK((::fcntl64(p.fd[0], F_GETFL) & O_NONBLOCK) != 0);
  char c;
  // Unseen, the flag would leave recv waiting (until the scope's limit) instead of returning EAGAIN.
  const auto hooked = grove::with_timeout(5s, [&] { return outcome_of([&] { return ::recv(p.fd[0], &c, 1, 0); }); });
  REQUIRE(hooked.has_value());
  CHECK(*hooked == outcome{-1, EAGAIN});
  REQUIRE(::fcntl64(p.fd[0], F_SETFL, 0) == 0);  // blocking again: recv waits for the sender
  auto sender = grove::spawn([&] {
    grove::sleep(20ms);
    ::send(p.fd[1], "y", 1, 0);
  });
  CHECK(::recv(p.fd[0], &c, 1, 0) == 1);
  CHECK(c == 'y');
  sender.join();
}

TEST_CASE_FIXTURE(leak_check, "recv with MSG_DONTWAIT on a blocking socket returns EAGAIN at once") {
  socket_pair p;
  char c;
  const outcome hooked = outcome_of([&] { return ::recv(p.fd[0], &c, 1, MSG_DONTWAIT); });
  CHECK(hooked == outcome{-1, EAGAIN});
}

TEST_CASE_FIXTURE(leak_check, "fcntl F_GETFL shows the program's own flags, never the hooks'") {
  listener l;
  const int fd = tcp_socket();
  CHECK((::fcntl(fd, F_GETFL) & O_NONBLOCK) == 0);
  int seen_during_connect = -1;
  auto looker = grove::spawn([&] { seen_during_connect = ::fcntl(fd, F_GETFL) & O_NONBLOCK; });
  REQUIRE(::connect(fd, l.where(), sizeof l.addr) == 0);
  looker.join();
  CHECK(seen_during_connect == 0);
  CHECK((::fcntl(fd, F_GETFL) & O_NONBLOCK) == 0);
  ::close(fd);
}

TEST_CASE_FIXTURE(leak_check, "SO_RCVTIMEO ends a blocking recv with EAGAIN, as the kernel would") {
  socket_pair p;
  set_timeout(p.fd[0], SO_RCVTIMEO, 80ms);
  ticker t;
  char c;
  const auto t0 = std::chrono::steady_clock::now();
  const outcome hooked = outcome_of([&] { return ::recv(p.fd[0], &c, 1, 0); });
  const double took = seconds_since(t0);
  const outcome native = natively([&] { return outcome_of([&] { return ::recv(p.fd[0], &c, 1, 0); }); });
  CHECK(hooked == native);
  CHECK(hooked.error == EAGAIN);
  CHECK(took >= 0.07);
  CHECK(took < 2.0);
  CHECK(t.ticks() >= 3);
}

TEST_CASE_FIXTURE(leak_check, "a blocking send to a peer that never reads waits, and SO_SNDTIMEO ends it") {
  socket_pair p;
  set_timeout(p.fd[0], SO_SNDTIMEO, 100ms);
  ticker t;
  const std::string block(64 * 1024, 's');
  long total = 0;
  for (int i = 0; i < 1000; ++i) {
    const ssize_t n = ::send(p.fd[0], block.data(), block.size(), 0);
    if (n < 0) {
      CHECK(errno == EAGAIN);
      break;
    }
    total += n;
  }
  CHECK(total > 0);
  CHECK(total < 1000L * 64 * 1024);
  CHECK(t.ticks() >= 3);  // the full buffer waited on the hub
}

TEST_CASE_FIXTURE(leak_check, "a blocking send delivers every byte to a slow reader") {
  socket_pair p;
  const std::string big(4 << 20, 'b');
  auto reader = grove::spawn([&] {
    std::string got;
    std::vector<char> buf(3000);
    while (got.size() < big.size()) {
      const ssize_t n = ::read(p.fd[1], buf.data(), buf.size());
      if (n <= 0) break;
      got.append(buf.data(), static_cast<std::size_t>(n));
    }
    return got;
  });
  CHECK(::send(p.fd[0], big.data(), big.size(), 0) == static_cast<ssize_t>(big.size()));
  CHECK(reader.get() == big);
}

TEST_CASE_FIXTURE(leak_check, "connect to a port where nothing listens fails with ECONNREFUSED, as natively") {
  const sockaddr_in nowhere = a_free_port();
  const auto attempt = [&] {
    return outcome_of([&] {
      const int fd = tcp_socket();
      const int r = ::connect(fd, reinterpret_cast<const sockaddr*>(&nowhere), sizeof nowhere);
      const int e = errno;
      ::close(fd);
      errno = e;
      return r;
    });
  };
  const outcome hooked = attempt();
  CHECK(hooked == natively(attempt));
  CHECK(hooked == outcome{-1, ECONNREFUSED});
}

TEST_CASE_FIXTURE(leak_check, "blocking accept and connect in tasks meet on one thread") {
  listener l;
  set_timeout(l.fd, SO_RCVTIMEO, 5s);  // accepted sockets inherit it
  auto server = grove::spawn([&] {
    const int c = ::accept(l.fd, nullptr, nullptr);
    REQUIRE(c >= 0);
    char buf[8] = {};
    const ssize_t n = ::read(c, buf, sizeof buf);
    ::write(c, buf, static_cast<std::size_t>(n));
    ::close(c);
    return std::string(buf, static_cast<std::size_t>(n));
  });
  const int fd = tcp_socket();
  REQUIRE(::connect(fd, l.where(), sizeof l.addr) == 0);
  CHECK(::write(fd, "ping", 4) == 4);
  char back[8] = {};
  CHECK(::read(fd, back, sizeof back) == 4);
  CHECK(std::string(back) == "ping");
  CHECK(server.get() == "ping");
  ::close(fd);
}

TEST_CASE_FIXTURE(leak_check, "accept4 with SOCK_NONBLOCK gives a non-blocking socket that returns EAGAIN") {
  listener l;
  const int fd = tcp_socket();
  REQUIRE(::connect(fd, l.where(), sizeof l.addr) == 0);
  const int c = ::accept4(l.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  REQUIRE(c >= 0);
  CHECK((::fcntl(c, F_GETFL) & O_NONBLOCK) != 0);
  char ch;
  CHECK(outcome_of([&] { return ::read(c, &ch, 1); }) == outcome{-1, EAGAIN});
  ::close(c);
  ::close(fd);
}

TEST_CASE_FIXTURE(leak_check, "close of a descriptor a task waits on wakes it with EBADF") {
  socket_pair p;
  auto waiter = grove::spawn([&] {
    char c;
    return outcome_of([&] { return ::recv(p.fd[0], &c, 1, 0); });
  });
  grove::yield();
  ::close(p.fd[0]);
  p.fd[0] = -1;
  CHECK(waiter.get() == outcome{-1, EBADF});
}

TEST_CASE_FIXTURE(leak_check, "dup2 onto a descriptor a task waits on wakes it with EBADF") {
  socket_pair p;
  socket_pair other;
  auto waiter = grove::spawn([&] {
    char c;
    return outcome_of([&] { return ::read(p.fd[0], &c, 1); });
  });
  grove::yield();
  REQUIRE(::dup2(other.fd[0], p.fd[0]) == p.fd[0]);
  CHECK(waiter.get() == outcome{-1, EBADF});
}

TEST_CASE_FIXTURE(leak_check, "recv with MSG_WAITALL waits for every byte asked for") {
  socket_pair p;
  auto sender = grove::spawn([&] {
    for (char c : std::string("abcdef")) {
      ::send(p.fd[1], &c, 1, 0);
      grove::sleep(5ms);
    }
  });
  char buf[6];
  CHECK(::recv(p.fd[0], buf, 6, MSG_WAITALL) == 6);
  CHECK(std::string(buf, 6) == "abcdef");
  sender.join();
}

TEST_CASE_FIXTURE(leak_check, "readv, writev, sendmsg, recvmsg carry scattered data across a wait") {
  socket_pair p;
  auto reader = grove::spawn([&] {
    char a[3], b[4];
    iovec iov[2] = {{a, 3}, {b, 4}};
    const ssize_t n = ::readv(p.fd[1], iov, 2);
    msghdr msg{};
    char c[5];
    iovec one{c, 5};
    msg.msg_iov = &one;
    msg.msg_iovlen = 1;
    const ssize_t m = ::recvmsg(p.fd[1], &msg, 0);
    return std::to_string(n) + std::string(a, 3) + std::string(b, 4) + std::to_string(m) + std::string(c, 5);
  });
  grove::sleep(20ms);
  char x[] = "abc", y[] = "defg";
  iovec out[2] = {{x, 3}, {y, 4}};
  CHECK(::writev(p.fd[0], out, 2) == 7);
  grove::sleep(20ms);
  char z[] = "hijkl";
  iovec zo{z, 5};
  msghdr msg{};
  msg.msg_iov = &zo;
  msg.msg_iovlen = 1;
  CHECK(::sendmsg(p.fd[0], &msg, 0) == 5);
  CHECK(reader.get() == "7abcdefg5hijkl");
}

TEST_CASE_FIXTURE(leak_check, "UDP sendto, recvfrom, sendmmsg and recvmmsg work across a wait") {
  const int a = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const int b = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in where{};
  where.sin_family = AF_INET;
  where.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(b, reinterpret_cast<sockaddr*>(&where), sizeof where) == 0);
  socklen_t len = sizeof where;
  REQUIRE(::getsockname(b, reinterpret_cast<sockaddr*>(&where), &len) == 0);
  auto receiver = grove::spawn([&] {
    char buf[16] = {};
    sockaddr_in from{};
    socklen_t from_len = sizeof from;
    const ssize_t n = ::recvfrom(b, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &from_len);
    char m1[8] = {}, m2[8] = {};
    iovec i1{m1, 8}, i2{m2, 8};
    mmsghdr msgs[2] = {};
    msgs[0].msg_hdr.msg_iov = &i1;
    msgs[0].msg_hdr.msg_iovlen = 1;
    msgs[1].msg_hdr.msg_iov = &i2;
    msgs[1].msg_hdr.msg_iovlen = 1;
    const int got = ::recvmmsg(b, msgs, 2, MSG_WAITFORONE, nullptr);
    return std::string(buf, static_cast<std::size_t>(n)) + "|" + std::to_string(got) + m1;
  });
  grove::sleep(20ms);
  CHECK(::sendto(a, "dgram", 5, 0, reinterpret_cast<sockaddr*>(&where), sizeof where) == 5);
  grove::sleep(20ms);
  char one[] = "one";
  iovec io{one, 4};
  mmsghdr out[1] = {};
  out[0].msg_hdr.msg_name = &where;
  out[0].msg_hdr.msg_namelen = sizeof where;
  out[0].msg_hdr.msg_iov = &io;
  out[0].msg_hdr.msg_iovlen = 1;
  CHECK(::sendmmsg(a, out, 1, 0) == 1);
  CHECK(receiver.get() == "dgram|1one");
  ::close(a);
  ::close(b);
}

TEST_CASE_FIXTURE(leak_check, "sendfile to a blocking socket sends the whole file while the reader drains it") {
  temp_dir dir;
  const std::string path = dir.path() + "/data";
  const std::string content(3 << 20, 'f');
  {
    const int f = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    REQUIRE(f >= 0);
    REQUIRE(::write(f, content.data(), content.size()) == static_cast<ssize_t>(content.size()));
    ::close(f);
  }
  socket_pair p;
  auto reader = grove::spawn([&] {
    std::size_t got = 0;
    char buf[8192];
    while (got < content.size()) {
      const ssize_t n = ::read(p.fd[1], buf, sizeof buf);
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    return got;
  });
  const int f = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  off_t offset = 0;
  CHECK(::sendfile(p.fd[0], f, &offset, content.size()) == static_cast<ssize_t>(content.size()));
  CHECK(offset == static_cast<off_t>(content.size()));
  CHECK((::fcntl(p.fd[0], F_GETFL) & O_NONBLOCK) == 0);
  CHECK(reader.get() == content.size());
  ::close(f);
}

TEST_CASE_FIXTURE(leak_check,
                  "sendfile64, the sendfile of programs built with _FILE_OFFSET_BITS=64, sends a whole file to a "
                  "blocking socket while the reader drains it") {
  temp_dir dir;
  const std::string path = dir.path() + "/data";
  const std::string content(3 << 20, 'g');
  {
    const int f = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    REQUIRE(f >= 0);
    REQUIRE(::write(f, content.data(), content.size()) == static_cast<ssize_t>(content.size()));
    ::close(f);
  }
  socket_pair p;
  // Unhooked, sendfile64 would block the thread with the reader unable to run:
  // the send timeout turns that into a short count rather than a hang.
  set_timeout(p.fd[0], SO_SNDTIMEO, 10s);
  auto reader = grove::spawn([&] {
    std::size_t got = 0;
    char buf[8192];
    while (got < content.size()) {
      const ssize_t n = ::read(p.fd[1], buf, sizeof buf);
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    return got;
  });
  const int f = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  off64_t offset = 0;
  CHECK(::sendfile64(p.fd[0], f, &offset, content.size()) == static_cast<ssize_t>(content.size()));
  CHECK(offset == static_cast<off64_t>(content.size()));
  CHECK((::fcntl(p.fd[0], F_GETFL) & O_NONBLOCK) == 0);
  ::shutdown(p.fd[0], SHUT_WR);  // after a short count, the reader would wait for the rest
  CHECK(reader.get() == content.size());
  ::close(f);
}

TEST_CASE_FIXTURE(leak_check, "reads and writes of a regular file in a task behave as natively") {
  temp_dir dir;
  const std::string path = dir.path() + "/f";
  const int f = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  REQUIRE(f >= 0);
  CHECK(::write(f, "data", 4) == 4);
  char buf[8] = {};
  CHECK(::pread(f, buf, 4, 0) == 4);
  REQUIRE(::lseek(f, 0, SEEK_SET) == 0);
  CHECK(::read(f, buf, sizeof buf) == 4);
  CHECK(::read(f, buf, sizeof buf) == 0);
  ::close(f);
}

TEST_CASE("on a thread with no hub, hooked calls go straight to libc and create no hub") {
  socket_pair p;
  set_timeout(p.fd[0], SO_RCVTIMEO, 30ms);
  const outcome r = natively([&] {
    char c;
    return outcome_of([&] { return ::recv(p.fd[0], &c, 1, 0); });
  });
  CHECK(r == outcome{-1, EAGAIN});
}

TEST_CASE_FIXTURE(leak_check, "sleep, usleep, nanosleep and clock_nanosleep sleep cooperatively") {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<grove::task<int>> sleepers;
  sleepers.push_back(grove::spawn([] { return static_cast<int>(::sleep(1)); }));
  sleepers.push_back(grove::spawn([] { return ::usleep(900'000); }));
  sleepers.push_back(grove::spawn([] {
    timespec t{0, 900'000'000};
    return ::nanosleep(&t, nullptr);
  }));
  sleepers.push_back(grove::spawn([] {
    timespec t{0, 900'000'000};
    return ::clock_nanosleep(CLOCK_MONOTONIC, 0, &t, nullptr);
  }));
  sleepers.push_back(grove::spawn([] {
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    timespec at{now.tv_sec + 1, now.tv_nsec};
    return ::clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &at, nullptr);
  }));
  for (auto& s : sleepers) CHECK(s.get() == 0);
  const double took = seconds_since(t0);
  CHECK(took >= 0.95);
  CHECK(took < 2.5);  // together, not 4.7 s one after another
}

TEST_CASE_FIXTURE(leak_check, "hooked sleeps reject bad arguments as libc does") {
  const timespec bad{0, 1'000'000'000};
  const auto via_nanosleep = [&] { return outcome_of([&] { return ::nanosleep(&bad, nullptr); }); };
  CHECK(via_nanosleep() == natively(via_nanosleep));
  CHECK(via_nanosleep().error == EINVAL);
  const auto via_clock = [&] { return ::clock_nanosleep(CLOCK_MONOTONIC, 0, &bad, nullptr); };
  CHECK(via_clock() == natively(via_clock));
  CHECK(via_clock() == EINVAL);
  const timespec past{0, 0};
  CHECK(::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &past, nullptr) == 0);
}

TEST_CASE_FIXTURE(leak_check, "a blocking read of an eventfd or timerfd waits cooperatively") {
  const int efd = ::eventfd(0, EFD_CLOEXEC);
  REQUIRE(efd >= 0);
  ticker t;
  auto writer = grove::spawn([&] {
    grove::sleep(50ms);
    const std::uint64_t one = 1;
    CHECK(::write(efd, &one, sizeof one) == 8);
  });
  std::uint64_t value = 0;
  CHECK(::read(efd, &value, sizeof value) == 8);
  CHECK(value == 1);
  writer.join();
  ::close(efd);

  const int tfd = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
  REQUIRE(tfd >= 0);
  const itimerspec in_80ms{{0, 0}, {0, 80'000'000}};
  REQUIRE(::timerfd_settime(tfd, 0, &in_80ms, nullptr) == 0);
  const int before = t.ticks();
  CHECK(::read(tfd, &value, sizeof value) == 8);
  CHECK(t.ticks() - before >= 3);
  ::close(tfd);
}

TEST_CASE_FIXTURE(leak_check, "send and recv on a pipe fail with ENOTSOCK, as natively") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const auto attempt = [&] {
    const outcome sent = outcome_of([&] { return ::send(fds[1], "x", 1, 0); });
    char c;
    const outcome received = outcome_of([&] { return ::recv(fds[0], &c, 1, MSG_DONTWAIT); });
    return std::vector<outcome>{sent, received};
  };
  const std::vector<outcome> hooked = attempt();
  CHECK(hooked == natively(attempt));
  CHECK(hooked[0] == outcome{-1, ENOTSOCK});
  ::close(fds[0]);
  ::close(fds[1]);
}

namespace {

// stalled_listener is a listener whose queue is full: a new connect to it
// neither succeeds nor fails, its SYNs are dropped.
struct stalled_listener : listener {
  std::vector<int> fillers;
  stalled_listener() {
    REQUIRE(::listen(fd, 0) == 0);
    for (int i = 0; i < 4; ++i) {
      const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      (void)::connect(c, where(), sizeof addr);
      fillers.push_back(c);
    }
    grove::sleep(100ms);
  }
  stalled_listener(const stalled_listener&) = delete;
  stalled_listener& operator=(const stalled_listener&) = delete;
  ~stalled_listener() {
    for (int c : fillers) ::close(c);
  }
};

}  // namespace

TEST_CASE_FIXTURE(leak_check, "SO_SNDTIMEO ends a blocking connect with EINPROGRESS, as natively") {
  stalled_listener l;
  const auto attempt = [&] {
    const int fd = tcp_socket();
    set_timeout(fd, SO_SNDTIMEO, 100ms);
    const outcome r = outcome_of([&] { return ::connect(fd, l.where(), sizeof l.addr); });
    ::close(fd);
    return r;
  };
  ticker t;
  const auto t0 = std::chrono::steady_clock::now();
  const outcome hooked = attempt();
  CHECK(seconds_since(t0) >= 0.09);
  CHECK(t.ticks() >= 3);
  CHECK(hooked == natively(attempt));
  CHECK(hooked == outcome{-1, EINPROGRESS});
}

TEST_CASE_FIXTURE(leak_check, "close of a socket a task is connecting wakes it with EBADF and spares the number's next owner") {
  stalled_listener l;
  const int fd = tcp_socket();
  auto connecting = grove::spawn([&] { return outcome_of([&] { return ::connect(fd, l.where(), sizeof l.addr); }); });
  grove::sleep(30ms);
  ::close(fd);
  // Most likely the same number; non-blocking, which the connect's clean-up
  // must not undo.
  const int next = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  CHECK(connecting.get() == outcome{-1, EBADF});
  CHECK((::fcntl(next, F_GETFL) & O_NONBLOCK) != 0);
  ::close(next);
}
