// task_test.cpp — tasks on the hub: spawn, get, join, kill, link, names,
// spawn_later, joinall, wait_any, and reports of unobserved failures.
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <grove/event.hpp>
#include <grove/sleep.hpp>
#include <grove/task.hpp>
#include <grove/timeout.hpp>

#include "../support.hpp"

using namespace std::chrono_literals;
using grove_test::guard;
using grove_test::leak_check;
using grove_test::seconds_since;

TEST_CASE_FIXTURE(leak_check, "spawn only schedules: tasks start in spawn order once the spawner blocks") {
  std::vector<int> order;
  auto a = grove::spawn([&] { order.push_back(1); });
  auto b = grove::spawn([&] { order.push_back(2); });
  auto c = grove::spawn([&] { order.push_back(3); });
  CHECK(order.empty());
  CHECK_FALSE(a.started());
  grove::yield();
  CHECK(order == std::vector<int>{1, 2, 3});
  CHECK(a.ready());
  CHECK(b.ready());
  CHECK(c.ready());
}

TEST_CASE_FIXTURE(leak_check, "get waits cooperatively and returns the task's result") {
  auto t = grove::spawn(
      [](int x) {
        grove::sleep(10ms);
        return 2 * x;
      },
      21);
  CHECK_FALSE(t.ready());
  CHECK(t.get() == 42);
  CHECK(t.ready());
  CHECK(t.successful());
  CHECK(t.get() == 42);  // again: the stored result
}

TEST_CASE_FIXTURE(leak_check, "get rethrows the exception the task died of") {
  auto t = grove::spawn([]() -> int { throw std::invalid_argument("bad input"); });
  CHECK_THROWS_WITH_AS(t.get(), "bad input", std::invalid_argument);
  CHECK(t.ready());
  CHECK_FALSE(t.successful());
  REQUIRE(t.exception() != nullptr);
  CHECK_THROWS_AS(std::rethrow_exception(t.exception()), std::invalid_argument);
}

TEST_CASE_FIXTURE(leak_check, "get with a limit returns an empty optional while the task runs on") {
  auto t = grove::spawn([] {
    grove::sleep(200ms);
    return std::string("late");
  });
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_FALSE(t.get(20ms).has_value());
  CHECK(seconds_since(t0) >= 0.019);
  CHECK(seconds_since(t0) < 0.150);
  CHECK(t.get(5s) == std::optional<std::string>("late"));
  auto v = grove::spawn([] { grove::sleep(200ms); });
  CHECK_FALSE(v.get(10ms));
  CHECK(v.get(5s));
}

TEST_CASE_FIXTURE(leak_check, "join with a limit returns false, then true once the task finishes") {
  auto t = grove::spawn([] { grove::sleep(50ms); });
  CHECK_FALSE(t.join(5ms));
  CHECK(t.join(5s));
  CHECK(t.ready());
  t.join();  // already done: returns at once
}

TEST_CASE_FIXTURE(leak_check,
                  "kill raises greenlet_exit at the task's blocking point, runs its RAII and waits until "
                  "it is dead") {
  int destroyed = 0;
  bool saw_exit = false;
  auto t = grove::spawn([&] {
    guard on_stack(&destroyed);
    try {
      grove::sleep(10s);
    } catch (const grove::greenlet_exit&) {
      saw_exit = true;
      throw;
    }
  });
  grove::yield();  // let it start and block
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(t.kill());
  CHECK(seconds_since(t0) < 1.0);
  CHECK(saw_exit);
  CHECK(destroyed == 1);
  CHECK(t.ready());
  CHECK(t.killed());
  CHECK(t.successful());  // as in gevent, a kill is not a failure
  CHECK(t.exception() == nullptr);
}

TEST_CASE_FIXTURE(leak_check,
                  "get on a task killed with greenlet_exit throws greenlet_exit for a value, returns for "
                  "void") {
  auto v = grove::spawn([] { grove::sleep(10s); });
  auto i = grove::spawn([] {
    grove::sleep(10s);
    return 1;
  });
  grove::yield();
  v.kill();
  i.kill();
  CHECK_NOTHROW(v.get());
  CHECK_THROWS_AS(i.get(), grove::greenlet_exit);
}

