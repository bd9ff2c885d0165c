// queue_test.cpp — queue, lifo_queue and priority_queue: order, bounds and
// backpressure, time limits, task_done/join, and hand-offs that survive kills
// and timeouts.
#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grove/detail/wait.hpp>
#include <grove/queue.hpp>
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

// distance_from orders ints by their distance to an origin: a comparator with state.
struct distance_from {
  int origin;
  bool operator()(int a, int b) const { return std::abs(a - origin) < std::abs(b - origin); }
};

}  // namespace

TEST_CASE_FIXTURE(leak_check, "queue gives items back in the order they were put") {
  grove::queue<int> q;
  for (int i = 1; i <= 5; ++i) q.put(i);
  std::vector<int> got;
  while (!q.empty()) got.push_back(q.get());
  CHECK(got == std::vector<int>{1, 2, 3, 4, 5});
}

TEST_CASE_FIXTURE(leak_check, "lifo_queue gives the most recently put item first") {
  grove::lifo_queue<int> q;
  for (int i = 1; i <= 5; ++i) q.put(i);
  CHECK(q.get() == 5);
  q.put(6);
  std::vector<int> got;
  while (!q.empty()) got.push_back(q.get());
  CHECK(got == std::vector<int>{6, 4, 3, 2, 1});
}

TEST_CASE_FIXTURE(leak_check, "priority_queue gives the smallest item first") {
  grove::priority_queue<int> q;
  for (int i : {5, 1, 4, 1, 9, 2, 6}) q.put(i);
  CHECK(q.get() == 1);
  q.put(0);
  std::vector<int> got;
  while (!q.empty()) got.push_back(q.get());
  CHECK(got == std::vector<int>{0, 1, 2, 4, 5, 6, 9});
}

TEST_CASE_FIXTURE(leak_check, "priority_queue orders by a custom comparator, with or without state") {
  grove::priority_queue<std::string, std::greater<>> by_greater;
  for (const char* s : {"pear", "apple", "quince", "fig"}) by_greater.put(s);
  std::vector<std::string> got;
  while (!by_greater.empty()) got.push_back(by_greater.get());
  CHECK(got == std::vector<std::string>{"quince", "pear", "fig", "apple"});

  grove::priority_queue<int, distance_from> nearest(0, distance_from{10});
  for (int i : {0, 30, 12, 7, 10}) nearest.put(i);
  std::vector<int> near;
  while (!nearest.empty()) near.push_back(nearest.get());
  CHECK(near == std::vector<int>{10, 12, 7, 0, 30});
}

TEST_CASE_FIXTURE(leak_check, "size, empty, full and maxsize describe the queue") {
  grove::queue<int> bounded(2);
  CHECK(bounded.maxsize() == 2);
  CHECK(bounded.empty());
  CHECK_FALSE(bounded.full());
  bounded.put(1);
  CHECK(bounded.size() == 1);
  CHECK_FALSE(bounded.empty());
  CHECK_FALSE(bounded.full());
  bounded.put(2);
  CHECK(bounded.size() == 2);
  CHECK(bounded.full());

  grove::queue<int> unbounded;
  CHECK(unbounded.maxsize() == 0);
  for (int i = 0; i < 10000; ++i) unbounded.put(i);  // never blocks: this greenlet would get loop_exit
  CHECK(unbounded.size() == 10000);
  CHECK_FALSE(unbounded.full());
}

TEST_CASE_FIXTURE(leak_check, "a queue carries move-only items, through hand-offs both ways") {
  grove::queue<std::unique_ptr<int>> q(1);
  std::unique_ptr<int> got_by_waiter;
  auto getter = grove::spawn([&] { got_by_waiter = q.get(); });
  grove::yield();  // the getter waits on the empty queue
  q.put(std::make_unique<int>(1));
  getter.join();
  REQUIRE(got_by_waiter != nullptr);
  CHECK(*got_by_waiter == 1);

  q.put(std::make_unique<int>(2));
  auto putter = grove::spawn([&] { q.put(std::make_unique<int>(3)); });
  grove::yield();  // the putter waits on the full queue
  CHECK(*q.get() == 2);
  CHECK(*q.get() == 3);  // moved in from the waiting putter
  putter.join();
  CHECK(q.empty());
}

