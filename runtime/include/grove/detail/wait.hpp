// grove/detail/wait.hpp — the hub's narrow interface: park a greenlet until it
// is woken, a deadline passes or it is interrupted; wake it; run a timer.
// Tasks, sync objects and I/O are built on these and never touch libev.
// Not a public interface: names here change without notice.
//
// Blocking, in one picture:
//
//   task T: park(w)  ──jump──▶  hub: runs ready greenlets, polls libev
//        ▲                          │
//        └────────jump──────────────┘  after wake(w): T was pushed on the ready ring
//
// (A greenlet that parks while another is ready jumps straight to that one
// instead, as yield does: the hub's loop is only re-entered when nothing that
// a plain jump can enter is ready, or after a batch of such hand-overs.)
//
// Interrupts (a kill, a timeout scope firing, loop_exit) reach a parked greenlet
// at once, and any other greenlet at its next blocking call. A waiter woken
// with a hand-off (an item, a permit, a lock) returns it even when an interrupt
// arrives before it runs again: the interrupt then fires at the next blocking
// call, so nothing handed over is ever lost.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <vector>

#include <grove/detail/switch.hpp>
#include <grove/error.hpp>

namespace grove::detail {

using clock = std::chrono::steady_clock;
using deadline = clock::time_point;
inline constexpr deadline forever = deadline::max();

// deadline_after is now + d, saturating (a huge timeout means forever).
inline deadline deadline_after(std::chrono::nanoseconds d) noexcept {
  const deadline now = clock::now();
  if (d <= std::chrono::nanoseconds::zero()) return now;
  if (d >= forever - now) return forever;
  return now + std::chrono::duration_cast<clock::duration>(d);
}

// waiter is one greenlet's wait: it lives on the waiting greenlet's stack.
// The flags sit together: a waiter is on the stack of every parked greenlet.
struct waiter {
  enum class status : std::uint8_t { waiting, woken, timed_out, interrupted };
  greenlet_core* g = nullptr;
  status state = status::waiting;
  bool handoff = false;      // woken with something handed over that the wait must return
  bool linked = false;       // on a wait_list
  const char* what = "";     // what it waits for, for dump_tasks
  const void* on = nullptr;  // the object it waits on, for dump_tasks
  waiter* prev = nullptr;    // wait_list links
  waiter* next = nullptr;
  void* slot = nullptr;               // the hand-off's payload, where there is one
  void (*notify)(waiter&) = nullptr;  // if set, wake calls it instead of scheduling g
  waiter* park_prev = nullptr;        // the hub's list of parked waiters
  waiter* park_next = nullptr;
};

struct hub_core;
extern constinit thread_local hub_core* tls_hub __attribute__((tls_model("initial-exec")));

// used_from_two_hubs reports a grove sync object whose waiters belong to one
// hub (OS thread) used from another, and aborts: its state is not
// thread-safe, so going on would be silently wrong. Throwing callers throw
// grove::error instead (wait_list::check_waiter).
[[noreturn, gnu::cold]] void used_from_two_hubs(const waiter& first) noexcept;
[[noreturn, gnu::cold]] void throw_used_from_two_hubs(const waiter& first);

// wait_list is an intrusive FIFO of waiters; sync objects keep one each. Its
// waiters are tasks of one hub: a task of another hub (or a thread with no
// hub) that waits on it, or wakes one of its waiters, is refused.
class wait_list {
 public:
  wait_list() = default;
  wait_list(const wait_list&) = delete;
  wait_list& operator=(const wait_list&) = delete;

  bool empty() const noexcept { return head_ == nullptr; }
  std::size_t size() const noexcept { return size_; }
  waiter* front() const noexcept { return head_; }

  // check_waiter throws grove::error if the caller's hub is not the hub of
  // the waiters already here.
  void check_waiter() const {
    if (head_ != nullptr && hub_ != tls_hub) [[unlikely]]
      throw_used_from_two_hubs(*head_);
  }

  void push_back(waiter& w) noexcept {
    if (head_ == nullptr) {
      hub_ = tls_hub;
    } else if (hub_ != tls_hub) [[unlikely]] {
      used_from_two_hubs(*head_);
    }
    w.prev = tail_;
    w.next = nullptr;
    if (tail_ != nullptr) {
      tail_->next = &w;
    } else {
      head_ = &w;
    }
    tail_ = &w;
    w.linked = true;
    ++size_;
  }
  void remove(waiter& w) noexcept {
    if (!w.linked) return;
    if (w.prev != nullptr) {
      w.prev->next = w.next;
    } else {
      head_ = w.next;
    }
    if (w.next != nullptr) {
      w.next->prev = w.prev;
    } else {
      tail_ = w.prev;
    }
    w.prev = w.next = nullptr;
    w.linked = false;
    --size_;
  }
  waiter* pop_front() noexcept {
    waiter* w = head_;
    if (w != nullptr) {
      if (hub_ != tls_hub) [[unlikely]]
        used_from_two_hubs(*w);
      remove(*w);
    }
    return w;
  }

