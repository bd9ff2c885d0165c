// sleep.cpp — sleep, usleep, nanosleep and clock_nanosleep in tasks sleep on
// the hub (a timer), so other tasks run meanwhile.
//
// Arguments are checked as libc checks them (EINVAL). A signal does not cut a
// cooperative sleep short: there is no EINTR and `rem` is not written (see the
// README's limits). CPU-time clocks are not the hub's business: straight to libc.
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "context.hpp"
#include "libc.hpp"

namespace grove::hooks {
namespace {

bool valid(const timespec& t) noexcept { return t.tv_nsec >= 0 && t.tv_nsec < 1'000'000'000; }

std::chrono::nanoseconds duration_of(const timespec& t) noexcept {
  return std::chrono::seconds(t.tv_sec) + std::chrono::nanoseconds(t.tv_nsec);
}

// nap sleeps the calling task for d (nothing for d <= 0).
void nap(std::chrono::nanoseconds d) {
  if (d.count() > 0) sleep_until(limit::after(d));
}

}  // namespace
}  // namespace grove::hooks

using namespace grove::hooks;

extern "C" {

unsigned int sleep(unsigned int seconds) {
  if (!cooperative()) return real_sleep()(seconds);
  nap(std::chrono::seconds(seconds));
  return 0;
}

int usleep(useconds_t usec) {
  if (!cooperative()) return real_usleep()(usec);
  nap(std::chrono::microseconds(usec));
  return 0;
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
  nap(duration_of(*req));
  return 0;
}

int clock_nanosleep(clockid_t clock, int flags, const timespec* req, timespec* rem) {
  if (!cooperative()) return real_clock_nanosleep()(clock, flags, req, rem);
  if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC && clock != CLOCK_BOOTTIME && clock != CLOCK_TAI) {
    return real_clock_nanosleep()(clock, flags, req, rem);  // CPU clocks, and libc's own EINVAL/ENOTSUP
  }
  if (req == nullptr) return EFAULT;
  if (!valid(*req) || ((flags & TIMER_ABSTIME) == 0 && req->tv_sec < 0)) return EINVAL;
  if ((flags & TIMER_ABSTIME) == 0) {
    nap(duration_of(*req));
    return 0;
  }
  // An absolute time on `clock`: sleep until that clock reaches it. The
  // realtime clock may be set meanwhile; check again after each nap, as the
  // kernel wakes an absolute sleep when the clock passes the time.
  for (;;) {
    timespec now{};
    ::clock_gettime(clock, &now);
    const auto left = duration_of(*req) - duration_of(now);
    if (left.count() <= 0) return 0;
    nap(left);
  }
}

}  // extern "C"
