// pool_test.cpp — grove::group, grove::pool and their map/imap streams (gevent.pool).
#include <algorithm>
#include <chrono>
#include <iterator>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <string>
#include <vector>

#include <grove/pool.hpp>
#include <grove/sleep.hpp>
#include <grove/task.hpp>
#include <grove/timeout.hpp>

#include "../support.hpp"

using namespace std::chrono_literals;
using grove_test::guard;
using grove_test::leak_check;

namespace {

using steady = std::chrono::steady_clock;

std::chrono::milliseconds since(steady::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0);
}

// concurrency counts the tasks inside a section and remembers the most at once.
struct concurrency {
  int now = 0;
  int most = 0;
  void enter() { most = std::max(most, ++now); }
  void leave() { --now; }
};

}  // namespace

static_assert(std::input_iterator<grove::imap_stream<int>::iterator>);
static_assert(std::ranges::input_range<grove::imap_stream<std::string>>);

TEST_CASE_FIXTURE(leak_check, "a pool of 3 never runs more than 3 tasks at once, and all its tasks complete") {
  grove::pool p(3);
  concurrency c;
  int done = 0;
  for (int i = 0; i < 10; ++i) {
    p.spawn([&, i] {
      c.enter();
      grove::sleep(std::chrono::milliseconds(5 + i % 3));
      c.leave();
      ++done;
    });
    CHECK(p.size() <= 3);
  }
  p.join();
  CHECK(c.most == 3);
  CHECK(done == 10);
  CHECK(p.empty());
  CHECK(p.free_count() == 3);
}

TEST_CASE_FIXTURE(leak_check,
                  "pool spawn blocks while the pool is full and resumes when a slot frees, in FIFO order among "
                  "blocked spawners") {
  grove::pool p(1);
  std::vector<std::string> log;
  std::optional<grove::task<void>> latecomer;
  p.spawn([&] {
    grove::sleep(30ms);
    log.push_back("first done");
    // Ready before spawner 1 is woken for the slot this task frees: it must
    // still queue behind the spawners already blocked.
    latecomer = grove::spawn([&] { p.spawn([&] { log.push_back("job late"); }); });
  });
  std::vector<grove::task<void>> spawners;
  for (int i = 1; i <= 3; ++i) {
    spawners.push_back(grove::spawn([&, i] {
      const std::string n = std::to_string(i);
      log.push_back("spawner " + n + " blocks");
      p.spawn([&, n] { log.push_back("job " + n); });
      log.push_back("spawner " + n + " resumed");
    }));
  }
  grove::sleep(10ms);
  CHECK(p.full());
  CHECK(p.size() == 1);
  CHECK(log == std::vector<std::string>{"spawner 1 blocks", "spawner 2 blocks", "spawner 3 blocks"});
  CHECK_FALSE(spawners[0].ready());
  grove::joinall(spawners);
  REQUIRE(latecomer);
  latecomer->join();
  p.join();
  CHECK(log == std::vector<std::string>{"spawner 1 blocks", "spawner 2 blocks", "spawner 3 blocks", "first done",
                                        "spawner 1 resumed", "job 1", "spawner 2 resumed", "job 2", "spawner 3 resumed",
                                        "job 3", "job late"});
}

TEST_CASE_FIXTURE(leak_check, "group join waits for every task of the group, and finished tasks leave the group") {
  grove::group g;
  std::vector<int> done;
  const auto t0 = steady::now();
  for (int ms : {150, 10, 80}) {
    g.spawn([&, ms] {
      grove::sleep(std::chrono::milliseconds(ms));
      done.push_back(ms);
    });
  }
  CHECK(g.size() == 3);
  grove::sleep(40ms);
  CHECK(done == std::vector<int>{10});
  CHECK(g.size() == 2);
  g.join();
  CHECK(done == std::vector<int>{10, 80, 150});
  CHECK(g.empty());
  CHECK(since(t0) >= 150ms);
}

