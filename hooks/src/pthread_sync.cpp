// pthread_sync.cpp — pthread mutexes, condition variables, rwlocks, barriers,
// spinlocks, once and POSIX semaphores that green threads wait on
// cooperatively, and that OS threads can share with them.
//
// Each object keeps its state in the program's own pthread object, in fields
// glibc's initialisers set (so PTHREAD_MUTEX_INITIALIZER and the other static
// initialisers work, and glibc's *_init, *_destroy and attribute functions are
// used as they are), and waits in the parking lot (parking.hpp). The hooks
// implement every operation that touches that state, for every caller: an
// object is never driven by glibc's code and grove's at once.
//
// Left to glibc, waiting for their OS thread (a green thread polls instead):
// process-shared objects, robust and priority-protocol mutexes — their waiters
// may be in another process, which no parking lot reaches.
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <unwind.h>

#include <ares.h>
#include <ev.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iterator>

#include <grove/sleep.hpp>

#include "libc.hpp"
#include "parking.hpp"
#include "spread.hpp"
#include "threads.hpp"

namespace grove::hooks {
namespace {

using parking::result;

// Spinning before parking pays only when the holder runs on another CPU.
constexpr int spin_tries = 100;

void relax() noexcept { __builtin_ia32_pause(); }

// ---------------------------------------------------------------------------
// Mutexes
//
// __lock is a three-state word (0 free, 1 locked, 2 locked and maybe waited
// for), as in glibc's own lowlevellock; __count is the recursion depth; the
// owner (owner_id()) and the owner's hub sit in __list, which glibc uses only
// for robust mutexes, and those are glibc's.

constexpr int kind_recursive = PTHREAD_MUTEX_RECURSIVE_NP;
constexpr int kind_errorcheck = PTHREAD_MUTEX_ERRORCHECK_NP;
constexpr int kind_glibc_only = 16 | 32 | 64 | 128;  // robust, prio-inherit, prio-protect, process-shared

static_assert(sizeof(pthread_mutex_t) == 40 && offsetof(__pthread_mutex_s, __list) == 24);

struct mutex_ref {
  pthread_mutex_t* m;
  std::atomic_ref<int> word() const noexcept { return std::atomic_ref<int>(m->__data.__lock); }
  int kind() const noexcept { return __atomic_load_n(&m->__data.__kind, __ATOMIC_RELAXED); }
  bool glibcs() const noexcept { return (kind() & kind_glibc_only) != 0; }
  int type() const noexcept { return kind() & 3; }
  std::uintptr_t* owner_slot() const noexcept { return reinterpret_cast<std::uintptr_t*>(&m->__data.__list); }
  std::uintptr_t owner() const noexcept { return __atomic_load_n(owner_slot(), __ATOMIC_RELAXED); }
  detail::hub_core* owner_hub() const noexcept {
    return reinterpret_cast<detail::hub_core*>(__atomic_load_n(owner_slot() + 1, __ATOMIC_RELAXED));
  }
  void set_owner(std::uintptr_t id, detail::hub_core* h) const noexcept {
    __atomic_store_n(owner_slot(), id, __ATOMIC_RELAXED);
    __atomic_store_n(owner_slot() + 1, reinterpret_cast<std::uintptr_t>(h), __ATOMIC_RELAXED);
  }
};

// acquire takes the word: 0 (taken), EBUSY (try only), ETIMEDOUT.
int acquire(const mutex_ref& m, limit l, bool try_only, std::exception_ptr& deferred) noexcept {
  auto w = m.word();
  int expected = 0;
  if (w.compare_exchange_strong(expected, 1, std::memory_order_acquire, std::memory_order_relaxed)) return 0;
  if (try_only) return EBUSY;
  const bool coop = cooperative();
  if (!coop) {
    for (int i = 0; i < spin_tries; ++i) {
      relax();
      expected = 0;
      if (w.load(std::memory_order_relaxed) == 0 &&
          w.compare_exchange_strong(expected, 1, std::memory_order_acquire, std::memory_order_relaxed)) {
        return 0;
      }
    }
  }
  for (;;) {
    if (w.exchange(2, std::memory_order_acquire) == 0) return 0;
    // A holder on this hub can only let go if this green thread parks on the
    // hub; one on another OS thread lets go by itself (grove's own locks are
    // such: held for a moment by pool workers and other hubs), so with one hub
    // the caller waits on its OS thread and never switches inside runtime
    // code. With several hubs the holder may be a green thread of another hub
    // that parks while it holds the lock, or one of this hub whose ownership is
    // not written yet (it is, just after the word is taken): blocking this OS
    // thread could then stop the very holder, so green callers always park.
    const bool on_hub = coop && (m.owner_hub() == detail::tls_hub || spread::several());
    bool taken = false;
    const result r = parking::park(
        m.m,
        [&] {
          taken = w.exchange(2, std::memory_order_acquire) == 0;
          return !taken;
        },
        l, &deferred, !on_hub);
    if (taken) return 0;
    if (r == result::timed_out) return ETIMEDOUT;
  }
}

void release_word(const mutex_ref& m) noexcept {
  if (m.word().exchange(0, std::memory_order_release) == 2) parking::unpark_one(m.m);
}

int mutex_lock(pthread_mutex_t* mp, limit l, bool try_only) noexcept {
  const mutex_ref m{mp};
  const std::uintptr_t me = owner_id();
  const int type = m.type();
  if (type == kind_recursive && m.owner() == me) {
    if (mp->__data.__count == UINT_MAX) return EAGAIN;
    ++mp->__data.__count;
    return 0;
  }
  if (type == kind_errorcheck && m.owner() == me) return try_only ? EBUSY : EDEADLK;
  std::exception_ptr deferred;
  const int rc = acquire(m, l, try_only, deferred);
  parking::rearm(deferred);
  if (rc != 0) return rc;
  m.set_owner(me, cooperative() ? detail::tls_hub : nullptr);
  mp->__data.__count = 1;
  return 0;
}

int mutex_unlock(pthread_mutex_t* mp) noexcept {
  const mutex_ref m{mp};
  const int type = m.type();
  if (type == kind_recursive || type == kind_errorcheck) {
    if (m.owner() != owner_id() || m.word().load(std::memory_order_relaxed) == 0) return EPERM;
    if (type == kind_recursive && --mp->__data.__count != 0) return 0;
  }
  m.set_owner(0, nullptr);
  release_word(m);
  return 0;
}

// An unlock as a scheduling point.
//
// Natively an unlock is where a thread that computes and takes an uncontended
// lock now and then (liblzma's workers: every 16 KiB) in effect lets a thread
// woken by another core run: that one runs on a core of its own, or the
// kernel preempts. Here a green thread woken from another hub (or another OS
// thread) only runs once its hub polls, which it does at the running green
// thread's next call that blocks or yields; an uncontended lock never does.
// So while such a hand-over waits (hub_core::remote_pending) and the hub's
// slice is used up (the test give_way_if_due makes), the hooked
// pthread_mutex_unlock gives way. Wakes within one hub do not count: the hub
// has one core's work to do either way, and slicing a computation finer than
// it must costs its caches (xz -T2 on one hub: 1.12x slower).
//
// Only for an unlock called by the program's own code. The runtime takes
// pthread mutexes too, inside the objects it calls: the allocator (jemalloc,
// tcmalloc), libstdc++, libgcc's unwinder, libc, libev, c-ares, libdw. An unlock
// there may come in the middle of a switch or of a change to the hub's own
// structures (a ready ring that grows calls malloc), where giving way would
// re-enter them. So the unlock's return address must lie outside every object
// that holds one of those or grove itself; the verdict for each address is
// kept in a small per-thread cache, as dladdr takes the loader's lock. Where
// grove is linked into the program itself, or the allocator is (a static
// jemalloc), the program's unlocks never give way: that loses the scheduling
// point, never correctness.
//
// Not in cond_wait's own unlock, which parks at once anyway. Costs two loads
// when nothing waits; one clock read and a cache look-up when something does.
// A kill or timeout raised meanwhile is deferred to the next blocking call.

bool same_object(const Dl_info& caller, const void* anchor) noexcept {
  Dl_info a;
  return dladdr(anchor, &a) != 0 && a.dli_fbase == caller.dli_fbase;
}

bool program_code(const void* pc) noexcept {
  Dl_info caller;
  if (dladdr(pc, &caller) == 0 || caller.dli_fbase == nullptr) return false;
  const void* const runtime_objects[] = {
      reinterpret_cast<const void*>(&::malloc),                      // the allocator
      reinterpret_cast<const void*>(&program_code),                  // the hooks
      reinterpret_cast<const void*>(&detail::yield_to_poll),         // libgrove
      reinterpret_cast<const void*>(&std::set_terminate),            // libstdc++
      reinterpret_cast<const void*>(&_Unwind_RaiseException),       // libgcc_s
      reinterpret_cast<const void*>(real_pthread_mutex_unlock()),   // libc
      reinterpret_cast<const void*>(&ev_run),                        // libev
      reinterpret_cast<const void*>(&ares_library_init),             // c-ares
  };
  for (const void* anchor : runtime_objects) {
    if (same_object(caller, anchor)) return false;
  }
  // Opened on demand for backtraces: libdw and the libelf it needs.
  const char* name = caller.dli_fname != nullptr ? caller.dli_fname : "";
  return std::strstr(name, "/libdw") == nullptr && std::strstr(name, "/libelf") == nullptr;
}

struct caller_verdict {
  const void* pc;
  bool program;
};
constinit thread_local caller_verdict verdicts[8] __attribute__((tls_model("initial-exec"))) = {};
constinit thread_local unsigned next_verdict __attribute__((tls_model("initial-exec"))) = 0;

bool called_by_program(const void* pc) noexcept {
  for (const caller_verdict& v : verdicts) {
    if (v.pc == pc) return v.program;
  }
  const bool program = program_code(pc);
  verdicts[next_verdict++ % std::size(verdicts)] = {pc, program};
  return program;
}

void give_way_if_others_wait(const void* caller) noexcept {
  detail::hub_core* h = detail::tls_hub;
  if (h == nullptr || !h->remote_pending.load(std::memory_order_relaxed)) return;
  if (!cooperative() || !detail::slice_used_up(*h) || !called_by_program(caller)) return;
  std::exception_ptr deferred;
  try {
    give_way();
  } catch (...) {
    deferred = std::current_exception();
  }
  parking::rearm(deferred);
}

// ---------------------------------------------------------------------------
// Condition variables
//
// __g_signals[0] counts signals (a waiter parks only while it is unchanged
// since it read it, under the lot's lock: no lost wake-up); __g_signals[1]
// counts the waiters that may be parked, so a signal with none skips the lot.
// __wrefs keeps glibc's flags: bit 0 process-shared, bit 1 CLOCK_MONOTONIC.

struct cond_ref {
  pthread_cond_t* c;
  std::atomic_ref<unsigned> seq() const noexcept { return std::atomic_ref<unsigned>(c->__data.__g_signals[0]); }
  std::atomic_ref<unsigned> waiters() const noexcept { return std::atomic_ref<unsigned>(c->__data.__g_signals[1]); }
  unsigned flags() const noexcept { return __atomic_load_n(&c->__data.__wrefs, __ATOMIC_RELAXED); }
  bool shared() const noexcept { return (flags() & 1) != 0; }
  clockid_t clock() const noexcept { return (flags() & 2) != 0 ? CLOCK_MONOTONIC : CLOCK_REALTIME; }
};

int cond_wait(pthread_cond_t* cp, pthread_mutex_t* mp, limit l) {
  const cond_ref c{cp};
  c.waiters().fetch_add(1);
  const unsigned s = c.seq().load();
  if (const int rc = mutex_unlock(mp); rc != 0) {
    c.waiters().fetch_sub(1);
    return rc;
  }
  result r = result::unparked;
  std::exception_ptr interrupted;
  try {
    r = parking::park(cp, [&] { return c.seq().load() == s; }, l);
    if (r != result::unparked) c.waiters().fetch_sub(1);
  } catch (...) {
    interrupted = std::current_exception();  // a cancellation point: it unwinds, with the mutex held again
  }
  mutex_lock(mp, limit::never(), false);
  if (interrupted) std::rethrow_exception(interrupted);
  return r == result::timed_out ? ETIMEDOUT : 0;
}

int cond_wake(pthread_cond_t* cp, std::size_t most) noexcept {
  const cond_ref c{cp};
  c.seq().fetch_add(1);
  if (c.waiters().load() == 0) return 0;
  if (const std::size_t n = parking::unpark(cp, most); n != 0) c.waiters().fetch_sub(static_cast<unsigned>(n));
  return 0;
}

// ---------------------------------------------------------------------------
// Read-write locks
//
// __readers holds the state: the count of readers, a writer bit and a bit that
// says waiters may be parked. The writer's owner_id() is in __pad2. Readers
// are preferred, as in glibc's default kind.

constexpr unsigned rw_writer = 1u << 30;
constexpr unsigned rw_waiters = 1u << 31;
constexpr unsigned rw_readers = rw_writer - 1;

struct rwlock_ref {
  pthread_rwlock_t* r;
  // Writers waiting, counted for PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP,
  // the one kind whose readers let a waiting writer go first.
  std::atomic_ref<unsigned> writers_waiting() const noexcept { return std::atomic_ref<unsigned>(r->__data.__writers); }
  bool prefers_writers() const noexcept {
    return __atomic_load_n(&r->__data.__flags, __ATOMIC_RELAXED) == PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP;
  }
  std::atomic_ref<unsigned> state() const noexcept { return std::atomic_ref<unsigned>(r->__data.__readers); }
  std::atomic_ref<unsigned long> writer() const noexcept { return std::atomic_ref<unsigned long>(r->__data.__pad2); }
  bool shared() const noexcept { return __atomic_load_n(&r->__data.__shared, __ATOMIC_RELAXED) != 0; }
};

// mark_waiting sets the waiters bit while `busy` says the lock is unavailable;
// false once it is available (the caller retries instead of parking).
template <class Busy>
bool mark_waiting(const rwlock_ref& rw, Busy busy) noexcept {
  auto st = rw.state();
  unsigned s = st.load();
  while (busy(s)) {
    if ((s & rw_waiters) != 0 || st.compare_exchange_weak(s, s | rw_waiters)) return true;
  }
  return false;
}

int rw_rdlock(pthread_rwlock_t* rp, limit l, bool try_only) noexcept {
  const rwlock_ref rw{rp};
  auto st = rw.state();
  const bool writers_first = rw.prefers_writers();
  const auto writer_waits = [&] { return writers_first && rw.writers_waiting().load() != 0; };
  std::exception_ptr deferred;
  int rc = 0;
  for (;;) {
    unsigned s = st.load(std::memory_order_relaxed);
    if ((s & rw_writer) == 0 && !writer_waits()) {
      if ((s & rw_readers) == rw_readers) {
        rc = EAGAIN;
        break;
      }
      if (st.compare_exchange_weak(s, s + 1, std::memory_order_acquire)) break;
      continue;
    }
    if (try_only) {
      rc = EBUSY;
      break;
    }
    if (rw.writer().load(std::memory_order_relaxed) == owner_id()) {
      rc = EDEADLK;
      break;
    }
    const auto busy = [&](unsigned v) { return (v & rw_writer) != 0 || writer_waits(); };
    if (parking::park(rp, [&] { return mark_waiting(rw, busy); }, l, &deferred) == result::timed_out) {
      rc = ETIMEDOUT;
      break;
    }
  }
  parking::rearm(deferred);
  return rc;
}

int rw_wrlock(pthread_rwlock_t* rp, limit l, bool try_only) noexcept {
  const rwlock_ref rw{rp};
  auto st = rw.state();
  std::exception_ptr deferred;
  int rc = 0;
  for (;;) {
    unsigned s = st.load(std::memory_order_relaxed);
    if ((s & ~rw_waiters) == 0) {
      if (st.compare_exchange_weak(s, s | rw_writer, std::memory_order_acquire)) {
        rw.writer().store(owner_id(), std::memory_order_relaxed);
        break;
      }
      continue;
    }
    if (try_only) {
      rc = EBUSY;
      break;
    }
    if ((s & rw_writer) != 0 && rw.writer().load(std::memory_order_relaxed) == owner_id()) {
      rc = EDEADLK;
      break;
    }
    const auto busy = [](unsigned v) { return (v & ~rw_waiters) != 0; };
    rw.writers_waiting().fetch_add(1);
    const result r = parking::park(rp, [&] { return mark_waiting(rw, busy); }, l, &deferred);
    rw.writers_waiting().fetch_sub(1);
    if (r == result::timed_out) {
      if (rw.prefers_writers()) parking::unpark_all(rp);  // readers held back for this writer go on
      rc = ETIMEDOUT;
      break;
    }
  }
  parking::rearm(deferred);
  return rc;
}

int rw_unlock(pthread_rwlock_t* rp) noexcept {
  const rwlock_ref rw{rp};
  auto st = rw.state();
  unsigned s = st.load(std::memory_order_relaxed);
  if ((s & rw_writer) != 0) {
    rw.writer().store(0, std::memory_order_relaxed);
    if ((st.exchange(0, std::memory_order_release) & rw_waiters) != 0) parking::unpark_all(rp);
    return 0;
  }
  if ((s & rw_readers) == 0) return EPERM;
  s = st.fetch_sub(1, std::memory_order_release) - 1;
  // The last reader out wakes the waiters, if the lock is still free.
  while (s == rw_waiters) {
    if (st.compare_exchange_weak(s, 0)) {
      parking::unpark_all(rp);
      break;
    }
  }
  return 0;
}

// ---------------------------------------------------------------------------
// Semaphores: the value is the low half of glibc's 64-bit word and the count
// of maybe-parked waiters the high half. Process-shared ones (sem_open, and
// sem_init with pshared) are glibc's: a green thread polls them.

struct sem_ref {
  sem_t* s;
  std::atomic_ref<unsigned> value() const noexcept { return std::atomic_ref<unsigned>(reinterpret_cast<unsigned*>(s)[0]); }
  std::atomic_ref<unsigned> waiters() const noexcept {
    return std::atomic_ref<unsigned>(reinterpret_cast<unsigned*>(s)[1]);
  }
  // glibc's `private` field: 0 for sem_init(s, 0, v); FUTEX_PRIVATE_FLAG's
  // value (128) for sem_init(s, 1, v) and sem_open.
  bool shared() const noexcept { return reinterpret_cast<const int*>(s)[2] != 0; }
};

bool sem_take(const sem_ref& s) noexcept {
  auto v = s.value();
  unsigned n = v.load(std::memory_order_relaxed);
  while (n > 0) {
    if (v.compare_exchange_weak(n, n - 1, std::memory_order_acquire)) return true;
  }
  return false;
}

// sem_poll waits for a process-shared semaphore in a green thread: glibc's
// trywait, then a sleep on the hub, backing off to 20 ms.
int sem_poll(sem_t* sp, limit l) {
  auto pause = std::chrono::microseconds(500);
  const int caller_errno = errno;
  for (;;) {
    if (real_sem_trywait()(sp) == 0) {
      errno = caller_errno;
      return 0;
    }
    if (errno != EAGAIN) return -1;
    if (l.passed()) {
      errno = ETIMEDOUT;
      return -1;
    }
    limit next = limit::after(pause);
    if (!l.forever && l.at < next.at) next = l;
    if (sleep_until(next, on_handler::fail) == waited::interrupted) return -1;
    pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(20));
  }
}

int sem_wait_for(sem_t* sp, limit l) {
  const sem_ref s{sp};
  for (;;) {
    if (sem_take(s)) return 0;
    s.waiters().fetch_add(1);
    const result r = parking::park(sp, [&] { return s.value().load() == 0; }, l);
    if (r != result::unparked) s.waiters().fetch_sub(1);
    if (r == result::signalled) {
      if (sem_take(s)) return 0;
      errno = EINTR;  // sem_wait fails with EINTR, SA_RESTART or not (signal(7))
      return -1;
    }
    if (r == result::timed_out) {
      if (sem_take(s)) return 0;
      errno = ETIMEDOUT;
      return -1;
    }
  }
}

// timed_sem handles sem_timedwait and sem_clockwait for private semaphores.
int timed_sem(sem_t* sp, clockid_t c, const timespec* at) {
  if (sem_take(sem_ref{sp})) return 0;
  limit l;
  if (!to_limit(c, at, l)) {
    errno = EINVAL;
    return -1;
  }
  cancellation_point();
  return cancellable([&] { return sem_wait_for(sp, l); });
}

// ---------------------------------------------------------------------------
// Barriers: grove's own layout (count, arrivals, round), set by its init.

struct barrier_state {
  unsigned count;
  unsigned arrived;
  unsigned round;
};
static_assert(sizeof(barrier_state) <= sizeof(pthread_barrier_t));

// ---------------------------------------------------------------------------
// Waiting for an OS thread's or another process's object in a green thread.

template <class Try>
int poll_green(Try attempt) {
  auto pause = std::chrono::microseconds(100);
  for (;;) {
    const int rc = attempt();
    if (rc != EBUSY) return rc;
    {
      const keep_errno kept;
      grove::sleep(pause);
    }
    pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(10));
  }
}

}  // namespace
}  // namespace grove::hooks

