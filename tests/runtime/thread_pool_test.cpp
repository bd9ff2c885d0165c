// thread_pool_test.cpp — run_in_thread: blocking calls on the hub's thread
// pool while the hub runs on.
#include <unistd.h>

#include <atomic>
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

namespace {

// drain_pool lets the pool's idle threads exit (after a short idle timeout) and
// waits until they have, so a case starts from a pool without threads.
void drain_pool() {
  grove::set_thread_pool_idle_timeout(20ms);
  const auto t0 = std::chrono::steady_clock::now();
  while (grove::thread_pool_threads() != 0 && seconds_since(t0) < 5) grove::sleep(5ms);
  REQUIRE(grove::thread_pool_threads() == 0);
  grove::sleep(20ms);  // a thread that has left the count has returned from its function by now
}

}  // namespace

TEST_CASE_FIXTURE(leak_check, "thread pool: overlapping calls start only as many OS threads as overlap") {
  grove::set_thread_pool_size(10);
  drain_pool();
  grove::set_thread_pool_idle_timeout(5s);
  const int before = grove_test::os_threads(::getpid());
  // One call at a time, many times: one thread does them all.
  for (int i = 0; i < 20; ++i) grove::run_in_thread([] {});
  CHECK(grove::thread_pool_threads() == 1);
  CHECK(grove_test::os_threads(::getpid()) == before + 1);
  // Three at once: three threads, not the pool's ten.
  std::vector<grove::task<void>> calls;
  for (int i = 0; i < 3; ++i) {
    calls.push_back(grove::spawn([] { grove::run_in_thread([] { std::this_thread::sleep_for(100ms); }); }));
  }
  grove::sleep(50ms);
  CHECK(grove::thread_pool_threads() == 3);
  CHECK(grove_test::os_threads(::getpid()) == before + 3);
  for (auto& c : calls) c.get();
  CHECK(grove::thread_pool_threads() == 3);  // kept while they are not yet idle long
  CHECK_THROWS_AS(grove::set_thread_pool_idle_timeout(0s), grove::error);
}

TEST_CASE_FIXTURE(leak_check, "thread pool: idle threads exit after the idle timeout and calls start them again") {
  grove::set_thread_pool_size(10);
  drain_pool();
  const int before = grove_test::os_threads(::getpid());
  grove::set_thread_pool_idle_timeout(200ms);
  std::vector<grove::task<void>> calls;
  for (int i = 0; i < 4; ++i) {
    calls.push_back(grove::spawn([] { grove::run_in_thread([] { std::this_thread::sleep_for(50ms); }); }));
  }
  for (auto& c : calls) c.get();
  CHECK(grove::thread_pool_threads() == 4);
  CHECK(grove_test::os_threads(::getpid()) == before + 4);
  grove::sleep(60ms);  // idle, but not for long: still there
  CHECK(grove::thread_pool_threads() == 4);
  const auto t0 = std::chrono::steady_clock::now();
  while (grove_test::os_threads(::getpid()) > before && seconds_since(t0) < 5) grove::sleep(10ms);
  CHECK(grove::thread_pool_threads() == 0);
  CHECK(grove_test::os_threads(::getpid()) == before);
  CHECK(seconds_since(t0) > 0.05);
  CHECK(grove::run_in_thread([] { return 7; }) == 7);  // a new call starts a thread again
  CHECK(grove::thread_pool_threads() == 1);
  grove::set_thread_pool_idle_timeout(5s);
}

TEST_CASE_FIXTURE(leak_check, "thread pool: no call is lost or run twice while its threads idle out") {
  grove::set_thread_pool_size(4);
  // Threads idle out after 1 ms, so they keep exiting while calls arrive.
  grove::set_thread_pool_idle_timeout(1ms);
  constexpr int calls_total = 600;
  std::vector<std::atomic<int>> runs(calls_total);
  std::vector<grove::task<void>> calls;
  for (int i = 0; i < calls_total; ++i) {
    calls.push_back(grove::spawn([&runs, i] {
      grove::sleep(std::chrono::microseconds((i * 37) % 3000));  // arrivals spread over idle gaps
      grove::run_in_thread([&runs, i] { runs[static_cast<std::size_t>(i)].fetch_add(1); });
    }));
  }
  for (auto& c : calls) c.get();
  int wrong = 0;
  for (auto& r : runs) wrong += r.load() != 1;
  CHECK(wrong == 0);
  CHECK(grove::thread_pool_threads() <= 4);
  drain_pool();
  grove::set_thread_pool_idle_timeout(5s);
  grove::set_thread_pool_size(10);
}
