// grove/pool.hpp — groups and pools of tasks: gevent.pool, typed.
//
//   grove::pool workers(10);                           // at most 10 tasks at once
//   for (auto& url : urls) workers.spawn(fetch, url);  // blocks while 10 run
//   workers.join();
//
//   std::vector<std::size_t> sizes = workers.map(fetch_size, urls);  // input order
//   for (std::size_t n : workers.imap_unordered(fetch_size, urls)) { ... }  // as they finish
//
// A group tracks tasks until they finish: finished tasks leave it by
// themselves. A pool is a group that runs at most `size` tasks at a time; its
// spawn blocks the caller (cooperatively) while it is full, and blocked
// spawners get the freed slots first come, first served.
//
// Everything here is single-thread: use a group, its tasks and its streams on
// the thread whose hub runs them. Blocking calls (join, kill, a pool's spawn and
// add, map, a stream's next) honour timeout scopes and kills like any other:
// they throw timeout_error or greenlet_exit at their blocking point.
//
// How a group sees a task end: it keeps a waiter in the task's list of joiners
// (detail/wait.hpp) whose notify callback runs inside the task's finish(), so
// the task leaves the group at the very moment it finishes, whether it
// returned, threw, was killed or was killed before it ever started.
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
#include <grove/imap_stream.hpp>
#include <grove/task.hpp>

namespace grove {

// group is a set of tasks, as gevent.pool.Group: tasks join it by spawn or add
// and leave it by themselves when they finish. join waits for all of them,
// kill ends all of them, map/imap/imap_unordered run a function over a range
// in tasks of the group. Not copyable or movable (its tasks point back to it).
class group {
 public:
  // group creates an empty group, with no limit on how many tasks it runs.
  group() : group(unlimited) {}
  group(const group&) = delete;
  group& operator=(const group&) = delete;
  // ~group stops tracking its tasks, which run on. Precondition: no one is
  // blocked in this group's join, kill, spawn, add or wait_available, and no
  // stream of it is alive. To end the tasks too, kill() first.
  ~group() = default;

  // spawn starts f(args...) as a new task (as grove::spawn) in this group and
  // returns its handle. A pool blocks the caller while it is full (see pool);
  // a plain group never blocks. If a kill of the group is in progress, the new
  // task is killed at once (it never runs).
  template <class F, class... Args>
  auto spawn(F&& f, Args&&... args) {
    reserve(detail::forever);  // blocks while a pool is full; throws if interrupted
    reserved_slot held(*this);
    std::list<member> node(1);  // allocated before the task exists, so that adopting it cannot fail
    auto t = grove::spawn(std::forward<F>(f), std::forward<Args>(args)...);
    held.keep();
    adopt(detail::task_access::base(t), node);
    return t;
  }

  // add puts an existing task in this group; a task already in it, or already
  // finished, is left alone. A pool blocks the caller while it is full. The
  // group watching the task does not count as observing its outcome: a failure
  // nobody looks at is still reported (see task.hpp).
  template <class T>
  void add(const task<T>& t) {
    detail::task_base* b = detail::task_access::base(t);
    if (b->finished || find(b) != members_.end()) return;
    reserve(detail::forever);
    reserved_slot held(*this);
    if (b->finished || find(b) != members_.end()) return;  // while we waited for a slot
    std::list<member> node(1);
    held.keep();
    adopt(b, node);
  }

  // discard stops tracking t (it runs on, outside the group) and frees its slot.
  template <class T>
  void discard(const task<T>& t) {
    auto it = find(detail::task_access::base(t));
    if (it == members_.end()) return;
    members_.erase(it);
    on_slot_freed();
  }

  // contains: t is in this group (it has not finished).
  template <class T>
  bool contains(const task<T>& t) const noexcept {
    return find(detail::task_access::base(t)) != members_.end();
  }

  // size is the number of tasks in the group: spawned or added, not finished.
  std::size_t size() const noexcept { return members_.size(); }
  // empty: no task is in the group.
  bool empty() const noexcept { return members_.empty(); }

  // join waits until every task in the group has finished, including tasks
  // added while it waits. Throws grove::error when called from a task of the
  // group (it would wait for itself), timeout_error/greenlet_exit if the caller
  // is interrupted.
  void join() { join_until(detail::forever); }
  // join(limit) is join with a time limit: false if tasks remain when it passes.
  bool join(std::chrono::nanoseconds limit) { return join_until(detail::deadline_after(limit)); }

