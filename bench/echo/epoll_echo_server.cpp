// bench/echo/epoll_echo_server — the physical limit for bench/echo: a hand-written,
// single-thread, level-triggered epoll echo server with no runtime underneath. grove's
// examples/echo_server is measured against it in the same run (bench/echo/run.sh).
//
// Usage: bench_echo_epoll PORT      (PORT 0 picks a free port)
//
// Binds 127.0.0.1:PORT, prints exactly `listening on 127.0.0.1:<port>` on stdout (flushed)
// once it accepts connections, echoes every byte back on every connection, and exits 0 on
// SIGINT or SIGTERM. Errors go to stderr and exit 1.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "bench_echo_epoll: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

// Bytes the peer sent that the kernel would not take back yet. Allocated only for a
// connection whose write came up short, so an idle connection costs a null pointer: the
// user-space floor that grove's per-connection memory is compared with.
struct pending_output {
  std::vector<char> bytes;
  std::size_t sent = 0;
};

struct connection {
  bool open = false;
  std::unique_ptr<pending_output> pending;
};

class server {
 public:
  explicit server(int port) {
    raise_fd_limit();

    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    // Blocked and read through a signalfd so that a stop request is just another epoll
    // event: no handler races with the loop and no call needs an EINTR retry.
    if (sigprocmask(SIG_BLOCK, &stop_signals, nullptr) != 0) die("sigprocmask");
    signal_fd_ = signalfd(-1, &stop_signals, SFD_NONBLOCK | SFD_CLOEXEC);
    if (signal_fd_ < 0) die("signalfd");

    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) die("socket");
    const int one = 1;
    if (setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) die("setsockopt(SO_REUSEADDR)");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) die("bind 127.0.0.1");
    // The largest backlog the kernel allows: the load generator opens thousands of idle
    // connections in bursts, and an overflowing accept queue shows up as 1 s SYN retries.
    if (listen(listen_fd_, SOMAXCONN) != 0) die("listen");
    socklen_t length = sizeof address;
    if (getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) die("getsockname");
    port_ = ntohs(address.sin_port);

    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) die("epoll_create1");
    watch(EPOLL_CTL_ADD, signal_fd_, EPOLLIN);
    watch(EPOLL_CTL_ADD, listen_fd_, EPOLLIN);
  }

  int port() const { return port_; }

  // run serves until SIGINT or SIGTERM arrives, then closes every connection.
  void run() {
    // Room for every active connection of the 1,000-connection run in one wait.
    std::vector<epoll_event> events(1024);
    for (;;) {
      const int ready = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), -1);
      if (ready < 0) {
        if (errno == EINTR) continue;  // e.g. SIGSTOP/SIGCONT from a debugger
        die("epoll_wait");
      }
      for (int i = 0; i < ready; ++i) {
        const int fd = events[i].data.fd;
        if (fd == signal_fd_) {
          shut_down();
          return;
        }
        if (fd == listen_fd_) {
          accept_all();
        } else {
          serve(fd, events[i].events);
        }
      }
    }
  }

 private:
  static void raise_fd_limit() {
    // One descriptor per connection: a run holds 10,000 idle connections plus the active
    // ones, more than the usual soft limit of 1,024.
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) die("getrlimit(RLIMIT_NOFILE)");
    // An unlimited hard limit still stops at fs.nr_open, whose default is 2^20.
    limit.rlim_cur = limit.rlim_max == RLIM_INFINITY ? rlim_t{1} << 20 : limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) die("setrlimit(RLIMIT_NOFILE)");
  }

  void watch(int op, int fd, uint32_t interest) {
    epoll_event event{};
    event.events = interest;
    event.data.fd = fd;
    if (epoll_ctl(epoll_fd_, op, fd, &event) != 0) die("epoll_ctl");
  }

  void accept_all() {
    // Drain the accept queue in one go: each epoll_wait round trip costs more than an
    // accept4 that returns EAGAIN.
    for (;;) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        if (errno == EINTR || errno == ECONNABORTED) continue;
        // EMFILE/ENFILE would make a level-triggered listener spin at 100% CPU; a benchmark
        // server is better off stopping with the reason than skewing the numbers.
        die("accept4 (for EMFILE raise the hard limit: ulimit -Hn)");
      }
      const int one = 1;
      if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) die("setsockopt(TCP_NODELAY)");
      if (static_cast<std::size_t>(fd) >= connections_.size())
        connections_.resize(static_cast<std::size_t>(fd) * 2 + 1);
      connections_[static_cast<std::size_t>(fd)].open = true;
      watch(EPOLL_CTL_ADD, fd, EPOLLIN);
    }
  }

  void serve(int fd, uint32_t events) {
    connection& c = connections_[static_cast<std::size_t>(fd)];
    if (!c.open) return;  // closed earlier in this batch of events
    if (c.pending) {
      // Waiting for EPOLLOUT: reads are paused until the backlog drains, so a client that
      // does not read cannot make us buffer without bound.
      if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0) flush(fd, c);
      return;
    }
    // One read per readiness: level-triggered epoll reports the socket again if more is
    // queued, and a second read that returns EAGAIN would be a wasted syscall per request.
    const ssize_t got = read(fd, buffer_, sizeof buffer_);
    if (got == 0) {
      close_connection(fd, c);
      return;
    }
    if (got < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      close_connection(fd, c);  // ECONNRESET and friends: the peer is gone
      return;
    }
    send_back(fd, c, static_cast<std::size_t>(got));
  }

  void send_back(int fd, connection& c, std::size_t size) {
    std::size_t sent = 0;
    while (sent < size) {
      const ssize_t n = send(fd, buffer_ + sent, size - sent, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        close_connection(fd, c);
        return;
      }
      sent += static_cast<std::size_t>(n);
    }
    if (sent == size) return;
    c.pending = std::make_unique<pending_output>();
    c.pending->bytes.assign(buffer_ + sent, buffer_ + size);
    watch(EPOLL_CTL_MOD, fd, EPOLLOUT);
  }

  void flush(int fd, connection& c) {
    pending_output& p = *c.pending;
    while (p.sent < p.bytes.size()) {
      const ssize_t n = send(fd, p.bytes.data() + p.sent, p.bytes.size() - p.sent, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        close_connection(fd, c);
        return;
      }
      p.sent += static_cast<std::size_t>(n);
    }
    c.pending.reset();
    watch(EPOLL_CTL_MOD, fd, EPOLLIN);
  }

  void close_connection(int fd, connection& c) {
    c.open = false;
    c.pending.reset();
    close(fd);  // also removes fd from the epoll set: no one else holds a duplicate
  }

  void shut_down() {
    for (std::size_t fd = 0; fd < connections_.size(); ++fd) {
      if (connections_[fd].open) close_connection(static_cast<int>(fd), connections_[fd]);
    }
    close(listen_fd_);
    close(epoll_fd_);
    close(signal_fd_);
  }

  int signal_fd_ = -1;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int port_ = 0;
  std::vector<connection> connections_;  // indexed by fd
  char buffer_[64 * 1024];
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s PORT   (0 picks a free port; binds 127.0.0.1)\n", argv[0]);
    return 2;
  }
  char* end = nullptr;
  errno = 0;
  const long port = std::strtol(argv[1], &end, 10);
  if (errno != 0 || end == argv[1] || *end != '\0' || port < 0 || port > 65535) {
    std::fprintf(stderr, "bench_echo_epoll: PORT must be 0..65535, got '%s'\n", argv[1]);
    return 2;
  }
  auto s = std::make_unique<server>(static_cast<int>(port));
  std::printf("listening on 127.0.0.1:%d\n", s->port());
  std::fflush(stdout);
  s->run();
  return 0;
}
