// Ctrl-C in a real program: CPython runs its signal handlers (and raises
// KeyboardInterrupt) only when the blocking call a signal interrupted returns
// EINTR. Under grove-run its blocking calls wait on the hub, so SIGINT must
// still cut them short: in time.sleep, socket.recv, a lock's acquire and a
// join, whether another process sends it or a thread of the program does.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../runtime/io_support.hpp"
#include "../support.hpp"

using namespace grove_test;
using namespace std::chrono_literals;

namespace {

const std::string grove_run = GROVE_RUN;
const std::string python = "/usr/bin/python3";

// Blocks in the way argv[1] names, until SIGINT arrives from `sender`: a
// shell (another process) or a threading.Timer of its own (kill from a
// thread). "uncaught" lets KeyboardInterrupt end the process.
constexpr const char* interrupted_script = R"(import os, signal, socket, subprocess, sys, threading, time
how, sender = sys.argv[1], sys.argv[2]
if sender == "process":
    killer = subprocess.Popen(["/bin/sh", "-c", "sleep 0.5; kill -INT %d" % os.getpid()])
else:
    killer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    killer.start()
t0 = time.monotonic()
try:
    if how == "sleep" or how == "uncaught":
        time.sleep(30)
    elif how == "recv":
        a, b = socket.socketpair()
        a.recv(1)
    elif how == "lock":
        lock = threading.Lock()
        lock.acquire()
        lock.acquire(timeout=30)
    elif how == "join":
        t = threading.Thread(target=time.sleep, args=(3,), daemon=True)
        t.start()
        t.join()
    print(how, "returned")
except KeyboardInterrupt:
    if how == "uncaught":
        raise
    print(how, "KeyboardInterrupt, in time:", time.monotonic() - t0 < 10)
killer.wait() if sender == "process" else killer.join()
)";

}  // namespace

TEST_CASE(
    "SIGINT raises KeyboardInterrupt in a Python program blocked in sleep, recv, a lock or a join, natively and "
    "under grove-run") {
  REQUIRE(std::filesystem::exists(python));
  temp_dir dir;
  const std::string script = dir.path() + "/interrupted.py";
  std::ofstream(script) << interrupted_script;
  for (const char* how : {"sleep", "recv", "lock", "join", "uncaught"}) {
    for (const char* sender : {"process", "thread"}) {
      CAPTURE(how);
      CAPTURE(sender);
      const std::vector<std::string> argv = {python, "-I", script, how, sender};
      const limited_result native = run_limited(argv, 60s);
      std::vector<std::string> under = {grove_run};
      under.insert(under.end(), argv.begin(), argv.end());
      const limited_result grove = run_limited(under, 60s);
      CHECK_FALSE(native.timed_out);
      CHECK_FALSE(grove.timed_out);
      CHECK(grove.out == native.out);
      CHECK(grove.exit_code == native.exit_code);
      CHECK(grove.signal == native.signal);
      if (std::string(how) == "uncaught") {
        CHECK(native.signal == SIGINT);  // Python re-raises an unhandled KeyboardInterrupt's SIGINT
      } else if (std::string(how) != "join") {
        CHECK(native.out == std::string(how) + " KeyboardInterrupt, in time: True\n");
      }
    }
  }
}
