// thread_pool_test.cpp — run_in_thread: blocking calls on the hub's thread
// pool while the hub runs on.
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <grove/sleep.hpp>
#include <grove/task.hpp>
#include <grove/thread_pool.hpp>
#include <grove/timeout.hpp>

#include "../support.hpp"

using namespace std::chrono_literals;
using grove_test::leak_check;
using grove_test::seconds_since;

TEST_CASE_FIXTURE(leak_check,
                  "run_in_thread: four 200 ms blocking calls on a pool of four threads finish in about "
                  "200 ms while another task keeps ticking") {
  grove::set_thread_pool_size(4);
  int ticks = 0;
  bool stop = false;
  auto ticker = grove::spawn([&] {
    while (!stop) {
      ++ticks;
      grove::sleep(10ms);
    }
  });
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<grove::task<std::thread::id>> calls;
  for (int i = 0; i < 4; ++i) {
    calls.push_back(grove::spawn([] {
      return grove::run_in_thread([] {
        std::this_thread::sleep_for(200ms);  // a real blocking call
        return std::this_thread::get_id();
      });
    }));
  }
  std::vector<std::thread::id> ran_on;
  for (auto& c : calls) ran_on.push_back(c.get());
  const double elapsed = seconds_since(t0);
  stop = true;
  ticker.join();
  CHECK(elapsed >= 0.2);
  CHECK(elapsed < 0.6);  // in parallel, not 0.8 s in sequence
  CHECK(ticks >= 10);    // the hub kept running its other task meanwhile
  for (auto id : ran_on) CHECK(id != std::this_thread::get_id());
  grove::set_thread_pool_size(10);
}

TEST_CASE_FIXTURE(leak_check, "run_in_thread returns the call's result and rethrows its exception in the task") {
  CHECK(grove::run_in_thread([](int a, int b) { return a * b; }, 6, 7) == 42);
  CHECK_THROWS_WITH_AS(grove::run_in_thread([] { throw std::runtime_error("from the worker thread"); }),
                       "from the worker thread", std::runtime_error);
  int side_effect = 0;
  grove::run_in_thread([&] { side_effect = 5; });
  CHECK(side_effect == 5);
}

TEST_CASE_FIXTURE(leak_check, "run_in_thread: killing the waiting task abandons the result safely") {
  auto waiting = grove::spawn([] {
    return grove::run_in_thread([] {
      std::this_thread::sleep_for(50ms);
      return std::string("nobody will read this");
    });
  });
  grove::sleep(5ms);
  CHECK(waiting.kill());
  CHECK(waiting.killed());
  grove::sleep(100ms);                                 // the worker finishes and reports to a task that is gone
  CHECK(grove::run_in_thread([] { return 1; }) == 1);  // the pool still works
}

TEST_CASE_FIXTURE(leak_check, "run_in_thread: a timeout scope ends the wait, not the call") {
  const auto t0 = std::chrono::steady_clock::now();
  {
    grove::timeout limit(10ms);
    CHECK_THROWS_AS(grove::run_in_thread([] { std::this_thread::sleep_for(100ms); }), grove::timeout_error);
  }
  CHECK(seconds_since(t0) < 0.09);
  grove::sleep(120ms);
}

TEST_CASE_FIXTURE(leak_check, "run_in_thread: more calls than threads queue up and all complete") {
  grove::set_thread_pool_size(2);
  CHECK(grove::thread_pool_size() == 2);
  std::vector<grove::task<int>> calls;
  for (int i = 0; i < 20; ++i) {
    calls.push_back(grove::spawn([i] {
      return grove::run_in_thread([i] {
        std::this_thread::sleep_for(1ms);
        return i;
      });
    }));
  }
  int sum = 0;
  for (auto& c : calls) sum += c.get();
  CHECK(sum == 190);
  CHECK_THROWS_AS(grove::set_thread_pool_size(0), grove::error);
  grove::set_thread_pool_size(10);
}

TEST_CASE_FIXTURE(leak_check, "a thread's hub with a run_in_thread call in flight does not give its waiter loop_exit") {
  // Nothing on the hub but a pending pool call: the hub must wait for it.
  CHECK_NOTHROW(grove::run_in_thread([] { std::this_thread::sleep_for(30ms); }));
}
