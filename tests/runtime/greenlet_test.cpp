// greenlet_test.cpp — greenlet's semantics, case by case (issue 2's list, in order).
#include <any>
#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <grove/greenlet.hpp>

#include "../support.hpp"

using grove::greenlet;
using grove_test::guard;
using grove_test::leak_check;

namespace {

greenlet parent_of_current() { return *greenlet::current().parent(); }

}  // namespace

// 1
TEST_CASE_FIXTURE(leak_check,
                  "switch_to into an unstarted greenlet calls run with the value and run's result "
                  "returns to the parent") {
  int seen = 0;
  greenlet g([&](std::any v) {
    seen = std::any_cast<int>(v);
    return std::any(std::string("done"));
  });
  CHECK_FALSE(g.started());
  const std::any r = g.switch_to(42);
  CHECK(seen == 42);
  CHECK(std::any_cast<std::string>(r) == "done");
  CHECK(g.started());
  CHECK(g.dead());
  CHECK_FALSE(bool(g));
}

TEST_CASE_FIXTURE(leak_check, "run may take no argument and return nothing") {
  int calls = 0;
  greenlet g([&] { ++calls; });
  const std::any r = g.switch_to(7);
  CHECK(calls == 1);
  CHECK_FALSE(r.has_value());
  CHECK(g.dead());
}

// 2
TEST_CASE_FIXTURE(leak_check, "switch_to returns whatever is switched back: a long ping-pong with values both ways") {
  greenlet main = greenlet::current();
  constexpr long rounds = 100000;
  long received = 0;
  greenlet g([&](std::any v) {
    long x = std::any_cast<long>(v);
    while (x >= 0) {
      ++received;
      x = std::any_cast<long>(main.switch_to(x * 2));
    }
    return std::any(std::string("bye"));
  });
  for (long i = 0; i < rounds; ++i) REQUIRE(std::any_cast<long>(g.switch_to(i)) == 2 * i);
  CHECK(received == rounds);
  CHECK(std::any_cast<std::string>(g.switch_to(-1L)) == "bye");
  CHECK(g.dead());
}

// 3
TEST_CASE_FIXTURE(leak_check, "an exception escaping run is rethrown in the parent and the greenlet is dead") {
  greenlet g([] { throw std::runtime_error("boom in g"); });
  CHECK_THROWS_WITH_AS(g.switch_to(), "boom in g", std::runtime_error);
  CHECK(g.dead());
}

// 4
TEST_CASE_FIXTURE(leak_check,
                  "throw_to a suspended greenlet raises at its switch point, and if caught there it "
                  "runs on") {
  std::string caught;
  greenlet g([&] {
    try {
      parent_of_current().switch_to(1);
    } catch (const std::logic_error& e) {
      caught = e.what();
    }
    return std::any(std::string("carried on"));
  });
  CHECK(std::any_cast<int>(g.switch_to()) == 1);
  const std::any r = g.throw_to(std::make_exception_ptr(std::logic_error("thrown in")));
  CHECK(caught == "thrown in");
  CHECK(std::any_cast<std::string>(r) == "carried on");
  CHECK(g.dead());
}

TEST_CASE_FIXTURE(leak_check, "throw_to a suspended greenlet that does not catch rethrows in the parent") {
  greenlet g([] { parent_of_current().switch_to(); });
  g.switch_to();
  CHECK_THROWS_AS(g.throw_to(std::make_exception_ptr(std::out_of_range("x"))), std::out_of_range);
  CHECK(g.dead());
}

// 5
TEST_CASE_FIXTURE(leak_check,
                  "throw_to an unstarted greenlet: run never executes, it is dead, and the exception "
                  "goes to the parent") {
  bool ran = false;
  greenlet g([&] { ran = true; });
  CHECK_THROWS_WITH_AS(g.throw_to(std::make_exception_ptr(std::runtime_error("never ran"))), "never ran",
                       std::runtime_error);
  CHECK_FALSE(ran);
  CHECK(g.dead());

  greenlet h([&] { ran = true; });
  const std::any r = h.throw_to();  // greenlet_exit
  CHECK_FALSE(ran);
  CHECK(h.dead());
  CHECK(r.type() == typeid(grove::greenlet_exit));
}

