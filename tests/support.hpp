// support.hpp — what every grove test shares: the leak-check fixture and helpers.
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <grove/greenlet.hpp>
#include <grove/hub.hpp>
#include <grove/stack.hpp>

namespace grove_test {

// leak_check is the fixture of every test case: when the case ends, no
// greenlet, stack, task, parked waiter or timer may be left behind. The
// thread's hub (one greenlet, and its stack once it has run) is infrastructure
// and is counted before the case starts.
struct leak_check {
  leak_check()
      : hub_(grove::hub::current()),
        greenlets_(grove::greenlet::live_count()),
        stacks_(grove::stack_statistics().in_use) {
    REQUIRE_MESSAGE(greenlets_ <= 1, "greenlets alive before the test, besides the hub");
    REQUIRE_MESSAGE(stacks_ <= 1, "stacks in use before the test, besides the hub's");
  }
  leak_check(const leak_check&) = delete;
  leak_check& operator=(const leak_check&) = delete;
  ~leak_check() {
    const auto s = hub_.stats();
    CHECK_MESSAGE(s.tasks == 0, "tasks left unfinished by this test");
    CHECK_MESSAGE(s.parked == 0, "greenlets left parked by this test");
    CHECK_MESSAGE(s.timers == 0, "timers left running by this test");
    CHECK_MESSAGE(grove::greenlet::live_count() == greenlets_, "greenlets left alive by this test");
    CHECK_MESSAGE(grove::stack_statistics().in_use <= std::max<std::size_t>(stacks_, 1),
                  "stacks left in use by this test");
  }

 private:
  grove::hub& hub_;
  std::size_t greenlets_;
  std::size_t stacks_;
};

// stderr_capture redirects file descriptor 2 into a temporary file while it lives.
class stderr_capture {
 public:
  stderr_capture() : file_(std::tmpfile()), saved_(::dup(STDERR_FILENO)) {
    std::fflush(stderr);
    ::dup2(::fileno(file_), STDERR_FILENO);
  }
  stderr_capture(const stderr_capture&) = delete;
  stderr_capture& operator=(const stderr_capture&) = delete;
  ~stderr_capture() {
    restore();
    std::fclose(file_);
  }
  // text stops capturing and returns what was written.
  std::string text() {
    restore();
    std::string out;
    std::rewind(file_);
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, file_)) > 0) out.append(buf, n);
    return out;
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
    saved_ = -1;
  }
  std::FILE* file_;
  int saved_;
};

// guard counts its destruction, to prove a stack was unwound (its RAII ran).
struct guard {
  explicit guard(int* destroyed) : destroyed_(destroyed) {}
  guard(const guard&) = delete;
  guard& operator=(const guard&) = delete;
  ~guard() { ++*destroyed_; }
  int* destroyed_;
};

// seconds_since is the time since t0, in seconds.
inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// run_result is what a child process did.
struct run_result {
  int exit_code = -1;  // when it exited
  int signal = 0;      // when a signal killed it
  std::string out;     // stdout and stderr, interleaved
};

// run_program runs argv with extra environment entries ("NAME=value") and
// collects its output and status.
inline run_result run_program(const std::vector<std::string>& argv, const std::vector<std::string>& env = {}) {
  int pipefd[2];
  REQUIRE(::pipe(pipefd) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(pipefd[1], STDOUT_FILENO);
    ::dup2(pipefd[1], STDERR_FILENO);
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(pipefd[1]);
  run_result r;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0) r.out.append(buf, static_cast<std::size_t>(n));
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  return r;
}

// rss_bytes is this process's resident set size.
inline std::size_t rss_bytes() {
  std::ifstream f("/proc/self/statm");
  std::size_t size = 0, resident = 0;
  f >> size >> resident;
  return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

// mapping_count is how many memory mappings this process has.
inline std::size_t mapping_count() {
  std::ifstream f("/proc/self/maps");
  std::size_t n = 0;
  std::string line;
  while (std::getline(f, line)) ++n;
  return n;
}

}  // namespace grove_test
