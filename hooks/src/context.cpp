// context.cpp — waiting in hooks (see context.hpp).
#include "context.hpp"

#include <system_error>

#include <grove/io.hpp>
#include <grove/sleep.hpp>

namespace grove::hooks {

waited wait_fd(int fd, bool for_read, limit l) {
  try {
    const keep_errno kept;
    if (l.forever) {
      for_read ? grove::wait_readable(fd) : grove::wait_writable(fd);
      return waited::ready;
    }
    const auto left = l.at - clock::now();
    if (left <= clock::duration::zero()) return waited::timed_out;
    const bool ready = for_read ? grove::wait_readable(fd, left) : grove::wait_writable(fd, left);
    return ready ? waited::ready : waited::timed_out;
  } catch (const std::system_error& e) {
    // EBADF: closed while we waited. Anything else (EPERM: a descriptor epoll
    // cannot watch) is the hooked call's error too.
    errno = e.code().value();
    return waited::failed;
  }
}

void sleep_until(limit l) {
  const auto left = l.at - clock::now();
  if (left > clock::duration::zero()) {
    const keep_errno kept;
    grove::sleep(left);
  }
}

}  // namespace grove::hooks
