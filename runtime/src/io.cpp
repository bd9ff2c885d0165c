// io.cpp — fd readiness on the hub: one level-triggered ev_io per fd and
// direction, active while tasks wait on it; each readiness wakes the longest
// waiter (the next poll wakes the next one if the fd stays ready).
//
// A watcher whose last waiter leaves is not stopped at once: it is queued, and
// the hub stops what is still unwatched just before it next polls
// (stop_unwatched). A task that handles what woke it and waits on the same fd
// again before that poll (a server's recv loop) so finds its watcher still
// armed, and costs libev nothing: no ev_io_stop/ev_io_start, no fd change to
// reify. Between two polls libev never looks at watchers, so as far as the
// kernel and libev can tell this is the same as stopping at once.
#include <grove/io.hpp>

#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "hub_state.hpp"
#include "hubs.hpp"

namespace grove::detail {

namespace {

constexpr int closed_while_waiting = EBADF;

// unwatch queues watch for stop_unwatched once no waiter is left on it.
[[gnu::always_inline]] inline void unwatch(fd_watch& watch) noexcept {
  if (watch.stop_queued || !ev_is_active(&watch.io) || watch.waiters.has_waiting()) return;
  watch.stop_queued = true;
  auto& queue = watch.hub->unwatched;
  // Room for every watch was reserved as it was made (new_entry): never reallocates.
  queue.push_back(&watch);
}

void on_ready(struct ev_loop*, ev_io* w, int) {
  auto* watch = static_cast<fd_watch*>(w->data);
  if (waiter* first = watch->waiters.pop_waiting()) {
    first->state = waiter::status::woken;
    watch->hub->woken.push(first->g);
  }
  unwatch(*watch);
}

[[gnu::noinline]] fd_entry& new_entry(hub_state& h, int fd) {
  if (static_cast<std::size_t>(fd) >= h.fds.size()) h.fds.resize(static_cast<std::size_t>(fd) + 1);
  auto& slot = h.fds[static_cast<std::size_t>(fd)];
  slot = std::make_unique<fd_entry>();
  ev_io_init(&slot->read.io, on_ready, fd, EV_READ);
  slot->read.io.data = &slot->read;
  slot->read.hub = &h;
  note_fd_watched(h, fd);
  // Two queued stops per descriptor at most: room for them now, so that
  // unwatch (in a libev callback or a destructor) never allocates.
  if (h.unwatched.capacity() < 2 * h.fds.size()) h.unwatched.reserve(4 * h.fds.size());
  return *slot;
}

[[gnu::noinline]] void new_write_watch(hub_state& h, fd_entry& e, int fd) {
  e.write = std::make_unique<fd_watch>();
  ev_io_init(&e.write->io, on_ready, fd, EV_WRITE);
  e.write->io.data = e.write.get();
  e.write->hub = &h;
}

inline fd_entry& entry_for(hub_state& h, int fd) {
  if (static_cast<std::size_t>(fd) < h.fds.size()) [[likely]] {
    if (fd_entry* e = h.fds[static_cast<std::size_t>(fd)].get()) [[likely]]
      return *e;
  }
  return new_entry(h, fd);
}

[[noreturn, gnu::cold, gnu::noinline]] void throw_ebadf(const char* what) {
  throw std::system_error(EBADF, std::generic_category(), what);
}

bool wait_fd(int fd, bool readable, deadline d) {
  if (fd < 0) [[unlikely]]
    throw_ebadf("grove: waiting on a negative descriptor");
  hub_state& h = state_of(current_hub());
  fd_entry& e = entry_for(h, fd);
  if (e.closed) [[unlikely]] {
    ev_io_set(&e.read.io, fd, EV_READ);
    if (e.write) ev_io_set(&e.write->io, fd, EV_WRITE);
    e.closed = false;
    note_fd_watched(h, fd);
  }
  if (!readable && !e.write) [[unlikely]]
    new_write_watch(h, e, fd);
  fd_watch& watch = readable ? e.read : *e.write;
  int outcome = 0;
  struct fd_waiter : listed_waiter {
    fd_waiter(fd_watch& w_, const char* what_) : listed_waiter(w_.waiters, what_, nullptr), watch(w_) {}
    fd_waiter(const fd_waiter&) = delete;
    fd_waiter& operator=(const fd_waiter&) = delete;
    // Every way out of the wait (woken, timed out, interrupted, or refused
    // before parking) leaves the list, then lets the watcher go if it was the last.
    ~fd_waiter() {
      list.remove(*this);
      unwatch(watch);
    }
    fd_watch& watch;
  } w(watch, readable ? "readable fd" : "writable fd");
  w.slot = &outcome;
  if (!ev_is_active(&watch.io)) ev_io_start(h.loop, &watch.io);
  const bool ready = park(w, d);
  if (outcome == closed_while_waiting) [[unlikely]]
    throw_ebadf("grove: the descriptor was closed while a task waited on it");
  return ready;
}

void wake_closed(fd_watch& watch) {
  while (waiter* w = watch.waiters.pop_waiting()) {
    *static_cast<int*>(w->slot) = closed_while_waiting;
    wake(*w);
  }
}

}  // namespace

void stop_unwatched(hub_state& h) noexcept {
  for (fd_watch* watch : h.unwatched) {
    watch->stop_queued = false;
    if (!watch->waiters.has_waiting() && ev_is_active(&watch->io)) ev_io_stop(h.loop, &watch->io);
  }
  h.unwatched.clear();
}

void forget_fd(hub_state& h, int fd) noexcept {
  if (fd < 0 || static_cast<std::size_t>(fd) >= h.fds.size() || !h.fds[static_cast<std::size_t>(fd)]) return;
  fd_entry& e = *h.fds[static_cast<std::size_t>(fd)];
  // A child of vfork shares the parent's memory, this hub included, until it
  // calls exec: a descriptor it closes (or dup2s onto) is its own copy, and the
  // waiters here are the parent's, on a descriptor still open there. Only a close
  // with waiters pays for the check.
  if ((e.read.waiters.has_waiting() || (e.write && e.write->waiters.has_waiting())) && ::getpid() != h.pid)
      [[unlikely]]
    return;
  wake_closed(e.read);
  ev_io_stop(h.loop, &e.read.io);
  if (e.write) {
    wake_closed(*e.write);
    ev_io_stop(h.loop, &e.write->io);
  }
  if (!e.closed) note_fd_forgotten(h, fd);
  e.closed = true;
}

}  // namespace grove::detail

namespace grove {

void wait_readable(int fd) { detail::wait_fd(fd, true, detail::forever); }

bool wait_readable(int fd, std::chrono::nanoseconds limit) {
  return detail::wait_fd(fd, true, detail::deadline_after(limit));
}

void wait_writable(int fd) { detail::wait_fd(fd, false, detail::forever); }

bool wait_writable(int fd, std::chrono::nanoseconds limit) {
  return detail::wait_fd(fd, false, detail::deadline_after(limit));
}

void notify_close(int fd) noexcept {
  if (detail::tls_hub != nullptr) detail::forget_fd(detail::state_of(*detail::tls_hub), fd);
  detail::forget_fd_on_other_hubs(fd);
}

int close(int fd) {
  notify_close(fd);
  return ::close(fd);
}

}  // namespace grove
