/* lookups.c — getaddrinfo over a matrix of names, families, socket types,
 * protocols, flags and services, printing every result entry in order (flags,
 * family, type, protocol, address, port, canonical name) or the error's name,
 * then the gethostbyname family's answers and the process's OS thread count.
 * Run natively and under grove-run, the outputs must be the same.
 *
 * usage: lookups [NAME...]   (default: names from /etc/hosts and some that fail) */
#define _GNU_SOURCE /* EAI_NODATA, EAI_ADDRFAMILY, gethostbyname2_r */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const char* error_name(int rc) {
  switch (rc) {
    case 0: return "ok";
    case EAI_BADFLAGS: return "EAI_BADFLAGS";
    case EAI_NONAME: return "EAI_NONAME";
    case EAI_AGAIN: return "EAI_AGAIN";
    case EAI_FAIL: return "EAI_FAIL";
    case EAI_FAMILY: return "EAI_FAMILY";
    case EAI_SOCKTYPE: return "EAI_SOCKTYPE";
    case EAI_SERVICE: return "EAI_SERVICE";
    case EAI_MEMORY: return "EAI_MEMORY";
    case EAI_SYSTEM: return "EAI_SYSTEM";
    case EAI_OVERFLOW: return "EAI_OVERFLOW";
    case EAI_NODATA: return "EAI_NODATA";
    case EAI_ADDRFAMILY: return "EAI_ADDRFAMILY";
    default: return "EAI_other";
  }
}

static void show(const char* node, const char* service, const struct addrinfo* hints) {
  struct addrinfo* list = (struct addrinfo*)0x1;  /* glibc leaves *res alone on failure */
  const int rc = getaddrinfo(node, service, hints, &list);
  if (hints != NULL) {
    printf("%s %s f=%x fam=%d st=%d p=%d: %s", node ? node : "-", service ? service : "-", (unsigned)hints->ai_flags,
           hints->ai_family, hints->ai_socktype, hints->ai_protocol, error_name(rc));
  } else {
    printf("%s %s nohints: %s", node ? node : "-", service ? service : "-", error_name(rc));
  }
  if (rc != 0) {
    printf("%s\n", list == (struct addrinfo*)0x1 ? "" : " (res written)");
    return;
  }
  for (struct addrinfo* ai = list; ai != NULL; ai = ai->ai_next) {
    char host[INET6_ADDRSTRLEN] = "?";
    int port = -1;
    if (ai->ai_family == AF_INET) {
      const struct sockaddr_in* s = (const struct sockaddr_in*)ai->ai_addr;
      inet_ntop(AF_INET, &s->sin_addr, host, sizeof host);
      port = ntohs(s->sin_port);
    } else if (ai->ai_family == AF_INET6) {
      const struct sockaddr_in6* s = (const struct sockaddr_in6*)ai->ai_addr;
      inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof host);
      port = ntohs(s->sin6_port);
      if (s->sin6_flowinfo != 0 || s->sin6_scope_id != 0) printf(" [flow %u scope %u]", s->sin6_flowinfo, s->sin6_scope_id);
    }
    printf("\n  f=%x fam=%d st=%d p=%d len=%u %s %d", (unsigned)ai->ai_flags, ai->ai_family, ai->ai_socktype,
           ai->ai_protocol, (unsigned)ai->ai_addrlen, host, port);
    if (ai->ai_canonname != NULL) printf(" canon=%s", ai->ai_canonname);
  }
  printf("\n");
  freeaddrinfo(list);
}

static void show_hostent(const char* what, const struct hostent* h, int err) {
  if (h == NULL) {
    printf("%s: NULL h_errno=%d\n", what, err);
    return;
  }
  printf("%s: name=%s type=%d len=%d", what, h->h_name, h->h_addrtype, h->h_length);
  for (char** a = h->h_aliases; *a != NULL; ++a) printf(" alias=%s", *a);
  for (char** a = h->h_addr_list; *a != NULL; ++a) {
    char text[INET6_ADDRSTRLEN];
    inet_ntop(h->h_addrtype, *a, text, sizeof text);
    printf(" addr=%s", text);
  }
  printf("\n");
}

static void hostents(const char* name) {
  char what[300];
  snprintf(what, sizeof what, "gethostbyname(%s)", name);
  struct hostent* h = gethostbyname(name);
  show_hostent(what, h, h_errno);
  snprintf(what, sizeof what, "gethostbyname2(%s, AF_INET6)", name);
  h = gethostbyname2(name, AF_INET6);
  show_hostent(what, h, h_errno);
  struct hostent entry;
  char buf[2048];
  int err = 0;
  h = NULL;
  const int rc = gethostbyname_r(name, &entry, buf, sizeof buf, &h, &err);
  snprintf(what, sizeof what, "gethostbyname_r(%s) rc=%d", name, rc);
  show_hostent(what, h, err);
  h = NULL;
  err = 0;
  const int rc2 = gethostbyname2_r(name, AF_INET, &entry, buf, 16, &h, &err);
  snprintf(what, sizeof what, "gethostbyname2_r(%s, AF_INET, 16 bytes) rc=%d", name, rc2);
  show_hostent(what, h, err);
}

