// bench/echo/load — closed-loop load generator for the echo servers of bench/echo.
//
// Usage: bench_echo_load --port P [--connections N] [--size S] [--seconds T] [--warmup W]
//                        [--idle M] [--sync]
//
// Opens N connections to 127.0.0.1:P (default 100). Each keeps exactly one request of S bytes
// (default 64) in flight: send, read the whole echo, check every byte, send the next. After
// W seconds of warm-up (default 1) it measures for T seconds (default 5) and prints one line:
//
//   requests/s=<n> p50_us=<x> p99_us=<y> connections=<N> size=<S>
//
// Latency runs from the first byte written to the last byte of the echo read.
//
// --idle M opens M more connections that never send a byte and stay open for the whole
// measurement: they measure what a server pays to hold them. Any byte or hang-up on one is
// an error.
//
// --sync is for a driver that samples the server between phases (bench/echo/run.sh). At each
// phase the generator prints `sync <phase>` on stdout and waits for a line on stdin:
//   sync before_idle   active connections open and warmed up, idle ones not opened yet
//   sync idle_held     the M idle connections are open (the server may still be accepting)
//   sync done          measurement over, every connection still open
// It gives up after 120 s without an answer, or when stdin closes.
//
// The generator BUSY-POLLS (epoll_wait with timeout 0): one that sleeps in epoll_wait measures
// the VM's wake-up latency (30-40 us here) instead of the server. Pin it to its own CPU.
//
// Exit status: 0 on success, 1 on any error (a wrong byte, a closed connection, a failed
// connect), 2 on a bad command line.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "bench_echo_load: %s\n", message.c_str());
  std::exit(1);
}

[[noreturn]] void fail_errno(const std::string& what) { fail(what + ": " + std::strerror(errno)); }

[[noreturn]] void usage(const std::string& problem) {
  std::fprintf(stderr,
               "bench_echo_load: %s\n"
               "usage: bench_echo_load --port P [--connections N] [--size S] [--seconds T] [--warmup W]\n"
               "                       [--idle M] [--sync]\n",
               problem.c_str());
  std::exit(2);
}

struct options {
  int port = -1;
  long connections = 100;
  long size = 64;
  double seconds = 5;
  double warmup = 1;
  long idle = 0;
  bool sync = false;
};

double parse_number(std::string_view flag, const char* text, double low, double high) {
  char* end = nullptr;
  errno = 0;
  const double value = std::strtod(text, &end);
  if (errno != 0 || end == text || *end != '\0' || !(value >= low && value <= high)) {
    usage(std::string(flag) + " wants a number in [" + std::to_string(low) + ", " + std::to_string(high) + "], got '" +
          text + "'");
  }
  return value;
}

long parse_integer(std::string_view flag, const char* text, long low, long high) {
  char* end = nullptr;
  errno = 0;
  const long value = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || value < low || value > high) {
    usage(std::string(flag) + " wants an integer in [" + std::to_string(low) + ", " + std::to_string(high) +
          "], got '" + text + "'");
  }
  return value;
}

options parse_options(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--sync") {
      o.sync = true;
      continue;
    }
    if (i + 1 >= argc) usage("missing value after " + std::string(flag));
    const char* value = argv[++i];
    if (flag == "--port") {
      o.port = static_cast<int>(parse_integer(flag, value, 1, 65535));
    } else if (flag == "--connections") {
      o.connections = parse_integer(flag, value, 1, 1'000'000);
    } else if (flag == "--size") {
      o.size = parse_integer(flag, value, 1, 16 << 20);
    } else if (flag == "--seconds") {
      o.seconds = parse_number(flag, value, 0.1, 3600);
    } else if (flag == "--warmup") {
      o.warmup = parse_number(flag, value, 0, 3600);
    } else if (flag == "--idle") {
      o.idle = parse_integer(flag, value, 0, 1'000'000);
    } else {
      usage("unknown option " + std::string(flag));
    }
  }
  if (o.port < 0) usage("--port is required");
  return o;
}

