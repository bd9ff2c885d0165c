// signals.cpp — the machinery of signals for green threads (see signals.hpp):
// the program's dispositions, the trampoline the kernel calls, masks, pending
// sets, delivery and the hub's drain. The hooked libc functions are in
// signal_calls.cpp.
#include "signals.hpp"

#include <pthread.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>

#include <grove/detail/os_threads.hpp>

#include "context.hpp"
#include "libc.hpp"
#include "threads.hpp"

namespace grove::hooks::signals {

// The kernel's flag for a sa_restorer, which glibc sets on every sigaction
// and reports back (its headers do not name it).
constexpr int sa_restorer_flag = 0x04000000;

constinit thread_local int in_handler = 0;

namespace {

// ---------------------------------------------------------------------------
// Per OS thread: main's state, and how many of the threads on it block each
// signal (the real mask blocks what all of them block).

struct os_state {
  thread_state main;
  std::uint32_t threads = 1;       // main and the green threads on this OS thread
  std::uint32_t blocked[64] = {};  // how many of them block each signal
  std::uint64_t real = 0;          // what the kernel's mask of this thread blocks
  std::atomic<std::uint64_t> unassigned{0};  // taken by the trampoline for no thread in particular
  bool ready = false;
};
constinit thread_local os_state os __attribute__((tls_model("initial-exec")));

void set_real(os_state& o, std::uint64_t m) noexcept {
  o.real = m;
  detail::thread_sigmask(SIG_SETMASK, &m, nullptr);
}

void init(os_state& o, std::uint64_t mask) noexcept {
  o.main.mask.store(mask, std::memory_order_relaxed);
  o.real = mask;
  o.threads = 1;
  for (int i = 0; i < 64; ++i) o.blocked[i] = (mask >> i) & 1;
  o.ready = true;
}

os_state& here() noexcept {
  os_state& o = os;
  if (!o.ready) [[unlikely]] {
    std::uint64_t m = 0;
    detail::thread_sigmask(SIG_BLOCK, nullptr, &m);
    init(o, m);
  }
  return o;
}

// recompute gives the kernel the mask that blocks exactly what every thread blocks.
void recompute(os_state& o) noexcept {
  std::uint64_t want = 0;
  for (int i = 0; i < 64; ++i) {
    if (o.blocked[i] == o.threads) want |= std::uint64_t{1} << i;
  }
  if (want != o.real) set_real(o, want);
}

void count(os_state& o, std::uint64_t bits, int by) noexcept {
  while (bits != 0) {
    const int i = __builtin_ctzll(bits);
    bits &= bits - 1;
    o.blocked[i] = static_cast<std::uint32_t>(static_cast<int>(o.blocked[i]) + by);
  }
}

// ---------------------------------------------------------------------------
// The program's dispositions: what its sigaction calls said, read by the
// trampoline (so atomics: a handler may be changed on another thread).

struct disposition {
  std::atomic<void*> handler{nullptr};
  std::atomic<int> flags{0};
  std::atomic<std::uint64_t> mask{0};
  std::atomic<bool> loaded{false};  // read from the kernel once (inherited SIG_IGN, a handler set before us)
};
disposition table[65];
std::atomic<std::uint64_t> interrupting_set{0};  // siginterrupt(sig, 1)
std::atomic<bool> table_lock{false};

struct table_guard {
  table_guard() noexcept {
    while (table_lock.exchange(true, std::memory_order_acquire)) __builtin_ia32_pause();
  }
  ~table_guard() { table_lock.store(false, std::memory_order_release); }
  table_guard(const table_guard&) = delete;
  table_guard& operator=(const table_guard&) = delete;
};

void trampoline(int sig, siginfo_t* info, void* uc);

// load reads sig's disposition from the kernel the first time it is needed.
// A handler installed before the hooks saw it (before their constructors) is
// the program's, and stays as the kernel has it: not virtualised.
void load(int sig) noexcept {
  disposition& d = table[sig];
  if (d.loaded.load(std::memory_order_acquire)) return;
  struct sigaction k {};
  real_sigaction()(sig, nullptr, &k);
  void* h = (k.sa_flags & SA_SIGINFO) != 0 ? reinterpret_cast<void*>(k.sa_sigaction)
                                           : reinterpret_cast<void*>(k.sa_handler);
  if (h != reinterpret_cast<void*>(&trampoline)) {
    d.handler.store(h, std::memory_order_relaxed);
    d.flags.store(k.sa_flags & ~sa_restorer_flag, std::memory_order_relaxed);
    d.mask.store(from_set(k.sa_mask), std::memory_order_relaxed);
  }
  d.loaded.store(true, std::memory_order_release);
}

// take notes that sig is being taken with disposition h: SA_RESETHAND resets it now.
void take(int sig, const handler_info& h) noexcept {
  if ((h.flags & SA_RESETHAND) == 0 || sig == SIGILL || sig == SIGTRAP) return;
  disposition& d = table[sig];
  d.handler.store(reinterpret_cast<void*>(SIG_DFL), std::memory_order_relaxed);
  d.flags.store(0, std::memory_order_relaxed);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  real_sigaction()(sig, &dfl, nullptr);
}

// What the trampoline took for a thread, per signal: standard signals do not
// queue, so one of each is pending at most (real-time ones collapse too).
struct taken_signal {
  siginfo_t info;
  handler_info handler;
};
taken_signal taken[65];

// default_action has the kernel act on sig with its default disposition (a
// pending signal whose handler was reset, or one sent while SIG_DFL was set).
void default_action(int sig) noexcept {
  switch (sig) {
    case SIGCHLD:
    case SIGCONT:
    case SIGURG:
    case SIGWINCH:
      return;  // ignored by default
    default:
      break;
  }
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  real_sigaction()(sig, &dfl, nullptr);
  os_state& o = here();
  const std::uint64_t m = o.real & ~bit(sig);
  detail::thread_sigmask(SIG_SETMASK, &m, nullptr);
  ::syscall(SYS_tgkill, ::getpid(), os_tid(), sig);
  set_real(o, o.real);  // a stop signal comes back here on SIGCONT
}

// call runs a handler the way the kernel would have.
void call(int sig, const handler_info& h, siginfo_t* info, void* uc) {
  if ((h.flags & SA_SIGINFO) != 0) {
    reinterpret_cast<void (*)(int, siginfo_t*, void*)>(h.handler)(sig, info, uc);
  } else {
    reinterpret_cast<void (*)(int)>(h.handler)(sig);
  }
}

}  // namespace

std::uint64_t from_set(const sigset_t& s) noexcept {
  std::uint64_t m;
  std::memcpy(&m, &s, sizeof m);  // glibc's sigset_t starts with the kernel's 64 bits
  return m;
}

void to_set(std::uint64_t bits, sigset_t& out) noexcept { std::memcpy(&out, &bits, sizeof bits); }

handler_info handler_of(int sig) noexcept {
  load(sig);
  const disposition& d = table[sig];
  handler_info h;
  h.handler = d.handler.load(std::memory_order_relaxed);
  h.flags = d.flags.load(std::memory_order_relaxed);
  h.mask = d.mask.load(std::memory_order_relaxed);
  return h;
}

int set_handler(int sig, const struct sigaction* act, struct sigaction* old) noexcept {
  // Signals are blocked on this OS thread meanwhile: the trampoline must not
  // run half-way through an update it reads.
  std::uint64_t all = ~std::uint64_t{0}, saved = 0;
  detail::thread_sigmask(SIG_BLOCK, &all, &saved);
  int rc = 0;
  {
    const table_guard hold;
    load(sig);
    disposition& d = table[sig];
    if (old != nullptr) {
      struct sigaction k {};
      real_sigaction()(sig, nullptr, &k);  // sa_restorer and sa_restorer_flag, as glibc reports them
      void* h = d.handler.load(std::memory_order_relaxed);
      const int flags = d.flags.load(std::memory_order_relaxed);
      std::memset(static_cast<void*>(old), 0, sizeof *old);
      if ((flags & SA_SIGINFO) != 0) {
        old->sa_sigaction = reinterpret_cast<void (*)(int, siginfo_t*, void*)>(h);
      } else {
        old->sa_handler = reinterpret_cast<void (*)(int)>(h);
      }
      old->sa_flags = flags | (k.sa_flags & sa_restorer_flag);
      old->sa_restorer = k.sa_restorer;
      to_set(d.mask.load(std::memory_order_relaxed), old->sa_mask);
    }
    if (act != nullptr) {
      void* h = (act->sa_flags & SA_SIGINFO) != 0 ? reinterpret_cast<void*>(act->sa_sigaction)
                                                  : reinterpret_cast<void*>(act->sa_handler);
      struct sigaction k = *act;
      if (h != reinterpret_cast<void*>(SIG_DFL) && h != reinterpret_cast<void*>(SIG_IGN)) {
        install_drain();
        k.sa_sigaction = trampoline;
        // The kernel may restart its own calls (those no hook handles) as the
        // program asked; SA_RESETHAND is applied by take() as a signal is taken.
        k.sa_flags = (act->sa_flags | SA_SIGINFO) & ~SA_RESETHAND;
      }
      rc = real_sigaction()(sig, &k, nullptr);
      if (rc == 0) {
        d.handler.store(h, std::memory_order_relaxed);
        d.flags.store(act->sa_flags & ~sa_restorer_flag, std::memory_order_relaxed);
        d.mask.store(from_set(act->sa_mask) & ~never_blocked, std::memory_order_relaxed);
      }
    }
  }
  const int err = errno;
  detail::thread_sigmask(SIG_SETMASK, &saved, nullptr);
  errno = err;
  return rc;
}

void set_interrupting(int sig, bool on) noexcept {
  if (on) {
    interrupting_set.fetch_or(bit(sig), std::memory_order_relaxed);
  } else {
    interrupting_set.fetch_and(~bit(sig), std::memory_order_relaxed);
  }
}

bool interrupting(int sig) noexcept { return (interrupting_set.load(std::memory_order_relaxed) & bit(sig)) != 0; }

namespace {

thread_state* state_of(detail::hub_core* h, detail::greenlet_core* g) noexcept {
  if (g == h->greenlet) return nullptr;
  if (g->hooks_data != nullptr) return &signal_state_of(*static_cast<green_thread*>(g->hooks_data));
  return &here().main;  // main, or a plain task, which shares main's mask
}

std::exception_ptr wake_exception() {
  static const std::exception_ptr e = std::make_exception_ptr(wake{});
  return e;
}

// The hub's drain: give unassigned signals a thread, then interrupt the
// waits of threads with a deliverable signal.
void drain() {
  os_state& o = here();
  std::uint64_t un = o.unassigned.exchange(0, std::memory_order_acq_rel);
  while (un != 0) {
    const int sig = __builtin_ctzll(un) + 1;
    un &= un - 1;
    thread_state* target = nullptr;
    if ((o.main.mask.load(std::memory_order_relaxed) & bit(sig)) == 0) {
      target = &o.main;
    } else {
      for_each_green_here([&](thread_state& s) {
        if (target == nullptr && (s.mask.load(std::memory_order_relaxed) & bit(sig)) == 0) target = &s;
      });
    }
    if (target != nullptr) {
      target->pending.fetch_or(bit(sig), std::memory_order_acq_rel);
    } else {
      // Every thread blocks it now: back to the kernel, which keeps it pending.
      ::syscall(SYS_tgkill, ::getpid(), os_tid(), sig);
    }
  }
  drain_thread(o.main);
  for_each_green_here([](thread_state& s) { drain_thread(s); });
}

std::atomic<bool> drain_installed{false};

}  // namespace

void install_drain() noexcept {
  if (!drain_installed.exchange(true, std::memory_order_acq_rel)) detail::set_signal_drain(drain);
}

// ---------------------------------------------------------------------------
// The trampoline: the kernel's handler for every signal the program handles.

namespace {
// pool_hub is, on a pool worker making a call for a task (pool_call_scope),
// the thread id of the task's OS thread; 0 elsewhere.
constinit thread_local pid_t pool_hub __attribute__((tls_model("initial-exec"))) = 0;

// on_pool_worker is the trampoline on a pool worker in a call: a tgkill from
// this process is a task interrupting the call (its handler already ran in
// the task); anything else goes on to the task's OS thread, as it was sent.
void on_pool_worker(int sig, siginfo_t* info) noexcept {
  if (info->si_code == SI_TKILL && info->si_pid == ::getpid()) return;
  siginfo_t copy = *info;
  if (::syscall(SYS_rt_tgsigqueueinfo, ::getpid(), pool_hub, sig, &copy) == 0) return;
  copy.si_code = SI_QUEUE;  // the kernel lets only a thread itself send a signal as the kernel's or kill's
  ::syscall(SYS_rt_tgsigqueueinfo, ::getpid(), pool_hub, sig, &copy);
}

void trampoline(int sig, siginfo_t* info, void* uc) {
  const int saved_errno = errno;
  if (pool_hub != 0) {
    on_pool_worker(sig, info);
    errno = saved_errno;
    return;
  }
  handler_info h = handler_of(sig);
  if (h.handler == SIG_DFL || h.handler == SIG_IGN) {  // changed meanwhile
    if (h.handler == SIG_DFL) default_action(sig);
    errno = saved_errno;
    return;
  }
  take(sig, h);  // SA_RESETHAND takes effect as the signal is taken
  detail::hub_core* hub = detail::tls_hub;
  if (hub == nullptr || hub->ts == nullptr) {
    // An OS thread without a hub: the signal is its own, as natively.
    call(sig, h, info, uc);
    errno = saved_errno;
    return;
  }
  os_state& o = os;
  if (!o.ready) init(o, from_set(static_cast<ucontext_t*>(uc)->uc_sigmask));
  thread_state* s = state_of(hub, hub->ts->current);
  const auto takes = [&](const thread_state* t) { return (t->mask.load(std::memory_order_relaxed) & bit(sig)) == 0; };
  // Which thread the kernel would have given it to. A thread-directed signal
  // (raise, tgkill; SIGPIPE and SIGXFSZ, which the kernel sends to the thread
  // that wrote) is the running thread's. A process-directed one goes to main
  // if main does not block it (Linux's complete_signal tries the group leader
  // first), else to a thread that does not.
  thread_state* target = nullptr;
  const bool thread_directed = info->si_code == SI_TKILL || sig == SIGPIPE || sig == SIGXFSZ;
  if (thread_directed && s != nullptr) {
    target = s;
  } else if (takes(&o.main)) {
    target = &o.main;
  } else if (s != nullptr && takes(s)) {
    target = s;
  }
  if (target != nullptr && target == s && takes(s)) {
    // The running thread takes it, here and now, as the kernel delivers it.
    const std::uint64_t real_before = o.real;
    const std::uint64_t mask_before = s->mask.load(std::memory_order_relaxed);
    s->mask.store(mask_before | h.mask | ((h.flags & SA_NODEFER) != 0 ? 0 : bit(sig)), std::memory_order_relaxed);
    ++in_handler;  // hooked calls made by the handler go straight to libc: it may have interrupted the hub's own code
    call(sig, h, info, uc);
    --in_handler;
    s->mask.store(mask_before, std::memory_order_relaxed);
    ++s->handled;
    // The handler changed the mask with sigprocmask: sigreturn must install
    // that mask, not the one the kernel saved when it entered the handler.
    if (o.real != real_before) std::memcpy(&static_cast<ucontext_t*>(uc)->uc_sigmask, &o.real, sizeof o.real);
    errno = saved_errno;
    return;
  }
  taken[sig].info = *info;
  taken[sig].handler = h;
  if (target != nullptr) {
    target->pending.fetch_or(bit(sig), std::memory_order_acq_rel);
  } else {
    o.unassigned.fetch_or(bit(sig), std::memory_order_acq_rel);
  }
  detail::kick_from_signal();
  errno = saved_errno;
}
}  // namespace

int interrupting_signal(bool restartable) noexcept {
  for (int sig = 1; sig < 65; ++sig) {
    if (sig == 32 || sig == 33 || sig == SIGKILL || sig == SIGSTOP || sig == SIGABRT || synchronous(sig)) continue;
    const handler_info h = handler_of(sig);
    if (h.handler == SIG_DFL || h.handler == SIG_IGN) continue;
    if (!restartable || (h.flags & SA_RESTART) == 0) return sig;
  }
  return 0;
}

pool_call_scope::pool_call_scope(int sig, pid_t hub_tid) noexcept : sig_(sig), was_(pool_hub) {
  pool_hub = hub_tid;
  if (sig_ != 0) {
    const std::uint64_t b = bit(sig_);
    detail::thread_sigmask(SIG_UNBLOCK, &b, nullptr);
  }
}

pool_call_scope::~pool_call_scope() {
  if (sig_ != 0) {
    // A signal a task sent before the call was marked done is pending here:
    // the kernel delivers it as this syscall returns, before sig is blocked.
    ::syscall(SYS_getppid);
    const std::uint64_t b = bit(sig_);
    detail::thread_sigmask(SIG_BLOCK, &b, nullptr);
  }
  pool_hub = was_;
}

// ---------------------------------------------------------------------------
// Masks and delivery

thread_state* current() noexcept {
  detail::hub_core* h = detail::tls_hub;
  if (h == nullptr || in_handler != 0) return nullptr;
  detail::greenlet_core* g = h->ts->current;
  if (g == h->greenlet) return nullptr;
  if (g->hooks_data != nullptr) return &signal_state_of(*static_cast<green_thread*>(g->hooks_data));
  if (g->is_main) return &here().main;
  return nullptr;
}

thread_state* mask_owner() noexcept {
  detail::hub_core* h = detail::tls_hub;
  if (h == nullptr || in_handler != 0 || h->ts->current == h->greenlet) return nullptr;
  return state_of(h, h->ts->current);
}

void set_mask(thread_state& s, std::uint64_t mask) noexcept {
  mask &= ~never_blocked;
  const std::uint64_t old = s.mask.load(std::memory_order_relaxed);
  if (old == mask) return;
  os_state& o = here();
  count(o, mask & ~old, +1);
  count(o, old & ~mask, -1);
  s.mask.store(mask, std::memory_order_relaxed);
  recompute(o);
}

std::uint64_t pending_here() noexcept {
  std::uint64_t p = here().unassigned.load(std::memory_order_acquire);
  if (thread_state* s = mask_owner()) p |= s->pending.load(std::memory_order_acquire);
  return p;
}

delivery deliver(thread_state& s) {
  delivery r;
  for (;;) {
    const std::uint64_t ready = s.pending.load(std::memory_order_acquire) & ~s.mask.load(std::memory_order_relaxed);
    if (ready == 0) break;
    const int sig = __builtin_ctzll(ready) + 1;
    s.pending.fetch_and(~bit(sig), std::memory_order_acq_rel);
    siginfo_t info = taken[sig].info;
    const handler_info h = taken[sig].handler;
    if (h.handler == SIG_IGN) continue;
    if (h.handler == SIG_DFL) {
      default_action(sig);
      continue;
    }
    const std::uint64_t saved = s.mask.load(std::memory_order_relaxed);
    set_mask(s, saved | h.mask | ((h.flags & SA_NODEFER) != 0 ? 0 : bit(sig)));
    ucontext_t uc{};
    std::memcpy(&uc.uc_sigmask, &saved, sizeof saved);
    call(sig, h, &info, &uc);
    set_mask(s, saved);
    ++s.handled;
    r.ran = true;
    if ((h.flags & SA_RESTART) == 0) r.restart = false;
  }
  return r;
}

namespace {
void post_to_thread(thread_state& s, int sig, const siginfo_t& info, const handler_info& h) noexcept {
  taken[sig].info = info;
  taken[sig].handler = h;
  s.pending.fetch_or(bit(sig), std::memory_order_acq_rel);
}
}  // namespace

wait_scope::wait_scope() noexcept : s_(current()) {
  if (s_ != nullptr) {
    was_ = s_->waiting;
    s_->waiting = true;
    s_->g = detail::tls_hub->ts->current;
  }
}

wait_scope::~wait_scope() {
  if (s_ != nullptr) s_->waiting = was_;
}

bool deliverable() noexcept {
  thread_state* s = current();
  return s != nullptr && (s->pending.load(std::memory_order_acquire) & ~s->mask.load(std::memory_order_relaxed)) != 0;
}

bool after_wait(on_handler mode) {
  thread_state* s = current();
  if (s == nullptr ||
      (s->pending.load(std::memory_order_acquire) & ~s->mask.load(std::memory_order_relaxed)) == 0) [[likely]]
    return false;
  const delivery d = deliver(*s);
  if (!d.ran || mode == on_handler::resume || (mode == on_handler::restart && d.restart)) return false;
  errno = EINTR;
  return true;
}

with_mask::with_mask(const sigset_t* set) noexcept {
  if (set == nullptr) return;
  s_ = mask_owner();
  if (s_ == nullptr) return;
  saved_ = s_->mask.load(std::memory_order_relaxed);
  set_mask(*s_, from_set(*set));
}

with_mask::~with_mask() {
  if (s_ != nullptr) set_mask(*s_, saved_);
}

int take_pending(const sigset_t* set, siginfo_t* info) noexcept {
  thread_state* s = current();
  if (s == nullptr) return 0;
  const std::uint64_t hit = s->pending.load(std::memory_order_acquire) & from_set(*set);
  if (hit == 0) return 0;
  const int sig = __builtin_ctzll(hit) + 1;
  s->pending.fetch_and(~bit(sig), std::memory_order_acq_rel);
  if (info != nullptr) *info = taken[sig].info;
  return sig;
}

std::uint64_t creator_mask() noexcept {
  thread_state* creator = mask_owner();
  return creator != nullptr ? creator->mask.load(std::memory_order_relaxed) : here().main.mask.load();
}

void thread_started(thread_state& s, std::uint64_t mask) noexcept {
  os_state& o = here();
  s.mask.store(mask, std::memory_order_relaxed);
  ++o.threads;
  count(o, mask, +1);
  recompute(o);
}

void thread_ended(thread_state& s) noexcept {
  os_state& o = here();
  --o.threads;
  count(o, s.mask.load(std::memory_order_relaxed), -1);
  // What was pending for it goes to the process, as a thread's own pending
  // signals vanish with it natively only when directed at it; keep it simple:
  // those are dropped, as the kernel drops a dead thread's.
  s.pending.store(0, std::memory_order_relaxed);
  recompute(o);
}

void drain_thread(thread_state& s) noexcept {
  if ((s.pending.load(std::memory_order_acquire) & ~s.mask.load(std::memory_order_relaxed)) == 0) return;
  detail::greenlet_core* g = s.g;
  if (!s.waiting || g == nullptr || g->interrupt) return;
  detail::waiter* w = g->parked;
  if (w == nullptr || w->state != detail::waiter::status::waiting) return;
  try {
    detail::interrupt(g, wake_exception());
  } catch (...) {
    // no memory for the ready ring: the handler runs when the wait ends
  }
}

int send_to_thread(thread_state& t, int sig, bool same_hub, grove::hub* hub) noexcept {
  install_drain();
  const handler_info h = handler_of(sig);
  const bool blocked = (t.mask.load(std::memory_order_relaxed) & bit(sig)) != 0;
  if (!blocked && (h.handler == SIG_DFL || h.handler == SIG_IGN)) {
    // The kernel's own action (terminate, stop, ignore) on the whole process.
    if (h.handler == SIG_DFL) ::syscall(SYS_tgkill, ::getpid(), os_tid(), sig);
    return 0;
  }
  siginfo_t info{};
  info.si_signo = sig;
  info.si_code = SI_TKILL;
  info.si_pid = ::getpid();
  info.si_uid = ::getuid();
  if (!blocked) take(sig, h);
  post_to_thread(t, sig, info, h);
  if (&t == current()) {
    after_wait(on_handler::resume);  // natively the handler runs before pthread_kill returns
  } else if (same_hub) {
    drain_thread(t);
  } else if (hub != nullptr) {
    try {
      hub->post([&t] { drain_thread(t); });
    } catch (...) {
      return EAGAIN;
    }
  }
  return 0;
}

thread_state& main_here() noexcept { return here().main; }

void after_fork_in_child(thread_state& forker) noexcept {
  os_state& o = os;
  const std::uint64_t mask = forker.mask.load(std::memory_order_relaxed);
  o.main.pending.store(0, std::memory_order_relaxed);
  forker.pending.store(0, std::memory_order_relaxed);
  o.unassigned.store(0, std::memory_order_relaxed);
  init(o, mask);  // the counts are the forker's alone
  // A green forker: main does not exist in the child, so it must never be
  // picked for a signal (it blocks everything, and is not counted).
  if (&forker != &o.main) o.main.mask.store(~std::uint64_t{0}, std::memory_order_relaxed);
  set_real(o, mask);
}

}  // namespace grove::hooks::signals
