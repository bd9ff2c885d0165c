// support.hpp — what every grove test shares: the leak-check fixture and helpers.
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <cstdlib>
#include <thread>
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

// start_child starts argv with its stdout and stderr on out_fd and extra
// environment entries ("NAME=value", or "NAME" to unset it).
inline pid_t start_child(const std::vector<std::string>& argv, const std::vector<std::string>& env, int out_fd) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(out_fd, STDOUT_FILENO);
    ::dup2(out_fd, STDERR_FILENO);
    if (out_fd > STDERR_FILENO) ::close(out_fd);
    for (const auto& e : env) {
      if (e.find('=') == std::string::npos) {
        ::unsetenv(e.c_str());
      } else {
        ::putenv(const_cast<char*>(e.c_str()));
      }
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

inline void record_status(int status, run_result& r) {
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
}

// run_program runs argv with extra environment entries (as start_child) and
// collects its output and status.
inline run_result run_program(const std::vector<std::string>& argv, const std::vector<std::string>& env = {}) {
  int pipefd[2];
  REQUIRE(::pipe2(pipefd, O_CLOEXEC) == 0);
  const pid_t pid = start_child(argv, env, pipefd[1]);
  ::close(pipefd[1]);
  run_result r;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0) r.out.append(buf, static_cast<std::size_t>(n));
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  record_status(status, r);
  return r;
}

// os_threads is how many OS threads process pid has (0 once it is gone).
inline int os_threads(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::atoi(line.c_str() + 8);
  }
  return 0;
}

// limited_result is what a child run under a time limit did.
struct limited_result : run_result {
  bool timed_out = false;  // it outlived its limit and was killed with SIGKILL
  double seconds = 0;      // from start to exit
  int max_threads = 0;     // most OS threads seen while sampling
};

// run_limited runs argv like run_program, but kills it with SIGKILL after
// limit, and samples its OS thread count every few milliseconds: from the
// start, or once its output contains sample_from. Output a grandchild writes
// after the child exits is not waited for.
inline limited_result run_limited(const std::vector<std::string>& argv, std::chrono::seconds limit,
                                  const std::vector<std::string>& env = {}, const std::string& sample_from = "") {
  int pipefd[2];
  REQUIRE(::pipe2(pipefd, O_CLOEXEC) == 0);
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = start_child(argv, env, pipefd[1]);
  ::close(pipefd[1]);
  limited_result r;
  int status = 0;
  bool sampling = sample_from.empty();
  bool open = true;
  char buf[4096];
  for (;;) {
    if (sampling) r.max_threads = std::max(r.max_threads, os_threads(pid));
    if (::waitpid(pid, &status, WNOHANG) == pid) break;
    if (std::chrono::steady_clock::now() - start > limit) {
      r.timed_out = true;
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      break;
    }
    if (!open) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      continue;
    }
    pollfd p{pipefd[0], POLLIN, 0};
    if (::poll(&p, 1, 2) > 0) {
      const ssize_t n = ::read(pipefd[0], buf, sizeof buf);
      if (n <= 0) {
        open = false;  // stdout closed (or handed to a grandchild that outlives it): keep waiting for the exit
      } else {
        r.out.append(buf, static_cast<std::size_t>(n));
        if (!sampling && r.out.find(sample_from) != std::string::npos) sampling = true;
      }
    }
  }
  r.seconds = seconds_since(start);
  // What it wrote before it exited is all in the pipe now.
  ::fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
  ssize_t n;
  while (open && (n = ::read(pipefd[0], buf, sizeof buf)) > 0) r.out.append(buf, static_cast<std::size_t>(n));
  ::close(pipefd[0]);
  record_status(status, r);
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
