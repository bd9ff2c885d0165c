// bug_service PORT [CONNINFO] — the classic asynchronous web service, written
// as plain blocking code: an HTTP/1.1 JSON endpoint
//
//   GET /bugs/{id}               200 {"id":1,"title":"...","status":"open",...}
//                                404 {"error":"bug 42 not found"}
//                                400 {"error":"malformed bug id ..."}
//   GET /bugs/{id}?delay=0.3     the same, after the database sleeps 0.3 s
//                                (pg_sleep): a slow query, to watch requests
//                                overlap
//
// answered from PostgreSQL through a pool of libpq connections. libpq's calls
// are the ordinary blocking ones (PQconnectdb, PQexecParams); linking
// grove::hooks makes each wait on the hub instead of the thread, so while one
// task waits for its query the others serve their connections. A
// grove::queue holds the idle connections: a request takes one (waiting, as a
// task, while all are lent) and gives it back when done.
//
// One task per HTTP connection (grove::stream_server), keep-alive and
// pipelining as in http_hello. Binds 127.0.0.1:PORT (0 picks a free port),
// prints "listening on 127.0.0.1:<port>", stops cleanly on SIGINT or SIGTERM.
//
// CONNINFO is a libpq connection string ("host=/var/run/postgresql
// dbname=bugs"); the service creates schema bug_service, its table and sample
// rows there if they are missing. Without CONNINFO it starts a throwaway
// PostgreSQL cluster of its own (initdb into a temporary directory, a server on
// a Unix socket there, as the postgres account when run as root; the Debian
// package postgresql provides them) and removes it at exit.
#include <fcntl.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <grove/grove.hpp>

#include "http_headers.hpp"
#include "serve_until_signal.hpp"

extern char** environ;

namespace {

using namespace std::chrono_literals;

constexpr std::size_t pool_size = 10;  // connections to PostgreSQL, so queries at once

// ------------------------------------------------------------ PostgreSQL

struct pq_free {
  void operator()(PGconn* c) const { PQfinish(c); }
  void operator()(PGresult* r) const { PQclear(r); }
};
using pg_conn = std::unique_ptr<PGconn, pq_free>;
using pg_result = std::unique_ptr<PGresult, pq_free>;

// connect opens a connection (a blocking call: the task waits, the hub runs).
// Throws std::runtime_error with libpq's message.
pg_conn connect(const std::string& conninfo) {
  pg_conn c(PQconnectdb(conninfo.c_str()));
  if (!c) throw std::runtime_error("out of memory");
  if (PQstatus(c.get()) != CONNECTION_OK) throw std::runtime_error(PQerrorMessage(c.get()));
  return c;
}

// connection_pool lends libpq connections to tasks, one task per connection at a time.
class connection_pool {
 public:
  // connection_pool opens size connections, concurrently. Throws std::runtime_error.
  connection_pool(std::string conninfo, std::size_t size) : conninfo_(std::move(conninfo)) {
    std::vector<grove::task<pg_conn>> opening;
    for (std::size_t i = 0; i < size; ++i) opening.push_back(grove::spawn([this] { return connect(conninfo_); }));
    for (auto& t : opening) idle_.put(t.get());
  }

  // lease is one connection, lent until the lease goes.
  class lease {
   public:
    lease(connection_pool& pool, pg_conn c) : pool_(pool), conn_(std::move(c)) {}
    lease(const lease&) = delete;
    lease& operator=(const lease&) = delete;
    ~lease() {
      // A lease dropped by an exception (a kill in the middle of a query) may
      // leave the connection half-way through the protocol: close it, and let
      // acquire open a new one in its place.
      if (std::uncaught_exceptions() > exceptions_) conn_.reset();
      pool_.idle_.put(std::move(conn_));
    }
    PGconn* get() const noexcept { return conn_.get(); }

   private:
    connection_pool& pool_;
    pg_conn conn_;
    int exceptions_ = std::uncaught_exceptions();
  };

  // acquire waits (cooperatively) for an idle connection, reconnecting one
  // that was dropped or that the server has closed. Throws std::runtime_error
  // if reconnecting fails (the slot stays in the pool, empty).
  lease acquire() {
    pg_conn c = idle_.get();
    if (!c || PQstatus(c.get()) != CONNECTION_OK) {
      c.reset();
      try {
        c = connect(conninfo_);
      } catch (...) {
        idle_.put(nullptr);
        throw;
      }
    }
    return lease(*this, std::move(c));
  }

