// stack_test.cpp — greenlet stacks: lazy commit, pooling, guard pages, dense
// mode, overflow reports and the GROVE_STACK_* settings.
#include <any>
#include <cstdint>
#include <string>
#include <vector>

#include <grove/greenlet.hpp>
#include <grove/stack.hpp>

#include "../support.hpp"

using grove::greenlet;
using grove_test::leak_check;
using grove_test::run_program;

namespace {

const std::string probe = GROVE_STACK_PROBE;

std::uintptr_t stack_address_of_a_new_greenlet() {
  greenlet g([] {
    int local = 0;
    return std::any(reinterpret_cast<std::uintptr_t>(&local));
  });
  return std::any_cast<std::uintptr_t>(g.switch_to());
}

}  // namespace

TEST_CASE_FIXTURE(leak_check,
                  "stacks are lazily committed: a parked greenlet costs the pages it touched, not its "
                  "reserved size") {
  constexpr std::size_t count = 200;
  constexpr std::size_t stack = 8 * 1024 * 1024;  // 1.6 GiB reserved in all
  greenlet main = greenlet::current();
  const std::size_t rss_before = grove_test::rss_bytes();
  const std::size_t reserved_before = grove::stack_statistics().reserved_bytes;
  const std::size_t in_use_before = grove::stack_statistics().in_use;
  std::vector<greenlet> parked;
  for (std::size_t i = 0; i < count; ++i) {
    parked.emplace_back([&] { main.switch_to(); }, main, stack);
    parked.back().switch_to();
  }
  const std::size_t reserved = grove::stack_statistics().reserved_bytes - reserved_before;
  const std::size_t rss_after = grove_test::rss_bytes();
  const std::size_t grown = rss_after > rss_before ? rss_after - rss_before : 0;  // it may shrink meanwhile
  CHECK(reserved >= count * stack);
  CHECK(grown < reserved / 16);  // a few touched pages each, not 8 MiB each
  CHECK(grove::stack_statistics().in_use == in_use_before + count);
  for (auto& g : parked) g.switch_to();
}

TEST_CASE_FIXTURE(leak_check, "a finished greenlet's stack goes back to the pool and is reused") {
  grove::trim_stack_pool();
  const std::size_t in_use_before = grove::stack_statistics().in_use;
  const std::uintptr_t first = stack_address_of_a_new_greenlet();
  const auto stats = grove::stack_statistics();
  CHECK(stats.in_use == in_use_before);
  CHECK(stats.pooled >= 1);
  const std::uintptr_t second = stack_address_of_a_new_greenlet();
  CHECK(first == second);  // same stack, same frame position
  grove::trim_stack_pool();
}

TEST_CASE_FIXTURE(leak_check, "set_default_stack_size applies to greenlets started later and rejects bad sizes") {
  const std::size_t before = grove::default_stack_size();
  grove::set_default_stack_size(100 * 1024 + 1);
  CHECK(grove::default_stack_size() == 26 * 4096);  // rounded up to whole pages
  greenlet g([] {});
  CHECK(g.stack_size() == grove::default_stack_size());
  g.switch_to();
  CHECK_THROWS_AS(grove::set_default_stack_size(4096), grove::error);
  CHECK_THROWS_AS(grove::set_default_stack_size(std::size_t{2} << 30), grove::error);
  grove::set_default_stack_size(before);
  CHECK(grove::default_stack_size() == before);
}

TEST_CASE_FIXTURE(leak_check, "GROVE_STACK_SIZE and GROVE_STACK_MODE set the defaults") {
  auto r = run_program({probe, "defaults"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "size=262144 mode=guarded\n");
  r = run_program({probe, "defaults"}, {"GROVE_STACK_SIZE=1M", "GROVE_STACK_MODE=dense"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "size=1048576 mode=dense\n");
  r = run_program({probe, "defaults"}, {"GROVE_STACK_SIZE=70000"});
  CHECK(r.out == "size=73728 mode=guarded\n");  // rounded up to whole pages
}

TEST_CASE_FIXTURE(leak_check, "a bad GROVE_STACK_SIZE or GROVE_STACK_MODE is a clear message and exit status 2") {
  auto r = run_program({probe, "defaults"}, {"GROVE_STACK_SIZE=lots"});
  CHECK(r.exit_code == 2);
  CHECK(r.out.find("GROVE_STACK_SIZE=\"lots\": not a size") != std::string::npos);
  r = run_program({probe, "defaults"}, {"GROVE_STACK_SIZE=1K"});
  CHECK(r.exit_code == 2);
  CHECK(r.out.find("out of range") != std::string::npos);
  r = run_program({probe, "defaults"}, {"GROVE_STACK_SIZE=64Q"});
  CHECK(r.exit_code == 2);
  r = run_program({probe, "defaults"}, {"GROVE_STACK_MODE=sparse"});
  CHECK(r.exit_code == 2);
  CHECK(r.out.find("GROVE_STACK_MODE=\"sparse\": unknown mode") != std::string::npos);
}

TEST_CASE_FIXTURE(leak_check,
                  "an overflow into the guard page ends the process with a message naming the greenlet "
                  "and its stack size") {
  const auto r = run_program({probe, "overflow"});
  CHECK(r.signal == SIGSEGV);
  CHECK(r.out.find("grove: stack overflow in greenlet \"deep-recursion\"") != std::string::npos);
  CHECK(r.out.find("65536 bytes") != std::string::npos);
  CHECK(r.out.find("survived") == std::string::npos);
}

TEST_CASE_FIXTURE(leak_check,
                  "when the kernel refuses a guard page grove throws grove::error and never hands out "
                  "an unguarded stack") {
  const auto r = run_program({probe, "exhaust"});
  INFO(r.out);
  CHECK(r.exit_code == 3);
  CHECK(r.out.find("error: grove: cannot") != std::string::npos);
  CHECK(r.out.find("vm.max_map_count") != std::string::npos);
  CHECK(r.out.find("unstarted=1") != std::string::npos);  // the greenlet that got no stack never ran
  std::size_t parked = 0, guards = 0;
  std::sscanf(r.out.c_str() + r.out.find("parked="), "parked=%zu", &parked);
  std::sscanf(r.out.c_str() + r.out.find("guards="), "guards=%zu", &guards);
  CHECK(parked > 10000);
  CHECK(guards >= parked);  // every stack handed out has its guard page
}

TEST_CASE_FIXTURE(leak_check, "dense mode parks more greenlets than guard pages would allow") {
  const auto r = run_program({probe, "park", "100000"}, {"GROVE_STACK_MODE=dense"});
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "parked=100000\n");
}

TEST_CASE_FIXTURE(leak_check, "set_default_stack_mode switches new stacks to dense and back") {
  grove::set_default_stack_mode(grove::stack_mode::dense);
  const std::size_t maps_before = grove_test::mapping_count();
  {
    greenlet main = greenlet::current();
    std::vector<greenlet> parked;
    for (int i = 0; i < 256; ++i) {
      parked.emplace_back([&] { main.switch_to(); });
      parked.back().switch_to();
    }
    // 256 guarded stacks would add 512 mappings; dense ones come in a few slabs.
    CHECK(grove_test::mapping_count() < maps_before + 64);
    for (auto& g : parked) g.switch_to();
  }
  grove::set_default_stack_mode(grove::stack_mode::guarded);
  CHECK(grove::default_stack_mode() == grove::stack_mode::guarded);
}