  // kill raises greenlet_exit in every task of the group at its blocking point
  // (a task that has not started dies without running), so their stacks
  // unwind, and waits until all have finished. Tasks that join the group while
  // the kill waits are killed too. Called from a task of the group, it kills
  // and waits for the others. Returns true once the group is empty.
  bool kill() { return kill_until(detail::forever); }
  // kill(limit) is kill, waiting at most limit: false if some task is still
  // alive then (one that catches greenlet_exit and carries on).
  bool kill(std::chrono::nanoseconds limit) { return kill_until(detail::deadline_after(limit)); }

  // map runs f on every element of input, each in a task of this group
  // (at most size() at a time for a pool: it blocks as spawn does), waits
  // until all have finished and returns the results in input order. If some
  // threw, map rethrows the first exception in input order, once all have
  // finished; an item whose task was killed counts as a grove::error. f gets a
  // copy of each element and must return a value. If map itself is
  // interrupted, it kills its tasks and waits for them before the exception
  // leaves.
  template <class F, std::ranges::input_range Range>
  auto map(F&& f, Range&& input) {
    using R = detail::map_result_t<F, Range>;
    using E = detail::element_t<Range>;
    detail::check_map_result<R>();
    auto fn = std::make_shared<std::decay_t<F>>(std::forward<F>(f));
    std::vector<task<R>> tasks;
    if constexpr (std::ranges::sized_range<Range>) tasks.reserve(std::ranges::size(input));
    struct cleanup {
      std::vector<task<R>>& ts;
      bool armed = true;
      ~cleanup() {
        if (!armed) return;
        std::vector<detail::task_hold> holds;
        for (const auto& t : ts) holds.emplace_back(detail::task_access::base(t));
        detail::end_tasks(holds);
      }
    } on_unwind{tasks};
    for (auto&& x : input) tasks.push_back(spawn(detail::item_call<R, std::decay_t<F>, E>(fn), x));
    for (auto& t : tasks) t.join();
    on_unwind.armed = false;
    std::exception_ptr first;
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      std::exception_ptr e = tasks[i].exception();  // marks every failure observed
      if (!e && tasks[i].killed()) e = detail::killed_item(i);
      if (e && !first) first = e;
    }
    if (first) std::rethrow_exception(first);
    std::vector<R> out;
    out.reserve(tasks.size());
    for (auto& t : tasks) out.push_back(t.get());
    return out;
  }

  // imap runs f on every element of input in tasks of this group, as map, and
  // returns a stream of the results in input order, each yielded as soon as it
  // and all before it are available. The work starts once the caller blocks
  // (a feeding task spawns the items, blocking on a full pool). An exception
  // from f is rethrown by the stream where its result would be yielded.
  // Destroying the stream early kills the tasks it started. The range is
  // iterated by the feeding task: an lvalue range must outlive the stream, an
  // rvalue one is moved into it. The group must outlive the stream.
  template <class F, std::ranges::input_range Range>
  auto imap(F&& f, Range&& input) {
    return make_stream(false, std::forward<F>(f), std::forward<Range>(input));
  }

  // imap_unordered is imap yielding results in the order their tasks finish.
  template <class F, std::ranges::input_range Range>
  auto imap_unordered(F&& f, Range&& input) {
    return make_stream(true, std::forward<F>(f), std::forward<Range>(input));
  }

 protected:
  static constexpr std::size_t unlimited = SIZE_MAX;

  // group(limit) creates a group that runs at most limit tasks at once.
  explicit group(std::size_t limit) : limit_(limit) {}

  std::size_t limit() const noexcept { return limit_; }
  std::size_t free_slots() const noexcept {
    const std::size_t used = members_.size() + reserved_;
    return used >= limit_ ? 0 : limit_ - used;
  }

  // wait_free_until waits until a slot is free: false if d passes first.
  bool wait_free_until(detail::deadline d) {
    while (free_slots() == 0) {
      detail::listed_waiter w(free_waiters_, "pool slot free", this);
      if (!detail::park(w, d)) return free_slots() > 0;
    }
    return true;
  }

 private:
  template <class R>
  friend class imap_stream;

