// grove/sleep.hpp — giving way: sleep and yield.
#pragma once

#include <chrono>

#include <grove/detail/wait.hpp>

namespace grove {

namespace detail {
void yield_slow();

// yield_to_poll lets the hub poll I/O and timers, then every greenlet that is
// ready (those the poll woke first) run, before the current one goes on: a
// yield that cannot be served by the ready ring alone, for a greenlet that has
// held the thread for a while without blocking. Raises a pending kill or
// timeout at this blocking point. The caller is a task or a main greenlet on a
// hub that is not closing, and not the hub itself.
void yield_to_poll();

// fair_slice is how long greenlets may go on without blocking before
// slice_used_up says that the hub's I/O and timers are due.
inline constexpr std::chrono::microseconds fair_slice{500};

// slice_used_up tells whether the hub h has not polled I/O and timers for a
// fair_slice, as far as the greenlets that ask it can tell: the slice starts
// at the first question after a poll. One clock read; no syscall (vDSO).
[[gnu::always_inline]] inline bool slice_used_up(hub_core& h) noexcept {
  const clock::time_point now = clock::now();
  if (h.slice_polls != h.polls) {
    h.slice_polls = h.polls;
    h.slice_start = now;
    return false;
  }
  return now - h.slice_start >= fair_slice;
}
}  // namespace detail

// sleep blocks the current task (not the thread) for at least d; the hub runs
// other tasks meanwhile. sleep(0) or less is yield(). Raises a pending kill or
// timeout at this blocking point.
void sleep(std::chrono::nanoseconds d);

// yield lets every other task that is ready run once, then returns: the current
// task goes to the back of the ready queue. No syscall, no allocation. Raises a
// pending kill or timeout at this blocking point. Inlined, for the reason given
// in grove/detail/switch.hpp.
[[gnu::always_inline]] inline void yield() {
  detail::hub_core* h = detail::tls_hub;
  if (h == nullptr || h->closing) [[unlikely]] {
    detail::yield_slow();
    return;
  }
  detail::thread_core& ts = *h->ts;
  detail::greenlet_core* self = ts.current;
  // The fast path: a task or main greenlet (raw greenlets need the slow path's
  // keep-alive), nothing pending, and a hub that is already running.
  if (self == h->greenlet || (self->task == nullptr && !self->is_main) || self->interrupt ||
      self->pending_timeout != nullptr || !detail::fast_switch_possible(&ts, h->greenlet)) [[unlikely]] {
    detail::yield_slow();
    return;
  }
  // Hand over straight to the next ready task when it can be entered by a plain
  // jump: one switch instead of two (through the hub). The budget makes the
  // hub run, and poll I/O, after a bounded batch of such hand-overs.
  detail::greenlet_core* next = h->greenlet;
  if (h->direct_budget > 0 && !h->ready.empty()) {
    detail::greenlet_core* candidate = h->ready.front();
    if (candidate != nullptr && detail::fast_switch_possible(&ts, candidate)) {
      h->ready.pop();
      --h->direct_budget;
      next = candidate;
      if (h->monitoring) [[unlikely]]
        detail::note_switch(*h, next);
    }
  }
  h->ready.push(self);
  detail::jump(ts, next);
  if (ts.transfer_error) [[unlikely]]
    detail::rethrow_transfer(ts);
  detail::check_interrupts(self);
}

}  // namespace grove
