// scratch_epoll.hpp — an epoll set a hook creates for one wait (poll.cpp's
// several descriptors, the resolver's c-ares sockets).
#pragma once

#include <sys/epoll.h>

#include <cerrno>

#include <grove/io.hpp>

#include "fd_table.hpp"
#include "libc.hpp"

namespace grove::hooks {

// scratch_epoll is an epoll set that lives for one wait. It is closed as the
// hooked close closes, so the hub forgets the number before it can be reused;
// also when a kill or a timeout scope unwinds through the wait.
class scratch_epoll {
 public:
  scratch_epoll() noexcept : fd_(::epoll_create1(EPOLL_CLOEXEC)) {}
  scratch_epoll(const scratch_epoll&) = delete;
  scratch_epoll& operator=(const scratch_epoll&) = delete;
  ~scratch_epoll() {
    if (fd_ < 0) return;
    const int saved = errno;
    grove::notify_close(fd_);
    forget(fd_);
    real_close()(fd_);
    errno = saved;
  }
  int fd() const noexcept { return fd_; }

 private:
  int fd_;
};

}  // namespace grove::hooks
