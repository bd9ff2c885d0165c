// echo_server PORT — echoes every byte back, a task per connection, written as
// plain sequential code. Binds 127.0.0.1:PORT (0 picks a free port), prints
// "listening on 127.0.0.1:<port>", runs in the foreground and exits cleanly on
// SIGINT or SIGTERM. bench/echo drives it this way.
#include <memory>

#include "serve_until_signal.hpp"

int main(int argc, char** argv) {
  return examples::serve_until_signal("echo_server", argc, argv, [](grove::socket conn, grove::address) {
    // The buffer lives on the heap, uninitialised: an idle connection touches
    // none of it, and its task's frames stay within one stack page.
    constexpr std::size_t size = 16384;
    const auto buf = std::make_unique_for_overwrite<char[]>(size);
    while (const std::size_t n = conn.recv(buf.get(), size)) conn.send_all(buf.get(), n);
  });
}
