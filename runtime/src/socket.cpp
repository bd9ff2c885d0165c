// socket.cpp — cooperative sockets over grove::wait_readable/wait_writable.
#include <grove/socket.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include <grove/error.hpp>
#include <grove/io.hpp>
#include <grove/detail/os_threads.hpp>
#include <grove/thread_pool.hpp>
#include <grove/timeout.hpp>

namespace grove {
namespace {

[[noreturn]] void fail(const char* what) { throw std::system_error(errno, std::generic_category(), what); }

void make_non_blocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) fail("grove::socket: fcntl(O_NONBLOCK)");
}

bool would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

std::string describe_limit(std::chrono::nanoseconds d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

}  // namespace

// ---------------------------------------------------------------------------
// address

address::address(const sockaddr* sa, socklen_t len) : len_(len) {
  if (len > sizeof storage_) throw error("grove::address: a socket address longer than sockaddr_storage");
  std::memcpy(&storage_, sa, len);
}

address address::ip(std::string_view host, std::uint16_t port) {
  const std::string h(host);
  address a;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage_);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage_);
  if (::inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    a.len_ = sizeof(sockaddr_in);
  } else if (::inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    a.len_ = sizeof(sockaddr_in6);
  } else {
    throw error("grove::address: \"" + h + "\" is not a numeric IPv4 or IPv6 host (use grove::resolve for names)");
  }
  return a;
}

address address::unix_path(std::string_view path) {
  address a;
  auto* un = reinterpret_cast<sockaddr_un*>(&a.storage_);
  if (path.size() >= sizeof un->sun_path) {
    throw error("grove::address: the Unix socket path is longer than " + std::to_string(sizeof un->sun_path - 1) +
                " bytes");
  }
  un->sun_family = AF_UNIX;
  std::memcpy(un->sun_path, path.data(), path.size());
  a.len_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return a;
}

address address::parse(std::string_view text) {
  if (text.rfind("unix:", 0) == 0) return unix_path(text.substr(5));
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    throw error("grove::address: \"" + std::string(text) + "\" has no port (write host:port)");
  }
  std::string_view host = text.substr(0, colon);
  const std::string port_text(text.substr(colon + 1));
  // Digits only: strtoul alone would take "+80", " 80" and "-0".
  const bool digits = !port_text.empty() && port_text.size() <= 5 &&
                      port_text.find_first_not_of("0123456789") == std::string::npos;
  const unsigned long port = digits ? std::strtoul(port_text.c_str(), nullptr, 10) : 0;
  if (!digits || port > 65535) {
    throw error("grove::address: \"" + port_text + "\" is not a port (0 to 65535)");
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    // "::1:80" could mean host ::1 port 80 or host ::1:80 with no port.
    throw error("grove::address: \"" + std::string(text) + "\" is ambiguous: write an IPv6 host in brackets, as [::1]:80");
  }
  return ip(host, static_cast<std::uint16_t>(port));
}

std::uint16_t address::port() const noexcept {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  return 0;
}

std::string address::host() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf, sizeof buf);
    return buf;
  }
  if (family() == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, buf, sizeof buf);
    return buf;
  }
  if (family() == AF_UNIX) return reinterpret_cast<const sockaddr_un*>(&storage_)->sun_path;
  return "";
}

std::string address::to_string() const {
  // Built with append, not operator+: GCC 12 at -O3 reports a false
  // -Wrestrict inside std::string's operator+ (GCC bug 105329).
  std::string out;
  switch (family()) {
    case AF_INET:
      out.append(host());
      break;
    case AF_INET6:
      out.append("[").append(host()).append("]");
      break;
    case AF_UNIX:
      return out.append("unix:").append(host());
    default:
      return "(no address)";
  }
  return out.append(":").append(std::to_string(port()));
}

std::vector<address> resolve(const std::string& host, const std::string& service, int family, int socktype) {
  struct outcome {
    int code = 0;
    int system_errno = 0;  // for EAI_SYSTEM: errno as it was on the worker thread
    std::vector<address> found;
  };
  outcome r = run_in_thread([host, service, family, socktype] {
    addrinfo hints{};
    hints.ai_family = family;
    hints.ai_socktype = socktype;
    addrinfo* list = nullptr;
    outcome o;
    o.code = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &list);
    o.system_errno = errno;
    for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) o.found.emplace_back(ai->ai_addr, ai->ai_addrlen);
    if (list != nullptr) ::freeaddrinfo(list);
    return o;
  });
  if (r.code != 0) {
    throw std::system_error(r.code == EAI_SYSTEM ? r.system_errno : EHOSTUNREACH, std::generic_category(),
                            "grove::resolve(\"" + host + "\", \"" + service + "\"): " + ::gai_strerror(r.code));
  }
  return std::move(r.found);
}

