// task.cpp — the life of a task: launch, run, finish, join, kill, links.
//
// Ownership: a task's state is also its greenlet's run body. The state counts
// its handles plus one for the greenlet (dropped when the greenlet is done with
// its body). The greenlet's own reference belongs to the hub, which drops it
// when it sees the task's greenlet dead (or to whoever discards it unstarted).
#include <cstdio>
#include <ostream>
#include <string>

#include <grove/sleep.hpp>
#include <grove/task.hpp>

#include "backtrace.hpp"
#include "greenlet_impl.hpp"
#include "hub_state.hpp"
#include "report.hpp"

namespace grove::detail {
namespace {

void start_now(timer& t) {
  auto* task = static_cast<task_base*>(t.arg);
  task->hub->woken.push(task->g);
}

void run_links(std::vector<std::function<void()>>& links) {
  for (auto& link : links) {
    try {
      link();
    } catch (const greenlet_exit&) {
      throw;
    } catch (...) {
      report("a task's link callback threw: " + describe_exception(std::current_exception()));
    }
  }
}

}  // namespace

greenlet_core* make_task_greenlet(task_base* t, std::size_t stack_bytes) {
  hub_core& h = current_hub();
  greenlet_core* g = make_greenlet(body_ptr(t), h.greenlet, stack_bytes);
  g->task = t;
  return g;
}

task_base::~task_base() = default;

void task_base::dispose() noexcept { release(); }

void task_base::release() noexcept {
  if (refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  if (error && !observed) report_unobserved();
  delete this;
}

void task_base::report_unobserved() noexcept {
  report("task \"" + label() + "\" died of an exception nobody waited for: " + describe_exception(error));
}

void task_base::launch(greenlet_core* greenlet, std::optional<deadline> at) {
  g = greenlet;
  hub_state& h = state_of(current_hub());
  hub = &h;
  id = h.next_task_id++;
  h.register_task(this);
  if (at) {
    more().start_later.start(*at, start_now, this);
  } else {
    schedule(h, g);
  }
}

void task_base::run_guarded(void (*body)(task_base&)) {
  started = true;
  try {
    body(*this);
  } catch (const greenlet_exit&) {
    killed = true;
  } catch (...) {
    error = std::current_exception();
  }
  finish();
}

void task_base::finish() noexcept {
  finished = true;
  state_of(*hub).unregister_task(this);
  const bool linked = extras && !extras->links.empty();
  if (linked) observed = true;
  while (waiter* w = joiners.pop_front()) {
    // A task blocked in join/get will look at the outcome; a callback waiter
    // (wait_any's proxies, a group's membership) does not by itself.
    if (w->notify == nullptr && w->state == waiter::status::waiting) observed = true;
    wake(*w);
  }
  if (linked) {
    try {
      spawn([links = std::move(extras->links)]() mutable { run_links(links); });
    } catch (...) {
      report("cannot start the link callbacks of task \"" + label() +
             "\": " + describe_exception(std::current_exception()));
    }
  }
}

bool task_base::join_until(deadline d) {
  if (finished) {
    observed = true;
    return true;
  }
  if (current_greenlet() == g) throw grove::error("grove::task: a task cannot wait for itself to finish");
  observed = true;
  listed_waiter w(joiners, "join", this);
  park(w, d);
  return finished;
}

bool task_base::kill_until(std::exception_ptr e, deadline d) {
  if (finished) return true;
  if (!started) {
    // Never ran, never will.
    if (waits_to_start()) {
      extras->start_later.stop();
    } else {
      hub->ready.remove(g);
      hub->woken.remove(g);
    }
    if (is_greenlet_exit(e)) {
      killed = true;
    } else {
      error = std::move(e);
    }
    greenlet_core* mine = g;
    discard_unstarted(mine);  // drops the greenlet's hold on us; a handle still holds us
    finish();
    mine->task = nullptr;
    grove::detail::release(mine);
    return true;
  }
  if (current_greenlet() == g) std::rethrow_exception(e);
  interrupt(g, std::move(e));
  return join_until(d);
}

void task_base::add_link(std::function<void()> fn) {
  if (!finished) {
    more().links.push_back(std::move(fn));
    return;
  }
  observed = true;
  spawn([fn = std::move(fn)]() mutable {
    std::vector<std::function<void()>> one;
    one.push_back(std::move(fn));
    run_links(one);
  });
}

std::optional<std::size_t> wait_any_of(const std::vector<task_base*>& tasks, deadline d) {
  auto first_done = [&]() -> std::optional<std::size_t> {
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      if (tasks[i]->finished) {
        tasks[i]->observed = true;
        return i;
      }
    }
    return std::nullopt;
  };
  if (auto i = first_done()) return i;
  waiter any;
  any.what = "wait_any";
  std::vector<std::unique_ptr<listed_waiter>> proxies;
  proxies.reserve(tasks.size());
  for (task_base* t : tasks) {
    auto p = std::make_unique<listed_waiter>(t->joiners, "wait_any", t);
    p->slot = &any;
    p->notify = [](waiter& w) { wake(*static_cast<waiter*>(w.slot)); };
    proxies.push_back(std::move(p));
  }
  park(any, d);
  return first_done();
}

void hub_state::register_task(task_base* t) noexcept {
  t->reg_prev = nullptr;
  t->reg_next = tasks;
  if (tasks != nullptr) tasks->reg_prev = t;
  tasks = t;
  ++task_count;
}

void hub_state::unregister_task(task_base* t) noexcept {
  if (t->reg_prev != nullptr) {
    t->reg_prev->reg_next = t->reg_next;
  } else if (tasks == t) {
    tasks = t->reg_next;
  }
  if (t->reg_next != nullptr) t->reg_next->reg_prev = t->reg_prev;
  t->reg_prev = t->reg_next = nullptr;
  --task_count;
}

}  // namespace grove::detail

namespace grove {

void dump_tasks(std::ostream& out) { dump_tasks(out, detail::backtraces_by_default()); }

void dump_tasks(std::ostream& out, bool backtraces) {
  detail::hub_state& h = detail::state_of(detail::current_hub());
  std::size_t n = 0;
  for (detail::task_base* t = h.tasks; t != nullptr; t = t->reg_next) ++n;
  out << "grove: " << n << " unfinished task(s) on this thread's hub\n";
  // Oldest first reads best.
  std::vector<detail::task_base*> all;
  for (detail::task_base* t = h.tasks; t != nullptr; t = t->reg_next) all.push_back(t);
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    detail::task_base* t = *it;
    out << "  task \"" << t->label() << "\": ";
    if (!t->started) {
      out << (t->waits_to_start() ? "not started (spawn_later)" : "not started");
    } else if (t->g == h.ts->current) {
      out << "running";
    } else if (detail::waiter* w = t->g->parked; w != nullptr) {
      out << "blocked on " << (w->what[0] != '\0' ? w->what : "a wait");
      if (w->on != nullptr) out << " (" << w->on << ")";
    } else {
      out << "ready";
    }
    out << '\n';
    detail::saved_registers regs;
    if (backtraces && t->started && t->g != h.ts->current && detail::suspended_registers(t->g, regs)) {
      detail::write_backtrace(out, regs, "      ");
    }
  }
}

}  // namespace grove
