// hub_group.cpp — hubs on threads of their own, and results across hubs (see
// grove/hub_group.hpp).
#include <grove/hub_group.hpp>

#include <sched.h>

#include <algorithm>
#include <string>

#include <grove/detail/os_threads.hpp>
#include <grove/error.hpp>

#include "hub_state.hpp"

namespace grove {
namespace detail {

void throw_set_twice() { throw error("grove::remote_result: set or set_exception called a second time"); }

void cross_state::finish(std::exception_ptr e) {
  std::vector<std::pair<hub*, std::shared_ptr<event>>> waking;
  {
    const std::lock_guard<std::mutex> hold(lock);
    error = std::move(e);
    done = true;
    waking.swap(tasks);
  }
  settled.notify_all();
  // Each waiting task's event is set on its own hub.
  for (auto& [h, ev] : waking) h->post([ev = std::move(ev)] { ev->set(); });
}

bool cross_state::wait(std::optional<std::chrono::nanoseconds> limit) {
  std::unique_lock<std::mutex> hold(lock);
  if (done) return true;
  hub_core* h = tls_hub;
  if (h != nullptr && h->ts->current == h->greenlet) {
    throw grove::error("grove::remote_result::get called in a hub's own greenlet (a posted callback): it cannot wait there");
  }
  if (h == nullptr) {
    // A thread with no hub blocks, as a thread does.
    if (!limit) {
      settled.wait(hold, [&] { return done; });
      return true;
    }
    return settled.wait_for(hold, *limit, [&] { return done; });
  }
  hub& mine = hub::current();
  auto ev = std::make_shared<event>();
  tasks.emplace_back(&mine, ev);
  hold.unlock();
  const hub::keepalive alive(mine);  // the setter is another thread: no loop_exit meanwhile
  const auto leave = [&] {
    const std::lock_guard<std::mutex> again(lock);
    tasks.erase(std::remove_if(tasks.begin(), tasks.end(), [&](const auto& t) { return t.second == ev; }),
                tasks.end());
    return done;
  };
  bool set = false;
  try {
    if (limit) {
      set = ev->wait(*limit);
    } else {
      ev->wait();
      set = true;
    }
  } catch (...) {
    leave();
    throw;
  }
  return set || leave();
}

}  // namespace detail

// member is one hub of the group: its thread, and what stops it.
struct hub_group::member {
  std::thread thread;
  hub* h = nullptr;
  std::shared_ptr<event> stop;
  std::mutex m;
  std::condition_variable ready;
};

namespace {
std::size_t cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  return static_cast<std::size_t>(std::max(1, CPU_COUNT(&set)));
}
}  // namespace

hub_group::hub_group(std::size_t n) {
  if (n == 0) n = cpus();
  if (n > 1024) throw error("grove::hub_group: " + std::to_string(n) + " hubs asked for; at most 1024");
  hubs_.reserve(n);
  try {
    for (std::size_t i = 0; i < n; ++i) {
      auto m = std::make_unique<member>();
      member* self = m.get();
      {
        // grove's own thread: a real OS thread (whatever the hooks make of
        // pthread_create), started with the asynchronous signals blocked.
        const detail::helper_thread_scope own;
        m->thread = std::thread([self] {
          hub& h = hub::current();
          auto stop = std::make_shared<event>();
          {
            const std::lock_guard<std::mutex> hold(self->m);
            self->stop = stop;
            self->h = &h;
          }
          self->ready.notify_all();
          const hub::keepalive alive(h);  // work comes by post
          stop->wait();
          // Leaving the thread ends its hub, killing what is still there.
        });
      }
      std::unique_lock<std::mutex> hold(m->m);
      m->ready.wait(hold, [&] { return m->h != nullptr; });
      hold.unlock();
      hubs_.push_back(std::move(m));
    }
  } catch (...) {
    stop_all();
    throw;
  }
}

hub_group::~hub_group() { stop_all(); }

void hub_group::stop_all() noexcept {
  for (auto& m : hubs_) {
    if (m->h != nullptr && m->thread.joinable()) m->h->post([stop = m->stop] { stop->set(); });
  }
  for (auto& m : hubs_) {
    if (m->thread.joinable()) m->thread.join();
  }
  hubs_.clear();
}

hub& hub_group::operator[](std::size_t i) const {
  if (i >= hubs_.size()) {
    throw error("grove::hub_group: hub " + std::to_string(i) + " asked for; the group has " +
                std::to_string(hubs_.size()));
  }
  return *hubs_[i]->h;
}

}  // namespace grove
