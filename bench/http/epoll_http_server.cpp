// epoll_http_server PORT — the same keep-alive "Hello, World!" server as
// examples/http_hello, hand-written on a single-thread level-triggered epoll
// loop in plain C++: the limit grove is measured against. Prints
// "listening on 127.0.0.1:<port>"; exits 0 on SIGINT/SIGTERM.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>

namespace {

constexpr std::string_view reply =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";

struct connection {
  std::string in;
  std::string out;
  bool watching_out = false;  // registered for EPOLLOUT too
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: epoll_http_server PORT\n");
    return 2;
  }
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  sigprocmask(SIG_BLOCK, &stop, nullptr);
  const int sfd = signalfd(-1, &stop, SFD_NONBLOCK | SFD_CLOEXEC);

  const int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(std::atoi(argv[1])));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(lfd, SOMAXCONN) != 0) {
    std::perror("epoll_http_server: bind/listen");
    return 1;
  }
  socklen_t len = sizeof a;
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
  std::printf("listening on 127.0.0.1:%u\n", ntohs(a.sin_port));
  std::fflush(stdout);

  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  ev.data.fd = sfd;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
  std::unordered_map<int, connection> conns;
  epoll_event events[256];
  char buf[16384];
  for (;;) {
    const int n = ::epoll_wait(ep, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == sfd) {
        for (auto& [cfd, c] : conns) ::close(cfd);
        return 0;
      }
      if (fd == lfd) {
        for (;;) {
          const int c = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) break;
          ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          conns[c];
          epoll_event cev{};
          cev.events = EPOLLIN;
          cev.data.fd = c;
          ::epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        }
        continue;
      }
      connection& c = conns[fd];
      bool closing = false;
      if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        const ssize_t r = ::recv(fd, buf, sizeof buf, 0);
        if (r <= 0) {
          closing = r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
        } else {
          c.in.append(buf, static_cast<std::size_t>(r));
          for (std::size_t end; (end = c.in.find("\r\n\r\n")) != std::string::npos; c.in.erase(0, end + 4)) {
            c.out += reply;
          }
        }
      }
      if (!closing && !c.out.empty()) {
        const ssize_t w = ::send(fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
        if (w > 0) c.out.erase(0, static_cast<std::size_t>(w));
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) closing = true;
      }
      // Change the registration only when the need for EPOLLOUT changes: no
      // syscall per request in the common case.
      if (!closing && c.watching_out != !c.out.empty()) {
        c.watching_out = !c.out.empty();
        epoll_event cev{};
        cev.events = EPOLLIN | (c.watching_out ? static_cast<unsigned>(EPOLLOUT) : 0u);
        cev.data.fd = fd;
        ::epoll_ctl(ep, EPOLL_CTL_MOD, fd, &cev);
      }
      if (closing) {
        ::close(fd);
        conns.erase(fd);
      }
    }
  }
}
