/* resolve.c — getaddrinfo, getnameinfo and gethostbyname on localhost. */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static int compare(const void* a, const void* b) { return strcmp(*(char* const*)a, *(char* const*)b); }

int main(void) {
  struct addrinfo hints = {0};
  hints.ai_socktype = SOCK_STREAM;
  struct addrinfo* list = NULL;
  const int r = getaddrinfo("localhost", "80", &hints, &list);
  printf("getaddrinfo(localhost, 80): %d\n", r);
  char* lines[16];
  int n = 0;
  for (struct addrinfo* ai = list; ai != NULL && n < 16; ai = ai->ai_next) {
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof host, serv, sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV);
    lines[n] = malloc(NI_MAXHOST + NI_MAXSERV + 16);
    snprintf(lines[n], NI_MAXHOST + NI_MAXSERV + 16, "  %s port %s", host, serv);
    ++n;
  }
  qsort(lines, (size_t)n, sizeof lines[0], compare);
  for (int i = 0; i < n; ++i) {
    printf("%s\n", lines[i]);
    free(lines[i]);
  }
  freeaddrinfo(list);
  printf("getaddrinfo(no.such.host.invalid): %s\n",
         getaddrinfo("no.such.host.invalid", NULL, &hints, &list) != 0 ? "fails" : "succeeds");
  struct hostent* h = gethostbyname("127.0.0.1");
  printf("gethostbyname(127.0.0.1): %s\n", h != NULL ? inet_ntoa(*(struct in_addr*)h->h_addr_list[0]) : "NULL");
  return 0;
}
