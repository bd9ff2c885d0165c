/* thr_echo.c — a thread-per-connection echo server and 500 client threads.
 * The server thread accepts on 127.0.0.1 (an ephemeral port) and starts one
 * thread per connection, which echoes until the client closes. Each client
 * connects, exchanges one message, waits at a gate until every client has
 * (so 500 clients and 500 connection threads are alive at once: the
 * report_threads sample), then exchanges the rest and checks every echo.
 *
 * Built a second time as thr_stdio_echo (THR_ECHO_STDIO), in the common C
 * idiom of stdio on sockets: each connection is wrapped in two FILEs (fdopen
 * of the socket for reading, of a dup for writing), the server answers every
 * line with fgets + fprintf + fflush (its length, then the line), and the
 * clients talk to it with fputs + fflush + fgets. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "thr_common.h"

enum { clients = 500, messages = 6 };

static struct sockaddr_in server_address;
static int listener;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int at_gate;   /* clients that finished their first exchange */
static int gate_open; /* set by main after its sample */
static long echoed_bytes, connections_served, client_bytes, clients_ok, messages_ok;

static void count_served(long bytes) {
  pthread_mutex_lock(&lock);
  echoed_bytes += bytes;
  ++connections_served;
  pthread_mutex_unlock(&lock);
}

#ifdef THR_ECHO_STDIO

/* session is a client's or the server's side of a connection in FILEs. */
struct session {
  FILE* in;
  FILE* out;
};

static int open_session(struct session* s, int fd) {
  s->in = fdopen(fd, "r");
  s->out = fdopen(dup(fd), "w");
  if (s->in == NULL) close(fd);
  return s->in != NULL && s->out != NULL ? 0 : -1;
}

static void close_session(struct session* s) {
  if (s->in != NULL) fclose(s->in);
  if (s->out != NULL) fclose(s->out);
}

/* connection answers each line with its length and the line, until EOF. */
static void* connection(void* arg) {
  struct session s;
  char line[512];
  long bytes = 0;
  if (open_session(&s, (int)(long)arg) == 0) {
    while (fgets(line, sizeof line, s.in) != NULL) {
      const size_t n = strlen(line);
      if (fprintf(s.out, "%zu:%s", n, line) < 0 || fflush(s.out) != 0) break;
      bytes += (long)n;
    }
  }
  close_session(&s);
  count_served(bytes);
  return NULL;
}

/* talk sends line (len bytes, ending in '\n') and checks the answer. */
static int talk(struct session* s, const char* line, int len) {
  char answer[300], expected[300];
  if (fputs(line, s->out) == EOF || fflush(s->out) != 0 || fgets(answer, sizeof answer, s->in) == NULL) return -1;
  snprintf(expected, sizeof expected, "%d:%s", len, line);
  return strcmp(answer, expected) == 0 ? 0 : -1;
}

#else

struct session {
  int fd;
};

static int open_session(struct session* s, int fd) {
  s->fd = fd;
  return 0;
}

static void close_session(struct session* s) { close(s->fd); }