void raise_fd_limit(long needed) {
  // Every connection is a descriptor, and the usual soft limit (1,024) is far below 10,000
  // idle connections; the hard limit is the most an unprivileged process may take.
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) fail_errno("getrlimit(RLIMIT_NOFILE)");
  // An unlimited hard limit still stops at fs.nr_open, whose default is 2^20.
  limit.rlim_cur = limit.rlim_max == RLIM_INFINITY ? rlim_t{1} << 20 : limit.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) fail_errno("setrlimit(RLIMIT_NOFILE)");
  if (static_cast<rlim_t>(needed) > limit.rlim_cur) {
    fail(std::to_string(needed) + " descriptors needed but the hard limit is " + std::to_string(limit.rlim_cur) +
         " (raise it, e.g. in /etc/security/limits.conf, or use fewer connections)");
  }
}

// The bytes of request `sequence` on connection `id`: they differ between connections and
// between consecutive requests, so an echo sent to the wrong connection, a stale or a
// shifted echo is caught by the byte check.
void fill_request(std::vector<unsigned char>& request, long id, std::uint64_t sequence) {
  const auto seed = static_cast<std::uint64_t>(id) * 0x9e3779b97f4a7c15ULL + sequence * 0xbf58476d1ce4e5b9ULL;
  for (std::size_t i = 0; i < request.size(); ++i) {
    request[i] = static_cast<unsigned char>((seed >> ((i % 8) * 8)) + i);
  }
}

struct connection {
  int fd = -1;
  long id = 0;
  std::vector<unsigned char> request;  // what is in flight; the echo must equal it
  std::size_t written = 0;
  std::size_t echoed = 0;
  std::uint64_t sequence = 0;
  clock_type::time_point started;
  bool want_write = false;  // EPOLLOUT registered: the request did not fit in one send
};

