// grove/detail/switch.hpp — the part of a greenlet switch that is inlined into
// the caller. Not a public interface: names here change without notice.
//
// Why inline: boost's jump_fcontext leaves through `jmp`, not `ret`, so after
// landing, the first `ret` of any function that contains the jump is predicted
// from the *other* side's call stack and mispredicted, every switch. Measured
// here: wrapping a raw fiber resume in one non-inlined function takes it from
// ~6 ns to ~13 ns. Keeping the jump inline in the caller's code keeps a greenlet
// switch close to a raw resume.
//
// The switch protocol (every other part of grove relies on it):
//
//   A suspended greenlet's context lives in its `ctx`. To switch from F
//   (current) to T, F records itself in origin, makes T current, and resumes
//   T.ctx. Whoever lands (T at its own pending resume, or T's entry function on
//   its first run) calls land(): the fiber that resume handed back is F's
//   context and is stored into origin->ctx. A finishing greenlet instead
//   *returns* its target's context from its entry function; Boost then frees its
//   stack on the target's side and the target receives an empty fiber: an empty
//   `back` means "origin died".
//
//          F: jump(T)                               T: land(back)
//   origin = F, current = T   --resume(T.ctx)-->    origin->ctx = back (F's context)
//
// So at any moment the current greenlet's ctx is empty, every suspended one's is
// valid, and an unstarted or dead one has none.
#pragma once

#include <any>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>

#include <boost/context/fiber.hpp>

namespace grove::detail {

struct thread_anchor;

// eh_state mirrors libstdc++'s __cxa_eh_globals (unwind-cxx.h): the per-thread
// list of caught exceptions (std::current_exception, `throw;`) and the count of
// uncaught ones (std::uncaught_exceptions). Swapped on every switch, since
// Boost 1.74 does not.
struct eh_state {
  void* caught = nullptr;
  unsigned int uncaught = 0;
};

enum class run_state : std::uint8_t { unstarted, active, dead };

struct waiter;
struct timeout_scope;
struct task_base;

// greenlet_core is the start of every greenlet: what the inline switch touches,
// and what the hub keeps per greenlet.
// (Every task has one: 104 bytes on x86-64, the small fields sharing a word.)
struct greenlet_core {
  std::atomic<std::uint32_t> refs{1};
  std::atomic<run_state> state{run_state::unstarted};
  bool is_main = false;       // a thread's implicit main greenlet
  boost::context::fiber ctx;  // valid exactly while suspended
  eh_state eh;                // saved while not running
  thread_anchor* anchor = nullptr;

  // The hub's part (grove/detail/wait.hpp). Touched only on the owner thread.
  waiter* parked = nullptr;                      // what it waits for, while parked on the hub
  std::exception_ptr interrupt;                  // a kill or loop_exit to raise at its blocking point
  timeout_scope* pending_timeout = nullptr;      // a timeout scope that fired while it was not parked
  timeout_scope* innermost_timeout = nullptr;    // its open timeout scopes, innermost first
  task_base* task = nullptr;                     // the task it runs, if any
  void (*on_destroy)(greenlet_core*) = nullptr;  // set by upper layers that keep per-greenlet data
  void* locals = nullptr;                        // grove::local values, owned through on_destroy
  void* hooks_data = nullptr;                    // the hooks' record of the green pthread it runs, if any
};

// thread_core is the start of each thread's switching state.
struct thread_core {
  greenlet_core* current = nullptr;
  greenlet_core* origin = nullptr;    // who switched to the greenlet now landing
  std::any transfer;                  // the value travelling with a switch
  std::exception_ptr transfer_error;  // or the exception to raise on landing
  eh_state* eh = nullptr;             // this thread's __cxa_eh_globals
  thread_anchor* anchor = nullptr;
  std::atomic<bool>* released = nullptr;  // other threads queued greenlets for us to act on
  bool annotate = false;                  // sanitizers need to hear of every switch (grove built with one)
  bool tracing = false;                   // a settrace hook is installed: switches take the slow path
};

// This thread's state; null until grove is first used on the thread.
extern constinit thread_local thread_core* tls_core __attribute__((tls_model("initial-exec")));

// Out-of-line parts, in libgrove.
void annotate_before(thread_core& ts, void** fake_stack, greenlet_core* to) noexcept;
void annotate_after(thread_core& ts, void* fake_stack, greenlet_core* from) noexcept;
void origin_finished(thread_core& ts) noexcept;
void run_released(thread_core& ts) noexcept;
[[noreturn]] void rethrow_transfer(thread_core& ts);

// land runs first thing in a greenlet that has just been switched into.
[[gnu::always_inline]] inline void land(thread_core& ts, boost::context::fiber&& back, void* fake_stack) noexcept {
  if (ts.annotate) [[unlikely]]
    annotate_after(ts, fake_stack, ts.origin);
  if (back) [[likely]] {
    ts.origin->ctx = std::move(back);
  } else {
    origin_finished(ts);
  }
  if (ts.released->load(std::memory_order_relaxed)) [[unlikely]]
    run_released(ts);
}

// jump suspends the current greenlet and resumes `to`, which must be active and
// suspended, of this thread, and not current. The caller has set ts.transfer or
// ts.transfer_error. No allocation, no syscall.
[[gnu::always_inline]] inline void jump(thread_core& ts, greenlet_core* to) noexcept {
  greenlet_core* from = ts.current;
  from->eh = *ts.eh;
  *ts.eh = to->eh;
  ts.origin = from;
  ts.current = to;
  void* fake_stack = nullptr;
  if (ts.annotate) [[unlikely]]
    annotate_before(ts, &fake_stack, to);
  boost::context::fiber back = std::move(to->ctx).resume();
  land(ts, std::move(back), fake_stack);
}

// take_result is what a switch returns in the greenlet that lands.
[[gnu::always_inline]] inline std::any take_result(thread_core& ts) {
  if (ts.transfer_error) [[unlikely]]
    rethrow_transfer(ts);
  std::any r(std::move(ts.transfer));
  ts.transfer.reset();
  return r;
}

// fast_switch_possible: `to` can be entered by a plain jump, with no special case.
[[gnu::always_inline]] inline bool fast_switch_possible(const thread_core* ts, const greenlet_core* to) noexcept {
  return ts != nullptr && !ts->tracing && to->anchor == ts->anchor &&
         to->state.load(std::memory_order_relaxed) == run_state::active && to != ts->current;
}

}  // namespace grove::detail
