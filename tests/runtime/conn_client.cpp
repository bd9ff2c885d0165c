// conn_client PORT COUNT IN_FD OUT_FD — the client side of the 10,000
// connections test, in plain blocking code and a process of its own (each
// process then needs about 10,000 descriptors; run natively even when the test
// runs under valgrind). Protocol on the pipes: it writes "O" once all COUNT
// connections are open, waits for a byte, sends one byte on each connection and
// checks the echo, writes "E", waits for a byte, closes them all and exits 0
// if every echo was right.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 5) return 2;
  const auto port = static_cast<std::uint16_t>(std::atoi(argv[1]));
  const std::size_t count = std::strtoul(argv[2], nullptr, 10);
  const int in = std::atoi(argv[3]);
  const int out = std::atoi(argv[4]);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::vector<int> fds(count, -1);
  for (auto& fd : fds) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return 3;
  }
  char ctl = 0;
  if (::write(out, "O", 1) != 1 || ::read(in, &ctl, 1) != 1) return 4;
  std::size_t good = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const char sent = static_cast<char>('a' + i % 26);
    char got = 0;
    if (::send(fds[i], &sent, 1, 0) == 1 && ::recv(fds[i], &got, 1, MSG_WAITALL) == 1 && got == sent) ++good;
  }
  if (::write(out, "E", 1) != 1 || ::read(in, &ctl, 1) != 1) return 5;
  for (int fd : fds) ::close(fd);
  return good == count ? 0 : 6;
}
