// context.hpp — when a hooked call is cooperative, and how hooks wait.
//
// A hooked call is cooperative when the calling thread has a hub and the
// caller is not the hub itself (libev's own epoll_wait, reads of its wake-up
// pipe and the hub's callbacks must reach libc). Everything else — a plain
// thread, grove's thread-pool workers, the time before main's hub exists and
// after it is gone — goes straight to libc: one thread-local load and a
// compare, no syscall.
#pragma once

#include <cerrno>
#include <chrono>
#include <cstdint>

#include <grove/detail/wait.hpp>
#include <grove/sleep.hpp>

namespace grove::hooks {

namespace signals {
// in_handler counts the handlers the signal trampoline runs on this OS thread
// right now: it may have interrupted grove's own code, so hooked calls made by
// a handler go straight to libc.
extern constinit thread_local int in_handler __attribute__((tls_model("initial-exec")));
}  // namespace signals

// cooperative tells whether the caller may block on its thread's hub.
[[gnu::always_inline]] inline bool cooperative() noexcept {
  detail::hub_core* h = detail::tls_hub;
  return h != nullptr && h->ts->current != h->greenlet && !h->closing && signals::in_handler == 0;
}

// deadline: a point in time on the hub's clock; `none` means wait forever.
using clock = std::chrono::steady_clock;
struct limit {
  clock::time_point at{};
  bool forever = true;
  static limit after(std::chrono::nanoseconds d) { return {clock::now() + d, false}; }
  static limit never() { return {}; }
  bool passed() const { return !forever && clock::now() >= at; }
};

// How a wait ended. interrupted: a signal handler ran in the waiting thread and
// the call must fail with EINTR (errno says so).
enum class waited { ready, timed_out, failed, interrupted };

namespace signals {
enum class on_handler : std::uint8_t;
}
using signals::on_handler;

// keep_errno keeps the caller's errno across a switch: errno belongs to the OS
// thread, and the green threads and tasks that run while the caller waits
// change it. A hooked call that succeeds leaves errno as it found it, as libc's
// does.
struct keep_errno {
  int saved = errno;
  keep_errno() = default;
  keep_errno(const keep_errno&) = delete;
  keep_errno& operator=(const keep_errno&) = delete;
  ~keep_errno() { errno = saved; }
};

// wait_fd blocks the calling task until fd is readable (or writable) or the
// limit passes. failed: the fd was closed meanwhile or cannot be waited on, and
// errno says why (EBADF for a close). A signal handler that runs in the
// caller's thread meanwhile ends the wait as `mode` says (signals.hpp):
// interrupted, or ready (a spurious wake: the caller looks again).
// Interruptions of the task (kill, a grove::timeout scope, loop_exit) propagate
// as exceptions, as they do from any blocking call in a task.
waited wait_fd(int fd, bool for_read, limit l, on_handler mode);

// sleep_until blocks the calling task until the limit passes (never forever):
// ready, or interrupted as wait_fd is (a handler ran, mode says EINTR).
waited sleep_until(limit l, on_handler mode);

// give_way lets the hub poll I/O and timers and the other ready tasks run,
// then returns (errno kept). Interruptions propagate as from wait_fd.
void give_way();

// give_way_if_due is a scheduling point for a cooperative call that may
// return without waiting: natively the kernel would preempt a thread that
// keeps calling poll and finding something (or calling it with a zero
// timeout), and its other threads would run on other cores; here they share
// one, and their wake-ups come from the hub's poll. So once the hub has not
// polled for a slice (detail::fair_slice), the caller gives way first. One
// clock read when it is not due.
[[gnu::always_inline]] inline void give_way_if_due() {
  if (detail::slice_used_up(*detail::tls_hub)) [[unlikely]]
    give_way();
}

}  // namespace grove::hooks