// ---------------------------------------------------------------------------
// socket

socket::socket(int family, int type, int protocol) {
  fd_ = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd_ < 0) fail("grove::socket: socket()");
}

socket socket::adopt(int fd) {
  make_non_blocking(fd);
  return socket(fd);
}

socket& socket::operator=(socket&& o) noexcept {
  if (this != &o) {
    close();
    fd_ = std::exchange(o.fd_, -1);
    timeout_ = o.timeout_;
  }
  return *this;
}

void socket::close() noexcept {
  drained_ = false;
  if (fd_ >= 0) grove::close(std::exchange(fd_, -1));
}

namespace {

[[noreturn, gnu::cold, gnu::noinline]] void throw_closed(const char* what) {
  throw std::system_error(EBADF, std::generic_category(), std::string("grove::socket::") + what);
}

[[noreturn, gnu::cold, gnu::noinline]] void throw_timed_out(const char* what, std::chrono::nanoseconds limit) {
  throw timeout_error(nullptr, std::string("grove::socket::") + what + ": timed out after " + describe_limit(limit));
}

// ready_in_time blocks until fd is readable (or writable), within limit if
// there is one: false if it passed first. The error paths are out of line,
// to keep this frame, which a parked connection's stack holds, small.
bool ready_in_time(int fd, const std::optional<std::chrono::nanoseconds>& limit, bool readable, const char* what) {
  if (fd < 0) [[unlikely]]
    throw_closed(what);
  if (!limit) {
    readable ? wait_readable(fd) : wait_writable(fd);
    return true;
  }
  return readable ? wait_readable(fd, *limit) : wait_writable(fd, *limit);
}

}  // namespace

void socket::wait(bool readable, const char* what) {
  if (!ready_in_time(fd_, timeout_, readable, what)) [[unlikely]]
    throw_timed_out(what, *timeout_);
}

void socket::connect(const address& a) {
  if (::connect(fd_, a.data(), a.size()) == 0) return;
  if (errno != EINPROGRESS && errno != EINTR) fail("grove::socket::connect");
  wait(false, "connect");
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) fail("grove::socket::connect: getsockopt");
  if (err != 0) {
    throw std::system_error(err, std::generic_category(), "grove::socket::connect to " + a.to_string());
  }
}

void socket::bind(const address& a) {
  if (a.family() == AF_INET || a.family() == AF_INET6) set_option(SOL_SOCKET, SO_REUSEADDR, 1);
  if (::bind(fd_, a.data(), a.size()) != 0) {
    throw std::system_error(errno, std::generic_category(), "grove::socket::bind to " + a.to_string());
  }
}

void socket::listen(int backlog) {
  if (::listen(fd_, backlog) != 0) fail("grove::socket::listen");
}

std::pair<socket, address> socket::accept() {
  for (;;) {
    address peer;
    peer.size() = sizeof(sockaddr_storage);
    const int fd = ::accept4(fd_, peer.data(), &peer.size(), SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) return {socket(fd), peer};
    switch (errno) {
      case EINTR:
      case ECONNABORTED:
      // accept(2): errors of the connection being accepted that are already
      // pending; retry as for EAGAIN.
      case EPROTO:
      case ENOPROTOOPT:
      case EHOSTDOWN:
      case ENONET:
      case EHOSTUNREACH:
      case EOPNOTSUPP:
      case ENETUNREACH:
      case ENETDOWN:
        continue;
      default:
        break;
    }
    if (!would_block(errno)) fail("grove::socket::accept");
    wait(true, "accept");
  }
}

std::size_t socket::recv(void* buf, std::size_t len) {
  // A short read emptied the socket, and in request/response traffic nothing
  // comes until we have answered: wait for readiness first rather than spend
  // a recv on EAGAIN for every message. Readiness is level-triggered, so what
  // did arrive meanwhile is reported at the hub's next poll. If this socket's
  // time limit passes first, one last recv decides.
  const bool late = drained_ && !ready_in_time(fd_, timeout_, true, "recv");
  for (;;) {
    const ssize_t n = ::recv(fd_, buf, len, 0);
    if (n >= 0) {
      drained_ = n > 0 && static_cast<std::size_t>(n) < len;
      return static_cast<std::size_t>(n);
    }
    if (errno == EINTR) continue;
    if (!would_block(errno)) fail("grove::socket::recv");
    if (late) throw_timed_out("recv", *timeout_);
    wait(true, "recv");
  }
}