  // member is a task in the group; its hook sits in the task's joiners.
  struct member {
    detail::task_base* task = nullptr;
    group* owner = nullptr;
    std::list<member>::iterator self;
    std::optional<detail::listed_waiter> hook;
  };

  // reserved_slot gives a reserved slot back unless keep() was called.
  class reserved_slot {
   public:
    explicit reserved_slot(group& g) noexcept : g_(&g) {}
    reserved_slot(const reserved_slot&) = delete;
    reserved_slot& operator=(const reserved_slot&) = delete;
    ~reserved_slot() {
      if (g_ != nullptr) {
        --g_->reserved_;
        g_->on_slot_freed();
      }
    }
    void keep() noexcept { g_ = nullptr; }

   private:
    group* g_;
  };

  std::list<member>::const_iterator find(const detail::task_base* t) const noexcept {
    for (auto it = members_.begin(); it != members_.end(); ++it) {
      if (it->task == t) return it;
    }
    return members_.end();
  }
  std::list<member>::iterator find(const detail::task_base* t) noexcept {
    for (auto it = members_.begin(); it != members_.end(); ++it) {
      if (it->task == t) return it;
    }
    return members_.end();
  }

  // reserve takes a slot for a task about to join, waiting in FIFO order
  // behind earlier spawners while there is none: true with the slot reserved,
  // false if d passed first. A slot handed over is kept even if an interrupt
  // arrives at the same time (it then fires at the next blocking call).
  bool reserve(detail::deadline d) {
    pass_slots();  // earlier spawners first
    if (!spawners_.has_waiting() && free_slots() > 0) {
      ++reserved_;
      return true;
    }
    detail::listed_waiter w(spawners_, "pool slot", this);
    return detail::park(w, d);  // woken: pass_slots reserved a slot for us
  }

  // pass_slots hands free slots to blocked spawners, oldest first.
  void pass_slots() {
    while (free_slots() > 0) {
      detail::waiter* w = spawners_.pop_waiting();
      if (w == nullptr) break;
      detail::wake(*w, /*handoff=*/true);
      ++reserved_;
    }
  }

  // adopt turns a reserved slot into membership of t, using node's element.
  void adopt(detail::task_base* t, std::list<member>& node) {
    member& m = node.front();
    m.task = t;
    m.owner = this;
    m.hook.emplace(t->joiners, "group", this);
    m.hook->slot = &m;
    m.hook->notify = &group::on_member_finished;
    members_.splice(members_.end(), node);
    m.self = std::prev(members_.end());
    --reserved_;
    if (killing_ > 0) detail::interrupt_task(t, std::make_exception_ptr(greenlet_exit{}));
  }

  // on_member_finished runs inside a member's finish(): it leaves the group.
  static void on_member_finished(detail::waiter& w) {
    member& m = *static_cast<member*>(w.slot);
    group& g = *m.owner;
    g.members_.erase(m.self);
    g.on_slot_freed();
  }

  void on_slot_freed() {
    pass_slots();
    if (free_slots() > 0) detail::wake_all(free_waiters_);
    detail::wake_all(changed_);
  }

  bool join_until(detail::deadline d) {
    detail::task_base* self = detail::current_greenlet()->task;
    if (self != nullptr && find(self) != members_.end()) {
      throw error("grove::group::join: a task of the group cannot join it (it would wait for itself)");
    }
    while (!members_.empty()) {
      detail::listed_waiter w(changed_, "group join", this);
      if (!detail::park(w, d)) return members_.empty();
    }
    return true;
  }

  bool kill_until(detail::deadline d) {
    detail::task_base* self = detail::current_greenlet()->task;
    const std::size_t keep = self != nullptr && find(self) != members_.end() ? 1 : 0;
    struct in_progress {
      std::size_t& n;
      explicit in_progress(std::size_t& count) : n(count) { ++n; }
      in_progress(const in_progress&) = delete;
      in_progress& operator=(const in_progress&) = delete;
      ~in_progress() { --n; }
    } killing(killing_);
    {
      std::vector<detail::task_hold> victims;
      victims.reserve(members_.size());
      for (const member& m : members_) {
        if (m.task != self) victims.emplace_back(m.task);
      }
      const auto e = std::make_exception_ptr(greenlet_exit{});
      for (const auto& v : victims) detail::interrupt_task(v.get(), e);
    }
    while (members_.size() > keep) {
      detail::listed_waiter w(changed_, "group kill", this);
      if (!detail::park(w, d)) return members_.size() <= keep;
    }
    return true;
  }

