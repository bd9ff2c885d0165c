// grove/queue.hpp — gevent's queues: FIFO, LIFO and priority, bounded or not.
//
//   grove::queue<job> jobs(100);           // at most 100 waiting jobs
//   grove::spawn([&] { for (;;) { run(jobs.get()); jobs.task_done(); } });
//   jobs.put(job{...});                    // blocks this task while the queue is full
//   jobs.join();                           // until every job put has been marked done
//
// Queues are cooperative: a blocked put or get blocks the calling task (or the
// main greenlet) on the hub, never the thread. They are for the tasks of one
// thread; they are not thread-safe.
//
// Fairness and hand-offs. Getters are served in the order they started
// waiting, and so are putters. A put that finds a getter waiting gives the item
// straight to the longest-waiting getter; a get that frees a place while
// putters wait moves the longest-waiting putter's item into the queue. Either
// way the waiting task is woken with a hand-off (see detail/wait.hpp): its call
// returns successfully even if a kill or a timeout scope reaches it before it
// runs again, and that interrupt is raised at its next blocking call instead.
// So an item is never lost between tasks, nor delivered twice: a put either
// returns (the item is in the queue or with a getter) or throws / returns false
// (the item was not added); a get either returns an item or took none.
#pragma once

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include <grove/detail/wait.hpp>
#include <grove/error.hpp>

namespace grove {

// queue_order is what a basic_queue keeps its items in: push adds an item, pop
// removes and returns the next one to get (called only when size() > 0), size
// counts the items.
template <class O, class T>
concept queue_order = requires(O order, const O& corder, T&& item) {
  order.push(std::move(item));
  { order.pop() } -> std::same_as<T>;
  { corder.size() } -> std::convertible_to<std::size_t>;
};

// fifo_order gives items back in the order they were put.
template <class T>
class fifo_order {
 public:
  void push(T&& item) { items_.push_back(std::move(item)); }
  T pop() {
    T item = std::move(items_.front());
    items_.pop_front();
    return item;
  }
  std::size_t size() const noexcept { return items_.size(); }

 private:
  std::deque<T> items_;
};

// lifo_order gives back the most recently put item first.
template <class T>
class lifo_order {
 public:
  void push(T&& item) { items_.push_back(std::move(item)); }
  T pop() {
    T item = std::move(items_.back());
    items_.pop_back();
    return item;
  }
  std::size_t size() const noexcept { return items_.size(); }

 private:
  std::vector<T> items_;
};

// priority_order gives back the smallest item first, as Python's heapq: the one
// no other item is less than by Compare (a strict weak order). Equal items come
// out in no particular order.
template <class T, class Compare = std::less<T>>
class priority_order {
 public:
  priority_order() = default;
  // priority_order orders by less, a comparator that may carry state.
  explicit priority_order(Compare less) : less_(std::move(less)) {}
  void push(T&& item) {
    items_.push_back(std::move(item));
    std::push_heap(items_.begin(), items_.end(), later());
  }
  T pop() {
    std::pop_heap(items_.begin(), items_.end(), later());
    T item = std::move(items_.back());
    items_.pop_back();
    return item;
  }
  std::size_t size() const noexcept { return items_.size(); }

 private:
  // The std heap algorithms keep the greatest element on top; reversing the
  // order puts the smallest there.
  auto later() {
    return [this](const T& a, const T& b) { return less_(b, a); };
  }
  std::vector<T> items_;
  Compare less_{};
};

namespace detail {

// queue_core is the machinery of every queue and of channel: the items, the
// waiting getters and putters, and the count of items not yet marked done.
// capacity is the most items it holds (0: none, so every put is a rendezvous
// with a getter; unbounded_capacity: no limit).
template <class T, queue_order<T> Order>
class queue_core {
 public:
  static constexpr std::size_t unbounded_capacity = std::numeric_limits<std::size_t>::max();

