// local_test.cpp — grove::local: one value per task, destroyed with its task.
#include <string>
#include <vector>

#include <grove/greenlet.hpp>
#include <grove/local.hpp>
#include <grove/sleep.hpp>
#include <grove/task.hpp>

#include "../support.hpp"

using grove_test::leak_check;

namespace {
struct counted {
  explicit counted(int* alive_count) : alive(alive_count) { ++*alive; }
  counted(const counted& o) : alive(o.alive) { ++*alive; }
  counted& operator=(const counted&) = delete;
  ~counted() { --*alive; }
  int* alive;
  int value = 0;
};
}  // namespace

TEST_CASE_FIXTURE(leak_check, "local: every task sees its own value, made from the initial value") {
  grove::local<std::string> name(std::string("unset"));
  std::vector<std::string> seen;
  auto worker = [&](std::string me) {
    seen.push_back(*name);
    *name = me;
    grove::yield();  // the others change theirs meanwhile
    seen.push_back(*name);
  };
  auto a = grove::spawn(worker, "a");
  auto b = grove::spawn(worker, "b");
  grove::joinall(std::vector<grove::task<void>>{a, b});
  CHECK(seen == std::vector<std::string>{"unset", "unset", "a", "b"});
  CHECK(*name == "unset");  // the main greenlet has its own too
  CHECK(name->size() == 5);
}

TEST_CASE_FIXTURE(leak_check, "local: a task's value is destroyed when the task goes away") {
  int alive = 0;
  {
    grove::local<counted> slot{counted(&alive)};
    CHECK(alive == 1);  // the initial value
    auto t = grove::spawn([&] {
      slot->value = 7;
      return alive;
    });
    CHECK(t.get() == 2);  // the initial value and the task's copy
    grove::sleep(std::chrono::milliseconds(1));
    CHECK(alive == 1);  // the task is gone, and its value with it
  }
  CHECK(alive == 0);
}

TEST_CASE_FIXTURE(leak_check, "local: has_value and reset, and raw greenlets have their own values") {
  grove::local<int> counter;
  CHECK_FALSE(counter.has_value());
  *counter = 3;
  CHECK(counter.has_value());
  grove::greenlet g([&] {
    const bool fresh = !counter.has_value();
    *counter = 100;
    return std::any(fresh);
  });
  CHECK(std::any_cast<bool>(g.switch_to()));
  CHECK(*counter == 3);
  counter.reset();
  CHECK_FALSE(counter.has_value());
  CHECK(*counter == 0);
  counter.reset();
}