  // pop_waiting unlinks and returns the first waiter that is still waiting.
  // Waiters ahead of it have timed out or been interrupted and not yet run:
  // they are dropped (they would leave anyway), and must never be handed
  // anything, since wake() on them does nothing and the hand-off would be lost.
  // Every waker that hands something over pops with this.
  waiter* pop_waiting() noexcept {
    while (waiter* w = pop_front()) {
      if (w->state == waiter::status::waiting) return w;
    }
    return nullptr;
  }
  // has_waiting: some waiter is still waiting (stale ones at the front are dropped).
  bool has_waiting() noexcept {
    while (head_ != nullptr && head_->state != waiter::status::waiting) pop_front();
    return head_ != nullptr;
  }

 private:
  waiter* head_ = nullptr;
  waiter* tail_ = nullptr;
  std::size_t size_ = 0;
  hub_core* hub_ = nullptr;  // the hub of the waiters, while there are any
};

// listed_waiter is a waiter linked into a wait_list for as long as it lives
// (or until someone pops it), so every way out of a wait unlinks it.
struct listed_waiter : waiter {
  listed_waiter(wait_list& l, const char* what_, const void* on_) : list(l) {
    what = what_;
    on = on_;
    l.check_waiter();
    l.push_back(*this);
  }
  listed_waiter(const listed_waiter&) = delete;
  listed_waiter& operator=(const listed_waiter&) = delete;
  ~listed_waiter() { list.remove(*this); }
  wait_list& list;
};

// ready_ring is the hub's FIFO of greenlets ready to run: a power-of-two ring
// that only allocates when it grows.
class ready_ring {
 public:
  bool empty() const noexcept { return head_ == tail_; }
  std::size_t size() const noexcept { return tail_ - head_; }
  void push(greenlet_core* g) {
    if (tail_ - head_ == buf_.size()) grow();
    buf_[tail_++ & (buf_.size() - 1)] = g;
  }
  greenlet_core* pop() noexcept { return buf_[head_++ & (buf_.size() - 1)]; }
  greenlet_core* front() const noexcept { return buf_[head_ & (buf_.size() - 1)]; }
  // clear drops every entry (keeping the room).
  void clear() noexcept { head_ = tail_ = 0; }
  // remove drops every entry for g (a greenlet discarded before it ran).
  void remove(greenlet_core* g) noexcept {
    for (std::size_t i = head_; i != tail_; ++i) {
      auto& e = buf_[i & (buf_.size() - 1)];
      if (e == g) e = nullptr;
    }
  }

