// hub_test.cpp — the hub: scheduling order, yield, posts from other threads,
// loop_exit, keepalive, dump_tasks, the monitor and the settings.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <grove/event.hpp>
#include <grove/hub.hpp>
#include <grove/sleep.hpp>
#include <grove/task.hpp>

#include "../support.hpp"

using namespace std::chrono_literals;
using grove_test::leak_check;
using grove_test::run_program;

namespace {
const std::string probe = GROVE_HUB_PROBE;
}

TEST_CASE_FIXTURE(leak_check, "ready tasks run in FIFO order and yield lets every other ready task run once") {
  std::vector<std::string> log;
  auto worker = [&](std::string name) {
    for (int i = 0; i < 3; ++i) {
      log.push_back(name + std::to_string(i));
      grove::yield();
    }
  };
  auto a = grove::spawn(worker, "a");
  auto b = grove::spawn(worker, "b");
  auto c = grove::spawn(worker, "c");
  grove::joinall(std::vector<grove::task<void>>{a, b, c});
  CHECK(log == std::vector<std::string>{"a0", "b0", "c0", "a1", "b1", "c1", "a2", "b2", "c2"});
}

TEST_CASE_FIXTURE(leak_check, "a busy ready queue cannot starve timers") {
  bool stop = false;
  long spins = 0;
  auto spinner = [&] {
    while (!stop && spins < 50'000'000) {
      ++spins;
      grove::yield();
    }
  };
  auto a = grove::spawn(spinner);
  auto b = grove::spawn(spinner);
  grove::sleep(5ms);  // the hub must poll its timers while a and b keep yielding
  stop = true;
  grove::joinall(std::vector<grove::task<void>>{a, b});
  CHECK(spins < 50'000'000);
}

TEST_CASE_FIXTURE(leak_check, "timers cannot starve ready tasks") {
  std::vector<grove::task<void>> sleepers;
  for (int i = 0; i < 100; ++i)
    sleepers.push_back(grove::spawn([] {
      for (int j = 0; j < 20; ++j) grove::sleep(std::chrono::microseconds(1));
    }));
  int progress = 0;
  auto busy = grove::spawn([&] {
    for (int i = 0; i < 1000; ++i) {
      ++progress;
      grove::yield();
    }
  });
  grove::joinall(sleepers);
  busy.join();
  CHECK(progress == 1000);
}

TEST_CASE_FIXTURE(leak_check, "post from another thread runs the callback on the hub's thread and wakes it") {
  grove::hub& h = grove::hub::current();
  grove::event posted;
  std::thread::id ran_on;
  std::thread other([&] {
    std::this_thread::sleep_for(20ms);
    h.post([&] {
      ran_on = std::this_thread::get_id();
      posted.set();
    });
  });
  grove::hub::keepalive hold(h);  // the other thread may post: not a loop_exit
  CHECK(posted.wait(5s));
  CHECK(ran_on == std::this_thread::get_id());
  other.join();
}

TEST_CASE_FIXTURE(leak_check, "posts from several threads all run, in order per thread") {
  grove::hub& h = grove::hub::current();
  std::vector<int> from_a, from_b;
  std::atomic<int> done{0};
  grove::event all;
  auto poster = [&](std::vector<int>* out) {
    for (int i = 0; i < 1000; ++i) {
      h.post([&, out, i] {
        out->push_back(i);
        if (++done == 2000) all.set();
      });
    }
  };
  grove::hub::keepalive hold(h);
  std::thread ta(poster, &from_a);
  std::thread tb(poster, &from_b);
  CHECK(all.wait(10s));
  ta.join();
  tb.join();
  REQUIRE(from_a.size() == 1000);
  REQUIRE(from_b.size() == 1000);
  for (int i = 0; i < 1000; ++i) {
    CHECK(from_a[i] == i);
    CHECK(from_b[i] == i);
  }
}

TEST_CASE_FIXTURE(leak_check, "a blocking call inside a posted callback is refused with a grove::error") {
  grove_test::stderr_capture err;
  grove::hub& h = grove::hub::current();
  h.post([] { grove::sleep(1ms); });
  grove::sleep(5ms);
  const std::string out = err.text();
  CHECK(out.find("blocking call was made in the hub itself") != std::string::npos);
}