  // get_what and put_what name the waits in dump_tasks; they must be literals.
  queue_core(std::size_t capacity, Order order, const char* get_what, const char* put_what)
      : order_(std::move(order)), capacity_(capacity), get_what_(get_what), put_what_(put_what) {}
  queue_core(const queue_core&) = delete;
  queue_core& operator=(const queue_core&) = delete;
  ~queue_core() {
    // A waiter still listed lives on a parked greenlet's stack and would unlink
    // itself from freed memory later: fail loudly here instead.
    if (!getters_.empty() || !putters_.empty() || !joiners_.empty()) {
      std::fprintf(stderr, "grove: a queue or channel was destroyed while tasks were still blocked on it\n");
      std::fflush(stderr);
      std::abort();
    }
  }

  std::size_t size() const noexcept { return order_.size(); }

  // offer hands item to the longest-waiting getter, or stores it if there is
  // room; false (item untouched) if neither. Never blocks.
  bool offer(T& item) {
    if (waiter* w = getters_.pop_waiting()) {
      static_cast<std::optional<T>*>(w->slot)->emplace(std::move(item));
      accepted();
      wake(*w, true);
      return true;
    }
    if (order_.size() < capacity_) {
      order_.push(std::move(item));
      accepted();
      return true;
    }
    return false;
  }

  // take returns the next item, or that of the longest-waiting putter where
  // nothing is stored; empty if there is neither. Never blocks.
  std::optional<T> take() {
    if (order_.size() > 0) {
      std::optional<T> item(order_.pop());
      // A place just freed up: the first putter in line fills it, so putters
      // keep their turn ahead of anyone who puts later.
      if (waiter* w = putters_.pop_waiting()) {
        order_.push(std::move(*static_cast<T*>(w->slot)));
        accepted();
        wake(*w, true);
      }
      return item;
    }
    if (waiter* w = putters_.pop_waiting()) {
      std::optional<T> item(std::move(*static_cast<T*>(w->slot)));
      accepted();
      wake(*w, true);
      return item;
    }
    return std::nullopt;
  }

  // put_until adds item, waiting until a getter takes it or there is room, or d
  // passes (false: not added, item untouched). Throws what interrupts the wait.
  bool put_until(T& item, deadline d) {
    if (offer(item)) return true;
    listed_waiter w(putters_, put_what_, this);
    w.slot = &item;
    // Only a hand-off wakes a putter: true means a getter has taken the item.
    return park(w, d);
  }

  // get_until returns the next item, waiting for one until d passes (empty).
  // Throws what interrupts the wait.
  std::optional<T> get_until(deadline d) {
    if (std::optional<T> taken = take()) return taken;
    std::optional<T> item;
    listed_waiter w(getters_, get_what_, this);
    w.slot = &item;
    // Only a hand-off wakes a getter, and it has filled `item` by then.
    if (!park(w, d)) return std::nullopt;
    return item;
  }

  // task_done marks one accepted item done, waking the joiners when none is
  // left. Throws grove::error if every accepted item is already done.
  void task_done() {
    if (unfinished_ == 0) {
      throw grove::error("grove::queue::task_done: called more times than items were put into the queue");
    }
    if (--unfinished_ == 0) {
      while (waiter* w = joiners_.pop_front()) wake(*w);
    }
  }

  // join_until waits until every accepted item is done, or d passes (false).
  // Throws what interrupts the wait.
  bool join_until(deadline d) {
    if (unfinished_ == 0) return true;
    listed_waiter w(joiners_, "queue join", this);
    return park(w, d) || unfinished_ == 0;
  }

 private:
  // The count goes up when the queue accepts an item, not when the put
  // returns: a consumer may finish the item before its putter runs again.
  void accepted() noexcept { ++unfinished_; }

  Order order_;
  std::size_t capacity_;
  std::size_t unfinished_ = 0;  // items accepted and not yet marked done
  wait_list getters_;
  wait_list putters_;
  wait_list joiners_;
  const char* get_what_;
  const char* put_what_;
};

}  // namespace detail

// basic_queue is a cooperative queue whose Order decides which item a get
// returns; use it through queue, lifo_queue and priority_queue. Its tasks must
// all run on one thread. It must outlive every task blocked on it (destroying
// it while one is blocked aborts the process). Not copyable or movable: blocked
// tasks refer to it.
template <class T, queue_order<T> Order>
class basic_queue {
 public:
  using value_type = T;

