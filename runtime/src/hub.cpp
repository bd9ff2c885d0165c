// hub.cpp — the per-thread hub: a libev loop in its own greenlet, the ready
// ring, parking, timers, timeouts, posts, and loop_exit.
#include "hub_state.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <utility>

#include <grove/detail/os_threads.hpp>
#include <grove/hub.hpp>
#include <grove/sleep.hpp>
#include <grove/timeout.hpp>

#include "greenlet_impl.hpp"
#include "hubs.hpp"
#include "report.hpp"
#include "settings.hpp"

namespace grove::detail {

constinit thread_local hub_core* tls_hub __attribute__((tls_model("initial-exec"))) = nullptr;
constinit thread_local bool making_hub_descriptors __attribute__((tls_model("initial-exec"))) = false;

namespace {
std::atomic<int (*)(int)> descriptor_adopter{nullptr};
}  // namespace

int adopt_hub_descriptor(int fd) noexcept {
  int (*const adopt)(int) = descriptor_adopter.load(std::memory_order_acquire);
  return adopt != nullptr ? adopt(fd) : fd;
}

void set_descriptor_adopter(int (*adopt)(int)) noexcept { descriptor_adopter.store(adopt, std::memory_order_release); }

namespace {

thread_local std::unique_ptr<hub_state> tls_hub_owner;

static_assert(sizeof(ev_timer) <= sizeof(timer::ev_storage), "timer::ev_storage is too small for an ev_timer");

ev_timer* ev_of(timer& t) noexcept { return reinterpret_cast<ev_timer*>(t.ev_storage); }

double seconds_until(deadline d) noexcept {
  const auto left = d - clock::now();
  return left.count() <= 0 ? 0.0 : std::chrono::duration<double>(left).count();
}

void on_ev_timer(struct ev_loop*, ev_timer* w, int) {
  auto* t = static_cast<timer*>(w->data);
  t->active_ = false;
  --static_cast<hub_state*>(t->hub)->timer_count;
  t->fire(*t);
}

void on_async(struct ev_loop*, ev_async*, int) {}  // posts are drained after every poll

// The hub's greenlet runs this for as long as its thread lives.
struct hub_body final : run_body {
  explicit hub_body(hub_state& h) : hub(h) {}
  std::any invoke(std::any&&) override {
    hub.run();
    return {};
  }
  hub_state& hub;
};

}  // namespace

hub_state::hub_state() : public_hub(*this) {
  thread_state& t = current_state();
  ts = &t;
  pid = ::getpid();
  {
    const hub_descriptors_scope own;
    loop = ev_loop_new(EVFLAG_AUTO);
    if (loop == nullptr) throw error("grove: cannot create the hub's event loop (ev_loop_new failed)");
    ev_async_init(&async, on_async);
    ev_async_start(loop, &async);  // libev makes its wake-up eventfd here
  }
  ev_unref(loop);  // posts alone do not keep the loop alive (see idle())
  // The hub runs callbacks and posts: give it at least the default stack.
  const std::size_t stack = std::max<std::size_t>(default_stack_size(), 256 * 1024);
  greenlet = make_greenlet(body_ptr(std::make_unique<hub_body>(*this).release()), t.main, stack);
  impl(greenlet)->named("hub");
  check_file_io_setting();
  start_diagnostics();
  register_hub(*this);
}

hub_state::~hub_state() {
  // The thread is exiting. Kill what still waits here while the loop exists:
  // their unwinding stops timers and leaves wait lists.
  closing = true;
  { const std::lock_guard<std::mutex> hold(post_lock); }  // a post still sending its wake-up finishes it (see post)
  unregister_hub(*this);
  for (int round = 0; round < 3 && (tasks != nullptr || parked_head != nullptr); ++round) {
    std::vector<task_base*> unstarted;
    std::vector<greenlet_core*> victims;
    for (task_base* t = tasks; t != nullptr; t = t->reg_next) {
      if (!t->started) {
        t->add_ref();
        unstarted.push_back(t);
      } else if (t->g != ts->current) {
        victims.push_back(t->g);
      }
    }
    for (waiter* w = parked_head; w != nullptr; w = w->park_next) {
      if (w->g->task == nullptr && w->g != ts->current) victims.push_back(w->g);
    }
    for (task_base* t : unstarted) {
      t->kill_until(std::make_exception_ptr(greenlet_exit{}), forever);  // never parks: it never ran
      t->release();
    }
    for (greenlet_core* g : victims) {
      add_ref(g);
      if (g->state.load(std::memory_order_relaxed) == run_state::active) kill_greenlet(g);
      if (g->task != nullptr && g->state.load(std::memory_order_relaxed) == run_state::dead) {
        g->task = nullptr;
        release(g);
      }
      release(g);
    }
  }
  close_pool(*this);
  close_files(*this);
  stop_diagnostics();
  if (greenlet->state.load(std::memory_order_relaxed) == run_state::active) kill_greenlet(greenlet);
  release(greenlet);
  stop_unwatched(*this);
  ev_async_stop(loop, &async);
  {
    const hub_descriptors_scope own;
    ev_loop_destroy(loop);
  }
  tls_hub = nullptr;
}

// run is the hub's loop: run what is ready, then poll, forever.
void hub_state::run() {
  for (;;) {
    run_ready(woken, woken.size());  // what the last poll woke goes first, as gevent's callbacks do
    run_ready(ready, batch);
    if (!ready.empty() || !woken.empty()) {
      stop_unwatched(*this);
      ev_run(loop, EVRUN_NOWAIT);  // a busy ready ring must not starve timers and I/O
      stale_clock = false;
      run_posts();
    } else {
      idle();
    }
    // I/O has just been polled
    direct_budget = batch;
    poll_now = false;
    ++polls;
  }
}

// run_ready switches to up to `most` greenlets of ring, in FIFO order. Each
// runs until it blocks or finishes, and control comes back here.
void hub_state::run_ready(ready_ring& ring, std::size_t most) {
  thread_core& t = *ts;
  // poll_now: a greenlet that ran asked for a poll before anything else runs.
  for (std::size_t n = 0; n < most && !ring.empty() && !poll_now; ++n) {
    greenlet_core* g = ring.pop();
    if (g == nullptr) continue;
    const run_state st = g->state.load(std::memory_order_relaxed);
    if (st == run_state::dead) continue;
    stale_clock = true;
    if (monitoring) note_switch(g);
    if (fast_switch_possible(&t, g)) {
      jump(t, g);
    } else {
      enter_greenlet(g);
    }
    // A dying task hands its (empty) result to us, its parent; nothing to keep.
    // Task bodies catch everything, so an exception landing here is a kill of
    // the hub itself (its thread is exiting): let it unwind the loop.
    if (t.transfer_error) [[unlikely]]
      rethrow_transfer(t);
    t.transfer.reset();
    // Whoever came back (not necessarily g: tasks yield to each other
    // directly) may be a task that just finished: drop the hub's reference.
    greenlet_core* back = t.origin;
    if (back->task != nullptr && back->state.load(std::memory_order_relaxed) == run_state::dead) {
      back->task = nullptr;
      release(back);
    }
  }
  if (monitoring) note_switch(greenlet);
}

template <class F>
void hub_state::for_each_parked(F&& f) {
  for (waiter* w = parked_head; w != nullptr; w = w->park_next) f(*w);
  for (task_base* t = tasks; t != nullptr; t = t->reg_next) {
    if (t->started && t->g != nullptr && t->g->parked != nullptr) f(*t->g->parked);
  }
}

namespace {
std::atomic<bool (*)(bool)> idle_hook{nullptr};
}  // namespace

void set_idle_hook(bool (*hook)(bool)) noexcept { idle_hook.store(hook, std::memory_order_release); }

// idle waits for timers, I/O or posts; with nothing that could ever wake the
// parked greenlets, gives them loop_exit. The idle hook may first make
// something ready (the hooks' hubs take green threads not yet started).
void hub_state::idle() {
  bool (*const hook)(bool) = idle_hook.load(std::memory_order_acquire);
  if (hook != nullptr && hook(true)) return;
  const bool outside = jobs_in_flight > 0 || holds.load(std::memory_order_acquire) > 0 ||
                       has_posts.load(std::memory_order_acquire) || remote.load(std::memory_order_acquire) != nullptr;
  // Idle time is when pooled stacks beyond the pool's limit give their memory
  // back, a slice at a time; while some are left, poll without sleeping.
  stack_pool& stacks = static_cast<thread_state*>(ts)->pool;
  const bool trimming = stacks.has_excess() && stacks.trim_excess(256);
  stop_unwatched(*this);
  if (outside) ev_ref(loop);  // wait for the async watcher too
  const int active = ev_run(loop, trimming ? EVRUN_NOWAIT : EVRUN_ONCE);
  if (outside) ev_unref(loop);
  if (hook != nullptr) hook(false);
  stale_clock = false;
  run_posts();
  if (!ready.empty() || !woken.empty() || active != 0 || outside || trimming) return;
  if (parked == 0) {
    report("the hub was entered with nothing parked and nothing ready: nothing can resume (internal error)");
    std::abort();
  }
  for_each_parked([](waiter& w_) {
    waiter* w = &w_;
    if (w->state != waiter::status::waiting) return;
    interrupt(w->g, std::make_exception_ptr(loop_exit(
                        "grove::loop_exit: " + describe_greenlet(w->g) + " is blocked on " +
                        (w->what[0] ? w->what : "a wait") +
                        " and nothing can ever wake it: no task is ready, no timer or I/O watcher is active, no "
                        "run_in_thread job is running and no hub::keepalive is held")));
  });
}

void hub_state::post(std::function<void()> callback) {
  // The wake-up is sent under the lock too: the post may be the one that ends
  // the hub's thread (hub_group's stop), and the hub's destructor takes the
  // lock before its loop goes, so the loop outlives the send.
  std::lock_guard<std::mutex> hold(post_lock);
  posts.push_back(std::move(callback));
  has_posts.store(true, std::memory_order_release);
  ev_async_send(loop, &async);
}

namespace {
std::atomic<void (*)()> signal_drain{nullptr};
}  // namespace

void set_signal_drain(void (*drain)()) noexcept { signal_drain.store(drain, std::memory_order_release); }

void kick_from_signal() noexcept {
  hub_core* h = tls_hub;
  if (h == nullptr) return;
  hub_state& s = state_of(*h);
  s.signal_kicked.store(true, std::memory_order_release);
  ev_async_send(s.loop, &s.async);  // libev: safe in a signal handler
}

void hand_over(hub_core& core, remote_wake& item) noexcept {
  hub_state& h = state_of(core);
  remote_wake* old = h.remote.load(std::memory_order_relaxed);
  do {
    item.next = old;
  } while (!h.remote.compare_exchange_weak(old, &item, std::memory_order_release, std::memory_order_relaxed));
  // A non-empty list has had its wake-up sent by whoever made it non-empty.
  if (old == nullptr) {
    core.remote_pending.store(true, std::memory_order_relaxed);
    ev_async_send(h.loop, &h.async);
  }
}

void hub_state::run_posts() {
  if (signal_kicked.load(std::memory_order_relaxed) && signal_kicked.exchange(false, std::memory_order_acq_rel)) {
    if (void (*drain)() = signal_drain.load(std::memory_order_acquire)) drain();
  }
  // Cleared before the list is taken: a hand-off after this sets it again.
  if (remote_pending.load(std::memory_order_relaxed)) remote_pending.store(false, std::memory_order_relaxed);
  if (remote.load(std::memory_order_relaxed) != nullptr) {
    remote_wake* items = remote.exchange(nullptr, std::memory_order_acquire);
    remote_wake* fifo = nullptr;  // oldest first
    while (items != nullptr) {
      remote_wake* next = items->next;
      items->next = fifo;
      fifo = items;
      items = next;
    }
    while (fifo != nullptr) {
      remote_wake* next = fifo->next;  // read first: running an item may end its waiter
      fifo->run(*fifo);
      fifo = next;
    }
  }
  if (!has_posts.load(std::memory_order_acquire)) return;
  std::vector<std::function<void()>> batch_;
  {
    std::lock_guard<std::mutex> hold(post_lock);
    batch_.swap(posts);
    has_posts.store(false, std::memory_order_release);
  }
  for (auto& cb : batch_) {
    try {
      cb();
    } catch (...) {
      report("a callback posted to the hub threw: " + describe_exception(std::current_exception()));
    }
  }
}

void hub_state::link_parked_other(waiter& w) noexcept {
  w.park_prev = nullptr;
  w.park_next = parked_head;
  if (parked_head != nullptr) parked_head->park_prev = &w;
  parked_head = &w;
}

void hub_state::unlink_parked_other(waiter& w) noexcept {
  if (w.park_prev != nullptr) {
    w.park_prev->park_next = w.park_next;
  } else {
    parked_head = w.park_next;
  }
  if (w.park_next != nullptr) w.park_next->park_prev = w.park_prev;
  w.park_prev = w.park_next = nullptr;
}

void keep_hub_at_exit() noexcept {
  keep_thread_state_at_exit();
  (void)tls_hub_owner.release();
}

// See os_threads.hpp. Runs in the child of a fork, where no other thread
// exists: nothing here can race, and nothing vanished may be touched beyond
// reading the hub's own lists of it.
void keep_only_current_after_fork() noexcept {
  hub_core* core = tls_hub;
  if (core == nullptr) return;
  hub_state& h = state_of(*core);
  auto& ts = *static_cast<thread_state*>(h.ts);
  greenlet_core* self = ts.current;
  if (self == h.greenlet || h.closing) return;

  // Whatever could still run here but the caller vanishes: tasks (started or
  // not), greenlets parked on the hub or ready to run, and main.
  for (task_base* t = h.tasks; t != nullptr; t = t->reg_next) {
    if (t->g != nullptr && t->g != self) abandon_greenlet(t->g);
  }
  for (waiter* w = h.parked_head; w != nullptr; w = w->park_next) {
    if (w->g != self) abandon_greenlet(w->g);
  }
  for (ready_ring* ring : {&h.ready, &h.woken}) {
    while (!ring->empty()) {
      if (greenlet_core* g = ring->pop(); g != nullptr && g != self) abandon_greenlet(g);
    }
    ring->clear();
  }
  if (ts.main != self) abandon_greenlet(ts.main);
  h.parked_head = nullptr;
  h.parked = 0;  // the caller is running, not parked
  task_base* mine = self->task;
  h.tasks = nullptr;
  h.task_count = 0;
  if (mine != nullptr) {
    h.register_task(mine);
    while (mine->joiners.pop_front() != nullptr) {
      // their waiters were on vanished stacks: nobody is left to wake
    }
  }

  // A new loop: the old one holds the vanished greenlets' timers and watchers.
  struct ev_loop* old = h.loop;
  const hub_descriptors_scope own;  // the new loop's descriptors, and the old one's closed
  struct ev_loop* fresh = ev_loop_new(EVFLAG_AUTO);
  if (fresh == nullptr) {
    report("cannot create a new event loop for the hub in a child of fork (ev_loop_new failed)");
    std::abort();
  }
  ev_async_stop(old, &h.async);
  if (h.dump_signal_active) {
    ev_ref(old);
    ev_signal_stop(old, &h.dump_signal);
  }
  h.loop = fresh;
  ev_async_init(&h.async, on_async);
  ev_async_start(fresh, &h.async);
  ev_unref(fresh);
  if (h.dump_signal_active) {
    ev_signal_start(fresh, &h.dump_signal);
    ev_unref(fresh);
  }
  // The caller's own timeout scopes keep their deadlines, on the new loop.
  ev_now_update(old);
  h.timer_count = 0;
  for (timeout_scope* s = self->innermost_timeout; s != nullptr; s = s->outer) {
    if (!s->clock.active_) continue;
    ev_timer* w = ev_of(s->clock);
    const std::chrono::duration<double> left(ev_timer_remaining(old, w));
    ev_timer_stop(old, w);
    s->clock.active_ = false;
    s->clock.start(deadline_after(std::chrono::duration_cast<std::chrono::nanoseconds>(left)), s->clock.fire,
                   s->clock.arg);
  }
  ev_loop_destroy(old);  // closes the child's copies of its descriptors; the parent's loop is untouched
  h.stale_clock = true;
  h.pid = ::getpid();
  h.fds.clear();  // their watchers were in the old loop, their waiters on vanished stacks
  h.unwatched.clear();

  // Posts from other threads of the parent were for greenlets that are gone,
  // and a vanished poster may have held the lock: both start anew (the old
  // queue is left, not destroyed, as it may be half-written).
  new (&h.post_lock) std::mutex;
  new (&h.posts) std::vector<std::function<void()>>;
  h.has_posts.store(false, std::memory_order_relaxed);
  h.remote.store(nullptr, std::memory_order_relaxed);
  h.holds.store(0, std::memory_order_relaxed);  // held by vanished greenlets
  h.direct_budget = 0;
}

namespace {
std::string two_hubs_message(const waiter& first) {
  std::string what = first.what != nullptr && first.what[0] != '\0' ? first.what : "a wait";
  return "grove: a grove sync object (" + what + ") whose waiters are tasks of one hub (OS thread) was used " +
         "from another thread. grove::mutex, event, semaphore, condition_variable, queue, channel, async_result, pools and task "
         "joins belong to the tasks of one hub; between hubs use hub::post or pthread objects";
}
}  // namespace

void used_from_two_hubs(const waiter& first) noexcept {
  report(two_hubs_message(first));
  std::abort();
}

void throw_used_from_two_hubs(const waiter& first) { throw error(two_hubs_message(first)); }

hub_core& make_hub() {
  if (tls_hub == nullptr) {
    auto h = std::make_unique<hub_state>();
    tls_hub = h.get();
    tls_hub_owner = std::move(h);
  }
  return *tls_hub;
}

// ---------------------------------------------------------------------------
// Parking

namespace {

void on_park_deadline(timer& t) {
  auto* w = static_cast<waiter*>(t.arg);
  if (w->state != waiter::status::waiting) return;
  w->state = waiter::status::timed_out;
  tls_hub->woken.push(w->g);
}

// keep_alive holds a reference to a greenlet that is not a task or a main
// greenlet while it is parked or on the ready ring, so that dropping its last
// handle then cannot free it under the hub.
struct keep_alive {
  explicit keep_alive(greenlet_core* g) : g_(g->task == nullptr && !g->is_main ? g : nullptr) {
    if (g_ != nullptr) add_ref(g_);
  }
  keep_alive(const keep_alive&) = delete;
  keep_alive& operator=(const keep_alive&) = delete;
  ~keep_alive() {
    if (g_ != nullptr) release(g_);
  }
  greenlet_core* g_;
};

[[noreturn, gnu::cold, gnu::noinline]] void refuse_blocking_in_hub() {
  throw error(
      "grove: a blocking call was made in the hub itself (from a callback the hub runs, such as a post); such "
      "callbacks must not block: spawn a task for blocking work");
}

inline greenlet_core* blockable_current(hub_core& h) {
  greenlet_core* self = h.ts->current;
  if (self == h.greenlet) [[unlikely]]
    refuse_blocking_in_hub();
  if (h.closing) [[unlikely]]
    throw greenlet_exit{};
  return self;
}

}  // namespace

void to_hub(hub_core& h) {
  thread_core& t = *h.ts;
  if (fast_switch_possible(&t, h.greenlet)) {
    jump(t, h.greenlet);
  } else {
    enter_greenlet(h.greenlet);  // its first switch: starts the hub
  }
  if (t.transfer_error) [[unlikely]]
    rethrow_transfer(t);  // a greenlet-level kill (thread exit, last handle)
  t.transfer.reset();
}

namespace {

// leave_parked switches away from a greenlet that has just parked: straight to
// the next woken (then ready) greenlet when a plain jump can enter it, as
// yield's fast path does, so that a wake costs one switch rather than two
// through the hub; otherwise to the hub. The hub runs every woken greenlet
// before it polls again anyway, so those hand-overs are free; ones from the
// ready ring spend direct_budget, which bounds how long they go on before the
// hub polls I/O. The hub's loop resumes, whenever a greenlet next switches to
// it, as after any switch of its own.
void leave_parked(hub_core& h) {
  thread_core& t = *h.ts;
  const bool from_woken = !h.woken.empty();
  if (from_woken || (h.direct_budget > 0 && !h.ready.empty())) {
    ready_ring& ring = from_woken ? h.woken : h.ready;
    greenlet_core* next = ring.front();
    if (next != nullptr && fast_switch_possible(&t, next)) {
      ring.pop();
      if (!from_woken) --h.direct_budget;
      state_of(h).stale_clock = true;
      if (h.monitoring) [[unlikely]]
        note_switch(h, next);
      jump(t, next);
      if (t.transfer_error) [[unlikely]]
        rethrow_transfer(t);
      t.transfer.reset();
      return;
    }
  }
  to_hub(h);
}

// park_here links w as parked, switches away (leave_parked), and reads how w's
// wait ended once we are resumed. The deadline's timer, if any, is the caller's.
bool park_here(hub_core& h, greenlet_core* self, waiter& w) {
  keep_alive hold(self);
  hub_state& hs = state_of(h);
  hs.link_parked(w);
  self->parked = &w;
  struct unpark {
    hub_state& hs;
    waiter& w;
    ~unpark() {
      w.g->parked = nullptr;
      hs.unlink_parked(w);
    }
  } on_exit{hs, w};
  leave_parked(h);
  switch (w.state) {
    case waiter::status::woken:
      if (!w.handoff) check_interrupts(self);
      return true;
    case waiter::status::timed_out:
      check_interrupts(self);
      return false;
    case waiter::status::interrupted:
      raise_pending(self);
      throw error("grove: a parked greenlet was interrupted with nothing to raise (internal error)");
    case waiter::status::waiting:
      break;
  }
  throw error(
      "grove: a greenlet parked on the hub was resumed by a direct switch_to; a greenlet that waits on the hub must "
      "be left to the hub");
}

// park_timed is park with a deadline: out of line, so that the timer's room is
// only on the stack of waits that have one (a parked connection's stack stays shallow).
[[gnu::noinline]] bool park_timed(hub_core& h, greenlet_core* self, waiter& w, deadline d) {
  if (d <= clock::now()) {  // a zero limit: just a check
    w.state = waiter::status::timed_out;
    return false;
  }
  timer limit;
  limit.start(d, on_park_deadline, &w);
  return park_here(h, self, w);
}

}  // namespace

bool park(waiter& w, deadline d) {
  hub_core& h = current_hub();
  // Once park returns or throws, w is never left `waiting`: a waker on another
  // OS thread may still hold it (the parking lot's hand-over), and its late wake
  // must not queue a greenlet that is no longer parked (it would be resumed in
  // the middle of its next wait).
  w.state = waiter::status::interrupted;
  greenlet_core* self = blockable_current(h);
  check_interrupts(self);
  w.g = self;
  w.state = waiter::status::waiting;
  w.handoff = false;
  if (d != forever) return park_timed(h, self, w, d);
  return park_here(h, self, w);
}

void interrupt(greenlet_core* g, std::exception_ptr e) {
  if (!g->interrupt) g->interrupt = std::move(e);
  if (waiter* w = g->parked; w != nullptr && w->state == waiter::status::waiting) {
    w->state = waiter::status::interrupted;
    schedule(*tls_hub, g);
  }
}

void raise_pending(greenlet_core* g) {
  if (g->interrupt) {
    std::exception_ptr e = std::move(g->interrupt);
    g->interrupt = nullptr;
    std::rethrow_exception(e);
  }
  if (timeout_scope* s = g->pending_timeout; s != nullptr) {
    g->pending_timeout = nullptr;
    throw_timeout(*s);
  }
}

// ---------------------------------------------------------------------------
// Timers

void timer::start(deadline d, void (*fn)(timer&), void* a) {
  stop();
  hub_state& h = state_of(current_hub());
  if (h.stale_clock) {
    ev_now_update(h.loop);  // tasks ran since the last poll; libev's "now" lags
    h.stale_clock = false;
  }
  fire = fn;
  arg = a;
  hub = &h;
  ev_timer* w = ev_of(*this);
  ev_timer_init(w, on_ev_timer, seconds_until(d), 0.0);
  w->data = this;
  ev_timer_start(h.loop, w);
  active_ = true;
  ++h.timer_count;
}

void timer::stop() noexcept {
  if (!active_) return;
  ev_timer_stop(state_of(*hub).loop, ev_of(*this));
  active_ = false;
  --state_of(*hub).timer_count;
}

// ---------------------------------------------------------------------------
// Timeout scopes

namespace {

std::string describe_limit(std::chrono::nanoseconds d) {
  using namespace std::chrono;
  if (d >= seconds(1) && d % milliseconds(1) == nanoseconds(0)) {
    return std::to_string(duration<double>(d).count()) + " s";
  }
  if (d >= milliseconds(1)) return std::to_string(duration_cast<milliseconds>(d).count()) + " ms";
  return std::to_string(d.count()) + " ns";
}

void on_timeout_fired(timer& t) {
  auto* s = static_cast<timeout_scope*>(t.arg);
  s->fired = true;
  greenlet_core* g = s->g;
  if (g->pending_timeout == nullptr || g->pending_timeout->depth > s->depth) g->pending_timeout = s;
  if (waiter* w = g->parked; w != nullptr && w->state == waiter::status::waiting) {
    w->state = waiter::status::interrupted;
    tls_hub->woken.push(g);
  }
}

}  // namespace

void throw_timeout(const timeout_scope& s) {
  throw timeout_error(s.owner, "grove::timeout: the time limit of " + describe_limit(s.limit) + " passed");
}

}  // namespace grove::detail

