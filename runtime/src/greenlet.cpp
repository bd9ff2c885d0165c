// greenlet.cpp — switching, death, kill-on-release and thread exit.
// The switch protocol is described once, in greenlet_impl.hpp.
#include <cxxabi.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <utility>

#include <grove/detail/os_threads.hpp>
#include <grove/greenlet.hpp>
#include <grove/stack.hpp>

#include "greenlet_impl.hpp"
#include "hub_state.hpp"
#include "report.hpp"

namespace grove::detail {

// The hot path reads tls_core only; initial-exec keeps that a single %fs load.
constinit thread_local thread_core* tls_core __attribute__((tls_model("initial-exec"))) = nullptr;

namespace {

thread_local bool tls_exited = false;
thread_local std::unique_ptr<thread_state> tls_owner;

std::atomic<std::size_t> live_greenlets{0};

}  // namespace

// access makes handles from implementation pointers.
struct access {
  static greenlet handle(greenlet_core* g) noexcept {
    add_ref(g);
    return greenlet(g);
  }
};

namespace {

std::string describe(const greenlet_impl* g) {
  if (g->is_main) return "the main greenlet";
  if (!g->label().empty()) return "greenlet \"" + g->label() + "\"";
  char buf[48];
  std::snprintf(buf, sizeof buf, "greenlet %p", static_cast<const void*>(g));
  return buf;
}

[[noreturn]] void wrong_thread(const char* what) {
  throw error(std::string("grove::greenlet::") + what +
              ": the greenlet belongs to another thread (or to one that has exited); greenlets never "
              "switch across threads");
}

// A suspended context cannot be destroyed without running code on it (Boost
// unwinds it by throwing forced_unwind inside), and a greenlet that refused to
// die must never run again. Its context and stack are kept for the rest of the
// process, reachable from here so leak checkers see them as deliberate.
void leak_context(boost::context::fiber&& f) {
  static std::mutex lock;
  static auto* graveyard = new std::vector<boost::context::fiber>();  // never destroyed, on purpose
  std::lock_guard<std::mutex> hold(lock);
  graveyard->push_back(std::move(f));
}

void link_live(thread_state& ts, greenlet_impl* g) noexcept {
  g->live_next = ts.live;
  if (ts.live != nullptr) ts.live->live_prev = g;
  ts.live = g;
}

void unlink_live(thread_state& ts, greenlet_impl* g) noexcept {
  if (g->live_prev != nullptr) g->live_prev->live_next = g->live_next;
  if (g->live_next != nullptr) g->live_next->live_prev = g->live_prev;
  if (ts.live == g) ts.live = g->live_next;
  g->live_prev = g->live_next = nullptr;
}

greenlet_impl* destroy(greenlet_impl* g) noexcept;
void act_on_released(thread_state& ts) noexcept;
thread_state& create_state();

inline thread_state& current_state_inline() {
  if (thread_core* s = tls_core) [[likely]]
    return *static_cast<thread_state*>(s);
  return create_state();
}

// ---------------------------------------------------------------------------
// Switching

[[gnu::noinline]] void call_tracer(thread_state& ts, greenlet_core* from, greenlet_core* to) {
  ts.tracer(access::handle(from), access::handle(to));
}

inline void trace(thread_state& ts, greenlet_impl* to) {
  if (ts.tracing) [[unlikely]]
    call_tracer(ts, ts.current_impl(), to);
}

// pooled_stack is the StackAllocator Boost keeps in the fiber's record; Boost
// calls deallocate (on the next greenlet's side) once the fiber has finished.
struct pooled_stack {
  stack_pool* pool;
  stack_region region;
  void deallocate(boost::context::stack_context&) noexcept { pool->release(region); }
};

greenlet_impl* run_to_death(thread_state& ts, greenlet_impl* g) noexcept;

// entry is the fiber function of every greenlet: land, run, die, and hand
// Boost the context to continue in.
struct entry {
  greenlet_impl* self;
  boost::context::fiber operator()(boost::context::fiber&& caller) const noexcept {
    thread_state& ts = *static_cast<thread_state*>(tls_core);
    land(ts, std::move(caller), nullptr);
    greenlet_impl* next = run_to_death(ts, self);
    if (ts.annotate) annotate_before(ts, nullptr, next);  // nullptr: this stack is finished
    return std::move(next->ctx);
  }
};

[[gnu::noinline]] void make_context(thread_state& ts, greenlet_impl* g) {
  const stack_region& s = g->stack;
  boost::context::stack_context sctx;
  sctx.size = s.size;
  sctx.sp = s.top();
  g->ctx = boost::context::fiber(std::allocator_arg, boost::context::preallocated(s.top(), s.size, sctx),
                                 pooled_stack{&ts.pool, s}, entry{g});
}

// start gives an unstarted greenlet its stack and context; it runs at the
// next jump to it. Throws grove::error if the stack cannot be had.
void start(thread_state& ts, greenlet_impl* g) {
  const std::size_t size = g->stack_request != 0 ? g->stack_request : default_stack_size();
  g->stack = ts.pool.acquire(size, default_stack_mode());
  mark_new_stack(g->marks, g->stack.base, g->stack.size);
  // Boost's constructor jumps to the new stack and straight back (fiber_entry's
  // first lines). Tell the sanitizers, or ASan puts that frame on the creator's
  // fake stack, and TSan books it to the creator.
#if GROVE_ASAN
  void* fake_stack = nullptr;
  __sanitizer_start_switch_fiber(&fake_stack, g->stack.base, g->stack.size);
#endif
#if GROVE_TSAN
  __tsan_switch_to_fiber(g->marks.tsan, 0);
#endif
  make_context(ts, g);
#if GROVE_TSAN
  __tsan_switch_to_fiber(ts.current_impl()->marks.tsan, 0);
#endif
#if GROVE_ASAN
  const void* own_bottom = nullptr;
  std::size_t own_size = 0;
  __sanitizer_finish_switch_fiber(fake_stack, &own_bottom, &own_size);
  __sanitizer_start_switch_fiber(&fake_stack, own_bottom, own_size);  // and back to our own stack
  __sanitizer_finish_switch_fiber(fake_stack, nullptr, nullptr);
#endif
  g->state.store(run_state::active, std::memory_order_relaxed);
  link_live(ts, g);
}

// die_unstarted: an exception sent to an unstarted greenlet kills it without
// running it. The exception goes on to its parent, greenlet_exit as a value.
void die_unstarted(greenlet_impl* g, std::any& value, std::exception_ptr& error) noexcept {
  g->state.store(run_state::dead, std::memory_order_relaxed);
  g->body.reset();
  if (error && is_greenlet_exit(error)) {
    error = nullptr;
    value = greenlet_exit{};
  }
}

// send delivers a value or an exception to `to`, resolving dead greenlets to
// their nearest live ancestor and starting (or, for an exception, killing)
// unstarted ones; returns what is switched back to us.
std::any send(thread_state& ts, greenlet_impl* to, std::any&& value, std::exception_ptr&& error) {
  for (;;) {
    while (to->state.load(std::memory_order_relaxed) == run_state::dead) to = to->parent;
    if (to == ts.current_impl()) {
      if (error) std::rethrow_exception(error);
      return std::move(value);
    }
    if (to->state.load(std::memory_order_relaxed) == run_state::active) break;
    if (!error) {
      start(ts, to);
      break;
    }
    die_unstarted(to, value, error);
    to = to->parent;
  }
  trace(ts, to);
  if (error) {
    ts.transfer_error = std::move(error);
  } else {
    ts.transfer = std::move(value);
  }
  jump(ts, to);
  return take_result(ts);
}

// deliver picks where a dying greenlet's result goes: its parent as it is now,
// or the nearest live ancestor; an unstarted one is started with a value, or
// killed by an exception. Runs while the dying greenlet is still current, since
// killing an unstarted greenlet destroys its run function (user code).
greenlet_impl* deliver(thread_state& ts, greenlet_impl* p, std::any& value, std::exception_ptr& error) noexcept {
  for (;;) {
    while (p->state.load(std::memory_order_relaxed) == run_state::dead) p = p->parent;
    if (p->state.load(std::memory_order_relaxed) == run_state::active) return p;
    if (!error) {
      try {
        start(ts, p);
        return p;
      } catch (...) {
        error = std::current_exception();  // no stack for it: it dies of that instead
      }
    }
    die_unstarted(p, value, error);
    p = p->parent;
  }
}

greenlet_impl* run_to_death(thread_state& ts, greenlet_impl* g) noexcept {
  std::any result;
  std::exception_ptr error;
  try {
    result = g->body->invoke(take_result(ts));
  } catch (const greenlet_exit& e) {
    result = e;
  } catch (...) {
    error = std::current_exception();
  }
  // run's captured state is destroyed while g can still switch, as its destructors may.
  g->body.reset();
  greenlet_impl* next = deliver(ts, g->parent, result, error);
  g->state.store(run_state::dead, std::memory_order_relaxed);
  unlink_live(ts, g);
  if (ts.tracing) {
    try {
      call_tracer(ts, g, next);
    } catch (...) {
      report("the switch tracer threw at the death of " + describe(g) + ": " +
             describe_exception(std::current_exception()));
    }
  }
  ts.transfer = std::move(result);
  ts.transfer_error = std::move(error);
  *ts.eh = next->eh;
  ts.origin = g;
  ts.current = next;
  return next;
}

// ---------------------------------------------------------------------------
// Killing, releasing, thread exit

void set_parent_raw(greenlet_impl* g, greenlet_impl* parent) noexcept {
  add_ref(parent);
  greenlet_impl* old = std::exchange(g->parent, parent);
  if (old != nullptr) release(old);
}

// kill throws greenlet_exit into suspended g, made a child of the current
// greenlet so that its death comes back here. Returns whether g died.
bool kill(thread_state& ts, greenlet_impl* g) noexcept {
  set_parent_raw(g, ts.current_impl());
  try {
    send(ts, g, {}, std::make_exception_ptr(greenlet_exit{}));
  } catch (const greenlet_exit&) {
  } catch (...) {
    report(describe(g) +
           " raised instead of exiting when it was killed: " + describe_exception(std::current_exception()));
  }
  return g->state.load(std::memory_order_relaxed) == run_state::dead;
}

// kill_released kills a suspended greenlet whose last handle went away.
void kill_released(thread_state& ts, greenlet_impl* g) noexcept {
  g->refs.store(1, std::memory_order_relaxed);  // ours, while it dies
  if (kill(ts, g)) {
    release(g);
    return;
  }
  report(describe(g) +
         " caught greenlet_exit and switched away instead of exiting when its last handle was dropped; "
         "it stays suspended until its thread exits");
  ts.zombies.push_back(g);
}

// defer hands a greenlet whose last reference went away to its owner thread.
greenlet_impl* defer(greenlet_impl* g) noexcept {
  thread_anchor* a = g->anchor;
  {
    std::lock_guard<std::mutex> hold(a->lock);
    if (a->alive) {
      if (!g->queued) {
        g->queued = true;
        a->released.push_back(g);
        a->pending.store(true, std::memory_order_release);
      }
      return nullptr;
    }
  }
  // The owner thread has exited and killed everything it could; what is left
  // can never run again.
  if (g->state.load(std::memory_order_relaxed) == run_state::active) {
    leak_context(std::move(g->ctx));
    return nullptr;
  }
  return destroy(g);
}

// last_reference_gone acts on a greenlet nobody refers to any more. Returns a
// greenlet whose reference must be dropped next (its parent), or nullptr.
greenlet_impl* last_reference_gone(greenlet_impl* g) noexcept {
  thread_state* ts = current_state_if_any();
  if (ts == nullptr || ts->anchor != g->anchor || g == ts->current) return defer(g);
  if (g->state.load(std::memory_order_relaxed) == run_state::active) {
    kill_released(*ts, g);
    return nullptr;
  }
  return destroy(g);
}

greenlet_impl* destroy(greenlet_impl* g) noexcept {
  greenlet_impl* parent = std::exchange(g->parent, nullptr);
  std::unique_ptr<greenlet_impl> owned(g);
  owned.reset();
  return parent;
}

void act_on_released(thread_state& ts) noexcept {
  std::vector<greenlet_impl*> items;
  {
    std::lock_guard<std::mutex> hold(ts.anchor->lock);
    items.swap(ts.anchor->released);
    ts.anchor->pending.store(false, std::memory_order_relaxed);
    for (greenlet_impl* g : items) g->queued = false;
  }
  // Killing switches; keep what the interrupted switch was carrying.
  std::any value = std::move(ts.transfer);
  ts.transfer.reset();
  std::exception_ptr error = std::move(ts.transfer_error);
  ts.transfer_error = nullptr;
  for (greenlet_impl* g : items) {
    if (g->refs.load(std::memory_order_acquire) != 0) continue;  // current() revived it
    greenlet_impl* next = last_reference_gone(g);
    if (next != nullptr) release(next);
  }
  ts.transfer = std::move(value);
  ts.transfer_error = std::move(error);
}

[[gnu::noinline, gnu::cold]] thread_state& create_state() {
  if (tls_exited) throw error("grove: greenlets cannot be used while their thread is exiting");
  auto s = std::make_unique<thread_state>();
  install_overflow_handler(*s);
  tls_core = s.get();
  tls_owner = std::move(s);
  return *tls_owner;
}

}  // namespace

// ---------------------------------------------------------------------------
// The out-of-line parts of the inline switch (grove/detail/switch.hpp)

void annotate_before(thread_core& ts, void** fake_stack, greenlet_core* to) noexcept {
  (void)ts;
  before_jump(fake_stack, impl(to)->marks);
}

void annotate_after(thread_core& ts, void* fake_stack, greenlet_core* from) noexcept {
  (void)ts;
  after_jump(fake_stack, impl(from)->marks);
}

void origin_finished(thread_core& ts) noexcept {
  // Boost already returned its stack to the pool (fiber_exit, on our side).
  forget_stack(impl(ts.origin)->marks);
}

void run_released(thread_core& ts) noexcept { act_on_released(static_cast<thread_state&>(ts)); }

void rethrow_transfer(thread_core& ts) {
  std::exception_ptr e = std::move(ts.transfer_error);
  ts.transfer_error = nullptr;
  ts.transfer.reset();
  std::rethrow_exception(e);
}

// ---------------------------------------------------------------------------

greenlet_impl::greenlet_impl(body_ptr run, greenlet_impl* parent_, thread_anchor* anchor_, std::size_t stack_request_,
                             bool is_main_)
    : parent(parent_), body(std::move(run)), stack_request(stack_request_) {
  anchor = anchor_;
  is_main = is_main_;
  if (parent != nullptr) add_ref(parent);
  anchor->refs.fetch_add(1, std::memory_order_relaxed);
  if (!is_main) live_greenlets.fetch_add(1, std::memory_order_relaxed);
}

greenlet_impl::~greenlet_impl() {
  if (on_destroy != nullptr) on_destroy(this);
  body.reset();
  if (parent != nullptr) release(parent);
  if (anchor->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    std::unique_ptr<thread_anchor> owned(anchor);
  }
  if (!is_main) live_greenlets.fetch_sub(1, std::memory_order_relaxed);
}

thread_state::thread_state() {
  anchor = std::make_unique<thread_anchor>().release();
  released = &anchor->pending;
  annotate = GROVE_ASAN || GROVE_TSAN;
  auto m = std::make_unique<greenlet_impl>(body_ptr(), nullptr, anchor, 0, true);
  m->state.store(run_state::active, std::memory_order_relaxed);
  mark_current(m->marks);
  main = m.release();
  current = main;
  eh = reinterpret_cast<eh_state*>(abi::__cxa_get_globals());
}

// At thread exit every greenlet still suspended here is killed, newest first,
// as if its last handle had gone: stacks unwind and destructors run. One that
// refuses twice is reported and its context left alone for good.
thread_state::~thread_state() {
  for (int round = 0; round < 2; ++round) {
    act_on_released(*this);
    std::vector<greenlet_impl*> victims;
    for (greenlet_impl* g = live; g != nullptr; g = g->live_next) {
      if (g == current) continue;
      add_ref(g);
      victims.push_back(g);
    }
    for (greenlet_impl* g : victims) {
      if (g->state.load(std::memory_order_relaxed) == run_state::active) kill(*this, g);
      release(g);
    }
    for (greenlet_impl* g : std::exchange(zombies, {})) release(g);
  }
  act_on_released(*this);
  for (greenlet_impl* g = live; g != nullptr; g = g->live_next) {
    if (g == current) continue;
    report(describe(g) + " would not exit when its thread did; its stack is left allocated");
    leak_context(std::move(g->ctx));
  }
  if (current != main) {
    // The thread is exiting from inside a greenlet: nothing can resume main now.
    leak_context(std::move(main->ctx));
  }
  thread_anchor* a = anchor;
  {
    std::lock_guard<std::mutex> hold(a->lock);
    a->alive = false;
  }
  remove_overflow_handler(*this);
  main->state.store(run_state::dead, std::memory_order_relaxed);
  tls_core = nullptr;
  tls_exited = true;
  release(main);  // the owner is gone now: this (and any later release) destroys directly
  if (a->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    std::unique_ptr<thread_anchor> owned(a);
  }
}

thread_state& current_state() { return current_state_inline(); }

void abandon_greenlet(greenlet_core* g) noexcept {
  greenlet_impl* gi = impl(g);
  const run_state st = gi->state.load(std::memory_order_relaxed);
  if (st == run_state::dead) return;
  add_ref(g);  // never released: nothing may free its stack or destroy its context
  if (st == run_state::active && !gi->is_main) {
    if (thread_state* ts = current_state_if_any(); ts != nullptr) unlink_live(*ts, gi);
  }
  gi->state.store(run_state::dead, std::memory_order_relaxed);
}

greenlet_core* make_greenlet(body_ptr run, greenlet_core* parent, std::size_t stack_bytes) {
  thread_state& ts = current_state();
  if (parent == nullptr) {
    parent = ts.current;
  } else if (parent->anchor != ts.anchor) {
    throw error(
        "grove::greenlet: the parent belongs to another thread; a greenlet's parent must be a greenlet of the "
        "thread that creates it");
  }
  const std::size_t request = stack_bytes == 0 ? 0 : checked_stack_size(stack_bytes);
  return std::make_unique<greenlet_impl>(std::move(run), impl(parent), ts.anchor, request, false).release();
}

void enter_greenlet(greenlet_core* g) {
  thread_state& ts = current_state();
  send(ts, impl(g), {}, nullptr);
}

bool kill_greenlet(greenlet_core* g) noexcept { return kill(current_state(), impl(g)); }

void discard_unstarted(greenlet_core* p) noexcept {
  auto* g = impl(p);
  std::any unused;
  std::exception_ptr none;
  die_unstarted(g, unused, none);
}

void release(greenlet_core* p) noexcept {
  // Iterative, so that dropping the head of a long parent chain cannot overflow the stack.
  auto* g = impl(p);
  while (g != nullptr && g->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) g = last_reference_gone(g);
}

constinit thread_local bool creating_helper_thread __attribute__((tls_model("initial-exec"))) = false;

int thread_sigmask(int how, const void* set, void* old) noexcept {
  // The kernel's signal set is 8 bytes (_NSIG / 8), the start of glibc's sigset_t.
  return static_cast<int>(::syscall(SYS_rt_sigprocmask, how, set, old, _NSIG / 8));
}

helper_thread_scope::helper_thread_scope() noexcept : was(creating_helper_thread), saved_mask(0) {
  creating_helper_thread = true;
  sigset_t all;
  ::sigfillset(&all);  // glibc leaves out its own internal signals, which every thread must take
  for (int s : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS}) ::sigdelset(&all, s);  // faults stay fatal
  thread_sigmask(SIG_BLOCK, &all, &saved_mask);
}

