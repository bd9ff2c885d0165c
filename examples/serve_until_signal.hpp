// serve_until_signal.hpp — how the example servers run in the foreground: parse
// PORT, listen on 127.0.0.1:PORT (0 picks a free port), print "listening on
// 127.0.0.1:<port>", and stop cleanly on SIGINT or SIGTERM.
#pragma once

#include <signal.h>
#include <sys/signalfd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <grove/grove.hpp>

namespace examples {

// stop_signal_fd blocks SIGINT and SIGTERM and returns a signalfd that becomes
// readable when one arrives: a task waits on it like a socket (and a signal
// that comes during start-up waits for it).
inline int stop_signal_fd() {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
  return signalfd(-1, &stop_signals, SFD_NONBLOCK | SFD_CLOEXEC);
}

// serve_until_signal runs a stream_server with handler h; returns main's exit status.
inline int serve_until_signal(const char* program, int argc, char** argv, grove::stream_server::handler h) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s PORT   (0 picks a free port)\n", program);
    return 2;
  }
  char* end = nullptr;
  const unsigned long port = std::strtoul(argv[1], &end, 10);
  if (*end != '\0' || port > 65535) {
    std::fprintf(stderr, "%s: \"%s\" is not a port (0 to 65535)\n", program, argv[1]);
    return 2;
  }
  const int sfd = stop_signal_fd();

  grove::stream_server server("127.0.0.1:" + std::to_string(port), std::move(h));
  try {
    server.start();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", program, e.what());
    return 1;
  }
  std::printf("listening on %s\n", server.address().to_string().c_str());
  std::fflush(stdout);
  auto watcher = grove::spawn([&] {
    grove::wait_readable(sfd);
    server.stop(std::chrono::seconds(1));
  });
  server.serve_forever();
  watcher.join();
  grove::close(sfd);
  return 0;
}

}  // namespace examples
