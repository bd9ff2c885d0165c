/* fortified.c — built with -O2 -D_FORTIFY_SOURCE=2, so read, recv, recvfrom and
 * poll on fixed-size buffers become __read_chk, __recv_chk, __recvfrom_chk and
 * __poll_chk. (Sizes the compiler can prove safe skip the check: these are
 * not known until run time.) Reads stdin (a pipe) until EOF, then uses the
 * others. */
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef __clang__
/* clang (14) does not turn these calls into glibc's checking functions as GCC
 * does: call those, as a GCC-fortified build does. */
ssize_t __read_chk(int fd, void* buf, size_t n, size_t buflen);
ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void* buf, size_t n, size_t buflen, int flags, struct sockaddr* from,
                       socklen_t* from_len);
int __poll_chk(struct pollfd* fds, nfds_t n, int timeout, size_t fdslen);
#define read(fd, b, n) __read_chk(fd, b, n, sizeof(b))
#define recv(fd, b, n, flags) __recv_chk(fd, b, n, sizeof(b), flags)
#define recvfrom(fd, b, n, flags, from, len) __recvfrom_chk(fd, b, n, sizeof(b), flags, from, len)
#define poll(fds, n, timeout) __poll_chk(fds, n, timeout, sizeof(fds))
#endif

int main(void) {
  char buf[128];
  volatile size_t chunk = sizeof buf;
  volatile nfds_t one = 1;
  size_t total = 0;
  ssize_t n;
  while ((n = read(0, buf, chunk)) > 0) total += (size_t)n;
  printf("read %zu bytes from stdin\n", total);
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0) return 1;
  struct pollfd p[1] = {{pair[0], POLLIN, 0}};
  printf("poll before data: %d\n", poll(p, one, 50));
  if (write(pair[1], "abc", 3) != 3) return 1;
  printf("poll after data: %d\n", poll(p, one, -1));
  printf("recv: %zd\n", recv(pair[0], buf, chunk, 0));
  if (write(pair[1], "defg", 4) != 4) return 1;
  printf("recvfrom: %zd\n", recvfrom(pair[0], buf, chunk, 0, NULL, NULL));
  return 0;
}
