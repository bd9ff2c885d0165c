// io_support.hpp — what the socket and server tests share.
#pragma once

#include <system_error>

#include <grove/pool.hpp>

namespace grove_test {

// errno_of runs f and returns the errno of the std::system_error it throws (0 if none).
template <class F>
int errno_of(F&& f) {
  try {
    f();
  } catch (const std::system_error& e) {
    return e.code().value();
  }
  return 0;
}

// task_scope is a group whose tasks are killed when the scope ends, so that a
// case that fails half-way leaves nothing running into the next one. Declare it
// after what its tasks use, and before any timeout scope of the case.
struct task_scope : grove::group {
  task_scope() = default;
  task_scope(const task_scope&) = delete;
  task_scope& operator=(const task_scope&) = delete;
  ~task_scope() { kill(); }
};

}  // namespace grove_test
