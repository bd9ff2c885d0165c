// spread.cpp — green threads over several hubs (see spread.hpp).
#include "spread.hpp"

#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include <grove/detail/os_threads.hpp>
#include <grove/sleep.hpp>

#include "libc.hpp"

namespace grove::hooks::spread {
namespace {

constexpr unsigned max_hubs = 1024;

// look_item asks a hub to take its own queue (look_run), from another thread.
struct look_item {
  detail::remote_wake w;  // first: look_run finds the item from it
  unsigned index = 0;
};

struct alignas(64) slot {
  std::atomic<detail::hub_core*> core{nullptr};
  grove::hub* handle = nullptr;
  pthread_t os_thread{};
  std::atomic<long> load{0};  // unfinished green threads placed here, queued or running (and the first hub's creator)
  // The queue of threads placed here that no hub has started yet; under queues_lock.
  queued* head = nullptr;
  queued* tail = nullptr;
  std::size_t waiting = 0;
  // idle: the hub found nothing to run or take and sleeps in its poll (set
  // under queues_lock, cleared when it wakes or is woken to take work).
  std::atomic<bool> idle{false};
  std::atomic<bool> look_sent{false};  // its look item is handed over and has not run yet
  // When the pending look was sent (steady clock, ns); 0 while none is, or
  // just before its sender records the time.
  std::atomic<std::int64_t> look_at{0};
  look_item look;
  // Recent CPU use, written by the hub itself in its idle hook: busy_pm is
  // the share of time it ran rather than slept, in per mille, averaged over
  // about cpu_window_ns up to its last sleep (at slept_at); awake_since is
  // when it last woke (0 while it sleeps). See cpu_use.
  std::atomic<std::uint32_t> busy_pm{0};
  std::atomic<std::int64_t> slept_at{0};
  std::atomic<std::int64_t> awake_since{0};
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

// This OS thread's hub's number in the group; -1 for any other thread.
constinit thread_local int my_index = -1;

std::atomic<bool> queues_lock{false};
void (*claim_fn)(queued&, const place&) = nullptr;
void (*start_fn)(queued&) = nullptr;

place place_of(unsigned i) {
  const slot& s = slots[i];
  return place{static_cast<int>(i), s.core.load(std::memory_order_relaxed), s.handle, s.os_thread};
}

std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(detail::clock::now().time_since_epoch()).count();
}

// append_locked puts q at the back of hub i's queue. Under the lock.
void append_locked(unsigned i, queued& q) {
  slot& s = slots[i];
  q.next = nullptr;
  q.on = static_cast<int>(i);
  (s.tail != nullptr ? s.tail->next : s.head) = &q;
  s.tail = &q;
  ++s.waiting;
}

// take_locked takes the first thread of hub from's queue for hub `to`
// (claiming it), or returns nullptr for an empty queue. Under the lock.
queued* take_locked(unsigned from, unsigned to) {
  slot& s = slots[from];
  queued* q = s.head;
  if (q == nullptr) return nullptr;
  s.head = q->next;
  if (s.head == nullptr) s.tail = nullptr;
  --s.waiting;
  q->next = nullptr;
  claim_fn(*q, place_of(to));
  q->on = -1;
  if (from != to) {
    s.load.fetch_sub(1, std::memory_order_relaxed);
    slots[to].load.fetch_add(1, std::memory_order_relaxed);
  }
  return q;
}

void send_look(unsigned i) noexcept;

// look_run runs on hub i's greenlet: it takes the first thread of hub i's
// queue, and looks again after its next poll for the next. One at a time: a
// thread taken becomes a task on this hub's ready ring, which no other hub
// can take from; the rest must stay in the queue, where an idle hub can take
// them if the first turns out to compute without a pause.
void look_run(detail::remote_wake& w) {
  const unsigned i = reinterpret_cast<look_item&>(w).index;
  slots[i].look_at.store(0, std::memory_order_relaxed);
  slots[i].look_sent.store(false, std::memory_order_release);
  lock_queues();
  queued* q = take_locked(i, i);
  const bool more = slots[i].waiting > 0;
  unlock_queues();
  if (q != nullptr) start_fn(*q);
  if (more) send_look(i);
}

// send_look makes hub i look at its queue soon (and so, if it finds it
// empty and nothing else to do, at the others' when it goes idle again).
void send_look(unsigned i) noexcept {
  slot& s = slots[i];
  if (s.look_sent.exchange(true, std::memory_order_acq_rel)) return;
  s.look_at.store(now_ns(), std::memory_order_relaxed);
  detail::hand_over(*s.core.load(std::memory_order_relaxed), s.look.w);
}

// A hub whose look has been pending this long, though it is awake, is stuck
// in one green thread (or its OS thread has not been given a CPU): an idle
// hub may take its queued threads. Long beside one pass of a hub's loop
// (a batch of tasks, 0.5 ms at most when they give way), short beside
// waiting for a CPU-bound thread to end.
constexpr std::int64_t stuck_after_ns = 2'000'000;

// Recent CPU use is averaged over about this long: beside stuck_after_ns, long
// enough to see a thread that computes, short enough to follow a change.
constexpr std::int64_t cpu_window_ns = 100'000'000;

// cpu_use is hub i's recent CPU use in per mille: its average up to its last
// sleep, decayed by the time it has slept since, or all of it while it has
// been awake for more than the window (one thread computing without a pause).
std::int64_t cpu_use(const slot& s, std::int64_t now) {
  const std::int64_t awake = s.awake_since.load(std::memory_order_relaxed);
  const std::int64_t pm = s.busy_pm.load(std::memory_order_relaxed);
  if (awake != 0) return now - awake >= cpu_window_ns ? 1000 : pm;
  const std::int64_t slept = now - s.slept_at.load(std::memory_order_relaxed);
  return slept <= 0 ? pm : pm * cpu_window_ns / (cpu_window_ns + slept);
}

// note_sleep updates this hub's CPU use as it goes to sleep in its poll.
void note_sleep(slot& s) {
  const std::int64_t now = now_ns();
  const std::int64_t awake = s.awake_since.load(std::memory_order_relaxed);
  const std::int64_t last = s.slept_at.load(std::memory_order_relaxed);
  if (awake != 0 && last != 0 && now > last) {
    // Since the last sleep began: asleep until awake, then busy until now.
    const std::int64_t span = now - last;
    const std::int64_t busy_pm = (now - awake) * 1000 / span;
    const std::int64_t weight_pm = span >= cpu_window_ns ? 1000 : span * 1000 / cpu_window_ns;
    const std::int64_t old = s.busy_pm.load(std::memory_order_relaxed);
    s.busy_pm.store(static_cast<std::uint32_t>(old + (busy_pm - old) * weight_pm / 1000), std::memory_order_relaxed);
  }
  s.slept_at.store(now, std::memory_order_relaxed);
  s.awake_since.store(0, std::memory_order_relaxed);
}

// steal_timer wakes an idle hub when a busy hub's queue becomes its to take
// (one per hub thread, never freed: it must outlive the hub's last poll).
constinit thread_local detail::timer* steal_timer = nullptr;

void wake_to_steal(detail::timer&) {}  // the poll returns, and the hub goes idle again: on_idle

// on_idle is every hub's idle hook (detail::set_idle_hook). A hub of the
// group with nothing ready takes the first thread of its own queue, or else
// of the longest queue of another hub (one: see look_run); with nothing to
// take it is marked idle, so that the next thread placed on a busy hub wakes it.
bool on_idle(bool entering) {
  const int me = my_index;
  if (me < 0) return false;
  slot& mine = slots[me];
  if (!entering) {
    mine.idle.store(false, std::memory_order_relaxed);
    mine.awake_since.store(now_ns(), std::memory_order_relaxed);
    return false;
  }
  const unsigned count = running.load(std::memory_order_acquire);
  queued* taken = nullptr;
  std::int64_t wake_at = 0;
  lock_queues();
  if (mine.waiting > 0) {
    taken = take_locked(static_cast<unsigned>(me), static_cast<unsigned>(me));
  } else {
    // The awake hub whose look has been pending longest: once that is
    // stuck_after_ns, its first queued thread is this hub's to take. A hub
    // asleep in its poll is on its way to its queue: never robbed.
    unsigned from = count;
    std::int64_t oldest = 0;
    for (unsigned j = 0; j < count; ++j) {
      const slot& o = slots[j];
      if (static_cast<int>(j) == me || o.waiting == 0 || o.idle.load(std::memory_order_relaxed)) continue;
      const std::int64_t at = o.look_at.load(std::memory_order_relaxed);
      if (at != 0 && (from == count || at < oldest)) {
        from = j;
        oldest = at;
      }
    }
    if (from < count) {
      if (now_ns() - oldest >= stuck_after_ns) {
        taken = take_locked(from, static_cast<unsigned>(me));
      } else {
        wake_at = oldest + stuck_after_ns;
      }
    }
    if (taken == nullptr) mine.idle.store(true, std::memory_order_relaxed);
  }
  unlock_queues();
  if (wake_at != 0) {
    if (steal_timer == nullptr) steal_timer = new (std::nothrow) detail::timer;
    if (steal_timer != nullptr && !steal_timer->active()) {
      const detail::deadline d{std::chrono::duration_cast<detail::clock::duration>(std::chrono::nanoseconds(wake_at))};
      try {
        steal_timer->start(d, wake_to_steal, nullptr);
      } catch (...) {
        // no timer: the next poll that returns looks again
      }
    }
  }
  if (taken != nullptr) {
    start_fn(*taken);
    return true;  // it runs on: no sleep
  }
  note_sleep(mine);
  return false;
}

// on_stuck is the blocking monitor's hook (detail::set_stuck_hook): the
// queue of a hub stuck in one green thread goes to the other hubs, each
// thread to the one with the fewest threads then.
std::size_t on_stuck(detail::hub_core& h) {
  const unsigned count = running.load(std::memory_order_acquire);
  unsigned stuck = count;
  for (unsigned i = 0; i < count; ++i) {
    if (slots[i].core.load(std::memory_order_relaxed) == &h) stuck = i;
  }
  if (stuck == count || count < 2) return 0;
  bool wake[max_hubs] = {};
  std::size_t n = 0;
  lock_queues();
  slot& from = slots[stuck];
  while (from.head != nullptr) {
    unsigned best = stuck;
    for (unsigned j = 0; j < count; ++j) {
      if (j == stuck) continue;
      if (best == stuck ||
          slots[j].load.load(std::memory_order_relaxed) < slots[best].load.load(std::memory_order_relaxed)) {
        best = j;
      }
    }
    queued* q = from.head;
    from.head = q->next;
    --from.waiting;
    append_locked(best, *q);
    from.load.fetch_sub(1, std::memory_order_relaxed);
    slots[best].load.fetch_add(1, std::memory_order_relaxed);
    wake[best] = true;
    ++n;
  }
  from.tail = nullptr;
  unlock_queues();
  for (unsigned j = 0; j < count; ++j) {
    if (wake[j]) send_look(j);
  }
  return n;
}

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
  my_index = static_cast<int>(index);
  slot& s = slots[index];
  s.handle = &h;
  s.os_thread = real_pthread_self()();
  s.core.store(detail::tls_hub, std::memory_order_release);
  for (;;) grove::sleep(std::chrono::hours(24));
}

// start fills slot 0 with the caller's hub and starts the others. Under the lock.
void start(unsigned n) {
  for (unsigned i = 0; i < n; ++i) {
    slots[i].look.w.run = look_run;
    slots[i].look.index = i;
  }
  detail::set_idle_hook(on_idle);
  detail::set_stuck_hook(on_stuck);
  my_index = 0;
  const std::int64_t now = now_ns();
  for (unsigned i = 0; i < n; ++i) {
    slots[i].slept_at.store(now, std::memory_order_relaxed);
    slots[i].awake_since.store(now, std::memory_order_relaxed);
  }
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

void lock_queues() noexcept {
  while (queues_lock.exchange(true, std::memory_order_acquire)) {
    for (int spins = 0; queues_lock.load(std::memory_order_relaxed); ++spins) {
      if (spins < 100) {
        __builtin_ia32_pause();
      } else {
        ::sched_yield();  // its holder's OS thread may have been preempted
      }
    }
  }
}

void unlock_queues() noexcept { queues_lock.store(false, std::memory_order_release); }

void set_starter(void (*claim)(queued&, const place&), void (*start)(queued&)) noexcept {
  claim_fn = claim;
  start_fn = start;
}

void queue(queued& q, const place& where) noexcept {
  const auto i = static_cast<unsigned>(where.index);
  const unsigned count = running.load(std::memory_order_acquire);
  int kick = -1;
  lock_queues();
  slot& s = slots[i];
  append_locked(i, q);
  if (!s.idle.load(std::memory_order_relaxed)) {
    // A busy hub may not look at its queue for a while: an idle one takes it.
    for (unsigned j = 0; j < count; ++j) {
      if (j != i && slots[j].idle.load(std::memory_order_relaxed)) {
        slots[j].idle.store(false, std::memory_order_relaxed);
        kick = static_cast<int>(j);
        break;
      }
    }
  }
  unlock_queues();
  send_look(i);
  if (kick >= 0) send_look(static_cast<unsigned>(kick));
}

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
  // The load: unfinished threads placed there, plus recent CPU use (a hub
  // that computes all the time counts two threads more). The thread count
  // keeps long-lived threads (a server's connections) even across hubs;
  // the CPU use steers a new thread away from a hub that computes.
  const std::int64_t now = now_ns();
  const auto load_of = [now](const slot& s) {
    return s.load.load(std::memory_order_relaxed) * 1000 + 2 * cpu_use(s, now);
  };
  unsigned best = mine;
  std::int64_t least = load_of(slots[mine]);
  for (unsigned i = 0; i < count; ++i) {
    const std::int64_t l = load_of(slots[i]);
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
    s.head = s.tail = nullptr;  // queued threads were the parent's: they vanished
    s.waiting = 0;
    s.idle.store(false, std::memory_order_relaxed);
    s.look_sent.store(false, std::memory_order_relaxed);
    s.look_at.store(0, std::memory_order_relaxed);
    s.busy_pm.store(0, std::memory_order_relaxed);
    s.slept_at.store(0, std::memory_order_relaxed);
    s.awake_since.store(0, std::memory_order_relaxed);
  }
  my_index = -1;
  // The hub's loop is a new one in the child: a steal timer armed in the old
  // one would look active for ever. Left, not stopped (its loop is gone).
  steal_timer = nullptr;
  queues_lock.store(false, std::memory_order_relaxed);
  running.store(0, std::memory_order_relaxed);
  group_lock.store(false, std::memory_order_relaxed);  // a vanished thread may have held it
}

}  // namespace grove::hooks::spread
