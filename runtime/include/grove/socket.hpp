// grove/socket.hpp — cooperative sockets: plain sequential code, and the task
// (not the thread) waits.
//
//   grove::socket s = grove::connect("127.0.0.1", 8080, 2s);
//   s.send_all("ping\n");
//   char buf[64];
//   std::size_t n = s.recv(buf, sizeof buf);   // 0: the peer closed
//
// A socket is a move-only owner of a non-blocking descriptor (TCP over IPv4 or
// IPv6, Unix stream sockets, UDP). Every blocking operation waits on the hub,
// honours timeout scopes and kill, and, with set_timeout, throws timeout_error
// when one operation takes longer. Errors are std::system_error carrying the
// errno. SIGPIPE never kills the process: sends use MSG_NOSIGNAL.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace grove {

// address is a socket address: IPv4, IPv6 or a Unix path.
class address {
 public:
  address() = default;
  // address copies a sockaddr of len bytes.
  address(const sockaddr* sa, socklen_t len);
  // parse reads "1.2.3.4:80", "[::1]:80" or "unix:/path" (numeric hosts only:
  // use resolve for names). Throws grove::error for anything else.
  static address parse(std::string_view text);
  // ip is a numeric IPv4 or IPv6 host and a port. Throws grove::error if host is not numeric.
  static address ip(std::string_view host, std::uint16_t port);
  // unix_path is a Unix stream socket path.
  static address unix_path(std::string_view path);

  int family() const noexcept { return storage_.ss_family; }
  // port is the port (0 for a Unix address).
  std::uint16_t port() const noexcept;
  // host is the numeric host ("127.0.0.1", "::1") or the Unix path.
  std::string host() const;
  // to_string is "1.2.3.4:80", "[::1]:80" or "unix:/path".
  std::string to_string() const;

  const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
  sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }
  socklen_t size() const noexcept { return len_; }
  socklen_t& size() noexcept { return len_; }

 private:
  sockaddr_storage storage_{};
  socklen_t len_ = 0;
};

// resolve looks host and service up with getaddrinfo on the hub's thread pool,
// so the hub never blocks on DNS. family: AF_UNSPEC, AF_INET or AF_INET6;
// socktype: SOCK_STREAM or SOCK_DGRAM. Throws std::system_error with
// getaddrinfo's message when the name does not resolve.
std::vector<address> resolve(const std::string& host, const std::string& service, int family = AF_UNSPEC,
                             int socktype = SOCK_STREAM);

class socket {
 public:
  // socket() owns nothing.
  socket() = default;
  // socket creates a non-blocking, close-on-exec socket. Throws std::system_error.
  socket(int family, int type, int protocol = 0);
  // adopt takes ownership of fd and makes it non-blocking.
  static socket adopt(int fd);
  socket(socket&& o) noexcept : fd_(std::exchange(o.fd_, -1)), timeout_(o.timeout_) {}
  socket& operator=(socket&& o) noexcept;
  socket(const socket&) = delete;
  socket& operator=(const socket&) = delete;
  // ~socket closes it (waking any task waiting on it with EBADF).
  ~socket() { close(); }

  int fd() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  // release gives the descriptor up without closing it.
  int release() noexcept { return std::exchange(fd_, -1); }

  // set_timeout limits each blocking operation of this socket (nullopt: none).
  // One that takes longer throws timeout_error (its source() is null).
  void set_timeout(std::optional<std::chrono::nanoseconds> limit) noexcept { timeout_ = limit; }
  std::optional<std::chrono::nanoseconds> timeout() const noexcept { return timeout_; }

  // connect connects to a, waiting cooperatively. Throws std::system_error
  // (ECONNREFUSED, ETIMEDOUT, ...) or timeout_error.
  void connect(const address& a);
  void bind(const address& a);
  void listen(int backlog = SOMAXCONN);
  // accept waits for a connection and returns it (non-blocking) and its peer.
  std::pair<socket, address> accept();

  // recv reads what is there (waiting until something is): up to len bytes;
  // 0 means the peer has closed its side.
  std::size_t recv(void* buf, std::size_t len);
  // recv_exact reads exactly len bytes; throws std::system_error
  // (ECONNRESET) if the peer closes first.
  void recv_exact(void* buf, std::size_t len);
  // send writes what fits (waiting until something does); returns how much.
  std::size_t send(const void* buf, std::size_t len);
  std::size_t send(std::string_view data) { return send(data.data(), data.size()); }
  // send_all writes all of it, waiting as needed.
  void send_all(const void* buf, std::size_t len);
  void send_all(std::string_view data) { send_all(data.data(), data.size()); }
  // sendfile sends count bytes of file_fd from offset (the kernel copies);
  // returns how many were sent (count unless the peer went away).
  std::size_t sendfile(int file_fd, off_t offset, std::size_t count);

  // recv_from / send_to are for datagram (UDP) sockets.
  std::size_t recv_from(void* buf, std::size_t len, address& from);
  std::size_t send_to(const void* buf, std::size_t len, const address& to);

  // shutdown shuts down reading, writing (the default: a half-close) or both.
  void shutdown(int how = SHUT_WR);
  // close closes it now (waking any task waiting on it with EBADF).
  void close() noexcept;

  address local_address() const;
  address peer_address() const;
  // set_option is setsockopt with an int value. Throws std::system_error.
  void set_option(int level, int name, int value);

 private:
  explicit socket(int fd) noexcept : fd_(fd) {}
  // wait blocks until readable (or writable) within this socket's timeout.
  void wait(bool readable, const char* what);
  int fd_ = -1;
  bool drained_ = false;  // the last recv was short: the next one waits for readiness first
  std::optional<std::chrono::nanoseconds> timeout_;
};

// connect opens a TCP connection to host:port (host resolved if it is a name;
// each address tried in turn), with an optional time limit for the whole
// attempt (timeout_error when it passes). Throws std::system_error for the last
// address's failure.
socket connect(const std::string& host, std::uint16_t port,
               std::optional<std::chrono::nanoseconds> limit = std::nullopt);
socket connect(const address& a, std::optional<std::chrono::nanoseconds> limit = std::nullopt);

}  // namespace grove
