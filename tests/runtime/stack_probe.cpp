// stack_probe — a child process for the stack tests: things that end a process
// (an overflow, a bad setting) or need a fresh one (the mapping limit).
//   stack_probe defaults        prints the default stack size and mode
//   stack_probe overflow        overflows a named greenlet's 64 KiB stack
//   stack_probe exhaust         parks guarded greenlets until the kernel refuses a guard page
//   stack_probe park N          parks N greenlets (in the default mode) and prints how many
#include <any>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <grove/greenlet.hpp>
#include <grove/stack.hpp>

namespace {

volatile bool keep_going = true;

long recurse(long n) {
  volatile char frame[512];
  frame[0] = static_cast<char>(n);
  return keep_going ? recurse(n + 1) + frame[0] : n;
}

std::size_t guard_mappings() {
  std::ifstream f("/proc/self/maps");
  std::string line;
  std::size_t n = 0;
  while (std::getline(f, line)) {
    if (line.find(" ---p ") != std::string::npos) ++n;
  }
  return n;
}

int park(std::size_t n) {
  grove::greenlet main = grove::greenlet::current();
  std::vector<grove::greenlet> parked;
  parked.reserve(n);
  try {
    for (std::size_t i = 0; i < n; ++i) {
      parked.emplace_back([&] { main.switch_to(); });
      parked.back().switch_to();
    }
  } catch (const grove::error& e) {
    std::printf("parked=%zu\nerror: %s\n", parked.size() - 1, e.what());
    std::printf("unstarted=%d\n", parked.back().started() ? 0 : 1);
    std::printf("guards=%zu\n", guard_mappings());
    return 3;
  }
  std::printf("parked=%zu\n", parked.size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "defaults") {
    std::printf("size=%zu mode=%s\n", grove::default_stack_size(),
                grove::default_stack_mode() == grove::stack_mode::guarded ? "guarded" : "dense");
    return 0;
  }
  if (cmd == "overflow") {
    grove::greenlet g([] { return std::any(recurse(0)); }, grove::greenlet::current(), 64 * 1024);
    g.set_name("deep-recursion");
    g.switch_to();
    std::printf("survived an overflow\n");
    return 0;
  }
  if (cmd == "exhaust") return park(1000000);
  if (cmd == "park" && argc > 2) return park(std::strtoul(argv[2], nullptr, 10));
  std::fprintf(stderr, "usage: stack_probe defaults|overflow|exhaust|park N\n");
  return 2;
}