// 6
TEST_CASE_FIXTURE(leak_check, "greenlet_exit escaping run is swallowed and the parent receives it as the value") {
  int destroyed = 0;
  greenlet g([&] {
    guard on_stack(&destroyed);
    parent_of_current().switch_to(1);
    return std::any(std::string("not reached"));
  });
  g.switch_to();
  std::any r;
  CHECK_NOTHROW(r = g.throw_to());
  CHECK(r.type() == typeid(grove::greenlet_exit));
  CHECK(destroyed == 1);
  CHECK(g.dead());

  greenlet thrower([] { throw grove::greenlet_exit(); });
  CHECK(thrower.switch_to().type() == typeid(grove::greenlet_exit));
}

// 7
TEST_CASE_FIXTURE(leak_check,
                  "switch_to a dead greenlet goes to its parent, or the nearest live ancestor, with the "
                  "value") {
  greenlet main = greenlet::current();
  std::vector<int> middle_got;
  greenlet middle([&](std::any v) {
    middle_got.push_back(std::any_cast<int>(v));
    greenlet leaf([](std::any x) { return x; });  // leaf's parent is middle
    CHECK(std::any_cast<int>(leaf.switch_to(5)) == 5);
    REQUIRE(leaf.dead());
    // Switching to the dead leaf lands in its parent: middle itself, so the value comes straight back.
    CHECK(std::any_cast<int>(leaf.switch_to(6)) == 6);
    // From main, switching to the dead leaf must resume middle.
    auto resumed_with = main.switch_to(std::any(leaf));
    middle_got.push_back(std::any_cast<int>(resumed_with));
    return std::any(100);
  });
  const std::any dead_leaf = middle.switch_to(1);
  greenlet leaf = std::any_cast<greenlet>(dead_leaf);
  CHECK(leaf.dead());
  CHECK(std::any_cast<int>(leaf.switch_to(2)) == 100);  // resumed middle, which finished with 100
  CHECK(middle_got == std::vector<int>{1, 2});
  // Both leaf and middle are dead: the nearest live ancestor is main (us).
  CHECK(std::any_cast<int>(leaf.switch_to(3)) == 3);
}

// 8
TEST_CASE_FIXTURE(leak_check, "a dying greenlet's result goes to its parent as it is at the time of death") {
  greenlet main = greenlet::current();
  std::any adopted_got;
  greenlet adopter([&] {
    adopted_got = main.switch_to(std::string("adopter parked"));
    return std::any(std::string("adopter done"));
  });
  CHECK(std::any_cast<std::string>(adopter.switch_to()) == "adopter parked");
  greenlet child([&] {
    main.switch_to(std::string("child parked"));
    return std::any(std::string("child result"));
  });
  CHECK(std::any_cast<std::string>(child.switch_to()) == "child parked");
  child.set_parent(adopter);
  CHECK(*child.parent() == adopter);
  // child dies: its result goes to adopter (its parent now), which finishes and returns to main.
  CHECK(std::any_cast<std::string>(child.switch_to()) == "adopter done");
  CHECK(std::any_cast<std::string>(adopted_got) == "child result");
}

TEST_CASE_FIXTURE(leak_check, "an unstarted parent is started with its child's result") {
  greenlet parent_g([](std::any v) { return std::any(std::any_cast<int>(v) + 1); });
  greenlet child([] { return std::any(41); }, parent_g);
  CHECK(std::any_cast<int>(child.switch_to()) == 42);
  CHECK(parent_g.dead());
}

TEST_CASE_FIXTURE(leak_check, "set_parent refuses cycles") {
  greenlet a([] {});
  greenlet b([] {}, a);
  greenlet c([] {}, b);
  CHECK_THROWS_AS(a.set_parent(c), grove::error);
  CHECK_THROWS_AS(a.set_parent(a), grove::error);
  CHECK_THROWS_WITH(a.set_parent(b), doctest::Contains("cycle"));
  CHECK(*a.parent() == greenlet::current());                         // unchanged
  CHECK_THROWS_AS(greenlet::current().set_parent(a), grove::error);  // a main greenlet has no parent
}

