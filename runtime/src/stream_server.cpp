// stream_server.cpp — accept loop, per-connection tasks, graceful stop.
#include <grove/stream_server.hpp>

#include <netinet/tcp.h>

#include <cerrno>
#include <cstdio>
#include <system_error>

#include <grove/sleep.hpp>

#include "report.hpp"

namespace grove {

// part is one hub's share of a server on a hub_group. Its group, acceptor and
// listener are made, used and destroyed by tasks of its hub (grove's sync
// objects belong to one hub); other threads read only `running`.
struct stream_server::part {
  hub* home = nullptr;
  std::unique_ptr<group> handlers;
  socket listener;                     // reuseport: this hub's own; acceptor: the first hub's only
  std::optional<task<void>> acceptor;  // accepts on listener
  std::atomic<std::size_t> running{0};  // handlers on this hub, started or handed over
  event room;  // acceptor mode, the first hub: a hub's handler ended while every hub was full
};

namespace {
// backing_off runs one step of an accept loop (accept, then start a handler).
// Out of descriptors, buffers or memory, it says so once, backs off for 50 ms
// and returns: connections wait in the backlog, and the server keeps serving.
template <class F>
void backing_off(const address& where, bool& warned, F step) {
  try {
    step();
  } catch (const std::system_error& e) {
    const int err = e.code().value();
    if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) throw;
    if (!warned) {
      detail::report("stream_server " + where.to_string() + ": " + e.what() + "; backing off");
      warned = true;
    }
    sleep(std::chrono::milliseconds(50));
  }
}

// counted keeps a part's handler count while a handler runs, and tells the
// spreading acceptor when a full hub gets room.
struct counted {
  std::atomic<std::size_t>& running;
  std::size_t full;   // the per-hub limit; 0: none
  hub* acceptor_hub;  // to wake when leaving a full hub (acceptor mode), or nullptr
  event* room;
  ~counted() {
    if (running.fetch_sub(1, std::memory_order_acq_rel) == full && acceptor_hub != nullptr) {
      acceptor_hub->post([r = room] { r->set(); });
    }
  }
};
}  // namespace

stream_server::stream_server(std::string_view listen_on, handler h, std::size_t max_connections)
    : stream_server(listen_on, std::move(h), options{.max_connections = max_connections}) {}

stream_server::stream_server(std::string_view listen_on, handler h, options o)
    : where_(grove::address::parse(listen_on)), handler_(std::move(h)), options_(o) {
  if (o.hubs == nullptr) {
    handlers_ = o.max_connections == 0 ? std::make_unique<group>() : std::make_unique<pool>(o.max_connections);
    return;
  }
  if (o.hubs->size() == 0) throw error("grove::stream_server: the hub_group given as options.hubs has no hubs");
  // A unix socket cannot share its address: one acceptor spreads.
  if (where_.family() == AF_UNIX) options_.by = spread::acceptor;
  for (std::size_t i = 0; i < o.hubs->size(); ++i) {
    parts_.push_back(std::make_unique<part>());
    parts_.back()->home = &(*o.hubs)[i];
  }
}

std::size_t stream_server::connections() const noexcept {
  if (parts_.empty()) return handlers_->size();
  std::size_t n = 0;
  for (const auto& p : parts_) n += p->running.load(std::memory_order_relaxed);
  return n;
}

stream_server::~stream_server() {
  try {
    stop();
    // A stop in progress elsewhere (a handler's) must be over before the
    // server's memory goes.
    if (stopping_) {
      if (hubs_stopped_) {
        hubs_stopped_->get();
      } else {
        while (!stopped_.is_set()) stopped_.wait();
      }
    }
  } catch (...) {
    detail::report("stopping a stream_server in its destructor failed: " +
                   detail::describe_exception(std::current_exception()));
  }
}

void stream_server::start() {
  if (started_) return;
  if (!parts_.empty()) {
    start_on_hubs();
    return;
  }
  socket s(where_.family(), SOCK_STREAM);
  s.bind(where_);
  s.listen();
  where_ = s.local_address();
  listener_ = std::move(s);
  started_ = true;
  acceptor_ = spawn([this] { accept_loop(); });
  acceptor_->set_name("stream_server " + where_.to_string() + " acceptor");
}

