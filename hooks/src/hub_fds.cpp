// hub_fds.cpp — the hub's own descriptors, kept out of the program's way (see
// hub_fds.hpp); the calls that make them (epoll_create1, eventfd) and the ones
// that look at or close any descriptor by number (fstat, statx, close_range,
// closefrom). close, dup, dup2, dup3 and fcntl ask hidden() in sockets.cpp.
#include "files.hpp"
#include "hub_fds.hpp"

#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>

#include <algorithm>

#include <grove/detail/os_threads.hpp>
#include <grove/detail/wait.hpp>

#include "libc.hpp"

namespace grove::hooks {
namespace hub_fds_detail {

std::atomic<int> lowest{INT_MAX};

// Each hub has two descriptors (its epoll set and its eventfd); a process has
// one hub per OS thread that uses grove.
constexpr int slots = 256;
std::atomic<int> table[slots];  // a descriptor + 1; 0: free

namespace {

int find(int fd) noexcept {
  for (int i = 0; i < slots; ++i) {
    if (table[i].load(std::memory_order_acquire) == fd + 1) return i;
  }
  return -1;
}

void add(int fd) noexcept {
  for (auto& slot : table) {
    int expected = 0;
    if (slot.compare_exchange_strong(expected, fd + 1, std::memory_order_acq_rel)) break;
  }  // a full table leaves fd visible, as it was before grove hid any
  int low = lowest.load(std::memory_order_relaxed);
  while (fd < low && !lowest.compare_exchange_weak(low, fd, std::memory_order_relaxed)) {
  }
}

// grove_s_own tells whether the caller is grove's own code at work on a hub's
// descriptors: the hub being made or taken down, or libev itself, which runs
// on the hub's greenlet (where it renews its loop after a fork).
bool grove_s_own() noexcept {
  if (detail::making_hub_descriptors) return true;
  detail::hub_core* h = detail::tls_hub;
  return h != nullptr && h->ts->current == h->greenlet;
}

// floor is where the hub's descriptors go: the top 32 numbers below the
// smaller of the soft descriptor limit and 1024 (a higher number would grow
// the kernel's descriptor table for nothing); 0 when the limit is too low
// to leave room, and they stay where they were made.
int floor_number() noexcept {
  static const int floor = [] {
    rlimit l{};
    if (::getrlimit(RLIMIT_NOFILE, &l) != 0) return 0;
    const rlim_t top = l.rlim_cur == RLIM_INFINITY || l.rlim_cur > 1024 ? 1024 : l.rlim_cur;
    return top >= 128 ? static_cast<int>(top) - 32 : 0;
  }();
  return floor;
}

}  // namespace

// adopt moves a hub's new descriptor up out of the program's way and hides it.
int adopt(int fd) noexcept {
  if (fd < 0) return fd;
  const int saved = errno;
  int kept = fd;
  if (const int floor = floor_number(); floor > 0 && fd < floor) {
    const int high = real_fcntl()(fd, F_DUPFD_CLOEXEC, floor);
    if (high >= 0) {
      real_close()(fd);
      kept = high;
    }
  }
  add(kept);
  errno = saved;
  return kept;
}

// The runtime's descriptors made by raw system calls (the io_uring) come here too.
[[maybe_unused]] const bool adopter_installed = (detail::set_descriptor_adopter(adopt), true);

bool hidden_slow(int fd) noexcept { return find(fd) >= 0 && !grove_s_own(); }

// made_by_hub tells whether a descriptor being made is the hub's: under
// making_hub_descriptors, or made by libev on the hub's greenlet with the
// flags it uses (a program's callback run there by hub::post keeps its own).
bool made_by_hub(bool libev_flags) noexcept {
  if (detail::making_hub_descriptors) return true;
  return libev_flags && grove_s_own();
}

}  // namespace hub_fds_detail

bool closing_hub_fd(int fd) noexcept {
  if (fd < hub_fds_detail::lowest.load(std::memory_order_relaxed)) return false;
  const int i = hub_fds_detail::find(fd);
  if (i < 0) return false;
  if (!hub_fds_detail::grove_s_own()) return true;
  hub_fds_detail::table[i].store(0, std::memory_order_release);
  return false;
}

}  // namespace grove::hooks

