// sync_test.cpp — event, async_result, semaphores, mutexes and
// condition_variable, including the timeout and kill paths of each wait.
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <grove/async_result.hpp>
#include <grove/condition_variable.hpp>
#include <grove/event.hpp>
#include <grove/mutex.hpp>
#include <grove/semaphore.hpp>
#include <grove/sleep.hpp>
#include <grove/task.hpp>
#include <grove/timeout.hpp>

#include "../support.hpp"

using namespace std::chrono_literals;
using grove_test::leak_check;

// --- event

TEST_CASE_FIXTURE(leak_check, "event: wait blocks until set, which wakes every waiter") {
  grove::event e;
  int woken = 0;
  std::vector<grove::task<void>> waiters;
  for (int i = 0; i < 3; ++i)
    waiters.push_back(grove::spawn([&] {
      e.wait();
      ++woken;
    }));
  grove::sleep(1ms);
  CHECK(woken == 0);
  CHECK_FALSE(e.is_set());
  e.set();
  grove::joinall(waiters);
  CHECK(woken == 3);
  CHECK(e.is_set());
  e.wait();  // set: returns at once
  e.clear();
  CHECK_FALSE(e.wait(10ms));
}

TEST_CASE_FIXTURE(leak_check, "event: a timed wait, a timeout scope and a kill each end a wait cleanly") {
  grove::event e;
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_FALSE(e.wait(20ms));
  CHECK(std::chrono::steady_clock::now() - t0 >= 20ms);
  {
    grove::timeout limit(10ms);
    CHECK_THROWS_AS(e.wait(), grove::timeout_error);
  }
  auto t = grove::spawn([&] { e.wait(); });
  grove::yield();
  CHECK(t.kill());
  CHECK(t.killed());
  e.set();  // nobody left to wake: no stale waiter
  CHECK(e.wait(1ms));
}

// --- async_result

TEST_CASE_FIXTURE(leak_check, "async_result: get waits for a value set by another task after a delay") {
  grove::async_result<std::string> result;
  auto setter = grove::spawn([&] {
    grove::sleep(20ms);
    result.set("computed");
  });
  CHECK_FALSE(result.ready());
  CHECK(result.get() == "computed");
  CHECK(result.ready());
  CHECK(result.successful());
  setter.join();
}

TEST_CASE_FIXTURE(leak_check, "async_result: set_exception is rethrown by get, and get with a limit times out") {
  grove::async_result<int> result;
  CHECK_FALSE(result.get(10ms).has_value());
  result.set_exception(std::make_exception_ptr(std::runtime_error("failed")));
  CHECK_THROWS_WITH_AS(result.get(), "failed", std::runtime_error);
  CHECK_FALSE(result.successful());
  grove::async_result<void> done;
  CHECK_FALSE(done.get(1ms));
  done.set();
  CHECK(done.get(1ms));
}

// --- semaphore

TEST_CASE_FIXTURE(leak_check, "semaphore: at most its count of tasks hold it at once") {
  grove::semaphore sem(3);
  int inside = 0;
  int most = 0;
  std::vector<grove::task<void>> workers;
  for (int i = 0; i < 10; ++i) {
    workers.push_back(grove::spawn([&] {
      std::lock_guard<grove::semaphore> hold(sem);
      most = std::max(most, ++inside);
      grove::sleep(2ms);
      --inside;
    }));
  }
  grove::joinall(workers);
  CHECK(most == 3);
  CHECK(sem.count() == 3);
}

TEST_CASE_FIXTURE(leak_check, "semaphore: waiters get released permits in FIFO order, no overtaking") {
  grove::semaphore sem(0);
  std::vector<int> order;
  std::vector<grove::task<void>> waiters;
  for (int i = 0; i < 3; ++i)
    waiters.push_back(grove::spawn([&, i] {
      sem.acquire();
      order.push_back(i);
    }));
  grove::yield();
  sem.release();
  CHECK_FALSE(sem.try_acquire());  // the permit went to the first waiter, not to us
  sem.release();
  sem.release();
  grove::joinall(waiters);
  CHECK(order == std::vector<int>{0, 1, 2});
}

