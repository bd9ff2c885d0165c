// hub_probe — a child process for the hub tests whose subject ends or configures
// a process: the blocking monitor, the task dump on a signal, bad settings.
//   hub_probe monitor      a task spins for 1 s without blocking
//   hub_probe dump         two tasks wait; the process signals itself
//   hub_probe start        just starts the hub (for the settings checks)
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <string>

#include <grove/event.hpp>
#include <grove/sleep.hpp>
#include <grove/task.hpp>

using namespace std::chrono_literals;

// Named functions for the backtraces to show; the volatile store after each
// call keeps it from being a tail call, whose frame would not be on the stack.
volatile int after_call = 0;
[[gnu::noinline]] void spin_in_probe() {
  const auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - t0 < 1s) {
  }
  after_call = 1;
}
[[gnu::noinline]] void wait_in_probe(grove::event& e) {
  e.wait(100ms);
  after_call = 2;
}
[[gnu::noinline]] void sleep_in_probe() {
  grove::sleep(100ms);
  after_call = 3;
}

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "monitor") {
    auto hog = grove::spawn([] { spin_in_probe(); });
    hog.set_name("cpu-hog");
    hog.join();
    std::printf("done\n");
    return 0;
  }
  if (cmd == "dump") {
    grove::event never;
    auto waiter = grove::spawn([&] { wait_in_probe(never); });
    waiter.set_name("event-waiter");
    auto sleeper = grove::spawn([] { sleep_in_probe(); });
    sleeper.set_name("sleeper");
    grove::yield();
    ::raise(SIGUSR1);
    grove::sleep(20ms);
    grove::joinall(std::vector<grove::task<void>>{waiter, sleeper});
    return 0;
  }
  if (cmd == "start") {
    grove::sleep(1ms);
    std::printf("started\n");
    return 0;
  }
  std::fprintf(stderr, "usage: hub_probe monitor|dump|start\n");
  return 2;
}
