// Plain C programs from tests/programs/, built without grove, run natively and
// under grove-run: the same output and exit status, and proof that under
// grove-run they really waited on the hub.
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../support.hpp"

using namespace grove_test;
using namespace std::chrono_literals;

namespace {

const std::string grove_run = GROVE_RUN;
const std::string programs = GROVE_PROGRAMS;

void same_natively_and_under_grove_run(const std::string& name) {
  CAPTURE(name);
  const run_result native = run_program({programs + "/" + name});
  const run_result grove = run_program({grove_run, programs + "/" + name});
  CHECK(native.exit_code == 0);
  CHECK(grove.out == native.out);
  CHECK(grove.exit_code == native.exit_code);
  CHECK(grove.signal == native.signal);
}

// syscall_of returns the number of the system call pid is blocked in.
long syscall_of(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/syscall");
  long n = -1;
  f >> n;
  return n;
}

// blocked_in starts argv with a pipe on its stdin, waits until it blocks, and
// returns the system call it blocks in. Then closes its stdin and reaps it.
long blocked_in(const std::vector<std::string>& argv, std::string& out) {
  int in[2], o[2];
  REQUIRE(::pipe(in) == 0);
  REQUIRE(::pipe(o) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(o[1], 1);
    ::close(in[0]);
    ::close(in[1]);
    ::close(o[0]);
    ::close(o[1]);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(o[1]);
  // Wait for the program to settle in its blocking call: the same call seen
  // five times in a row (start-up makes short-lived reads of its own).
  long call = -1;
  for (int i = 0, same = 0; i < 500 && same < 5; ++i) {
    std::this_thread::sleep_for(20ms);
    const long now = syscall_of(pid);
    same = now == call ? same + 1 : 0;
    call = now;
  }
  REQUIRE(::write(in[1], "twelve bytes", 12) == 12);
  ::close(in[1]);
  char buf[512];
  ssize_t n;
  while ((n = ::read(o[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  ::close(o[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status));
  return call;
}

}  // namespace

TEST_CASE("sleeps of every kind behave the same natively and under grove-run") {
  same_natively_and_under_grove_run("sleeps");
}

TEST_CASE("a blocking TCP server and client behave the same natively and under grove-run") {
  same_natively_and_under_grove_run("tcp");
}

TEST_CASE("poll, select and epoll loops behave the same natively and under grove-run") {
  same_natively_and_under_grove_run("pollers");
}

TEST_CASE("getaddrinfo, getnameinfo and gethostbyname answer the same natively and under grove-run") {
  same_natively_and_under_grove_run("resolve");
}

TEST_CASE("fork and wait behave the same natively and under grove-run, and the child's hub works") {
  same_natively_and_under_grove_run("forker");
}

TEST_CASE(
    "a handler without SA_RESTART makes the blocking call it interrupts fail with EINTR, one with SA_RESTART "
    "lets it go on except where signal(7) says never, natively and under grove-run") {
  same_natively_and_under_grove_run("sig_eintr");
}

TEST_CASE("blocking calls in constructors, destructors and atexit handlers behave the same under grove-run") {
  same_natively_and_under_grove_run("early");
}

TEST_CASE("a fortified build's calls behave the same natively and under grove-run") {
  same_natively_and_under_grove_run("fortified");
}

TEST_CASE("under grove-run a fortified read (__read_chk) waits in the hub's epoll_wait, natively in read") {
  const run_result symbols = run_program({"/usr/bin/nm", "-D", programs + "/fortified"});
  REQUIRE_MESSAGE(symbols.out.find("__read_chk") != std::string::npos, "the program was not built fortified");
  std::string native_out, grove_out;
  CHECK(blocked_in({programs + "/fortified"}, native_out) == 0);         // read
  CHECK(blocked_in({grove_run, programs + "/fortified"}, grove_out) == 232);  // epoll_wait
  CHECK(grove_out == native_out);
  CHECK(native_out.find("read 12 bytes from stdin") != std::string::npos);
}

TEST_CASE("grove-run --help explains the options; a bad option or setting exits 2 with a message") {
  const run_result help = run_program({grove_run, "--help"});
  CHECK(help.exit_code == 0);
  CHECK(help.out.find("usage: grove-run") != std::string::npos);
  CHECK(help.out.find("--stack-size") != std::string::npos);
  const run_result bad_option = run_program({grove_run, "--frobnicate", "/bin/true"});
  CHECK(bad_option.exit_code == 2);
  CHECK(bad_option.out.find("unknown option --frobnicate") != std::string::npos);
  const run_result bad_size = run_program({grove_run, "--stack-size=lots", "/bin/true"});
  CHECK(bad_size.exit_code == 2);
  CHECK(bad_size.out.find("GROVE_STACK_SIZE") != std::string::npos);
  const run_result bad_env = run_program({grove_run, "/bin/true"}, {"GROVE_THREADPOOL_SIZE=0"});
  CHECK(bad_env.exit_code == 2);
  CHECK(bad_env.out.find("GROVE_THREADPOOL_SIZE") != std::string::npos);
  const run_result nothing = run_program({grove_run});
  CHECK(nothing.exit_code == 2);
  const run_result missing = run_program({grove_run, "/no/such/program"});
  CHECK(missing.exit_code == 127);
  CHECK(missing.out.find("/no/such/program") != std::string::npos);
}

TEST_CASE("a bad GROVE_* setting stops a preloaded program with exit status 2") {
  const run_result r = run_program({grove_run, programs + "/sleeps"}, {"GROVE_INHERIT=maybe"});
  CHECK(r.exit_code == 2);
  CHECK(r.out.find("GROVE_INHERIT") != std::string::npos);
}

TEST_CASE("exec'd children inherit grove-run's preload unless --no-inherit") {
  const std::string show = "echo \"$LD_PRELOAD\"";
  const run_result inherit = run_program({grove_run, "/bin/sh", "-c", show});
  CHECK(inherit.out.find("libgrove-preload.so") != std::string::npos);
  const run_result alone = run_program({grove_run, "--no-inherit", "/bin/sh", "-c", show});
  CHECK(alone.exit_code == 0);
  CHECK(alone.out.find("libgrove-preload.so") == std::string::npos);
}
