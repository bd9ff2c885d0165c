// grove/mutex.hpp — mutual exclusion between tasks (gevent.lock.RLock and a
// plain lock). They block the task, never the thread: a std::mutex held across
// a blocking call would stall every task of the thread.
#pragma once

#include <chrono>
#include <cstddef>

#include <grove/detail/wait.hpp>

namespace grove {

// mutex is held by one greenlet (task) at a time. lock blocks the current task
// while another holds it; waiters get it in FIFO order (unlock hands it to the
// longest waiter). Satisfies TimedLockable, so std::lock_guard and
// std::unique_lock work. Use it from the tasks of one thread.
class mutex {
 public:
  mutex() = default;
  mutex(const mutex&) = delete;
  mutex& operator=(const mutex&) = delete;

  // lock takes the mutex, waiting for it if needed. Throws grove::error if the
  // current task already holds it (it is not recursive), timeout_error from a
  // timeout scope, greenlet_exit if the task is killed, loop_exit if nothing can
  // ever unlock it.
  void lock();
  // try_lock takes the mutex only if it is free now.
  bool try_lock() noexcept;
  // try_lock_for waits at most d for the mutex.
  template <class Rep, class Period>
  bool try_lock_for(const std::chrono::duration<Rep, Period>& d) {
    return lock_until(detail::deadline_after(std::chrono::duration_cast<std::chrono::nanoseconds>(d)));
  }
  template <class Clock, class Duration>
  bool try_lock_until(const std::chrono::time_point<Clock, Duration>& t) {
    return try_lock_for(t - Clock::now());
  }
  // unlock releases the mutex; throws grove::error if the current task does not hold it.
  void unlock();

  // owned_by_current: the current task holds the mutex.
  bool owned_by_current() const noexcept;
  bool locked() const noexcept { return owner_ != nullptr; }

  // lock_uninterruptible takes the mutex even while a kill or timeout is
  // pending (those stay pending); condition_variable uses it to re-lock.
  void lock_uninterruptible();

 private:
  bool lock_until(detail::deadline d);
  detail::greenlet_core* owner_ = nullptr;
  detail::wait_list waiters_;
};

// recursive_mutex may be locked again by the task that holds it; it is released
// when unlocked as many times as it was locked.
class recursive_mutex {
 public:
  recursive_mutex() = default;
  recursive_mutex(const recursive_mutex&) = delete;
  recursive_mutex& operator=(const recursive_mutex&) = delete;

  // lock takes the mutex, or counts one more lock if the current task holds it.
  void lock();
  bool try_lock() noexcept;
  template <class Rep, class Period>
  bool try_lock_for(const std::chrono::duration<Rep, Period>& d) {
    if (inner_.owned_by_current()) {
      ++depth_;
      return true;
    }
    if (!inner_.try_lock_for(d)) return false;
    depth_ = 1;
    return true;
  }
  template <class Clock, class Duration>
  bool try_lock_until(const std::chrono::time_point<Clock, Duration>& t) {
    return try_lock_for(t - Clock::now());
  }
  // unlock undoes one lock; throws grove::error if the current task does not hold it.
  void unlock();
  bool owned_by_current() const noexcept { return inner_.owned_by_current(); }
  void lock_uninterruptible();

 private:
  mutex inner_;
  std::size_t depth_ = 0;
};

}  // namespace grove
