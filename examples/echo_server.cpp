// echo_server PORT — echoes every byte back, a task per connection.
// Binds 127.0.0.1:PORT (0 picks a free port), prints "listening on
// 127.0.0.1:<port>", runs in the foreground and exits cleanly on SIGINT or
// SIGTERM. bench/echo drives it this way.
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include <grove/grove.hpp>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: echo_server PORT   (0 picks a free port)\n");
    return 2;
  }
  char* end = nullptr;
  const unsigned long port = std::strtoul(argv[1], &end, 10);
  if (*end != '\0' || port > 65535) {
    std::fprintf(stderr, "echo_server: \"%s\" is not a port (0 to 65535)\n", argv[1]);
    return 2;
  }
  // SIGINT/SIGTERM arrive through a signalfd, which a task waits on like any socket.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
  const int sfd = signalfd(-1, &stop_signals, SFD_NONBLOCK | SFD_CLOEXEC);

  grove::stream_server server("127.0.0.1:" + std::to_string(port), [](grove::socket conn, grove::address) {
    char buf[16384];
    while (const std::size_t n = conn.recv(buf, sizeof buf)) conn.send_all(buf, n);
  });
  server.start();
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
