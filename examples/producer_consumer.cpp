// producer_consumer — a producer fills a bounded queue (maxsize 2) that two
// consumers drain. put blocks while the queue is full: backpressure, with no
// thread and no lock in sight.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <grove/grove.hpp>
#include <grove/queue.hpp>

using namespace std::chrono_literals;

int main() {
  grove::queue<int> jobs(2);
  constexpr int count = 8;
  auto producer = grove::spawn([&] {
    for (int i = 1; i <= count; ++i) {
      std::printf("producer: putting job %d (queue holds %zu)\n", i, jobs.size());
      jobs.put(i);  // blocks while two jobs are waiting
    }
    std::printf("producer: all %d jobs queued\n", count);
  });
  auto consumer = [&](std::string name) {
    for (;;) {
      const auto job = jobs.get(200ms);
      if (!job) break;  // no work for a while: done
      std::printf("  %s: working on job %d\n", name.c_str(), *job);
      grove::sleep(50ms);
      jobs.task_done();
    }
  };
  auto a = grove::spawn(consumer, "consumer A");
  auto b = grove::spawn(consumer, "consumer B");
  producer.join();
  jobs.join();  // every job has been marked done
  std::printf("all jobs done\n");
  grove::joinall(std::vector<grove::task<void>>{a, b});
}
