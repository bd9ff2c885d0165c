// Plain C programs from tests/programs/, built without grove, run natively and
// under grove-run: the same output and exit status, and proof that under
// grove-run they really waited on the hub.
#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
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

TEST_CASE(
    "poll, select and epoll loops behave the same natively and under grove-run, and a read or write of a pipe's "
    "wrong end fails at once with EBADF") {
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

TEST_CASE(
    "reads of a cold file are not interrupted by a 1 ms SIGALRM whose handler has no SA_RESTART (no EINTR, no "
    "short read), and the handler runs, natively and under grove-run with io_uring and with the pool") {
  char dir[] = "/tmp/grove-file-signals-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  const std::string file = std::string(dir) + "/data";
  REQUIRE(std::system(("head -c 67108864 /dev/urandom > " + file).c_str()) == 0);  // 64 MiB
  const run_result native = run_program({programs + "/file_signals", file});
  CHECK(native.exit_code == 0);
  CHECK(native.out.find("read: 67108864 bytes of 67108864 in 8 calls, short reads before the end: 0, EINTR: 0\n") !=
        std::string::npos);
  CHECK(native.out.find("pread of the whole file: whole\n") != std::string::npos);
  CHECK(native.out.find("the handler ran: yes\n") != std::string::npos);
  for (const char* way : {"--file-io=io_uring", "--file-io=pool"}) {
    CAPTURE(way);
    const run_result grove = run_program({grove_run, way, programs + "/file_signals", file});
    CHECK(grove.exit_code == 0);
    CHECK(grove.out == native.out);
  }
  (void)std::system((std::string("rm -rf ") + dir).c_str());
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

TEST_CASE(
    "grove-run --help names every setting with its default, --version says the version; a bad option or "
    "setting exits 2 with a message") {
  const run_result help = run_program({grove_run, "--help"});
  CHECK(help.exit_code == 0);
  CHECK(help.out.find("usage: grove-run") != std::string::npos);
  for (const char* setting : {"GROVE_THREADS", "GROVE_STACK_SIZE", "GROVE_STACK_MODE", "GROVE_THREADPOOL_SIZE",
                              "GROVE_RESOLVER", "GROVE_MONITOR_MS", "GROVE_DUMP_ON_SIGNAL", "GROVE_BACKTRACES",
                              "GROVE_INHERIT", "GROVE_PRELOAD"}) {
    CAPTURE(setting);
    const auto at = help.out.find(setting);
    REQUIRE(at != std::string::npos);
    CHECK(help.out.find("default", at) < help.out.find("\n  -", at));  // its default, before the next option
  }
  const run_result version = run_program({grove_run, "--version"});
  CHECK(version.exit_code == 0);
  CHECK(version.out.rfind("grove-run 0.", 0) == 0);
  const run_result bad_option = run_program({grove_run, "--frobnicate", "/bin/true"});
  CHECK(bad_option.exit_code == 2);
  CHECK(bad_option.out.find("unknown option --frobnicate") != std::string::npos);
  const run_result bad_size = run_program({grove_run, "--stack-size=lots", "/bin/true"});
  CHECK(bad_size.exit_code == 2);
  CHECK(bad_size.out.find("GROVE_STACK_SIZE") != std::string::npos);
  const run_result bad_backtraces = run_program({grove_run, "--backtraces=maybe", "/bin/true"});
  CHECK(bad_backtraces.exit_code == 2);
  CHECK(bad_backtraces.out.find("GROVE_BACKTRACES") != std::string::npos);
  const run_result bad_env = run_program({grove_run, "/bin/true"}, {"GROVE_THREADPOOL_SIZE=0"});
  CHECK(bad_env.exit_code == 2);
  CHECK(bad_env.out.find("GROVE_THREADPOOL_SIZE") != std::string::npos);
  const run_result nothing = run_program({grove_run});
  CHECK(nothing.exit_code == 2);
  const run_result missing = run_program({grove_run, "/no/such/program"});
  CHECK(missing.exit_code == 127);
  CHECK(missing.out.find("/no/such/program") != std::string::npos);
}

TEST_CASE("under grove-run GROVE_MONITOR_MS reports a loop that holds the hub with its backtrace, and the program "
          "goes on as natively") {
  const run_result native = run_program({programs + "/spin"});
  const run_result r = run_program({grove_run, "--monitor-ms=50", programs + "/spin"});
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("grove: blocking detected") != std::string::npos);
  CHECK(r.out.find("the main greenlet holds it") != std::string::npos);
  CHECK(r.out.find("spin_in_c_program") != std::string::npos);
  CHECK(r.out.find("deadlock") == std::string::npos);
  CHECK(r.out.find("spin: done\n") != std::string::npos);
  CHECK(native.out == "spin: done\n");
}

TEST_CASE("under grove-run a program that exits while the blocking monitor writes its report exits as natively") {
  // The hubs are not taken down at exit: exit waits for a report being
  // unwound, so that libdw's libraries are not finalized under it.
  for (int ms = 30; ms <= 126; ms += 4) {
    CAPTURE(ms);
    const run_result r = run_program({grove_run, "--monitor-ms=25", programs + "/spin", std::to_string(ms)});
    INFO(r.out);
    CHECK(r.signal == 0);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("spin: done\n") != std::string::npos);
  }
}

