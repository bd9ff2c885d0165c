// blocking_in_thread — run_in_thread wraps a blocking call (here a plain
// std::this_thread::sleep_for, standing in for a blocking library) so the hub
// keeps running other tasks while it waits.
#include <chrono>
#include <cstdio>
#include <thread>

#include <grove/grove.hpp>

using namespace std::chrono_literals;

int main() {
  bool done = false;
  auto ticker = grove::spawn([&] {
    int tick = 0;
    while (!done) {  // done is set by main while this task sleeps
      std::printf("tick %d\n", ++tick);
      grove::sleep(100ms);
    }
  });
  auto blocking = grove::spawn([] {
    return grove::run_in_thread([] {
      std::this_thread::sleep_for(450ms);  // blocks a pool thread, not the hub
      return 1 + 1;
    });
  });
  std::printf("the blocking call returned %d, and the ticker never stopped\n", blocking.get());
  done = true;
  ticker.join();
}