TEST_CASE_FIXTURE(leak_check, "a task blocked when nothing can ever wake it gets loop_exit, and so does its joiner") {
  grove::event never;
  auto stuck = grove::spawn([&] { never.wait(); });
  stuck.set_name("stuck");
  try {
    stuck.join();
    FAIL("join returned");
  } catch (const grove::loop_exit& e) {
    CHECK(std::string(e.what()).find("nothing can ever wake it") != std::string::npos);
  }
  CHECK(stuck.join(1s));
  CHECK_THROWS_AS(stuck.get(), grove::loop_exit);
}

TEST_CASE_FIXTURE(leak_check, "a keepalive held by another thread keeps a waiting task from loop_exit") {
  grove::hub& h = grove::hub::current();
  grove::event from_outside;
  auto hold = std::make_unique<grove::hub::keepalive>(h);
  std::thread other([&, keep = std::move(hold)]() mutable {
    std::this_thread::sleep_for(50ms);
    h.post([&] { from_outside.set(); });
    keep.reset();
  });
  CHECK_NOTHROW(from_outside.wait());
  other.join();
}

TEST_CASE_FIXTURE(leak_check, "dump_tasks lists every unfinished task with its state and what it waits on") {
  grove::event never;
  auto waiting = grove::spawn([&] { never.wait(1s); });
  waiting.set_name("waits-for-event");
  auto sleeping = grove::spawn([] { grove::sleep(1s); });
  sleeping.set_name("sleeps");
  auto fresh = grove::spawn([] {});
  fresh.set_name("fresh");
  grove::sleep(1ms);  // the first two block; fresh runs too
  auto unborn = grove::spawn([] {});
  unborn.set_name("unborn");
  std::ostringstream out;
  grove::dump_tasks(out);
  const std::string text = out.str();
  CHECK(text.find("3 unfinished task(s)") != std::string::npos);
  CHECK(text.find("task \"waits-for-event\": blocked on event") != std::string::npos);
  CHECK(text.find("task \"sleeps\": blocked on sleep") != std::string::npos);
  CHECK(text.find("task \"unborn\": not started") != std::string::npos);
  CHECK(text.find("fresh") == std::string::npos);
  never.set();
  sleeping.kill();
  grove::joinall(std::vector<grove::task<void>>{waiting, unborn});
}

namespace {
volatile int after_call = 0;
[[gnu::noinline]] void park_in_dump_test(grove::event& e) {
  e.wait(1s);
  after_call = 1;
}
[[gnu::noinline]] void sleep_in_dump_test() {
  grove::sleep(1s);
  after_call = 2;
}
}  // namespace

TEST_CASE_FIXTURE(leak_check, "dump_tasks with backtraces shows the functions suspended tasks are parked in") {
  grove::event never;
  auto waiting = grove::spawn([&] { park_in_dump_test(never); });
  waiting.set_name("parked");
  auto sleeping = grove::spawn([] { sleep_in_dump_test(); });
  sleeping.set_name("sleeping");
  grove::sleep(1ms);
  std::ostringstream out;
  grove::dump_tasks(out, true);
  const std::string text = out.str();
  INFO(text);
  const auto parked = text.find("task \"parked\"");
  const auto sleeping_at = text.find("task \"sleeping\"");
  REQUIRE(parked != std::string::npos);
  REQUIRE(sleeping_at != std::string::npos);
  // Each task's frames follow its own line: the first task's stop at the next line.
  const auto first = std::min(parked, sleeping_at);
  const auto second = std::max(parked, sleeping_at);
  const std::string first_block = text.substr(first, second - first);
  const std::string second_block = text.substr(second);
  const std::string& park_block = parked < sleeping_at ? first_block : second_block;
  const std::string& sleep_block = parked < sleeping_at ? second_block : first_block;
  CHECK(park_block.find("#0 ") != std::string::npos);
  CHECK(park_block.find("park_in_dump_test(grove::event&)") != std::string::npos);
#ifdef GROVE_TESTS_HAVE_DEBUG_INFO
  CHECK(park_block.find("hub_test.cpp:") != std::string::npos);  // file and line from the debug information
#endif
  CHECK(sleep_block.find("sleep_in_dump_test()") != std::string::npos);
  CHECK(sleep_block.find("park_in_dump_test") == std::string::npos);
  // Without: one line per task, as before.
  std::ostringstream plain;
  grove::dump_tasks(plain, false);
  CHECK(plain.str().find("park_in_dump_test") == std::string::npos);
  never.set();
  sleeping.kill();
  grove::joinall(std::vector<grove::task<void>>{waiting, sleeping});
}