 private:
  std::string conninfo_;
  grove::queue<pg_conn> idle_;  // unbounded; an empty pg_conn is a slot to reconnect
};

constexpr const char* schema_sql = R"sql(
BEGIN;
SELECT pg_advisory_xact_lock(7365626);  -- two services starting at once
CREATE SCHEMA IF NOT EXISTS bug_service;
CREATE TABLE IF NOT EXISTS bug_service.bugs (
  id       bigint PRIMARY KEY,
  title    text NOT NULL,
  status   text NOT NULL,
  severity text NOT NULL,
  reporter text NOT NULL,
  opened   date NOT NULL);
INSERT INTO bug_service.bugs VALUES
  (1, 'Crash when the window is resized to zero width', 'open', 'critical', 'ada', '2024-01-15'),
  (2, 'Tooltip shows "undefined" for unnamed layers', 'open', 'minor', 'grace', '2024-02-03'),
  (3, 'Export to CSV drops the last row', 'fixed', 'major', 'linus', '2024-02-20'),
  (4, 'Dark theme: unreadable \ backslash in paths', 'open', 'trivial', 'barbara', '2024-03-11'),
  (5, 'Login hangs for 30 s when the DNS server is down', 'in progress', 'major', 'ken', '2024-04-01')
ON CONFLICT (id) DO NOTHING;
COMMIT;
)sql";

void create_schema(PGconn* c) {
  pg_result r(PQexec(c, schema_sql));
  if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
    throw std::runtime_error(std::string("creating the schema: ") + PQerrorMessage(c));
  }
}

// ------------------------------------------------------------ a throwaway cluster

// spawn starts argv with stdout and stderr appended to log, as user (if set)
// through setpriv, with SIGINT and SIGTERM unblocked and at their defaults
// (this process blocks them for its signalfd). Returns the pid.
pid_t spawn(std::vector<std::string> argv, const std::string& log, const passwd* user) {
  std::vector<std::string> full{"/usr/bin/setpriv", "--pdeathsig", "INT"};  // a killed service takes it along
  if (user != nullptr) {
    full.insert(full.end(), {"--reuid=" + std::to_string(user->pw_uid), "--regid=" + std::to_string(user->pw_gid),
                             "--clear-groups"});
  }
  full.push_back("--");
  full.insert(full.end(), argv.begin(), argv.end());
  std::vector<char*> args;
  for (auto& a : full) args.push_back(a.data());
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, stop;
  sigemptyset(&none);
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &stop);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, args[0], &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
  return pid;
}

// exit_status waits for pid on the hub's thread pool (the hub runs on) and
// returns its exit status, or -1 if a signal ended it.
int exit_status(pid_t pid) {
  const int status = grove::run_in_thread([pid] {
    int s = 0;
    while (::waitpid(pid, &s, 0) == -1 && errno == EINTR) {
    }
    return s;
  });
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// throwaway_cluster is a PostgreSQL cluster in a temporary directory: its
// server listens on a Unix socket there, with trust authentication for the
// superuser "bugs". Stopped and removed when it goes.
class throwaway_cluster {
 public:
  // throwaway_cluster runs initdb and starts the server. Throws std::runtime_error.
  throwaway_cluster() {
    const std::string bin = server_bindir();
    std::string dir = "/tmp/bug_service-XXXXXX";
    if (::mkdtemp(dir.data()) == nullptr) throw std::runtime_error("mkdtemp: " + std::string(std::strerror(errno)));
    dir_ = dir;
    // initdb and postgres refuse to run as root.
    const passwd* user = nullptr;
    if (::geteuid() == 0) {
      user = ::getpwnam("postgres");
      if (user == nullptr) throw std::runtime_error("running as root and there is no postgres account to run as");
      if (::chown(dir.c_str(), user->pw_uid, user->pw_gid) != 0) {
        throw std::runtime_error("chown: " + std::string(std::strerror(errno)));
      }
    }
    const std::string log = dir + "/postgres.log";
    std::fprintf(stderr, "bug_service: throwaway PostgreSQL cluster in %s (removed at exit)\n", dir.c_str());
    const int initdb = exit_status(spawn({bin + "/initdb", "--pgdata=" + dir + "/data", "--username=bugs",
                                          "--auth=trust", "--encoding=UTF8", "--no-sync", "--no-instructions"},
                                         log, user));
    if (initdb != 0) throw std::runtime_error("initdb failed, see " + log);
    server_ = spawn({bin + "/postgres", "-D", dir + "/data", "-k", dir, "-c", "listen_addresses=", "-c", "fsync=off"},
                    log, user);
    const auto until = std::chrono::steady_clock::now() + 30s;
    while (PQping(conninfo().c_str()) != PQPING_OK) {
      int status = 0;
      if (::waitpid(server_, &status, WNOHANG) == server_) {
        server_ = -1;
        throw std::runtime_error("postgres exited at start, see " + log);
      }
      if (std::chrono::steady_clock::now() > until) throw std::runtime_error("postgres did not start, see " + log);
      grove::sleep(20ms);
    }
  }
  throwaway_cluster(const throwaway_cluster&) = delete;
  throwaway_cluster& operator=(const throwaway_cluster&) = delete;
  ~throwaway_cluster() {
    if (server_ > 0) {
      ::kill(server_, SIGINT);  // PostgreSQL's fast shutdown
      exit_status(server_);
    }
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  std::string conninfo() const { return "host=" + dir_.string() + " user=bugs dbname=postgres"; }

 private:
  // server_bindir finds the newest installed PostgreSQL server's programs.
  static std::string server_bindir() {
    std::filesystem::path best;
    int best_version = 0;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
      const int v = std::atoi(e.path().filename().c_str());
      if (v > best_version && ::access((e.path() / "bin/initdb").c_str(), X_OK) == 0) {
        best_version = v;
        best = e.path() / "bin";
      }
    }
    if (best.empty()) {
      throw std::runtime_error("no PostgreSQL server in /usr/lib/postgresql/*/bin (Debian package postgresql)");
    }
    return best.string();
  }

  std::filesystem::path dir_;
  pid_t server_ = -1;
};

// ------------------------------------------------------------ HTTP and JSON

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char u[8];
          std::snprintf(u, sizeof u, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += u;
        } else {
          out += c;
        }
    }
  }
  return out + '"';
}

