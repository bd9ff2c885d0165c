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
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>

#include <grove/event.hpp>
#include <grove/local.hpp>
#include <grove/pool.hpp>
#include <grove/socket.hpp>
#include <grove/task.hpp>

namespace grove {

class stream_server {
 public:
  using handler = std::function<void(socket conn, grove::address peer)>;

  // stream_server will listen on `listen_on` ("127.0.0.1:8080", "[::1]:0",
  // "unix:/path"; port 0 picks a free port) and run h(conn, peer) in a task per
  // connection, at most max_connections at once (0: no limit; beyond it,
  // accepting waits for a handler to finish). Nothing happens until start.
  // Throws grove::error for a bad address.
  stream_server(std::string_view listen_on, handler h, std::size_t max_connections = 0);
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
  // connections is how many handlers run now.
  std::size_t connections() const noexcept { return handlers_->size(); }

 private:
  void accept_loop();
  void finish_stop(std::chrono::nanoseconds grace);
  grove::address where_;
  handler handler_;
  std::unique_ptr<group> handlers_;
  socket listener_;
  std::optional<task<void>> acceptor_;
  std::optional<task<void>> stopper_;  // a stop started from a handler
  event stopped_;
  local<const stream_server*> serving_;  // in a handler's task: the server running it
  bool started_ = false;
  bool stopping_ = false;
};

}  // namespace grove
