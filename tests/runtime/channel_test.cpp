// channel_test.cpp — channel: a rendezvous of a put and a get, time limits,
// try_ calls, fairness, and hand-offs that survive kills and timeouts.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grove/channel.hpp>
#include <grove/detail/wait.hpp>
#include <grove/sleep.hpp>
#include <grove/task.hpp>
#include <grove/timeout.hpp>

#include "../support.hpp"

using namespace std::chrono_literals;
using grove_test::leak_check;

namespace {

using steady = std::chrono::steady_clock;

// spin_until keeps the current greenlet on the CPU until t, so the hub cannot
// poll meanwhile: every timer due by then fires in the same poll, in deadline
// order.
void spin_until(steady::time_point t) {
  while (steady::now() < t) {
  }
}

}  // namespace

TEST_CASE_FIXTURE(leak_check, "a channel put blocks until a getter takes the item") {
  grove::channel<std::string> ch;
  std::vector<std::string> log;
  auto putter = grove::spawn([&] {
    log.push_back("putting");
    ch.put("hello");
    log.push_back("put returned");
  });
  grove::yield();
  grove::yield();
  CHECK(log == std::vector<std::string>{"putting"});  // no getter yet: still blocked
  CHECK_FALSE(putter.ready());
  log.push_back("got " + ch.get());
  putter.join();
  CHECK(log == std::vector<std::string>{"putting", "got hello", "put returned"});
}

TEST_CASE_FIXTURE(leak_check, "a channel get blocks until a putter offers an item") {
  grove::channel<int> ch;
  std::vector<std::string> log;
  auto getter = grove::spawn([&] {
    log.push_back("getting");
    log.push_back("got " + std::to_string(ch.get()));
  });
  grove::yield();
  grove::yield();
  CHECK(log == std::vector<std::string>{"getting"});  // no putter yet: still blocked
  ch.put(42);                                         // returns at once: the getter was waiting
  log.push_back("put returned");
  getter.join();
  CHECK(log == std::vector<std::string>{"getting", "put returned", "got 42"});
}

TEST_CASE_FIXTURE(leak_check, "a channel passes many items between tasks in order, holding none") {
  grove::channel<int> ch;
  std::vector<int> got;
  auto producer = grove::spawn([&] {
    for (int i = 0; i < 1000; ++i) ch.put(i);
  });
  for (int i = 0; i < 1000; ++i) got.push_back(ch.get());
  producer.join();
  std::vector<int> expected;
  for (int i = 0; i < 1000; ++i) expected.push_back(i);
  CHECK(got == expected);
  CHECK_FALSE(ch.try_get().has_value());
}

TEST_CASE_FIXTURE(leak_check, "a channel serves putters and getters each in the order they started waiting") {
  grove::channel<int> ch;
  auto putter = [&](int item) { ch.put(item); };
  auto p1 = grove::spawn(putter, 1);
  auto p2 = grove::spawn(putter, 2);
  auto p3 = grove::spawn(putter, 3);
  grove::yield();
  CHECK(ch.get() == 1);
  CHECK(ch.get() == 2);
  CHECK(ch.get() == 3);
  grove::joinall(std::vector{p1, p2, p3});

  std::vector<std::string> log;
  auto getter = [&](std::string name) { log.push_back(name + " got " + std::to_string(ch.get())); };
  auto a = grove::spawn(getter, "a");
  auto b = grove::spawn(getter, "b");
  grove::yield();
  ch.put(10);
  ch.put(20);
  grove::joinall(std::vector{a, b});
  CHECK(log == std::vector<std::string>{"a got 10", "b got 20"});
}

TEST_CASE_FIXTURE(leak_check, "a timed channel put with no getter returns false after about its limit") {
  grove::channel<int> ch;
  const auto t0 = steady::now();
  CHECK_FALSE(ch.put(1, 50ms));
  const auto elapsed = steady::now() - t0;
  CHECK(elapsed >= 50ms);
  CHECK(elapsed < 1050ms);
  CHECK_FALSE(ch.try_get().has_value());  // the item did not stay behind
}

TEST_CASE_FIXTURE(leak_check, "a timed channel get with no putter returns empty after about its limit") {
  grove::channel<int> ch;
  const auto t0 = steady::now();
  CHECK_FALSE(ch.get(50ms).has_value());
  const auto elapsed = steady::now() - t0;
  CHECK(elapsed >= 50ms);
  CHECK(elapsed < 1050ms);
  CHECK_FALSE(ch.try_put(1));  // no stale getter is waiting
}

TEST_CASE_FIXTURE(leak_check, "timed channel put and get succeed when the other side comes within the limit") {
  grove::channel<int> ch;
  auto putter = grove::spawn([&] { ch.put(5); });
  CHECK(ch.get(10s) == 5);
  putter.join();
  auto getter = grove::spawn([&] { return ch.get(); });
  CHECK(ch.put(6, 10s));
  CHECK(getter.get() == 6);
}