TEST_CASE_FIXTURE(leak_check, "set_parent refuses a greenlet of another thread") {
  greenlet here([] {});
  std::string message;
  std::thread t([&] {
    greenlet there([] {});
    try {
      here.set_parent(there);
    } catch (const grove::error& e) {
      message = e.what();
    }
    try {
      there.set_parent(here);
    } catch (const grove::error& e) {
      message += "|";
      message += e.what();
    }
  });
  t.join();
  CHECK(message.find("another thread") != std::string::npos);
  CHECK(message.find('|') != std::string::npos);
  CHECK(*here.parent() == greenlet::current());
}

// 9
TEST_CASE_FIXTURE(leak_check,
                  "current() is the thread's implicit main greenlet, the greenlet itself inside run, "
                  "and different on each thread") {
  greenlet main = greenlet::current();
  CHECK(main.is_main());
  CHECK(main.started());
  CHECK_FALSE(main.dead());
  CHECK_FALSE(main.parent().has_value());
  CHECK(greenlet::current() == main);

  std::optional<greenlet> inside;
  greenlet g([&] { inside = greenlet::current(); });
  g.switch_to();
  REQUIRE(inside.has_value());
  CHECK(*inside == g);
  CHECK(greenlet::current() == main);

  bool other_is_main = false;
  bool other_differs = false;
  std::thread t([&] {
    greenlet m = greenlet::current();
    other_is_main = m.is_main();
    other_differs = !(m == main);
  });
  t.join();
  CHECK(other_is_main);
  CHECK(other_differs);
}

// 10
TEST_CASE_FIXTURE(leak_check,
                  "dropping the last handle of a suspended greenlet throws greenlet_exit into it and "
                  "destroys what is on its stack") {
  int destroyed = 0;
  bool saw_exit = false;
  {
    greenlet g([&] {
      guard on_stack(&destroyed);
      try {
        parent_of_current().switch_to();
      } catch (const grove::greenlet_exit&) {
        saw_exit = true;
        throw;
      }
    });
    g.switch_to();
    CHECK(destroyed == 0);
  }
  CHECK(saw_exit);
  CHECK(destroyed == 1);
}

TEST_CASE_FIXTURE(leak_check,
                  "a greenlet that swallows its kill and switches away is reported, not corrupted, and "
                  "killed again when its thread exits") {
  int destroyed = 0;
  int kills_seen = 0;
  std::string report;
  std::thread t([&] {
    grove_test::stderr_capture err;
    greenlet main = greenlet::current();
    {
      greenlet stubborn([&] {
        guard on_stack(&destroyed);
        for (;;) {
          try {
            main.switch_to();
          } catch (const grove::greenlet_exit&) {
            if (++kills_seen == 2) throw;  // the second kill is accepted
          }
        }
      });
      stubborn.set_name("stubborn");
      stubborn.switch_to();
    }  // last handle gone: killed, refuses, switches back to us
    CHECK(kills_seen == 1);
    CHECK(destroyed == 0);
    report = err.text();
  });  // thread exit: killed again
  t.join();
  CHECK(kills_seen == 2);
  CHECK(destroyed == 1);
  CHECK(report.find("\"stubborn\" caught greenlet_exit") != std::string::npos);
}

TEST_CASE_FIXTURE(leak_check, "a greenlet still suspended when its thread exits is killed and its stack unwound") {
  int destroyed = 0;
  std::optional<greenlet> kept;  // a handle that outlives the thread
  std::thread t([&] {
    greenlet g([&] {
      guard on_stack(&destroyed);
      parent_of_current().switch_to();
    });
    g.switch_to();
    kept = g;
  });
  t.join();
  CHECK(destroyed == 1);
  CHECK(kept->dead());
  CHECK_THROWS_AS(kept->switch_to(), grove::error);  // its thread is gone
  kept.reset();
}

TEST_CASE_FIXTURE(leak_check, "the last handle dropped on another thread kills the greenlet on its own thread") {
  int destroyed = 0;
  std::optional<greenlet> handle;
  greenlet g([&] {
    guard on_stack(&destroyed);
    parent_of_current().switch_to();
  });
  g.switch_to();
  handle = std::move(g);
  std::thread t([&] { handle.reset(); });
  t.join();
  CHECK(destroyed == 0);        // not on the foreign thread
  greenlet([] {}).switch_to();  // our next switch runs the queued kill
  CHECK(destroyed == 1);
}

