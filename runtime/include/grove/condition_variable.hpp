// grove/condition_variable.hpp — waiting for a condition under a grove mutex.
#pragma once

#include <chrono>
#include <condition_variable>
#include <utility>

#include <grove/detail/wait.hpp>
#include <grove/mutex.hpp>

namespace grove {

// condition_variable lets tasks wait, with a grove::mutex (or recursive_mutex)
// held through a std::unique_lock, until another task notifies. Waiters are
// woken in FIFO order. As std::condition_variable: wait releases the lock while
// blocked and holds it again when it returns, also when it throws (a timeout
// scope, a kill), and may wake spuriously, so wait on a predicate. Use it from
// the tasks of one thread.
class condition_variable {
 public:
  condition_variable() = default;
  condition_variable(const condition_variable&) = delete;
  condition_variable& operator=(const condition_variable&) = delete;

  // notify_one wakes the longest-waiting task, if any.
  void notify_one();
  // notify_all wakes every waiting task.
  void notify_all();

  // wait blocks until notified. lock must be held by the current task.
  template <class Lock>
  void wait(Lock& lock) {
    wait_until_deadline(lock, detail::forever);
  }
  template <class Lock, class Predicate>
  void wait(Lock& lock, Predicate pred) {
    while (!pred()) wait(lock);
  }

  // wait_for blocks until notified or d passes.
  template <class Lock, class Rep, class Period>
  std::cv_status wait_for(Lock& lock, const std::chrono::duration<Rep, Period>& d) {
    return wait_until_deadline(lock, detail::deadline_after(std::chrono::duration_cast<std::chrono::nanoseconds>(d)))
               ? std::cv_status::no_timeout
               : std::cv_status::timeout;
  }
  // wait_for with a predicate: false if d passed with the predicate still false.
  template <class Lock, class Rep, class Period, class Predicate>
  bool wait_for(Lock& lock, const std::chrono::duration<Rep, Period>& d, Predicate pred) {
    const detail::deadline end = detail::deadline_after(std::chrono::duration_cast<std::chrono::nanoseconds>(d));
    while (!pred()) {
      if (!wait_until_deadline(lock, end)) return pred();
    }
    return true;
  }

  // waiting is the number of tasks blocked in wait.
  std::size_t waiting() const noexcept { return waiters_.size(); }

 private:
  template <class Lock>
  bool wait_until_deadline(Lock& lock, detail::deadline d) {
    auto* m = lock.mutex();
    if (m == nullptr || !lock.owns_lock() || !m->owned_by_current()) {
      throw error("grove::condition_variable::wait: the lock must be held by the waiting task");
    }
    detail::listed_waiter w(waiters_, "condition_variable", this);
    lock.unlock();
    struct relock {
      Lock& lock;
      ~relock() {
        lock.mutex()->lock_uninterruptible();
        Lock adopted(*lock.mutex(), std::adopt_lock);
        lock.swap(adopted);
        adopted.release();
      }
    } again{lock};
    return detail::park(w, d);
  }
  detail::wait_list waiters_;
};

}  // namespace grove
