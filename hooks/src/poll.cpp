// poll.cpp — poll, ppoll, select, pselect, epoll_wait and epoll_pwait in tasks
// wait on the hub, so other tasks run meanwhile.
//
// Every hooked call is "look, wait, look again": the looking is always libc's
// own call with a zero timeout, so what the program gets back (revents, the
// fd_sets, the epoll events, the errors) is the kernel's answer, never a
// translation. Only the waiting in between is the hub's:
//   one descriptor, read or write interest    wait_fd on it directly
//   anything else                             a scratch epoll set holding the
//                                             same interests, waited on as one
//                                             readable descriptor
//   the program's own epoll set               wait_fd on it (an epoll fd is
//                                             readable when it has events)
//   no descriptor                             a sleep
// A wake-up only means "may be ready": the next look decides. A caller's
// timeout of zero never waits, so it goes to libc as it is.
//
// Each call is also a scheduling point (give_way_if_due, context.hpp): an
// event loop that never waits, because its poll always finds something or is
// called with a zero timeout, would otherwise hold the thread and starve the
// other green threads, whose I/O and timers only the hub's poll can deliver.
// Once the hub has not polled for a slice, the call lets it poll and the others
// run before it looks.
//
// A signal handler that runs in the caller's thread while it waits ends the
// call with EINTR, SA_RESTART or not (signal(7): these calls never restart).
// The signal mask of ppoll, pselect and epoll_pwait is the calling thread's
// for the whole call, looks and waits alike (signals::with_mask).
#undef _FORTIFY_SOURCE  // glibc's inline poll wrappers would collide with our definitions

#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <new>
#include <vector>

#include <grove/io.hpp>

#include "context.hpp"
#include "fd_table.hpp"
#include "libc.hpp"
#include "scratch_epoll.hpp"
#include "signals.hpp"

