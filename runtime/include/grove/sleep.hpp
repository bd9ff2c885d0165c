// grove/sleep.hpp — giving way: sleep and yield.
#pragma once

#include <chrono>

#include <grove/detail/wait.hpp>

namespace grove {

namespace detail {
void yield_slow();
}

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
