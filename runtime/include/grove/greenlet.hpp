// grove/greenlet.hpp — explicit, stackful switching with greenlet's semantics.
//
// A greenlet is a function running on its own stack that you switch into and
// out of by hand:
//
//   grove::greenlet g([](std::any v) {
//     auto again = grove::greenlet::current().parent()->switch_to(std::any_cast<int>(v) + 1);
//     return std::any_cast<int>(again) * 2;
//   });
//   g.switch_to(1);   // starts g with 1; returns 2 (what g switched back)
//   g.switch_to(10);  // resumes g, which returns 20: g is dead, we get 20
//
// Every OS thread has an implicit main greenlet (the thread's own stack). A
// greenlet's parent is the greenlet that was current when it was created; when
// run returns, the greenlet is dead and the value goes to its parent. Greenlets
// belong to the thread that created them and never migrate.
//
// The rules, as in Python's greenlet:
//  - switch_to(v) into an unstarted greenlet calls run(v); into a suspended
//    one, v becomes the result of its pending switch_to.
//  - run returning v: the greenlet dies and v is returned by the parent's
//    pending switch_to (an unstarted parent is started with v). An exception
//    escaping run is rethrown in the parent instead; greenlet_exit escaping run
//    is swallowed and the parent receives the greenlet_exit object as a value.
//  - switching to a dead greenlet switches to its parent (or the nearest live
//    ancestor) instead, with the value.
//  - the last handle of a suspended greenlet going away throws greenlet_exit
//    into it, so its stack unwinds and destructors run. A greenlet that
//    swallows that and switches away again is reported on stderr and parked
//    until its thread exits, when it is killed once more.
//  - when a thread exits, every greenlet still suspended on it is killed the
//    same way.
//  - each greenlet has its own C++ exception state: std::current_exception(),
//    `throw;` and std::uncaught_exceptions() are per greenlet.
#pragma once

#include <any>
#include <concepts>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <grove/detail/switch.hpp>
#include <grove/error.hpp>

namespace grove {

namespace detail {

struct access;

// run_body type-erases a greenlet's run function, which may hold move-only state.
class run_body {
 public:
  virtual std::any invoke(std::any&& arg) = 0;
  // dispose drops the greenlet's hold on the body: deletes it, unless the body
  // is shared (a task's state is also its greenlet's body).
  virtual void dispose() noexcept { delete this; }

 protected:
  virtual ~run_body() = default;
};

struct body_disposer {
  void operator()(run_body* b) const noexcept { b->dispose(); }
};
using body_ptr = std::unique_ptr<run_body, body_disposer>;

template <class F>
class run_body_of final : public run_body {
 public:
  template <class G>
  explicit run_body_of(G&& f) : f_(std::forward<G>(f)) {}

  std::any invoke(std::any&& arg) override {
    if constexpr (std::is_invocable_v<F&, std::any>) {
      if constexpr (std::is_void_v<std::invoke_result_t<F&, std::any>>) {
        std::invoke(f_, std::move(arg));
        return {};
      } else {
        return std::any(std::invoke(f_, std::move(arg)));
      }
    } else {
      static_assert(std::is_invocable_v<F&>,
                    "a greenlet's run function takes a std::any (the first switch's value) or nothing");
      if constexpr (std::is_void_v<std::invoke_result_t<F&>>) {
        std::invoke(f_);
        return {};
      } else {
        return std::any(std::invoke(f_));
      }
    }
  }

 private:
  F f_;
};

// make_greenlet creates an unstarted greenlet holding one reference.
// parent == nullptr means the current greenlet.
greenlet_core* make_greenlet(body_ptr run, greenlet_core* parent, std::size_t stack_bytes);

// discard_unstarted kills an unstarted greenlet without running it or switching:
// it is dead and its run function is gone.
void discard_unstarted(greenlet_core* g) noexcept;
inline void add_ref(greenlet_core* p) noexcept { p->refs.fetch_add(1, std::memory_order_relaxed); }
void release(greenlet_core* p) noexcept;

}  // namespace detail

// greenlet is a reference-counted handle to a greenlet; copies name the same
// greenlet, and == compares identity. A greenlet lives while any handle (or a
// child, which holds its parent) refers to it. Handles may be copied and
// destroyed on any thread; switching happens only on the greenlet's own thread.
class greenlet {
 public:
  // trace_function is called on every switch, with the greenlet being left and
  // the one being entered, before the switch happens, on the greenlet being left.
  // It must not switch.
  using trace_function = std::function<void(const greenlet& from, const greenlet& to)>;

  // greenlet(run) creates an unstarted greenlet whose parent is the current
  // greenlet and whose stack has the default size (see grove/stack.hpp). run is
  // callable as std::any(std::any), or with no argument, or returning void; it
  // may capture move-only state. Nothing runs and no stack is allocated until
  // the first switch_to.
  template <class F>
  requires(!std::same_as<std::remove_cvref_t<F>, greenlet>) explicit greenlet(F&& run, std::size_t stack_bytes = 0)
      : p_(detail::make_greenlet(make_body(std::forward<F>(run)), nullptr, stack_bytes)) {}

