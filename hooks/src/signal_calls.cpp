// signal_calls.cpp — the signal functions of libc, per green thread (the
// machinery is in signals.cpp; see signals.hpp):
//   dispositions   sigaction, signal, bsd_signal, ssignal, sysv_signal,
//                  __sysv_signal, siginterrupt, sigset, sigignore
//   masks          sigprocmask, pthread_sigmask, sighold, sigrelse, sigpending
//   waiting        sigsuspend, pause, sigwait, sigwaitinfo, sigtimedwait
//   sending        raise (pthread_kill is in threads.cpp)
// glibc implements signal() and its relatives with its internal sigaction,
// which no interposer sees: each is here on its own, as glibc 2.36 defines it.
#include <signal.h>

#include <cerrno>
#include <chrono>

#include "context.hpp"
#include "libc.hpp"
#include "signals.hpp"
#include "threads.hpp"

namespace grove::hooks {
namespace {

using signals::bit;

// virtualised tells the signals whose dispositions the hooks keep: every
// valid one but SIGKILL, SIGSTOP, glibc's internal two, the synchronous ones
// and SIGABRT (abort() raises it in the failing thread; sent from outside, a
// crash reporter such as Python's faulthandler must run at once, wherever the
// process is stuck).
bool virtualised(int sig) noexcept {
  return sig > 0 && sig < NSIG && sig != 32 && sig != 33 && sig != SIGKILL && sig != SIGSTOP && sig != SIGABRT &&
         !signals::synchronous(sig);
}

bool valid_for_signal(int sig, sighandler_t handler) noexcept {
  return handler != SIG_ERR && sig > 0 && sig < NSIG && sig != 32 && sig != 33;
}

// install is what glibc's signal functions do with their sigaction.
sighandler_t install(int sig, sighandler_t handler, int flags, std::uint64_t mask) {
  struct sigaction act {}, old{};
  act.sa_handler = handler;
  signals::to_set(mask, act.sa_mask);
  act.sa_flags = flags;
  if (::sigaction(sig, &act, &old) < 0) return SIG_ERR;
  return old.sa_handler;
}

// change_mask is sigprocmask for the calling thread s: 0, or an errno value.
int change_mask(signals::thread_state& s, int how, const sigset_t* set, sigset_t* old) {
  const std::uint64_t was = s.mask.load(std::memory_order_relaxed);
  if (set != nullptr) {
    const std::uint64_t bits = signals::from_set(*set);
    std::uint64_t now = was;
    switch (how) {
      case SIG_BLOCK:
        now = was | bits;
        break;
      case SIG_UNBLOCK:
        now = was & ~bits;
        break;
      case SIG_SETMASK:
        now = bits;
        break;
      default:
        return EINVAL;
    }
    if (old != nullptr) signals::to_set(was, *old);
    signals::set_mask(s, now);
    // A signal pending for this thread that it now unblocks is delivered
    // before the call returns, as the kernel delivers it.
    signals::after_wait(signals::on_handler::resume);
    return 0;
  }
  if (old != nullptr) signals::to_set(was, *old);
  return 0;
}

constexpr auto look_every = std::chrono::milliseconds(5);

// take_signal waits until a signal of set is pending for the caller and takes
// it (its number), or the limit passes (-1, EAGAIN), as sigtimedwait does. A
// handler of another signal ends it with EINTR where `mode` says so. The
// signals must be blocked, as natively: a blocked signal stays pending until
// taken. The kernel's pending set is looked at without waiting, between naps.
int take_signal(const sigset_t* set, siginfo_t* info, limit l, on_handler mode) {
  static constexpr timespec now{0, 0};
  for (;;) {
    if (const int sig = signals::take_pending(set, info)) return sig;
    const int sig = real_sigtimedwait()(set, info, &now);
    if (sig > 0 || (errno != EAGAIN && errno != EINTR)) return sig;
    if (l.passed()) {
      errno = EAGAIN;
      return -1;
    }
    limit next = limit::after(look_every);
    if (!l.forever && l.at < next.at) next = l;
    cancellation_point();
    if (sleep_until(next, mode) == waited::interrupted) return -1;
  }
}

}  // namespace
}  // namespace grove::hooks