TEST_CASE_FIXTURE(leak_check, "with maxsize 2 a producer blocks while the queue is full and two consumers drain it") {
  grove::queue<int> q(2);
  std::vector<std::string> log;
  std::size_t most = 0;
  auto producer = grove::spawn([&] {
    for (int i = 1; i <= 6; ++i) {
      q.put(i);
      most = std::max(most, q.size());
      log.push_back("put " + std::to_string(i));
    }
  });
  grove::yield();
  // The producer put two items and blocks on the third; nothing else can run
  // it, however often the hub turns.
  CHECK(log == std::vector<std::string>{"put 1", "put 2"});
  CHECK(q.full());
  grove::yield();
  grove::yield();
  CHECK(log.size() == 2);
  CHECK_FALSE(producer.ready());

  auto consumer = [&](const char* name) {
    for (int k = 0; k < 3; ++k) log.push_back(name + std::to_string(q.get()));
  };
  auto a = grove::spawn(consumer, "a got ");
  auto b = grove::spawn(consumer, "b got ");
  producer.join();
  a.join();
  b.join();
  // a's first get lets the producer's 3 in (the producer is woken, and runs
  // after a and b); a then empties the queue and b waits, so the producer's 4
  // goes straight to b, and 5 and 6 fill the queue again.
  CHECK(log == std::vector<std::string>{"put 1", "put 2", "a got 1", "a got 2", "a got 3", "put 3", "put 4", "put 5",
                                        "put 6", "b got 4", "b got 5", "b got 6"});
  CHECK(most == 2);
  CHECK(q.empty());
}

TEST_CASE_FIXTURE(leak_check, "queue getters are served in the order they started waiting") {
  grove::queue<int> q;
  std::vector<std::string> log;
  auto getter = [&](std::string name) { log.push_back(name + " got " + std::to_string(q.get())); };
  auto a = grove::spawn(getter, "a");
  auto b = grove::spawn(getter, "b");
  auto c = grove::spawn(getter, "c");
  grove::yield();  // all three wait, in spawn order
  q.put(1);
  q.put(2);
  q.put(3);
  CHECK(q.empty());  // each item went straight to a waiting getter
  grove::joinall(std::vector{a, b, c});
  CHECK(log == std::vector<std::string>{"a got 1", "b got 2", "c got 3"});
}

TEST_CASE_FIXTURE(leak_check, "putters blocked on a full queue get their items in, in the order they started waiting") {
  grove::queue<int> q(1);
  q.put(0);
  auto putter = [&](int item) { q.put(item); };
  auto a = grove::spawn(putter, 1);
  auto b = grove::spawn(putter, 2);
  auto c = grove::spawn(putter, 3);
  grove::yield();                 // all three wait, in spawn order
  CHECK(q.try_put(99) == false);  // a latecomer does not overtake them
  std::vector<int> got;
  for (int i = 0; i < 4; ++i) got.push_back(q.get());
  CHECK(got == std::vector<int>{0, 1, 2, 3});
  grove::joinall(std::vector{a, b, c});
  CHECK(q.empty());
}

TEST_CASE_FIXTURE(leak_check, "a timed get on an empty queue returns empty after about its limit") {
  grove::queue<int> q;
  const auto t0 = steady::now();
  CHECK_FALSE(q.get(50ms).has_value());
  const auto elapsed = steady::now() - t0;
  CHECK(elapsed >= 50ms);
  CHECK(elapsed < 1050ms);
  CHECK_FALSE(q.get(0ms).has_value());  // a zero limit only checks
  q.put(7);                             // no stale getter took it
  CHECK(q.size() == 1);
  CHECK(q.get(0ms) == 7);
}

TEST_CASE_FIXTURE(leak_check,
                  "a timed put on a full queue returns false after about its limit without adding the item") {
  grove::queue<int> q(1);
  q.put(1);
  const auto t0 = steady::now();
  CHECK_FALSE(q.put(2, 50ms));
  const auto elapsed = steady::now() - t0;
  CHECK(elapsed >= 50ms);
  CHECK(elapsed < 1050ms);
  CHECK_FALSE(q.put(3, 0ms));
  CHECK(q.size() == 1);
  CHECK(q.get() == 1);
  CHECK(q.empty());  // no stale putter's item moved in
}