TEST_CASE_FIXTURE(leak_check, "semaphore: acquire with a limit, a timeout scope and a kill leave the count right") {
  grove::semaphore sem(0);
  CHECK_FALSE(sem.acquire(10ms));
  {
    grove::timeout limit(5ms);
    CHECK_THROWS_AS(sem.acquire(), grove::timeout_error);
  }
  auto t = grove::spawn([&] { sem.acquire(); });
  grove::yield();
  CHECK(sem.waiting() == 1);
  t.kill();
  CHECK(sem.waiting() == 0);
  sem.release();
  CHECK(sem.count() == 1);
  CHECK(sem.try_acquire());
}

TEST_CASE_FIXTURE(leak_check, "semaphore: a permit handed to a waiter survives a timeout that fires before it runs") {
  grove::semaphore sem(0);
  bool got = false;
  bool timed_out_later = false;
  auto t = grove::spawn([&] {
    grove::timeout limit(5ms);
    sem.acquire();
    got = true;
    try {
      grove::sleep(1s);
    } catch (const grove::timeout_error&) {
      timed_out_later = true;
    }
    sem.release();
  });
  grove::yield();  // t waits for a permit
  sem.release();   // handed to t: it is ready to run...
  const auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - t0 < 20ms) {
    // ...but the hub cannot run it yet, and its timeout passes meanwhile
  }
  t.join();
  CHECK(got);              // the permit was not lost
  CHECK(timed_out_later);  // the timeout fired at the next blocking call
  CHECK(sem.count() == 1);
}

TEST_CASE_FIXTURE(leak_check, "bounded_semaphore: releasing more than acquired is a grove::error") {
  grove::bounded_semaphore sem(2);
  sem.acquire();
  sem.release();
  CHECK_THROWS_WITH_AS(sem.release(), doctest::Contains("released more often than acquired"), grove::error);
  CHECK(sem.count() == 2);
}

// --- mutex

TEST_CASE_FIXTURE(leak_check, "mutex: excludes other tasks across blocking calls, in FIFO order") {
  grove::mutex m;
  std::vector<std::string> log;
  auto worker = [&](std::string name) {
    std::lock_guard<grove::mutex> hold(m);
    log.push_back(name + " in");
    grove::sleep(1ms);
    log.push_back(name + " out");
  };
  auto a = grove::spawn(worker, "a");
  auto b = grove::spawn(worker, "b");
  auto c = grove::spawn(worker, "c");
  grove::joinall(std::vector<grove::task<void>>{a, b, c});
  CHECK(log == std::vector<std::string>{"a in", "a out", "b in", "b out", "c in", "c out"});
}

TEST_CASE_FIXTURE(leak_check, "mutex: try_lock, try_lock_for, and misuse errors") {
  grove::mutex m;
  CHECK(m.try_lock());
  CHECK(m.owned_by_current());
  CHECK_THROWS_WITH_AS(m.lock(), doctest::Contains("already holds"), grove::error);
  auto other = grove::spawn([&] {
    CHECK_FALSE(m.try_lock());
    CHECK_FALSE(m.try_lock_for(10ms));
    CHECK_THROWS_WITH_AS(m.unlock(), doctest::Contains("does not hold"), grove::error);
    CHECK(m.try_lock_for(1s));
    m.unlock();
  });
  grove::sleep(20ms);
  m.unlock();
  other.join();
  CHECK_FALSE(m.locked());
}

TEST_CASE_FIXTURE(leak_check,
                  "mutex: a task killed while waiting for it leaves it usable, and a kill of the holder "
                  "unlocks it through RAII") {
  grove::mutex m;
  m.lock();
  auto waiter = grove::spawn([&] { std::lock_guard<grove::mutex> hold(m); });
  grove::yield();
  waiter.kill();
  m.unlock();
  CHECK_FALSE(m.locked());
  auto holder = grove::spawn([&] {
    std::lock_guard<grove::mutex> hold(m);
    grove::sleep(10s);
  });
  grove::yield();
  CHECK(m.locked());
  holder.kill();
  CHECK_FALSE(m.locked());
  std::unique_lock<grove::mutex> lock(m, 1s);
  CHECK(lock.owns_lock());
}