TEST_CASE_FIXTURE(leak_check, "group join with a limit returns false when it passes with tasks still running") {
  grove::group g;
  g.spawn([] { grove::sleep(10s); });
  const auto t0 = steady::now();
  CHECK_FALSE(g.join(30ms));
  CHECK(since(t0) >= 30ms);
  CHECK(since(t0) < 2s);
  CHECK(g.size() == 1);
  CHECK(g.kill());

  g.spawn([] { grove::sleep(10ms); });
  CHECK(g.join(5s));
  CHECK(g.empty());
}

TEST_CASE_FIXTURE(leak_check, "a timeout scope interrupts a group join") {
  grove::group g;
  g.spawn([] { grove::sleep(10s); });
  const auto t0 = steady::now();
  {
    grove::timeout limit(30ms);
    CHECK_THROWS_AS(g.join(), grove::timeout_error);
  }
  CHECK(since(t0) < 2s);
  CHECK(g.size() == 1);
  CHECK(g.kill());
}

TEST_CASE_FIXTURE(leak_check, "group kill kills every task at its blocking point and runs their RAII") {
  grove::group g;
  int destroyed = 0;
  int carried_on = 0;
  std::vector<grove::task<void>> tasks;
  for (int i = 0; i < 3; ++i) {
    tasks.push_back(g.spawn([&] {
      guard on_stack(&destroyed);
      grove::sleep(10s);
      ++carried_on;
    }));
  }
  grove::yield();  // they start and block in sleep
  for (auto& t : tasks) CHECK(t.started());
  bool late_ran = false;
  auto late = g.spawn([&] { late_ran = true; });  // not started yet
  const auto t0 = steady::now();
  CHECK(g.kill());
  CHECK(since(t0) < 2s);
  CHECK(destroyed == 3);
  CHECK(carried_on == 0);
  CHECK(g.empty());
  for (auto& t : tasks) CHECK(t.killed());
  CHECK(late.killed());
  CHECK_FALSE(late.started());
  CHECK_FALSE(late_ran);
}

TEST_CASE_FIXTURE(leak_check, "group kill with a limit returns false while a dying task still blocks") {
  grove::group g;
  int destroyed = 0;
  g.spawn([&] {
    guard on_stack(&destroyed);
    try {
      grove::sleep(10s);
    } catch (const grove::greenlet_exit&) {
      grove::sleep(10s);  // dies slowly
      throw;
    }
  });
  grove::yield();
  CHECK_FALSE(g.kill(20ms));
  CHECK(g.size() == 1);
  CHECK(destroyed == 0);
  CHECK(g.kill());  // the second kill reaches it in its second sleep
  CHECK(g.empty());
  CHECK(destroyed == 1);
}

TEST_CASE_FIXTURE(leak_check, "a task spawned in a group while a kill of the group waits is killed too") {
  grove::group g;
  bool late_ran = false;
  std::optional<grove::task<void>> late;
  g.spawn([&] {
    try {
      grove::sleep(10s);
    } catch (const grove::greenlet_exit&) {
      grove::sleep(20ms);  // the kill waits; meanwhile another task spawns into the group
      throw;
    }
  });
  auto spawner = grove::spawn([&] {
    grove::sleep(5ms);
    late = g.spawn([&] { late_ran = true; });
  });
  grove::yield();
  CHECK(g.kill());
  spawner.join();
  REQUIRE(late);
  CHECK(late->killed());
  CHECK_FALSE(late_ran);
  CHECK(g.empty());
}

TEST_CASE_FIXTURE(leak_check, "group kill called from a task of the group kills the others") {
  grove::group g;
  std::vector<grove::task<void>> others;
  for (int i = 0; i < 2; ++i) others.push_back(g.spawn([] { grove::sleep(10s); }));
  bool killed_all = false;
  bool carried_on = false;
  auto killer = g.spawn([&] {
    grove::sleep(5ms);
    killed_all = g.kill();
    CHECK(g.size() == 1);  // itself
    carried_on = true;
  });
  g.join();
  CHECK(killed_all);
  CHECK(carried_on);
  CHECK_FALSE(killer.killed());
  for (auto& t : others) CHECK(t.killed());
}