using namespace grove::hooks;

extern "C" {

// vfork's child shares the parent's memory until it execs, and what it calls
// before that (sigprocmask, close, dup2...) would change the hooks' records of
// the parent's masks and descriptors. A fork gives it its own copy: the same
// semantics, at a fork's cost.
pid_t vfork() { return ::fork(); }

int sigaction(int sig, const struct sigaction* act, struct sigaction* old) {
  if (!virtualised(sig)) return real_sigaction()(sig, act, old);
  return signals::set_handler(sig, act, old);
}

sighandler_t signal(int sig, sighandler_t handler) {
  if (!valid_for_signal(sig, handler)) {
    errno = EINVAL;
    return SIG_ERR;
  }
  return install(sig, handler, signals::interrupting(sig) ? 0 : SA_RESTART, bit(sig));
}

sighandler_t bsd_signal(int sig, sighandler_t handler) { return signal(sig, handler); }

sighandler_t ssignal(int sig, sighandler_t handler) { return signal(sig, handler); }

sighandler_t __sysv_signal(int sig, sighandler_t handler) {
  if (!valid_for_signal(sig, handler)) {
    errno = EINVAL;
    return SIG_ERR;
  }
  return install(sig, handler, SA_RESETHAND | SA_NODEFER, 0);
}

sighandler_t sysv_signal(int sig, sighandler_t handler) { return __sysv_signal(sig, handler); }

int siginterrupt(int sig, int flag) {
  struct sigaction act {};
  if (::sigaction(sig, nullptr, &act) < 0) return -1;
  signals::set_interrupting(sig, flag != 0);
  if (flag != 0) {
    act.sa_flags &= ~SA_RESTART;
  } else {
    act.sa_flags |= SA_RESTART;
  }
  return ::sigaction(sig, &act, nullptr) < 0 ? -1 : 0;
}

int sigignore(int sig) {
  struct sigaction act {};
  act.sa_handler = SIG_IGN;
  return ::sigaction(sig, &act, nullptr);
}

sighandler_t sigset(int sig, sighandler_t disp) {
  if (disp == SIG_ERR || sig <= 0 || sig >= NSIG) {
    errno = EINVAL;
    return SIG_ERR;
  }
  sigset_t one, old;
  sigemptyset(&one);
  sigaddset(&one, sig);
  if (disp == SIG_HOLD) {
    if (::sigprocmask(SIG_BLOCK, &one, &old) < 0) return SIG_ERR;
    if (sigismember(&old, sig)) return SIG_HOLD;
    struct sigaction cur {};
    if (::sigaction(sig, nullptr, &cur) < 0) return SIG_ERR;
    return cur.sa_handler;
  }
  struct sigaction act {}, prev{};
  act.sa_handler = disp;
  if (::sigaction(sig, &act, &prev) < 0) return SIG_ERR;
  if (::sigprocmask(SIG_UNBLOCK, &one, &old) < 0) return SIG_ERR;
  return sigismember(&old, sig) ? SIG_HOLD : prev.sa_handler;
}

int sigprocmask(int how, const sigset_t* set, sigset_t* old) {
  signals::thread_state* s = signals::mask_owner();
  if (s == nullptr) return real_sigprocmask()(how, set, old);
  if (const int err = change_mask(*s, how, set, old)) {
    errno = err;
    return -1;
  }
  return 0;
}

int pthread_sigmask(int how, const sigset_t* set, sigset_t* old) {
  signals::thread_state* s = signals::mask_owner();
  if (s == nullptr) return real_pthread_sigmask()(how, set, old);
  return change_mask(*s, how, set, old);
}

int sighold(int sig) {
  if (sig <= 0 || sig >= NSIG) {
    errno = EINVAL;
    return -1;
  }
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, sig);
  return ::sigprocmask(SIG_BLOCK, &one, nullptr);
}

int sigrelse(int sig) {
  if (sig <= 0 || sig >= NSIG) {
    errno = EINVAL;
    return -1;
  }
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, sig);
  return ::sigprocmask(SIG_UNBLOCK, &one, nullptr);
}