TEST_CASE_FIXTURE(leak_check, "recursive_mutex: the holder may lock again; it is free after as many unlocks") {
  grove::recursive_mutex m;
  m.lock();
  m.lock();
  CHECK(m.try_lock());
  auto other = grove::spawn([&] { return m.try_lock(); });
  CHECK_FALSE(other.get());
  m.unlock();
  m.unlock();
  auto again = grove::spawn([&] { return m.try_lock_for(1ms); });
  CHECK_FALSE(again.get());
  m.unlock();
  auto finally = grove::spawn([&] {
    const bool ok = m.try_lock();
    if (ok) m.unlock();
    return ok;
  });
  CHECK(finally.get());
  CHECK_THROWS_AS(m.unlock(), grove::error);
}

// --- condition_variable

TEST_CASE_FIXTURE(leak_check, "condition_variable: notify_one wakes waiters one at a time in FIFO order") {
  grove::mutex m;
  grove::condition_variable cv;
  int tickets = 0;
  std::vector<int> served;
  std::vector<grove::task<void>> waiters;
  for (int i = 0; i < 3; ++i) {
    waiters.push_back(grove::spawn([&, i] {
      std::unique_lock<grove::mutex> lock(m);
      cv.wait(lock, [&] { return tickets > 0; });
      --tickets;
      served.push_back(i);
    }));
  }
  grove::yield();
  CHECK(cv.waiting() == 3);
  for (int i = 0; i < 3; ++i) {
    {
      std::lock_guard<grove::mutex> hold(m);
      ++tickets;
    }
    cv.notify_one();
    grove::sleep(1ms);
    CHECK(served.size() == static_cast<std::size_t>(i + 1));
  }
  grove::joinall(waiters);
  CHECK(served == std::vector<int>{0, 1, 2});
}

TEST_CASE_FIXTURE(leak_check, "condition_variable: notify_all wakes every waiter") {
  grove::mutex m;
  grove::condition_variable cv;
  bool go = false;
  int woken = 0;
  std::vector<grove::task<void>> waiters;
  for (int i = 0; i < 4; ++i)
    waiters.push_back(grove::spawn([&] {
      std::unique_lock<grove::mutex> lock(m);
      cv.wait(lock, [&] { return go; });
      ++woken;
    }));
  grove::yield();
  {
    std::lock_guard<grove::mutex> hold(m);
    go = true;
  }
  cv.notify_all();
  grove::joinall(waiters);
  CHECK(woken == 4);
}

TEST_CASE_FIXTURE(leak_check, "condition_variable: wait_for times out, and a timeout scope leaves the lock held") {
  grove::mutex m;
  grove::condition_variable cv;
  std::unique_lock<grove::mutex> lock(m);
  CHECK(cv.wait_for(lock, 10ms) == std::cv_status::timeout);
  CHECK(lock.owns_lock());
  CHECK_FALSE(cv.wait_for(lock, 10ms, [] { return false; }));
  {
    grove::timeout limit(5ms);
    CHECK_THROWS_AS(cv.wait(lock), grove::timeout_error);
  }
  CHECK(lock.owns_lock());
  CHECK(m.owned_by_current());
  CHECK(cv.waiting() == 0);
}

TEST_CASE_FIXTURE(leak_check,
                  "condition_variable: a waiter killed while the lock is held elsewhere re-locks before "
                  "unwinding") {
  grove::mutex m;
  grove::condition_variable cv;
  bool held_while_unwinding = false;
  auto waiter = grove::spawn([&] {
    std::unique_lock<grove::mutex> lock(m);
    try {
      cv.wait(lock);
    } catch (const grove::greenlet_exit&) {
      held_while_unwinding = lock.owns_lock() && m.owned_by_current();
      throw;
    }
  });
  grove::yield();
  m.lock();  // we hold it when the kill arrives
  auto killer = grove::spawn([&] { waiter.kill(); });
  grove::sleep(5ms);
  CHECK_FALSE(waiter.ready());  // it cannot re-lock while we hold the mutex
  m.unlock();
  killer.join();
  CHECK(waiter.killed());
  CHECK(held_while_unwinding);
  CHECK_FALSE(m.locked());
}