TEST_CASE_FIXTURE(leak_check, "timed queue put and get succeed when the other side comes within the limit") {
  grove::queue<int> q(1);
  auto putter = grove::spawn([&] { q.put(5); });
  const auto t0 = steady::now();
  CHECK(q.get(10s) == 5);  // the putter runs while this get waits
  CHECK(steady::now() - t0 < 5s);
  putter.join();

  q.put(1);
  auto getter = grove::spawn([&] { return q.get(); });
  CHECK(q.put(2, 10s));  // the getter makes room while this put waits
  CHECK(getter.get() == 1);
  CHECK(q.get() == 2);
}

TEST_CASE_FIXTURE(leak_check, "queue try_put and try_get never block") {
  grove::queue<int> q(2);
  CHECK_FALSE(q.try_get().has_value());
  CHECK(q.try_put(1));
  CHECK(q.try_put(2));
  CHECK_FALSE(q.try_put(3));
  CHECK(q.size() == 2);
  CHECK(q.try_get() == 1);
  CHECK(q.try_get() == 2);
  CHECK_FALSE(q.try_get().has_value());

  // try_put hands to a waiting getter; try_get lets a waiting putter in.
  auto getter = grove::spawn([&] { return q.get(); });
  grove::yield();
  CHECK(q.try_put(10));
  CHECK(q.empty());
  CHECK(getter.get() == 10);
  q.put(11);
  q.put(12);
  auto putter = grove::spawn([&] { q.put(13); });
  grove::yield();
  CHECK(q.try_get() == 11);
  CHECK(q.size() == 2);
  putter.join();
  CHECK(q.try_get() == 12);
  CHECK(q.try_get() == 13);
}

TEST_CASE_FIXTURE(leak_check, "queue join waits until every item put has been marked done") {
  grove::queue<std::string> q;
  std::vector<std::string> log;
  q.join();  // nothing put: returns at once
  q.put("a");
  q.put("b");
  q.put("c");
  auto joiner = grove::spawn([&] {
    q.join();
    log.push_back("joined");
  });
  auto worker = grove::spawn([&] {
    for (int i = 0; i < 3; ++i) {
      std::string item = q.get();
      log.push_back("done " + item);
      q.task_done();
      grove::yield();  // the joiner may run now: it must still be waiting until the last
    }
  });
  joiner.join();
  worker.join();
  CHECK(log == std::vector<std::string>{"done a", "done b", "done c", "joined"});
  q.join();
}

TEST_CASE_FIXTURE(leak_check,
                  "queue join with a limit returns false while items are unfinished, true once all are done") {
  grove::queue<int> q;
  q.put(1);
  q.put(2);
  CHECK(q.get() == 1);
  q.task_done();
  const auto t0 = steady::now();
  CHECK_FALSE(q.join(50ms));
  const auto elapsed = steady::now() - t0;
  CHECK(elapsed >= 50ms);
  CHECK(elapsed < 1050ms);
  CHECK(q.get() == 2);
  q.task_done();
  CHECK(q.join(0ms));
}

TEST_CASE_FIXTURE(leak_check, "queue task_done called more times than items were put throws grove::error") {
  grove::queue<int> q;
  CHECK_THROWS_WITH_AS(q.task_done(), doctest::Contains("more times than items were put"), grove::error);
  q.put(1);
  q.put(2);
  q.task_done();
  q.task_done();
  CHECK_THROWS_AS(q.task_done(), grove::error);
  CHECK(q.join(0ms));  // the failed calls changed nothing
  CHECK(q.size() == 2);
}

TEST_CASE_FIXTURE(leak_check, "queue items handed to a waiting getter or taken from a waiting putter count for join") {
  grove::queue<int> q(1);
  auto getter = grove::spawn([&] {
    q.get();
    q.task_done();
  });
  grove::yield();
  q.put(1);  // handed to the getter
  CHECK_FALSE(q.join(0ms));
  getter.join();
  CHECK(q.join(0ms));

  q.put(2);
  auto putter = grove::spawn([&] { q.put(3); });
  grove::yield();
  CHECK(q.get() == 2);  // 3 moves in: counted before its putter even runs again
  q.task_done();
  CHECK_FALSE(q.join(0ms));
  CHECK(q.get() == 3);
  q.task_done();
  CHECK(q.join(0ms));
  putter.join();
}