// 11
TEST_CASE_FIXTURE(leak_check,
                  "handles are shared: a copy names the same greenlet, and a child keeps its parent "
                  "alive") {
  greenlet main = greenlet::current();
  greenlet g([&](std::any v) { return main.switch_to(v); });
  greenlet copy = g;
  CHECK(copy == g);
  CHECK(std::hash<greenlet>{}(copy) == std::hash<greenlet>{}(g));
  copy.switch_to(1);
  CHECK(g.started());  // started through the copy
  CHECK_FALSE(g.dead());
  g.switch_to(2);
  CHECK(copy.dead());

  int parent_destroyed = 0;
  std::optional<greenlet> child;
  const std::size_t before = greenlet::live_count();
  {
    greenlet parent_g([&](std::any) {
      guard on_stack(&parent_destroyed);
      return std::any(1);
    });
    child.emplace([] { return std::any(0); }, parent_g);
  }                                             // parent_g's handle is gone, but child still holds its parent
  CHECK(greenlet::live_count() == before + 2);  // child, and the parent it keeps
  CHECK(child->parent().has_value());
  CHECK(std::any_cast<int>(child->switch_to()) == 1);  // child's death starts the parent
  CHECK(parent_destroyed == 1);
}

// 12
TEST_CASE_FIXTURE(leak_check, "switching to a greenlet of another thread is a grove::error") {
  greenlet here([] {});
  std::string message;
  std::thread t([&] {
    try {
      here.switch_to(1);
    } catch (const grove::error& e) {
      message = e.what();
    }
  });
  t.join();
  CHECK(message.find("another thread") != std::string::npos);
  CHECK_FALSE(here.started());
  bool throw_refused = false;
  std::thread([&] {
    try {
      here.throw_to();
    } catch (const grove::error&) {
      throw_refused = true;
    }
  }).join();
  CHECK(throw_refused);
  CHECK_FALSE(here.dead());
}

TEST_CASE_FIXTURE(leak_check, "greenlets on two threads run independently at the same time") {
  std::atomic<int> ready{0};
  auto work = [&](int seed) {
    greenlet main = greenlet::current();
    long total = 0;
    greenlet g([&](std::any v) {
      long x = std::any_cast<long>(v);
      for (;;) x = std::any_cast<long>(main.switch_to(x + seed));
    });
    ready.fetch_add(1);
    while (ready.load() < 2) std::this_thread::yield();  // both threads switch concurrently
    long x = 0;
    for (int i = 0; i < 20000; ++i) x = std::any_cast<long>(g.switch_to(x));
    total = x;
    return total;
  };
  long a = 0, b = 0;
  std::thread t1([&] { a = work(1); });
  std::thread t2([&] { b = work(3); });
  t1.join();
  t2.join();
  CHECK(a == 20000);
  CHECK(b == 60000);
}

// 13
TEST_CASE_FIXTURE(leak_check, "exception state is per greenlet: a catch block survives another greenlet's throw") {
  greenlet main = greenlet::current();
  std::string rethrown_in_a;
  bool a_saw_current = false;
  int a_uncaught = -1;
  bool b_saw_none_at_start = false;
  std::string b_caught;
  int b_uncaught_in_dtor = -1;

  std::optional<greenlet> b;
  greenlet a([&] {
    try {
      throw std::runtime_error("A's exception");
    } catch (...) {
      b->switch_to();  // B throws and catches its own while we are inside this catch block
      a_saw_current = std::current_exception() != nullptr;
      a_uncaught = std::uncaught_exceptions();
      try {
        throw;  // must be A's own
      } catch (const std::runtime_error& e) {
        rethrown_in_a = e.what();
      }
    }
  });
  b.emplace([&] {
    b_saw_none_at_start = std::current_exception() == nullptr && std::uncaught_exceptions() == 0;
    struct probe {
      int* out;
      ~probe() { *out = std::uncaught_exceptions(); }
    };
    try {
      probe p{&b_uncaught_in_dtor};
      throw std::logic_error("B's exception");
    } catch (const std::logic_error& e) {
      b_caught = e.what();
    }
    try {
      throw std::out_of_range("B leaves one caught");
    } catch (...) {
      main.switch_to();  // parks inside its own catch block
    }
  });
  // main is not inside any catch block, and must see none of A's or B's exceptions.
  a.switch_to();  // a → b → main
  CHECK(std::current_exception() == nullptr);
  CHECK(std::uncaught_exceptions() == 0);
  CHECK(b_saw_none_at_start);
  CHECK(b_caught == "B's exception");
  CHECK(b_uncaught_in_dtor == 1);
  a.switch_to();  // a resumes inside its catch
  CHECK(rethrown_in_a == "A's exception");
  CHECK(a_saw_current);
  CHECK(a_uncaught == 0);
  CHECK(std::current_exception() == nullptr);
  b->switch_to();  // let b leave its catch block and finish
  CHECK(b->dead());
}