void stream_server::accept_loop() {
  bool warned = false;
  for (;;) {
    backing_off(where_, warned, [this] {
      auto [conn, peer] = listener_.accept();
      if (where_.family() != AF_UNIX) conn.set_option(IPPROTO_TCP, TCP_NODELAY, 1);
      // The wrapper takes the socket and the address by reference: the task
      // keeps them, and copies here would sit on a parked handler's stack.
      handlers_->spawn(  // a pool waits here while full
          [this](socket&& c, grove::address&& p) {
            *serving_ = this;
            handler_(std::move(c), std::move(p));
          },
          std::move(conn), peer);
    });
  }
}

void stream_server::serve_forever() {
  start();
  if (hubs_stopped_) {
    hubs_stopped_->get();
  } else {
    stopped_.wait();
  }
}

void stream_server::stop(std::chrono::nanoseconds grace) {
  if (!started_) return;
  if (stopping_.exchange(true)) {
    // Another stop is under way; the destructor waits for it (see there).
    return;
  }
  const bool from_handler = *serving_ == this;
  if (!parts_.empty()) {
    if (from_handler) {
      // A handler cannot wait for the handlers (itself among them) to finish:
      // a task of its hub stops the server. Its result is hubs_stopped_.
      spawn([this, grace] { stop_on_hubs(grace); });
    } else {
      stop_on_hubs(grace);
    }
    return;
  }
  if (from_handler) {
    // A handler cannot wait for the handlers (itself among them) to finish.
    stopper_ = spawn([this, grace] { finish_stop(grace); });
    return;
  }
  finish_stop(grace);
}

void stream_server::finish_stop(std::chrono::nanoseconds grace) {
  // Whatever interrupts the grace period (a timeout scope, a kill), the
  // handlers are killed and the server marked stopped before it propagates.
  struct finish {
    stream_server& s;
    ~finish() {
      try {
        s.handlers_->kill();
      } catch (...) {
        detail::report("stream_server: killing handlers failed: " +
                       detail::describe_exception(std::current_exception()));
      }
      s.stopped_.set();
    }
  } always{*this};
  if (acceptor_) acceptor_->kill();
  listener_.close();
  handlers_->join(grace);
}


// --- a server on a hub_group ---------------------------------------------------

void stream_server::start_on_hubs() {
  // Every listening socket is bound and listening before start returns, so
  // connections made after it wait in a backlog.
  const bool reuseport = options_.by == spread::reuseport;
  const auto listening = [&](const grove::address& at) {
    socket s(at.family(), SOCK_STREAM);
    if (reuseport) s.set_option(SOL_SOCKET, SO_REUSEPORT, 1);
    s.bind(at);
    s.listen();
    return s;
  };
  parts_[0]->listener = listening(where_);
  where_ = parts_[0]->listener.local_address();  // port 0 picked a port: the others share it
  if (reuseport) {
    for (std::size_t i = 1; i < parts_.size(); ++i) parts_[i]->listener = listening(where_);
  }
  hubs_stopped_.emplace();
  started_ = true;

  std::vector<remote_result<void>> ready;
  for (std::size_t i = 0; i < parts_.size(); ++i) {
    part* p = parts_[i].get();
    ready.push_back(spawn_on(*p->home, [this, p, reuseport, first = i == 0] {
      const std::size_t limit = options_.max_connections;
      // acceptor mode: the acceptor counts and limits, so a hub's group never blocks
      p->handlers = limit == 0 || !reuseport ? std::make_unique<group>() : std::make_unique<pool>(limit);
      if (!reuseport && !first) return;
      p->acceptor = spawn([this, p, reuseport] { reuseport ? accept_on_own_socket(*p) : accept_and_spread(*p); });
      p->acceptor->set_name("stream_server " + where_.to_string() + " acceptor");
    }));
  }
  for (auto& r : ready) r.get();
}

// accept_on_own_socket is a hub's acceptor in reuseport mode: its own socket,
// its own handlers.
void stream_server::accept_on_own_socket(part& home) {
  bool warned = false;
  for (;;) {
    backing_off(where_, warned, [this, &home] {
      auto [conn, peer] = home.listener.accept();
      conn.set_option(IPPROTO_TCP, TCP_NODELAY, 1);
      home.handlers->spawn(  // a pool waits here while full
          [this, &home](socket&& c, grove::address&& p) {
            home.running.fetch_add(1, std::memory_order_relaxed);
            const counted hold{home.running, 0, nullptr, nullptr};
            *serving_ = this;
            handler_(std::move(c), std::move(p));
          },
          std::move(conn), peer);
    });
  }
}