void socket::recv_exact(void* buf, std::size_t len) {
  auto* p = static_cast<char*>(buf);
  std::size_t got = 0;
  while (got < len) {
    const std::size_t n = recv(p + got, len - got);
    if (n == 0) {
      throw std::system_error(ECONNRESET, std::generic_category(),
                              "grove::socket::recv_exact: the peer closed after " + std::to_string(got) + " of " +
                                  std::to_string(len) + " bytes");
    }
    got += n;
  }
}

std::size_t socket::send(const void* buf, std::size_t len) {
  for (;;) {
    const ssize_t n = ::send(fd_, buf, len, MSG_NOSIGNAL);
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EINTR) continue;
    if (!would_block(errno)) fail("grove::socket::send");
    wait(false, "send");
  }
}

void socket::send_all(const void* buf, std::size_t len) {
  const auto* p = static_cast<const char*>(buf);
  while (len > 0) {
    const std::size_t n = send(p, len);
    p += n;
    len -= n;
  }
}

namespace {

// sendfile_once is one ::sendfile with SIGPIPE blocked on this thread (sendfile
// has no MSG_NOSIGNAL), swallowing the SIGPIPE it raised. Never across a wait:
// other tasks run then, and must see the thread's own mask.
ssize_t sendfile_once(int out_fd, int in_fd, off_t* offset, std::size_t count) {
  sigset_t pipe_only, old, pending;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
  detail::thread_sigmask(SIG_BLOCK, &pipe_only, &old);
  const ssize_t n = ::sendfile(out_fd, in_fd, offset, count);
  const int err = errno;
  sigpending(&pending);
  if (!was_pending && sigismember(&pending, SIGPIPE) == 1) {
    const timespec zero{0, 0};
    sigtimedwait(&pipe_only, nullptr, &zero);
  }
  detail::thread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = err;
  return n;
}

}  // namespace

std::size_t socket::sendfile(int file_fd, off_t offset, std::size_t count) {
  std::size_t sent = 0;
  while (sent < count) {
    const ssize_t n = sendfile_once(fd_, file_fd, &offset, count - sent);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n == 0) break;  // the file ended early
    if (errno == EINTR) continue;
    if (!would_block(errno)) fail("grove::socket::sendfile");
    wait(false, "sendfile");
  }
  return sent;
}

std::size_t socket::recv_from(void* buf, std::size_t len, address& from) {
  for (;;) {
    from.size() = sizeof(sockaddr_storage);
    const ssize_t n = ::recvfrom(fd_, buf, len, 0, from.data(), &from.size());
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EINTR) continue;
    if (!would_block(errno)) fail("grove::socket::recv_from");
    wait(true, "recv_from");
  }
}

std::size_t socket::send_to(const void* buf, std::size_t len, const address& to) {
  for (;;) {
    const ssize_t n = ::sendto(fd_, buf, len, MSG_NOSIGNAL, to.data(), to.size());
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EINTR) continue;
    if (!would_block(errno)) fail("grove::socket::send_to");
    wait(false, "send_to");
  }
}

void socket::shutdown(int how) {
  if (::shutdown(fd_, how) != 0) fail("grove::socket::shutdown");
}

address socket::local_address() const {
  address a;
  a.size() = sizeof(sockaddr_storage);
  if (::getsockname(fd_, a.data(), &a.size()) != 0) fail("grove::socket::local_address");
  return a;
}

address socket::peer_address() const {
  address a;
  a.size() = sizeof(sockaddr_storage);
  if (::getpeername(fd_, a.data(), &a.size()) != 0) fail("grove::socket::peer_address");
  return a;
}

void socket::set_option(int level, int name, int value) {
  if (::setsockopt(fd_, level, name, &value, sizeof value) != 0) fail("grove::socket::set_option");
}

socket connect(const address& a, std::optional<std::chrono::nanoseconds> limit) {
  socket s(a.family(), SOCK_STREAM);
  if (a.family() != AF_UNIX) s.set_option(IPPROTO_TCP, TCP_NODELAY, 1);
  if (limit) {
    timeout scope(*limit);
    s.connect(a);
  } else {
    s.connect(a);
  }
  return s;
}

socket connect(const std::string& host, std::uint16_t port, std::optional<std::chrono::nanoseconds> limit) {
  std::optional<timeout> scope;
  if (limit) scope.emplace(*limit);
  std::vector<address> candidates;
  try {
    candidates.push_back(address::ip(host, port));
  } catch (const error&) {
    candidates = resolve(host, std::to_string(port));
  }
  std::exception_ptr last;
  for (const address& a : candidates) {
    try {
      return connect(a);
    } catch (const std::system_error&) {
      last = std::current_exception();
    }
  }
  if (last) std::rethrow_exception(last);
  throw std::system_error(EHOSTUNREACH, std::generic_category(), "grove::connect: no address for \"" + host + "\"");
}

}  // namespace grove
