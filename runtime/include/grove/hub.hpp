// grove/hub.hpp — the per-thread event loop that tasks block on.
//
// Every OS thread that uses tasks, sleeps, timeouts or cooperative sync has one
// hub: a libev loop running in its own greenlet. A task that blocks switches to
// the hub; the hub runs the ready tasks in FIFO order and, when none is ready
// (or after a bounded batch of them), polls libev for timers and I/O, then
// switches back to whichever tasks can go on. The thread's main greenlet blocks
// the same way, so `int main() { auto t = grove::spawn(f); t.get(); }` is a
// complete program.
//
// Settings read when a thread's hub is created:
//   GROVE_MONITOR_MS=N       a watchdog thread reports on stderr when the hub has
//                            not switched for N ms, naming the task that holds it
//                            and giving its thread's backtrace (sampled with
//                            SIGRTMAX, when the program does not use that signal).
//   GROVE_DUMP_ON_SIGNAL=SIG print grove::dump_tasks on stderr when the process
//                            receives SIG (SIGUSR1, USR1 or a number); the first
//                            thread's hub owns the signal.
//   GROVE_BACKTRACES=0|1     dump_tasks(out) and that dump show each suspended
//                            task's backtrace (default 0).
// A bad value prints a message on stderr and exits with status 2.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>

namespace grove {

namespace detail {
struct hub_state;
}

// hub is a thread's event loop. It lives until its thread exits.
class hub {
 public:
  // current returns this thread's hub, creating it on first use.
  static hub& current();

  // post runs callback on the hub's thread, from any thread, waking the hub if
  // it sleeps. Callbacks run in the hub's own greenlet, in the order posted:
  // they may spawn tasks and wake sync objects, but must not block (a blocking
  // call there throws grove::error). Thread-safe; the only member other threads
  // may call.
  void post(std::function<void()> callback);

  // keepalive, while it exists, tells the hub that another thread may still
  // post to it, so tasks waiting for such a post are not given loop_exit.
  // Create and destroy it on any thread.
  class keepalive {
   public:
    explicit keepalive(hub& h);
    keepalive(const keepalive&) = delete;
    keepalive& operator=(const keepalive&) = delete;
    ~keepalive();

   private:
    hub& hub_;
  };

  // stats counts what the hub holds right now (for tests and diagnostics).
  struct counts {
    std::size_t tasks = 0;   // spawned and not finished
    std::size_t parked = 0;  // greenlets blocked on the hub
    std::size_t ready = 0;   // greenlets waiting for their turn to run
    std::size_t timers = 0;  // active timers (sleeps, timeouts, time limits)
  };
  // stats must be called on the hub's own thread.
  counts stats() const;

  hub(const hub&) = delete;
  hub& operator=(const hub&) = delete;

 private:
  friend struct detail::hub_state;
  explicit hub(detail::hub_state& s) : state_(s) {}
  detail::hub_state& state_;
};

}  // namespace grove