  template <class F, class Range>
  auto make_stream(bool unordered, F&& f, Range&& input) {
    using R = detail::map_result_t<F, Range>;
    using E = detail::element_t<Range>;
    detail::check_map_result<R>();
    auto st = std::make_shared<detail::stream_state<R>>(*this, unordered);
    auto fn = std::make_shared<std::decay_t<F>>(std::forward<F>(f));
    auto feeder =
        grove::spawn([st, call = detail::item_call<R, std::decay_t<F>, E>(fn),
                      view = detail::hold_range(std::forward<Range>(input))]() mutable { feed<R>(*st, call, view); });
    feeder.set_name(unordered ? "imap_unordered feeder" : "imap feeder");
    st->feeder.emplace(std::move(feeder));
    return imap_stream<R>(std::move(st));
  }

  // feed is the body of a stream's feeding task: one task per element, in
  // input order, each in a slot of the group.
  template <class R, class Call, class View>
  static void feed(detail::stream_state<R>& s, const Call& call, View& input) {
    group& g = s.owner;
    try {
      for (auto&& x : input) {
        g.reserve(detail::forever);
        reserved_slot held(g);
        if (s.closing) break;
        std::list<member> node(1);
        auto& it = s.items.emplace_back();
        it.owner = &s;
        it.index = s.first + s.items.size() - 1;
        std::optional<task<R>> t;
        try {
          t.emplace(grove::spawn(call, x));
        } catch (...) {
          s.items.pop_back();
          throw;
        }
        held.keep();
        detail::task_base* b = detail::task_access::base(*t);
        g.adopt(b, node);
        ++s.spawned;
        it.result = std::move(t);
        if (b->finished) {  // killed on the spot by a kill of the group in progress
          s.mark_done(it);
        } else {
          it.hook.emplace(b->joiners, "imap item", &s);
          it.hook->slot = &it;
          it.hook->notify = &detail::stream_state<R>::on_item_finished;
        }
      }
    } catch (const greenlet_exit&) {
      if (!s.closing) s.failure = std::make_exception_ptr(error("grove: the task feeding an imap stream was killed"));
      s.input_done = true;
      detail::wake_all(s.changed);
      throw;
    } catch (...) {
      s.failure = std::current_exception();
    }
    s.input_done = true;
    detail::wake_all(s.changed);
  }

  std::size_t limit_;
  std::size_t reserved_ = 0;  // slots handed to spawners that have not yet added their task
  std::size_t killing_ = 0;   // kills in progress
  std::list<member> members_;
  detail::wait_list spawners_;      // blocked in spawn/add, FIFO
  detail::wait_list free_waiters_;  // blocked in wait_available
  detail::wait_list changed_;       // blocked in join/kill: woken whenever a task leaves
};

// pool is a group that runs at most `size` tasks at once, as
// gevent.pool.Pool(size): spawn and add block the caller while it is full,
// and blocked callers get freed slots first come, first served.
class pool : public group {
 public:
  // pool creates an empty pool of `size` slots. Throws grove::error if size is 0.
  explicit pool(std::size_t size) : group(checked(size)) {}

  // capacity is the pool's size: how many tasks it runs at most.
  std::size_t capacity() const noexcept { return limit(); }
  // free_count is how many tasks could join now without blocking.
  std::size_t free_count() const noexcept { return free_slots(); }
  // full: a spawn now would block.
  bool full() const noexcept { return free_slots() == 0; }

  // wait_available waits until a slot is free (it does not take it: another
  // task may still take it before the caller spawns). Throws timeout_error or
  // greenlet_exit if the caller is interrupted meanwhile.
  void wait_available() { wait_free_until(detail::forever); }
  // wait_available(limit) is wait_available with a time limit: false if the
  // pool is still full when it passes.
  bool wait_available(std::chrono::nanoseconds limit) { return wait_free_until(detail::deadline_after(limit)); }

 private:
  static std::size_t checked(std::size_t size) {
    if (size == 0) throw error("grove::pool: a pool needs at least one slot (size 0 was given)");
    return size;
  }
};

}  // namespace grove
