// pool.hpp — blocking calls that nothing can wait for on the hub (file locks,
// SysV message queues and semaphores) run on the hub's thread pool, so only
// the calling task waits.
//
// blocking_on_pool is the one way hooks hand such a call to the pool, and
// where a signal interrupts it as natively: the handler runs in the task, and
// the worker's call is ended with EINTR by a signal sent to the worker.
#pragma once

#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <new>
#include <system_error>
#include <utility>

#include <grove/thread_pool.hpp>

#include "context.hpp"
#include "signals.hpp"

namespace grove::hooks {

namespace pool_detail {

// call_state is one call's meeting point between the task and the worker.
template <class R>
struct call_state {
  enum : int { queued, calling, done, cancelled };
  std::atomic<int> stage{queued};
  std::atomic_flag busy = ATOMIC_FLAG_INIT;  // held (briefly, never across a wait) to change stage or signal the worker
  pid_t worker = 0;                          // the worker's thread id, written before stage becomes calling
  int sig = 0;                               // what interrupts the worker's call; 0: nothing can
  pid_t hub_tid = 0;                         // the task's OS thread
  std::atomic<bool> finished{false};         // value and err are written
  R value{};
  int err = 0;

  void hold() noexcept {
    while (busy.test_and_set(std::memory_order_acquire)) {
    }
  }
  void release() noexcept { busy.clear(std::memory_order_release); }

  // interrupt, from the task: a call not begun never begins (true: nothing
  // to wait for), one under way is sent sig.
  bool interrupt() noexcept {
    hold();
    bool over = false;  // a call under way (or just done) is waited for
    if (stage.load(std::memory_order_relaxed) == queued) {
      stage.store(cancelled, std::memory_order_relaxed);
      over = true;
    } else if (stage.load(std::memory_order_relaxed) == calling && sig != 0) {
      ::syscall(SYS_tgkill, ::getpid(), worker, sig);
    }
    release();
    return over;
  }
};

}  // namespace pool_detail

// blocking_on_pool runs call(), a blocking libc call that returns its result
// (-1 on failure) and sets errno, on a thread of the hub's pool as if on the
// calling thread: the worker starts with the caller's errno, and the caller
// gets the call's result and the errno it left. Only the calling task waits;
// the hub and its other tasks run meanwhile.
//
// A signal handler that runs in the task meanwhile ends the call as signal(7)
// says for mode: with on_handler::restart the wait goes on after SA_RESTART
// handlers (flock, F_SETLKW), with on_handler::fail it always ends (msgrcv,
// msgsnd, semop). Ending it sends the worker a signal the program handles
// without SA_RESTART, so its call fails with EINTR where the kernel would; a
// call that completed first returns its result, as natively.
//
// call must own everything it touches (copies of the caller's buffers, copied
// back by the hook once this returns): a task killed while it waits (or whose
// grove::timeout scope fires) abandons the call, which is interrupted as by a
// signal when the program handles one; otherwise it runs to its end on the
// worker, and what it does then (a lock taken, a message received) is lost
// with the task. If the pool cannot take the call (no memory, no thread), it
// runs here, blocking the OS thread, as it would natively: late, but right.
template <class Call>
auto blocking_on_pool(Call call, on_handler mode) -> decltype(call()) {
  using result = decltype(call());
  using state = pool_detail::call_state<result>;
  const int before = errno;
  std::shared_ptr<state> st;
  try {
    st = std::make_shared<state>();
  } catch (const std::bad_alloc&) {
    return call();
  }
  st->hub_tid = os_tid();
  st->sig = signals::interrupting_signal(mode == on_handler::restart);
  bool woken = false;
  try {
    const signals::wait_scope interruptible;
    // The pool gets a copy: `call` stays here for the fallback below.
    grove::run_in_thread([call, st, before]() mutable {
      const signals::pool_call_scope scope(st->sig, st->hub_tid);
      st->worker = os_tid();
      int expected = state::queued;
      if (st->stage.compare_exchange_strong(expected, state::calling, std::memory_order_acq_rel)) {
        errno = before;
        st->value = call();
        st->err = errno;
        st->hold();
        st->stage.store(state::done, std::memory_order_relaxed);
        st->release();
      } else {
        st->value = static_cast<result>(-1);
        st->err = EINTR;
      }
      st->finished.store(true, std::memory_order_release);
    });
  } catch (const signals::wake&) {
    woken = true;
  } catch (const std::bad_alloc&) {
    errno = before;
    return call();
  } catch (const std::system_error&) {
    errno = before;
    return call();
  } catch (...) {
    st->interrupt();  // killed, cancelled, timed out: the call is abandoned
    throw;
  }
  if (woken) {
    // Handlers are due in this thread: run them; the call goes on after
    // SA_RESTART ones where it restarts, looked at every 1 to 10 ms.
    bool fail = signals::after_wait(mode);
    auto pause = std::chrono::milliseconds(1);
    while (!fail && !st->finished.load(std::memory_order_acquire)) {
      fail = sleep_until(limit::after(pause), mode) == waited::interrupted;
      pause = std::min(pause * 2, std::chrono::milliseconds(10));
    }
    if (fail) {
      // Interrupt the worker's call (again every millisecond: a signal sent
      // just before it enters the kernel does not end it).
      while (!st->finished.load(std::memory_order_acquire)) {
        if (st->interrupt()) break;
        sleep_until(limit::after(std::chrono::milliseconds(1)), on_handler::resume);
      }
      if (!st->finished.load(std::memory_order_acquire) || st->value == static_cast<result>(-1)) {
        errno = (st->finished.load(std::memory_order_acquire) && st->err != EINTR) ? st->err : EINTR;
        return static_cast<result>(-1);
      }
    }
  }
  errno = st->err;
  return st->value;
}

}  // namespace grove::hooks
