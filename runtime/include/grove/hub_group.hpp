// grove/hub_group.hpp — several hubs, one per OS thread, for code that links
// grove: every core, each with its own loop.
//
//   grove::hub_group hubs;                       // one hub per CPU of the affinity mask
//   std::vector<grove::remote_result<long>> parts;
//   for (std::size_t i = 0; i < hubs.size(); ++i)
//     parts.push_back(grove::spawn_on(hubs[i], [i] { return work(i); }));
//   long sum = 0;
//   for (auto& p : parts) sum += p.get();      // waits cooperatively in a task
//
// A hub stays thread-affine (DESIGN: other threads reach it only through
// post): spawn_on posts to the hub, which starts the task there, and the task
// never leaves it. A task that has run never moves to another OS thread:
// compiled code keeps thread-local addresses in registers across calls.
//
// grove's own sync objects (mutex, event, semaphore, condition_variable, queue,
// channel, async_result, pool, task joins) belong to the tasks of one hub: a
// task of another hub that waits on one, or wakes a waiter of one, is refused
// (grove::error where the call may throw; a report and abort where it may not,
// such as unlock). Between hubs use remote_result, hub::post, or pthread
// objects (with grove::hooks linked, they park the task).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <grove/event.hpp>
#include <grove/greenlet.hpp>
#include <grove/hub.hpp>
#include <grove/task.hpp>

namespace grove {

namespace detail {

// cross_state is what a remote_result shares between the hub that sets it and
// the threads that wait for it: everything under one std::mutex.
struct cross_state {
  std::mutex lock;
  std::condition_variable settled;  // waiters with no hub
  bool claimed = false;  // set or set_exception has been called (done follows)
  bool done = false;
  std::exception_ptr error;
  // Waiting tasks: each waits on an event of its own hub, set there by a post.
  std::vector<std::pair<hub*, std::shared_ptr<event>>> tasks;

  // finish marks the result done (the value is already stored) and wakes everyone.
  void finish(std::exception_ptr e);
  // wait waits until done, in a task (parked on its own hub) or blocking a
  // thread with no hub. False: the limit passed first.
  bool wait(std::optional<std::chrono::nanoseconds> limit);
};

}  // namespace detail

// remote_result<T> is a value (or exception) set once on one hub and waited
// for from any thread: a task of any hub waits cooperatively (its hub runs on),
// a thread with no hub blocks. Copies share one result.
template <class T>
class remote_result {
 public:
  remote_result() : s_(std::make_shared<shared>()) {}

  // set and set_exception may be called once, from any thread; a second call
  // throws grove::error.
  template <class U = T>
  requires(!std::is_void_v<T>) void set(U&& value) {
    {
      const std::lock_guard<std::mutex> hold(s_->lock);
      check_unset();
      s_->value.emplace(std::forward<U>(value));
    }
    s_->finish(nullptr);
  }
  template <class U = T>
  requires std::is_void_v<T>
  void set() {
    {
      const std::lock_guard<std::mutex> hold(s_->lock);
      check_unset();
    }
    s_->finish(nullptr);
  }
  void set_exception(std::exception_ptr e) {
    {
      const std::lock_guard<std::mutex> hold(s_->lock);
      check_unset();
    }
    s_->finish(std::move(e));
  }

  bool ready() const {
    const std::lock_guard<std::mutex> hold(s_->lock);
    return s_->done;
  }

  // get waits until set, then returns the value (a copy) or rethrows the
  // exception. In a task: timeout_error from a timeout scope, greenlet_exit if
  // killed. get(limit): std::nullopt (or false for T = void) if not set in time.
  T get() {
    s_->wait(std::nullopt);
    return outcome();
  }
  template <class U = T>
  requires(!std::is_void_v<U>) std::optional<U> get(std::chrono::nanoseconds limit) {
    if (!s_->wait(limit)) return std::nullopt;
    return outcome();
  }
  template <class U = T>
  requires std::is_void_v<U>
  bool get(std::chrono::nanoseconds limit) {
    if (!s_->wait(limit)) return false;
    outcome();
    return true;
  }

 private:
  struct holder {
    std::optional<T> value;
  };
  struct holder_void {};
  struct shared : detail::cross_state, std::conditional_t<std::is_void_v<T>, holder_void, holder> {};

  void check_unset() const;
  T outcome() {
    const std::lock_guard<std::mutex> hold(s_->lock);
    if (s_->error) std::rethrow_exception(s_->error);
    if constexpr (!std::is_void_v<T>) return *s_->value;
  }

  std::shared_ptr<shared> s_;
};

namespace detail {
[[noreturn]] void throw_set_twice();
}

template <class T>
void remote_result<T>::check_unset() const {
  if (s_->claimed) detail::throw_set_twice();
  s_->claimed = true;
}

// hub_group runs `size` hubs, each on an OS thread of its own, until it is
// destroyed. Those threads do nothing but run what is posted or spawned there.
class hub_group {
 public:
  // hub_group starts n hubs (0: one per CPU in the process's affinity mask).
  // Throws grove::error if n is above 1024, std::system_error if a thread
  // cannot start.
  explicit hub_group(std::size_t n = 0);
  hub_group(const hub_group&) = delete;
  hub_group& operator=(const hub_group&) = delete;
  // ~hub_group stops the hubs: each thread ends, killing the tasks still on
  // its hub (as any thread's exit does), and is joined. Results they never set
  // stay unset.
  ~hub_group();

  std::size_t size() const noexcept { return hubs_.size(); }
  // operator[] is hub i (i < size(); grove::error otherwise).
  hub& operator[](std::size_t i) const;

 private:
  struct member;
  void stop_all() noexcept;
  std::vector<std::unique_ptr<member>> hubs_;
};

// spawn_on starts f() as a task on hub h, from any thread, and returns its
// result to wait for anywhere. The task starts when h gets to the post (its
// next loop iteration), in post order, and stays on h. An exception f throws
// is rethrown by get().
template <class F>
auto spawn_on(hub& h, F f) -> remote_result<std::invoke_result_t<F&>> {
  using R = std::invoke_result_t<F&>;
  remote_result<R> result;
  h.post([result, f = std::move(f)]() mutable {
    grove::spawn([result, f = std::move(f)]() mutable {
      try {
        if constexpr (std::is_void_v<R>) {
          f();
          result.set();
        } else {
          result.set(f());
        }
      } catch (const greenlet_exit&) {
        result.set_exception(std::current_exception());  // killed (its hub is ending): get() says so
        throw;
      } catch (...) {
        result.set_exception(std::current_exception());
      }
    });
  });
  return result;
}

}  // namespace grove