TEST_CASE_FIXTURE(leak_check, "a timeout scope interrupts a blocked get and the queue stays consistent") {
  grove::queue<int> q;
  {
    grove::timeout scope(30ms);
    try {
      q.get();
      FAIL("get returned on an empty queue");
    } catch (const grove::timeout_error& e) {
      CHECK(e.source() == &scope);
    }
  }
  CHECK(q.try_put(1));  // stored: no stale getter swallowed it
  CHECK(q.size() == 1);
  CHECK(q.get() == 1);
}

TEST_CASE_FIXTURE(leak_check, "a timeout scope interrupts a blocked queue put and the item is not added") {
  grove::queue<int> q(1);
  q.put(1);
  {
    grove::timeout scope(30ms);
    CHECK_THROWS_AS(q.put(2), grove::timeout_error);
  }
  CHECK(q.size() == 1);
  CHECK(q.get() == 1);
  CHECK(q.empty());  // no stale putter's item moved in
  CHECK(q.try_put(3));
  CHECK(q.get() == 3);
}

TEST_CASE_FIXTURE(leak_check, "a timeout that fires in the same hub turn as a put leaves the item in the queue") {
  grove::queue<int> q;
  bool timed_out = false;
  auto getter = grove::spawn([&] {
    grove::timeout scope(100ms);
    try {
      q.get();
    } catch (const grove::timeout_error&) {
      timed_out = true;
    }
  });
  auto putter = grove::spawn([&] {
    grove::sleep(10ms);
    q.put(7);
  });
  const auto t0 = steady::now();
  grove::yield();  // the getter waits under its scope, the putter sleeps
  // Both timers are due by the time the hub polls again: the putter becomes
  // ready first, but the getter is interrupted in that same poll, before the
  // putter runs. The put must not hand the item to the leaving getter.
  spin_until(t0 + 200ms);
  getter.join();
  putter.join();
  CHECK(timed_out);
  CHECK(q.size() == 1);
  CHECK(q.get() == 7);
}

TEST_CASE_FIXTURE(leak_check, "killing a task blocked in get leaves the queue consistent and the next getter served") {
  grove::queue<int> q;
  std::optional<int> first, second;
  auto a = grove::spawn([&] { first = q.get(); });
  auto b = grove::spawn([&] { second = q.get(); });
  grove::yield();  // both wait, a first
  CHECK(a.kill());
  CHECK(a.killed());
  q.put(5);
  b.join();
  CHECK_FALSE(first.has_value());
  CHECK(second == 5);
  CHECK(q.empty());
  q.put(6);  // no stale getter left: stored
  CHECK(q.size() == 1);
  CHECK(q.get() == 6);
}

TEST_CASE_FIXTURE(leak_check, "killing a task blocked in put leaves the queue consistent and the next putter served") {
  grove::queue<int> q(1);
  q.put(0);
  bool a_returned = false;
  auto a = grove::spawn([&] {
    q.put(1);
    a_returned = true;
  });
  auto b = grove::spawn([&] { q.put(2); });
  grove::yield();  // both wait on the full queue, a first
  CHECK(a.kill());
  CHECK_FALSE(a_returned);
  CHECK(q.get() == 0);
  CHECK(q.get() == 2);  // a's item was never added
  b.join();
  CHECK(q.empty());
  CHECK_FALSE(q.try_get().has_value());
}

TEST_CASE_FIXTURE(
    leak_check,
    "a queue getter killed after it was handed an item still returns it, and dies at its next blocking call") {
  grove::queue<int> q;
  std::optional<int> got;
  bool went_on = false;
  auto getter = grove::spawn([&] {
    got = q.get();
    grove::yield();
    went_on = true;
  });
  grove::yield();  // the getter waits
  q.put(7);        // handed over: the getter is ready but has not run
  CHECK(getter.kill());
  CHECK(got == 7);
  CHECK_FALSE(went_on);
  CHECK(getter.killed());
  CHECK(q.empty());  // delivered once, not put back
}