class load_generator {
 public:
  explicit load_generator(const options& o) : options_(o), scratch_(std::max<std::size_t>(64 * 1024, o.size) + 1) {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) fail_errno("epoll_create1");
    events_.resize(1024);
  }

  // open_active connects the measured connections and proves each one is served with a
  // first round trip.
  void open_active() {
    std::vector<int> fds = connect_many(options_.connections, "active");
    active_.resize(fds.size());
    for (std::size_t i = 0; i < fds.size(); ++i) {
      connection& c = active_[i];
      c.fd = fds[i];
      c.id = static_cast<long>(i);
      c.request.resize(static_cast<std::size_t>(options_.size));
      watch(EPOLL_CTL_ADD, c.fd, EPOLLIN | EPOLLRDHUP, active_tag(i));
    }
    const auto now = clock_type::now();
    for (connection& c : active_) begin_request(c, now);
    finish();
  }

  // open_idle connects the connections that never send. They stay in the epoll set so that
  // a server that writes to or drops one of them is caught.
  void open_idle() {
    idle_fds_ = connect_many(options_.idle, "idle");
    for (std::size_t i = 0; i < idle_fds_.size(); ++i) {
      watch(EPOLL_CTL_ADD, idle_fds_[i], EPOLLIN | EPOLLRDHUP, idle_tag(i));
    }
  }

  // drive runs the closed loop for `seconds`; when `record` is set, completed requests and
  // their latencies are kept. Returns the time actually spent.
  double drive(double seconds, bool record) {
    const auto start = clock_type::now();
    const auto deadline =
        start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(seconds));
    recording_ = record;
    draining_ = false;
    for (connection& c : active_) {
      if (c.written == 0 && c.echoed == 0) begin_request(c, start);
    }
    auto now = start;
    while (now < deadline) {
      // Timeout 0: never sleep (see the header comment).
      const int ready = epoll_wait(epoll_fd_, events_.data(), static_cast<int>(events_.size()), 0);
      if (ready < 0) {
        if (errno == EINTR) continue;
        fail_errno("epoll_wait");
      }
      for (int i = 0; i < ready; ++i) handle(events_[static_cast<std::size_t>(i)]);
      now = clock_type::now();
    }
    recording_ = false;
    return std::chrono::duration<double>(now - start).count();
  }

  // finish completes the requests still in flight, so that the echo check covers every
  // byte sent and the server is left with no half-read request.
  void finish() {
    draining_ = true;
    const auto deadline = clock_type::now() + std::chrono::seconds(10);
    for (;;) {
      const bool busy = std::any_of(active_.begin(), active_.end(), [](const connection& c) { return c.written > 0; });
      if (!busy) return;
      if (clock_type::now() > deadline) fail("echoes of the last requests did not arrive within 10 s");
      const int ready = epoll_wait(epoll_fd_, events_.data(), static_cast<int>(events_.size()), 0);
      if (ready < 0) {
        if (errno == EINTR) continue;
        fail_errno("epoll_wait");
      }
      for (int i = 0; i < ready; ++i) handle(events_[static_cast<std::size_t>(i)]);
    }
  }

  void close_all() {
    for (connection& c : active_) close(c.fd);
    for (int fd : idle_fds_) close(fd);
    active_.clear();
    idle_fds_.clear();
  }

  std::vector<std::uint32_t>& latencies_ns() { return latencies_ns_; }
  long completed() const { return completed_; }

 private:
  // epoll data: active connection i is i, idle connection i is ~i (negative).
  static std::int64_t active_tag(std::size_t i) { return static_cast<std::int64_t>(i); }
  static std::int64_t idle_tag(std::size_t i) { return ~static_cast<std::int64_t>(i); }

  void watch(int op, int fd, std::uint32_t interest, std::int64_t tag) {
    epoll_event event{};
    event.events = interest;
    event.data.u64 = static_cast<std::uint64_t>(tag);
    if (epoll_ctl(epoll_fd_, op, fd, &event) != 0) fail_errno("epoll_ctl");
  }

  // connect_many opens `count` connections, at most `batch` handshakes at a time: a burst
  // of thousands of SYNs overflows the server's accept queue (its listen backlog may be
  // 128), and the dropped SYNs come back only after 1 s, 3 s, 7 s... of retransmission.
  std::vector<int> connect_many(long count, const char* kind) {
    constexpr long batch = 100;
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(options_.port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    const int connect_epoll = epoll_create1(EPOLL_CLOEXEC);
    if (connect_epoll < 0) fail_errno("epoll_create1");
    std::vector<int> fds;
    fds.reserve(static_cast<std::size_t>(count));
    std::vector<epoll_event> events(static_cast<std::size_t>(batch));
    for (long first = 0; first < count; first += batch) {
      const long n = std::min(batch, count - first);
      long pending = 0;
      for (long i = 0; i < n; ++i) {
        const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) fail_errno(std::string("socket for ") + kind + " connection " + std::to_string(first + i));
        const int one = 1;
        if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) fail_errno("setsockopt(TCP_NODELAY)");
        fds.push_back(fd);
        if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) continue;
        if (errno != EINPROGRESS) {
          fail_errno(std::string("connect 127.0.0.1:") + std::to_string(options_.port) + " (" + kind + " connection " +
                     std::to_string(first + i) + ")");
        }
        epoll_event event{};
        event.events = EPOLLOUT;
        event.data.fd = fd;
        if (epoll_ctl(connect_epoll, EPOLL_CTL_ADD, fd, &event) != 0) fail_errno("epoll_ctl");
        ++pending;
      }
      const auto deadline = clock_type::now() + std::chrono::seconds(30);
      while (pending > 0) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now()).count();
        if (left <= 0) {
          fail(std::string("connecting ") + kind + " connections: " + std::to_string(pending) +
               " handshakes still unfinished after 30 s (is the server accepting?)");
        }
        // Sleeping is fine here: set-up is not measured.
        const int ready =
            epoll_wait(connect_epoll, events.data(), static_cast<int>(events.size()), static_cast<int>(left));
        if (ready < 0) {
          if (errno == EINTR) continue;
          fail_errno("epoll_wait");
        }
        for (int i = 0; i < ready; ++i) {
          const int fd = events[static_cast<std::size_t>(i)].data.fd;
          int error = 0;
          socklen_t length = sizeof error;
          if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) fail_errno("getsockopt(SO_ERROR)");
          if (error != 0) {
            errno = error;
            fail_errno(std::string("connect 127.0.0.1:") + std::to_string(options_.port) + " (" + kind +
                       " connection)");
          }
          if (epoll_ctl(connect_epoll, EPOLL_CTL_DEL, fd, nullptr) != 0) fail_errno("epoll_ctl");
          --pending;
        }
      }
    }
    close(connect_epoll);
    return fds;
  }

  void begin_request(connection& c, clock_type::time_point now) {
    ++c.sequence;
    fill_request(c.request, c.id, c.sequence);
    c.written = 0;
    c.echoed = 0;
    c.started = now;
    write_some(c);
  }

  void write_some(connection& c) {
    while (c.written < c.request.size()) {
      const ssize_t n = send(c.fd, c.request.data() + c.written, c.request.size() - c.written, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        fail_errno("send on connection " + std::to_string(c.id));
      }
      c.written += static_cast<std::size_t>(n);
    }
    const bool want_write = c.written < c.request.size();
    if (want_write != c.want_write) {
      // Only large requests get here: the echo must be read while the rest is written, or
      // both sides' socket buffers fill and neither moves.
      c.want_write = want_write;
      watch(EPOLL_CTL_MOD, c.fd, EPOLLIN | EPOLLRDHUP | (want_write ? EPOLLOUT : 0u),
            active_tag(static_cast<std::size_t>(c.id)));
    }
  }

  void handle(const epoll_event& event) {
    const auto tag = static_cast<std::int64_t>(event.data.u64);
    if (tag < 0) {
      fail("idle connection " + std::to_string(~tag) + ": the server " +
           ((event.events & EPOLLIN) != 0 ? "sent data or closed it" : "hung up") + "; it should stay open and silent");
    }
    connection& c = active_[static_cast<std::size_t>(tag)];
    if ((event.events & EPOLLOUT) != 0 && c.want_write) write_some(c);
    if ((event.events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) read_echo(c);
  }

  void read_echo(connection& c) {
    const ssize_t n = recv(c.fd, scratch_.data(), scratch_.size(), 0);
    if (n == 0) fail("connection " + std::to_string(c.id) + ": the server closed it mid-run");
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      fail_errno("recv on connection " + std::to_string(c.id));
    }
    const auto got = static_cast<std::size_t>(n);
    if (c.echoed + got > c.written) {
      fail("connection " + std::to_string(c.id) + ": the server sent " + std::to_string(c.echoed + got) +
           " bytes of echo for " + std::to_string(c.written) + " bytes sent");
    }
    const auto mismatch =
        std::mismatch(scratch_.begin(), scratch_.begin() + n, c.request.begin() + static_cast<long>(c.echoed));
    if (mismatch.first != scratch_.begin() + n) {
      const auto offset = c.echoed + static_cast<std::size_t>(mismatch.first - scratch_.begin());
      fail("connection " + std::to_string(c.id) + ", request " + std::to_string(c.sequence) + ": echoed byte " +
           std::to_string(offset) + " is " + std::to_string(*mismatch.first) + ", sent " +
           std::to_string(*mismatch.second));
    }
    c.echoed += got;
    if (c.echoed < c.request.size()) return;

    const auto now = clock_type::now();
    if (recording_) {
      ++completed_;
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now - c.started).count();
      latencies_ns_.push_back(static_cast<std::uint32_t>(std::min<std::int64_t>(ns, UINT32_MAX)));
    }
    if (draining_) {
      c.written = 0;
      c.echoed = 0;
      return;
    }
    begin_request(c, now);
  }

  options options_;
  int epoll_fd_ = -1;
  std::vector<epoll_event> events_;
  std::vector<connection> active_;
  std::vector<int> idle_fds_;
  std::vector<unsigned char> scratch_;
  std::vector<std::uint32_t> latencies_ns_;
  long completed_ = 0;
  bool recording_ = false;
  bool draining_ = false;
};