  // greenlet(run, parent, stack_bytes) names the parent explicitly, and a stack
  // size in bytes (0: the default). Throws grove::error if parent belongs to
  // another thread, or stack_bytes is out of range.
  template <class F>
  requires(!std::same_as<std::remove_cvref_t<F>, greenlet>)
      greenlet(F&& run, const greenlet& parent, std::size_t stack_bytes = 0)
      : p_(detail::make_greenlet(make_body(std::forward<F>(run)), parent.p_, stack_bytes)) {}

  greenlet(const greenlet& other) noexcept : p_(other.p_) { detail::add_ref(p_); }
  greenlet(greenlet&& other) noexcept : p_(std::exchange(other.p_, nullptr)) {}
  greenlet& operator=(const greenlet& other) noexcept {
    greenlet(other).swap(*this);
    return *this;
  }
  greenlet& operator=(greenlet&& other) noexcept {
    greenlet(std::move(other)).swap(*this);
    return *this;
  }
  // ~greenlet drops this handle. The last handle of a suspended greenlet kills
  // it (throws greenlet_exit into it) before returning, when dropped on the
  // greenlet's own thread; on another thread the kill is queued for the owner,
  // which runs it at its next switch or when it exits.
  ~greenlet() {
    if (p_ != nullptr) detail::release(p_);
  }

  void swap(greenlet& other) noexcept { std::swap(p_, other.p_); }

  // switch_to suspends the current greenlet and runs this one: an unstarted
  // greenlet starts with run(value); a suspended one receives value as the
  // result of its own pending switch_to; a dead one passes value to its nearest
  // live ancestor; switching to the current greenlet returns value at once.
  // Returns whatever value is later switched back to the caller; rethrows an
  // exception thrown into the caller (throw_to) or escaping a child's run.
  // Throws grove::error if this greenlet belongs to another thread, or if its
  // stack cannot be allocated.
  [[gnu::always_inline]] std::any switch_to(std::any value = {}) {
    detail::thread_core* ts = detail::tls_core;
    if (!detail::fast_switch_possible(ts, p_)) [[unlikely]]
      return switch_slow(std::move(value));
    ts->transfer = std::move(value);
    detail::jump(*ts, p_);
    return detail::take_result(*ts);
  }

  // throw_to raises e inside this greenlet at its switch point and runs it;
  // returns (or throws) like switch_to. An unstarted greenlet dies without
  // running, and e goes to its parent as if run had thrown it (greenlet_exit
  // arrives there as a value). A dead greenlet passes e to its nearest live
  // ancestor. Throws grove::error for a greenlet of another thread.
  std::any throw_to(std::exception_ptr e);

  // throw_to() throws greenlet_exit: the usual way to kill a greenlet.
  std::any throw_to() { return throw_to(std::make_exception_ptr(greenlet_exit{})); }

  // current returns the running greenlet of this thread; on a thread that never
  // switched, its implicit main greenlet.
  static greenlet current();

  // parent returns this greenlet's parent, or nothing for a thread's main greenlet.
  std::optional<greenlet> parent() const;

  // set_parent makes p the parent. Throws grove::error if p belongs to another
  // thread than this greenlet, or if p is this greenlet or one of its
  // descendants (a cycle).
  void set_parent(const greenlet& p);

  // started: switched into at least once (a main greenlet always is).
  bool started() const noexcept;
  // dead: run has finished (returned, or died of an exception or a kill).
  bool dead() const noexcept;
  // operator bool: started and not dead, as Python's bool(greenlet).
  explicit operator bool() const noexcept { return started() && !dead(); }

  // is_main: this is a thread's implicit main greenlet.
  bool is_main() const noexcept;

  // name is a label for diagnostics (the stack-overflow message, traces); a
  // new greenlet has none. set_name must not race with the greenlet's own thread.
  const std::string& name() const noexcept;
  void set_name(std::string name);

  // stack_size is the usable size of this greenlet's stack in bytes (0 for a
  // main greenlet, which runs on its thread's own stack).
  std::size_t stack_size() const noexcept;

  // settrace installs fn as this thread's switch hook and returns the previous
  // one (empty: none). Pass an empty function to remove it.
  static trace_function settrace(trace_function fn);

  // live_count is the number of greenlets (not counting threads' main
  // greenlets) that exist in the process right now, dead or alive.
  static std::size_t live_count() noexcept;

  friend bool operator==(const greenlet& a, const greenlet& b) noexcept { return a.p_ == b.p_; }

  // id is a number unique among the greenlets that exist now (for hashing, logs).
  std::size_t id() const noexcept { return reinterpret_cast<std::size_t>(p_); }

 private:
  friend struct detail::access;
  // Takes over a reference the caller already holds.
  explicit greenlet(detail::greenlet_core* p) noexcept : p_(p) {}

  // switch_slow is switch_to for every case but a plain switch to a suspended
  // greenlet of this thread: first use on a thread, tracing, an unstarted, dead
  // or current target, or one of another thread.
  std::any switch_slow(std::any value);

  template <class F>
  static detail::body_ptr make_body(F&& run) {
    return detail::body_ptr(std::make_unique<detail::run_body_of<std::decay_t<F>>>(std::forward<F>(run)).release());
  }

  detail::greenlet_core* p_;
};

}  // namespace grove

template <>
struct std::hash<grove::greenlet> {
  std::size_t operator()(const grove::greenlet& g) const noexcept { return g.id(); }
};
