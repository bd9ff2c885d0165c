// hubs.cpp — what the hubs of one process know of each other: the registry of
// live hubs, and which hubs watch each descriptor, so that closing it wakes its
// waiters on every hub (see hubs.hpp).
#include "hubs.hpp"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <iostream>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <sstream>

#include <grove/detail/os_threads.hpp>
#include <grove/task.hpp>

#include "hub_state.hpp"

namespace grove::detail {
namespace {

// The registry is never destroyed: hubs of other threads may still run while
// the process exits, and their threads' exits unregister them.
struct registry {
  std::mutex lock;
  std::vector<hub_state*> hubs;  // guarded by lock
  std::uint64_t used_slots = 0;  // guarded by lock: slots 0..overflow_slot-1
};
registry& the_registry() {
  static registry* const r = new registry;
  return *r;
}

// Which hubs have watched each descriptor: one bit per hub slot, the last bit
// for every hub with no slot of its own. A fixed two-level table of atomics.
constexpr std::size_t chunk_fds = 4096;
constexpr std::size_t chunks = 256;  // 1,048,576 descriptors; beyond, every hub is asked
std::atomic<std::atomic<std::uint64_t>*> fd_chunks[chunks];

std::atomic<std::uint64_t>* bits_of(int fd, bool make) noexcept {
  const auto n = static_cast<std::size_t>(fd);
  if (fd < 0 || n >= chunk_fds * chunks) return nullptr;
  auto& slot = fd_chunks[n / chunk_fds];
  std::atomic<std::uint64_t>* c = slot.load(std::memory_order_acquire);
  if (c == nullptr) {
    if (!make) return nullptr;
    auto* fresh = new (std::nothrow) std::atomic<std::uint64_t>[chunk_fds]();
    if (fresh == nullptr) return nullptr;
    if (slot.compare_exchange_strong(c, fresh, std::memory_order_acq_rel)) {
      c = fresh;
    } else {
      delete[] fresh;
    }
  }
  return &c[n % chunk_fds];
}

std::uint64_t bit_of(const hub_state& h) noexcept { return std::uint64_t{1} << (h.slot < 0 ? overflow_slot : h.slot); }

}  // namespace

void register_hub(hub_state& h) {
  registry& r = the_registry();
  const std::lock_guard<std::mutex> hold(r.lock);
  r.hubs.push_back(&h);
  const std::uint64_t free = ~r.used_slots & ((std::uint64_t{1} << overflow_slot) - 1);
  if (free != 0) {
    h.slot = __builtin_ctzll(free);
    r.used_slots |= std::uint64_t{1} << h.slot;
  }
}

void unregister_hub(hub_state& h) noexcept {
  registry& r = the_registry();
  const std::lock_guard<std::mutex> hold(r.lock);
  r.hubs.erase(std::remove(r.hubs.begin(), r.hubs.end(), &h), r.hubs.end());
  if (h.slot >= 0) r.used_slots &= ~(std::uint64_t{1} << h.slot);
  h.slot = -1;
}

namespace {
// In the child of a fork only the forking thread exists, and with it its hub,
// if it has one. Other hubs' bits name hubs that do not exist here: a close
// skips them (it asks only registered hubs).
void after_fork_in_child() noexcept {
  registry& r = the_registry();
  new (&r.lock) std::mutex;                     // a vanished thread may have held it
  new (&r.hubs) std::vector<hub_state*>;        // and may have been changing it: left, not destroyed
  r.used_slots = 0;
  if (tls_hub != nullptr) {
    hub_state& h = state_of(*tls_hub);
    try {
      r.hubs.push_back(&h);
    } catch (...) {
      return;  // no memory: the hub is not listed (it never waits for itself anyway)
    }
    if (h.slot >= 0) r.used_slots = std::uint64_t{1} << h.slot;
  }
}
[[gnu::constructor]] void register_fork_handler() { ::pthread_atfork(nullptr, nullptr, after_fork_in_child); }
}  // namespace

void note_fd_watched(hub_state& h, int fd) noexcept {
  std::atomic<std::uint64_t>* b = bits_of(fd, true);
  if (b == nullptr) return;
  const std::uint64_t mine = bit_of(h);
  if ((b->load(std::memory_order_relaxed) & mine) == 0) b->fetch_or(mine, std::memory_order_acq_rel);
}

void note_fd_forgotten(hub_state& h, int fd) noexcept {
  if (h.slot < 0) return;  // the overflow bit is shared: it stays
  if (std::atomic<std::uint64_t>* b = bits_of(fd, false); b != nullptr) {
    b->fetch_and(~bit_of(h), std::memory_order_acq_rel);
  }
}

void dump_other_hubs() noexcept {
  hub_state* self = tls_hub != nullptr ? &state_of(*tls_hub) : nullptr;
  try {
    registry& r = the_registry();
    const std::lock_guard<std::mutex> listed(r.lock);  // no hub ends while it is posted to
    for (hub_state* h : r.hubs) {
      if (h == self) continue;
      h->post([] {
        std::ostringstream out;
        out << "grove: the hub of OS thread " << ::gettid() << ":\n";
        grove::dump_tasks(out);
        std::cerr << out.str() << std::flush;
      });
    }
  } catch (...) {
    // no memory: the other hubs' tasks are not listed
  }
}

namespace {

// The acknowledgements a closer waits for: one per other hub that forgot fd.
struct close_acks {
  std::atomic<int> left{0};
  // A closer in a task: the last acknowledgement schedules it on its hub.
  hub_state* home = nullptr;
  greenlet_core* g = nullptr;
  // A closer on a thread with no hub (or with the task's hub gone) blocks here.
  std::mutex m;
  std::condition_variable cv;
};

}  // namespace

void forget_fd_on_other_hubs(int fd) noexcept {
  hub_state* self = tls_hub != nullptr ? &state_of(*tls_hub) : nullptr;
  std::atomic<std::uint64_t>* b = bits_of(fd, false);
  const bool beyond = fd >= 0 && static_cast<std::size_t>(fd) >= chunk_fds * chunks;
  std::uint64_t bits = b != nullptr ? b->load(std::memory_order_acquire) : 0;
  if (beyond) bits = ~std::uint64_t{0};
  if (self != nullptr && self->slot >= 0) bits &= ~bit_of(*self);
  if (bits == 0) return;

  // The hubs are told under the registry's lock, so that none of them ends
  // between being picked and being posted to.
  registry& r = the_registry();
  std::unique_lock<std::mutex> listed(r.lock);
  std::vector<hub_state*> targets;
  try {
    for (hub_state* h : r.hubs) {
      if (h != self && (bits & bit_of(*h)) != 0) targets.push_back(h);
    }
  } catch (...) {
    return;  // no memory: the other hubs' waiters stay (at worst they wait on until woken otherwise)
  }
  if (targets.empty()) return;

  std::shared_ptr<close_acks> acks;
  try {
    acks = std::make_shared<close_acks>();
  } catch (...) {
    return;
  }
  acks->left.store(static_cast<int>(targets.size()), std::memory_order_relaxed);
  // A task waits in its hub (which goes on running the others); the hub's own
  // greenlet (a callback) cannot wait, and does not: fd reuse before the other
  // hubs have forgotten is then the caller's risk, as with a close in a signal handler.
  const bool in_task = self != nullptr && self->ts->current != self->greenlet && !self->closing;
  const bool on_plain_thread = self == nullptr;
  if (in_task) {
    acks->home = self;
    acks->g = self->ts->current;
  }
  std::optional<hub::keepalive> alive;
  if (in_task) alive.emplace(self->public_hub);
  int failed = 0;
  for (hub_state* h : targets) {
    try {
      h->post([h, fd, acks] {
        forget_fd(*h, fd);
        if (acks->left.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
        if (acks->home != nullptr) {
          hub_state* home = acks->home;
          greenlet_core* g = acks->g;
          home->post([home, g] { schedule(*home, g); });
        } else {
          const std::lock_guard<std::mutex> hold(acks->m);
          acks->cv.notify_all();
        }
      });
    } catch (...) {
      ++failed;  // no memory for the post: that hub is not told (nor waited for)
    }
  }
  listed.unlock();
  // The hubs not told count as done, all at once: if that makes the last one,
  // the others have all answered, and nobody schedules the closer.
  if (failed > 0 && acks->left.fetch_sub(failed, std::memory_order_acq_rel) == failed) return;
  if (in_task) {
    // Exactly one schedule comes, from the last acknowledgement; nothing else
    // resumes a greenlet that is neither parked nor ready.
    to_hub(*self);
  } else if (on_plain_thread) {
    std::unique_lock<std::mutex> hold(acks->m);
    acks->cv.wait(hold, [&] { return acks->left.load(std::memory_order_acquire) == 0; });
  }
}

}  // namespace grove::detail
