// grove/detail/task_set.hpp — helpers shared by groups, pools and imap
// streams (grove/pool.hpp, grove/imap_stream.hpp). Not a public interface.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <iterator>
#include <list>
#include <memory>
#include <optional>
#include <ranges>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <grove/detail/wait.hpp>
#include <grove/error.hpp>
#include <grove/task.hpp>

namespace grove::detail {

// task_hold is a counted reference to a task, whatever its result type.
class task_hold {
 public:
  explicit task_hold(task_base* t) noexcept : t_(t) { t_->add_ref(); }
  task_hold(const task_hold&) = delete;
  task_hold& operator=(const task_hold&) = delete;
  task_hold(task_hold&& o) noexcept : t_(std::exchange(o.t_, nullptr)) {}
  task_hold& operator=(task_hold&&) = delete;
  ~task_hold() {
    if (t_ != nullptr) t_->release();
  }
  task_base* get() const noexcept { return t_; }

 private:
  task_base* t_;
};

// wake_all ends the wait of every waiter in l.
inline void wake_all(wait_list& l) {
  while (waiter* w = l.pop_front()) wake(*w);
}

// interrupt_task raises e in t at its blocking point without waiting for it to
// die; a task that has not started dies on the spot and never runs. Skips the
// current task. Never blocks. The caller holds a reference to t.
inline void interrupt_task(task_base* t, const std::exception_ptr& e) {
  if (t->finished) return;
  if (!t->started) {
    t->kill_until(e, deadline{});  // an unstarted task is ended without waiting
    return;
  }
  if (t->g == current_greenlet()) return;
  interrupt(t->g, e);
}

// end_tasks kills every task in ts and waits until all have finished. It is
// for cleanup paths (destructors, unwinding) and never throws: if the wait is
// itself interrupted (the caller is killed or its timeout fires meanwhile), it
// stops waiting and raises that interrupt again at the caller's next blocking
// call; the tasks, already interrupted, end on their own. Returns whether all
// have finished.
inline bool end_tasks(const std::vector<task_hold>& ts) noexcept {
  const auto e = std::make_exception_ptr(greenlet_exit{});
  for (const auto& t : ts) interrupt_task(t.get(), e);
  hub_core& h = current_hub();
  greenlet_core* self = h.ts->current;
  if (self == h.greenlet) return false;  // a callback run by the hub cannot wait
  try {
    for (const auto& t : ts) {
      if (t.get()->g != self) t.get()->join_until(forever);
    }
    return true;
  } catch (...) {
    interrupt(self, std::current_exception());
    return false;
  }
}

// element_t is what a task of map/imap receives: a copy of one element of Range.
template <class Range>
using element_t = std::remove_cvref_t<std::ranges::range_reference_t<Range>>;

// held_range is what an imap stream's feeding task iterates: the caller's
// lvalue range by reference, or an rvalue one moved in. (Not std::views::all:
// clang 14 cannot iterate libstdc++ 12's owning_view and ref_view.)
template <class Range>
struct held_range {  // an rvalue range, owned
  Range r;
  auto begin() { return std::begin(r); }
  auto end() { return std::end(r); }
};
template <class Range>
struct held_range<Range&> {  // an lvalue range, which must outlive the stream
  Range* r;
  auto begin() { return std::begin(*r); }
  auto end() { return std::end(*r); }
};
template <class Range>
held_range<std::conditional_t<std::is_lvalue_reference_v<Range>, Range, std::remove_cvref_t<Range>>> hold_range(
    Range&& r) {
  if constexpr (std::is_lvalue_reference_v<Range>) {
    return {&r};
  } else {
    return {std::move(r)};
  }
}

// map_result_t is what f returns for one element.
template <class F, class Range>
using map_result_t = std::invoke_result_t<std::decay_t<F>&, element_t<Range>>;

template <class R>
constexpr void check_map_result() {
  static_assert(!std::is_void_v<R>, "grove::group::map/imap: the function must return a value");
  static_assert(!std::is_reference_v<R>, "grove::group::map/imap: the function must return a value, not a reference");
}

// item_call wraps the shared function into what one item's task runs.
template <class R, class Fn, class E>
auto item_call(const std::shared_ptr<Fn>& fn) {
  return [fn](E v) -> R { return std::invoke(*fn, std::move(v)); };
}

// killed_item is what map and the streams throw for an item whose task was killed.
inline std::exception_ptr killed_item(std::size_t index) {
  return std::make_exception_ptr(
      error("grove: the task computing item " + std::to_string(index) + " of a map/imap was killed"));
}

}  // namespace grove::detail
