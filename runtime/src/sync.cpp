// sync.cpp — event, semaphores, mutexes and condition_variable on the hub.
//
// Hand-offs: a released permit or lock goes straight to the waiter it is meant
// for (wake with handoff), so a kill or timeout that reaches that waiter before
// it runs again cannot lose it; the interruption fires at its next blocking
// call instead.
#include <string>

#include <grove/condition_variable.hpp>
#include <grove/event.hpp>
#include <grove/mutex.hpp>
#include <grove/semaphore.hpp>

namespace grove {

using detail::deadline;
using detail::listed_waiter;

// ---------------------------------------------------------------------------
// event

void event::set() {
  flag_ = true;
  while (detail::waiter* w = waiters_.pop_front()) detail::wake(*w);
}

bool event::wait_until(deadline d) {
  if (flag_) return true;
  listed_waiter w(waiters_, "event", this);
  return detail::park(w, d);
}

void event::wait() { wait_until(detail::forever); }

bool event::wait(std::chrono::nanoseconds limit) { return wait_until(detail::deadline_after(limit)); }

// ---------------------------------------------------------------------------
// semaphore

bool semaphore::acquire_until(deadline d) {
  if (count_ > 0 && !waiters_.has_waiting()) {
    --count_;
    return true;
  }
  listed_waiter w(waiters_, "semaphore", this);
  return detail::park(w, d);  // woken only by release_permit, with the permit handed over
}

void semaphore::acquire() { acquire_until(detail::forever); }

bool semaphore::acquire(std::chrono::nanoseconds limit) { return acquire_until(detail::deadline_after(limit)); }

bool semaphore::try_acquire() noexcept {
  if (count_ == 0 || waiters_.has_waiting()) return false;
  --count_;
  return true;
}

void semaphore::release_permit() {
  if (detail::waiter* w = waiters_.pop_waiting()) {
    detail::wake(*w, true);
  } else {
    ++count_;
  }
}

void semaphore::release() { release_permit(); }

void bounded_semaphore::release() {
  if (count_ >= limit_) {
    throw error("grove::bounded_semaphore::release: released more often than acquired (all " + std::to_string(limit_) +
                " permits are already free)");
  }
  release_permit();
}

// ---------------------------------------------------------------------------
// mutex

bool mutex::owned_by_current() const noexcept { return owner_ != nullptr && owner_ == detail::current_greenlet(); }

bool mutex::lock_until(deadline d) {
  detail::greenlet_core* self = detail::current_greenlet();
  if (owner_ == self) {
    throw error("grove::mutex::lock: the current task already holds this mutex (use grove::recursive_mutex)");
  }
  if (owner_ == nullptr && !waiters_.has_waiting()) {
    owner_ = self;
    return true;
  }
  listed_waiter w(waiters_, "mutex", this);
  return detail::park(w, d);  // unlock made us the owner before waking us
}

void mutex::lock() { lock_until(detail::forever); }

bool mutex::try_lock() noexcept {
  if (owner_ != nullptr || waiters_.has_waiting()) return false;
  owner_ = detail::current_greenlet();
  return true;
}

void mutex::unlock() {
  if (!owned_by_current()) {
    throw error("grove::mutex::unlock: the current task does not hold this mutex");
  }
  if (detail::waiter* w = waiters_.pop_waiting()) {
    owner_ = w->g;
    detail::wake(*w, true);
  } else {
    owner_ = nullptr;
  }
}

void mutex::lock_uninterruptible() {
  detail::greenlet_core* self = detail::current_greenlet();
  // Keep pending interruptions aside while re-locking; they fire at the next
  // blocking call, after the caller's lock invariant is restored.
  std::exception_ptr pending = std::exchange(self->interrupt, nullptr);
  detail::timeout_scope* pending_timeout = std::exchange(self->pending_timeout, nullptr);
  struct restore {
    detail::greenlet_core* g;
    std::exception_ptr& e;
    detail::timeout_scope*& t;
    ~restore() {
      if (!g->interrupt) g->interrupt = std::move(e);
      if (g->pending_timeout == nullptr) g->pending_timeout = t;
    }
  } put_back{self, pending, pending_timeout};
  for (;;) {
    try {
      lock_until(detail::forever);
      return;
    } catch (const error&) {
      throw;
    } catch (const loop_exit&) {
      throw;  // nothing will ever unlock it: waiting on would hang
    } catch (...) {
      // A timeout scope fired while we waited: keep it pending, go on waiting.
      if (self->pending_timeout != nullptr && pending_timeout == nullptr) {
        pending_timeout = std::exchange(self->pending_timeout, nullptr);
      }
      if (!pending) pending = std::current_exception();
    }
  }
}

void recursive_mutex::lock() {
  if (inner_.owned_by_current()) {
    ++depth_;
    return;
  }
  inner_.lock();
  depth_ = 1;
}

bool recursive_mutex::try_lock() noexcept {
  if (inner_.owned_by_current()) {
    ++depth_;
    return true;
  }
  if (!inner_.try_lock()) return false;
  depth_ = 1;
  return true;
}

void recursive_mutex::unlock() {
  if (!inner_.owned_by_current()) {
    throw error("grove::recursive_mutex::unlock: the current task does not hold this mutex");
  }
  if (--depth_ == 0) inner_.unlock();
}

void recursive_mutex::lock_uninterruptible() {
  inner_.lock_uninterruptible();
  depth_ = 1;
}

// ---------------------------------------------------------------------------
// condition_variable

void condition_variable::notify_one() {
  if (detail::waiter* w = waiters_.pop_waiting()) detail::wake(*w);
}

void condition_variable::notify_all() {
  while (detail::waiter* w = waiters_.pop_front()) detail::wake(*w);
}

}  // namespace grove
