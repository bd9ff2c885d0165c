// semaphore_workers — ten workers, but a semaphore lets only three work at a time.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <vector>

#include <grove/grove.hpp>

using namespace std::chrono_literals;

int main() {
  grove::semaphore slots(3);
  int working = 0;
  int most = 0;
  std::vector<grove::task<void>> workers;
  for (int id = 1; id <= 10; ++id) {
    workers.push_back(grove::spawn([&, id] {
      std::lock_guard<grove::semaphore> hold(slots);  // waits for one of the three slots
      ++working;
      most = std::max(most, working);
      std::printf("worker %2d: working (%d at once)\n", id, working);
      grove::sleep(100ms);
      --working;
    }));
  }
  grove::joinall(workers);
  std::printf("done: never more than %d workers at once\n", most);
}
