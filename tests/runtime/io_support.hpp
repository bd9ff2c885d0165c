// io_support.hpp — what the socket and server tests share.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

#include <doctest/doctest.h>

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

// temp_dir is a fresh directory under /tmp, removed with what it holds.
class temp_dir {
 public:
  temp_dir() {
    std::string t = "/tmp/grove-test-XXXXXX";
    REQUIRE(::mkdtemp(t.data()) != nullptr);
    path_ = t;
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

}  // namespace grove_test
