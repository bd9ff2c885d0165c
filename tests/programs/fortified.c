/* fortified.c — built with -O2 -D_FORTIFY_SOURCE=2, so read, recv, recvfrom and
 * poll on fixed-size buffers become __read_chk, __recv_chk, __recvfrom_chk and
 * __poll_chk. (Sizes the compiler can prove safe skip the check: these are
 * not known until run time.) Reads stdin (a pipe) until EOF, then uses the
 * others. */
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

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
