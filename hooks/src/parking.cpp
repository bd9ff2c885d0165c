// parking.cpp — the parking lot (see parking.hpp).
#include "parking.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <optional>

#include <grove/error.hpp>
#include <grove/hub.hpp>
#include <grove/detail/os_threads.hpp>
#include <grove/task.hpp>

#include "signals.hpp"
#include "spread.hpp"
#include "threads.hpp"

namespace grove::hooks::parking {
namespace {

enum : std::uint32_t { waiting = 0, claimed = 1, delivered = 2 };

// node is one waiter, on its own stack. Green: hub is its thread's hub and w its
// wait there. OS thread: hub is null and it sleeps on the futex word `state`.
struct node {
  const void* addr = nullptr;
  node* prev = nullptr;
  node* next = nullptr;
  node* wake_next = nullptr;  // the waker's list, once dequeued
  detail::hub_core* hub = nullptr;
  grove::hub* hub_handle = nullptr;
  detail::waiter w;
  bool counted = false;  // in green_forever (a green waiter with no time limit, with several hubs)
  // A waker on another OS thread hands the wake over with this.
  struct delivery_item : detail::remote_wake {
    node* owner = nullptr;
  } delivery;
  std::atomic<std::uint32_t> state{waiting};
};

struct alignas(64) bucket {
  std::atomic<bool> locked{false};
  node* head = nullptr;
  node* tail = nullptr;

  void lock() noexcept {
    for (unsigned spins = 0; locked.exchange(true, std::memory_order_acquire);) {
      while (locked.load(std::memory_order_relaxed)) {
        // Held by another OS thread (a holder never switches greenlets).
        if (++spins < 100) {
          __builtin_ia32_pause();
        } else {
          ::syscall(SYS_sched_yield);
        }
      }
    }
  }
  void unlock() noexcept { locked.store(false, std::memory_order_release); }

  void push(node& n) noexcept {
    n.prev = tail;
    n.next = nullptr;
    (tail != nullptr ? tail->next : head) = &n;
    tail = &n;
  }
  void unlink(node& n) noexcept {
    (n.prev != nullptr ? n.prev->next : head) = n.next;
    (n.next != nullptr ? n.next->prev : tail) = n.prev;
    n.prev = n.next = nullptr;
  }
};

constexpr std::size_t bucket_count = 1024;
bucket buckets[bucket_count];

bucket& bucket_of(const void* addr) noexcept {
  const auto a = reinterpret_cast<std::uintptr_t>(addr);
  return buckets[((a >> 3) * 0x9E3779B97F4A7C15ull) >> 54];  // 64 - log2(bucket_count)
}

std::atomic<long> native_running{0};

// With several hubs no single hub can tell that nothing will ever wake its
// waiters (another hub's thread may), so the deadlock report counts instead:
// green waiters with no time limit, enqueued and not yet dequeued. When that
// reaches every live thread of the program (threads_alive), each waits on a
// pthread object and none is being woken: only a signal handler can wake them.
std::atomic<long> green_forever{0};

// When every green thread of a hub waits on pthread objects and nothing else
// (a timer, a descriptor, another OS thread) could wake them, only a signal
// handler still can (sem_post is async-signal-safe). The hub is told so by
// grove::loop_exit; from then on its green waiters wake every `slice` to look
// again, as a thread blocked in the kernel would be woken by the handler.
constexpr auto slice = std::chrono::milliseconds(100);
constinit thread_local bool slicing = false;
std::atomic<bool> warned{false};

void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, const timespec* rel) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, rel, nullptr, 0);
}
void futex_wake(std::atomic<std::uint32_t>& word) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

// enqueue queues n if validate() says to wait, under the bucket's lock (no
// waker can change the object between the look and the queueing).
bool enqueue(bucket& b, node& n, bool (*validate)(void*), void* state) {
  b.lock();
  const bool wait = validate(state);
  if (wait) {
    b.push(n);
    if (n.counted) green_forever.fetch_add(1, std::memory_order_acq_rel);
  }
  b.unlock();
  return wait;
}

