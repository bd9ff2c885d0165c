// hub_probe — a child process for the hub tests whose subject ends or configures
// a process: the blocking monitor, the task dump on a signal, bad settings.
//   hub_probe monitor [show-libraries]
//                          a task spins for 1 s without blocking; then the
//                          shared libraries loaded are listed
//   hub_probe dump         two tasks wait; the process signals itself
//   hub_probe start        just starts the hub (for the settings checks)
//   hub_probe exit-spinning MS
//                          main spins for MS ms and returns, perhaps while the
//                          monitor writes its report
#include <link.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
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

// show_libraries prints the path of each shared library the process has loaded.
void show_libraries() {
  ::dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void*) {
        if (info->dlpi_name != nullptr && info->dlpi_name[0] != '\0') std::printf("library %s\n", info->dlpi_name);
        return 0;
      },
      nullptr);
}

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "monitor") {
    auto hog = grove::spawn([] { spin_in_probe(); });
    hog.set_name("cpu-hog");
    hog.join();
    std::printf("done\n");
    if (argc == 3 && std::string(argv[2]) == "show-libraries") show_libraries();
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
  if (cmd == "exit-spinning" && argc == 3) {
    const auto spin = std::chrono::milliseconds(std::atoi(argv[2]));
    grove::sleep(1ms);  // the hub and its monitor are running
    const auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - t0 < spin) {
    }
    std::printf("exiting\n");
    return 0;
  }
  if (cmd == "start") {
    grove::sleep(1ms);
    std::printf("started\n");
    return 0;
  }
  std::fprintf(stderr, "usage: hub_probe monitor|dump|start|exit-spinning MS\n");
  return 2;
}