/* send_all and recv_all loop over short transfers, as blocking code must. */
static int send_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t r = send(fd, p, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static int recv_all(int fd, char* p, size_t n) {
  while (n > 0) {
    const ssize_t r = recv(fd, p, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static void* connection(void* arg) {
  const int fd = (int)(long)arg;
  char buf[512];
  long bytes = 0;
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf, 0)) > 0) {
    if (send_all(fd, buf, (size_t)n) != 0) break;
    bytes += n;
  }
  close(fd);
  count_served(bytes);
  return NULL;
}

/* talk sends line (len bytes) and checks the echo. */
static int talk(struct session* s, const char* line, int len) {
  char in[256];
  if (send_all(s->fd, line, (size_t)len) != 0 || recv_all(s->fd, in, (size_t)len) != 0) return -1;
  return memcmp(in, line, (size_t)len) == 0 ? 0 : -1;
}
#endif

static void* server(void* arg) {
  (void)arg;
  pthread_t* threads = calloc(clients, sizeof *threads);
  int started = 0;
  while (started < clients) {
    const int fd = accept(listener, NULL, NULL);
    if (fd < 0) {
      if (errno == EINTR) continue;
      perror("accept");
      break;
    }
    if (pthread_create(&threads[started], NULL, connection, (void*)(long)fd) != 0) {
      fprintf(stderr, "pthread_create for connection %d failed\n", started);
      close(fd);
      break;
    }
    ++started;
  }
  for (int i = 0; i < started; ++i) pthread_join(threads[i], NULL);
  free(threads);
  return (void*)(long)started;
}

static int exchange(struct session* s, int id, int m, long* bytes) {
  char line[256];
  /* Lengths vary by client and message, up to a couple of hundred bytes. */
  int len = snprintf(line, sizeof line, "client %d message %d ", id, m);
  const int pad = (id * 7 + m * 13) % 160;
  for (int i = 0; i < pad; ++i) line[len++] = (char)('a' + (id + m + i) % 26);
  line[len++] = '\n';
  line[len] = '\0';
  *bytes += len;
  return talk(s, line, len);
}

static void* client(void* arg) {
  const int id = (int)(long)arg;
  long bytes = 0;
  int ok_messages = 0;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct session s;
  const int connected = fd >= 0 && connect(fd, (struct sockaddr*)&server_address, sizeof server_address) == 0 &&
                        open_session(&s, fd) == 0;
  if (connected && exchange(&s, id, 0, &bytes) == 0) ++ok_messages;

  pthread_mutex_lock(&lock);
  if (++at_gate == clients) pthread_cond_broadcast(&changed);
  while (!gate_open) pthread_cond_wait(&changed, &lock);
  pthread_mutex_unlock(&lock);

  for (int m = 1; connected && m < messages; ++m)
    if (exchange(&s, id, m, &bytes) == 0) ++ok_messages;
  if (connected) {
    close_session(&s);
  } else if (fd >= 0) {
    close(fd);
  }
  pthread_mutex_lock(&lock);
  client_bytes += bytes;
  messages_ok += ok_messages;
  if (ok_messages == messages) ++clients_ok;
  pthread_mutex_unlock(&lock);
  return NULL;
}

int main(void) {
  /* 500 client sockets, 500 accepted ones (twice that with stdio's dups):
   * more than a default limit of 1024 leaves little room, so take what the
   * hard limit allows. */
  struct rlimit files;
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  listener = socket(AF_INET, SOCK_STREAM, 0);
  server_address.sin_family = AF_INET;
  server_address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof server_address;
  if (bind(listener, (struct sockaddr*)&server_address, sizeof server_address) != 0 || listen(listener, clients) != 0 ||
      getsockname(listener, (struct sockaddr*)&server_address, &len) != 0) {
    perror("listen");
    return 1;
  }
  pthread_t server_thread;
  if (pthread_create(&server_thread, NULL, server, NULL) != 0) return 1;
  pthread_t* threads = calloc(clients, sizeof *threads);
  int started = 0;
  for (; started < clients; ++started)
    if (pthread_create(&threads[started], NULL, client, (void*)(long)started) != 0) break;
  printf("client threads started: %d\n", started);

  pthread_mutex_lock(&lock);
  while (at_gate < started) pthread_cond_wait(&changed, &lock);
  /* Every client is connected and waits here; every connection thread
   * waits in recv (fgets). */
  report_threads("peak");
  printf("clients at the gate: %d\n", at_gate);
  gate_open = 1;
  pthread_cond_broadcast(&changed);
  pthread_mutex_unlock(&lock);

  for (int i = 0; i < started; ++i) pthread_join(threads[i], NULL);
  free(threads);
  void* accepted = NULL;
  pthread_join(server_thread, &accepted);
  close(listener);
  printf("connections accepted: %ld\n", (long)accepted);
  printf("connections served: %ld\n", connections_served);
  printf("clients with every echo right: %ld\n", clients_ok);
  printf("messages echoed right: %ld of %d\n", messages_ok, clients * messages);
  printf("bytes sent by clients: %ld, echoed by the server: %ld\n", client_bytes, echoed_bytes);
  report_threads("end");
  return clients_ok == clients && echoed_bytes == client_bytes ? 0 : 1;
}