void uncount(node& n) noexcept {
  if (n.counted) green_forever.fetch_sub(1, std::memory_order_acq_rel);
}

// leave takes a waiter whose wait ended without a wake out of its queue.
// False: a waker dequeued it first, and its wake is on the way.
bool leave(bucket& b, node& n) noexcept {
  b.lock();
  const bool queued = n.state.load(std::memory_order_relaxed) == waiting;
  if (queued) {
    b.unlink(n);
    uncount(n);
  }
  b.unlock();
  return !queued;
}

// await_delivery lets a green waiter's hub run until a waker of another OS
// thread has delivered the wake it was given (the post reaches this hub).
void await_delivery(node& n) {
  detail::hub_core& h = *n.hub;
  const keep_errno kept;
  while (n.state.load(std::memory_order_acquire) != delivered) {
    detail::schedule(h, n.w.g);
    detail::to_hub(h);
  }
}

void warn_everything_blocked() {
  if (warned.exchange(true)) return;
  std::fprintf(stderr,
               "grove: every green thread waits on a pthread object, and no timer, descriptor or other thread can "
               "wake them; only a signal handler can now (a deadlock?). The tasks:\n");
  grove::dump_tasks(std::cerr);
  detail::dump_other_hubs();
}

result park_green(bucket& b, node& n, bool (*validate)(void*), void* state, limit l, std::exception_ptr* deferred) {
  n.hub = detail::tls_hub;
  n.hub_handle = &grove::hub::current();
  n.w.g = n.hub->ts->current;
  n.w.what = "a pthread object";
  n.w.on = n.addr;
  n.counted = l.forever && spread::several();
  if (!enqueue(b, n, validate, state)) return result::invalid;
  if (n.counted && native_running.load(std::memory_order_relaxed) == 0 &&
      green_forever.load(std::memory_order_acquire) >= threads_alive()) {
    warn_everything_blocked();
  }

  // Another OS thread of the program, or a green thread on another hub, may
  // wake this waiter: the hub must wait for it.
  std::optional<grove::hub::keepalive> alive;
  if (native_running.load(std::memory_order_relaxed) > 0 || spread::several()) alive.emplace(*n.hub_handle);
  detail::deadline d = l.forever ? detail::forever : l.at;
  const bool sliced = slicing && l.forever;
  if (sliced) d = detail::clock::now() + slice;
  bool woken = false;
  bool signalled = false;
  try {
    const keep_errno kept;
    const signals::wait_scope interruptible;
    woken = detail::park(n.w, d);
  } catch (const signals::wake&) {
    signalled = true;
  } catch (const grove::loop_exit&) {
    if (leave(b, n)) {
      await_delivery(n);
      return result::unparked;
    }
    slicing = true;
    warn_everything_blocked();
    return result::unparked;  // a spurious wake: the caller looks again
  } catch (...) {
    if (leave(b, n)) {
      // A wake was given to this waiter: hand it on before leaving.
      await_delivery(n);
      unpark(n.addr, 1);
    }
    if (deferred == nullptr) throw;
    if (!*deferred) *deferred = std::current_exception();
    return result::unparked;
  }
  result r = result::unparked;
  if (woken) {
    slicing = false;  // something other than a signal handler woke it: no longer everything is blocked
  } else if (leave(b, n)) {
    await_delivery(n);  // a waker picked it first: its wake is taken
  } else if (signalled) {
    r = result::signalled;
  } else if (!sliced) {
    r = result::timed_out;
    // A limit that had passed when the wait began ends it without going to
    // the hub. Natively the kernel preempts a thread that keeps waiting with
    // such limits (CPython's GIL waits in steps of its switch interval, 1 µs
    // in some tests); here the thread holding what it waits for may be ready
    // on this very hub, and would never run. So once the hub's slice is used
    // up, the waiter gives way, as a call that keeps finding data does.
    if (detail::slice_used_up(*n.hub)) {
      try {
        give_way();
      } catch (...) {
        if (deferred == nullptr) throw;
        if (!*deferred) *deferred = std::current_exception();
      }
    }
  }
  // Out of the queue now: the handlers of signals that came for this thread
  // meanwhile run here, on its stack, before the wait's caller goes on.
  signals::after_wait(signals::on_handler::resume);
  return r;
}

