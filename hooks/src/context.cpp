// context.cpp — waiting in hooks (see context.hpp).
#include "context.hpp"

#include <system_error>

#include <grove/io.hpp>
#include <grove/sleep.hpp>

#include "signals.hpp"

namespace grove::hooks {

// Both waits follow one pattern: a handler already deliverable fails the call
// before it waits (the kernel runs it as the call starts); the wait itself is
// a signals::wait_scope, which the hub's signal drain may end with
// signals::wake; after it, the handlers run and `mode` decides.

waited wait_fd(int fd, bool for_read, limit l, on_handler mode) {
  if (signals::after_wait(mode)) return waited::interrupted;
  waited how = waited::ready;
  try {
    const keep_errno kept;
    const signals::wait_scope interruptible;
    if (l.forever) {
      for_read ? grove::wait_readable(fd) : grove::wait_writable(fd);
    } else {
      const auto left = l.at - clock::now();
      if (left <= clock::duration::zero()) return waited::timed_out;
      const bool ready = for_read ? grove::wait_readable(fd, left) : grove::wait_writable(fd, left);
      how = ready ? waited::ready : waited::timed_out;
    }
  } catch (const signals::wake&) {
    how = waited::ready;
  } catch (const std::system_error& e) {
    // EBADF: closed while we waited. Anything else (EPERM: a descriptor epoll
    // cannot watch) is the hooked call's error too.
    errno = e.code().value();
    return waited::failed;
  }
  if (signals::after_wait(mode)) return waited::interrupted;
  return how;
}

waited sleep_until(limit l, on_handler mode) {
  if (signals::after_wait(mode)) return waited::interrupted;
  const auto left = l.at - clock::now();
  if (left > clock::duration::zero()) {
    try {
      const keep_errno kept;
      const signals::wait_scope interruptible;
      grove::sleep(left);
    } catch (const signals::wake&) {
    }
  }
  if (signals::after_wait(mode)) return waited::interrupted;
  return waited::ready;
}

void give_way() {
  const keep_errno kept;
  grove::detail::yield_to_poll();
}

}  // namespace grove::hooks