TEST_CASE_FIXTURE(leak_check, "condition_variable: waiting without holding the lock is a grove::error") {
  grove::mutex m;
  grove::condition_variable cv;
  std::unique_lock<grove::mutex> lock(m, std::defer_lock);
  CHECK_THROWS_AS(cv.wait(lock), grove::error);
}

// --- waiters that gave up but have not run yet must not be handed anything

namespace {
// spin keeps the hub from running for d, so that timers due meanwhile all fire
// in the same poll, in deadline order.
void spin(std::chrono::milliseconds d) {
  const auto until = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < until) {
  }
}
}  // namespace

TEST_CASE_FIXTURE(leak_check,
                  "semaphore: a permit released while the first waiter has just timed out goes to the "
                  "count, not to that waiter") {
  grove::semaphore sem(0);
  auto gives_up = grove::spawn([&] { return sem.acquire(50ms); });
  auto releaser = grove::spawn([&] {
    grove::sleep(10ms);
    sem.release();
  });
  grove::yield();
  spin(100ms);  // the release (10 ms) and the give-up (50 ms) are handled in one poll
  const bool got = gives_up.get();
  releaser.join();
  CHECK(sem.count() + (got ? 1 : 0) == 1);  // the permit is somewhere: never lost
}

TEST_CASE_FIXTURE(leak_check,
                  "mutex: unlocked while the first waiter has just timed out, it is free, not owned by "
                  "that waiter") {
  grove::mutex m;
  auto holder = grove::spawn([&] {
    m.lock();
    grove::sleep(10ms);
    m.unlock();
  });
  auto gives_up = grove::spawn([&] {
    const bool got = m.try_lock_for(50ms);
    if (got) m.unlock();
    return got;
  });
  grove::yield();
  spin(100ms);
  gives_up.get();
  holder.join();
  CHECK_FALSE(m.locked());
  CHECK(m.try_lock());
  m.unlock();
}

TEST_CASE_FIXTURE(leak_check, "condition_variable: notify_one skips a waiter that has just timed out") {
  grove::mutex m;
  grove::condition_variable cv;
  bool ready = false;
  auto gives_up = grove::spawn([&] {
    std::unique_lock<grove::mutex> lock(m);
    return cv.wait_for(lock, 50ms) == std::cv_status::no_timeout;
  });
  auto patient = grove::spawn([&] {
    std::unique_lock<grove::mutex> lock(m);
    cv.wait(lock, [&] { return ready; });
    return true;
  });
  auto notifier = grove::spawn([&] {
    grove::sleep(10ms);
    std::lock_guard<grove::mutex> hold(m);
    ready = true;
    cv.notify_one();
  });
  grove::yield();
  spin(100ms);
  gives_up.get();
  CHECK(patient.get(1s).value_or(false));  // the one notification reached a waiter that was still waiting
  notifier.join();
}

TEST_CASE_FIXTURE(leak_check, "async_result: a timeout scope and a kill end a blocked get, and a later set still "
                              "reaches other waiters") {
  grove::async_result<int> result;
  {
    grove::timeout limit(5ms);
    CHECK_THROWS_AS(result.get(), grove::timeout_error);
  }
  auto killed = grove::spawn([&] { return result.get(); });
  auto patient = grove::spawn([&] { return result.get(); });
  grove::yield();
  CHECK(killed.kill());
  result.set(9);
  CHECK(patient.get() == 9);
  CHECK(killed.killed());
}

TEST_CASE("a grove event waited on by a task of one hub refuses a waiter from another hub's thread with grove::error") {
  grove::event e;
  auto waiting = grove::spawn([&] { e.wait(); });
  grove::sleep(std::chrono::milliseconds(5));  // the task waits on e
  std::string refused;
  bool waited = false;
  std::thread other([&] {
    try {
      e.wait(std::chrono::milliseconds(1));  // this thread's own hub: not e's
      waited = true;
    } catch (const grove::error& err) {
      refused = err.what();
    }
  });
  other.join();
  CHECK_FALSE(waited);
  CHECK(refused.find("(event) whose waiters are tasks of one hub (OS thread) was used from another thread") !=
        std::string::npos);
  CHECK(refused.find("hub::post or pthread objects") != std::string::npos);
  e.set();  // from e's own hub: fine
  waiting.get();
}