// sync_point tells the driver which phase has been reached and waits for its go-ahead.
void sync_point(const char* phase) {
  std::printf("sync %s\n", phase);
  std::fflush(stdout);
  pollfd in{};
  in.fd = STDIN_FILENO;
  in.events = POLLIN;
  int ready = 0;
  do {
    ready = poll(&in, 1, 120'000);
  } while (ready < 0 && errno == EINTR);
  if (ready < 0) fail_errno("poll(stdin)");
  if (ready == 0) fail(std::string("sync ") + phase + ": no go-ahead on stdin within 120 s");
  // Read the answer byte by byte up to its newline: stdio buffering could swallow the next
  // answer, which the driver sends only after the next phase anyway.
  for (;;) {
    char ch = 0;
    const ssize_t n = read(STDIN_FILENO, &ch, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail_errno("read(stdin)");
    if (n == 0) fail(std::string("sync ") + phase + ": stdin closed before the go-ahead");
    if (ch == '\n') return;
  }
}

// cpu_wait_ns is how long this thread has sat runnable waiting for its CPU (the second field
// of /proc/self/schedstat), or -1 where the kernel does not say. A busy-polling generator
// pinned to its own CPU waits only when another process runs there.
long long cpu_wait_ns() {
  std::FILE* f = std::fopen("/proc/self/schedstat", "r");
  if (f == nullptr) return -1;
  long long run = 0, wait = -1;
  if (std::fscanf(f, "%lld %lld", &run, &wait) != 2) wait = -1;
  std::fclose(f);
  return wait;
}

double percentile_us(std::vector<std::uint32_t>& values, double fraction) {
  if (values.empty()) return 0;
  const auto index = static_cast<std::size_t>(fraction * static_cast<double>(values.size() - 1));
  std::nth_element(values.begin(), values.begin() + static_cast<long>(index), values.end());
  return values[index] / 1000.0;
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse_options(argc, argv);
  // Connections, the two epoll fds, stdio and some slack.
  raise_fd_limit(o.connections + o.idle + 16);

  load_generator load(o);
  load.open_active();
  load.drive(o.warmup, false);
  if (o.idle > 0 || o.sync) {
    if (o.sync) {
      load.finish();  // quiet while the driver samples the server
      sync_point("before_idle");
    }
    load.open_idle();
    if (o.sync) sync_point("idle_held");
    // Connecting paused the loop: let caches and the server settle again before measuring.
    load.drive(std::min(o.warmup, 0.5), false);
  }
  load.latencies_ns().reserve(static_cast<std::size_t>(o.connections * 1000 + o.seconds * 200'000));
  const long long wait_before = cpu_wait_ns();
  const double elapsed = load.drive(o.seconds, true);
  const long long wait_after = cpu_wait_ns();
  load.finish();
  if (load.completed() == 0) fail("no request completed in " + std::to_string(elapsed) + " s");
  if (o.sync) sync_point("done");
  load.close_all();

  auto& latencies = load.latencies_ns();
  const double p50 = percentile_us(latencies, 0.50);
  const double p99 = percentile_us(latencies, 0.99);
  std::printf("requests/s=%.0f p50_us=%.1f p99_us=%.1f connections=%ld size=%ld\n",
              static_cast<double>(load.completed()) / elapsed, p50, p99, o.connections, o.size);
  std::fflush(stdout);
  // On a shared machine this is the difference between a slow server and a busy neighbour;
  // run.sh parses this line to mark the run as disturbed.
  if (wait_before >= 0 && wait_after >= 0 && static_cast<double>(wait_after - wait_before) > 0.01 * elapsed * 1e9) {
    std::fprintf(stderr,
                 "bench_echo_load: warning: waited %lld ms of %.0f ms for its CPU (another process ran on it): "
                 "the figures are disturbed\n",
                 (wait_after - wait_before) / 1'000'000, elapsed * 1000);
  }
  return 0;
}
