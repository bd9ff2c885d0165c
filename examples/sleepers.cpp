// sleepers — four tasks sleeping 1, 2, 3 and 4 seconds finish in about 4
// seconds, not 10: while one sleeps, the hub runs the others.
#include <chrono>
#include <cstdio>
#include <vector>

#include <grove/grove.hpp>

using namespace std::chrono_literals;

int main() {
  const auto t0 = std::chrono::steady_clock::now();
  auto since = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  std::vector<grove::task<void>> tasks;
  for (int seconds = 1; seconds <= 4; ++seconds) {
    tasks.push_back(grove::spawn([&, seconds] {
      std::printf("[%.2f s] task %d: sleeping %d s\n", since(), seconds, seconds);
      grove::sleep(std::chrono::seconds(seconds));
      std::printf("[%.2f s] task %d: awake\n", since(), seconds);
    }));
  }
  grove::joinall(tasks);
  std::printf("[%.2f s] all four done (sequentially it would take 10 s)\n", since());
}
