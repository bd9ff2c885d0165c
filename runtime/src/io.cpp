// io.cpp — fd readiness on the hub: one level-triggered ev_io per fd and
// direction, active only while tasks wait on it; each readiness wakes the
// longest waiter (the next poll wakes the next one if the fd stays ready).
#include <grove/io.hpp>

#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "hub_state.hpp"

namespace grove::detail {

namespace {

constexpr int closed_while_waiting = EBADF;

void on_ready(struct ev_loop* loop, ev_io* w, int) {
  auto* watch = static_cast<fd_watch*>(w->data);
  if (waiter* first = watch->waiters.pop_waiting()) {
    first->state = waiter::status::woken;
    watch->hub->woken.push(first->g);
  }
  if (!watch->waiters.has_waiting()) ev_io_stop(loop, w);
}

fd_entry& entry_for(hub_state& h, int fd) {
  if (static_cast<std::size_t>(fd) >= h.fds.size()) h.fds.resize(static_cast<std::size_t>(fd) + 1);
  auto& slot = h.fds[static_cast<std::size_t>(fd)];
  if (!slot) {
    slot = std::make_unique<fd_entry>();
    ev_io_init(&slot->read.io, on_ready, fd, EV_READ);
    ev_io_init(&slot->write.io, on_ready, fd, EV_WRITE);
    slot->read.io.data = &slot->read;
    slot->write.io.data = &slot->write;
    slot->read.hub = slot->write.hub = &h;
  }
  return *slot;
}

bool wait_fd(int fd, bool readable, deadline d) {
  if (fd < 0) throw std::system_error(EBADF, std::generic_category(), "grove: waiting on a negative descriptor");
  hub_state& h = state_of(current_hub());
  fd_entry& e = entry_for(h, fd);
  if (e.closed) {
    ev_io_set(&e.read.io, fd, EV_READ);
    ev_io_set(&e.write.io, fd, EV_WRITE);
    e.closed = false;
  }
  fd_watch& watch = readable ? e.read : e.write;
  int outcome = 0;
  listed_waiter w(watch.waiters, readable ? "readable fd" : "writable fd", nullptr);
  w.slot = &outcome;
  if (!ev_is_active(&watch.io)) ev_io_start(h.loop, &watch.io);
  struct stop_when_unwatched {
    hub_state& h;
    fd_watch& watch;
    listed_waiter& w;
    ~stop_when_unwatched() {
      watch.waiters.remove(w);
      if (!watch.waiters.has_waiting() && ev_is_active(&watch.io)) ev_io_stop(h.loop, &watch.io);
    }
  } tidy{h, watch, w};
  const bool ready = park(w, d);
  if (outcome == closed_while_waiting) {
    throw std::system_error(EBADF, std::generic_category(),
                            "grove: the descriptor was closed while a task waited on it");
  }
  return ready;
}

void wake_closed(fd_watch& watch) {
  while (waiter* w = watch.waiters.pop_waiting()) {
    *static_cast<int*>(w->slot) = closed_while_waiting;
    wake(*w);
  }
}

}  // namespace

void forget_fd(hub_state& h, int fd) noexcept {
  if (fd < 0 || static_cast<std::size_t>(fd) >= h.fds.size() || !h.fds[static_cast<std::size_t>(fd)]) return;
  fd_entry& e = *h.fds[static_cast<std::size_t>(fd)];
  wake_closed(e.read);
  wake_closed(e.write);
  ev_io_stop(h.loop, &e.read.io);
  ev_io_stop(h.loop, &e.write.io);
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
}

int close(int fd) {
  notify_close(fd);
  return ::close(fd);
}

}  // namespace grove