TEST_CASE_FIXTURE(leak_check, "kill with a given exception makes the task die of it") {
  auto t = grove::spawn([] {
    grove::sleep(10s);
    return 0;
  });
  grove::yield();
  CHECK(t.kill(std::make_exception_ptr(std::runtime_error("stop now"))));
  CHECK_FALSE(t.successful());
  CHECK_THROWS_WITH_AS(t.get(), "stop now", std::runtime_error);
}

TEST_CASE_FIXTURE(leak_check, "a task that never started never runs when killed") {
  bool ran = false;
  auto t = grove::spawn([&] { ran = true; });
  CHECK(t.kill());
  grove::yield();
  grove::sleep(1ms);
  CHECK_FALSE(ran);
  CHECK_FALSE(t.started());
  CHECK(t.ready());
  CHECK(t.killed());
  auto later = grove::spawn_later(1ms, [&] { ran = true; });
  CHECK(later.kill());
  grove::sleep(20ms);
  CHECK_FALSE(ran);
}

TEST_CASE_FIXTURE(leak_check, "kill with a limit returns false while the task refuses to die, and true once it does") {
  grove::event let_go;
  auto t = grove::spawn([&] {
    try {
      grove::sleep(10s);
    } catch (const grove::greenlet_exit&) {
      let_go.wait();  // refuses to die until let go
    }
  });
  grove::yield();
  CHECK_FALSE(t.kill(20ms));
  CHECK_FALSE(t.ready());
  let_go.set();
  CHECK(t.join(5s));
}

TEST_CASE_FIXTURE(leak_check, "killing the current task throws the exception at once") {
  std::optional<grove::task<void>> self;
  bool after = false;
  self = grove::spawn([&] {
    self->kill();
    after = true;
  });
  self->join();
  CHECK_FALSE(after);
  CHECK(self->killed());
}

TEST_CASE_FIXTURE(leak_check, "link callbacks run after the task has finished, in the order they were added") {
  std::vector<std::string> seen;
  auto t = grove::spawn([] {
    grove::sleep(1ms);
    return 7;
  });
  t.link([&](grove::task<int>& done) { seen.push_back("first:" + std::to_string(done.get())); });
  t.link(
      [&](grove::task<int>& done) { seen.push_back(std::string("second:") + (done.ready() ? "ready" : "not ready")); });
  t.join();
  grove::sleep(1ms);  // links run in a task of their own
  CHECK(seen == std::vector<std::string>{"first:7", "second:ready"});
  t.link([&](grove::task<int>&) { seen.push_back("late"); });
  grove::sleep(1ms);
  CHECK(seen.back() == "late");
}

TEST_CASE_FIXTURE(leak_check, "spawn_later starts the task no sooner than its delay") {
  const auto t0 = std::chrono::steady_clock::now();
  auto t = grove::spawn_later(50ms, [&] { return seconds_since(t0); });
  grove::yield();
  CHECK_FALSE(t.started());
  const double started_after = t.get();
  CHECK(started_after >= 0.049);
  CHECK(started_after < 1.0);
}

TEST_CASE_FIXTURE(leak_check, "joinall waits for every task, and with a limit reports false when some run on") {
  std::vector<grove::task<int>> tasks;
  for (int i = 1; i <= 5; ++i) {
    tasks.push_back(grove::spawn(
        [](int n) {
          grove::sleep(std::chrono::milliseconds(5 * n));
          return n;
        },
        i));
  }
  CHECK(grove::joinall(tasks));
  for (auto& t : tasks) CHECK(t.ready());
  std::vector<grove::task<void>> slow{grove::spawn([] { grove::sleep(200ms); }), grove::spawn([] {})};
  CHECK_FALSE(grove::joinall(slow, 20ms));
  CHECK(slow[1].ready());
  CHECK_FALSE(slow[0].ready());
  CHECK(grove::joinall(slow, 5s));
}