struct response {
  int status;
  std::string body;  // JSON
};

response error(int status, std::string_view message) { return {status, "{\"error\":" + json_string(message) + "}"}; }

const char* reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    default:
      return "Service Unavailable";
  }
}

// query_value finds name's value in a query string ("a=1&delay=0.3").
std::optional<std::string_view> query_value(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    if (pair.size() > name.size() && pair.starts_with(name) && pair[name.size()] == '=') {
      return pair.substr(name.size() + 1);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

// get_bug answers GET /bugs/{id}[?delay=S].
response get_bug(connection_pool& pool, std::string_view id_text, std::string_view query) {
  long long id = 0;
  const auto [end, ec] = std::from_chars(id_text.data(), id_text.data() + id_text.size(), id);
  if (id_text.empty() || ec != std::errc() || end != id_text.data() + id_text.size() || id_text[0] == '-' ||
      id_text[0] == '+') {
    return error(400, "malformed bug id \"" + std::string(id_text) + "\": expected a positive integer");
  }
  double delay = 0;
  if (const auto d = query_value(query, "delay")) {
    const auto [dend, dec] = std::from_chars(d->data(), d->data() + d->size(), delay);
    if (d->empty() || dec != std::errc() || dend != d->data() + d->size() || !(delay >= 0 && delay <= 10)) {
      return error(400, "malformed delay \"" + std::string(*d) + "\": expected seconds, 0 to 10");
    }
  }
  connection_pool::lease conn = pool.acquire();
  if (delay > 0) {
    const std::string seconds = std::to_string(delay);
    const char* params[] = {seconds.c_str()};
    pg_result slept(PQexecParams(conn.get(), "SELECT pg_sleep($1)", 1, nullptr, params, nullptr, nullptr, 0));
    if (PQresultStatus(slept.get()) != PGRES_TUPLES_OK) {
      return error(503, "database: " + std::string(PQerrorMessage(conn.get())));
    }
  }
  const std::string id_param = std::to_string(id);
  const char* params[] = {id_param.c_str()};
  pg_result r(PQexecParams(conn.get(),
                           "SELECT id, title, status, severity, reporter, opened FROM bug_service.bugs WHERE id = $1",
                           1, nullptr, params, nullptr, nullptr, 0));
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
    return error(503, "database: " + std::string(PQerrorMessage(conn.get())));
  }
  if (PQntuples(r.get()) == 0) return error(404, "bug " + id_param + " not found");
  std::string body = "{\"id\":" + std::string(PQgetvalue(r.get(), 0, 0));
  for (int col = 1; col < PQnfields(r.get()); ++col) {
    // append, not operator+: GCC 12 at -O3 reports a false -Wrestrict in it (GCC bug 105329)
    body.append(",").append(json_string(PQfname(r.get(), col)));
    body.append(":").append(json_string(PQgetvalue(r.get(), 0, col)));
  }
  return {200, body + "}"};
}

// route answers one request.
response route(connection_pool& pool, std::string_view method, std::string_view target) {
  const std::size_t q = target.find('?');
  const std::string_view path = target.substr(0, q);
  const std::string_view query = q == std::string_view::npos ? "" : target.substr(q + 1);
  constexpr std::string_view prefix = "/bugs/";
  if (!path.starts_with(prefix)) return error(404, "no such endpoint: try GET /bugs/{id}");
  if (method != "GET") return error(405, "only GET is allowed here");
  return get_bug(pool, path.substr(prefix.size()), query);
}



void append_response(std::string& out, const response& r, bool close_after) {
  out += "HTTP/1.1 " + std::to_string(r.status) + " " + reason(r.status) +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(r.body.size()) + "\r\n";
  if (close_after) out += "Connection: close\r\n";
  out += "\r\n" + r.body;
}

// serve runs one HTTP connection: requests answered in order, kept alive
// until the client closes or asks to.
void serve(connection_pool& pool, grove::socket conn) {
  constexpr std::size_t max_head = 64 * 1024;
  std::string in;
  std::string out;
  char buf[16384];
  for (;;) {
    bool close_after = false;
    for (;;) {
      const std::size_t end = in.find("\r\n\r\n");
      if (end == std::string::npos) break;
      const std::string_view head(in.data(), end);
      const std::size_t line_end = head.find("\r\n");
      const std::string_view request_line = head.substr(0, line_end);
      const std::size_t sp1 = request_line.find(' ');
      const std::size_t sp2 = request_line.rfind(' ');
      if (sp1 == std::string_view::npos || sp2 <= sp1 || !request_line.substr(sp2 + 1).starts_with("HTTP/1.")) {
        append_response(out, error(400, "malformed request line"), true);
        conn.send_all(out);
        return;
      }
      const std::string_view headers = line_end == std::string_view::npos ? "" : head.substr(line_end + 2);
      std::size_t body = 0;
      if (const auto length = grove_examples::header_value(headers, "Content-Length"); !length.empty()) {
        std::from_chars(length.data(), length.data() + length.size(), body);
      }
      if (in.size() < end + 4 + body) break;  // the body is still coming
      close_after = grove_examples::wants_close(request_line, headers);
      append_response(out, route(pool, request_line.substr(0, sp1), request_line.substr(sp1 + 1, sp2 - sp1 - 1)),
                      close_after);
      in.erase(0, end + 4 + body);
      if (close_after) break;
    }
    if (!out.empty()) {
      conn.send_all(out);
      out.clear();
    }
    if (close_after || in.size() > max_head) return;
    const std::size_t n = conn.recv(buf, sizeof buf);
    if (n == 0) return;
    in.append(buf, n);
  }
}

int run(std::uint16_t port, std::optional<std::string> conninfo) {
  // SIGINT and SIGTERM arrive through a signalfd (serve_until_signal.hpp).
  const int sfd = examples::stop_signal_fd();

  std::optional<throwaway_cluster> cluster;
  std::optional<connection_pool> pool;
  try {
    if (!conninfo) conninfo = cluster.emplace().conninfo();
    pool.emplace(*conninfo, pool_size);
    create_schema(pool->acquire().get());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bug_service: %s\n", e.what());
    return 1;
  }

  grove::stream_server server("127.0.0.1:" + std::to_string(port),
                              [&pool](grove::socket conn, grove::address) { serve(*pool, std::move(conn)); });
  try {
    server.start();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bug_service: %s\n", e.what());
    return 1;
  }
  std::printf("listening on %s\n", server.address().to_string().c_str());
  std::fflush(stdout);
  auto watcher = grove::spawn([&] {
    grove::wait_readable(sfd);
    server.stop(1s);
  });
  server.serve_forever();
  watcher.join();
  grove::close(sfd);
  return 0;  // the pool closes its connections, then the cluster (if ours) stops
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3) {
    std::fprintf(stderr,
                 "usage: bug_service PORT [CONNINFO]   (PORT 0 picks a free port; without CONNINFO, a throwaway "
                 "PostgreSQL cluster)\n");
    return 2;
  }
  char* end = nullptr;
  const unsigned long port = std::strtoul(argv[1], &end, 10);
  if (*end != '\0' || port > 65535) {
    std::fprintf(stderr, "bug_service: \"%s\" is not a port (0 to 65535)\n", argv[1]);
    return 2;
  }
  return run(static_cast<std::uint16_t>(port), argc == 3 ? std::optional<std::string>(argv[2]) : std::nullopt);
}
