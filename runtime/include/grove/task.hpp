// grove/task.hpp — tasks on the hub: gevent's Greenlet, typed.
//
//   grove::task<int> t = grove::spawn([](int x) { grove::sleep(1s); return 2 * x; }, 21);
//   int v = t.get();   // waits cooperatively (the hub runs other tasks); 42
//
// As in gevent, spawn only schedules: tasks start in spawn order once the
// spawner blocks or yields, and run until they block, yield or finish. A task
// that dies of an exception nobody observes (no get/join/exception call, no
// link, no handle left) is reported on stderr with its name and what().
#pragma once

#include <any>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <grove/detail/small_alloc.hpp>
#include <grove/detail/wait.hpp>
#include <grove/error.hpp>
#include <grove/greenlet.hpp>

namespace grove {

template <class T>
class task;

namespace detail {

struct task_access;

// task_extras is what only some tasks need: made on first use, so that a
// plain task (a parked connection, a sleeper) carries one pointer for it.
struct task_extras {
  std::string name;  // set_name's, or "task-<id>" once asked for
  std::vector<std::function<void()>> links;
  timer start_later;  // spawn_later's delay
};

// task_base is what every task shares, whatever its result type: 104 bytes
// on x86-64, plus the function and its arguments in task_state (a task whose
// lambda captures three pointers is 128 bytes, one 32-byte size class).
struct task_base : run_body, small_object {
  task_base() = default;
  task_base(const task_base&) = delete;
  task_base& operator=(const task_base&) = delete;

  std::atomic<std::uint32_t> refs{1};  // handles, plus one for the greenlet's hold on its body
  bool started = false;                // (the flags share refs's word)
  bool finished = false;
  bool killed = false;    // finished by greenlet_exit
  bool observed = false;  // someone looked at (or waited for) the outcome
  greenlet_core* g = nullptr;  // holds a reference until the task finishes
  hub_core* hub = nullptr;
  std::exception_ptr error;
  std::uint64_t id = 0;  // this hub's spawn counter
  wait_list joiners;
  std::unique_ptr<task_extras> extras;  // name, links, spawn_later's timer: made on first use
  task_base* reg_prev = nullptr;  // the hub's list of unfinished tasks
  task_base* reg_next = nullptr;

  void dispose() noexcept override;  // the greenlet is done with its body
  void add_ref() noexcept { refs.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept;

  // launch registers the task on the current hub and schedules it (after d, if given).
  void launch(greenlet_core* greenlet, std::optional<deadline> at);
  // run_guarded runs the task's function, catching how it ends, then finishes.
  void run_guarded(void (*body)(task_base&));
  // finish records the end: wakes joiners, runs links, lets go of the greenlet.
  void finish() noexcept;
  // join_until waits for the end; false if d passed first.
  bool join_until(deadline d);
  // kill_until raises e in the task and waits until it is dead, or d passes.
  bool kill_until(std::exception_ptr e, deadline d);
  void add_link(std::function<void()> fn);
  void report_unobserved() noexcept;
  // label is the task's name for messages (no caching: safe from other threads
  // while the task runs); display_name fills `name` in on first use.
  std::string label() const {
    return extras && !extras->name.empty() ? extras->name : "task-" + std::to_string(id);
  }
  const std::string& display_name() {
    task_extras& x = more();
    if (x.name.empty()) x.name = label();
    return x.name;
  }
  task_extras& more() {
    if (!extras) extras = std::make_unique<task_extras>();
    return *extras;
  }
  bool waits_to_start() const noexcept { return extras && extras->start_later.active(); }

 protected:
  ~task_base() override;
};

template <class T>
struct task_value : task_base {
  using result_type = T;
  std::optional<T> value;
};
template <>
struct task_value<void> : task_base {
  using result_type = void;
};

// task_state holds the function of one spawned task; it is also the task
// greenlet's run body.
template <class T, class Fn>
struct task_state final : task_value<T> {
  explicit task_state(Fn&& f) : fn(std::move(f)) {}
  std::optional<Fn> fn;

