/* forker.c — fork and wait: the child sleeps and writes to a pipe, the parent
 * reads it in blocking style; the child forks again. Both look a name up, the
 * parent before the fork (under grove-run: on its thread pool) and the child
 * after it (on a fresh pool: the parent's threads do not exist in the child). */
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int resolves(void) {
  struct addrinfo* list = NULL;
  const int r = getaddrinfo("localhost", "80", NULL, &list);
  if (list != NULL) freeaddrinfo(list);
  return r == 0;
}

int main(void) {
  printf("parent resolves localhost: %s\n", resolves() ? "yes" : "no");
  int p[2];
  if (pipe(p) != 0) return 1;
  fflush(stdout);
  const pid_t child = fork();
  if (child == 0) {
    close(p[0]);
    usleep(50000);
    const pid_t grandchild = fork();
    if (grandchild == 0) {
      usleep(50000);
      if (write(p[1], "from the grandchild\n", 20) != 20) _exit(1);
      _exit(0);
    }
    waitpid(grandchild, NULL, 0);
    if (!resolves()) _exit(2);
    if (write(p[1], "from the child\n", 15) != 15) _exit(1);
    _exit(7);
  }
  close(p[1]);
  char buf[128];
  ssize_t n;
  size_t got = 0;
  while ((n = read(p[0], buf + got, sizeof buf - got)) > 0) got += (size_t)n;
  printf("%.*s", (int)got, buf);
  int status = 0;
  waitpid(child, &status, 0);
  printf("child exited with %d\n", WEXITSTATUS(status));
  return 0;
}
