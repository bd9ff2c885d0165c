// spread.cpp — green threads over several hubs (see spread.hpp).
#include "spread.hpp"

#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <grove/detail/os_threads.hpp>
#include <grove/sleep.hpp>

#include "libc.hpp"

namespace grove::hooks::spread {
namespace {

constexpr unsigned max_hubs = 1024;

struct alignas(64) slot {
  std::atomic<detail::hub_core*> core{nullptr};
  grove::hub* handle = nullptr;
  pthread_t os_thread{};
  std::atomic<long> load{0};  // unfinished green threads placed here (and the first hub's creator)
};
slot slots[max_hubs];
std::atomic<unsigned> running{0};  // hubs whose slots are filled: 0, 1 (the first) or all that started
std::atomic<bool> group_lock{false};

struct group_guard {
  group_guard() noexcept {
    while (group_lock.exchange(true, std::memory_order_acquire)) ::sched_yield();
  }
  ~group_guard() { group_lock.store(false, std::memory_order_release); }
  group_guard(const group_guard&) = delete;
  group_guard& operator=(const group_guard&) = delete;
};

std::atomic<unsigned> setting{0};

// cpus is the number of CPUs in the process's affinity mask: the default.
unsigned cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  const int n = CPU_COUNT(&set);
  return n < 1 ? 1 : n > static_cast<int>(max_hubs) ? max_hubs : static_cast<unsigned>(n);
}

unsigned read_setting() {
  const char* v = std::getenv("GROVE_HUBS");
  if (v == nullptr || *v == '\0' || std::strcmp(v, "cpus") == 0) return cpus();
  char* end = nullptr;
  const unsigned long n = std::strtoul(v, &end, 10);
  if (*end != '\0' || v[0] < '0' || v[0] > '9' || n < 1 || n > max_hubs) {
    std::fprintf(stderr,
                 "grove: GROVE_HUBS=\"%s\": not a number of hubs between 1 and %u, or cpus (one per CPU this "
                 "process may run on); each hub is an OS thread that runs green threads\n",
                 v, max_hubs);
    std::fflush(stderr);
    std::_Exit(2);
  }
  return static_cast<unsigned>(n);
}

// A hub of the group other than the first: it runs green threads placed on it
// until the process ends. Its own main greenlet only sleeps.
void* hub_thread(void* p) {
  const auto index = static_cast<unsigned>(reinterpret_cast<std::uintptr_t>(p));
  char name[16];
  std::snprintf(name, sizeof name, "grove-hub-%u", index);
  real_pthread_setname_np()(real_pthread_self()(), name);
  grove::hub& h = grove::hub::current();
  slot& s = slots[index];
  s.handle = &h;
  s.os_thread = real_pthread_self()();
  s.core.store(detail::tls_hub, std::memory_order_release);
  for (;;) grove::sleep(std::chrono::hours(24));
}

// start fills slot 0 with the caller's hub and starts the others. Under the lock.
void start(unsigned n) {
  slot& first = slots[0];
  first.handle = &grove::hub::current();
  first.os_thread = real_pthread_self()();
  first.load.store(1, std::memory_order_relaxed);  // the creator runs here too
  first.core.store(detail::tls_hub, std::memory_order_release);
  // The other hubs may hand wake-ups to this one until the process ends: it
  // must outlive its thread, as the preload library makes main's.
  detail::keep_hub_at_exit();
  unsigned started = 1;
  for (unsigned i = 1; i < n; ++i) {
    pthread_t t;
    pthread_attr_t attr;
    ::pthread_attr_init(&attr);
    ::pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc;
    {
      // Started with every asynchronous signal blocked: the hub's own main
      // greenlet takes none; its green threads' masks decide (signals.hpp).
      const detail::helper_thread_scope helper;
      rc = real_pthread_create()(&t, &attr, hub_thread, reinterpret_cast<void*>(static_cast<std::uintptr_t>(i)));
    }
    ::pthread_attr_destroy(&attr);
    if (rc != 0) {
      std::fprintf(stderr, "grove: cannot start hub %u of %u (pthread_create: %s); going on with %u\n", i + 1, n,
                   std::strerror(rc), started);
      break;
    }
    ++started;
  }
  // The new hubs take a moment to make their loops; wait for them here, once.
  for (unsigned i = 1; i < started; ++i) {
    while (slots[i].core.load(std::memory_order_acquire) == nullptr) ::sched_yield();
  }
  running.store(started, std::memory_order_release);
}

}  // namespace

unsigned hubs() {
  unsigned n = setting.load(std::memory_order_relaxed);
  if (n == 0) [[unlikely]] {
    n = read_setting();
    setting.store(n, std::memory_order_relaxed);
  }
  return n;
}

bool choose(place& out) {
  const unsigned n = hubs();
  if (n <= 1) return false;
  detail::hub_core* here = detail::tls_hub;
  unsigned count = running.load(std::memory_order_acquire);
  if (count == 0) [[unlikely]] {
    const group_guard hold;
    if (running.load(std::memory_order_acquire) == 0) start(n);
    count = running.load(std::memory_order_acquire);
  }
  unsigned mine = count;
  for (unsigned i = 0; i < count; ++i) {
    if (slots[i].core.load(std::memory_order_relaxed) == here) {
      mine = i;
      break;
    }
  }
  if (mine == count) return false;
  unsigned best = mine;
  long least = slots[mine].load.load(std::memory_order_relaxed);
  for (unsigned i = 0; i < count; ++i) {
    const long l = slots[i].load.load(std::memory_order_relaxed);
    if (l < least) {
      least = l;
      best = i;
    }
  }
  slot& s = slots[best];
  s.load.fetch_add(1, std::memory_order_relaxed);
  out.index = static_cast<int>(best);
  out.core = s.core.load(std::memory_order_relaxed);
  out.handle = s.handle;
  out.os_thread = s.os_thread;
  return true;
}

void finished(int index) noexcept {
  if (index >= 0) slots[index].load.fetch_sub(1, std::memory_order_relaxed);
}

bool several() noexcept { return running.load(std::memory_order_relaxed) > 1; }

void after_fork_in_child() noexcept {
  for (slot& s : slots) {
    s.core.store(nullptr, std::memory_order_relaxed);
    s.handle = nullptr;
    s.load.store(0, std::memory_order_relaxed);
  }
  running.store(0, std::memory_order_relaxed);
  group_lock.store(false, std::memory_order_relaxed);  // a vanished thread may have held it
}

}  // namespace grove::hooks::spread