  // basic_queue makes an empty queue holding at most maxsize items (0: no
  // limit).
  explicit basic_queue(std::size_t maxsize = 0) : basic_queue(maxsize, Order()) {}
  // basic_queue makes an empty queue holding at most maxsize items (0: no
  // limit) that keeps them in an Order made from order_args, such as a
  // priority_queue's comparator.
  template <class... Args>
  requires(sizeof...(Args) > 0 && std::constructible_from<Order, Args...>) explicit basic_queue(std::size_t maxsize,
                                                                                                Args&&... order_args)
      : core_(maxsize == 0 ? core::unbounded_capacity : maxsize, Order(std::forward<Args>(order_args)...), "queue get",
              "queue put"),
        maxsize_(maxsize) {}
  basic_queue(const basic_queue&) = delete;
  basic_queue& operator=(const basic_queue&) = delete;

  // put adds item, blocking the current task while the queue is full; a task
  // waiting in get receives it directly. Throws what interrupts the wait
  // (greenlet_exit, timeout_error from a timeout scope, loop_exit when nothing
  // can ever make room), and then the item was not added; grove::error if it
  // would block in the hub itself (a post callback).
  void put(T item) { core_.put_until(item, detail::forever); }
  // put(item, limit) is put giving up after limit: false if the item could not
  // be added in time (it is then dropped). A zero limit only checks.
  bool put(T item, std::chrono::nanoseconds limit) { return core_.put_until(item, detail::deadline_after(limit)); }
  // try_put adds item if a task is waiting for one or there is room, and
  // returns whether it did (if not, the item is dropped). Never blocks, so it
  // may be called from hub callbacks.
  bool try_put(T item) { return core_.offer(item); }

  // get removes and returns the next item, blocking the current task while the
  // queue is empty. A place it frees goes to the longest-waiting putter. Throws
  // what interrupts the wait (greenlet_exit, timeout_error, loop_exit when
  // nothing can ever put), and then no item was taken; grove::error if it would
  // block in the hub itself.
  T get() { return *core_.get_until(detail::forever); }
  // get(limit) is get giving up after limit: empty if no item came in time. A
  // zero limit only checks.
  std::optional<T> get(std::chrono::nanoseconds limit) { return core_.get_until(detail::deadline_after(limit)); }
  // try_get removes and returns the next item if there is one. Never blocks.
  std::optional<T> try_get() { return core_.take(); }

  // size counts the items in the queue (not those of waiting putters).
  std::size_t size() const noexcept { return core_.size(); }
  // empty: the queue holds no item.
  bool empty() const noexcept { return core_.size() == 0; }
  // full: the queue is bounded and holds maxsize items, so a put would block.
  bool full() const noexcept { return maxsize_ != 0 && core_.size() >= maxsize_; }
  // maxsize is the most items the queue holds; 0 means no limit.
  std::size_t maxsize() const noexcept { return maxsize_; }

  // task_done marks one item put as processed, as Python's Queue.task_done: the
  // consumer calls it once per item it got, when done with it. Throws
  // grove::error if called more times than items were put.
  void task_done() { core_.task_done(); }
  // join blocks the current task until every item ever put has been marked
  // done by task_done (at once if that is already so). Throws what interrupts
  // the wait.
  void join() { core_.join_until(detail::forever); }
  // join(limit) is join giving up after limit: false if items were still
  // unfinished then.
  bool join(std::chrono::nanoseconds limit) { return core_.join_until(detail::deadline_after(limit)); }

 private:
  using core = detail::queue_core<T, Order>;
  core core_;
  std::size_t maxsize_;
};

// queue is a first-in, first-out queue (gevent's Queue).
template <class T>
using queue = basic_queue<T, fifo_order<T>>;

// lifo_queue gives back the most recently put item first (gevent's LifoQueue).
template <class T>
using lifo_queue = basic_queue<T, lifo_order<T>>;

// priority_queue gives back the smallest item by Compare first (gevent's
// PriorityQueue). A comparator with state is passed after maxsize:
// priority_queue<job, by_deadline> q(0, by_deadline{...}).
template <class T, class Compare = std::less<T>>
using priority_queue = basic_queue<T, priority_order<T, Compare>>;

}  // namespace grove
