// fd_table.hpp — what the hooks know about each descriptor.
//
// The kernel's flags are never changed behind the program's back (except for a
// moment in connect and sendfile, see sockets.cpp): a blocking socket stays
// blocking, so a child that inherits it through exec sees what the program set.
// Hooks make blocking calls cooperative with MSG_DONTWAIT on sockets, and by
// polling first on pipes, FIFOs and ttys. So the table only caches what would
// otherwise cost a syscall per call: the kind of descriptor, whether the program
// made it non-blocking, its SO_RCVTIMEO/SO_SNDTIMEO, and its socket type.
//
// Entries are filled when a hooked call creates the descriptor (socket, accept,
// pipe...) or on first use (one fstat, one fcntl, and for sockets three
// getsockopt), and forgotten by close, dup2 and dup3. Every thread updates the
// table, even where the calls themselves go straight to libc, so the entry of a
// reused number is never stale. Lock-free: a fixed two-level array of atomics.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace grove::hooks {

enum class fd_kind : std::uint8_t {
  unknown,      // not looked at yet
  socket,       // waits with MSG_DONTWAIT
  pollable,     // pipe, FIFO, tty, character device, eventfd/timerfd...: poll first, then the call
  passthrough,  // directory, or not open: straight to libc
  file,         // regular file or block device: grove::file (tries without waiting, then off the hub)
};

struct fd_info {
  fd_kind kind = fd_kind::unknown;
  bool nonblocking = false;  // the program's O_NONBLOCK
  bool stream = false;       // SOCK_STREAM: a blocking send sends everything
  bool in_connect = false;   // connect has set O_NONBLOCK for a moment
  std::chrono::nanoseconds recv_timeout{0};  // SO_RCVTIMEO; 0: none
  std::chrono::nanoseconds send_timeout{0};  // SO_SNDTIMEO; 0: none
};

// fd_info_of returns what is known of fd, looking at it first if need be.
fd_info fd_info_of(int fd) noexcept;

// straight: calls on a descriptor of this kind need no waiting by the socket
// hooks (files have their own, files.hpp).
inline bool straight(fd_kind k) noexcept { return k == fd_kind::passthrough || k == fd_kind::file; }

// is_file tells whether fd is a regular file or block device.
inline bool is_file(int fd) noexcept { return fd_info_of(fd).kind == fd_kind::file; }

// note_socket records a socket the program has just created or accepted.
void note_socket(int fd, bool nonblocking, bool stream, std::chrono::nanoseconds recv_timeout = {},
                 std::chrono::nanoseconds send_timeout = {}) noexcept;

// note_pollable records a pipe end the program has just created.
void note_pollable(int fd, bool nonblocking) noexcept;

// forget drops what is known of fd (closed, or replaced by dup2).
void forget(int fd) noexcept;

// set_nonblocking records the program's O_NONBLOCK (fcntl F_SETFL, ioctl FIONBIO).
void set_nonblocking(int fd, bool on) noexcept;

// set_in_connect marks the moment connect holds O_NONBLOCK on a blocking socket.
void set_in_connect(int fd, bool on) noexcept;

// set_timeout records SO_RCVTIMEO (for_recv) or SO_SNDTIMEO.
void set_timeout(int fd, bool for_recv, std::chrono::nanoseconds t) noexcept;

}  // namespace grove::hooks
