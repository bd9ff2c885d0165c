// gdb_probe — a program with parked tasks for the gdb extension's test
// (gdb_test.cpp). Two hubs: main's, with a sleeping task, a task waiting on an
// event and one not started; and a second thread's, with a task waiting on an
// event. Then main calls grove_gdb_probe_ready, where gdb stops it.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include <grove/event.hpp>
#include <grove/sleep.hpp>
#include <grove/task.hpp>

using namespace std::chrono_literals;

// The volatile store after each call keeps it from being a tail call, whose
// frame would not be on the stack.
volatile int after_call = 0;
[[gnu::noinline]] void sleep_in_gdb_probe() {
  grove::sleep(60s);
  after_call = 1;
}
[[gnu::noinline]] void wait_in_gdb_probe(grove::event& e) {
  e.wait(60s);
  after_call = 2;
}
[[gnu::noinline]] void wait_on_other_thread(grove::event& e, std::atomic<bool>& parked) {
  parked = true;
  e.wait(60s);
  after_call = 3;
}
extern "C" [[gnu::noinline]] void grove_gdb_probe_ready() { after_call = 4; }

int main() {
  grove::event never;
  grove::event other_never;
  std::atomic<bool> other_parked{false};
  std::thread other([&] {
    auto t = grove::spawn([&] { wait_on_other_thread(other_never, other_parked); });
    t.set_name("other-thread-waiter");
    t.join();
  });
  auto sleeper = grove::spawn([] { sleep_in_gdb_probe(); });
  sleeper.set_name("sleeper");
  auto waiter = grove::spawn([&] { wait_in_gdb_probe(never); });
  waiter.set_name("waiter");
  grove::sleep(1ms);  // both park
  auto unborn = grove::spawn([] {});
  unborn.set_name("unborn");
  while (!other_parked) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(50ms);  // from flag to parked
  grove_gdb_probe_ready();
  std::puts("gdb_probe: not stopped by a debugger, finishing");
  never.set();
  sleeper.kill();
  grove::joinall(std::vector<grove::task<void>>{waiter, unborn});
  other_never.set();
  other.join();
  return 0;
}