TEST_CASE_FIXTURE(leak_check, "join from a task of its own group is a grove::error") {
  grove::group g;
  auto t = g.spawn([&] { g.join(); });
  CHECK_THROWS_AS(t.get(), grove::error);
  CHECK(g.empty());
}

TEST_CASE_FIXTURE(leak_check, "group add adopts an existing task, which leaves the group when it finishes") {
  grove::group g;
  auto t = grove::spawn([] {
    grove::sleep(20ms);
    return 7;
  });
  g.add(t);
  g.add(t);  // already in it
  CHECK(g.size() == 1);
  CHECK(g.contains(t));
  g.join();
  CHECK(g.empty());
  CHECK_FALSE(g.contains(t));
  CHECK(t.get() == 7);
  g.add(t);  // finished: left alone
  CHECK(g.empty());
}

TEST_CASE_FIXTURE(leak_check, "group discard stops tracking a task and frees its pool slot") {
  grove::pool p(1);
  auto t = p.spawn([] { grove::sleep(30ms); });
  CHECK(p.full());
  p.discard(t);
  CHECK(p.empty());
  CHECK(p.free_count() == 1);
  bool ran = false;
  p.spawn([&] { ran = true; });  // does not block
  p.join();
  CHECK(ran);
  CHECK_FALSE(t.ready());
  t.join();
}

TEST_CASE_FIXTURE(leak_check, "a failure of a group task nobody looks at is still reported") {
  grove_test::stderr_capture err;
  {
    grove::group g;
    g.spawn([] { throw std::runtime_error("lost in the group"); });
    g.join();
  }
  grove::sleep(1ms);
  const std::string text = err.text();
  CHECK(text.find("lost in the group") != std::string::npos);
  CHECK(text.find("nobody waited for") != std::string::npos);
}

TEST_CASE_FIXTURE(leak_check, "a pool of size 0 is a grove::error") {
  CHECK_THROWS_AS(grove::pool(0), grove::error);
  grove::pool one(1);
  CHECK(one.capacity() == 1);
  CHECK(one.free_count() == 1);
  CHECK_FALSE(one.full());
}

TEST_CASE_FIXTURE(leak_check, "pool wait_available waits until a slot is free without taking it") {
  grove::pool p(1);
  p.spawn([] { grove::sleep(40ms); });
  CHECK(p.full());
  CHECK_FALSE(p.wait_available(5ms));
  const auto t0 = steady::now();
  p.wait_available();
  CHECK(since(t0) >= 20ms);
  CHECK(p.free_count() == 1);
  CHECK(p.wait_available(0ms));
}

TEST_CASE_FIXTURE(leak_check, "a timeout scope interrupts a spawn blocked on a full pool") {
  grove::pool p(1);
  p.spawn([] { grove::sleep(10s); });
  bool ran = false;
  const auto t0 = steady::now();
  {
    grove::timeout limit(30ms);
    CHECK_THROWS_AS(p.spawn([&] { ran = true; }), grove::timeout_error);
  }
  CHECK(since(t0) >= 30ms);
  CHECK(since(t0) < 2s);
  CHECK(p.size() == 1);
  CHECK(p.full());
  CHECK(p.kill());
  CHECK_FALSE(ran);
  // The timed-out spawner holds no slot.
  CHECK(p.free_count() == 1);
  p.spawn([&] { ran = true; });
  p.join();
  CHECK(ran);
}

TEST_CASE_FIXTURE(leak_check, "a kill reaches a task blocked in spawn on a full pool") {
  grove::pool p(1);
  p.spawn([] { grove::sleep(10s); });
  bool ran = false;
  auto spawner = grove::spawn([&] { p.spawn([&] { ran = true; }); });
  grove::yield();
  CHECK_FALSE(spawner.ready());
  CHECK(spawner.kill());
  CHECK(spawner.killed());
  CHECK(p.size() == 1);
  CHECK(p.kill());
  CHECK_FALSE(ran);
  CHECK(p.free_count() == 1);
}