TEST_CASE_FIXTURE(leak_check, "a new greenlet starts with no current exception even when started inside a catch") {
  bool clean = false;
  try {
    throw 7;
  } catch (int) {
    greenlet g([&] { clean = std::current_exception() == nullptr && std::uncaught_exceptions() == 0; });
    g.switch_to();
    CHECK(std::current_exception() != nullptr);  // ours is still there
  }
  CHECK(clean);
}

// 14
TEST_CASE_FIXTURE(leak_check, "deep recursion works with a large stack") {
  struct deep {
    static long down(long n) {
      volatile char frame[256];
      frame[0] = static_cast<char>(n);
      return n == 0 ? frame[0] : down(n - 1) + 1 + (frame[0] - frame[0]);
    }
  };
  greenlet g([] { return std::any(deep::down(50000)); }, greenlet::current(), 64 * 1024 * 1024);
  CHECK(g.stack_size() >= 64 * 1024 * 1024);
  CHECK(std::any_cast<long>(g.switch_to()) == 50000);
}

TEST_CASE_FIXTURE(leak_check, "a small stack size is honoured") {
  greenlet g(
      [] {
        int local = 0;
        return std::any(reinterpret_cast<std::uintptr_t>(&local));
      },
      greenlet::current(), 20 * 1024);
  CHECK(g.stack_size() == 20 * 1024);
  const auto addr = std::any_cast<std::uintptr_t>(g.switch_to());
  CHECK(g.stack_size() == 20 * 1024);
  (void)addr;
  CHECK_THROWS_AS((greenlet([] {}, greenlet::current(), 1024)), grove::error);
  CHECK_THROWS_AS((greenlet([] {}, greenlet::current(), std::size_t{4} << 30)), grove::error);
}

TEST_CASE_FIXTURE(leak_check, "run may capture move-only state") {
  auto owned = std::make_unique<int>(99);
  greenlet g([p = std::move(owned)] { return std::any(*p); });
  CHECK(std::any_cast<int>(g.switch_to()) == 99);
}

// 15
TEST_CASE_FIXTURE(leak_check, "settrace sees every switch with from and to, and returns the previous hook") {
  std::vector<std::pair<greenlet, greenlet>> seen;
  const auto previous =
      greenlet::settrace([&](const greenlet& from, const greenlet& to) { seen.emplace_back(from, to); });
  CHECK_FALSE(bool(previous));
  greenlet main = greenlet::current();
  greenlet g([&] { main.switch_to(); });
  g.switch_to();  // main → g
  g.switch_to();  // main → g again
                  // g dies → main
  int second_calls = 0;
  const auto mine = greenlet::settrace([&](const greenlet&, const greenlet&) { ++second_calls; });
  CHECK(bool(mine));
  greenlet([] {}).switch_to();
  greenlet::settrace(nullptr);
  REQUIRE(seen.size() == 4);
  CHECK((seen[0].first == main && seen[0].second == g));
  CHECK((seen[1].first == g && seen[1].second == main));
  CHECK((seen[2].first == main && seen[2].second == g));
  CHECK((seen[3].first == g && seen[3].second == main));
  CHECK(second_calls == 2);
  seen.clear();
}

// 16
TEST_CASE_FIXTURE(leak_check, "a million short-lived greenlets run and finish with no leak") {
  const std::size_t greenlets_before = greenlet::live_count();
  const std::size_t stacks_before = grove::stack_statistics().in_use;
  long sum = 0;
  for (int i = 0; i < 1000000; ++i) {
    greenlet g([i] { return std::any(i & 1); });
    sum += std::any_cast<int>(g.switch_to());
    REQUIRE(g.dead());
  }
  CHECK(sum == 500000);
  CHECK(greenlet::live_count() == greenlets_before);
  CHECK(grove::stack_statistics().in_use == stacks_before);
}
