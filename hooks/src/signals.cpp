// signals.cpp — sigwait, sigwaitinfo and sigtimedwait.
//
// A program that handles signals in a thread of its own (block them, then wait
// in sigwait; siege and many servers do) would otherwise stop every green
// thread of its OS thread while that thread waits. Called cooperatively, they
// look for a pending signal of the set without waiting, and sleep on the hub
// between looks. The signals must be blocked, as sigwait requires natively: a
// blocked signal stays pending until it is taken.
#include <signal.h>

#include <cerrno>
#include <chrono>

#include "context.hpp"
#include "libc.hpp"
#include "threads.hpp"

namespace grove::hooks {
namespace {

// A signal arrives at most this long before a green thread waiting for it sees it.
constexpr auto look_every = std::chrono::milliseconds(5);

// take_signal waits until a signal of set is pending and takes it (its number),
// or the limit passes (-1, EAGAIN), as sigtimedwait does.
int take_signal(const sigset_t* set, siginfo_t* info, limit l) {
  static constexpr timespec now{0, 0};
  for (;;) {
    const int sig = real_sigtimedwait()(set, info, &now);
    if (sig > 0 || (errno != EAGAIN && errno != EINTR)) return sig;
    if (l.passed()) {
      errno = EAGAIN;
      return -1;
    }
    limit next = limit::after(look_every);
    if (!l.forever && l.at < next.at) next = l;
    cancellation_point();
    sleep_until(next);
  }
}

}  // namespace
}  // namespace grove::hooks

using namespace grove::hooks;

extern "C" {

int sigwait(const sigset_t* set, int* sig) {
  if (!cooperative()) return real_sigwait()(set, sig);
  const int got = take_signal(set, nullptr, limit::never());
  if (got < 0) return errno;
  *sig = got;
  return 0;
}

int sigwaitinfo(const sigset_t* set, siginfo_t* info) {
  if (!cooperative()) return real_sigwaitinfo()(set, info);
  return take_signal(set, info, limit::never());
}

int sigtimedwait(const sigset_t* set, siginfo_t* info, const timespec* timeout) {
  if (!cooperative() || (timeout != nullptr && timeout->tv_sec == 0 && timeout->tv_nsec == 0)) {
    return real_sigtimedwait()(set, info, timeout);
  }
  if (timeout != nullptr && (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1'000'000'000)) {
    errno = EINVAL;
    return -1;
  }
  const limit l = timeout == nullptr ? limit::never()
                                     : limit::after(std::chrono::seconds(timeout->tv_sec) +
                                                    std::chrono::nanoseconds(timeout->tv_nsec));
  return take_signal(set, info, l);
}

}  // extern "C"
