// gdb_test.cpp — the gdb extension (runtime/gdb/grove_gdb.py) in batch-mode gdb
// against programs with parked tasks: a program linking libgrove, and a plain C
// program whose pthreads are green threads under the preload library.
#include <string>
#include <vector>

#include "../support.hpp"

using grove_test::run_program;

namespace {

enum class load { source, auto_load };

// gdb_batch runs program under gdb in batch mode, stops it in function
// stop_in, and runs commands there; returns everything gdb printed. The
// extension is sourced, or left to gdb's auto-loading: the build puts it beside
// libgrove.so.0 and libgrove-preload.so as their objfile-gdb.py scripts.
std::string gdb_batch(const std::vector<std::string>& program, const std::string& stop_in,
                      const std::vector<std::string>& commands, const std::vector<std::string>& setup = {},
                      load how = load::source) {
  std::vector<std::string> argv = {"/usr/bin/gdb", "-nx", "-batch", "-iex", "set debuginfod enabled off", "-iex",
                                   "set auto-load safe-path /"};
  if (how == load::source) argv.insert(argv.end(), {"-ex", "source " GROVE_GDB_SCRIPT});
  for (const auto& s : setup) argv.insert(argv.end(), {"-ex", s});
  argv.insert(argv.end(), {"-ex", "set breakpoint pending on", "-ex", "break " + stop_in, "-ex", "run"});
  for (const auto& c : commands) argv.insert(argv.end(), {"-ex", c});
  argv.insert(argv.end(), {"-ex", "kill", "--args"});
  argv.insert(argv.end(), program.begin(), program.end());
  const auto r = run_program(argv);
  return r.out;
}

bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

// section returns text from the first line containing start up to the next
// line containing end (or the end).
std::string section(const std::string& text, const std::string& start, const std::string& end) {
  const auto a = text.find(start);
  if (a == std::string::npos) return "";
  const auto b = text.find(end, a + start.size());
  return text.substr(a, b == std::string::npos ? std::string::npos : b - a);
}

}  // namespace

TEST_CASE("grove tasks in gdb lists every task of every hub with its state and what it waits on") {
  const std::string out = gdb_batch({GROVE_GDB_PROBE}, "grove_gdb_probe_ready", {"grove tasks"});
  INFO(out);
  CHECK(has(out, "Breakpoint 1, grove_gdb_probe_ready"));
  CHECK(has(out, "hub of thread 1 "));
  CHECK(has(out, ": 3 unfinished task(s)"));
  CHECK(has(out, "task \"sleeper\" (id 1, 0x"));
  CHECK(has(out, "): blocked on sleep"));
  CHECK(has(out, "task \"waiter\" (id 2, 0x"));
  CHECK(has(out, "): blocked on event (0x"));
  CHECK(has(out, "task \"unborn\" (id 3, 0x"));
  CHECK(has(out, "): not started"));
  CHECK(has(out, "hub of thread 2 "));
  CHECK(has(out, ": 1 unfinished task(s)"));
  CHECK(has(out, "task \"other-thread-waiter\" (id 1, 0x"));
  CHECK(!has(out, "Python Exception"));
}

TEST_CASE("grove bt in gdb prints the backtrace a parked task is parked in, and leaves the thread as it was") {
  const std::string out = gdb_batch({GROVE_GDB_PROBE}, "grove_gdb_probe_ready",
                                    {"grove bt sleeper", "echo ==all==\\n", "grove bt all", "echo ==after==\\n",
                                     "bt", "echo ==bad==\\n", "grove bt nosuch"});
  INFO(out);
  const std::string one = section(out, "task \"sleeper\"", "==all==");
  CHECK(has(one, "sleep_in_gdb_probe ()"));
  CHECK(has(one, "grove::sleep"));
  CHECK(!has(one, "wait_in_gdb_probe"));
  const std::string all = section(out, "==all==", "==after==");
  CHECK(has(all, "sleep_in_gdb_probe ()"));
  CHECK(has(section(all, "task \"waiter\"", "task \"unborn\""), "wait_in_gdb_probe ("));
  CHECK(has(section(all, "task \"unborn\"", "task \"other-thread-waiter\""), "not started: no stack yet"));
  CHECK(has(section(all, "task \"other-thread-waiter\"", "==after=="), "wait_on_other_thread ("));
  // The thread's own registers are back: bt shows where the program stopped.
  const std::string after = section(out, "==after==", "==bad==");
  CHECK(has(after, "#0  grove_gdb_probe_ready ()"));
  CHECK(has(after, "main ()"));
  CHECK(has(out, "grove bt: no unfinished task is 'nosuch' (see grove tasks)"));
  CHECK(!has(out, "Python Exception"));
}

TEST_CASE("under the preload library, gdb shows a plain C program's green threads as tasks with backtraces") {
  const std::string out =
      gdb_batch({GROVE_GDB_C_PROGRAM}, "all_parked", {"grove tasks", "echo ==all==\\n", "grove bt all"},
                {"set environment LD_PRELOAD=" GROVE_PRELOAD_LIBRARY}, load::auto_load);
  INFO(out);
  CHECK(has(out, "hub of thread 1 "));
  CHECK(has(out, "blocked on"));
  const std::string all = section(out, "==all==", "\n[Inferior");
  CHECK(has(all, "sleeping_worker ("));
  CHECK(has(all, "reading_worker ("));
  CHECK(!has(out, "Python Exception"));
}

#ifdef GROVE_GDB_PROBE_SHARED
TEST_CASE("gdb loads the extension by itself for a program using libgrove.so") {
  const std::string out =
      gdb_batch({GROVE_GDB_PROBE_SHARED}, "grove_gdb_probe_ready", {"grove tasks", "grove bt waiter"}, {}, load::auto_load);
  INFO(out);
  CHECK(has(out, "task \"waiter\" (id 2, 0x"));
  CHECK(has(out, "wait_in_gdb_probe ("));
  CHECK(!has(out, "Python Exception"));
}
#endif