TEST_CASE_FIXTURE(leak_check, "pool map keeps input order even when later items finish first") {
  grove::pool p(4);
  std::vector<int> finished;
  const std::vector<int> out = p.map(
      [&](int ms) {
        grove::sleep(std::chrono::milliseconds(ms));
        finished.push_back(ms);
        return ms * 10;
      },
      std::vector<int>{60, 45, 30, 15});
  CHECK(out == std::vector<int>{600, 450, 300, 150});
  CHECK(finished == std::vector<int>{15, 30, 45, 60});
  CHECK(p.empty());
}

TEST_CASE_FIXTURE(leak_check, "pool map runs at most the pool's size of items at once") {
  grove::pool p(2);
  concurrency c;
  const std::vector<int> in{1, 2, 3, 4, 5, 6, 7};
  const auto out = p.map(
      [&](int x) {
        c.enter();
        grove::sleep(5ms);
        c.leave();
        return std::to_string(x);
      },
      in);
  CHECK(out == std::vector<std::string>{"1", "2", "3", "4", "5", "6", "7"});
  CHECK(c.most == 2);
}

TEST_CASE_FIXTURE(leak_check, "group map runs every item at once") {
  grove::group g;
  concurrency c;
  const auto t0 = steady::now();
  const auto out = g.map(
      [&](int x) {
        c.enter();
        grove::sleep(50ms);
        c.leave();
        return x * x;
      },
      std::vector<int>{1, 2, 3, 4, 5, 6});
  CHECK(out == std::vector<int>{1, 4, 9, 16, 25, 36});
  CHECK(c.most == 6);
  CHECK(since(t0) < 250ms);
}

TEST_CASE_FIXTURE(leak_check, "map rethrows the first exception in input order after all other items have finished") {
  grove_test::stderr_capture err;
  grove::pool p(4);
  int finished = 0;
  auto run = [&] {
    return p.map(
        [&](int i) {
          switch (i) {
            case 1:
              grove::sleep(30ms);
              throw std::runtime_error("item 1");
            case 2:
              throw std::runtime_error("item 2");  // fails first, but comes later in input order
            default:
              grove::sleep(std::chrono::milliseconds(20 * (i + 1)));
              ++finished;
              return i;
          }
        },
        std::vector<int>{0, 1, 2, 3});
  };
  CHECK_THROWS_WITH_AS(run(), "item 1", std::runtime_error);
  CHECK(finished == 2);
  CHECK(p.empty());
  grove::sleep(1ms);
  CHECK(err.text().find("nobody waited for") == std::string::npos);  // map looked at both failures
}

TEST_CASE_FIXTURE(leak_check, "a timeout scope around pool map kills the tasks map started") {
  grove::pool p(2);
  int started = 0;
  int destroyed = 0;
  const auto t0 = steady::now();
  {
    grove::timeout limit(30ms);
    CHECK_THROWS_AS(p.map(
                        [&](int i) {
                          ++started;
                          guard on_stack(&destroyed);
                          grove::sleep(10s);
                          return i;
                        },
                        std::vector<int>{1, 2, 3, 4}),
                    grove::timeout_error);
  }
  CHECK(since(t0) < 2s);
  CHECK(p.empty());
  CHECK(started == 2);  // the third spawn was still waiting for a slot
  CHECK(destroyed == 2);
}

TEST_CASE_FIXTURE(leak_check, "imap yields results in input order, each as soon as it is available") {
  grove::pool p(3);
  std::vector<int> finished;
  std::vector<int> got;
  std::vector<std::vector<int>> finished_when_got;
  for (int v : p.imap(
           [&](int ms) {
             grove::sleep(std::chrono::milliseconds(ms));
             finished.push_back(ms);
             return ms;
           },
           std::vector<int>{20, 100, 60})) {
    got.push_back(v);
    finished_when_got.push_back(finished);
  }
  CHECK(got == std::vector<int>{20, 100, 60});
  CHECK(finished == std::vector<int>{20, 60, 100});
  // 20 came out before the others had finished; 100 only once it had.
  CHECK(finished_when_got == std::vector<std::vector<int>>{{20}, {20, 60, 100}, {20, 60, 100}});
  CHECK(p.empty());
}

