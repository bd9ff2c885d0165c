// greenlet_impl.hpp — what a greenlet handle points at, and each thread's switching state.
//
// The switch protocol, once (it is the invariant everything else leans on):
//
//   A suspended greenlet's context lives in its `ctx` (a boost::context::fiber).
//   To switch from F (current) to T, F records itself in ts.origin, makes T
//   current, and resumes T.ctx. Whoever lands — T at its own pending resume(),
//   or T's entry function on its first run — calls resumed(): the fiber that
//   resume() handed back is F's context, and it is stored into ts.origin->ctx.
//   A finishing greenlet instead *returns* its target's context from its entry
//   function; Boost then frees its stack on the target's side (fiber_exit) and
//   the target receives an empty fiber: an empty `back` means "origin died".
//
//          F: switch_into(T)                       T: resumed(back)
//   ts.origin = F, ts.current = T   --resume-->    ts.origin->ctx = back (F's context)
//
// So at any moment: the current greenlet's ctx is empty, every suspended one's
// is valid, and an unstarted or dead one has none.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/context/fiber.hpp>

#include <grove/greenlet.hpp>

#include "sanitizer.hpp"
#include "stack_pool.hpp"

namespace grove::detail {

// eh_state mirrors libstdc++'s __cxa_eh_globals (unwind-cxx.h): the per-thread
// list of caught exceptions (std::current_exception, `throw;`) and the count of
// uncaught ones (std::uncaught_exceptions). Swapped on every switch.
struct eh_state {
  void* caught = nullptr;
  unsigned int uncaught = 0;
};

enum class run_state : std::uint8_t { unstarted, active, dead };

// thread_anchor outlives its thread for as long as any greenlet names it: it
// is how a greenlet tells its owner, and how another thread hands the owner a
// greenlet whose last handle it dropped.
struct thread_anchor {
  std::atomic<std::size_t> refs{1};
  std::mutex lock;
  bool alive = true;                     // guarded by lock
  std::vector<greenlet_impl*> released;  // guarded by lock; refs reached 0, owner must act
  std::atomic<bool> pending{false};      // released is not empty
};

class greenlet_impl {
 public:
  greenlet_impl(std::unique_ptr<run_body> run, greenlet_impl* parent, thread_anchor* anchor,
                std::size_t stack_request, bool is_main);
  ~greenlet_impl();
  greenlet_impl(const greenlet_impl&) = delete;
  greenlet_impl& operator=(const greenlet_impl&) = delete;

  std::atomic<std::size_t> refs{1};
  std::atomic<run_state> state{run_state::unstarted};
  bool is_main = false;
  bool queued = false;  // in anchor->released; guarded by anchor->lock
  boost::context::fiber ctx;
  greenlet_impl* parent = nullptr;  // holds a reference
  thread_anchor* anchor = nullptr;  // holds a reference
  std::unique_ptr<run_body> body;
  eh_state eh;
  stack_region stack;
  std::size_t stack_request = 0;  // 0: the default when started
  fiber_marks marks;
  std::string name;
  greenlet_impl* live_prev = nullptr;  // the owner thread's list of active greenlets
  greenlet_impl* live_next = nullptr;
};

// thread_state is one OS thread's greenlet machinery, created on first use and
// torn down at thread exit (which kills the greenlets still suspended there).
struct thread_state {
  thread_state();
  ~thread_state();
  thread_state(const thread_state&) = delete;
  thread_state& operator=(const thread_state&) = delete;

  greenlet_impl* current = nullptr;
  greenlet_impl* origin = nullptr;  // who switched to the greenlet now landing
  std::any transfer;                // the value travelling with a switch
  std::exception_ptr transfer_error;  // or the exception to raise on landing
  eh_state* eh = nullptr;           // this thread's __cxa_eh_globals
  thread_anchor* anchor = nullptr;
  greenlet_impl* main = nullptr;    // holds a reference
  greenlet_impl* live = nullptr;    // newest active (started, not dead) non-main greenlet
  std::vector<greenlet_impl*> zombies;  // refused to die when released; hold a reference
  greenlet::trace_function tracer;
  stack_pool pool;
  void* altstack = nullptr;  // our sigaltstack for overflow reports, if we installed one
  bool exiting = false;
};

// current_state returns this thread's state, creating it on first use.
// Throws grove::error while the thread is exiting.
thread_state& current_state();

// current_state_if_any returns this thread's state or nullptr; async-signal-safe.
thread_state* current_state_if_any() noexcept;

// checked_stack_size validates a requested stack size (0: the default).
std::size_t checked_stack_size(std::size_t requested);

// install_overflow_handler sets up this thread's alternate signal stack and,
// once per process, the SIGSEGV handler that names an overflowing greenlet.
void install_overflow_handler(thread_state& ts);
// remove_overflow_handler undoes this thread's part at thread exit.
void remove_overflow_handler(thread_state& ts) noexcept;

}  // namespace grove::detail
