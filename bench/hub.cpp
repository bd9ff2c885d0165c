// bench/hub — the hub's costs, each beside a baseline measured in the same run.
//
//   yield     two tasks yielding to each other: ns per task switch, beside a raw
//             greenlet switch_to ping-pong
//   spawn     spawn + run + join of trivial tasks: ns per task, beside a raw
//             greenlet create + switch + finish
//   sleepers  1,000,000 tasks sleeping a random 0-1 s (dense stacks): how late
//             each wakes, and RSS per task
//   mutex     two tasks handing a grove::mutex back and forth: ns per lock+unlock
//   queue     two tasks ping-ponging items through two grove::queue: ns per put+get
//
// Usage: bench_hub [yield|spawn|sleepers|mutex|queue]...   (default: all)
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include <grove/grove.hpp>

#include <grove/queue.hpp>
#include "common.hpp"

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

using grove_bench::best_ns;
using grove_bench::rss_bytes;

double raw_switch_ns(long rounds) {
  return best_ns(5, 2 * rounds, [rounds] {
    grove::greenlet main = grove::greenlet::current();
    grove::greenlet g([&] {
      for (long i = 0; i < rounds; ++i) main.switch_to();
    });
    for (long i = 0; i < rounds; ++i) g.switch_to();
    g.switch_to();
  });
}

void bench_yield() {
  constexpr long rounds = 2'000'000;
  const double raw = raw_switch_ns(rounds);
  const double yield_ns = best_ns(5, 2 * rounds, [] {
    auto yielder = [] {
      for (long i = 0; i < rounds; ++i) grove::yield();
    };
    auto a = grove::spawn(yielder);
    auto b = grove::spawn(yielder);
    a.join();
    b.join();
  });
  std::printf("yield    raw greenlet switch_to           %7.2f ns\n", raw);
  std::printf("yield    task yield ping-pong             %7.2f ns per switch   ratio %.2fx raw (target <= 25 ns)\n",
              yield_ns, yield_ns / raw);
}

void bench_spawn() {
  constexpr long count = 1'000'000;
  const double raw = best_ns(5, count, [] {
    for (long i = 0; i < count; ++i) {
      grove::greenlet g([] {});
      g.switch_to();
    }
  });
  const double spawn_ns = best_ns(5, count, [] {
    constexpr long batch = 1000;  // like a WaitGroup over a batch of goroutines
    std::vector<grove::task<void>> tasks;
    tasks.reserve(batch);
    for (long done = 0; done < count; done += batch) {
      for (long i = 0; i < batch; ++i) tasks.push_back(grove::spawn([] {}));
      grove::joinall(tasks);
      tasks.clear();
    }
  });
  std::printf("spawn    raw greenlet create+run+finish   %7.1f ns\n", raw);
  std::printf("spawn    task spawn+run+join              %7.1f ns per task   ratio %.2fx raw (target <= 200 ns)\n",
              spawn_ns, spawn_ns / raw);
}

void bench_sleepers(std::size_t stack_kib) {
  constexpr std::size_t count = 1'000'000;
  grove::set_default_stack_mode(grove::stack_mode::dense);
  const std::size_t stack_before = grove::default_stack_size();
  grove::set_default_stack_size(stack_kib * 1024);
  std::mt19937 rng(42);
  // Microseconds, so that (almost) no task draws a zero sleep, which is a yield.
  std::uniform_int_distribution<int> us(1, 1'000'000);
  std::vector<int> sleep_us(count);
  for (auto& u : sleep_us) u = us(rng);
  std::vector<double> late_ms(count);
  grove::event gate;
  std::vector<grove::task<void>> tasks;
  tasks.reserve(count);
  const std::size_t rss_before = rss_bytes();
  const auto t0 = clock_type::now();
  for (std::size_t i = 0; i < count; ++i) {
    tasks.push_back(grove::spawn([&gate, d = sleep_us[i], &late = late_ms[i]] {
      gate.wait();  // every task is alive before any sleeps
      const auto deadline = clock_type::now() + std::chrono::microseconds(d);
      grove::sleep(deadline - clock_type::now());
      late = std::chrono::duration<double, std::milli>(clock_type::now() - deadline).count();
    }));
  }
  grove::yield();  // all start, and park on the gate
  const double start_s = std::chrono::duration<double>(clock_type::now() - t0).count();
  const std::size_t rss_all = rss_bytes();
  const auto sleep_start = clock_type::now();
  gate.set();
  grove::joinall(tasks);
  const double sleep_s = std::chrono::duration<double>(clock_type::now() - sleep_start).count();
  std::sort(late_ms.begin(), late_ms.end());
  const double per_task = static_cast<double>(rss_all - rss_before) / static_cast<double>(count);
  std::printf(
      "sleepers 1,000,000 tasks alive at once, %zu KiB dense stacks: %.0f bytes RSS per task (%.2f KiB, target <= 5 "
      "KiB), started in "
      "%.2f s\n"
      "sleepers then each sleeps a random 0-1 s: all woke, in %.2f s; lateness p50 %.2f ms, p99 %.2f ms, p99.9 %.2f "
      "ms, max %.2f ms (target: all within 50 ms)\n",
      stack_kib, per_task, per_task / 1024, start_s, sleep_s, late_ms[count / 2], late_ms[count * 99 / 100],
      late_ms[count * 999 / 1000], late_ms.back());
  tasks.clear();
  grove::trim_stack_pool();
  grove::set_default_stack_mode(grove::stack_mode::guarded);
  grove::set_default_stack_size(stack_before);
}

void bench_mutex() {
  constexpr long rounds = 1'000'000;
  const double raw = raw_switch_ns(rounds);
  const double handoff = best_ns(5, 2 * rounds, [] {
    grove::mutex m;
    auto worker = [&] {
      for (long i = 0; i < rounds; ++i) {
        std::lock_guard<grove::mutex> hold(m);
        grove::yield();  // the other task queues on the mutex meanwhile: every unlock hands it over
      }
    };
    auto a = grove::spawn(worker);
    auto b = grove::spawn(worker);
    a.join();
    b.join();
  });
  std::printf("mutex    contended lock+unlock hand-off   %7.1f ns per lock   (raw switch %.2f ns)\n", handoff, raw);
}

void bench_queue() {
  constexpr long rounds = 1'000'000;
  const double ping = best_ns(5, 2 * rounds, [] {
    grove::queue<long> there, back;
    auto pinger = grove::spawn([&] {
      for (long i = 0; i < rounds; ++i) {
        there.put(i);
        back.get();
      }
    });
    auto ponger = grove::spawn([&] {
      for (long i = 0; i < rounds; ++i) back.put(there.get());
    });
    pinger.join();
    ponger.join();
  });
  std::printf("queue    put/get ping-pong between tasks  %7.1f ns per put+get\n", ping);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> which(argv + 1, argv + argc);
  if (which.empty()) which = {"yield", "spawn", "mutex", "queue", "sleepers"};
  for (const auto& w : which) {
    if (w == "yield") {
      bench_yield();
    } else if (w == "spawn") {
      bench_spawn();
    } else if (w == "sleepers") {
      bench_sleepers(256);
    } else if (w == "sleepers32") {
      bench_sleepers(32);
    } else if (w == "mutex") {
      bench_mutex();
    } else if (w == "queue") {
      bench_queue();
    } else {
      std::fprintf(stderr, "bench_hub: unknown benchmark \"%s\"; use yield, spawn, sleepers, mutex or queue\n",
                   w.c_str());
      return 2;
    }
  }
}