TEST_CASE_FIXTURE(leak_check, "imap_unordered yields results in completion order") {
  grove::pool p(3);
  std::vector<int> got;
  auto stream = p.imap_unordered(
      [](int ms) {
        grove::sleep(std::chrono::milliseconds(ms));
        return ms;
      },
      std::vector<int>{90, 10, 50});
  while (auto v = stream.next()) got.push_back(*v);
  CHECK(got == std::vector<int>{10, 50, 90});
  CHECK_FALSE(stream.next());
  CHECK(p.empty());
}

TEST_CASE_FIXTURE(leak_check, "imap on a pool runs at most the pool's size of items at once") {
  grove::pool p(2);
  concurrency c;
  std::vector<int> in(9);
  for (int i = 0; i < 9; ++i) in[static_cast<std::size_t>(i)] = i;
  int sum = 0;
  for (int v : p.imap_unordered(
           [&](int x) {
             c.enter();
             grove::sleep(std::chrono::milliseconds(2 + x % 3));
             c.leave();
             return x;
           },
           in)) {
    sum += v;
  }
  CHECK(sum == 36);
  CHECK(c.most == 2);
}

TEST_CASE_FIXTURE(leak_check, "imap rethrows an item's exception in that item's turn and then goes on") {
  grove::group g;
  auto stream = g.imap(
      [](int i) {
        if (i == 1) throw std::runtime_error("item 1");
        return i;
      },
      std::vector<int>{0, 1, 2});
  CHECK(stream.next() == std::optional<int>(0));
  CHECK_THROWS_WITH_AS(stream.next(), "item 1", std::runtime_error);
  CHECK(stream.next() == std::optional<int>(2));
  CHECK_FALSE(stream.next());
}

TEST_CASE_FIXTURE(leak_check, "an imap stream destroyed early leaves no task behind") {
  grove::pool p(2);
  int started = 0;
  int destroyed = 0;
  const auto t0 = steady::now();
  {
    auto stream = p.imap(
        [&](int i) {
          ++started;
          guard on_stack(&destroyed);
          if (i > 0) grove::sleep(10s);
          return i;
        },
        std::vector<int>{0, 1, 2, 3, 4, 5});
    CHECK(stream.next() == std::optional<int>(0));
    grove::sleep(10ms);
    CHECK(p.size() == 2);  // items 1 and 2 block in sleep; the feeder waits for a slot
    CHECK(started == 3);
  }
  CHECK(since(t0) < 2s);
  CHECK(p.empty());
  CHECK(destroyed == 3);
}

TEST_CASE_FIXTURE(leak_check, "breaking out of an imap_unordered loop kills the remaining tasks of the pool") {
  grove::pool p(3);
  int destroyed = 0;
  std::vector<int> got;
  for (int v : p.imap_unordered(
           [&](int ms) {
             guard on_stack(&destroyed);
             grove::sleep(std::chrono::milliseconds(ms));
             return ms;
           },
           std::vector<int>{10000, 5, 10000, 10000})) {
    got.push_back(v);
    break;
  }
  CHECK(got == std::vector<int>{5});
  CHECK(p.empty());
  CHECK(destroyed == 3);  // the fourth item was never started: the loop ended first
}

TEST_CASE_FIXTURE(leak_check, "an imap stream never read starts nothing and leaves nothing behind") {
  grove::group g;
  int calls = 0;
  {
    auto stream = g.imap([&](int i) { return calls += i; }, std::vector<int>{1, 2, 3});
  }
  CHECK(calls == 0);
  CHECK(g.empty());
}

TEST_CASE_FIXTURE(leak_check, "imap of an empty range on a pool ends at once") {
  grove::pool p(2);
  auto stream = p.imap([](int i) { return i; }, std::vector<int>{});
  CHECK_FALSE(stream.next());
  int n = 0;
  for (int v : p.imap_unordered([](int i) { return i; }, std::vector<int>{})) n += v + 1;
  CHECK(n == 0);
}
