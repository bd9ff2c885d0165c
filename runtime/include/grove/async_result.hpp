// grove/async_result.hpp — a value (or exception) that one task sets and
// others wait for (gevent.event.AsyncResult): a future for tasks.
#pragma once

#include <chrono>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include <grove/detail/wait.hpp>
#include <grove/event.hpp>

namespace grove {

// async_result<T> holds nothing until set() or set_exception(); waiting tasks
// are then woken. Setting again replaces the outcome. Use it from the tasks of
// one thread; from another thread, set it through hub::post. T = void carries
// no value.
template <class T>
class async_result {
 public:
  async_result() = default;
  async_result(const async_result&) = delete;
  async_result& operator=(const async_result&) = delete;

  // set stores value and wakes every waiter.
  template <class U = T>
  requires(!std::is_void_v<T>) void set(U&& value) {
    value_.emplace(std::forward<U>(value));
    error_ = nullptr;
    done_.set();
  }
  template <class U = T>
  requires std::is_void_v<T>
  void set() {
    error_ = nullptr;
    done_.set();
  }
  // set_exception stores e (rethrown by get) and wakes every waiter.
  void set_exception(std::exception_ptr e) {
    error_ = std::move(e);
    done_.set();
  }

  // ready: set or set_exception has been called. successful: with a value.
  bool ready() const noexcept { return done_.is_set(); }
  bool successful() const noexcept { return ready() && !error_; }
  std::exception_ptr exception() const noexcept { return error_; }

  // get waits until ready, then returns the value (a copy) or rethrows the
  // exception. Throws timeout_error from a timeout scope, greenlet_exit if the
  // task is killed, loop_exit if nothing can ever set it.
  T get() {
    done_.wait();
    return outcome();
  }
  // get(limit): an empty optional (void: false) if not ready within limit.
  auto get(std::chrono::nanoseconds limit) {
    const bool ready_in_time = done_.wait(limit);
    if constexpr (std::is_void_v<T>) {
      if (ready_in_time) outcome();
      return ready_in_time;
    } else {
      return ready_in_time ? std::optional<T>(outcome()) : std::optional<T>();
    }
  }
  // wait waits until ready without looking at the outcome.
  void wait() { done_.wait(); }
  bool wait(std::chrono::nanoseconds limit) { return done_.wait(limit); }

 private:
  T outcome() {
    if (error_) std::rethrow_exception(error_);
    if constexpr (!std::is_void_v<T>) return *value_;
  }
  struct nothing {};
  std::conditional_t<std::is_void_v<T>, nothing, std::optional<T>> value_{};
  std::exception_ptr error_;
  event done_;
};

}  // namespace grove
