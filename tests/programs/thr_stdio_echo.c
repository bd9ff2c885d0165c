/* thr_stdio_echo.c — thr_echo.c in the common C idiom of stdio on sockets: a
 * thread-per-connection line server that wraps each connection in two FILEs
 * (fdopen of the socket for reading, of a dup for writing) and answers every
 * line with fgets + fprintf + fflush; its 500 client threads do the same.
 * The server thread accepts on 127.0.0.1 (an ephemeral port) and starts one
 * thread per connection, which answers until the client closes. Each client
 * connects, exchanges one line, waits at a gate until every client has (so
 * 500 clients and 500 connection threads are alive at once, blocked in fgets:
 * the report_threads sample), then exchanges the rest and checks every answer. */
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

/* connection answers each line with its length and the line, until EOF. */
static void* connection(void* arg) {
  const int fd = (int)(long)arg;
  FILE* in = fdopen(fd, "r");
  FILE* out = fdopen(dup(fd), "w");
  char line[512];
  long bytes = 0;
  while (in != NULL && out != NULL && fgets(line, sizeof line, in) != NULL) {
    const size_t n = strlen(line);
    if (fprintf(out, "%zu:%s", n, line) < 0 || fflush(out) != 0) break;
    bytes += (long)n;
  }
  if (in != NULL) fclose(in);
  if (out != NULL) fclose(out);
  pthread_mutex_lock(&lock);
  echoed_bytes += bytes;
  ++connections_served;
  pthread_mutex_unlock(&lock);
  return NULL;
}

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

static int exchange(FILE* in, FILE* out, int id, int m, long* bytes) {
  char line[256], answer[300], expected[300];
  /* Lengths vary by client and message, up to a couple of hundred bytes. */
  int len = snprintf(line, sizeof line, "client %d message %d ", id, m);
  const int pad = (id * 7 + m * 13) % 160;
  for (int i = 0; i < pad; ++i) line[len++] = (char)('a' + (id + m + i) % 26);
  line[len++] = '\n';
  line[len] = '\0';
  if (fputs(line, out) == EOF || fflush(out) != 0 || fgets(answer, sizeof answer, in) == NULL) return -1;
  snprintf(expected, sizeof expected, "%d:%s", len, line);
  *bytes += len;
  return strcmp(answer, expected) == 0 ? 0 : -1;
}

static void* client(void* arg) {
  const int id = (int)(long)arg;
  long bytes = 0;
  int ok_messages = 0;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  int connected = fd >= 0 && connect(fd, (struct sockaddr*)&server_address, sizeof server_address) == 0;
  FILE* in = connected ? fdopen(fd, "r") : NULL;
  FILE* out = connected ? fdopen(dup(fd), "w") : NULL;
  connected = in != NULL && out != NULL;
  if (connected && exchange(in, out, id, 0, &bytes) == 0) ++ok_messages;

  pthread_mutex_lock(&lock);
  if (++at_gate == clients) pthread_cond_broadcast(&changed);
  while (!gate_open) pthread_cond_wait(&changed, &lock);
  pthread_mutex_unlock(&lock);

  for (int m = 1; connected && m < messages; ++m)
    if (exchange(in, out, id, m, &bytes) == 0) ++ok_messages;
  if (in != NULL) fclose(in);
  if (out != NULL) fclose(out);
  if (in == NULL && fd >= 0) close(fd);
  pthread_mutex_lock(&lock);
  client_bytes += bytes;
  messages_ok += ok_messages;
  if (ok_messages == messages) ++clients_ok;
  pthread_mutex_unlock(&lock);
  return NULL;
}

int main(void) {
  /* 500 client sockets, 500 accepted ones, each twice (a dup for writing):
   * more than a default limit of 1024, so take what the hard limit allows. */
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
   * waits in fgets. */
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