static void reverse(const char* text) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t len;
  const int v6 = strchr(text, ':') != NULL;
  if (v6) {
    struct sockaddr_in6* s = (struct sockaddr_in6*)&ss;
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(80);
    inet_pton(AF_INET6, text, &s->sin6_addr);
    len = sizeof *s;
  } else {
    struct sockaddr_in* s = (struct sockaddr_in*)&ss;
    s->sin_family = AF_INET;
    s->sin_port = htons(80);
    inet_pton(AF_INET, text, &s->sin_addr);
    len = sizeof *s;
  }
  static const int flags[] = {0, NI_NAMEREQD, NI_NUMERICHOST, NI_NUMERICSERV, NI_NOFQDN, NI_DGRAM};
  for (size_t i = 0; i < sizeof flags / sizeof flags[0]; ++i) {
    char host[NI_MAXHOST] = "", serv[NI_MAXSERV] = "";
    const int rc = getnameinfo((struct sockaddr*)&ss, len, host, sizeof host, serv, sizeof serv, flags[i]);
    printf("getnameinfo(%s, %x): %s %s %s\n", text, (unsigned)flags[i], error_name(rc), host, serv);
  }
  char what[100];
  snprintf(what, sizeof what, "gethostbyaddr(%s)", text);
  const void* addr = v6 ? (const void*)&((struct sockaddr_in6*)&ss)->sin6_addr : (const void*)&((struct sockaddr_in*)&ss)->sin_addr;
  struct hostent* h = gethostbyaddr(addr, v6 ? 16 : 4, v6 ? AF_INET6 : AF_INET);
  show_hostent(what, h, h_errno);
  struct hostent entry;
  char buf[1024];
  int err = 0;
  h = NULL;
  const int rc = gethostbyaddr_r(addr, v6 ? 16 : 4, v6 ? AF_INET6 : AF_INET, &entry, buf, sizeof buf, &h, &err);
  snprintf(what, sizeof what, "gethostbyaddr_r(%s) rc=%d", text, rc);
  show_hostent(what, h, err);
}

static int os_threads(void) {
  DIR* d = opendir("/proc/self/task");
  int n = 0;
  if (d == NULL) return -1;
  for (struct dirent* e; (e = readdir(d)) != NULL;) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

int main(int argc, char** argv) {
  static const char* default_names[] = {"localhost", "LocalHost", "runsc", "vm", "no.such.host.invalid", NULL};
  /* --one: one getaddrinfo per family (for servers that make each lookup wait). */
  const int one = argc > 1 && strcmp(argv[1], "--one") == 0;
  if (one) {
    --argc;
    ++argv;
  }
  const char** names = argc > 1 ? (const char**)(argv + 1) : default_names;
  static const int families[] = {AF_UNSPEC, AF_INET, AF_INET6};
  static const int types[][2] = {{0, 0}, {SOCK_STREAM, 0}, {SOCK_DGRAM, 0}, {SOCK_RAW, 0},
                                 {0, IPPROTO_TCP}, {SOCK_STREAM, IPPROTO_UDP}, {SOCK_RAW, IPPROTO_ICMP}};
  static const int flags[] = {0, AI_PASSIVE, AI_CANONNAME, AI_ADDRCONFIG, AI_V4MAPPED, AI_V4MAPPED | AI_ALL,
                              AI_NUMERICHOST, AI_NUMERICSERV, AI_CANONNAME | AI_V4MAPPED | AI_ALL | AI_ADDRCONFIG};
  static const char* services[] = {NULL, "80", "http", "domain", "nosuchservice"};
  for (const char** name = names; *name != NULL; ++name) {
    for (size_t f = 0; f < sizeof families / sizeof families[0]; ++f) {
      for (size_t t = 0; t < sizeof types / sizeof types[0]; ++t) {
        for (size_t g = 0; g < sizeof flags / sizeof flags[0]; ++g) {
          for (size_t s = 0; s < sizeof services / sizeof services[0]; ++s) {
            /* Only the first service for most combinations keeps the output short. */
            if (s > 0 && (t > 1 || g > 2)) continue;
            if (one && (t > 0 || g > 0 || s > 0)) continue;
            struct addrinfo hints;
            memset(&hints, 0, sizeof hints);
            hints.ai_family = families[f];
            hints.ai_socktype = types[t][0];
            hints.ai_protocol = types[t][1];
            hints.ai_flags = flags[g];
            show(*name, services[s], &hints);
          }
        }
      }
    }
    show(*name, "80", NULL);
    struct addrinfo odd;
    memset(&odd, 0, sizeof odd);
    odd.ai_flags = 0x10000; /* no such flag */
    show(*name, NULL, &odd);
    odd.ai_flags = 0;
    odd.ai_family = AF_UNIX;
    show(*name, NULL, &odd);
    odd.ai_family = AF_UNSPEC;
    odd.ai_socktype = 99;
    show(*name, NULL, &odd);
  }
  /* Under grove-run every lookup above was answered on the hub: no OS thread. */
  printf("OS threads after getaddrinfo: %d\n", os_threads());
  if (one) return 0;
  for (const char** name = names; *name != NULL; ++name) hostents(*name);
  static const char* addresses[] = {"127.0.0.1", "::1", "127.0.1.1", "fd00::5"};
  for (size_t i = 0; i < sizeof addresses / sizeof addresses[0]; ++i) reverse(addresses[i]);
  return 0;
}