namespace grove::hooks {
namespace {

using std::chrono::nanoseconds;

// Beyond this a timeout is as good as forever, and now + timeout would
// overflow the clock.
constexpr nanoseconds longest = std::chrono::hours(24 * 365 * 100);

limit limit_after(nanoseconds d) { return limit::after(std::clamp(d, nanoseconds::zero(), longest)); }

limit limit_of_ms(int ms) { return ms < 0 ? limit::never() : limit_after(std::chrono::milliseconds(ms)); }

constexpr time_t longest_s = std::chrono::duration_cast<std::chrono::seconds>(longest).count();

limit limit_of(const timespec* t) {
  if (t == nullptr) return limit::never();
  return limit_after(std::chrono::seconds(std::min<time_t>(t->tv_sec, longest_s)) + nanoseconds(t->tv_nsec));
}

// valid is the kernel's timespec64_valid: what ppoll and pselect accept.
bool valid(const timespec& t) noexcept { return t.tv_sec >= 0 && t.tv_nsec >= 0 && t.tv_nsec < 1'000'000'000; }

bool is_zero(const timespec& t) noexcept { return t.tv_sec == 0 && t.tv_nsec == 0; }

// left is what remains of l, never negative.
nanoseconds left(const limit& l) {
  return std::max(nanoseconds::zero(), std::chrono::duration_cast<nanoseconds>(l.at - clock::now()));
}

// The poll bits epoll knows, with the same values (Linux defines them so).
constexpr short poll_interest =
    POLLIN | POLLPRI | POLLOUT | POLLRDNORM | POLLRDBAND | POLLWRNORM | POLLWRBAND | POLLMSG | POLLRDHUP;
static_assert(POLLIN == EPOLLIN && POLLPRI == EPOLLPRI && POLLOUT == EPOLLOUT && POLLRDNORM == EPOLLRDNORM &&
              POLLRDBAND == EPOLLRDBAND && POLLWRNORM == EPOLLWRNORM && POLLWRBAND == EPOLLWRBAND &&
              POLLMSG == EPOLLMSG && POLLRDHUP == EPOLLRDHUP && POLLERR == EPOLLERR && POLLHUP == EPOLLHUP);

// The hub's read (write) readiness is epoll's EPOLLIN (EPOLLOUT), plus errors
// and hang-ups, which poll always reports. So one descriptor can be waited on
// directly when that readiness is part of what the caller asked for: then the
// next look finds what woke us. POLLPRI alone (sysfs, cgroup events, urgent
// data) is not: the hub would wake at once for ordinary data, over and over.
constexpr short read_side = POLLIN | POLLRDNORM | POLLPRI | POLLRDBAND | POLLRDHUP;
constexpr short write_side = POLLOUT | POLLWRNORM | POLLWRBAND;

bool direct_read(short events) noexcept { return (events & (POLLIN | POLLRDNORM)) != 0 && (events & ~read_side) == 0; }
bool direct_write(short events) noexcept {
  return (events & (POLLOUT | POLLWRNORM)) != 0 && (events & ~write_side) == 0;
}

// idle waits while there is nothing to wait for: a sleep, in slices when the
// caller waits forever (the caller looks again after each).
waited idle(const limit& l) {
  if (sleep_until(l.forever ? limit::after(std::chrono::hours(24)) : l, on_handler::fail) == waited::interrupted) {
    return waited::interrupted;
  }
  return waited::timed_out;
}

// wait_any blocks until one of fds may be ready for what it asks, or l passes.
// failed: the hub could not watch them (errno says why); the caller polls.
waited wait_any(const pollfd* fds, nfds_t n, const limit& l) {
  if (n == 1 && fds[0].fd >= 0) {
    const auto events = static_cast<short>(fds[0].events & poll_interest);
    if (direct_read(events)) return wait_fd(fds[0].fd, true, l, on_handler::fail);
    if (direct_write(events)) return wait_fd(fds[0].fd, false, l, on_handler::fail);
  }
  if (std::none_of(fds, fds + n, [](const pollfd& p) { return p.fd >= 0; })) return idle(l);
  scratch_epoll set;
  if (set.fd() < 0) return waited::failed;
  for (nfds_t i = 0; i < n; ++i) {
    const int fd = fds[i].fd;
    if (fd < 0) continue;  // poll ignores negative descriptors
    epoll_event e{};
    e.events = static_cast<std::uint32_t>(fds[i].events & poll_interest);
    e.data.fd = fd;
    if (::epoll_ctl(set.fd(), EPOLL_CTL_ADD, fd, &e) == 0) continue;
    if (errno == EPERM) continue;                // a regular file or the like: poll reports it at once, never later
    if (errno != EEXIST) return waited::failed;  // closed since the look (it shows POLLNVAL now), or no room
    // The same descriptor again (poll allows it): one entry asking for all of it.
    for (nfds_t j = 0; j < i; ++j) {
      if (fds[j].fd == fd) e.events |= static_cast<std::uint32_t>(fds[j].events & poll_interest);
    }
    if (::epoll_ctl(set.fd(), EPOLL_CTL_MOD, fd, &e) != 0) return waited::failed;
  }
  return wait_fd(set.fd(), true, l, on_handler::fail);
}

constexpr nanoseconds first_backoff = std::chrono::milliseconds(1);
constexpr nanoseconds last_backoff = std::chrono::milliseconds(50);

// cooperate runs a blocking wait as a task must: look(), which is the real call
// with a zero timeout; if it finds nothing, wait() (a waited) for something
// that may be ready, then look again, until l passes. Returns the last look's
// result, or -1 with EINTR when a signal handler interrupted a wait. A wait that wakes early yet finds nothing (readiness the look does
// not count, or a wait the hub could not set up) would spin: the next waits
// are preceded by a growing nap, so it degrades to polling, never to a busy loop.
template <class Look, class Wait>
int cooperate(const limit& l, Look look, Wait wait) {
  // Other tasks run while this one waits, and they share the thread's errno.
  const int saved_errno = errno;
  nanoseconds backoff = first_backoff;
  bool fruitless = false;
  for (;;) {
    const int r = look();
    if (r != 0) {
      if (r > 0) errno = saved_errno;
      return r;
    }
    if (l.passed()) {
      errno = saved_errno;
      return 0;
    }
    if (fruitless) {
      const limit nap = l.forever ? limit::after(backoff) : limit::after(std::min(backoff, left(l)));
      if (sleep_until(nap, on_handler::fail) == waited::interrupted) return -1;
      backoff = std::min(backoff * 2, last_backoff);
    }
    const waited w = wait();
    if (w == waited::interrupted) return -1;  // errno is EINTR
    fruitless = w != waited::timed_out;
    // (fruitless is cleared by the next look if it finds something: we return.)
  }
}

int poll_fds(pollfd* fds, nfds_t n, const limit& l, const timespec* zero, const sigset_t* mask, bool with_mask) {
  return cooperate(
      l, [&] { return with_mask ? real_ppoll()(fds, n, zero, mask) : real_poll()(fds, n, 0); },
      [&] { return wait_any(fds, n, l); });
}

// An fd_set as an array of words: select reads and writes only the words that
// hold its first nfds bits, so that is all that is copied.
std::size_t set_bytes(int nfds) noexcept {
  constexpr std::size_t word_bits = 8 * sizeof(__fd_mask);
  return (static_cast<std::size_t>(nfds) + word_bits - 1) / word_bits * sizeof(__fd_mask);
}

// select_sets holds the caller's fd_sets as they came in: each look works on
// them afresh (a look that finds nothing clears the sets it was given).
struct select_sets {
  fd_set* caller[3];
  fd_set in[3];
  std::size_t bytes;

  select_sets(int nfds, fd_set* r, fd_set* w, fd_set* e) noexcept : caller{r, w, e}, in{}, bytes(set_bytes(nfds)) {
    for (int k = 0; k < 3; ++k) {
      if (caller[k] != nullptr) std::memcpy(&in[k], caller[k], bytes);
    }
  }
  // restore puts the incoming sets back where the next look reads them.
  void restore() noexcept {
    for (int k = 0; k < 3; ++k) {
      if (caller[k] != nullptr) std::memcpy(caller[k], &in[k], bytes);
    }
  }
  // pollfds lists what the sets ask for, as poll asks it.
  std::vector<pollfd> pollfds(int nfds) const {
    static constexpr short interest[3] = {POLLIN | POLLRDNORM | POLLRDBAND, POLLOUT | POLLWRNORM | POLLWRBAND, POLLPRI};
    std::vector<pollfd> out;
    for (int fd = 0; fd < nfds; ++fd) {
      short events = 0;
      for (int k = 0; k < 3; ++k) {
        if (caller[k] != nullptr && FD_ISSET(fd, &in[k])) events = static_cast<short>(events | interest[k]);
      }
      if (events != 0) out.push_back(pollfd{fd, events, 0});
    }
    return out;
  }
};

// select_fds is select and pselect in a task; look(sets) is the real call with
// a zero timeout on the caller's sets.
template <class Look>
int select_fds(int nfds, fd_set* r, fd_set* w, fd_set* e, const limit& l, Look look) {
  // The kernel reads only the descriptors that exist, so a program may pass
  // FD_SETSIZE or getdtablesize(); an fd_set holds FD_SETSIZE bits, so that
  // is all we read (descriptors past it cannot be in a standard fd_set).
  nfds = std::min(nfds, static_cast<int>(FD_SETSIZE));
  select_sets sets(nfds, r, w, e);
  std::vector<pollfd> fds;
  bool listed = false;
  const int result = cooperate(
      l,
      [&] {
        sets.restore();
        return look(nfds);
      },
      [&] {
        if (!listed) {
          try {
            fds = sets.pollfds(nfds);
          } catch (const std::bad_alloc&) {
            errno = ENOMEM;
            return waited::failed;
          }
          listed = true;
        }
        return wait_any(fds.data(), fds.size(), l);
      });
  if (result < 0) {
    // Linux leaves the sets as they came when select fails (EINTR included),
    // and programs retry with them (CPython's select does): the last look
    // cleared them.
    const int saved = errno;
    sets.restore();
    errno = saved;
  }
  return result;
}

}  // namespace
}  // namespace grove::hooks

using namespace grove::hooks;

extern "C" {

int poll(pollfd* fds, nfds_t n, int timeout) {
  if (!cooperative()) return real_poll()(fds, n, timeout);
  give_way_if_due();
  if (timeout == 0) return real_poll()(fds, n, 0);
  return poll_fds(fds, n, limit_of_ms(timeout), nullptr, nullptr, false);
}

// The mask is the thread's for the whole call (see the top of this file).
int ppoll(pollfd* fds, nfds_t n, const timespec* timeout, const sigset_t* mask) {
  if (!cooperative()) return real_ppoll()(fds, n, timeout, mask);
  give_way_if_due();
  if (timeout != nullptr && (!valid(*timeout) || is_zero(*timeout))) return real_ppoll()(fds, n, timeout, mask);
  static constexpr timespec zero{};
  const signals::with_mask during(mask);
  return poll_fds(fds, n, limit_of(timeout), &zero, mask, true);
}

int select(int nfds, fd_set* r, fd_set* w, fd_set* e, timeval* timeout) {
  if (!cooperative()) return real_select()(nfds, r, w, e, timeout);
  give_way_if_due();
  // Invalid arguments and a zero timeout: libc answers at once, as it would.
  if (nfds < 0 || (timeout != nullptr &&
                   (timeout->tv_sec < 0 || timeout->tv_usec < 0 || (timeout->tv_sec == 0 && timeout->tv_usec == 0)))) {
    return real_select()(nfds, r, w, e, timeout);
  }
  // glibc takes tv_usec past a second as whole seconds too.
  limit l = limit::never();
  if (timeout != nullptr) {
    l = limit_after(std::chrono::seconds(std::min<time_t>(timeout->tv_sec, longest_s)) +
                    std::chrono::seconds(std::min<time_t>(timeout->tv_usec / 1'000'000, longest_s)) +
                    std::chrono::microseconds(timeout->tv_usec % 1'000'000));
  }
  const int result = select_fds(nfds, r, w, e, l, [&](int n) {
    timeval zero{};
    return real_select()(n, r, w, e, &zero);
  });
  // Linux's select leaves the time not slept in *timeout, success or failure.
  if (timeout != nullptr) {
    const int saved = errno;
    const auto rest = left(l);
    const auto s = std::chrono::duration_cast<std::chrono::seconds>(rest);
    timeout->tv_sec = static_cast<time_t>(s.count());
    timeout->tv_usec =
        static_cast<suseconds_t>(std::chrono::duration_cast<std::chrono::microseconds>(rest - s).count());
    errno = saved;
  }
  return result;
}

// The mask: as for ppoll.
int pselect(int nfds, fd_set* r, fd_set* w, fd_set* e, const timespec* timeout, const sigset_t* mask) {
  if (!cooperative()) return real_pselect()(nfds, r, w, e, timeout, mask);
  give_way_if_due();
  if (nfds < 0 || (timeout != nullptr && (!valid(*timeout) || is_zero(*timeout)))) {
    return real_pselect()(nfds, r, w, e, timeout, mask);
  }
  const signals::with_mask during(mask);
  return select_fds(nfds, r, w, e, limit_of(timeout), [&](int n) {
    static constexpr timespec zero{};
    return real_pselect()(n, r, w, e, &zero, mask);
  });
}

int epoll_wait(int epfd, epoll_event* events, int max, int timeout) {
  if (!cooperative()) return real_epoll_wait()(epfd, events, max, timeout);
  give_way_if_due();
  if (timeout == 0) return real_epoll_wait()(epfd, events, max, 0);
  const limit l = limit_of_ms(timeout);
  return cooperate(
      l, [&] { return real_epoll_wait()(epfd, events, max, 0); },
      [&] { return wait_fd(epfd, true, l, on_handler::fail); });
}

// The mask: as for ppoll.
int epoll_pwait(int epfd, epoll_event* events, int max, int timeout, const sigset_t* mask) {
  if (!cooperative()) return real_epoll_pwait()(epfd, events, max, timeout, mask);
  give_way_if_due();
  if (timeout == 0) return real_epoll_pwait()(epfd, events, max, 0, mask);
  const limit l = limit_of_ms(timeout);
  const signals::with_mask during(mask);
  return cooperate(
      l, [&] { return real_epoll_pwait()(epfd, events, max, 0, mask); },
      [&] { return wait_fd(epfd, true, l, on_handler::fail); });
}

}  // extern "C"
