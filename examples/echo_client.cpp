// echo_client PORT [N] — N tasks (default 10) each send lines to an echo
// server on 127.0.0.1:PORT and check what comes back.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <grove/grove.hpp>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: echo_client PORT [CLIENTS]\n");
    return 2;
  }
  const auto port = static_cast<std::uint16_t>(std::strtoul(argv[1], nullptr, 10));
  const int clients = argc > 2 ? std::atoi(argv[2]) : 10;
  std::vector<grove::task<int>> tasks;
  for (int c = 0; c < clients; ++c) {
    tasks.push_back(grove::spawn([port, c] {
      grove::socket s = grove::connect("127.0.0.1", port, std::chrono::seconds(2));
      s.set_timeout(std::chrono::seconds(5));
      int ok = 0;
      for (int i = 0; i < 100; ++i) {
        const std::string line = "client " + std::to_string(c) + " line " + std::to_string(i) + "\n";
        s.send_all(line);
        std::string back(line.size(), '\0');
        s.recv_exact(back.data(), back.size());
        ok += back == line;
      }
      return ok;
    }));
  }
  int total = 0;
  for (auto& t : tasks) total += t.get();
  std::printf("%d clients, %d of %d lines echoed intact\n", clients, total, clients * 100);
  return total == clients * 100 ? 0 : 1;
}
