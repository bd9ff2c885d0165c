// wait_with_timeout — start tasks of different lengths, wait for them with a
// time limit, and report which are done and which are still pending.
#include <chrono>
#include <cstdio>
#include <vector>

#include <grove/grove.hpp>

using namespace std::chrono_literals;

int main() {
  std::vector<grove::task<int>> tasks;
  for (int ms : {100, 250, 400, 900, 1500}) {
    tasks.push_back(grove::spawn([ms] {
      grove::sleep(std::chrono::milliseconds(ms));
      return ms;
    }));
    tasks.back().set_name(std::to_string(ms) + " ms");
  }
  if (auto first = grove::wait_any(tasks)) std::printf("first done: %s\n", tasks[*first].name().c_str());
  const bool all = grove::joinall(tasks, 500ms);
  std::printf("after 500 ms: %s\n", all ? "all done" : "some still pending");
  for (auto& t : tasks) std::printf("  %-8s %s\n", t.name().c_str(), t.ready() ? "done" : "pending");
  for (auto& t : tasks) {
    if (!t.ready()) t.kill();  // give up on the slow ones
  }
  std::printf("pending tasks killed\n");
}
