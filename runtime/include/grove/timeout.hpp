// grove/timeout.hpp — time limits on blocking: timeout scopes and with_timeout.
//
//   {
//     grove::timeout limit(250ms);
//     auto item = q.get();    // throws grove::timeout_error here if 250 ms pass first
//   }                         // a scope that has ended never fires
//
// A timeout scope limits every blocking call its task makes while the scope
// lives. When it fires, timeout_error is thrown at the task's blocking point (at
// once if the task is blocked, else at its next blocking call). Scopes nest: the
// one that fires is the one whose error is thrown, and error.source() and
// scope.expired() tell which. A CPU-bound task that never blocks is not
// interrupted (there is no preemption).
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include <grove/detail/wait.hpp>

namespace grove {

class timeout;

// timeout_error is thrown where a task blocks when a time limit passes: a
// timeout scope (source() is that scope) or a per-object timeout such as a
// socket's (source() is null). It is a std::runtime_error, so ordinary handlers
// see it.
class timeout_error : public std::runtime_error {
 public:
  timeout_error(const timeout* source, const std::string& what) : std::runtime_error(what), source_(source) {}
  // source is the timeout scope that fired, or nullptr.
  const timeout* source() const noexcept { return source_; }

 private:
  const timeout* source_;
};

namespace detail {
// timeout_scope is a timeout's bookkeeping on its greenlet.
struct timeout_scope {
  const timeout* owner = nullptr;
  greenlet_core* g = nullptr;
  timeout_scope* outer = nullptr;
  unsigned depth = 0;
  std::chrono::nanoseconds limit{};
  bool fired = false;
  timer clock;
};
[[noreturn]] void throw_timeout(const timeout_scope& s);
}  // namespace detail

// timeout is a scope that limits how long the current task may block in it.
// Must be destroyed on the greenlet that created it (it is a stack object).
class timeout {
 public:
  // timeout starts a limit of `limit` from now on the current greenlet.
  explicit timeout(std::chrono::nanoseconds limit);
  timeout(const timeout&) = delete;
  timeout& operator=(const timeout&) = delete;
  // ~timeout ends the scope: it can no longer fire, even if it expired while
  // the task was not blocked.
  ~timeout();

  // expired: this scope's time limit has passed (and it fired).
  bool expired() const noexcept { return scope_.fired; }
  // cancel stops the scope early; it will not fire.
  void cancel() noexcept;
  std::chrono::nanoseconds limit() const noexcept { return scope_.limit; }

 private:
  detail::timeout_scope scope_;
};

// with_timeout calls f(args...) under a timeout scope of `limit`. Returns its
// result, or an empty optional if that scope fired (a void f gives true, or
// false on timeout). Other timeouts and exceptions pass through.
template <class F, class... Args>
auto with_timeout(std::chrono::nanoseconds limit, F&& f, Args&&... args) {
  using R = std::invoke_result_t<F, Args...>;
  timeout scope(limit);
  try {
    if constexpr (std::is_void_v<R>) {
      std::invoke(std::forward<F>(f), std::forward<Args>(args)...);
      return true;
    } else {
      return std::optional<R>(std::invoke(std::forward<F>(f), std::forward<Args>(args)...));
    }
  } catch (const timeout_error& e) {
    if (e.source() != &scope) throw;
    if constexpr (std::is_void_v<R>) {
      return false;
    } else {
      return std::optional<R>();
    }
  }
}

}  // namespace grove
