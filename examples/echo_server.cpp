// echo_server PORT [--hubs N] [--spread acceptor|reuseport] — echoes every byte
// back, a task per connection, written as plain sequential code; with --hubs, on
// N hubs' OS threads (0: one per CPU). Binds 127.0.0.1:PORT (0 picks a free port), prints
// "listening on 127.0.0.1:<port>", runs in the foreground and exits cleanly on
// SIGINT or SIGTERM. bench/echo drives it this way.
#include "serve_until_signal.hpp"

int main(int argc, char** argv) {
  return examples::serve_until_signal("echo_server", argc, argv, [](grove::socket conn, grove::address) {
    // 2 KiB on the task's stack: with the frames of a task parked in recv
    // (about 1.7 KiB) it stays within the stack page those already touch, so
    // an idle connection costs one stack page. A heap buffer would not be
    // free either: malloc's header puts a page of every buffer in memory.
    char buf[2048];
    while (const std::size_t n = conn.recv(buf, sizeof buf)) conn.send_all(buf, n);
  }, /*multi_hub=*/true);
}