int sigpending(sigset_t* set) {
  const int rc = real_sigpending()(set);
  if (rc == 0) signals::to_set(signals::from_set(*set) | signals::pending_here(), *set);
  return rc;
}

int sigsuspend(const sigset_t* mask) {
  signals::thread_state* s = signals::current();
  if (s == nullptr || !cooperative()) return real_sigsuspend()(mask);
  cancellation_point();
  const std::uint64_t saved = s->mask.load(std::memory_order_relaxed);
  const std::uint32_t before = s->handled;
  signals::set_mask(*s, signals::from_set(*mask));  // the kernel may run a handler right here
  while (s->handled == before) {
    if (sleep_until(limit::after(std::chrono::hours(24)), on_handler::fail) == waited::interrupted) break;
  }
  signals::set_mask(*s, saved);
  signals::after_wait(on_handler::resume);  // what the old mask unblocks, as sigreturn would
  errno = EINTR;
  return -1;
}

int pause() {
  signals::thread_state* s = signals::current();
  if (s == nullptr || !cooperative()) return real_pause()();
  sigset_t now;
  sigemptyset(&now);
  signals::to_set(s->mask.load(std::memory_order_relaxed), now);
  return sigsuspend(&now);
}

// __sigpause is sigpause's work (glibc's symbol): wait as sigsuspend with the
// calling thread's mask less sig_or_mask (XSI, is_sig set), or with the old
// BSD mask sig_or_mask (its first 32 signals) in its place.
int __sigpause(int sig_or_mask, int is_sig);
int bsd_sigpause(int mask) __asm__("sigpause");  // <signal.h>'s sigpause is __xpg_sigpause
int __sigpause(int sig_or_mask, int is_sig) {
  sigset_t set;
  sigemptyset(&set);
  if (is_sig != 0) {
    if (pthread_sigmask(SIG_BLOCK, nullptr, &set) != 0) return -1;
    sigdelset(&set, sig_or_mask);  // a bad signal changes nothing, as in glibc
  } else {
    for (int sig = 1; sig < 32; ++sig) {
      if ((static_cast<unsigned>(sig_or_mask) & (1u << (sig - 1))) != 0) sigaddset(&set, sig);
    }
  }
  return sigsuspend(&set);
}

// sigpause (BSD's, a mask) and __xpg_sigpause (XSI's, what <signal.h> names
// sigpause with _XOPEN_SOURCE or _GNU_SOURCE: one signal to let in).
int bsd_sigpause(int mask) { return __sigpause(mask, 0); }
int __xpg_sigpause(int sig) { return __sigpause(sig, 1); }

int raise(int sig) {
  signals::thread_state* s = signals::current();
  if (s == nullptr || !virtualised(sig)) return real_raise()(sig);
  if (const int err = signals::send_to_thread(*s, sig, true, nullptr)) {
    errno = err;
    return -1;
  }
  return 0;
}

int sigwait(const sigset_t* set, int* sig) {
  if (!cooperative()) return real_sigwait()(set, sig);
  const int got = take_signal(set, nullptr, limit::never(), on_handler::resume);
  if (got < 0) return errno;
  *sig = got;
  return 0;
}

int sigwaitinfo(const sigset_t* set, siginfo_t* info) {
  if (!cooperative()) return real_sigwaitinfo()(set, info);
  return take_signal(set, info, limit::never(), on_handler::fail);
}

int sigtimedwait(const sigset_t* set, siginfo_t* info, const timespec* timeout) {
  if (!cooperative()) return real_sigtimedwait()(set, info, timeout);
  if (timeout != nullptr && timeout->tv_sec == 0 && timeout->tv_nsec == 0) {
    if (const int sig = signals::take_pending(set, info)) return sig;
    return real_sigtimedwait()(set, info, timeout);
  }
  if (timeout != nullptr && (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1'000'000'000)) {
    errno = EINVAL;
    return -1;
  }
  const limit l = timeout == nullptr ? limit::never()
                                     : limit::after(std::chrono::seconds(timeout->tv_sec) +
                                                    std::chrono::nanoseconds(timeout->tv_nsec));
  return take_signal(set, info, l, on_handler::fail);
}

}  // extern "C"
