// diagnostics.cpp — the blocking detector (GROVE_MONITOR_MS) and the task dump
// on a signal (GROVE_DUMP_ON_SIGNAL).
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <new>
#include <string>
#include <string_view>

#include <grove/detail/os_threads.hpp>
#include <grove/task.hpp>

#include "greenlet_impl.hpp"
#include "hub_state.hpp"
#include "settings.hpp"

namespace grove::detail {
namespace {

struct diagnostics_settings {
  unsigned monitor_ms = 0;
  int dump_signal = 0;

  diagnostics_settings() {
    if (const char* v = std::getenv("GROVE_MONITOR_MS"); v != nullptr && *v != '\0') {
      char* end = nullptr;
      const unsigned long ms = std::strtoul(v, &end, 10);
      if (*end != '\0' || ms == 0 || ms > 3'600'000 || v[0] == '-') {
        bad_setting("GROVE_MONITOR_MS", v, "not a number of milliseconds between 1 and 3600000");
      }
      monitor_ms = static_cast<unsigned>(ms);
    }
    if (const char* v = std::getenv("GROVE_DUMP_ON_SIGNAL"); v != nullptr && *v != '\0') {
      dump_signal = parse_signal(v);
      if (dump_signal == 0) bad_setting("GROVE_DUMP_ON_SIGNAL", v, "not a signal; use e.g. SIGUSR1, USR2 or 10");
    }
  }

  static int parse_signal(std::string_view s) {
    if (s.substr(0, 3) == "SIG") s.remove_prefix(3);
    static constexpr std::pair<std::string_view, int> names[] = {
        {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"HUP", SIGHUP}, {"QUIT", SIGQUIT}, {"WINCH", SIGWINCH}, {"INFO", 0}};
    for (const auto& [name, number] : names) {
      if (s == name) return number;
    }
    int n = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return 0;
      n = n * 10 + (c - '0');
      if (n > 64) return 0;
    }
    return n;
  }
};

const diagnostics_settings& settings() {
  static const diagnostics_settings s;
  return s;
}

std::atomic<bool> dump_signal_taken{false};

void on_dump_signal(struct ev_loop*, ev_signal*, int) { dump_tasks(std::cerr); }

}  // namespace

std::string describe_greenlet(greenlet_core* g) {
  if (g == nullptr) return "an unknown greenlet";
  if (g->task != nullptr) return "task \"" + g->task->label() + "\"";
  if (impl(g)->is_main) return "the main greenlet";
  return impl(g)->name.empty() ? "a greenlet" : "greenlet \"" + impl(g)->name + "\"";
}

void hub_state::start_diagnostics() {
  const auto& s = settings();
  if (s.dump_signal != 0 && !dump_signal_taken.exchange(true)) {
    ev_signal_init(&dump_signal, on_dump_signal, s.dump_signal);
    ev_signal_start(loop, &dump_signal);
    ev_unref(loop);  // listening for the signal must not keep blocked tasks from loop_exit
    dump_signal_active = true;
  }
  if (s.monitor_ms == 0) return;
  monitoring = true;
  start_monitor(s.monitor_ms);
}

void hub_state::start_monitor(unsigned ms) {
  const auto period = std::chrono::milliseconds(ms);
  const helper_thread_scope own;  // the watchdog must run while the hub's thread is stuck
  monitor = std::thread([this, period, ms] {
    std::uint64_t last = switches.load(std::memory_order_acquire);
    bool reported = false;
    std::unique_lock<std::mutex> lock(monitor_lock);
    while (!monitor_wake.wait_for(lock, period, [this] { return monitor_stop; })) {
      const std::uint64_t now = switches.load(std::memory_order_acquire);
      greenlet_core* holder = running.load(std::memory_order_acquire);
      if (now != last || holder == greenlet) {
        last = now;
        reported = false;
        continue;
      }
      if (reported) continue;
      reported = true;
      std::fprintf(stderr,
                   "grove: blocking detected: the hub has not switched for over %u ms; %s holds it (a CPU-bound "
                   "loop, or a blocking call that is not cooperative)\n",
                   ms, describe_greenlet(holder).c_str());
      std::fflush(stderr);
    }
  });
}

void hub_state::stop_diagnostics() noexcept {
  if (dump_signal_active) {
    ev_ref(loop);
    ev_signal_stop(loop, &dump_signal);
    dump_signal_active = false;
    dump_signal_taken.store(false);
  }
  if (!monitoring) return;
  {
    std::lock_guard<std::mutex> hold(monitor_lock);
    monitor_stop = true;
  }
  monitor_wake.notify_all();
  monitor.join();
  monitoring = false;
}

void hub_state::restart_monitor_after_fork() noexcept {
  if (!monitoring) return;
  // The parent's watchdog does not exist here; its handle and the objects it
  // waited on are left as they were (it may have held the lock at the fork).
  new (&monitor) std::thread;
  new (&monitor_lock) std::mutex;
  new (&monitor_wake) std::condition_variable;
  monitor_stop = false;
  try {
    start_monitor(settings().monitor_ms);
  } catch (const std::exception&) {
    monitoring = false;  // no thread for it: the child runs unwatched
  }
}

void hub_state::note_switch(greenlet_core* g) noexcept {
  running.store(g, std::memory_order_release);
  switches.fetch_add(1, std::memory_order_release);
}

void note_switch(hub_core& h, greenlet_core* g) noexcept { state_of(h).note_switch(g); }

}  // namespace grove::detail
