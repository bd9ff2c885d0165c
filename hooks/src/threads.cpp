// threads.cpp — the life of green pthreads (see threads.hpp): create, join,
// detach, exit, identity, names, attributes, cancellation, thread-specific
// data, sched_yield.
#include "threads.hpp"

#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <utility>
#include <vector>

#include <grove/detail/os_threads.hpp>
#include <grove/greenlet.hpp>
#include <grove/hub.hpp>
#include <grove/stack.hpp>
#include <grove/sleep.hpp>
#include <grove/task.hpp>

#include "libc.hpp"
#include "parking.hpp"
#include "spread.hpp"

namespace grove::hooks {

// ---------------------------------------------------------------------------
// The mode

namespace {
std::atomic<int> mode{-1};  // -1: not read yet; 0: native; 1: green
std::atomic<bool> green_by_default{false};

int read_mode() {
  const char* v = std::getenv("GROVE_THREADS");
  int m = green_by_default.load() ? 1 : 0;
  if (v != nullptr && *v != '\0') {
    if (std::strcmp(v, "green") == 0) {
      m = 1;
    } else if (std::strcmp(v, "native") == 0) {
      m = 0;
    } else {
      std::fprintf(stderr,
                   "grove: GROVE_THREADS=\"%s\": not green (pthreads become green threads on one OS thread) or native "
                   "(they stay OS threads)\n",
                   v);
      std::fflush(stderr);
      std::_Exit(2);
    }
  }
  mode.store(m);
  return m;
}
}  // namespace

bool green_threads() {
  int m = mode.load(std::memory_order_relaxed);
  if (m < 0) [[unlikely]]
    m = read_mode();
  return m == 1;
}

void default_to_green() noexcept {
  green_by_default.store(true);
  mode.store(-1);
}

bool to_limit(clockid_t c, const timespec* t, limit& out) noexcept {
  if (t == nullptr || t->tv_nsec < 0 || t->tv_nsec >= 1'000'000'000) return false;
  if (c != CLOCK_REALTIME && c != CLOCK_MONOTONIC) return false;
  timespec now{};
  ::clock_gettime(c, &now);
  const auto left = std::chrono::seconds(t->tv_sec - now.tv_sec) + std::chrono::nanoseconds(t->tv_nsec - now.tv_nsec);
  out = limit::after(left > std::chrono::nanoseconds::zero() ? left : std::chrono::nanoseconds::zero());
  return true;
}

// ---------------------------------------------------------------------------
// Green thread records
//
// Records live in one reserved region, so that telling a green pthread_t from
// an OS thread's (the address of its glibc descriptor) is a range check.

constexpr std::uint64_t record_magic = 0x67726f7665746872ull;  // "grovethr"
constexpr unsigned keys_max = PTHREAD_KEYS_MAX;

struct specific_slot {
  unsigned seq = 0;  // the key's generation it was set under
  void* value = nullptr;
};

struct green_thread {
  std::uint64_t magic = record_magic;
  void* (*start)(void*) = nullptr;
  void* arg = nullptr;
  void* result = nullptr;
  // vanished: a thread of the parent of a fork, which does not exist in the child.
  enum : unsigned { finished = 1, detached = 2, joining = 4, vanished = 8 };
  std::atomic<unsigned> flags{0};
  detail::hub_core* hub = nullptr;
  grove::hub* hub_handle = nullptr;
  pthread_t os_thread{};
  detail::greenlet_core* g = nullptr;
  std::size_t stack_size = 0;
  std::size_t guard_size = 0;
  bool cancel_enabled = true;
  bool cancel_async = false;
  bool cancel_pending = false;
  bool exiting = false;
  __pthread_unwind_buf_t* cleanup_top = nullptr;  // C cleanup handlers, innermost first
  void* exit_value = nullptr;                      // while they run
  char name[16] = {};
  pid_t tid = 0;  // its gettid(): an id of its own (see first_green_tid)
  int place = -1;  // its hub's number in the group (spread.hpp); -1: uncounted
  spread::queued queue_node;  // while no hub has started it (spread::queue)
  std::uint64_t start_mask = 0;  // its signal mask at the start: its creator's
  std::vector<specific_slot> specific;
  signals::thread_state signals;
  green_thread* here_prev = nullptr;  // the green threads of this OS thread (signal delivery walks them)
  green_thread* here_next = nullptr;
};

namespace {

union record_slot {
  green_thread t;
  record_slot* next_free;
  char size[256];
  record_slot() : next_free(nullptr) {}
  ~record_slot() {}
};
static_assert(sizeof(green_thread) <= 256);

constexpr std::size_t region_bytes = std::size_t{1} << 30;

// Thread ids. The kernel knows only the OS thread, yet every thread natively
// has an id of its own (gettid, Python's threading.get_native_id), and
// programs tell threads apart by it. A green thread's id counts up from
// PID_MAX_LIMIT (2^22), the largest process or thread id Linux hands out, so
// it never names a real process or OS thread; tgkill of it reaches the green
// thread. main keeps the OS thread's id (the process id, for the first).
constexpr pid_t first_green_tid = 4194304;
std::atomic<pid_t> next_green_tid{first_green_tid};
record_slot* region = nullptr;
std::atomic<bool> region_lock{false};
record_slot* free_slots = nullptr;
std::size_t used_slots = 0;

struct region_guard {
  region_guard() noexcept {
    while (region_lock.exchange(true, std::memory_order_acquire)) __builtin_ia32_pause();
  }
  ~region_guard() { region_lock.store(false, std::memory_order_release); }
};

green_thread* new_record() {
  record_slot* s = nullptr;
  {
    const region_guard hold;
    if (region == nullptr) {
      void* p = ::mmap(nullptr, region_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (p == MAP_FAILED) return nullptr;
      region = static_cast<record_slot*>(p);
    }
    if (free_slots != nullptr) {
      s = free_slots;
      free_slots = s->next_free;
    } else if (used_slots < region_bytes / sizeof(record_slot)) {
      s = region + used_slots++;
    }
  }
  return s == nullptr ? nullptr : new (&s->t) green_thread;
}

void free_record(green_thread* t) noexcept {
  t->~green_thread();
  auto* s = reinterpret_cast<record_slot*>(t);
  std::memset(static_cast<void*>(s), 0, sizeof *s);  // the magic goes: a stale pthread_t is no longer a green thread
  const region_guard hold;
  s->next_free = free_slots;
  free_slots = s;
}

// green_of returns the green thread t names, or nullptr for an OS thread's id.
green_thread* green_of(pthread_t t) noexcept {
  const auto a = static_cast<std::uintptr_t>(t);
  const auto base = reinterpret_cast<std::uintptr_t>(region);
  if (region == nullptr || a < base || a >= base + region_bytes || (a - base) % sizeof(record_slot) != 0) return nullptr;
  auto* g = reinterpret_cast<green_thread*>(a);
  return g->magic == record_magic ? g : nullptr;
}

// kill_green_tid is pthread_kill of the live green thread whose id is tid:
// 0, or the error (ESRCH when there is none, EINVAL for a bad signal).
int kill_green_tid(pid_t tid, int sig) noexcept {
  green_thread* found = nullptr;
  {
    const region_guard hold;
    for (std::size_t i = 0; region != nullptr && i < used_slots; ++i) {
      green_thread& t = region[i].t;
      if (t.magic == record_magic && t.tid == tid &&
          (t.flags.load(std::memory_order_acquire) & (green_thread::finished | green_thread::vanished)) == 0) {
        found = &t;
        break;
      }
    }
  }
  if (found == nullptr) return ESRCH;
  return ::pthread_kill(reinterpret_cast<pthread_t>(found), sig);
}

// The green threads running on this OS thread, for the signal drain. Only
// their own OS thread links and unlinks them, and only it walks the list.
constinit thread_local green_thread* here_head = nullptr;

// link_here runs on t's own OS thread, before t starts.
void link_here(green_thread& t) noexcept {
  t.here_prev = nullptr;
  t.here_next = here_head;
  if (here_head != nullptr) here_head->here_prev = &t;
  here_head = &t;
  signals::thread_started(t.signals, t.start_mask);
}

void unlink_here(green_thread& t) noexcept {
  (t.here_prev != nullptr ? t.here_prev->here_next : here_head) = t.here_next;
  if (t.here_next != nullptr) t.here_next->here_prev = t.here_prev;
  t.here_prev = t.here_next = nullptr;
  signals::thread_ended(t.signals);
}

// gone: t is a thread that vanished in a fork (see after_fork_in_child).
bool gone(const green_thread& t) noexcept {
  return (t.flags.load(std::memory_order_acquire) & green_thread::vanished) != 0;
}

// Green threads alive (main waits for them in pthread_exit).
std::atomic<long> green_running{0};
std::atomic<long> native_running_here{0};
// In a child of fork from a green thread, main does not exist: the last green
// thread to end ends the process (after_fork_in_child).
std::atomic<bool> main_gone{false};
// counted_native: this OS thread is one the program started (run_native).
constinit thread_local bool counted_native = false;

// ---------------------------------------------------------------------------
// Thread-specific data. Keys come from glibc (so OS threads keep using its
// storage); green threads keep their values in their records, checked against
// the key's generation so that a deleted and reused key reads as empty.

struct key_entry {
  std::atomic<unsigned> seq{0};  // odd: in use, and per green thread
  std::atomic<void (*)(void*)> destructor{nullptr};
};
key_entry keys[keys_max];

// Keys created before the hooks' constructors run belong to sanitizer runtimes
// and the like, which keep per-OS-thread state in them (ASan finds its current
// thread through one): those stay glibc's, per OS thread.
std::atomic<bool> program_started{false};
[[gnu::constructor(101)]] void note_program_start() { program_started.store(true); }

void run_key_destructors(green_thread& t) {
  for (int round = 0; round < PTHREAD_DESTRUCTOR_ITERATIONS; ++round) {
    bool any = false;
    for (std::size_t k = 0; k < t.specific.size(); ++k) {
      specific_slot& s = t.specific[k];
      if (s.value == nullptr || s.seq != keys[k].seq.load(std::memory_order_acquire)) continue;
      void (*d)(void*) = keys[k].destructor.load(std::memory_order_acquire);
      void* v = s.value;
      s.value = nullptr;
      if (d != nullptr) {
        d(v);
        any = true;
      }
    }
    if (!any) break;
  }
}

// ---------------------------------------------------------------------------
// Life cycle

void finish(green_thread& t, void* value) noexcept {
  unlink_here(t);
  spread::finished(std::exchange(t.place, -1));
  t.result = value;
  const unsigned before = t.flags.fetch_or(green_thread::finished, std::memory_order_acq_rel);
  if ((before & green_thread::detached) != 0) {
    free_record(&t);
  } else {
    parking::unpark_all(&t);  // the joiner; it frees the record
  }
  if (green_running.fetch_sub(1, std::memory_order_acq_rel) == 1) parking::unpark_all(&green_running);
}

// label names a green thread's task for grove's diagnostics (dump_tasks, the
// blocking monitor): its pthread name, else its pthread_t.
void label(green_thread& t) {
  char buf[48];
  if (t.name[0] != '\0') {
    std::snprintf(buf, sizeof buf, "pthread \"%s\"", t.name);
  } else {
    std::snprintf(buf, sizeof buf, "pthread %#lx", static_cast<unsigned long>(reinterpret_cast<std::uintptr_t>(&t)));
  }
  grove::greenlet::current().set_name(buf);
}

void wait_for_all_threads();

void run_green(green_thread* t) {
  detail::greenlet_core* g = detail::tls_hub->ts->current;
  g->hooks_data = t;
  t->g = g;
  label(*t);
  void* value = nullptr;
  try {
    // Signals sent to it before it started are delivered first, as natively.
    signals::after_wait(signals::on_handler::resume);
    if (t->cancel_pending && t->cancel_enabled) throw thread_exit{PTHREAD_CANCELED};
    value = t->start(t->arg);
    // A signal sent while it ran on another hub, since its last hooked call:
    // natively it would have interrupted the thread, so its handler runs
    // here, in it, before the thread ends (which drops what is pending).
    signals::after_wait(signals::on_handler::resume);
  } catch (const thread_exit& e) {
    value = e.value;
  } catch (...) {
    // Killed (its hub's thread is exiting) or an exception escaped the thread
    // function, which ends a program natively (std::terminate) — a green
    // thread's end must still be recorded for its joiner.
    t->exiting = true;
    g->hooks_data = nullptr;
    finish(*t, nullptr);
    throw;
  }
  t->exiting = true;
  try {
    run_key_destructors(*t);
  } catch (const thread_exit&) {
    // pthread_exit in a destructor: the thread is already exiting.
  }
  g->hooks_data = nullptr;
  finish(*t, value);
  if (main_gone.load(std::memory_order_acquire) && green_running.load(std::memory_order_acquire) == 0) {
    // A child of fork whose forking green thread, and every thread since, has
    // ended: natively the last thread's end is exit(0).
    wait_for_all_threads();
    std::exit(0);
  }
}

std::size_t default_stack() noexcept {
  pthread_attr_t a;
  std::size_t size = 8 << 20;
  if (::pthread_getattr_default_np(&a) == 0) {
    ::pthread_attr_getstacksize(&a, &size);
    ::pthread_attr_destroy(&a);
  }
  return size;
}

// native start: an OS thread the program created, counted while it runs.
struct native_start {
  void* (*start)(void*);
  void* arg;
};

void native_finished() noexcept {
  parking::native_thread_finished();
  if (native_running_here.fetch_sub(1, std::memory_order_acq_rel) == 1) parking::unpark_all(&native_running_here);
}

void* run_native(void* p) {
  const native_start s = *static_cast<native_start*>(p);
  delete static_cast<native_start*>(p);
  counted_native = true;
  struct counted {
    ~counted() { native_finished(); }
  } const guard;
  return s.start(s.arg);
}

int create_native(pthread_t* out, const pthread_attr_t* attr, void* (*start)(void*), void* arg) {
  if (detail::creating_helper_thread) return real_pthread_create()(out, attr, start, arg);
  const detail::own_affinity_scope affinity;  // not a hub's binding for a large file call
  auto* s = new (std::nothrow) native_start{start, arg};
  if (s == nullptr) return EAGAIN;
  parking::native_thread_started();
  native_running_here.fetch_add(1, std::memory_order_acq_rel);
  const int rc = real_pthread_create()(out, attr, run_native, s);
  if (rc != 0) {
    delete s;
    native_finished();
  }
  return rc;
}

// waits for every green thread (and every OS thread the program started) to end.
void wait_for_all_threads() {
  for (long n; (n = green_running.load(std::memory_order_acquire)) > 0;) {
    parking::park(&green_running, [&] { return green_running.load(std::memory_order_acquire) > 0; }, limit::never());
  }
  for (long n; (n = native_running_here.load(std::memory_order_acquire)) > 0;) {
    parking::park(&native_running_here, [&] { return native_running_here.load(std::memory_order_acquire) > 0; },
                  limit::never());
  }
}

// after_fork_in_child makes the child of a fork have one thread, as POSIX says:
// the one that called fork. It runs first among the atfork child handlers
// (registered before the program can register any), so the program's own run
// with only the forker left. When the forker is a green thread, or green
// threads exist, every other green thread vanishes: its greenlet is abandoned
// on the spot, never run nor unwound (its stack stays allocated and untouched,
// as a vanished OS thread's stays mapped), and its pthread_t answers ESRCH from
// then on (join, detach, kill, cancel, names, attributes), where natively a
// join would hang. A thread that had already finished stays joinable. The hub
// goes on with the forker alone (keep_only_current_after_fork); sync objects
// keep their state (a mutex a vanished thread held stays locked), but their
// waiters are gone from the parking lot. A forking green thread keeps its
// pthread_t and thread-specific data, and since main is gone too, the last
// green thread to end in the child ends the process with exit(0).
// With no green thread anywhere, a fork from main keeps its hub's tasks (as
// gevent does) and only other OS threads' waiters go.
void after_fork_in_child() noexcept {
  green_thread* self = current_green();
  const bool reset = self != nullptr || green_running.load(std::memory_order_relaxed) > 0;
  const long natives = counted_native ? 1 : 0;
  parking::after_fork_in_child(!reset, natives);
  spread::after_fork_in_child();  // the child's one hub is this one; the others start again when needed
  native_running_here.store(natives, std::memory_order_relaxed);
  // A fork child has no pending signals, and the forker's mask (signals.hpp).
  if (signals::thread_state* s = signals::current(); s != nullptr) signals::after_fork_in_child(*s);
  if (!reset) return;
  here_head = nullptr;  // the signal drain's list: only the forker is left on this OS thread
  if (self != nullptr) {
    self->here_prev = self->here_next = nullptr;
    here_head = self;
    self->tid = os_tid();  // the child's only thread: natively its id is the child's process id
  }
  region_lock.store(false, std::memory_order_relaxed);  // a vanished OS thread may have held it
  for (std::size_t i = 0; region != nullptr && i < used_slots; ++i) {
    green_thread& t = region[i].t;
    if (t.magic != record_magic || &t == self) continue;
    if ((t.flags.load(std::memory_order_relaxed) & green_thread::finished) == 0) t.flags.fetch_or(green_thread::vanished);
  }
  green_running.store(self != nullptr ? 1 : 0, std::memory_order_relaxed);
  if (self != nullptr) self->place = -1;
  if (self != nullptr) main_gone.store(true, std::memory_order_relaxed);
  detail::keep_only_current_after_fork();
}

[[gnu::constructor(101)]] void register_fork_handler() { ::pthread_atfork(nullptr, nullptr, after_fork_in_child); }

int join(pthread_t id, void** value, limit l) {
  green_thread* t = green_of(id);
  if (gone(*t)) return ESRCH;
  if (t == current_green()) return EDEADLK;
  const unsigned before = t->flags.fetch_or(green_thread::joining, std::memory_order_acq_rel);
  if ((before & (green_thread::detached | green_thread::joining)) != 0) {
    if ((before & green_thread::joining) == 0) t->flags.fetch_and(~green_thread::joining);
    return EINVAL;
  }
  while ((t->flags.load(std::memory_order_acquire) & green_thread::finished) == 0) {
    const auto r =
        parking::park(t, [t] { return (t->flags.load(std::memory_order_acquire) & green_thread::finished) == 0; }, l);
    if (r == parking::result::timed_out &&
        (t->flags.load(std::memory_order_acquire) & green_thread::finished) == 0) {
      t->flags.fetch_and(~green_thread::joining);
      return l.forever ? EBUSY : ETIMEDOUT;
    }
  }
  if (value != nullptr) *value = t->result;
  free_record(t);
  return 0;
}

void cancel_now(green_thread& t) {
  if (&t == current_green()) {
    t.cancel_pending = false;
    unwind_green(PTHREAD_CANCELED);
  }
  // Parked: it raises at its blocking point; running: at its next one.
  if (t.g != nullptr) detail::interrupt(t.g, std::make_exception_ptr(thread_exit{PTHREAD_CANCELED}));
}

}  // namespace

signals::thread_state& signal_state_of(green_thread& t) noexcept { return t.signals; }

long threads_alive() noexcept {
  return green_running.load(std::memory_order_acquire) + (main_gone.load(std::memory_order_acquire) ? 0 : 1);
}

void for_each_green_here_with(void (*f)(signals::thread_state&, void*), void* arg) {
  for (green_thread* t = here_head; t != nullptr;) {
    green_thread* next = t->here_next;  // f may end a wait, never a thread
    f(t->signals, arg);
    t = next;
  }
}

void cancellation_point() {
  green_thread* t = current_green();
  if (t != nullptr && t->cancel_pending && t->cancel_enabled && !t->exiting) {
    t->cancel_pending = false;
    unwind_green(PTHREAD_CANCELED);
  }
}

namespace {
// next_cleanup jumps into the innermost C cleanup handler, or unwinds.
[[noreturn]] void next_cleanup(green_thread& t) {
  if (__pthread_unwind_buf_t* b = t.cleanup_top; b != nullptr) {
    // pthread_cleanup_push's sigsetjmp(buf, 0): its buffer starts as a
    // jmp_buf does, with no signal mask saved.
    ::longjmp(reinterpret_cast<__jmp_buf_tag*>(b->__cancel_jmp_buf), 1);
  }
  throw thread_exit{t.exit_value};
}

__pthread_unwind_buf_t*& prev_of(__pthread_unwind_buf_t* b) noexcept {
  return reinterpret_cast<__pthread_unwind_buf_t*&>(b->__pad[0]);
}

// main's own thread-specific data lives in glibc; its destructors run when it
// leaves through pthread_exit, before the process exits.
void run_main_key_destructors() {
  for (int round = 0; round < PTHREAD_DESTRUCTOR_ITERATIONS; ++round) {
    bool any = false;
    for (unsigned k = 0; k < keys_max; ++k) {
      if ((keys[k].seq.load(std::memory_order_acquire) & 1) == 0) continue;
      void (*d)(void*) = keys[k].destructor.load(std::memory_order_acquire);
      void* v = real_pthread_getspecific()(k);
      if (d == nullptr || v == nullptr) continue;
      real_pthread_setspecific()(k, nullptr);
      d(v);
      any = true;
    }
    if (!any) break;
  }
}
}  // namespace

namespace {
// start_on_this_hub starts green thread t, placed on this hub by another
// (a post, on this hub's greenlet).
void start_on_this_hub(green_thread* t) {
  link_here(*t);
  try {
    auto* s = detail::new_task(std::nullopt, t->stack_size, [t] { run_green(t); });
    s->release();
  } catch (const std::exception& e) {
    // pthread_create has returned 0 already: the thread ends at once, with no
    // result, as if its start routine had returned NULL; say why.
    std::fprintf(stderr, "grove: a green thread could not start on its hub (%s); it ends without running\n", e.what());
    t->exiting = true;
    finish(*t, nullptr);
  }
}

// A green thread queued on a hub (spread::queue) is taken by that hub or an
// idle one: claim_queued records the taker, under spread's lock; then the
// taker starts it on its own greenlet.
green_thread& of_node(spread::queued& q) noexcept {
  return *reinterpret_cast<green_thread*>(reinterpret_cast<char*>(&q) - offsetof(green_thread, queue_node));
}

void claim_queued(spread::queued& q, const spread::place& where) {
  green_thread& t = of_node(q);
  t.hub = where.core;
  t.hub_handle = where.handle;
  t.os_thread = where.os_thread;
  t.place = where.index;
}

// os_thread_of is the OS thread t runs on, or is placed on for now.
pthread_t os_thread_of(green_thread& t) {
  pthread_t where{};
  if (!spread::if_queued(t.queue_node, [&] { where = t.os_thread; })) where = t.os_thread;
  return where;
}

void start_queued(spread::queued& q) { start_on_this_hub(&of_node(q)); }

[[gnu::constructor(101)]] void install_starter() { spread::set_starter(claim_queued, start_queued); }
}  // namespace

void unwind_green(void* value) {
  green_thread* t = current_green();
  if (t == nullptr) throw thread_exit{value};
  t->exit_value = value;
  next_cleanup(*t);
}

}  // namespace grove::hooks

using namespace grove::hooks;
namespace detail = grove::detail;

extern "C" {

int pthread_create(pthread_t* out, const pthread_attr_t* attr, void* (*start)(void*), void* arg) {
  if (detail::creating_helper_thread || !cooperative() || !green_threads()) return create_native(out, attr, start, arg);
  std::size_t stack = 0;
  std::size_t guard = 4096;
  int detach = PTHREAD_CREATE_JOINABLE;
  if (attr != nullptr) {
    void* addr = nullptr;
    ::pthread_attr_getstack(attr, &addr, &stack);  // a stack of the program's own: its size is kept, not its memory
    if (addr == nullptr) ::pthread_attr_getstacksize(attr, &stack);
    ::pthread_attr_getguardsize(attr, &guard);
    ::pthread_attr_getdetachstate(attr, &detach);
  }
  if (stack == 0) stack = default_stack();
  stack = std::clamp(stack, grove::min_stack_size, grove::max_stack_size);
  green_thread* t = new_record();
  if (t == nullptr) return EAGAIN;
  t->start = start;
  t->arg = arg;
  t->hub = detail::tls_hub;
  t->hub_handle = &grove::hub::current();
  t->os_thread = real_pthread_self()();
  t->tid = next_green_tid.fetch_add(1, std::memory_order_relaxed);
  t->stack_size = stack;
  t->guard_size = guard;
  if (detach == PTHREAD_CREATE_DETACHED) t->flags.store(green_thread::detached);
  if (green_thread* parent = current_green(); parent != nullptr) std::memcpy(t->name, parent->name, sizeof t->name);
  t->start_mask = signals::creator_mask();
  t->signals.mask.store(t->start_mask, std::memory_order_relaxed);  // a signal sent before it starts sees its mask
  spread::place where;
  if (spread::choose(where)) {
    // It waits in its hub's queue (this hub's or another's) until that hub,
    // or an idle one, takes it; then it runs there and never moves
    // (spread.hpp). Even this hub's: the caller may compute for long.
    t->hub = where.core;
    t->hub_handle = where.handle;
    t->os_thread = where.os_thread;
    t->place = where.index;
    green_running.fetch_add(1, std::memory_order_acq_rel);
    *out = reinterpret_cast<pthread_t>(t);  // before: once queued, t may start, end and be freed
    spread::queue(t->queue_node, where);
    return 0;
  }
  // Not one of the group's hubs (a thread the program made itself), or one hub.
  link_here(*t);
  try {
    auto* s = detail::new_task(std::nullopt, stack, [t] { run_green(t); });
    s->release();  // no handle: the record is the thread's handle
  } catch (const std::exception&) {
    unlink_here(*t);
    spread::finished(t->place);
    free_record(t);
    return EAGAIN;
  }
  green_running.fetch_add(1, std::memory_order_acq_rel);
  *out = reinterpret_cast<pthread_t>(t);
  return 0;
}

int pthread_join(pthread_t id, void** value) {
  if (green_of(id) == nullptr) return real_pthread_join()(id, value);
  cancellation_point();
  return cancellable([&] { return join(id, value, limit::never()); });
}

int pthread_tryjoin_np(pthread_t id, void** value) {
  green_thread* t = green_of(id);
  if (t == nullptr) return real_pthread_tryjoin_np()(id, value);
  if (gone(*t)) return ESRCH;
  if ((t->flags.load(std::memory_order_acquire) & green_thread::finished) == 0) return EBUSY;
  return join(id, value, limit::never());
}

int pthread_timedjoin_np(pthread_t id, void** value, const timespec* at) {
  if (green_of(id) == nullptr) return real_pthread_timedjoin_np()(id, value, at);
  limit l;
  if (at != nullptr && !to_limit(CLOCK_REALTIME, at, l)) return EINVAL;
  cancellation_point();
  return join(id, value, at == nullptr ? limit::never() : l);
}

int pthread_clockjoin_np(pthread_t id, void** value, clockid_t c, const timespec* at) {
  if (green_of(id) == nullptr) return real_pthread_clockjoin_np()(id, value, c, at);
  limit l;
  if (at != nullptr && !to_limit(c, at, l)) return EINVAL;
  cancellation_point();
  return join(id, value, at == nullptr ? limit::never() : l);
}

int pthread_detach(pthread_t id) {
  green_thread* t = green_of(id);
  if (t == nullptr) return real_pthread_detach()(id);
  if (gone(*t)) return ESRCH;
  const unsigned before = t->flags.fetch_or(green_thread::detached, std::memory_order_acq_rel);
  if ((before & green_thread::detached) != 0) return EINVAL;
  if ((before & green_thread::finished) != 0) free_record(t);
  return 0;
}

void pthread_exit(void* value) {  // noreturn, as <pthread.h> declares it
  if (green_thread* t = current_green(); t != nullptr && !t->exiting) unwind_green(value);
  if (cooperative() && detail::tls_hub->ts->current->is_main) {
    // main leaves: natively its key destructors run, and the process lives on
    // until the last thread ends, then exits with status 0 (grove's own
    // threads, which never end, do not count).
    run_main_key_destructors();
    wait_for_all_threads();
    std::exit(0);
  }
  real_pthread_exit()(value);
  __builtin_unreachable();
}

void __pthread_register_cancel(__pthread_unwind_buf_t* buf) {
  green_thread* t = current_green();
  if (t == nullptr) {
    real___pthread_register_cancel()(buf);
    return;
  }
  prev_of(buf) = t->cleanup_top;
  t->cleanup_top = buf;
}

void __pthread_unregister_cancel(__pthread_unwind_buf_t* buf) {
  green_thread* t = current_green();
  if (t == nullptr) {
    real___pthread_unregister_cancel()(buf);
    return;
  }
  t->cleanup_top = prev_of(buf);
}

[[noreturn]] void __pthread_unwind_next(__pthread_unwind_buf_t* buf) {
  green_thread* t = current_green();
  if (t == nullptr) {
    real___pthread_unwind_next()(buf);
    __builtin_unreachable();
  }
  t->cleanup_top = prev_of(buf);  // this handler has run: on to the next
  next_cleanup(*t);
}

pthread_t pthread_self() noexcept {
  if (green_thread* t = current_green(); t != nullptr) return reinterpret_cast<pthread_t>(t);
  return real_pthread_self()();
}

int pthread_setname_np(pthread_t id, const char* name) noexcept {
  green_thread* t = green_of(id);
  if (t == nullptr) return real_pthread_setname_np()(id, name);
  if (gone(*t)) return ESRCH;
  if (std::strlen(name) >= sizeof t->name) return ERANGE;
  std::strcpy(t->name, name);
  if (t == current_green()) {
    try {
      label(*t);
    } catch (const std::bad_alloc&) {
      // the diagnostics keep the old name
    }
  }
  return 0;
}

int pthread_getname_np(pthread_t id, char* buf, std::size_t len) noexcept {
  green_thread* t = green_of(id);
  if (t == nullptr) return real_pthread_getname_np()(id, buf, len);
  if (gone(*t)) return ESRCH;
  if (t->name[0] == '\0') {  // never named: it has its OS thread's name, as a new thread inherits it
    char os[16] = {};
    real_pthread_getname_np()(os_thread_of(*t), os, sizeof os);
    std::memcpy(t->name, os, sizeof os);
  }
  if (len < std::strlen(t->name) + 1) return ERANGE;
  std::strcpy(buf, t->name);
  return 0;
}

int pthread_getattr_np(pthread_t id, pthread_attr_t* attr) noexcept {
  green_thread* t = green_of(id);
  if (t == nullptr) return real_pthread_getattr_np()(id, attr);
  if (gone(*t)) return ESRCH;
  if (const int rc = ::pthread_attr_init(attr); rc != 0) return rc;
  const detail::stack_span s = t->g != nullptr ? detail::stack_bounds(t->g) : detail::stack_span{};
  if (s.lowest != nullptr) {
    ::pthread_attr_setstack(attr, s.lowest, s.size);
  } else {
    ::pthread_attr_setstacksize(attr, t->stack_size);
  }
  ::pthread_attr_setguardsize(attr, t->guard_size);
  const bool detached = (t->flags.load(std::memory_order_acquire) & green_thread::detached) != 0;
  ::pthread_attr_setdetachstate(attr, detached ? PTHREAD_CREATE_DETACHED : PTHREAD_CREATE_JOINABLE);
  return 0;
}

int pthread_kill(pthread_t id, int sig) noexcept {
  green_thread* t = green_of(id);
  if (t == nullptr) {
    // The OS thread's own pthread_t, named by one of its green threads, is
    // its main thread: the kernel would run the handler in the green thread
    // that happens to run, so the signal goes to main here.
    if (current_green() == nullptr || !pthread_equal(id, real_pthread_self()())) return real_pthread_kill()(id, sig);
    if (sig < 0 || sig >= NSIG) return EINVAL;
    if (sig == 0) return 0;
    if (signals::synchronous(sig) || sig == SIGKILL || sig == SIGSTOP) return real_pthread_kill()(id, sig);
    return signals::send_to_thread(signals::main_here(), sig, true, nullptr);
  }
  if ((t->flags.load(std::memory_order_acquire) & (green_thread::finished | green_thread::vanished)) != 0 || t->exiting) return ESRCH;
  if (sig < 0 || sig >= NSIG) return EINVAL;
  if (sig == 0) return 0;
  // SIGKILL, SIGSTOP and the synchronous signals act on the whole process anyway.
  if (signals::synchronous(sig) || sig == SIGKILL || sig == SIGSTOP) return real_pthread_kill()(os_thread_of(*t), sig);
  if (spread::if_queued(t->queue_node, [] {})) {
    // Not started on any hub yet: the signal waits for it, and it takes it as it starts.
    const int rc = signals::send_to_thread(t->signals, sig, false, nullptr);
    if (rc != 0 || spread::if_queued(t->queue_node, [] {})) return rc;
    // A hub took it meanwhile and may have parked it already: wake it there.
    if (t->hub == detail::tls_hub) {
      signals::drain_thread(t->signals);
      return 0;
    }
    try {
      signals::thread_state* s = &t->signals;
      t->hub_handle->post([s] { signals::drain_thread(*s); });
    } catch (...) {
      return EAGAIN;
    }
    return 0;
  }
  return signals::send_to_thread(t->signals, sig, t->hub == detail::tls_hub, t->hub_handle);
}

// gettid, tgkill and syscall(SYS_gettid / SYS_tgkill / SYS_tkill): a green
// thread's id is its own (first_green_tid), and a signal sent to that id goes
// to that green thread as pthread_kill sends it. Every other system call goes
// to the kernel as it came.
pid_t gettid() noexcept {
  if (green_thread* t = current_green(); t != nullptr) return t->tid;
  return real_gettid()();
}

int tgkill(pid_t pid, pid_t tid, int sig) {
  if (tid < first_green_tid || pid != ::getpid()) return real_tgkill()(pid, tid, sig);
  const int code = kill_green_tid(tid, sig);
  if (code == 0) return 0;
  errno = code;
  return -1;
}

long syscall(long number, ...) noexcept {
  va_list ap;
  va_start(ap, number);
  long a[6];
  for (long& x : a) x = va_arg(ap, long);  // as glibc's syscall, whatever the call takes: six registers
  va_end(ap);
  if (number == SYS_gettid) return gettid();
  if (number == SYS_tgkill && a[1] >= first_green_tid && a[0] == ::getpid()) {
    return tgkill(static_cast<pid_t>(a[0]), static_cast<pid_t>(a[1]), static_cast<int>(a[2]));
  }
  if (number == SYS_tkill && a[0] >= first_green_tid) {
    return tgkill(::getpid(), static_cast<pid_t>(a[0]), static_cast<int>(a[1]));
  }
  return real_syscall()(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

int pthread_cancel(pthread_t id) {
  green_thread* t = green_of(id);
  if (t == nullptr) return real_pthread_cancel()(id);
  if (gone(*t)) return ESRCH;
  if ((t->flags.load(std::memory_order_acquire) & green_thread::finished) != 0 || t->exiting) return 0;
  // Not started on any hub yet: it acts on the request as it starts.
  if (spread::if_queued(t->queue_node, [t] { t->cancel_pending = true; })) return 0;
  if (t->hub != detail::tls_hub) {
    // As below, on t's own hub (there the caller is no green thread).
    t->hub_handle->post([t] {
      t->cancel_pending = true;
      if (t->cancel_enabled && t->g != nullptr) cancel_now(*t);
    });
    return 0;
  }
  t->cancel_pending = true;
  if (t->cancel_enabled && t->g != nullptr && t != current_green()) cancel_now(*t);
  return 0;
}

int pthread_setcancelstate(int state, int* old) {
  green_thread* t = current_green();
  if (t == nullptr) return real_pthread_setcancelstate()(state, old);
  if (state != PTHREAD_CANCEL_ENABLE && state != PTHREAD_CANCEL_DISABLE) return EINVAL;
  if (old != nullptr) *old = t->cancel_enabled ? PTHREAD_CANCEL_ENABLE : PTHREAD_CANCEL_DISABLE;
  t->cancel_enabled = state == PTHREAD_CANCEL_ENABLE;
  return 0;
}

int pthread_setcanceltype(int type, int* old) {
  green_thread* t = current_green();
  if (t == nullptr) return real_pthread_setcanceltype()(type, old);
  if (type != PTHREAD_CANCEL_DEFERRED && type != PTHREAD_CANCEL_ASYNCHRONOUS) return EINVAL;
  if (old != nullptr) *old = t->cancel_async ? PTHREAD_CANCEL_ASYNCHRONOUS : PTHREAD_CANCEL_DEFERRED;
  t->cancel_async = type == PTHREAD_CANCEL_ASYNCHRONOUS;
  return 0;
}

void pthread_testcancel() {
  if (current_green() == nullptr) {
    real_pthread_testcancel()();
    return;
  }
  cancellation_point();
}

// Not instrumented by TSan: TSan's own start-up creates a key, before it can
// observe anything.
__attribute__((no_sanitize("thread"))) int pthread_key_create(pthread_key_t* key, void (*destructor)(void*)) noexcept {
  const int rc = real_pthread_key_create()(key, destructor);
  if (rc == 0 && *key < keys_max && program_started.load(std::memory_order_relaxed)) {
    keys[*key].destructor.store(destructor, std::memory_order_release);
    keys[*key].seq.fetch_add(1, std::memory_order_acq_rel);  // now odd: in use
  }
  return rc;
}

int pthread_key_delete(pthread_key_t key) noexcept {
  if (key < keys_max && (keys[key].seq.load(std::memory_order_acquire) & 1) != 0) {
    keys[key].destructor.store(nullptr, std::memory_order_release);
    keys[key].seq.fetch_add(1, std::memory_order_acq_rel);  // even: free; green values set under it are void
  }
  return real_pthread_key_delete()(key);
}

namespace {
// green_key: a key whose values are per green thread (created by the program).
bool green_key(pthread_key_t key) noexcept {
  return key < keys_max && (keys[key].seq.load(std::memory_order_acquire) & 1) != 0;
}
}  // namespace

void* pthread_getspecific(pthread_key_t key) noexcept {
  green_thread* t = current_green();
  if (t == nullptr || !green_key(key)) return real_pthread_getspecific()(key);
  if (key >= t->specific.size()) return nullptr;
  const specific_slot& s = t->specific[key];
  return s.seq == keys[key].seq.load(std::memory_order_acquire) ? s.value : nullptr;
}

int pthread_setspecific(pthread_key_t key, const void* value) noexcept {
  green_thread* t = current_green();
  if (t == nullptr || !green_key(key)) return real_pthread_setspecific()(key, value);
  const unsigned seq = keys[key].seq.load(std::memory_order_acquire);
  try {
    if (key >= t->specific.size()) t->specific.resize(key + 1);
  } catch (const std::bad_alloc&) {
    return ENOMEM;
  }
  t->specific[key] = {seq, const_cast<void*>(value)};
  return 0;
}

int sched_yield() noexcept {
  if (!cooperative()) return real_sched_yield()();
  const keep_errno kept;
  try {
    grove::yield();
  } catch (...) {
    // sched_yield cannot throw: what interrupts the caller is raised at its next blocking call
    std::exception_ptr e = std::current_exception();
    parking::rearm(e);
  }
  return 0;
}

}  // extern "C"
