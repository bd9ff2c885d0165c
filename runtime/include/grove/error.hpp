// grove/error.hpp — the exceptions grove throws.
#pragma once

#include <stdexcept>
#include <string>

namespace grove {

// error is thrown for misuse of grove's API: switching to a greenlet of another
// thread, a parent cycle, a stack that cannot be allocated safely, a bad
// setting. what() says what was wrong and why.
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// greenlet_exit is the kill signal, thrown into a greenlet at its switch point
// by greenlet::throw_to() with no argument, and when the last handle of a
// suspended greenlet goes away.
//
// Like Python's GreenletExit (a BaseException), it does not derive from
// std::exception, so `catch (const std::exception&)` lets it pass; only
// `catch (...)` or `catch (const grove::greenlet_exit&)` stops it. When it
// escapes a greenlet's run function it is swallowed: the greenlet dies
// normally and its parent's pending switch_to() returns the greenlet_exit
// object itself as the value (a std::any holding grove::greenlet_exit).
class greenlet_exit {
 public:
  const char* what() const noexcept { return "grove::greenlet_exit"; }
};

// loop_exit is thrown into a task (or the main greenlet) blocked on the hub when
// nothing can ever wake it: no task is ready, no timer or I/O watcher is active,
// no run_in_thread job is running, and nothing holds the hub open for another
// thread's post. As gevent raises LoopExit rather than hang forever.
class loop_exit : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace grove
