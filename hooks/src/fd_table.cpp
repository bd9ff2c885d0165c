// fd_table.cpp — the per-descriptor cache (see fd_table.hpp).
#include "fd_table.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>
#include <new>

#include "libc.hpp"

namespace grove::hooks {
namespace {

// One entry, packed so a reader sees a consistent kind and flags.
struct slot {
  std::atomic<std::uint32_t> bits{0};  // kind | flags, below
  std::atomic<std::int64_t> recv_ns{0};
  std::atomic<std::int64_t> send_ns{0};
};

constexpr std::uint32_t kind_mask = 0x7;
constexpr std::uint32_t nonblocking_bit = 0x8;
constexpr std::uint32_t stream_bit = 0x10;
constexpr std::uint32_t in_connect_bit = 0x20;

constexpr int chunk_bits = 12;
constexpr int chunk_size = 1 << chunk_bits;  // entries per chunk
constexpr int chunks = 1 << 10;              // so descriptors up to 4M are cached

std::atomic<slot*> table[chunks];

// slot_of returns fd's entry, allocating its chunk on first use; null for
// descriptors beyond the table (they are looked at on every call instead).
slot* slot_of(int fd, bool create) noexcept {
  if (fd < 0 || fd >= chunks * chunk_size) return nullptr;
  std::atomic<slot*>& chunk = table[fd >> chunk_bits];
  slot* c = chunk.load(std::memory_order_acquire);
  if (c == nullptr) {
    if (!create) return nullptr;
    auto* fresh = new (std::nothrow) slot[chunk_size];
    if (fresh == nullptr) return nullptr;
    if (!chunk.compare_exchange_strong(c, fresh, std::memory_order_acq_rel)) {
      delete[] fresh;  // another thread won
    } else {
      c = fresh;
    }
  }
  return &c[fd & (chunk_size - 1)];
}

std::chrono::nanoseconds timeout_option(int fd, int option) noexcept {
  timeval tv{};
  socklen_t len = sizeof tv;
  if (real_getsockopt()(fd, SOL_SOCKET, option, &tv, &len) != 0) return {};
  return std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
}

// probe looks at a descriptor no hooked call has described.
// is_open is false for a descriptor that is not open (libc then reports EBADF
// itself).
fd_info probe(int fd, bool& is_open) noexcept {
  const int saved = errno;
  fd_info info;
  struct stat st {};
  is_open = ::fstat(fd, &st) == 0;
  if (!is_open) {
    errno = saved;
    info.kind = fd_kind::passthrough;
    return info;
  }
  const int fl = real_fcntl()(fd, F_GETFL);
  info.nonblocking = fl != -1 && (fl & O_NONBLOCK) != 0;
  if (S_ISSOCK(st.st_mode)) {
    info.kind = fd_kind::socket;
    int type = 0;
    socklen_t len = sizeof type;
    info.stream = real_getsockopt()(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
    info.recv_timeout = timeout_option(fd, SO_RCVTIMEO);
    info.send_timeout = timeout_option(fd, SO_SNDTIMEO);
  } else if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode) || (st.st_mode & S_IFMT) == 0) {
    // No type bits: an anonymous inode (eventfd, timerfd, signalfd, inotify,
    // pidfd, epoll), all of which poll.
    info.kind = fd_kind::pollable;
  } else if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) {
    info.kind = fd_kind::file;
  } else {
    info.kind = fd_kind::passthrough;
  }
  errno = saved;
  return info;
}

void store(slot& s, const fd_info& info) noexcept {
  s.recv_ns.store(info.recv_timeout.count(), std::memory_order_relaxed);
  s.send_ns.store(info.send_timeout.count(), std::memory_order_relaxed);
  std::uint32_t bits = static_cast<std::uint32_t>(info.kind);
  if (info.nonblocking) bits |= nonblocking_bit;
  if (info.stream) bits |= stream_bit;
  if (info.in_connect) bits |= in_connect_bit;
  s.bits.store(bits, std::memory_order_release);
}

void update_bit(int fd, std::uint32_t bit, bool on) noexcept {
  slot* s = slot_of(fd, false);
  if (s == nullptr) return;
  std::uint32_t old = s->bits.load(std::memory_order_relaxed);
  while ((old & kind_mask) != 0 &&
         !s->bits.compare_exchange_weak(old, on ? (old | bit) : (old & ~bit), std::memory_order_acq_rel)) {
  }
}

}  // namespace

fd_info fd_info_of(int fd) noexcept {
  bool is_open = false;
  slot* s = slot_of(fd, true);
  if (s == nullptr) return probe(fd, is_open);
  std::uint32_t bits = s->bits.load(std::memory_order_acquire);
  if ((bits & kind_mask) == 0) {
    const fd_info info = probe(fd, is_open);
    // A closed descriptor is not cached: the number may be opened by a path
    // that no hook sees (fopen) before a hooked call uses it.
    if (is_open) store(*s, info);
    return info;
  }
  fd_info info;
  info.kind = static_cast<fd_kind>(bits & kind_mask);
  info.nonblocking = (bits & nonblocking_bit) != 0;
  info.stream = (bits & stream_bit) != 0;
  info.in_connect = (bits & in_connect_bit) != 0;
  info.recv_timeout = std::chrono::nanoseconds(s->recv_ns.load(std::memory_order_relaxed));
  info.send_timeout = std::chrono::nanoseconds(s->send_ns.load(std::memory_order_relaxed));
  return info;
}

void note_socket(int fd, bool nonblocking, bool stream, std::chrono::nanoseconds recv_timeout,
                 std::chrono::nanoseconds send_timeout) noexcept {
  slot* s = slot_of(fd, true);
  if (s == nullptr) return;
  fd_info info;
  info.kind = fd_kind::socket;
  info.nonblocking = nonblocking;
  info.stream = stream;
  info.recv_timeout = recv_timeout;
  info.send_timeout = send_timeout;
  store(*s, info);
}

void note_pollable(int fd, bool nonblocking) noexcept {
  slot* s = slot_of(fd, true);
  if (s == nullptr) return;
  fd_info info;
  info.kind = fd_kind::pollable;
  info.nonblocking = nonblocking;
  store(*s, info);
}

void forget(int fd) noexcept {
  if (slot* s = slot_of(fd, false)) s->bits.store(0, std::memory_order_release);
}

void set_nonblocking(int fd, bool on) noexcept { update_bit(fd, nonblocking_bit, on); }

void set_in_connect(int fd, bool on) noexcept { update_bit(fd, in_connect_bit, on); }

void set_timeout(int fd, bool for_recv, std::chrono::nanoseconds t) noexcept {
  slot* s = slot_of(fd, false);
  if (s == nullptr) return;
  (for_recv ? s->recv_ns : s->send_ns).store(t.count(), std::memory_order_relaxed);
}

}  // namespace grove::hooks
