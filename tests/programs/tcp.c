/* tcp.c — a blocking TCP server and client: the server forks a client, which
 * connects, sends lines and reads the echoes; the server echoes them upper-cased.
 * Also: connect to a closed port, and a receive timeout. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static int client(const struct sockaddr_in* where) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(fd, (const struct sockaddr*)where, sizeof *where) != 0) return 1;
  const char* lines[] = {"hello\n", "green threads\n", "bye\n"};
  for (int i = 0; i < 3; ++i) {
    char buf[64];
    const size_t n = strlen(lines[i]);
    if (write(fd, lines[i], n) != (ssize_t)n) return 2;
    size_t got = 0;
    while (got < n) {
      const ssize_t r = read(fd, buf + got, sizeof buf - got);
      if (r <= 0) return 3;
      got += (size_t)r;
    }
    printf("client got: %.*s", (int)got, buf);
    fflush(stdout);
  }
  close(fd);
  return 0;
}

int main(void) {
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in where = {0};
  where.sin_family = AF_INET;
  where.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof where;
  if (bind(listener, (struct sockaddr*)&where, sizeof where) != 0 || listen(listener, 8) != 0 ||
      getsockname(listener, (struct sockaddr*)&where, &len) != 0) {
    perror("listen");
    return 1;
  }
  fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) _exit(client(&where));
  const int conn = accept(listener, NULL, NULL);
  char buf[256];
  ssize_t n;
  while ((n = recv(conn, buf, sizeof buf, 0)) > 0) {
    for (ssize_t i = 0; i < n; ++i) buf[i] = (char)toupper((unsigned char)buf[i]);
    if (send(conn, buf, (size_t)n, 0) != n) break;
  }
  printf("server: client closed, recv returned %zd\n", n);
  close(conn);
  int status = 0;
  waitpid(pid, &status, 0);
  printf("client exit status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);

  /* A port where nothing listens. */
  close(listener);
  const int c = socket(AF_INET, SOCK_STREAM, 0);
  errno = 0;
  const int r = connect(c, (struct sockaddr*)&where, sizeof where);
  printf("connect to a closed port: %d, %s\n", r, errno == ECONNREFUSED ? "ECONNREFUSED" : strerror(errno));
  close(c);

  /* SO_RCVTIMEO on a socket nobody writes to. */
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0) return 1;
  struct timeval tv = {0, 100000};
  setsockopt(pair[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  errno = 0;
  const ssize_t t = recv(pair[0], buf, 1, 0);
  printf("recv with SO_RCVTIMEO: %zd, %s\n", t, errno == EAGAIN ? "EAGAIN" : strerror(errno));
  return 0;
}