using namespace grove::hooks;
namespace detail = grove::detail;

extern "C" {

// --- mutexes ---------------------------------------------------------------

int pthread_mutex_lock(pthread_mutex_t* m) noexcept {
  if (mutex_ref{m}.glibcs()) {
    if (!cooperative()) return real_pthread_mutex_lock()(m);
    try {
      return poll_green([m] { return real_pthread_mutex_trylock()(m); });
    } catch (...) {
      return real_pthread_mutex_lock()(m);
    }
  }
  return mutex_lock(m, limit::never(), false);
}

int pthread_mutex_trylock(pthread_mutex_t* m) noexcept {
  if (mutex_ref{m}.glibcs()) return real_pthread_mutex_trylock()(m);
  return mutex_lock(m, limit::never(), true);
}

int pthread_mutex_timedlock(pthread_mutex_t* m, const timespec* at) noexcept {
  if (mutex_ref{m}.glibcs()) return real_pthread_mutex_timedlock()(m, at);
  if (mutex_lock(m, limit::never(), true) == 0) return 0;
  limit l;
  if (!to_limit(CLOCK_REALTIME, at, l)) return EINVAL;
  return mutex_lock(m, l, false);
}

int pthread_mutex_clocklock(pthread_mutex_t* m, clockid_t c, const timespec* at) noexcept {
  if (mutex_ref{m}.glibcs()) return real_pthread_mutex_clocklock()(m, c, at);
  if (mutex_lock(m, limit::never(), true) == 0) return 0;
  limit l;
  if (!to_limit(c, at, l)) return EINVAL;
  return mutex_lock(m, l, false);
}

int pthread_mutex_unlock(pthread_mutex_t* m) noexcept {
  if (mutex_ref{m}.glibcs()) return real_pthread_mutex_unlock()(m);
  const int rc = mutex_unlock(m);
  if (rc == 0) give_way_if_others_wait(__builtin_return_address(0));
  return rc;
}

int pthread_mutex_destroy(pthread_mutex_t* m) noexcept {
  const mutex_ref r{m};
  if (!r.glibcs() && r.word().load() != 0) return EBUSY;
  return real_pthread_mutex_destroy()(m);
}

// --- condition variables -----------------------------------------------------

int pthread_cond_wait(pthread_cond_t* c, pthread_mutex_t* m) {
  if (cond_ref{c}.shared()) return real_pthread_cond_wait()(c, m);
  cancellation_point();
  return cancellable([&] { return cond_wait(c, m, limit::never()); });
}

int pthread_cond_timedwait(pthread_cond_t* c, pthread_mutex_t* m, const timespec* at) {
  const cond_ref r{c};
  if (r.shared()) return real_pthread_cond_timedwait()(c, m, at);
  limit l;
  if (!to_limit(r.clock(), at, l)) return EINVAL;
  cancellation_point();
  return cancellable([&] { return cond_wait(c, m, l); });
}

int pthread_cond_clockwait(pthread_cond_t* c, pthread_mutex_t* m, clockid_t clock, const timespec* at) {
  if (cond_ref{c}.shared()) return real_pthread_cond_clockwait()(c, m, clock, at);
  limit l;
  if (!to_limit(clock, at, l)) return EINVAL;
  cancellation_point();
  return cancellable([&] { return cond_wait(c, m, l); });
}

int pthread_cond_signal(pthread_cond_t* c) noexcept {
  if (cond_ref{c}.shared()) return real_pthread_cond_signal()(c);
  return cond_wake(c, 1);
}

int pthread_cond_broadcast(pthread_cond_t* c) noexcept {
  if (cond_ref{c}.shared()) return real_pthread_cond_broadcast()(c);
  return cond_wake(c, static_cast<std::size_t>(-1));
}

// --- rwlocks -----------------------------------------------------------------

#define GROVE_RW_SHARED(call) \
  if (rwlock_ref{rw}.shared()) return call

int pthread_rwlock_rdlock(pthread_rwlock_t* rw) noexcept {
  GROVE_RW_SHARED(real_pthread_rwlock_rdlock()(rw));
  return rw_rdlock(rw, limit::never(), false);
}

int pthread_rwlock_tryrdlock(pthread_rwlock_t* rw) noexcept {
  GROVE_RW_SHARED(real_pthread_rwlock_tryrdlock()(rw));
  return rw_rdlock(rw, limit::never(), true);
}

int pthread_rwlock_timedrdlock(pthread_rwlock_t* rw, const timespec* at) noexcept {
  GROVE_RW_SHARED(real_pthread_rwlock_timedrdlock()(rw, at));
  if (rw_rdlock(rw, limit::never(), true) == 0) return 0;
  limit l;
  if (!to_limit(CLOCK_REALTIME, at, l)) return EINVAL;
  return rw_rdlock(rw, l, false);
}

int pthread_rwlock_clockrdlock(pthread_rwlock_t* rw, clockid_t c, const timespec* at) noexcept {
  GROVE_RW_SHARED(real_pthread_rwlock_clockrdlock()(rw, c, at));
  if (rw_rdlock(rw, limit::never(), true) == 0) return 0;
  limit l;
  if (!to_limit(c, at, l)) return EINVAL;
  return rw_rdlock(rw, l, false);
}

int pthread_rwlock_wrlock(pthread_rwlock_t* rw) noexcept {
  GROVE_RW_SHARED(real_pthread_rwlock_wrlock()(rw));
  return rw_wrlock(rw, limit::never(), false);
}

int pthread_rwlock_trywrlock(pthread_rwlock_t* rw) noexcept {
  GROVE_RW_SHARED(real_pthread_rwlock_trywrlock()(rw));
  return rw_wrlock(rw, limit::never(), true);
}

int pthread_rwlock_timedwrlock(pthread_rwlock_t* rw, const timespec* at) noexcept {
  GROVE_RW_SHARED(real_pthread_rwlock_timedwrlock()(rw, at));
  if (rw_wrlock(rw, limit::never(), true) == 0) return 0;
  limit l;
  if (!to_limit(CLOCK_REALTIME, at, l)) return EINVAL;
  return rw_wrlock(rw, l, false);
}

int pthread_rwlock_clockwrlock(pthread_rwlock_t* rw, clockid_t c, const timespec* at) noexcept {
  GROVE_RW_SHARED(real_pthread_rwlock_clockwrlock()(rw, c, at));
  if (rw_wrlock(rw, limit::never(), true) == 0) return 0;
  limit l;
  if (!to_limit(c, at, l)) return EINVAL;
  return rw_wrlock(rw, l, false);
}

int pthread_rwlock_unlock(pthread_rwlock_t* rw) noexcept {
  GROVE_RW_SHARED(real_pthread_rwlock_unlock()(rw));
  return rw_unlock(rw);
}

#undef GROVE_RW_SHARED

// --- barriers ----------------------------------------------------------------

int pthread_barrier_init(pthread_barrier_t* b, const pthread_barrierattr_t* attr, unsigned count) noexcept {
  (void)attr;  // process-shared barriers are not supported across processes (README)
  if (count == 0) return EINVAL;
  auto* s = reinterpret_cast<barrier_state*>(b);
  s->count = count;
  s->arrived = 0;
  s->round = 0;
  return 0;
}

int pthread_barrier_destroy(pthread_barrier_t* b) noexcept {
  auto* s = reinterpret_cast<barrier_state*>(b);
  return __atomic_load_n(&s->arrived, __ATOMIC_ACQUIRE) != 0 ? EBUSY : 0;
}

int pthread_barrier_wait(pthread_barrier_t* b) noexcept {
  auto* s = reinterpret_cast<barrier_state*>(b);
  std::atomic_ref<unsigned> round(s->round);
  unsigned mine = 0;
  bool last = false;
  std::exception_ptr deferred;
  // Arrivals are counted under the lot's lock for b, so a round's last arrival
  // and the next round's first cannot interleave.
  parking::park(
      b,
      [&] {
        mine = round.load(std::memory_order_relaxed);
        if (++s->arrived < s->count) return true;
        s->arrived = 0;
        round.store(mine + 1, std::memory_order_release);
        last = true;
        return false;
      },
      limit::never(), &deferred);
  if (last) {
    parking::unpark_all(b);
    parking::rearm(deferred);
    return PTHREAD_BARRIER_SERIAL_THREAD;
  }
  while (round.load(std::memory_order_acquire) == mine) {
    parking::park(b, [&] { return round.load(std::memory_order_relaxed) == mine; }, limit::never(), &deferred);
  }
  parking::rearm(deferred);
  return 0;
}

// --- spinlocks ---------------------------------------------------------------
// glibc's x86 encoding: 1 is free, 0 (or less) taken. pthread_spin_init stays
// glibc's.

int pthread_spin_lock(pthread_spinlock_t* l) noexcept {
  std::atomic_ref<int> w(*const_cast<int*>(l));
  for (int tries = 0;; ++tries) {
    int free = 1;
    if (w.load(std::memory_order_relaxed) == 1 && w.compare_exchange_strong(free, 0, std::memory_order_acquire)) {
      return 0;
    }
    if (tries < spin_tries) {
      relax();
    } else if (cooperative()) {
      // The holder may be a green thread of this hub: let it run.
      tries = 0;
      const keep_errno kept;
      detail::hub_core& h = *detail::tls_hub;
      detail::schedule(h, h.ts->current);
      detail::to_hub(h);
    } else {
      tries = 0;
      real_sched_yield()();
    }
  }
}

int pthread_spin_unlock(pthread_spinlock_t* l) noexcept {
  std::atomic_ref<int>(*const_cast<int*>(l)).store(1, std::memory_order_release);
  return 0;
}

int pthread_spin_trylock(pthread_spinlock_t* l) noexcept {
  int free = 1;
  return std::atomic_ref<int>(*const_cast<int*>(l)).compare_exchange_strong(free, 0, std::memory_order_acquire) ? 0
                                                                                                               : EBUSY;
}

// --- once --------------------------------------------------------------------

int pthread_once(pthread_once_t* once, void (*init)()) {
  std::atomic_ref<int> st(*once);
  enum { fresh = 0, running = 1, done = 2 };
  for (;;) {
    int v = st.load(std::memory_order_acquire);
    if (v == done) return 0;
    if (v == fresh) {
      if (!st.compare_exchange_strong(v, running, std::memory_order_acquire)) continue;
      // An init that unwinds (pthread_exit, cancellation, an exception) leaves
      // the once as if never run, and wakes the waiters to try themselves.
      struct undo {
        std::atomic_ref<int>& st;
        pthread_once_t* once;
        bool armed = true;
        ~undo() {
          if (!armed) return;
          st.store(fresh, std::memory_order_release);
          parking::unpark_all(once);
        }
      } guard{st, once};
      init();
      guard.armed = false;
      st.store(done, std::memory_order_release);
      parking::unpark_all(once);
      return 0;
    }
    parking::park(once, [&] { return st.load(std::memory_order_acquire) == running; }, limit::never());
  }
}

// --- semaphores --------------------------------------------------------------

int sem_wait(sem_t* s) {
  if (sem_ref{s}.shared()) return cooperative() ? sem_poll(s, limit::never()) : real_sem_wait()(s);
  if (sem_take(sem_ref{s})) return 0;
  cancellation_point();
  return cancellable([&] { return sem_wait_for(s, limit::never()); });
}

int sem_timedwait(sem_t* s, const timespec* at) {
  if (sem_ref{s}.shared()) {
    if (!cooperative()) return real_sem_timedwait()(s, at);
    limit l;
    if (!to_limit(CLOCK_REALTIME, at, l)) return real_sem_timedwait()(s, at);  // glibc's answer (EINVAL, or taken)
    return sem_poll(s, l);
  }
  return timed_sem(s, CLOCK_REALTIME, at);
}

int sem_clockwait(sem_t* s, clockid_t c, const timespec* at) {
  if (sem_ref{s}.shared()) {
    if (!cooperative()) return real_sem_clockwait()(s, c, at);
    limit l;
    if (!to_limit(c, at, l)) return real_sem_clockwait()(s, c, at);
    return sem_poll(s, l);
  }
  return timed_sem(s, c, at);
}

int sem_trywait(sem_t* s) noexcept {
  if (sem_ref{s}.shared()) return real_sem_trywait()(s);
  if (sem_take(sem_ref{s})) return 0;
  errno = EAGAIN;
  return -1;
}

int sem_post(sem_t* sp) noexcept {
  const sem_ref s{sp};
  if (s.shared()) return real_sem_post()(sp);
  auto v = s.value();
  unsigned n = v.load(std::memory_order_relaxed);
  do {
    if (n >= static_cast<unsigned>(SEM_VALUE_MAX)) {
      errno = EOVERFLOW;
      return -1;
    }
  } while (!v.compare_exchange_weak(n, n + 1, std::memory_order_seq_cst));
  if (s.waiters().load() != 0) {
    if (const std::size_t woken = parking::unpark_one(sp); woken != 0) s.waiters().fetch_sub(1);
  }
  return 0;
}

}  // extern "C"
