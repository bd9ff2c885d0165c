/* early.c — blocking calls before main (a constructor) and after it (an atexit
 * handler, a destructor): under grove-run they reach libc or the hub safely. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

__attribute__((constructor)) static void before_main(void) {
  usleep(1000);
  struct pollfd none = {-1, 0, 0};
  const int r = poll(&none, 1, 1);
  if (write(1, "constructor: slept and polled\n", 30) != 30 || r != 0) _exit(1);
}

static void at_exit(void) {
  usleep(1000);
  printf("atexit handler: slept\n");
}

__attribute__((destructor)) static void after_main(void) {
  usleep(1000);
  if (write(1, "destructor: slept\n", 18) != 18) _exit(1);
}

int main(void) {
  atexit(at_exit);
  usleep(1000);
  printf("main: slept\n");
  return 0;
}
