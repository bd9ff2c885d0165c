// stream_server.cpp — accept loop, per-connection tasks, graceful stop.
#include <grove/stream_server.hpp>

#include <netinet/tcp.h>

#include <cerrno>
#include <cstdio>
#include <system_error>

#include <grove/sleep.hpp>

#include "report.hpp"

namespace grove {

stream_server::stream_server(std::string_view listen_on, handler h, std::size_t max_connections)
    : where_(grove::address::parse(listen_on)),
      handler_(std::move(h)),
      handlers_(max_connections == 0 ? std::make_unique<group>() : std::make_unique<pool>(max_connections)) {}

stream_server::~stream_server() {
  try {
    stop();
    // A stop in progress elsewhere (a handler's) must be over before the
    // server's memory goes.
    if (stopping_) {
      while (!stopped_.is_set()) stopped_.wait();
    }
  } catch (...) {
    detail::report("stopping a stream_server in its destructor failed: " +
                   detail::describe_exception(std::current_exception()));
  }
}

void stream_server::start() {
  if (started_) return;
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
    try {
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
    } catch (const std::system_error& e) {
      const int err = e.code().value();
      if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) throw;
      // Out of descriptors: back off and keep serving; connections wait in the backlog.
      if (!warned) {
        detail::report("stream_server " + where_.to_string() + ": " + e.what() + "; backing off");
        warned = true;
      }
      sleep(std::chrono::milliseconds(50));
    }
  }
}

void stream_server::serve_forever() {
  start();
  stopped_.wait();
}

void stream_server::stop(std::chrono::nanoseconds grace) {
  if (!started_) return;
  if (stopping_) {
    // Another stop is under way; the destructor waits for it (see there).
    return;
  }
  if (*serving_ == this) {
    // A handler cannot wait for the handlers (itself among them) to finish.
    stopping_ = true;
    stopper_ = spawn([this, grace] { finish_stop(grace); });
    return;
  }
  stopping_ = true;
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

}  // namespace grove