helper_thread_scope::~helper_thread_scope() {
  thread_sigmask(SIG_SETMASK, &saved_mask, nullptr);
  creating_helper_thread = was;
}

void keep_thread_state_at_exit() noexcept { (void)current_state_inline(), (void)tls_owner.release(); }

stack_span stack_bounds(const greenlet_core* g) noexcept {
  const stack_region& s = impl(const_cast<greenlet_core*>(g))->stack;
  return {s.base, s.size};
}

}  // namespace grove::detail

namespace grove {

using detail::current_state;
using detail::impl;
using detail::run_state;

std::any greenlet::switch_slow(std::any value) {
  detail::thread_state& ts = current_state();
  if (p_->anchor != ts.anchor) detail::wrong_thread("switch_to");
  return detail::send(ts, impl(p_), std::move(value), nullptr);
}

std::any greenlet::throw_to(std::exception_ptr e) {
  if (!e) throw error("grove::greenlet::throw_to: the exception_ptr is empty");
  detail::thread_state& ts = current_state();
  if (p_->anchor != ts.anchor) detail::wrong_thread("throw_to");
  return detail::send(ts, impl(p_), {}, std::move(e));
}

greenlet greenlet::current() { return detail::access::handle(current_state().current); }

std::optional<greenlet> greenlet::parent() const {
  detail::greenlet_impl* p = impl(p_)->parent;
  if (p == nullptr) return std::nullopt;
  return detail::access::handle(p);
}

void greenlet::set_parent(const greenlet& p) {
  detail::thread_state& ts = current_state();
  if (p_->anchor != ts.anchor) detail::wrong_thread("set_parent");
  if (p.p_->anchor != p_->anchor) {
    throw error("grove::greenlet::set_parent: the new parent belongs to another thread");
  }
  if (impl(p_)->is_main) throw error("grove::greenlet::set_parent: a thread's main greenlet has no parent");
  for (detail::greenlet_impl* q = impl(p.p_); q != nullptr; q = q->parent) {
    if (q == p_) {
      throw error("grove::greenlet::set_parent: the new parent is this greenlet or one of its descendants (a cycle)");
    }
  }
  detail::set_parent_raw(impl(p_), impl(p.p_));
}

bool greenlet::started() const noexcept { return p_->state.load(std::memory_order_relaxed) != run_state::unstarted; }

bool greenlet::dead() const noexcept { return p_->state.load(std::memory_order_relaxed) == run_state::dead; }

bool greenlet::is_main() const noexcept { return impl(p_)->is_main; }

const std::string& greenlet::name() const noexcept { return impl(p_)->label(); }

void greenlet::set_name(std::string name) { impl(p_)->named(std::move(name)); }

std::size_t greenlet::stack_size() const noexcept {
  const detail::greenlet_impl* g = impl(p_);
  if (g->is_main) return 0;
  if (g->state.load(std::memory_order_relaxed) != run_state::unstarted && g->stack.size != 0) return g->stack.size;
  return g->stack_request != 0 ? g->stack_request : default_stack_size();
}

greenlet::trace_function greenlet::settrace(trace_function fn) {
  detail::thread_state& ts = current_state();
  ts.tracing = static_cast<bool>(fn);
  return std::exchange(ts.tracer, std::move(fn));
}

std::size_t greenlet::live_count() noexcept { return detail::live_greenlets.load(std::memory_order_relaxed); }

void trim_stack_pool() { current_state().pool.trim(); }

}  // namespace grove