result park_native(bucket& b, node& n, bool (*validate)(void*), void* state, limit l) {
  if (!enqueue(b, n, validate, state)) return result::invalid;
  for (;;) {
    const std::uint32_t s = n.state.load(std::memory_order_acquire);
    if (s == delivered) return result::unparked;
    if (s == waiting && !l.forever) {
      const auto left = l.at - clock::now();
      if (left <= clock::duration::zero()) {
        if (!leave(b, n)) return result::timed_out;
        continue;  // dequeued by a waker: wait for its wake
      }
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
      const timespec rel{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
      futex_wait(n.state, s, &rel);
    } else {
      futex_wait(n.state, s, nullptr);
    }
  }
}

}  // namespace

result park_with(const void* addr, bool (*validate)(void*), void* state, limit l, std::exception_ptr* deferred,
                 bool os_thread) {
  bucket& b = bucket_of(addr);
  node n;
  n.addr = addr;
  if (!os_thread && cooperative()) return park_green(b, n, validate, state, l, deferred);
  return park_native(b, n, validate, state, l);
}

void rearm(std::exception_ptr& deferred) noexcept {
  if (!deferred || detail::tls_hub == nullptr) return;
  try {
    detail::interrupt(detail::tls_hub->ts->current, std::move(deferred));
  } catch (...) {
    // no memory to keep it: the interrupt is lost, the call's result is not
  }
}

std::size_t unpark(const void* addr, std::size_t most) {
  bucket& b = bucket_of(addr);
  node* first = nullptr;
  node** last = &first;
  std::size_t count = 0;
  b.lock();
  for (node* n = b.head; n != nullptr && count < most;) {
    node* next = n->next;
    if (n->addr == addr) {
      b.unlink(*n);
      uncount(*n);
      n->state.store(claimed, std::memory_order_relaxed);
      n->wake_next = nullptr;
      *last = n;
      last = &n->wake_next;
      ++count;
    }
    n = next;
  }
  b.unlock();
  // Deliver. A woken waiter may return (and its node vanish) as soon as its
  // state says delivered: read everything needed first.
  for (node* n = first; n != nullptr;) {
    node* next = n->wake_next;
    if (n->hub == nullptr) {
      n->state.store(delivered, std::memory_order_release);
      futex_wake(n->state);  // on an address that may be gone by now: at worst a spurious wake
    } else if (n->hub == detail::tls_hub) {
      n->state.store(delivered, std::memory_order_release);
      detail::wake(n->w);
    } else {
      n->delivery.owner = n;
      n->delivery.run = [](detail::remote_wake& r) {
        node* self = static_cast<node::delivery_item&>(r).owner;
        self->state.store(delivered, std::memory_order_release);
        detail::wake(self->w, false, /*after_poll=*/true);
      };
      detail::hand_over(*n->hub, n->delivery);
    }
    n = next;
  }
  return count;
}

void after_fork_in_child(bool keep_this_hub, long natives) noexcept {
  detail::hub_core* here = detail::tls_hub;
  for (bucket& b : buckets) {
    b.locked.store(false, std::memory_order_relaxed);
    for (node* n = b.head; n != nullptr;) {
      node* next = n->next;
      // The nodes are on the stacks of vanished threads and greenlets: they are
      // unlinked, never woken (their memory is still there, untouched otherwise).
      if (!keep_this_hub || n->hub == nullptr || n->hub != here) b.unlink(*n);
      n = next;
    }
  }
  native_running.store(natives, std::memory_order_relaxed);
  slicing = false;
  long counted = 0;
  for (bucket& b : buckets) {
    for (node* n = b.head; n != nullptr; n = n->next) counted += n->counted ? 1 : 0;
  }
  green_forever.store(counted, std::memory_order_relaxed);
}

void native_thread_started() noexcept { native_running.fetch_add(1, std::memory_order_relaxed); }
void native_thread_finished() noexcept { native_running.fetch_sub(1, std::memory_order_relaxed); }

}  // namespace grove::hooks::parking