TEST_CASE("a bad GROVE_RESOLVER stops grove-run and a preloaded program with exit status 2 and a message") {
  const run_result by_option = run_program({grove_run, "--resolver=dnsmasq", "/bin/true"});
  CHECK(by_option.exit_code == 2);
  CHECK(by_option.out.find("GROVE_RESOLVER") != std::string::npos);
  const run_result preloaded = run_program({programs + "/sleeps"}, 
                                          {"LD_PRELOAD=" + (std::filesystem::path(grove_run).parent_path() /
                                                            "libgrove-preload.so").string(),
                                           "GROVE_RESOLVER=x"});
  CHECK(preloaded.exit_code == 2);
  CHECK(preloaded.out.find("GROVE_RESOLVER=\"x\"") != std::string::npos);
  for (const char* mode : {"auto", "ares", "thread"}) {
    CHECK(run_program({grove_run, std::string("--resolver=") + mode, "/bin/true"}).exit_code == 0);
  }
}

// The names and addresses the DNS sandbox (tests/hooks/dns_sandbox.py) answers
// from its /etc/hosts and its zone: A, AAAA, both, several to order, CNAMEs
// (one and two deep, and through the search list), a name without records
// and one that does not exist.
const std::vector<std::string> sandbox_names = {
    "localhost", "LOCALHOST", "host4",      "host4.test",  "host6.test", "dual",       "dual.test",
    "listed.test", "v4.test", "v6.test",    "both.test",   "multi.test", "multi6.test", "alias",
    "alias.test", "chain.test", "nodata.test", "nosuch.test"};

// in_sandbox is argv run by dns_sandbox.py in new network and mount
// namespaces, its resolv.conf naming `nameserver`.
std::vector<std::string> in_sandbox(const std::string& nameserver, std::vector<std::string> argv) {
  std::vector<std::string> all = {"/usr/bin/unshare", "-mn", "/usr/bin/python3", GROVE_DNS_SANDBOX, nameserver};
  all.insert(all.end(), argv.begin(), argv.end());
  return all;
}

TEST_CASE("getaddrinfo, getnameinfo and gethostby* give glibc's exact answers from /etc/hosts and a real DNS "
          "server under grove-run, and getaddrinfo starts no OS thread") {
  REQUIRE(::geteuid() == 0);  // the sandbox needs namespaces of its own (the tests run as root)
  std::vector<std::string> lookups = {programs + "/lookups"};
  lookups.insert(lookups.end(), sandbox_names.begin(), sandbox_names.end());
  std::vector<std::string> grove_lookups = {grove_run};
  grove_lookups.insert(grove_lookups.end(), lookups.begin(), lookups.end());
  const run_result native = run_program(in_sandbox("127.0.0.1", lookups));
  const run_result grove = run_program(in_sandbox("127.0.0.1", grove_lookups));
  REQUIRE(native.exit_code == 0);
  CHECK(native.out.find("canon=real.test") != std::string::npos);   // the CNAMEs were followed
  CHECK(native.out.find("EAI_NODATA") != std::string::npos);
  CHECK(native.out.find("2001:db8::7") != std::string::npos);       // DNS answered
  CHECK(grove.exit_code == 0);
  CHECK(grove.out.find("OS threads after getaddrinfo: 1\n") != std::string::npos);
  CHECK(grove.out == native.out);
}

TEST_CASE("under grove-run a DNS server that never answers or refuses gives glibc's EAI_AGAIN within its timeout") {
  REQUIRE(::geteuid() == 0);
  // 127.0.0.2: a socket that never answers; 127.0.0.3: nothing listens (refused).
  for (const char* server : {"127.0.0.2", "127.0.0.3"}) {
    CAPTURE(server);
    const std::vector<std::string> one = {programs + "/lookups", "--one", "v4.test"};
    const auto t0 = std::chrono::steady_clock::now();
    const run_result native = run_program(in_sandbox(server, one));
    const double native_s = seconds_since(t0);
    const auto t1 = std::chrono::steady_clock::now();
    std::vector<std::string> grove_one = {grove_run};
    grove_one.insert(grove_one.end(), one.begin(), one.end());
    const run_result grove = run_program(in_sandbox(server, grove_one));
    const double grove_s = seconds_since(t1);
    CHECK(native.out.find("EAI_AGAIN") != std::string::npos);
    CHECK(grove.out == native.out);
    CHECK(grove.out.find("OS threads after getaddrinfo: 1\n") != std::string::npos);
    // resolv.conf says timeout:1 attempts:1: about a second for each lookup that waits.
    CHECK(native_s < 20);
    CHECK(grove_s < 20);
  }
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