TEST_CASE_FIXTURE(leak_check, "channel try_put succeeds only if a getter waits, try_get only if a putter waits") {
  grove::channel<std::unique_ptr<int>> ch;
  CHECK_FALSE(ch.try_put(std::make_unique<int>(1)));
  CHECK_FALSE(ch.try_get().has_value());

  auto getter = grove::spawn([&] { return *ch.get(); });
  grove::yield();
  CHECK(ch.try_put(std::make_unique<int>(2)));
  CHECK(getter.get() == 2);

  bool put_returned = false;
  auto putter = grove::spawn([&] {
    ch.put(std::make_unique<int>(3));
    put_returned = true;
  });
  grove::yield();
  auto got = ch.try_get();
  REQUIRE(got.has_value());
  CHECK(**got == 3);
  putter.join();
  CHECK(put_returned);
  CHECK_FALSE(ch.try_get().has_value());
}

TEST_CASE_FIXTURE(leak_check, "killing a blocked putter leaves the channel consistent and the next putter served") {
  grove::channel<int> ch;
  auto a = grove::spawn([&] { ch.put(1); });
  auto b = grove::spawn([&] { ch.put(2); });
  grove::yield();  // both wait, a first
  CHECK(a.kill());
  CHECK(ch.get() == 2);  // a's item is gone with a
  b.join();
  CHECK_FALSE(ch.try_get().has_value());
}

TEST_CASE_FIXTURE(leak_check, "killing a blocked getter leaves the channel consistent and the next getter served") {
  grove::channel<int> ch;
  std::optional<int> first;
  auto a = grove::spawn([&] { first = ch.get(); });
  auto b = grove::spawn([&] { return ch.get(); });
  grove::yield();
  CHECK(a.kill());
  ch.put(9);
  CHECK(b.get() == 9);
  CHECK_FALSE(first.has_value());
  CHECK_FALSE(ch.try_put(10));
}

TEST_CASE_FIXTURE(leak_check, "a timeout scope interrupts a blocked put and the channel stays consistent") {
  grove::channel<int> ch;
  {
    grove::timeout scope(30ms);
    CHECK_THROWS_AS(ch.put(1), grove::timeout_error);
  }
  CHECK_FALSE(ch.try_get().has_value());  // no stale putter offers 1
  auto putter = grove::spawn([&] { ch.put(2); });
  CHECK(ch.get() == 2);
  putter.join();
}

TEST_CASE_FIXTURE(leak_check, "a timeout scope interrupts a blocked get and the channel stays consistent") {
  grove::channel<int> ch;
  {
    grove::timeout scope(30ms);
    CHECK_THROWS_AS(ch.get(), grove::timeout_error);
  }
  CHECK_FALSE(ch.try_put(1));  // no stale getter takes it
  auto getter = grove::spawn([&] { return ch.get(); });
  ch.put(2);
  CHECK(getter.get() == 2);
}

TEST_CASE_FIXTURE(leak_check, "a channel putter killed after a getter took its item still returns from put") {
  grove::channel<int> ch;
  bool put_returned = false;
  bool went_on = false;
  auto putter = grove::spawn([&] {
    ch.put(1);
    put_returned = true;
    grove::yield();
    went_on = true;
  });
  grove::yield();
  CHECK(ch.get() == 1);  // the putter is woken but has not run yet
  CHECK(putter.kill());
  CHECK(put_returned);
  CHECK_FALSE(went_on);
}

TEST_CASE_FIXTURE(leak_check, "a channel getter killed after it was handed an item still returns it") {
  grove::channel<int> ch;
  std::optional<int> got;
  bool went_on = false;
  auto getter = grove::spawn([&] {
    got = ch.get();
    grove::yield();
    went_on = true;
  });
  grove::yield();
  ch.put(3);
  CHECK(getter.kill());
  CHECK(got == 3);
  CHECK_FALSE(went_on);
}

TEST_CASE_FIXTURE(leak_check,
                  "a channel putter whose timeout scope fires after a getter took its item returns from put, and the "
                  "timeout comes at its next blocking call") {
  grove::channel<int> ch;
  bool put_returned = false;
  bool timed_out_next = false;
  auto putter = grove::spawn([&] {
    grove::timeout scope(100ms);
    ch.put(4);
    put_returned = true;
    try {
      grove::yield();
    } catch (const grove::timeout_error& e) {
      timed_out_next = e.source() == &scope;
    }
  });
  const auto t0 = steady::now();
  grove::yield();  // the putter waits under its 100 ms scope
  // A hub timer takes the item at 10 ms. Holding the CPU past both deadlines
  // makes the hub fire both in one poll, the take first.
  struct context {
    grove::channel<int>* ch;
    std::optional<int> got;
  } ctx{&ch, std::nullopt};
  grove::detail::timer take_soon;
  take_soon.start(
      grove::detail::deadline_after(10ms),
      [](grove::detail::timer& t) {
        auto& c = *static_cast<context*>(t.arg);
        c.got = c.ch->try_get();
      },
      &ctx);
  spin_until(t0 + 200ms);
  putter.join();
  CHECK(ctx.got == 4);
  CHECK(put_returned);
  CHECK(timed_out_next);
  CHECK_FALSE(ch.try_get().has_value());
}

TEST_CASE_FIXTURE(leak_check, "get on a channel no task can ever put to gives the main greenlet loop_exit") {
  grove::channel<int> ch;
  CHECK_THROWS_AS(ch.get(), grove::loop_exit);
  CHECK_THROWS_AS(ch.put(1), grove::loop_exit);
  CHECK_FALSE(ch.try_put(2));
  CHECK_FALSE(ch.try_get().has_value());
}