using namespace grove::hooks;
using namespace grove::hooks::hub_fds_detail;

namespace {

int bad_descriptor() noexcept {
  errno = EBADF;
  return -1;
}

// at_hidden: a *at call on a hidden directory descriptor, which natively
// names nothing (an absolute path ignores it).
bool at_hidden(int dirfd, const char* path) noexcept {
  return dirfd >= 0 && (path == nullptr || path[0] != '/') && hidden(dirfd);
}

// each_visible_range calls close(from, to) for the runs of [first, last] that
// hold no hidden descriptor. Returns the first failure, or 0.
template <class Close>
int each_visible_range(unsigned first, unsigned last, Close close) noexcept {
  unsigned in_range[slots];
  int n = 0;
  for (auto& slot : table) {
    const int v = slot.load(std::memory_order_acquire) - 1;
    if (v >= 0 && static_cast<unsigned>(v) >= first && static_cast<unsigned>(v) <= last && hidden(v)) {
      in_range[n++] = static_cast<unsigned>(v);
    }
  }
  std::sort(in_range, in_range + n);
  unsigned from = first;
  for (int k = 0; k < n; ++k) {
    if (in_range[k] > from) {
      if (const int r = close(from, in_range[k] - 1); r != 0) return r;
    }
    if (in_range[k] == last) return 0;
    from = in_range[k] + 1;
  }
  return close(from, last);
}

}  // namespace

extern "C" {

int epoll_create1(int flags) noexcept {
  const bool hub = made_by_hub(flags == EPOLL_CLOEXEC);
  const int fd = real_epoll_create1()(flags);
  return hub ? adopt(fd) : fd;
}

int eventfd(unsigned int count, int flags) noexcept {
  const bool hub = made_by_hub(flags == (EFD_CLOEXEC | EFD_NONBLOCK));
  const int fd = real_eventfd()(count, flags);
  return hub ? adopt(fd) : fd;
}

int fstat(int fd, struct stat* st) noexcept { return hidden(fd) ? bad_descriptor() : real_fstat()(fd, st); }

int fstat64(int fd, struct stat64* st) noexcept { return hidden(fd) ? bad_descriptor() : real_fstat64()(fd, st); }

// fstatat and statx by path may read directories from disk: in a task they go
// through grove::file (files.cpp).
int fstatat(int dirfd, const char* path, struct stat* st, int flags) {
  if (at_hidden(dirfd, path)) return bad_descriptor();
  if (!cooperative()) return real_fstatat()(dirfd, path, st, flags);
  return file_call([&] { return grove::file::fstatat(dirfd, path, st, flags); });
}

int fstatat64(int dirfd, const char* path, struct stat64* st, int flags) {
  if (at_hidden(dirfd, path)) return bad_descriptor();
  if (!cooperative()) return real_fstatat64()(dirfd, path, st, flags);
  return file_call([&] { return grove::file::fstatat(dirfd, path, reinterpret_cast<struct stat*>(st), flags); });
}

int statx(int dirfd, const char* path, int flags, unsigned int mask, struct statx* st) {
  if (at_hidden(dirfd, path)) return bad_descriptor();
  if (!cooperative()) return real_statx()(dirfd, path, flags, mask, st);
  return file_call([&] { return grove::file::statx(dirfd, path, flags, mask, st); });
}

// close_range and closefrom close every descriptor of a range but the hidden
// ones (a daemon closing all it inherited, a child before exec).
int close_range(unsigned int first, unsigned int last, int flags) noexcept {
  if (first > last || static_cast<int>(std::min(last, static_cast<unsigned>(INT_MAX))) < lowest.load()) {
    return real_close_range()(first, last, flags);
  }
  return each_visible_range(first, last, [flags](unsigned from, unsigned to) {
    return real_close_range()(from, to, flags);
  });
}

void closefrom(int lowfd) noexcept {
  if (lowfd < 0) lowfd = 0;
  const int saved = errno;
  if (close_range(static_cast<unsigned>(lowfd), ~0u, 0) != 0) {
    // No close_range in this kernel: one number at a time, as glibc falls back.
    for (int fd = lowfd, top = ::getdtablesize(); fd < top; ++fd) {
      if (!hidden(fd)) real_close()(fd);
    }
  }
  errno = saved;
}

}  // extern "C"
