// sleep.cpp — sleep, usleep, nanosleep and clock_nanosleep in tasks sleep on
// the hub (a timer), so other tasks run meanwhile.
//
// Arguments are checked as libc checks them (EINVAL). A signal handler that
// runs in the sleeping thread cuts the sleep short with EINTR, SA_RESTART or
// not (signal(7)), and a relative sleep tells what was left (`rem`, sleep's
// result). CPU-time clocks are not the hub's business: straight to libc.
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include "context.hpp"
#include "libc.hpp"
#include "signals.hpp"

namespace grove::hooks {
namespace {

bool valid(const timespec& t) noexcept { return t.tv_nsec >= 0 && t.tv_nsec < 1'000'000'000; }

std::chrono::nanoseconds duration_of(const timespec& t) noexcept {
  return std::chrono::seconds(t.tv_sec) + std::chrono::nanoseconds(t.tv_nsec);
}

// nap sleeps the calling task for d (nothing for d <= 0): true, or false when
// a signal handler interrupted it, with what was left in *left.
bool nap(std::chrono::nanoseconds d, std::chrono::nanoseconds* left = nullptr) {
  if (d.count() <= 0) return true;
  const limit l = limit::after(d);
  if (sleep_until(l, on_handler::fail) != waited::interrupted) return true;
  if (left != nullptr) *left = std::max(std::chrono::nanoseconds::zero(), std::chrono::nanoseconds(l.at - clock::now()));
  return false;
}

void write_rem(timespec* rem, std::chrono::nanoseconds left) noexcept {
  if (rem == nullptr) return;
  rem->tv_sec = static_cast<time_t>(left.count() / 1'000'000'000);
  rem->tv_nsec = static_cast<long>(left.count() % 1'000'000'000);
}

}  // namespace
}  // namespace grove::hooks

using namespace grove::hooks;

extern "C" {

unsigned int sleep(unsigned int seconds) {
  if (!cooperative()) return real_sleep()(seconds);
  const keep_errno kept;  // sleep sets no errno
  std::chrono::nanoseconds left{};
  if (nap(std::chrono::seconds(seconds), &left)) return 0;
  // glibc: the whole seconds left (nanosleep's rem.tv_sec).
  return static_cast<unsigned int>(left.count() / 1'000'000'000);
}

int usleep(useconds_t usec) {
  if (!cooperative()) return real_usleep()(usec);
  if (nap(std::chrono::microseconds(usec))) return 0;
  errno = EINTR;
  return -1;
}

int nanosleep(const timespec* req, timespec* rem) {
  if (!cooperative()) return real_nanosleep()(req, rem);
  if (req == nullptr) {
    errno = EFAULT;
    return -1;
  }
  if (!valid(*req) || req->tv_sec < 0) {
    errno = EINVAL;
    return -1;
  }
  std::chrono::nanoseconds left{};
  if (nap(duration_of(*req), &left)) return 0;
  write_rem(rem, left);
  errno = EINTR;
  return -1;
}

int clock_nanosleep(clockid_t clock, int flags, const timespec* req, timespec* rem) {
  if (!cooperative()) return real_clock_nanosleep()(clock, flags, req, rem);
  if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC && clock != CLOCK_BOOTTIME && clock != CLOCK_TAI) {
    return real_clock_nanosleep()(clock, flags, req, rem);  // CPU clocks, and libc's own EINVAL/ENOTSUP
  }
  if (req == nullptr) return EFAULT;
  if (!valid(*req) || ((flags & TIMER_ABSTIME) == 0 && req->tv_sec < 0)) return EINVAL;
  if ((flags & TIMER_ABSTIME) == 0) {
    std::chrono::nanoseconds left{};
    if (nap(duration_of(*req), &left)) return 0;
    write_rem(rem, left);
    return EINTR;
  }
  // An absolute time on `clock`: sleep until that clock reaches it. The
  // realtime clock may be set meanwhile; check again after each nap, as the
  // kernel wakes an absolute sleep when the clock passes the time.
  for (;;) {
    timespec now{};
    ::clock_gettime(clock, &now);
    const auto left = duration_of(*req) - duration_of(now);
    if (left.count() <= 0) return 0;
    if (!nap(left)) return EINTR;
  }
}

}  // extern "C"