 private:
  void grow() {
    std::vector<greenlet_core*> bigger(buf_.empty() ? 64 : buf_.size() * 2);
    for (std::size_t i = head_, j = 0; i != tail_; ++i, ++j) bigger[j] = buf_[i & (buf_.size() - 1)];
    tail_ -= head_;
    head_ = 0;
    buf_.swap(bigger);
  }
  std::vector<greenlet_core*> buf_;
  std::size_t head_ = 0;
  std::size_t tail_ = 0;
};

// hub_core is the part of a thread's hub the inline paths use.
struct hub_core {
  ready_ring ready;                   // spawned, yielding, and woken by other tasks: FIFO
  ready_ring woken;                   // woken by the hub's own loop (timers, I/O): run right after each poll
  greenlet_core* greenlet = nullptr;  // the hub's own greenlet
  thread_core* ts = nullptr;
  std::size_t parked = 0;  // greenlets parked on this hub right now
  // yield may switch straight to the next ready task this many more times
  // before it must go through the hub, which polls I/O and refills it.
  std::size_t direct_budget = 0;
  bool closing = false;     // the thread is exiting: blocking calls only kill
  bool monitoring = false;  // GROVE_MONITOR_MS: switches are reported to the watchdog
  // yield_to_poll asked the hub to poll I/O and timers before it runs any
  // other greenlet; the hub clears it when it has.
  bool poll_now = false;
  std::uint64_t polls = 0;  // times the hub has polled I/O and timers
  // slice_used_up's record: the poll count it last saw, and when it first saw it.
  std::uint64_t slice_polls = 0;
  clock::time_point slice_start{};
  // Another thread has handed this hub a wake-up (hand_over) that only its
  // next poll will run: a green thread of this hub waits for its turn. Set by
  // the waker that makes the hand-over list non-empty, cleared by the hub
  // before it takes the list; a hint (a late set leaves it true until the
  // next poll), read relaxed. On a line of its own: other threads write it.
  alignas(64) std::atomic<bool> remote_pending{false};
};

extern constinit thread_local hub_core* tls_hub __attribute__((tls_model("initial-exec")));

// note_switch tells the blocking monitor that g runs now (only when monitoring).
void note_switch(hub_core& h, greenlet_core* g) noexcept;

// current_hub returns this thread's hub, creating it (and starting nothing) on first use.
hub_core& make_hub();
[[gnu::always_inline]] inline hub_core& current_hub() {
  if (hub_core* h = tls_hub) [[likely]]
    return *h;
  return make_hub();
}

// schedule puts g at the back of the ready ring: it runs when the hub gets to it.
inline void schedule(hub_core& h, greenlet_core* g) { h.ready.push(g); }

// wake ends w's wait successfully, if it is still waiting. handoff: w was given
// something (an item, a permit) that it must return even if interrupted.
// after_poll: the hub's loop delivers this wake while it polls (a hand-over
// from another OS thread, hand_over); like the waits its timers and I/O end,
// w's greenlet then runs right after the poll, ahead of the ready ring, and
// so ahead of a greenlet that has just given way to let it run.
inline bool wake(waiter& w, bool handoff = false, bool after_poll = false) {
  if (w.state != waiter::status::waiting) return false;
  w.state = waiter::status::woken;
  w.handoff = handoff;
  if (w.notify != nullptr) {
    w.notify(w);
  } else if (after_poll) {
    tls_hub->woken.push(w.g);
  } else {
    schedule(*tls_hub, w.g);
  }
  return true;
}

// interrupt makes g raise e at its blocking point: now, if it is parked;
// otherwise at its next blocking call.
void interrupt(greenlet_core* g, std::exception_ptr e);

// raise_pending throws what interrupts the current greenlet, if anything does.
void raise_pending(greenlet_core* g);
[[gnu::always_inline]] inline void check_interrupts(greenlet_core* g) {
  if (g->interrupt || g->pending_timeout != nullptr) [[unlikely]]
    raise_pending(g);
}

// park blocks the current greenlet until w is woken (true) or d passes (false).
// Throws what interrupts it (kill, timeout scope, loop_exit), and grove::error
// when called in the hub itself. However it ends, w is then no longer
// `waiting`, so a wake that comes late (from another OS thread) is a no-op.
bool park(waiter& w, deadline d = forever);

// to_hub switches from the current greenlet to the hub, which resumes it once it
// is on the ready ring again. The caller has arranged for that.
void to_hub(hub_core& h);

// timer fires its callback on the hub once its deadline passes, unless stopped.
struct timer {
  timer() = default;
  timer(const timer&) = delete;
  timer& operator=(const timer&) = delete;
  ~timer() { stop(); }
  // start arms the timer for deadline d on the current thread's hub.
  void start(deadline d, void (*fn)(timer&), void* arg);
  void stop() noexcept;
  bool active() const noexcept { return active_; }
  void* arg = nullptr;

  alignas(std::max_align_t) unsigned char ev_storage[64];  // an ev_timer, interpreted by hub.cpp only
  void (*fire)(timer&) = nullptr;
  hub_core* hub = nullptr;
  bool active_ = false;
};

// set_signal_drain installs the function every hub calls, on its own greenlet
// after a poll, once kick_from_signal has been called on its thread. It lets
// the hooks finish, in ordinary code, what a signal handler could only note
// (which green thread a signal is for, and waking it).
void set_signal_drain(void (*drain)()) noexcept;
// kick_from_signal makes the current thread's hub run the signal drain soon,
// waking it if it sleeps in its poll. Async-signal-safe; nothing without a hub.
void kick_from_signal() noexcept;

// set_idle_hook installs the function every hub calls on its own greenlet when
// it has nothing ready: with entering true before it polls (true back: the
// hook made something ready, and the hub runs that instead of sleeping), and
// with entering false once the poll has returned. The hooks use it to let an
// idle hub take green threads that a busy hub has not started yet.
void set_idle_hook(bool (*hook)(bool entering)) noexcept;
// set_stuck_hook installs what a hub's blocking monitor (GROVE_MONITOR_MS)
// calls, on the monitor's thread, each period its hub stays stuck in one
// greenlet: it may hand that hub's not-yet-started work to other hubs, and
// returns how many it handed (the monitor says so on stderr).
void set_stuck_hook(std::size_t (*hook)(hub_core& stuck)) noexcept;

// remote_wake is a wake-up handed to a hub from another OS thread: queued
// without a lock or an allocation (the item lives with its waiter), run on the
// hub's greenlet after its next poll. hand_over pushes it onto the hub's
// lock-free list and sends the hub's ev_async only when the list was empty:
// one wake-up per batch, and none at all while the hub is busy (libev writes
// its eventfd only when the loop sleeps in its poll).
struct remote_wake {
  remote_wake* next = nullptr;
  void (*run)(remote_wake&) = nullptr;
};
void hand_over(hub_core& h, remote_wake& item) noexcept;

// current_greenlet is the greenlet running now.
[[gnu::always_inline]] inline greenlet_core* current_greenlet() { return current_hub().ts->current; }

}  // namespace grove::detail
