// grove/io.hpp — waiting for file descriptors: the one place where I/O blocks.
//
//   grove::wait_readable(fd);          // blocks the task until fd is readable
//   ssize_t n = ::read(fd, buf, len);  // then a non-blocking read
//
// Any pollable descriptor works (sockets, pipes, FIFOs, ttys, eventfds...).
// Several tasks may wait on one fd and direction, as acceptors on a shared
// listening socket do: each readiness wakes the one that has waited longest,
// and, the watch being level-triggered, the next one if the fd is still ready.
#pragma once

#include <chrono>

namespace grove {

// wait_readable blocks the current task until fd is readable (or at EOF or in
// error: a read will not block). wait_readable(fd, limit) returns false if
// limit passes first. Throws std::system_error with EBADF if the fd is closed
// with grove::close meanwhile, and what interrupts any wait (timeout scope,
// kill, loop_exit). Precondition: fd is open and pollable.
void wait_readable(int fd);
bool wait_readable(int fd, std::chrono::nanoseconds limit);

// wait_writable is wait_readable for writing.
void wait_writable(int fd);
bool wait_writable(int fd, std::chrono::nanoseconds limit);

// close closes fd after waking every task waiting on it with EBADF, so no
// waiter hangs, and none wakes for a later descriptor that reuses the number.
// Close descriptors that tasks may wait on with this, not ::close. Returns
// ::close's result (errno set as it sets it).
int close(int fd);

// notify_close does close's waking without closing: every task waiting on fd
// gets EBADF and fd's registration is forgotten, so a descriptor that reuses the
// number starts afresh. For code that closes or replaces descriptors itself (a
// libc interposer's close and dup2). Does nothing on a thread without a hub.
void notify_close(int fd) noexcept;

}  // namespace grove
