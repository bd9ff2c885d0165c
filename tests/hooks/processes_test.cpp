// Link mode: waiting for child processes (the wait family, system, pclose)
// and for locks and SysV objects (on the thread pool) in tasks: the other
// tasks run meanwhile, and the results are libc's.
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/ipc.h>
#include <sys/resource.h>
#include <sys/sem.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include <grove/timeout.hpp>

#include "hooks_support.hpp"

using namespace std::chrono_literals;
using namespace grove_test;

namespace {

// child forks a process that sleeps ms milliseconds and exits with code.
pid_t child(int ms, int code) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::usleep(static_cast<useconds_t>(ms) * 1000);
    ::_exit(code);
  }
  return pid;
}

}  // namespace

TEST_CASE_FIXTURE(leak_check, "waitpid in tasks waits cooperatively: three children of 300 ms take 300 ms") {
  ticker t;
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<grove::task<int>> waits;
  for (int i = 0; i < 3; ++i) {
    waits.push_back(grove::spawn([i] {
      const pid_t pid = child(300, 10 + i);
      int status = 0;
      return ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }));
  }
  for (int i = 0; i < 3; ++i) CHECK(waits[i].get() == 10 + i);
  CHECK(seconds_since(t0) < 0.9);
  CHECK(t.ticks() >= 20);
}

TEST_CASE_FIXTURE(leak_check, "waitpid(-1), wait4 and waitid in a task return what libc returns") {
  int status = 0;
  errno = 0;
  CHECK(::waitpid(-1, &status, 0) == -1);
  CHECK(errno == ECHILD);
  CHECK(::waitpid(-1, &status, 0x4000) == -1);
  CHECK(errno == EINVAL);
  pid_t pid = child(100, 3);
  CHECK(::waitpid(pid, &status, WNOHANG) == 0);
  rusage usage{};
  CHECK(::wait4(-1, &status, 0, &usage) == pid);
  CHECK(WEXITSTATUS(status) == 3);
  CHECK(usage.ru_maxrss > 0);
  pid = child(100, 4);
  siginfo_t info{};
  CHECK(::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED) == 0);
  CHECK(info.si_pid == pid);
  CHECK(info.si_status == 4);
  CHECK(info.si_code == CLD_EXITED);
  CHECK(::waitid(P_ALL, 0, &info, 0) == -1);
  CHECK(errno == EINVAL);
}

TEST_CASE_FIXTURE(leak_check, "system in tasks runs the shells at once and returns their statuses") {
  ticker t;
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<grove::task<int>> shells;
  for (int i = 0; i < 5; ++i) {
    shells.push_back(grove::spawn([i] { return ::system(("sleep 0.3; exit " + std::to_string(i)).c_str()); }));
  }
  for (int i = 0; i < 5; ++i) {
    const int s = shells[i].get();
    CHECK(WIFEXITED(s));
    CHECK(WEXITSTATUS(s) == i);
  }
  CHECK(seconds_since(t0) < 1.2);
  CHECK(t.ticks() >= 20);
  CHECK(::system(nullptr) == 1);
}

TEST_CASE_FIXTURE(leak_check, "a task killed while it waits in system kills its shell and restores SIGINT") {
  struct sigaction before {};
  REQUIRE(::sigaction(SIGINT, nullptr, &before) == 0);
  auto waiting = grove::spawn([] { return ::system("sleep 5"); });
  grove::sleep(100ms);
  struct sigaction during {};
  ::sigaction(SIGINT, nullptr, &during);
  CHECK((during.sa_handler == SIG_IGN));
  const auto t0 = std::chrono::steady_clock::now();
  waiting.kill();
  CHECK(seconds_since(t0) < 2.0);
  struct sigaction after {};
  ::sigaction(SIGINT, nullptr, &after);
  CHECK((after.sa_handler == before.sa_handler));
  int status = 0;
  CHECK(::waitpid(-1, &status, WNOHANG) == -1);  // the shell was reaped
  CHECK(errno == ECHILD);
}

TEST_CASE_FIXTURE(leak_check, "pclose in tasks waits cooperatively and returns the child's status") {
  ticker t;
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<grove::task<int>> closes;
  for (int i = 0; i < 4; ++i) {
    closes.push_back(grove::spawn([i] {
      FILE* f = ::popen(("sleep 0.3; exit " + std::to_string(i)).c_str(), "r");
      return f == nullptr ? -1 : ::pclose(f);
    }));
  }
  for (int i = 0; i < 4; ++i) CHECK(WEXITSTATUS(closes[i].get()) == i);
  CHECK(seconds_since(t0) < 1.0);
  CHECK(t.ticks() >= 20);
  FILE* w = ::popen("read x; test \"$x\" = hello", "w");
  REQUIRE(w != nullptr);
  ::fputs("hello\n", w);
  CHECK(::pclose(w) == 0);
}

TEST_CASE_FIXTURE(leak_check, "flock held by another process waits on the pool while other tasks run") {
  char path[] = "/tmp/grove-flock-XXXXXX";
  const int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const int own = ::open(path, O_RDWR);
    ::flock(own, LOCK_EX);
    if (::write(ready[1], "x", 1) != 1) ::_exit(1);
    ::usleep(300000);
    ::_exit(0);
  }
  char c;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  ticker t;
  const int other = ::open(path, O_RDWR);
  CHECK(::flock(other, LOCK_EX | LOCK_NB) == -1);
  CHECK(errno == EWOULDBLOCK);
  errno = 0;
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(::flock(other, LOCK_EX) == 0);
  CHECK(errno == 0);
  CHECK(seconds_since(t0) > 0.1);
  CHECK(t.ticks() >= 10);
  ::waitpid(pid, nullptr, 0);
  ::close(other);
  ::close(fd);
  ::close(ready[0]);
  ::close(ready[1]);
  ::unlink(path);
}

TEST_CASE_FIXTURE(leak_check, "semop waits on the pool until another task posts, and semtimedop times out with EAGAIN") {
  const int sems = ::semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
  REQUIRE(sems >= 0);
  ticker t;
  auto poster = grove::spawn([sems] {
    grove::sleep(200ms);
    sembuf up{0, 1, 0};
    return ::semop(sems, &up, 1);
  });
  sembuf down{0, -1, 0};
  CHECK(::semop(sems, &down, 1) == 0);
  CHECK(poster.get() == 0);
  CHECK(t.ticks() >= 10);
  const timespec limit{0, 100'000'000};
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(::semtimedop(sems, &down, 1, &limit) == -1);
  CHECK(errno == EAGAIN);
  CHECK(seconds_since(t0) > 0.08);
  ::semctl(sems, 0, IPC_RMID);
}
