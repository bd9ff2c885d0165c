// greenlet_impl.hpp — what a greenlet handle points at, and each thread's
// switching state. The switch protocol is described once, in
// grove/detail/switch.hpp; the inline parts of a switch live there.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <grove/detail/small_alloc.hpp>
#include <grove/detail/switch.hpp>
#include <grove/greenlet.hpp>

#include "sanitizer.hpp"
#include "stack_pool.hpp"

namespace grove::detail {

class greenlet_impl;

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

class greenlet_impl : public greenlet_core, public small_object {
 public:
  greenlet_impl(body_ptr run, greenlet_impl* parent, thread_anchor* anchor, std::size_t stack_request, bool is_main);
  ~greenlet_impl();
  greenlet_impl(const greenlet_impl&) = delete;
  greenlet_impl& operator=(const greenlet_impl&) = delete;

  bool queued = false;              // in anchor->released; guarded by anchor->lock
  greenlet_impl* parent = nullptr;  // holds a reference
  body_ptr body;
  stack_region stack;
  std::size_t stack_request = 0;  // 0: the default when started
  fiber_marks marks;
  // label is the greenlet's name, empty if it has none; named gives it one.
  // The name lives on the heap: most greenlets (tasks) never have one, and a
  // std::string would cost each of them 32 bytes.
  const std::string& label() const noexcept {
    static const std::string none;
    return name_ ? *name_ : none;
  }
  void named(std::string n) {
    if (name_) {
      *name_ = std::move(n);
    } else {
      name_ = std::make_unique<std::string>(std::move(n));
    }
  }
  std::unique_ptr<std::string> name_;
  greenlet_impl* live_prev = nullptr;  // the owner thread's list of active greenlets
  greenlet_impl* live_next = nullptr;
};

inline greenlet_impl* impl(greenlet_core* g) noexcept { return static_cast<greenlet_impl*>(g); }

// thread_state is one OS thread's greenlet machinery, created on first use and
// torn down at thread exit (which kills the greenlets still suspended there).
struct thread_state : thread_core {
  thread_state();
  ~thread_state();
  thread_state(const thread_state&) = delete;
  thread_state& operator=(const thread_state&) = delete;

  greenlet_impl* current_impl() const noexcept { return impl(current); }

  greenlet_impl* main = nullptr;        // holds a reference
  greenlet_impl* live = nullptr;        // newest active (started, not dead) non-main greenlet
  std::vector<greenlet_impl*> zombies;  // refused to die when released; hold a reference
  greenlet::trace_function tracer;
  stack_pool pool;
  void* altstack = nullptr;  // our sigaltstack for overflow reports, if we installed one
};

// current_state returns this thread's state, creating it on first use.
// Throws grove::error while the thread is exiting.
thread_state& current_state();

// current_state_if_any returns this thread's state or nullptr; async-signal-safe.
inline thread_state* current_state_if_any() noexcept { return static_cast<thread_state*>(tls_core); }

// checked_stack_size validates a requested stack size (0: the default).
std::size_t checked_stack_size(std::size_t requested);

// install_overflow_handler sets up this thread's alternate signal stack and,
// once per process, the SIGSEGV handler that names an overflowing greenlet.
void install_overflow_handler(thread_state& ts);
// remove_overflow_handler undoes this thread's part at thread exit.
void remove_overflow_handler(thread_state& ts) noexcept;

// abandon_greenlet makes g, a greenlet of this thread that is not running,
// one that never runs again, without unwinding it: in the child of a fork it is
// how the greenlets of threads that do not exist there vanish, as those threads
// do. From then on g reads as dead (the hub skips it, a switch to it goes to its
// parent, thread exit does not kill it), and it keeps one reference for good, so
// its context and stack stay allocated, untouched, for the rest of the process.
void abandon_greenlet(greenlet_core* g) noexcept;

// keep_thread_state_at_exit leaves this thread's switching state in place when
// the thread exits (grove/detail/os_threads.hpp's keep_hub_at_exit).
void keep_thread_state_at_exit() noexcept;

}  // namespace grove::detail
