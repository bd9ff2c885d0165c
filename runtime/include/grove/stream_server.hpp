// grove/stream_server.hpp — a server that gives each connection a task
// (gevent.server.StreamServer).
//
//   grove::stream_server server("127.0.0.1:0", [](grove::socket conn, grove::address peer) {
//     char buf[4096];
//     while (std::size_t n = conn.recv(buf, sizeof buf)) conn.send_all(buf, n);
//   });
//   server.start();
//   std::printf("port %u\n", server.address().port());
//   server.serve_forever();   // until stop()
//
// With a hub_group, handlers run on every hub of the group (every core):
//
//   grove::hub_group hubs;
//   grove::stream_server server("0.0.0.0:8080", handler, {.hubs = &hubs});
//
// and the connections are spread in one of two ways (see spread).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include <grove/event.hpp>
#include <grove/hub_group.hpp>
#include <grove/local.hpp>
#include <grove/pool.hpp>
#include <grove/socket.hpp>
#include <grove/task.hpp>

namespace grove {

class stream_server {
 public:
  using handler = std::function<void(socket conn, grove::address peer)>;

  // spread is how a server on a hub_group shares connections among its hubs.
  enum class spread {
    // acceptor: one task (on the group's first hub) accepts every connection
    // and hands it to the hub with the fewest handlers running, by a post.
    // Works for every address family; a busy hub gets no new connections.
    acceptor,
    // reuseport: each hub has a listening socket of its own on the address
    // (SO_REUSEPORT) and accepts on it; the kernel spreads connections by a
    // hash of their addresses, whatever each hub's load. No hand-off between
    // threads. TCP only (a unix: address uses acceptor).
    reuseport,
  };

  struct options {
    // At most this many handlers at once (0: no limit); beyond it, accepting
    // waits for a handler to finish. With hubs: at most this many on each hub.
    std::size_t max_connections = 0;
    // hubs: run the handlers on these hubs' threads (the group must outlive
    // the server). nullptr: on the hub of the thread that calls start.
    hub_group* hubs = nullptr;
    spread by = spread::acceptor;
  };

  // stream_server will listen on `listen_on` ("127.0.0.1:8080", "[::1]:0",
  // "unix:/path"; port 0 picks a free port) and run h(conn, peer) in a task per
  // connection, at most max_connections at once (0: no limit; beyond it,
  // accepting waits for a handler to finish). Nothing happens until start.
  // Throws grove::error for a bad address.
  stream_server(std::string_view listen_on, handler h, std::size_t max_connections = 0);
  // stream_server(listen_on, h, o) is the same with options; with o.hubs,
  // start, stop and serve_forever may be called from any thread or task, and
  // a handler on any hub may call stop.
  stream_server(std::string_view listen_on, handler h, options o);
  stream_server(const stream_server&) = delete;
  stream_server& operator=(const stream_server&) = delete;
  // ~stream_server stops it, killing its handlers at once.
  ~stream_server();

  // start binds, listens and starts accepting in a task of its own; returns at
  // once. Throws std::system_error if the address cannot be bound.
  void start();
  // serve_forever starts (if needed) and blocks the calling task until stop.
  void serve_forever();
  // stop stops accepting and closes the listening socket, lets running
  // handlers finish for up to grace, then kills the rest; returns once they
  // are all done. If that wait is interrupted (a timeout scope, a kill), the
  // handlers are killed before the interruption propagates. Safe to call more
  // than once. Called from a handler, it returns at once and stops the server
  // from a task of its own.
  void stop(std::chrono::nanoseconds grace = std::chrono::nanoseconds::zero());

  // address is where it listens (after start: with the port port 0 picked).
  const grove::address& address() const noexcept { return where_; }
  bool started() const noexcept { return started_; }
  // connections is how many handlers run now (with hubs: on all of them).
  std::size_t connections() const noexcept;

 private:
  struct part;  // one hub's share of a server on a hub_group
  void accept_loop();
  void finish_stop(std::chrono::nanoseconds grace);
  void start_on_hubs();
  void accept_and_spread(part& home);
  void accept_on_own_socket(part& home);
  void stop_on_hubs(std::chrono::nanoseconds grace);
  grove::address where_;
  handler handler_;
  options options_;
  std::unique_ptr<group> handlers_;
  socket listener_;
  std::optional<task<void>> acceptor_;
  std::optional<task<void>> stopper_;  // a stop started from a handler
  event stopped_;
  local<const stream_server*> serving_;  // in a handler's task: the server running it
  // With hubs: a part per hub, each hub's objects made, used and destroyed on
  // that hub; stopped is set once every part is stopped.
  std::vector<std::unique_ptr<part>> parts_;
  std::optional<remote_result<void>> hubs_stopped_;
  bool started_ = false;
  std::atomic<bool> stopping_{false};
};

}  // namespace grove
