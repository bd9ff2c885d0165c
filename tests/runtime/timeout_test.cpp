// timeout_test.cpp — sleep, timeout scopes (nesting, expiry, ending) and with_timeout.
#include <chrono>
#include <stdexcept>
#include <vector>

#include <grove/event.hpp>
#include <grove/sleep.hpp>
#include <grove/task.hpp>
#include <grove/timeout.hpp>

#include "../support.hpp"

using namespace std::chrono_literals;
using grove_test::leak_check;
using grove_test::seconds_since;

TEST_CASE_FIXTURE(leak_check, "sleep blocks the task for at least its duration while others run") {
  int ticks = 0;
  auto ticker = grove::spawn([&] {
    for (int i = 0; i < 5; ++i) {
      ++ticks;
      grove::sleep(1ms);
    }
  });
  const auto t0 = std::chrono::steady_clock::now();
  grove::sleep(30ms);
  CHECK(seconds_since(t0) >= 0.030);
  CHECK(ticks == 5);
  ticker.join();
}

TEST_CASE_FIXTURE(leak_check, "tasks sleeping 1, 2, 3 and 4 units all finish in about the longest, not the sum") {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<grove::task<void>> tasks;
  for (int i = 1; i <= 4; ++i) tasks.push_back(grove::spawn([i] { grove::sleep(std::chrono::milliseconds(50 * i)); }));
  grove::joinall(tasks);
  CHECK(seconds_since(t0) >= 0.2);
  CHECK(seconds_since(t0) < 0.45);  // the sum would be 0.5 s
}

TEST_CASE_FIXTURE(leak_check, "a timeout scope throws timeout_error where the task blocks") {
  grove::event never;
  const auto t0 = std::chrono::steady_clock::now();
  grove::timeout limit(30ms);
  try {
    never.wait();
    FAIL("the wait returned");
  } catch (const grove::timeout_error& e) {
    CHECK(e.source() == &limit);
    CHECK(std::string(e.what()).find("30 ms") != std::string::npos);
  }
  CHECK(limit.expired());
  CHECK(seconds_since(t0) >= 0.029);
  CHECK(seconds_since(t0) < 1.0);
}

TEST_CASE_FIXTURE(leak_check, "nested timeout scopes: the one that fires is the one thrown, and expired() says which") {
  grove::event never;
  {
    grove::timeout outer(500ms);
    grove::timeout inner(20ms);
    CHECK_THROWS_AS(never.wait(), grove::timeout_error);
    CHECK(inner.expired());
    CHECK_FALSE(outer.expired());
  }
  {
    grove::timeout outer(20ms);
    try {
      grove::timeout inner(500ms);
      never.wait();
    } catch (const grove::timeout_error& e) {
      CHECK(e.source() == &outer);
    }
    CHECK(outer.expired());
  }
}

TEST_CASE_FIXTURE(leak_check, "a timeout scope that has ended never fires") {
  {
    grove::timeout limit(10ms);
    grove::sleep(1ms);
  }
  CHECK_NOTHROW(grove::sleep(30ms));
}

TEST_CASE_FIXTURE(leak_check, "a timeout that passes while the task is busy fires at its next blocking call") {
  grove::timeout limit(10ms);
  const auto t0 = std::chrono::steady_clock::now();
  while (seconds_since(t0) < 0.03) {
    // busy, never blocking: nothing can interrupt it (no preemption)
  }
  CHECK_FALSE(limit.expired());  // the hub has not run: nobody has seen the time pass
  // The hub sees the expiry once the task blocks, and raises it there.
  CHECK_THROWS_AS(grove::sleep(1s), grove::timeout_error);
  CHECK(limit.expired());
}

TEST_CASE_FIXTURE(leak_check, "a cancelled timeout scope does not fire") {
  grove::timeout limit(10ms);
  limit.cancel();
  CHECK_NOTHROW(grove::sleep(30ms));
  CHECK_FALSE(limit.expired());
}

TEST_CASE_FIXTURE(leak_check, "with_timeout returns the result in time, or an empty optional") {
  auto fast = grove::with_timeout(1s, [] { return 5; });
  CHECK(fast == std::optional<int>(5));
  auto slow = grove::with_timeout(10ms, [] {
    grove::sleep(1s);
    return 5;
  });
  CHECK_FALSE(slow.has_value());
  CHECK(grove::with_timeout(1s, [] {}));
  CHECK_FALSE(grove::with_timeout(10ms, [] { grove::sleep(1s); }));
}

TEST_CASE_FIXTURE(leak_check, "with_timeout lets an outer scope's timeout and other exceptions pass") {
  grove::timeout outer(10ms);
  CHECK_THROWS_AS(grove::with_timeout(1s, [] { grove::sleep(1s); }), grove::timeout_error);
  CHECK(outer.expired());
  CHECK_THROWS_AS(grove::with_timeout(1s, [] { throw std::logic_error("x"); }), std::logic_error);
}

TEST_CASE_FIXTURE(leak_check, "a timeout scope limits a get on a task, and the task runs on") {
  auto t = grove::spawn([] {
    grove::sleep(100ms);
    return 1;
  });
  {
    grove::timeout limit(10ms);
    CHECK_THROWS_AS(t.get(), grove::timeout_error);
  }
  CHECK(t.get() == 1);
}

TEST_CASE_FIXTURE(leak_check, "timeouts in different tasks are independent") {
  auto a = grove::spawn([] { return grove::with_timeout(10ms, [] { grove::sleep(1s); }); });
  auto b = grove::spawn([] { return grove::with_timeout(1s, [] { grove::sleep(20ms); }); });
  CHECK_FALSE(a.get());
  CHECK(b.get());
}
