// diagnostics.cpp — the blocking detector (GROVE_MONITOR_MS), the task dump on
// a signal (GROVE_DUMP_ON_SIGNAL) and whether dumps show backtraces
// (GROVE_BACKTRACES).
#include <dlfcn.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/uio.h>
#include <unistd.h>
#include <ucontext.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <new>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>

#include <grove/detail/os_threads.hpp>
#include <grove/task.hpp>

#include "backtrace.hpp"
#include "greenlet_impl.hpp"
#include "hub_state.hpp"
#include "hubs.hpp"
#include "settings.hpp"

namespace grove::detail {
namespace {

struct diagnostics_settings {
  unsigned monitor_ms = 0;
  int dump_signal = 0;
  bool backtraces = false;

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
    if (const char* v = std::getenv("GROVE_BACKTRACES"); v != nullptr && *v != '\0') {
      const std::string_view b = v;
      if (b != "0" && b != "1") bad_setting("GROVE_BACKTRACES", v, "not 0 or 1");
      backtraces = b == "1";
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

void on_dump_signal(struct ev_loop*, ev_signal*, int) {
  dump_tasks(std::cerr);
  dump_other_hubs();
}

// Sampling a stuck hub thread for the blocking monitor's report: the watchdog
// sends the thread sample_signal; its handler copies the interrupted registers
// and the top of the stack (up to sample_stack bytes from sp) and returns, and
// the watchdog unwinds from that copy. The thread stops only for the copy, and
// holds no lock the unwinder (libdw: files, malloc, the loader) might need.
// The signal is borrowed only while its disposition is the default (the
// program does not use it). Everything here goes to libc's own
// functions, never the hooks' (which would park a green waiter from inside a
// signal handler): it does not concern the program.
template <class F>
F* libc_function(const char* name) {
  return reinterpret_cast<F*>(::dlsym(RTLD_NEXT, name));
}
struct libc_calls {
  decltype(::sigaction)* sigaction = libc_function<decltype(::sigaction)>("sigaction");
  decltype(::pthread_kill)* pthread_kill = libc_function<decltype(::pthread_kill)>("pthread_kill");
  decltype(::sem_wait)* sem_wait = libc_function<decltype(::sem_wait)>("sem_wait");
  decltype(::sem_timedwait)* sem_timedwait = libc_function<decltype(::sem_timedwait)>("sem_timedwait");
  decltype(::sem_post)* sem_post = libc_function<decltype(::sem_post)>("sem_post");
  bool found() const noexcept { return sigaction && pthread_kill && sem_wait && sem_timedwait && sem_post; }
};

const int sample_signal = SIGRTMAX;
constexpr std::size_t sample_stack = 256 * 1024;
constexpr std::size_t page = 4096;
struct sample_slot {
  libc_calls libc;
  std::mutex one_at_a_time;  // watchdogs of several hubs take turns
  std::atomic<int> state{0};  // 0 idle, 1 asked, 2 taken (regs and stack hold the sample)
  saved_registers regs;
  unsigned char stack[sample_stack];
  sem_t taken;
  bool handler_installed = false;  // guarded by one_at_a_time
  sample_slot() { ::sem_init(&taken, 0, 0); }
};
sample_slot& sampler() {
  static sample_slot* s = new sample_slot;  // never destroyed: a late signal may still look at it
  return *s;
}

void on_sample_signal(int, siginfo_t*, void* context) {
  sample_slot& s = sampler();
  int asked = 1;
  if (!s.state.compare_exchange_strong(asked, 2)) return;  // late, after the watchdog gave up
  const int saved_errno = errno;
  const auto& g = static_cast<ucontext_t*>(context)->uc_mcontext.gregs;
  s.regs.pc = static_cast<std::uintptr_t>(g[REG_RIP]);
  s.regs.sp = static_cast<std::uintptr_t>(g[REG_RSP]);
  s.regs.rbp = static_cast<std::uintptr_t>(g[REG_RBP]);
  s.regs.rbx = static_cast<std::uintptr_t>(g[REG_RBX]);
  s.regs.r12 = static_cast<std::uintptr_t>(g[REG_R12]);
  s.regs.r13 = static_cast<std::uintptr_t>(g[REG_R13]);
  s.regs.r14 = static_cast<std::uintptr_t>(g[REG_R14]);
  s.regs.r15 = static_cast<std::uintptr_t>(g[REG_R15]);
  s.regs.pc_is_return_address = false;
  // One iovec per page: process_vm_readv stops at the first one that is not
  // mapped (the stack's end), where a plain copy would fault.
  iovec local{s.stack, sample_stack};
  iovec remote[sample_stack / page + 1];
  std::size_t n = 0;
  for (std::uintptr_t at = s.regs.sp, end = s.regs.sp + sample_stack; at < end; ++n) {
    const std::uintptr_t next = std::min(end, (at / page + 1) * page);
    remote[n] = iovec{reinterpret_cast<void*>(at), next - at};
    at = next;
  }
  const ssize_t copied = ::process_vm_readv(::getpid(), &local, 1, remote, n, 0);
  s.regs.stack_copy = s.stack;
  s.regs.stack_copy_size = copied > 0 ? static_cast<std::size_t>(copied) : 0;
  s.libc.sem_post(&s.taken);
  errno = saved_errno;
}

// write_stuck_backtrace writes the backtrace of thread t as it is now, or a
// line saying why there is none. Called by a watchdog thread.
void write_stuck_backtrace(std::ostream& out, pthread_t t) {
  sample_slot& s = sampler();
  const std::lock_guard<std::mutex> turn(s.one_at_a_time);
  const libc_calls& libc = s.libc;
  if (!libc.found()) {
    out << "    (no backtrace: libc's sigaction, pthread_kill or semaphores not found)\n";
    return;
  }
  struct sigaction now {};
  libc.sigaction(sample_signal, nullptr, &now);
  const bool ours = (now.sa_flags & SA_SIGINFO) != 0 && now.sa_sigaction == on_sample_signal;
  if (!ours) {
    if (s.handler_installed || now.sa_handler != SIG_DFL) {
      out << "    (no backtrace: the program uses SIGRTMAX, which the monitor samples the thread with)\n";
      return;
    }
    struct sigaction sa {};
    sa.sa_sigaction = on_sample_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    ::sigfillset(&sa.sa_mask);
    if (libc.sigaction(sample_signal, &sa, nullptr) != 0) {
      out << "    (no backtrace: cannot install the sampling signal's handler)\n";
      return;
    }
    // Kept from now on, so that a signal that arrives after the watchdog gave
    // up on it (the thread had it blocked) is harmless.
    s.handler_installed = true;
  }
  s.state.store(1);
  if (libc.pthread_kill(t, sample_signal) != 0) {
    s.state.store(0);
    out << "    (no backtrace: the thread could not be signalled)\n";
    return;
  }
  timespec deadline{};
  ::clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 2;
  while (libc.sem_timedwait(&s.taken, &deadline) != 0) {
    if (errno == EINTR) continue;
    int asked = 1;
    if (s.state.compare_exchange_strong(asked, 0)) {
      out << "    (no backtrace: the thread did not take the sampling signal; it blocks SIGRTMAX)\n";
      return;
    }
    // The handler took it just now: its post is on the way.
    while (libc.sem_wait(&s.taken) != 0) {
    }
    break;
  }
  write_backtrace(out, s.regs, "    ");
  s.state.store(0);
}

}  // namespace

bool backtraces_by_default() noexcept { return settings().backtraces; }

std::string describe_greenlet(greenlet_core* g) {
  if (g == nullptr) return "an unknown greenlet";
  if (g->task != nullptr) return "task \"" + g->task->label() + "\"";
  if (impl(g)->is_main) return "the main greenlet";
  return impl(g)->label().empty() ? "a greenlet" : "greenlet \"" + impl(g)->label() + "\"";
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

namespace {
std::atomic<std::size_t (*)(hub_core&)> stuck_hook{nullptr};

std::size_t hand_off_stuck(hub_core& h) {
  std::size_t (*const hook)(hub_core&) = stuck_hook.load(std::memory_order_acquire);
  return hook != nullptr ? hook(h) : 0;
}
}  // namespace

void set_stuck_hook(std::size_t (*hook)(hub_core&)) noexcept { stuck_hook.store(hook, std::memory_order_release); }

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
      // Green threads placed on this hub that it has not started would wait
      // for the holder: other hubs take them (each period, for late ones).
      const std::size_t handed = hand_off_stuck(*this);
      if (handed > 0) {
        char line[200];
        std::snprintf(line, sizeof line,
                      "grove: blocking monitor: handed %zu not-yet-started green thread%s of the stuck hub "
                      "(running %s) to other hubs\n",
                      handed, handed == 1 ? "" : "s", describe_greenlet(holder).c_str());
        std::fputs(line, stderr);
        std::fflush(stderr);
      }
      if (reported) continue;
      reported = true;
      // Sampling and unwinding take a while: not while holding monitor_lock,
      // which the hub's thread takes to stop the watchdog once it is free.
      lock.unlock();
      std::ostringstream report;
      report << "grove: blocking detected: the hub has not switched for over " << ms << " ms; "
             << describe_greenlet(holder)
             << " holds it (a CPU-bound loop, or a blocking call that is not cooperative); its thread is at:\n";
      write_stuck_backtrace(report, thread);
      const std::string text = report.str();
      std::fwrite(text.data(), 1, text.size(), stderr);
      std::fflush(stderr);
      lock.lock();
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
  thread = ::pthread_self();
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