TEST_CASE_FIXTURE(leak_check, "wait_any returns the index of the first finished task, or nothing on timeout") {
  std::vector<grove::task<void>> tasks{grove::spawn([] { grove::sleep(100ms); }),
                                       grove::spawn([] { grove::sleep(10ms); }),
                                       grove::spawn([] { grove::sleep(200ms); })};
  CHECK(grove::wait_any(tasks, 1ms) == std::nullopt);
  CHECK(grove::wait_any(tasks) == std::optional<std::size_t>(1));
  CHECK(grove::wait_any(tasks) == std::optional<std::size_t>(1));  // still done
  grove::joinall(tasks);
}

TEST_CASE_FIXTURE(leak_check, "a task that dies of an exception nobody waits for is reported with its name and what") {
  grove_test::stderr_capture err;
  {
    auto t = grove::spawn([] { throw std::runtime_error("nobody listens"); });
    t.set_name("lonely");
  }
  grove::sleep(1ms);
  auto watched = grove::spawn([] { throw std::runtime_error("somebody listens"); });
  CHECK_THROWS(watched.get());
  const std::string out = err.text();
  CHECK(out.find("task \"lonely\" died of an exception nobody waited for: nobody listens") != std::string::npos);
  CHECK(out.find("somebody listens") == std::string::npos);
}

TEST_CASE_FIXTURE(leak_check, "tasks are named task-N by default and can be renamed") {
  auto t = grove::spawn([] {});
  CHECK(t.name().rfind("task-", 0) == 0);
  t.set_name("worker");
  CHECK(t.name() == "worker");
  t.join();
}

TEST_CASE_FIXTURE(leak_check, "spawn takes arguments by value, including move-only ones") {
  auto p = std::make_unique<int>(5);
  std::string s = "copy";
  auto t = grove::spawn([](std::unique_ptr<int> q, std::string str) { return *q + static_cast<int>(str.size()); },
                        std::move(p), s);
  s = "changed";
  CHECK(t.get() == 9);
}

TEST_CASE_FIXTURE(leak_check, "a plain thread's main greenlet blocks on its own hub, so spawn then get is a program") {
  int result = 0;
  std::thread([&] { result = grove::spawn([] { return 6 * 7; }).get(); }).join();
  CHECK(result == 42);
}

TEST_CASE_FIXTURE(leak_check, "ten thousand tasks spawned and joined leave nothing behind") {
  std::vector<grove::task<int>> tasks;
  tasks.reserve(10000);
  for (int i = 0; i < 10000; ++i) tasks.push_back(grove::spawn([i] { return i; }));
  long sum = 0;
  for (auto& t : tasks) sum += t.get();
  CHECK(sum == 10000L * 9999 / 2);
}

TEST_CASE_FIXTURE(leak_check, "wait_any does not count as looking at the tasks it did not return") {
  grove_test::stderr_capture err;
  {
    std::vector<grove::task<void>> tasks;
    tasks.push_back(grove::spawn([] { grove::sleep(10ms); }));
    tasks.push_back(grove::spawn([] {
      grove::sleep(10ms);
      throw std::runtime_error("second failure");
    }));
    tasks[1].set_name("second");
    CHECK(grove::wait_any(tasks) == std::optional<std::size_t>(0));
    grove::sleep(20ms);
  }
  grove::sleep(1ms);
  CHECK(err.text().find("task \"second\" died of an exception nobody waited for: second failure") != std::string::npos);
}

TEST_CASE_FIXTURE(leak_check, "a task blocked in join or get on another task can be killed or timed out, and the "
                              "other task runs on") {
  auto slow = grove::spawn([] {
    grove::sleep(50ms);
    return 3;
  });
  auto joiner = grove::spawn([&] { slow.join(); });
  auto getter = grove::spawn([&] {
    grove::timeout limit(5ms);
    return slow.get();
  });
  grove::yield();
  CHECK(joiner.kill());
  CHECK(joiner.killed());
  CHECK_THROWS_AS(getter.get(), grove::timeout_error);
  CHECK(slow.get() == 3);
}