namespace grove {

using detail::current_hub;
using detail::hub_state;
using detail::state_of;

hub& hub::current() { return state_of(current_hub()).public_hub; }

void hub::post(std::function<void()> callback) { state_.post(std::move(callback)); }

hub::counts hub::stats() const {
  return counts{state_.task_count, state_.parked, state_.ready.size() + state_.woken.size(), state_.timer_count};
}

hub::keepalive::keepalive(hub& h) : hub_(h) { h.state_.holds.fetch_add(1, std::memory_order_acq_rel); }

hub::keepalive::~keepalive() {
  hub_.state_.holds.fetch_sub(1, std::memory_order_acq_rel);
  hub_.state_.post([] {});  // let an idle hub re-check whether anything can still wake its tasks
}

void sleep(std::chrono::nanoseconds d) {
  if (d <= std::chrono::nanoseconds::zero()) {
    yield();
    return;
  }
  detail::waiter w;
  w.what = "sleep";
  detail::park(w, detail::deadline_after(d));
}

namespace detail {
void yield_slow() {
  detail::hub_core& h = current_hub();
  detail::greenlet_core* self = detail::blockable_current(h);
  detail::check_interrupts(self);
  detail::keep_alive hold(self);
  detail::schedule(h, self);
  detail::to_hub(h);
  detail::check_interrupts(self);
}

void yield_to_poll() {
  detail::hub_core& h = current_hub();
  detail::greenlet_core* self = detail::blockable_current(h);
  detail::check_interrupts(self);
  detail::keep_alive hold(self);
  // At the back of the ready ring, so it runs after what the poll wakes and
  // after every greenlet that was ready already; straight to the hub, never
  // to another greenlet, and the hub polls before it runs anything else.
  detail::schedule(h, self);
  h.poll_now = true;
  detail::to_hub(h);
  detail::check_interrupts(self);
}
}  // namespace detail

timeout::timeout(std::chrono::nanoseconds limit) {
  detail::greenlet_core* g = detail::current_greenlet();
  scope_.owner = this;
  scope_.g = g;
  scope_.limit = limit;
  scope_.outer = g->innermost_timeout;
  scope_.depth = scope_.outer != nullptr ? scope_.outer->depth + 1 : 0;
  g->innermost_timeout = &scope_;
  scope_.clock.start(detail::deadline_after(limit), detail::on_timeout_fired, &scope_);
}

timeout::~timeout() {
  cancel();
  detail::greenlet_core* g = scope_.g;
  if (g->innermost_timeout == &scope_) {
    g->innermost_timeout = scope_.outer;
  } else {
    // Scopes end in reverse order of creation; tolerate a misuse by unlinking anyway.
    for (detail::timeout_scope* s = g->innermost_timeout; s != nullptr; s = s->outer) {
      if (s->outer == &scope_) {
        s->outer = scope_.outer;
        break;
      }
    }
  }
}

void timeout::cancel() noexcept {
  scope_.clock.stop();
  if (scope_.g->pending_timeout == &scope_) scope_.g->pending_timeout = nullptr;
}

}  // namespace grove
