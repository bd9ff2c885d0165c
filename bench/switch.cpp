// bench/switch — greenlet switching, creation and memory, each beside its
// baseline measured in the same run.
//
//   switch    one-way greenlet switch (ns) vs raw boost::context::fiber resume
//   create    create + first switch + finish (greenlets/s), pooled stacks,
//             vs raw fibers on a pooled stack
//   memory    RSS per parked greenlet, 1,000,000 in dense mode
//   guarded   how many guarded greenlets park before vm.max_map_count stops them
//
// Usage: bench_switch [switch|create|memory|guarded]...   (default: all)
// Every timing is the best of several runs; ratios compare grove to its baseline.
#include <unistd.h>

#include <any>
#include <boost/context/fiber.hpp>
#include <boost/context/pooled_fixedsize_stack.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <grove/greenlet.hpp>
#include <grove/stack.hpp>

#include "common.hpp"

namespace ctx = boost::context;
using clock_type = std::chrono::steady_clock;

namespace {

using grove_bench::best_ns;
using grove_bench::rss_bytes;

void bench_switch() {
  constexpr long rounds = 5'000'000;  // round trips: 2 one-way switches each

  const double raw = best_ns(5, 2 * rounds, [] {
    ctx::fiber f{[](ctx::fiber&& main) {
      for (long i = 0; i < rounds; ++i) main = std::move(main).resume();
      return std::move(main);
    }};
    for (long i = 0; i < rounds; ++i) f = std::move(f).resume();
    f = std::move(f).resume();  // let it finish
  });

  const double green = best_ns(5, 2 * rounds, [] {
    grove::greenlet main = grove::greenlet::current();
    grove::greenlet g([&] {
      for (long i = 0; i < rounds; ++i) main.switch_to();
    });
    for (long i = 0; i < rounds; ++i) g.switch_to();
    g.switch_to();  // let it finish
  });

  const double green_value = best_ns(5, 2 * rounds, [] {
    grove::greenlet main = grove::greenlet::current();
    grove::greenlet g([&](std::any v) {
      for (long i = 0; i < rounds; ++i) v = main.switch_to(std::any_cast<long>(v) + 1);
    });
    std::any v = 0L;
    for (long i = 0; i < rounds; ++i) v = g.switch_to(std::move(v));
    g.switch_to(v);
  });

  std::printf("switch  raw fiber resume          %7.2f ns one-way\n", raw);
  std::printf("switch  greenlet switch_to()      %7.2f ns one-way   ratio %.2fx raw (target <= 2.0x)\n", green,
              green / raw);
  std::printf("switch  greenlet switch_to(long)  %7.2f ns one-way   ratio %.2fx raw\n", green_value, green_value / raw);
}

void bench_create() {
  constexpr long count = 2'000'000;

  const double raw = best_ns(5, count, [] {
    ctx::pooled_fixedsize_stack stacks(grove::default_stack_size());
    for (long i = 0; i < count; ++i) {
      ctx::fiber f{std::allocator_arg, stacks, [](ctx::fiber&& main) { return std::move(main); }};
      f = std::move(f).resume();
    }
  });

  const double green = best_ns(5, count, [] {
    for (long i = 0; i < count; ++i) {
      grove::greenlet g([] {});
      g.switch_to();
    }
  });

  std::printf("create  raw fiber, pooled stack   %7.1f ns  %6.2f M/s\n", raw, 1e3 / raw);
  std::printf("create  greenlet create+run+finish%7.1f ns  %6.2f M/s   ratio %.2fx raw (target >= 5 M/s)\n", green,
              1e3 / green, green / raw);
}

void bench_memory() {
  constexpr std::size_t count = 1'000'000;
  grove::set_default_stack_mode(grove::stack_mode::dense);
  grove::greenlet main = grove::greenlet::current();
  std::vector<grove::greenlet> parked;
  parked.reserve(count);
  const std::size_t before = rss_bytes();
  const auto t0 = clock_type::now();
  for (std::size_t i = 0; i < count; ++i) {
    parked.emplace_back([&] { main.switch_to(); });
    parked.back().switch_to();
  }
  const auto t1 = clock_type::now();
  const std::size_t after = rss_bytes();
  const double per = static_cast<double>(after - before) / static_cast<double>(count);
  std::printf(
      "memory  1,000,000 parked dense greenlets: %.0f bytes RSS each (%.2f KiB; target <= 4.5 KiB), "
      "parked in %.2f s, %zu stacks reserve %.1f GiB of address space\n",
      per, per / 1024, std::chrono::duration<double>(t1 - t0).count(), grove::stack_statistics().in_use,
      static_cast<double>(grove::stack_statistics().reserved_bytes) / (1 << 30));
  for (auto& g : parked) g.switch_to();
  parked.clear();
  grove::trim_stack_pool();
  grove::set_default_stack_mode(grove::stack_mode::guarded);
}

void bench_guarded() {
  grove::set_default_stack_mode(grove::stack_mode::guarded);
  grove::greenlet main = grove::greenlet::current();
  std::vector<grove::greenlet> parked;
  std::string why;
  try {
    for (;;) {
      parked.emplace_back([&] { main.switch_to(); });
      parked.back().switch_to();
    }
  } catch (const grove::error& e) {
    why = e.what();
  }
  std::string limit = "?";
  std::ifstream("/proc/sys/vm/max_map_count") >> limit;
  std::printf("guarded %zu guarded greenlets parked before the kernel refused (vm.max_map_count = %s)\n",
              parked.size() - 1, limit.c_str());
  std::printf("guarded refusal: %.160s...\n", why.c_str());
  for (auto& g : parked) {
    if (g) g.switch_to();
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> which(argv + 1, argv + argc);
  if (which.empty()) which = {"switch", "create", "memory", "guarded"};
  for (const auto& w : which) {
    if (w == "switch") {
      bench_switch();
    } else if (w == "create") {
      bench_create();
    } else if (w == "memory") {
      bench_memory();
    } else if (w == "guarded") {
      bench_guarded();
    } else {
      std::fprintf(stderr, "bench_switch: unknown benchmark \"%s\"; use switch, create, memory or guarded\n",
                   w.c_str());
      return 2;
    }
  }
}