// accept_and_spread is the one acceptor in acceptor mode (on the first hub): each
// connection goes to the hub with the fewest handlers, by a post to it.
void stream_server::accept_and_spread(part& home) {
  const std::size_t limit = options_.max_connections;
  std::size_t next = 0;  // ties go round the hubs
  bool warned = false;
  for (;;) {
    backing_off(where_, warned, [&] {
      auto [conn, peer] = home.listener.accept();
      if (where_.family() != AF_UNIX) conn.set_option(IPPROTO_TCP, TCP_NODELAY, 1);
      part* best = nullptr;
      for (;;) {
        std::size_t least = 0;
        for (std::size_t k = 0; k < parts_.size(); ++k) {
          part* p = parts_[(next + k) % parts_.size()].get();
          const std::size_t n = p->running.load(std::memory_order_acquire);
          if (k == 0 || n < least) {
            best = p;
            least = n;
          }
        }
        if (limit == 0 || least < limit) break;
        // Every hub is full: wait until a handler that leaves a full hub says
        // so. Its post runs on this hub, so not between the count above and
        // the wait; a set left from before is cleared and the count retaken.
        if (home.room.is_set()) {
          home.room.clear();
        } else {
          home.room.wait();
        }
      }
      next = (next + 1) % parts_.size();
      best->running.fetch_add(1, std::memory_order_acq_rel);
      // std::function needs a copyable callable: the socket travels in a shared_ptr.
      auto c = std::make_shared<socket>(std::move(conn));
      hub* const acceptor_hub = limit == 0 ? nullptr : home.home;
      best->home->post([this, best, c, peer = grove::address(peer), acceptor_hub, room = &home.room, limit] {
        try {
          best->handlers->spawn(
              [this, best, acceptor_hub, room, limit](const std::shared_ptr<socket>& s, grove::address&& p) {
                const counted hold{best->running, limit, acceptor_hub, room};
                *serving_ = this;
                handler_(std::move(*s), std::move(p));
              },
              c, peer);
        } catch (...) {
          // No task (out of memory for its stack): the connection closes uncounted.
          const counted dropped{best->running, limit, acceptor_hub, room};
          detail::report("stream_server " + where_.to_string() + ": cannot start a handler: " +
                         detail::describe_exception(std::current_exception()));
        }
      });
    });
  }
}

// stop_on_hubs stops accepting on every hub, lets each hub's handlers finish
// for up to grace (all hubs at once), kills the rest, and destroys every hub's
// objects on that hub. Whatever interrupts the wait, the handlers are killed
// and hubs_stopped_ set before it propagates.
void stream_server::stop_on_hubs(std::chrono::nanoseconds grace) {
  const auto on_every_hub = [this](auto f) {
    std::vector<remote_result<void>> done;
    for (auto& p : parts_) done.push_back(spawn_on(*p->home, [f, p = p.get()] { f(*p); }));
    for (auto& d : done) d.get();
  };
  struct finish {
    stream_server& s;
    decltype(on_every_hub)& every;
    ~finish() {
      try {
        every([](part& p) {
          if (p.handlers) p.handlers->kill();
          p.handlers.reset();
          p.running.store(0, std::memory_order_relaxed);  // handlers killed before they began
        });
      } catch (...) {
        detail::report("stream_server: killing handlers failed: " +
                       detail::describe_exception(std::current_exception()));
      }
      try {
        // A handler that left a full hub posted a wake to the acceptor's hub
        // before its kill returned: this round trip runs after it, so none is
        // left to touch the server once stop returns.
        spawn_on(*s.parts_[0]->home, [] {}).get();
      } catch (...) {
        detail::report("stream_server: stopping failed: " + detail::describe_exception(std::current_exception()));
      }
      // A copy keeps the result's state alive through set: the waiter it
      // wakes may destroy the server, and the server's copy with it.
      remote_result<void> stopped = *s.hubs_stopped_;
      stopped.set();
    }
  } always{*this, on_every_hub};
  // The acceptors first: a connection the spreading acceptor handed over
  // before it ended is posted to its hub ahead of the joins below.
  on_every_hub([](part& p) {
    if (p.acceptor) p.acceptor->kill();
    p.acceptor.reset();
    p.listener.close();
  });
  on_every_hub([grace](part& p) {
    if (p.handlers) p.handlers->join(grace);
  });
}

}  // namespace grove