TEST_CASE_FIXTURE(leak_check,
                  "a queue putter killed after its item was taken in still returns from put, and the item is in once") {
  grove::queue<int> q(1);
  q.put(1);
  bool put_returned = false;
  bool went_on = false;
  auto putter = grove::spawn([&] {
    q.put(2);
    put_returned = true;
    grove::yield();
    went_on = true;
  });
  grove::yield();       // the putter waits on the full queue
  CHECK(q.get() == 1);  // moves 2 in and wakes the putter, which has not run yet
  CHECK(putter.kill());
  CHECK(put_returned);
  CHECK_FALSE(went_on);
  CHECK(q.size() == 1);
  CHECK(q.get() == 2);
  CHECK(q.empty());
}

TEST_CASE_FIXTURE(
    leak_check,
    "a queue getter whose timeout scope fires after it was handed an item returns the item, and the timeout "
    "comes at its next blocking call") {
  grove::queue<int> q;
  std::optional<int> got;
  bool timed_out_next = false;
  auto getter = grove::spawn([&] {
    grove::timeout scope(100ms);
    got = q.get();
    try {
      grove::yield();
    } catch (const grove::timeout_error& e) {
      timed_out_next = e.source() == &scope;
    }
  });
  const auto t0 = steady::now();
  grove::yield();  // the getter waits under its 100 ms scope
  // A hub timer puts at 10 ms. This greenlet holds the CPU past both
  // deadlines, so the hub fires both timers in one poll, the put first: the
  // getter is handed 7 and woken, then its scope fires before it runs.
  grove::detail::timer put_soon;
  put_soon.start(
      grove::detail::deadline_after(10ms),
      [](grove::detail::timer& t) { CHECK(static_cast<grove::queue<int>*>(t.arg)->try_put(7)); }, &q);
  spin_until(t0 + 200ms);
  getter.join();
  CHECK(got == 7);
  CHECK(timed_out_next);
  CHECK(q.empty());
}

TEST_CASE_FIXTURE(
    leak_check,
    "a queue putter whose timeout scope fires after its item was taken in returns from put, and the timeout "
    "comes at its next blocking call") {
  grove::queue<int> q(1);
  q.put(1);
  bool put_returned = false;
  bool timed_out_next = false;
  auto putter = grove::spawn([&] {
    grove::timeout scope(100ms);
    q.put(2);
    put_returned = true;
    try {
      grove::yield();
    } catch (const grove::timeout_error& e) {
      timed_out_next = e.source() == &scope;
    }
  });
  const auto t0 = steady::now();
  grove::yield();  // the putter waits on the full queue under its 100 ms scope
  grove::detail::timer get_soon;
  get_soon.start(
      grove::detail::deadline_after(10ms),
      [](grove::detail::timer& t) { CHECK(static_cast<grove::queue<int>*>(t.arg)->try_get() == 1); }, &q);
  spin_until(t0 + 200ms);
  putter.join();
  CHECK(put_returned);
  CHECK(timed_out_next);
  CHECK(q.size() == 1);
  CHECK(q.get() == 2);
}

TEST_CASE_FIXTURE(leak_check, "get on an empty queue that nothing can ever fill gives the main greenlet loop_exit") {
  grove::queue<int> q;
  CHECK_THROWS_AS(q.get(), grove::loop_exit);
  CHECK(q.try_put(1));  // no stale getter left behind
  CHECK(q.size() == 1);
  CHECK(q.try_get() == 1);

  grove::queue<int> full(1);
  full.put(1);
  CHECK_THROWS_AS(full.put(2), grove::loop_exit);
  CHECK(full.get() == 1);
  CHECK(full.empty());
}

TEST_CASE_FIXTURE(leak_check, "blocking queue calls made in the hub itself throw grove::error; try_ calls work there") {
  grove::queue<int> q;
  bool threw = false;
  bool tried = false;
  grove::detail::timer probe;
  struct context {
    grove::queue<int>* q;
    bool* threw;
    bool* tried;
  } ctx{&q, &threw, &tried};
  probe.start(
      grove::detail::deadline_after(0ms),
      [](grove::detail::timer& t) {
        auto& c = *static_cast<context*>(t.arg);
        try {
          c.q->get();
        } catch (const grove::error&) {
          *c.threw = true;
        }
        *c.tried = c.q->try_put(1);
      },
      &ctx);
  grove::sleep(20ms);
  CHECK(threw);
  CHECK(tried);
  CHECK(q.try_get() == 1);
}
