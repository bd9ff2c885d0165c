// grove/semaphore.hpp — counting semaphores for tasks (gevent.lock.Semaphore,
// BoundedSemaphore).
#pragma once

#include <chrono>
#include <cstddef>

#include <grove/detail/wait.hpp>

namespace grove {

// semaphore holds a count of permits. acquire takes one, blocking the current
// task (not the thread) while there are none; release gives one back. Waiters
// are served in FIFO order: a released permit goes straight to the task that
// has waited longest, so a later acquirer cannot overtake it. Satisfies
// Lockable (lock/unlock/try_lock), so std::lock_guard works. Use it from the
// tasks of one thread.
class semaphore {
 public:
  // semaphore starts with `permits` permits.
  explicit semaphore(std::size_t permits = 1) : count_(permits) {}
  semaphore(const semaphore&) = delete;
  semaphore& operator=(const semaphore&) = delete;
  virtual ~semaphore() = default;

  // acquire takes a permit, waiting for one if needed. Throws timeout_error from
  // a timeout scope, greenlet_exit if the task is killed, loop_exit if nothing
  // can ever release one.
  void acquire();
  // acquire(limit): false if no permit came within limit.
  bool acquire(std::chrono::nanoseconds limit);
  // try_acquire takes a permit only if one is free now (and nobody waits).
  bool try_acquire() noexcept;
  // release returns a permit: to the longest waiter, else to the count.
  virtual void release();

  // count is the number of free permits.
  std::size_t count() const noexcept { return count_; }
  // waiting is the number of tasks blocked in acquire.
  std::size_t waiting() const noexcept { return waiters_.size(); }

  void lock() { acquire(); }
  bool try_lock() noexcept { return try_acquire(); }
  void unlock() { release(); }

 protected:
  void release_permit();
  bool acquire_until(detail::deadline d);
  std::size_t count_;
  detail::wait_list waiters_;
};

// bounded_semaphore is a semaphore that refuses to be released more often than
// it was acquired: such a release throws grove::error (a bug, as in gevent).
class bounded_semaphore : public semaphore {
 public:
  explicit bounded_semaphore(std::size_t permits = 1) : semaphore(permits), limit_(permits) {}
  // release throws grove::error if every permit is already free.
  void release() override;

 private:
  std::size_t limit_;
};

}  // namespace grove
