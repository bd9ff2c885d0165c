// bench/common.hpp — timing and memory helpers shared by the benchmarks.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <fstream>
#include <functional>

namespace grove_bench {

// best_ns runs fn (which performs `ops` operations) `repeats` times and returns
// the best time per operation, in ns: the least disturbed run.
inline double best_ns(int repeats, long ops, const std::function<void()>& fn) {
  double best = 1e300;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    const auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(ops));
  }
  return best;
}

// rss_bytes is this process's resident set size.
inline std::size_t rss_bytes() {
  std::ifstream f("/proc/self/statm");
  std::size_t size = 0, resident = 0;
  f >> size >> resident;
  return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace grove_bench
