// grove/event.hpp — a flag that tasks can wait for (gevent.event.Event).
#pragma once

#include <chrono>

#include <grove/detail/wait.hpp>

namespace grove {

// event is a flag, initially clear. Waiting blocks the current task (not the
// thread) until the flag is set. Use it from the tasks of one thread.
class event {
 public:
  event() = default;
  event(const event&) = delete;
  event& operator=(const event&) = delete;

  // set raises the flag and wakes every task waiting for it.
  void set();
  // clear lowers the flag; later waits block again.
  void clear() noexcept { flag_ = false; }
  bool is_set() const noexcept { return flag_; }

  // wait returns once the flag is set (at once if it is). Throws timeout_error
  // from a timeout scope, greenlet_exit if the task is killed, loop_exit if
  // nothing can ever set it.
  void wait();
  // wait(limit) is wait with a time limit: false if the flag was not set in time.
  bool wait(std::chrono::nanoseconds limit);

 private:
  bool wait_until(detail::deadline d);
  bool flag_ = false;
  detail::wait_list waiters_;
};

}  // namespace grove