TEST_CASE_FIXTURE(leak_check, "GROVE_MONITOR_MS reports a task that holds the hub, by name, with its backtrace") {
  const auto r = run_program({probe, "monitor"}, {"GROVE_MONITOR_MS=50"});
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("blocking detected") != std::string::npos);
  CHECK(r.out.find("task \"cpu-hog\" holds it") != std::string::npos);
  CHECK(r.out.find("spin_in_probe()") != std::string::npos);
  CHECK(r.out.find("done\n") != std::string::npos);  // sampled, then let go on
  const auto quiet = run_program({probe, "monitor"});
  CHECK(quiet.out.find("blocking detected") == std::string::npos);
}

TEST_CASE_FIXTURE(leak_check,
                  "a program that exits while the blocking monitor unwinds its report exits cleanly, and the report "
                  "looks for debug information on this machine only (no debuginfod client is loaded)") {
  // The task spins past the monitor's period and exits the process from
  // there: at some of these delays exit runs while the report is unwinding.
  for (int ms = 30; ms <= 126; ms += 4) {
    CAPTURE(ms);
    const auto r = run_program({probe, "exit-spinning", std::to_string(ms)}, {"GROVE_MONITOR_MS=25"});
    INFO(r.out);
    CHECK(r.signal == 0);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("exiting\n") != std::string::npos);
  }
  // libdw's standard lookup asks debuginfod servers for what is not on disk
  // (here libc's debug information): that loads libcurl and its TLS
  // libraries into the program from the monitor's thread, and may wait on
  // the network.
  const auto r = run_program({probe, "monitor", "show-libraries"}, {"GROVE_MONITOR_MS=50"});
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("spin_in_probe()") != std::string::npos);
  CHECK(r.out.find("libdw.so") != std::string::npos);  // the report was symbolized here
  CHECK(r.out.find("libdebuginfod") == std::string::npos);
  CHECK(r.out.find("libcurl") == std::string::npos);
}

TEST_CASE_FIXTURE(leak_check, "GROVE_DUMP_ON_SIGNAL prints the task dump when the signal arrives") {
  const auto r = run_program({probe, "dump"}, {"GROVE_DUMP_ON_SIGNAL=SIGUSR1"});
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("task \"event-waiter\": blocked on event") != std::string::npos);
  CHECK(r.out.find("task \"sleeper\": blocked on sleep") != std::string::npos);
  CHECK(r.out.find("sleep_in_probe") == std::string::npos);  // backtraces are off by default
  const auto traced = run_program({probe, "dump"}, {"GROVE_DUMP_ON_SIGNAL=SIGUSR1", "GROVE_BACKTRACES=1"});
  INFO(traced.out);
  CHECK(traced.exit_code == 0);
  CHECK(traced.out.find("sleep_in_probe()") != std::string::npos);
  CHECK(traced.out.find("wait_in_probe(grove::event&)") != std::string::npos);
}

TEST_CASE_FIXTURE(leak_check, "bad GROVE_MONITOR_MS, GROVE_DUMP_ON_SIGNAL and GROVE_BACKTRACES values are a message and exit status 2") {
  auto r = run_program({probe, "start"}, {"GROVE_MONITOR_MS=soon"});
  CHECK(r.exit_code == 2);
  CHECK(r.out.find("GROVE_MONITOR_MS=\"soon\"") != std::string::npos);
  r = run_program({probe, "start"}, {"GROVE_MONITOR_MS=0"});
  CHECK(r.exit_code == 2);
  r = run_program({probe, "start"}, {"GROVE_DUMP_ON_SIGNAL=SIGNOPE"});
  CHECK(r.exit_code == 2);
  CHECK(r.out.find("not a signal") != std::string::npos);
  r = run_program({probe, "start"}, {"GROVE_BACKTRACES=yes"});
  CHECK(r.exit_code == 2);
  CHECK(r.out.find("GROVE_BACKTRACES=\"yes\": not 0 or 1") != std::string::npos);
  r = run_program({probe, "start"}, {"GROVE_MONITOR_MS=100", "GROVE_DUMP_ON_SIGNAL=USR2", "GROVE_BACKTRACES=1"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "started\n");
}

TEST_CASE_FIXTURE(leak_check, "each thread has its own hub, and tasks on two threads run at the same time") {
  std::atomic<int> both{0};
  auto work = [&] {
    both.fetch_add(1);
    auto t = grove::spawn([&] {
      while (both.load() < 2) grove::sleep(1ms);  // needs the other thread's hub to run meanwhile
      return 1;
    });
    return t.get();
  };
  int a = 0, b = 0;
  std::thread ta([&] { a = work(); });
  std::thread tb([&] { b = work(); });
  ta.join();
  tb.join();
  CHECK(a + b == 2);
}
