// serve_until_signal.hpp — how the example servers run in the foreground: parse
// PORT [--hubs N [--spread acceptor|reuseport]], listen on 127.0.0.1:PORT (0
// picks a free port), print "listening on 127.0.0.1:<port>", and stop cleanly
// on SIGINT or SIGTERM. With --hubs (servers whose handlers share nothing
// hub-bound: multi_hub), the handlers run on a hub_group of N hubs (0: one
// per CPU), connections spread among them as --spread says.
#pragma once

#include <signal.h>
#include <sys/signalfd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
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
inline int serve_until_signal(const char* program, int argc, char** argv, grove::stream_server::handler h,
                              bool multi_hub = false) {
  const auto usage = [&] {
    std::fprintf(stderr, "usage: %s PORT%s   (PORT 0 picks a free port)\n", program,
                 multi_hub ? " [--hubs N] [--spread acceptor|reuseport]" : "");
    return 2;
  };
  if (argc < 2 || (!multi_hub && argc != 2)) return usage();
  char* end = nullptr;
  const unsigned long port = std::strtoul(argv[1], &end, 10);
  if (*argv[1] == '\0' || *end != '\0' || port > 65535) {
    std::fprintf(stderr, "%s: \"%s\" is not a port (0 to 65535)\n", program, argv[1]);
    return 2;
  }
  std::optional<std::size_t> hubs;
  grove::stream_server::options options;
  for (int i = 2; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) return usage();
    const std::string value = argv[i + 1];
    if (flag == "--hubs") {
      const unsigned long n = std::strtoul(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || n > 1024) {
        std::fprintf(stderr, "%s: --hubs takes a number of hubs (0: one per CPU, at most 1024), got \"%s\"\n", program,
                     value.c_str());
        return 2;
      }
      hubs = n;
    } else if (flag == "--spread" && (value == "acceptor" || value == "reuseport")) {
      options.by = value == "acceptor" ? grove::stream_server::spread::acceptor : grove::stream_server::spread::reuseport;
    } else if (flag == "--spread") {
      std::fprintf(stderr, "%s: --spread takes acceptor or reuseport, got \"%s\"\n", program, value.c_str());
      return 2;
    } else {
      return usage();
    }
  }
  const int sfd = stop_signal_fd();

  std::optional<grove::hub_group> group;
  if (hubs) options.hubs = &group.emplace(*hubs);
  grove::stream_server server("127.0.0.1:" + std::to_string(port), std::move(h), options);
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