  std::any invoke(std::any&&) override {
    this->run_guarded([](task_base& base) {
      auto& self = static_cast<task_state&>(base);
      if constexpr (std::is_void_v<T>) {
        std::invoke(std::move(*self.fn));
      } else {
        self.value.emplace(std::invoke(std::move(*self.fn)));
      }
      self.fn.reset();  // captured state goes while the task can still switch
    });
    return {};
  }
};

// make_task_greenlet creates the greenlet that runs a task, as a child of the
// hub, on a stack of stack_bytes (0: the default size).
greenlet_core* make_task_greenlet(task_base* t, std::size_t stack_bytes = 0);

template <class F, class... Args>
auto make_call(F&& f, Args&&... args) {
  return [f = std::forward<F>(f), ... args = std::forward<Args>(args)]() mutable -> decltype(auto) {
    return std::invoke(std::move(f), std::move(args)...);
  };
}

}  // namespace detail

// task<T> is a handle to a spawned task producing a T (or void). Copies name
// the same task. Use it on the thread that spawned the task.
template <class T>
class task {
 public:
  using value_type = T;

  task(const task& o) noexcept : s_(o.s_) { s_->add_ref(); }
  task(task&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  task& operator=(task o) noexcept {
    std::swap(s_, o.s_);
    return *this;
  }
  ~task() {
    if (s_ != nullptr) s_->release();
  }

  // get waits for the task to finish and returns its result, or rethrows the
  // exception it died of. A task killed with greenlet_exit has no result:
  // get() then throws greenlet_exit (task<void>::get() returns). A move-only
  // result is moved out by the first get. Throws timeout_error from an
  // enclosing timeout scope, greenlet_exit if the caller is killed meanwhile.
  T get() {
    s_->join_until(detail::forever);
    return result();
  }

  // get(limit) is get with a time limit: an empty optional (task<void>: false)
  // if the task has not finished by then.
  auto get(std::chrono::nanoseconds limit) {
    const bool done = s_->join_until(detail::deadline_after(limit));
    if constexpr (std::is_void_v<T>) {
      if (done) result();
      return done;
    } else {
      return done ? std::optional<T>(result()) : std::optional<T>();
    }
  }

  // join waits for the task to finish, however it ends; join(limit) returns
  // false if it has not finished within limit.
  void join() { s_->join_until(detail::forever); }
  bool join(std::chrono::nanoseconds limit) { return s_->join_until(detail::deadline_after(limit)); }

  // ready: the task has finished. successful: finished without an exception
  // (a task killed by greenlet_exit counts as successful, as in gevent).
  // killed: finished by greenlet_exit. exception: what it died of, or null.
  bool ready() const noexcept { return s_->finished; }
  bool successful() const noexcept { return s_->finished && !s_->error; }
  bool killed() const noexcept { return s_->killed; }
  std::exception_ptr exception() const noexcept {
    s_->observed = true;
    return s_->error;
  }
  // started: the task has begun running (a killed one may never have).
  bool started() const noexcept { return s_->started; }

  // kill raises greenlet_exit (or e) in the task at its blocking point, so its
  // stack unwinds, and waits until it is dead; with a limit, returns false if it
  // is still alive when the limit passes. A task that never started never runs.
  // Killing the current task throws at once. Returns true if the task is dead.
  bool kill() { return s_->kill_until(std::make_exception_ptr(greenlet_exit{}), detail::forever); }
  bool kill(std::chrono::nanoseconds limit) {
    return s_->kill_until(std::make_exception_ptr(greenlet_exit{}), detail::deadline_after(limit));
  }
  bool kill(std::exception_ptr e) { return s_->kill_until(std::move(e), detail::forever); }
  bool kill(std::exception_ptr e, std::chrono::nanoseconds limit) {
    return s_->kill_until(std::move(e), detail::deadline_after(limit));
  }

  // link runs callback(task) once the task has finished, in a new task, after
  // the links added before it. A link added to a finished task runs soon.
  template <class F>
  void link(F&& callback) {
    s_->add_link([self = *this, cb = std::forward<F>(callback)]() mutable {
      task copy = self;
      cb(copy);
    });
  }

  // name labels the task in reports and dump_tasks (default: "task-N").
  const std::string& name() const { return s_->display_name(); }
  void set_name(std::string n) { s_->more().name = std::move(n); }

  friend bool operator==(const task& a, const task& b) noexcept { return a.s_ == b.s_; }

 private:
  friend struct detail::task_access;

  explicit task(detail::task_value<T>* s) noexcept : s_(s) {}

  T result() {
    s_->observed = true;
    if (s_->error) std::rethrow_exception(s_->error);
    if constexpr (std::is_void_v<T>) {
      return;
    } else {
      if (!s_->value) throw greenlet_exit{};
      if constexpr (std::is_copy_constructible_v<T>) {
        return *s_->value;
      } else {
        return std::move(*s_->value);
      }
    }
  }

  detail::task_value<T>* s_;
};

namespace detail {
struct task_access {
  template <class T>
  static task_base* base(const task<T>& t) noexcept {
    return t.s_;
  }
  template <class S>
  static auto adopt(S* s) noexcept {
    return task<typename S::result_type>(s);
  }
};

template <class F, class... Args>
auto new_task(std::optional<deadline> at, std::size_t stack_bytes, F&& f, Args&&... args) {
  auto call = make_call(std::forward<F>(f), std::forward<Args>(args)...);
  using Fn = decltype(call);
  using R = std::invoke_result_t<Fn&&>;
  auto owned = std::make_unique<task_state<R, Fn>>(std::move(call));
  task_state<R, Fn>* s = owned.get();
  s->refs.store(2, std::memory_order_relaxed);  // the greenlet's hold on its body, and the handle
  greenlet_core* g = nullptr;
  try {
    g = make_task_greenlet(owned.release(), stack_bytes);
  } catch (...) {
    s->release();  // the greenlet's hold went with the failure; this is the handle's
    throw;
  }
  s->launch(g, at);
  return s;
}
}  // namespace detail

// spawn schedules f(args...) as a new task on this thread's hub and returns its
// handle. The task starts once the caller blocks or yields. Arguments are
// copied (or moved) into the task.
template <class F, class... Args>
auto spawn(F&& f, Args&&... args) {
  return detail::task_access::adopt(detail::new_task(std::nullopt, 0, std::forward<F>(f), std::forward<Args>(args)...));
}

// spawn_later is spawn, with the task starting no sooner than delay from now.
template <class F, class... Args>
auto spawn_later(std::chrono::nanoseconds delay, F&& f, Args&&... args) {
  return detail::task_access::adopt(
      detail::new_task(detail::deadline_after(delay), 0, std::forward<F>(f), std::forward<Args>(args)...));
}

// joinall waits until every task in tasks has finished; with a limit, returns
// false if some are still running when it passes.
template <class Range>
bool joinall(const Range& tasks, std::chrono::nanoseconds limit = std::chrono::nanoseconds::max()) {
  const detail::deadline d = detail::deadline_after(limit);
  for (const auto& t : tasks) {
    if (!detail::task_access::base(t)->join_until(d)) return false;
  }
  return true;
}

namespace detail {
std::optional<std::size_t> wait_any_of(const std::vector<task_base*>& tasks, deadline d);
}

// wait_any waits until at least one of tasks has finished and returns the index
// of the first finished one (in tasks' order); an empty optional if none has
// finished within limit. As gevent.wait(count=1).
template <class Range>
std::optional<std::size_t> wait_any(const Range& tasks,
                                    std::chrono::nanoseconds limit = std::chrono::nanoseconds::max()) {
  std::vector<detail::task_base*> bases;
  for (const auto& t : tasks) bases.push_back(detail::task_access::base(t));
  return detail::wait_any_of(bases, detail::deadline_after(limit));
}

// dump_tasks writes one line per unfinished task of this thread's hub: its name,
// its state (not started, ready, running, blocked) and what it waits on. With
// backtraces, each suspended task's line is followed by its backtrace (function,
// file:line per frame), unwound from the context it saved when it switched out.
// The one-argument form shows them when GROVE_BACKTRACES=1 (default 0), as does
// the dump on GROVE_DUMP_ON_SIGNAL.
void dump_tasks(std::ostream& out);
void dump_tasks(std::ostream& out, bool backtraces);

}  // namespace grove
