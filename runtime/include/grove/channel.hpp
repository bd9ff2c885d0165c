// grove/channel.hpp — a rendezvous between tasks: gevent's Channel.
//
//   grove::channel<std::string> ch;
//   grove::spawn([&] { ch.put("hello"); });   // returns once a getter has the item
//   std::string s = ch.get();                 // "hello"
//
// A channel holds no item: put blocks until a getter takes the item, get blocks
// until a putter offers one. Getters and putters are each served in the order
// they started waiting, and the item passes with a hand-off as in queue.hpp: a
// put that returned delivered its item to exactly one get, and a put that threw
// or timed out delivered it to none, even when a kill or a timeout scope races
// with the exchange. For the tasks of one thread; not thread-safe.
#pragma once

#include <chrono>
#include <optional>

#include <grove/detail/wait.hpp>
#include <grove/queue.hpp>

namespace grove {

// channel passes items of type T from putting tasks to getting tasks, one at a
// time, with no buffer. It must outlive every task blocked on it (destroying it
// while one is blocked aborts the process). Not copyable or movable.
template <class T>
class channel {
 public:
  using value_type = T;

  // channel makes a channel with nobody waiting on it.
  channel() : core_(0, lifo_order<T>(), "channel get", "channel put") {}
  channel(const channel&) = delete;
  channel& operator=(const channel&) = delete;

  // put blocks the current task until a getter has taken item. Throws what
  // interrupts the wait (greenlet_exit, timeout_error from a timeout scope,
  // loop_exit when no getter can ever come), and then no getter has the item;
  // grove::error if it would block in the hub itself (a post callback).
  void put(T item) { core_.put_until(item, detail::forever); }
  // put(item, limit) is put giving up after limit: false if no getter took the
  // item in time (it is then dropped). A zero limit is try_put that also
  // raises a pending interrupt.
  bool put(T item, std::chrono::nanoseconds limit) { return core_.put_until(item, detail::deadline_after(limit)); }
  // try_put gives item to a getter already waiting and returns true, or
  // returns false (dropping the item) if none is. Never blocks, so it may be
  // called from hub callbacks.
  bool try_put(T item) { return core_.offer(item); }

  // get blocks the current task until a putter offers an item, and returns it.
  // Throws what interrupts the wait (greenlet_exit, timeout_error, loop_exit
  // when no putter can ever come), and then no item was taken; grove::error if
  // it would block in the hub itself.
  T get() { return *core_.get_until(detail::forever); }
  // get(limit) is get giving up after limit: empty if no putter came in time.
  std::optional<T> get(std::chrono::nanoseconds limit) { return core_.get_until(detail::deadline_after(limit)); }
  // try_get takes the item of the longest-waiting putter, releasing it, or
  // returns empty if no putter is waiting. Never blocks.
  std::optional<T> try_get() { return core_.take(); }

 private:
  // Capacity 0: nothing is ever stored, every item goes from putter to getter.
  // lifo_order's empty vector costs no allocation.
  detail::queue_core<T, lifo_order<T>> core_;
};

}  // namespace grove
