// hub_fds.hpp — the hub's own descriptors, kept out of the program's way.
//
// Natively a program has no epoll set or eventfd of grove's: its first open
// returns 3, a daemon may close every descriptor from 3 up, a shell may dup2
// onto 3, and a child may list its descriptors with fstat. So the descriptors
// libev makes for a hub (made under detail::making_hub_descriptors, or by libev
// itself on the hub's greenlet when it renews its loop after a fork) are moved
// to high numbers as they are made, and the program's own calls find them
// closed: close, dup, fcntl, fstat and close_range fail with EBADF on them (or
// leave them out), as they would on a number nothing holds.
#pragma once

#include <atomic>
#include <climits>

namespace grove::hooks {

namespace hub_fds_detail {
extern std::atomic<int> lowest;  // no hidden descriptor is below it
bool hidden_slow(int fd) noexcept;
}  // namespace hub_fds_detail

// hidden tells whether fd is a hub's own descriptor that the caller (the
// program, not grove's own code) must find closed. Costs one load for any
// descriptor below the hidden ones.
inline bool hidden(int fd) noexcept {
  return fd >= hub_fds_detail::lowest.load(std::memory_order_relaxed) && hub_fds_detail::hidden_slow(fd);
}

// closing_hub_fd is the hooked close's part: true (the caller returns EBADF)
// when fd is hidden from the caller; when grove itself closes one, it stops
// being hidden (false: close it).
bool closing_hub_fd(int fd) noexcept;

}  // namespace grove::hooks
