// Stock blocking client libraries made concurrent by linking grove::hooks:
// hiredis, libpq and libcurl, each used through its plain synchronous API from
// many tasks at once, against a real server this file starts (redis-server, a
// throwaway PostgreSQL cluster, an HTTP server task). And the bug_service
// example, run against the same PostgreSQL cluster.
//
// The servers come from Debian packages that test.sh installs (see
// cmake/debian-deps.sh): a missing one fails the case with the package to
// install, it never skips it.
#include <curl/curl.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <grove/grove.hpp>

#include "hooks_support.hpp"

extern char** environ;

using namespace std::chrono_literals;
using namespace grove_test;

namespace {

// ---------------------------------------------------------------- processes

// require_program fails the case, naming the Debian package to install, if
// path is not an executable.
void require_program(const std::string& path, const char* package) {
  REQUIRE_MESSAGE(::access(path.c_str(), X_OK) == 0, path << " is missing: install the Debian package " << package
                                                          << " (test.sh installs it, see cmake/debian-deps.sh)");
}

std::string file_text(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// server_user is who server processes run as: ourselves, or the postgres
// account when we are root (initdb and postgres refuse to run as root).
struct server_user {
  bool switch_to = false;
  uid_t uid = 0;
  gid_t gid = 0;
};

server_user postgres_user() {
  server_user u;
  if (::geteuid() != 0) return u;
  const passwd* pw = ::getpwnam("postgres");
  REQUIRE_MESSAGE(pw != nullptr,
                  "running as root, and there is no postgres account to run PostgreSQL as: install the Debian "
                  "package postgresql");
  u.switch_to = true;
  u.uid = pw->pw_uid;
  u.gid = pw->pw_gid;
  return u;
}

// child is a process this test started: stdout and stderr go to a log file;
// it is stopped (stop_signal, then SIGKILL after 10 s) when the child goes.
// It runs under `setpriv --pdeathsig KILL`, so a test that dies leaves no
// server behind.
class child {
 public:
  child(std::vector<std::string> argv, const std::string& log, const server_user& as = {}, int stop_signal = SIGTERM)
      : log_(log), stop_signal_(stop_signal) {
    require_program("/usr/bin/setpriv", "util-linux");
    std::vector<std::string> full{"/usr/bin/setpriv", "--pdeathsig", "KILL"};
    if (as.switch_to) {
      full.insert(full.end(),
                  {"--reuid=" + std::to_string(as.uid), "--regid=" + std::to_string(as.gid), "--clear-groups"});
    }
    full.push_back("--");
    full.insert(full.end(), argv.begin(), argv.end());
    std::vector<char*> args;
    for (auto& a : full) args.push_back(a.data());
    args.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    ::posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::posix_spawn_file_actions_adddup2(&actions, 1, 2);
    const int rc = ::posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
    ::posix_spawn_file_actions_destroy(&actions);
    REQUIRE_MESSAGE(rc == 0, "cannot start " << argv[0] << ": " << std::strerror(rc));
  }
  child(const child&) = delete;
  child& operator=(const child&) = delete;
  ~child() { stop(); }

  // exited tells (without waiting) whether it has ended.
  bool exited() {
    if (pid_ <= 0) return true;
    if (::waitpid(pid_, &status_, WNOHANG) == pid_) pid_ = -1;
    return pid_ <= 0;
  }
  // wait waits for it to end on its own (up to limit, then kills it) and
  // returns its wait status.
  int wait(std::chrono::milliseconds limit = 10s) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!exited()) {
      if (std::chrono::steady_clock::now() > until) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status_, 0);
        pid_ = -1;
        break;
      }
      ::usleep(10'000);  // cooperative in a task, libc's once the hub is gone
    }
    return status_;
  }
  // stop sends the stop signal, waits, and returns the wait status.
  int stop() {
    if (!exited()) ::kill(pid_, stop_signal_);
    return wait();
  }
  std::string log() const { return file_text(log_); }

 private:
  std::string log_;
  int stop_signal_;
  pid_t pid_ = -1;
  int status_ = 0;
};

// run_to_end runs argv (as `as`) to its end and returns its exit status; the
// wait happens on the hub's thread pool, so the hub keeps running.
int run_to_end(std::vector<std::string> argv, const std::string& log, const server_user& as = {}) {
  child c(std::move(argv), log, as);
  return grove::run_in_thread([&c] { return c.wait(std::chrono::minutes(2)); });
}

// wait_until polls ready() every 20 ms until it holds, the process p exits
// or 30 s pass; fails the case with what the process logged.
template <class Ready>
void wait_until(const char* what, child& p, Ready ready) {
  const auto until = std::chrono::steady_clock::now() + 30s;
  while (!ready()) {
    REQUIRE_MESSAGE(!p.exited(), what << " exited early; its log:\n" << p.log());
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < until, what << " did not get ready in 30 s; its log:\n"
                                                                   << p.log());
    grove::sleep(20ms);
  }
}

// free_port is a loopback TCP port where nothing listens now.
std::uint16_t free_port() {
  grove::socket s(AF_INET, SOCK_STREAM);
  s.bind(grove::address::ip("127.0.0.1", 0));
  return s.local_address().port();
}

// ---------------------------------------------------------------- redis

struct redis_free {
  void operator()(redisContext* c) const { redisFree(c); }
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using redis_conn = std::unique_ptr<redisContext, redis_free>;
using redis_reply = std::unique_ptr<redisReply, redis_free>;

// redis_server is a redis-server on a Unix socket in a temporary directory,
// persisting nothing.
class redis_server {
 public:
  redis_server() {
    require_program("/usr/bin/redis-server", "redis-server");
    server_.emplace(std::vector<std::string>{"/usr/bin/redis-server", "--port", "0", "--unixsocket", socket_,
                                             "--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--dir",
                                             dir_.path(), "--daemonize", "no", "--logfile", ""},
                    dir_.path() + "/redis.log");
    wait_until("redis-server", *server_, [&] {
      redis_conn c(redisConnectUnix(socket_.c_str()));
      if (!c || c->err) return false;
      redis_reply r(static_cast<redisReply*>(redisCommand(c.get(), "PING")));
      return r && r->type == REDIS_REPLY_STATUS && std::string_view(r->str) == "PONG";
    });
  }
  // connect opens a blocking hiredis connection; fails the case if it cannot.
  redis_conn connect() const {
    redis_conn c(redisConnectUnix(socket_.c_str()));
    REQUIRE(c);
    REQUIRE_MESSAGE(c->err == 0, "redisConnectUnix: " << c->errstr);
    return c;
  }
  const std::string& socket_path() const { return socket_; }

 private:
  temp_dir dir_;
  std::string socket_ = dir_.path() + "/redis.sock";
  std::optional<child> server_;
};

template <class... Args>
redis_reply command(redisContext* c, const char* format, Args... args) {
  redis_reply r(static_cast<redisReply*>(redisCommand(c, format, args...)));
  REQUIRE_MESSAGE(r, "hiredis: " << c->errstr);
  return r;
}

// ---------------------------------------------------------------- postgres

struct pq_finish {
  void operator()(PGconn* c) const { PQfinish(c); }
  void operator()(PGresult* r) const { PQclear(r); }
};
using pg_conn = std::unique_ptr<PGconn, pq_finish>;
using pg_result = std::unique_ptr<PGresult, pq_finish>;

// postgres_bindir finds the newest installed PostgreSQL server's programs.
std::string postgres_bindir() {
  std::string best;
  int best_version = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    const int v = std::atoi(e.path().filename().c_str());
    if (v > best_version && ::access((e.path() / "bin/postgres").c_str(), X_OK) == 0) {
      best_version = v;
      best = (e.path() / "bin").string();
    }
  }
  REQUIRE_MESSAGE(!best.empty(),
                  "no PostgreSQL server in /usr/lib/postgresql/*/bin: install the Debian package postgresql");
  return best;
}

// postgres_cluster is a throwaway PostgreSQL cluster: initdb in a temporary
// directory (owned by the postgres account when we are root), a postmaster
// listening on a Unix socket there and on 127.0.0.1, trust authentication for the
// superuser "grove". Built once, on first use, for every case of this file;
// stopped and removed at exit.
class postgres_cluster {
 public:
  postgres_cluster() {
    const std::string bin = postgres_bindir();
    const server_user as = postgres_user();
    if (as.switch_to) REQUIRE(::chown(dir_.path().c_str(), as.uid, as.gid) == 0);
    const std::string data = dir_.path() + "/data";
    const int rc = run_to_end({bin + "/initdb", "--pgdata=" + data, "--username=grove", "--auth=trust",
                               "--encoding=UTF8", "--no-sync", "--no-instructions"},
                              dir_.path() + "/initdb.log", as);
    REQUIRE_MESSAGE(rc == 0, "initdb failed; its log:\n" << file_text(dir_.path() + "/initdb.log"));
    // SIGINT is PostgreSQL's fast shutdown.
    server_.emplace(std::vector<std::string>{bin + "/postgres", "-D", data, "-k", dir_.path(), "-p",
                                             std::to_string(port_), "-c", "listen_addresses=127.0.0.1", "-c",
                                             "fsync=off", "-c", "max_connections=150", "-c", "shared_buffers=32MB"},
                    dir_.path() + "/postgres.log", as, SIGINT);
    wait_until("postgres", *server_, [&] { return PQping(conninfo().c_str()) == PQPING_OK; });
  }
  // conninfo is a libpq connection string for the database "postgres".
  std::string conninfo() const {
    return "host=" + dir_.path() + " port=" + std::to_string(port_) + " user=grove dbname=postgres";
  }
  // tcp_conninfo is a connection string for the same database over TCP to host.
  std::string tcp_conninfo(const std::string& host) const {
    return "host=" + host + " port=" + std::to_string(port_) + " user=grove dbname=postgres";
  }
  // connect opens a blocking libpq connection; fails the case if it cannot.
  pg_conn connect() const {
    pg_conn c(PQconnectdb(conninfo().c_str()));
    REQUIRE(c);
    REQUIRE_MESSAGE(PQstatus(c.get()) == CONNECTION_OK, "PQconnectdb: " << PQerrorMessage(c.get()));
    return c;
  }

 private:
  temp_dir dir_;
  std::uint16_t port_ = free_port();  // on 127.0.0.1, and naming the Unix socket
  std::optional<child> server_;
};

postgres_cluster& cluster() {
  static std::unique_ptr<postgres_cluster> c;
  if (!c) c = std::make_unique<postgres_cluster>();
  return *c;
}

pg_result exec(PGconn* c, const char* sql) { return pg_result(PQexec(c, sql)); }

// ---------------------------------------------------------------- HTTP

void curl_ready() {
  static const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
  REQUIRE(rc == CURLE_OK);
}

struct curl_cleanup {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
using curl_handle = std::unique_ptr<CURL, curl_cleanup>;

struct http_reply {
  CURLcode code = CURLE_OK;
  long status = 0;
  std::string body;
  std::string content_type;
  long new_connections = 0;  // 0: the transfer reused a kept-alive connection
};

std::size_t append_to(char* p, std::size_t size, std::size_t n, void* out) {
  static_cast<std::string*>(out)->append(p, size * n);
  return size * n;
}

// http_get fetches url with libcurl's blocking easy API, on handle h (so that
// it can keep its connection alive) or a fresh one, within timeout_ms.
http_reply http_get(const std::string& url, CURL* h = nullptr, long timeout_ms = 30'000) {
  curl_ready();
  curl_handle own;
  if (h == nullptr) {
    own.reset(curl_easy_init());
    h = own.get();
  }
  REQUIRE(h != nullptr);
  http_reply r;
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, append_to);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &r.body);
  r.code = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
  const char* type = nullptr;
  if (curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &type) == CURLE_OK && type != nullptr) r.content_type = type;
  curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &r.new_connections);
  return r;
}

// slow_page answers GET /<anything> after a delay with "page /<anything>"
// (GET /big: 2 MiB of a known pattern), then closes the connection.
void slow_page(grove::socket conn, grove::address, std::chrono::milliseconds delay) {
  std::string in;
  char buf[4096];
  while (in.find("\r\n\r\n") == std::string::npos) {
    const std::size_t n = conn.recv(buf, sizeof buf);
    if (n == 0) return;
    in.append(buf, n);
  }
  const std::size_t start = in.find(' ') + 1;
  const std::string path = in.substr(start, in.find(' ', start) - start);
  std::string body;
  if (path == "/big") {
    for (int i = 0; body.size() < (2u << 20); ++i) body += std::to_string(i) + ',';
  } else {
    body = "page " + path;
  }
  grove::sleep(delay);
  conn.send_all("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: " +
                std::to_string(body.size()) + "\r\n\r\n" + body);
}

// ---------------------------------------------------------------- bug_service

#ifdef GROVE_BUG_SERVICE
// bug_service_process is the example, running on a free port.
class bug_service_process {
 public:
  explicit bug_service_process(std::vector<std::string> args) {
    std::vector<std::string> argv{GROVE_BUG_SERVICE, "0"};
    argv.insert(argv.end(), args.begin(), args.end());
    proc_.emplace(std::move(argv), dir_.path() + "/bug_service.log");
    wait_until("bug_service", *proc_,
               [&] { return proc_->log().find("listening on 127.0.0.1:") != std::string::npos; });
    const std::string log = proc_->log();
    const std::size_t at = log.find("listening on 127.0.0.1:") + std::strlen("listening on 127.0.0.1:");
    base_ = "http://127.0.0.1:" + std::to_string(std::atoi(log.c_str() + at));
  }
  std::string url(const std::string& path) const { return base_ + path; }
  // stop sends SIGTERM and returns the exit status (-1: it did not exit normally).
  int stop() {
    const int status = proc_->stop();
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  std::string log() const { return proc_->log(); }

 private:
  temp_dir dir_;
  std::optional<child> proc_;
  std::string base_;
};
#endif

}  // namespace

// ================================================================ hiredis

TEST_CASE_FIXTURE(leak_check, "100 tasks blocking in hiredis BLPOP for 0.2 s wait together, not one after another") {
  redis_server redis;
  ticker t;
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<grove::task<int>> tasks;
  for (int i = 0; i < 100; ++i) {
    tasks.push_back(grove::spawn([&redis, i] {
      redis_conn c = redis.connect();
      redis_reply r = command(c.get(), "BLPOP grove:empty:%d 0.2", i);
      return r->type;  // nil: the timeout passed with nothing to pop
    }));
  }
  grove::joinall(tasks);
  const double took = seconds_since(t0);
  MESSAGE("100 concurrent BLPOP 0.2 through hiredis: " << took << " s (one after another: 20 s)");
  for (auto& task : tasks) CHECK(task.get() == REDIS_REPLY_NIL);
  CHECK(took >= 0.19);
  CHECK(took < 1.0);
  CHECK(t.ticks() >= 10);  // the hub ran other tasks meanwhile
}

TEST_CASE_FIXTURE(leak_check, "hiredis SET and GET from many tasks at once each get back what they stored") {
  redis_server redis;
  std::vector<grove::task<void>> tasks;
  for (int i = 0; i < 50; ++i) {
    tasks.push_back(grove::spawn([&redis, i] {
      redis_conn c = redis.connect();
      // Binary-safe values: NULs, CRLFs and a size that takes several reads.
      std::string value(100'000 + i, '\0');
      for (std::size_t k = 0; k < value.size(); ++k) value[k] = static_cast<char>((k * 31 + i) % 256);
      const std::string key = "grove:key:" + std::to_string(i);
      redis_reply set = command(c.get(), "SET %b %b", key.data(), key.size(), value.data(), value.size());
      CHECK(set->type == REDIS_REPLY_STATUS);
      CHECK(std::string_view(set->str) == "OK");
      for (int round = 0; round < 20; ++round) {
        redis_reply get = command(c.get(), "GET %b", key.data(), key.size());
        REQUIRE(get->type == REDIS_REPLY_STRING);
        CHECK(std::string_view(get->str, get->len) == value);
        // Pipelined: three commands written at once, three replies read.
        redisAppendCommand(c.get(), "INCR grove:counter");
        redisAppendCommand(c.get(), "STRLEN %b", key.data(), key.size());
        redisAppendCommand(c.get(), "PING");
        void* raw = nullptr;
        REQUIRE(redisGetReply(c.get(), &raw) == REDIS_OK);
        redis_reply incr(static_cast<redisReply*>(raw));
        CHECK(incr->type == REDIS_REPLY_INTEGER);
        REQUIRE(redisGetReply(c.get(), &raw) == REDIS_OK);
        redis_reply len(static_cast<redisReply*>(raw));
        CHECK(len->integer == static_cast<long long>(value.size()));
        REQUIRE(redisGetReply(c.get(), &raw) == REDIS_OK);
        redis_reply pong(static_cast<redisReply*>(raw));
        CHECK(std::string_view(pong->str) == "PONG");
      }
    }));
  }
  grove::joinall(tasks);
  for (auto& task : tasks) task.get();
  redis_conn c = redis.connect();
  redis_reply total = command(c.get(), "GET grove:counter");
  REQUIRE(total->type == REDIS_REPLY_STRING);
  CHECK(std::string(total->str) == "1000");
  redis_reply wrong = command(c.get(), "LPUSH grove:key:0 x");  // a string key: a server error, in band
  CHECK(wrong->type == REDIS_REPLY_ERROR);
  CHECK(std::string_view(wrong->str).starts_with("WRONGTYPE"));
}

TEST_CASE_FIXTURE(leak_check, "hiredis reports a missing server as it would without the hooks") {
  redis_server redis;
  redis_conn c(redisConnectUnix((redis.socket_path() + ".nothing-here").c_str()));
  REQUIRE(c);
  CHECK(c->err == REDIS_ERR_IO);
  const std::uint16_t port = free_port();
  redis_conn tcp(redisConnect("127.0.0.1", port));
  REQUIRE(tcp);
  CHECK(tcp->err == REDIS_ERR_IO);
  CHECK(std::string_view(tcp->errstr).find("refused") != std::string_view::npos);
}

TEST_CASE_FIXTURE(leak_check, "hiredis's own command timeout (SO_RCVTIMEO) still ends a blocking call, as natively") {
  redis_server redis;
  redis_conn c = redis.connect();
  REQUIRE(redisSetTimeout(c.get(), timeval{0, 150'000}) == REDIS_OK);
  ticker t;
  const auto t0 = std::chrono::steady_clock::now();
  redis_reply r(static_cast<redisReply*>(redisCommand(c.get(), "BLPOP grove:never 0")));  // the server never answers
  const double took = seconds_since(t0);
  CHECK(!r);
  CHECK(c->err == REDIS_ERR_IO);
  const std::string hooked = c->errstr;
  const std::string native = natively([&] {
    redis_conn n(redisConnectUnix(redis.socket_path().c_str()));
    redisSetTimeout(n.get(), timeval{0, 150'000});
    redis_reply nr(static_cast<redisReply*>(redisCommand(n.get(), "BLPOP grove:never 0")));
    return std::string(n->errstr);
  });
  CHECK(hooked == native);
  CHECK(took >= 0.14);
  CHECK(took < 1.0);
  CHECK(t.ticks() >= 10);
}

TEST_CASE_FIXTURE(leak_check, "a task blocked in hiredis can be killed, and the others go on") {
  redis_server redis;
  bool unwound = false;
  auto stuck = grove::spawn([&] {
    struct mark {
      bool* done;
      ~mark() { *done = true; }
    } m{&unwound};
    redis_conn c = redis.connect();
    redis_reply r = command(c.get(), "BLPOP grove:never 0");  // forever
  });
  auto other = grove::spawn([&] {
    redis_conn c = redis.connect();
    return command(c.get(), "BLPOP grove:other 0.1")->type;
  });
  grove::sleep(50ms);
  stuck.kill();
  CHECK(stuck.ready());
  CHECK(unwound);  // its stack unwound through hiredis, freeing the connection
  CHECK(other.get() == REDIS_REPLY_NIL);
}

// ================================================================ libpq

TEST_CASE_FIXTURE(leak_check, "50 libpq connections in SELECT pg_sleep(0.2) wait together, not one after another") {
  postgres_cluster& pg = cluster();
  std::vector<pg_conn> conns(50);
  auto t0 = std::chrono::steady_clock::now();
  {
    std::vector<grove::task<void>> connecting;
    for (auto& c : conns) connecting.push_back(grove::spawn([&pg, &c] { c = pg.connect(); }));
    grove::joinall(connecting);
    for (auto& task : connecting) task.get();
  }
  MESSAGE("50 concurrent PQconnectdb: " << seconds_since(t0) << " s");
  ticker t;
  t0 = std::chrono::steady_clock::now();
  std::vector<grove::task<ExecStatusType>> tasks;
  for (auto& c : conns) {
    tasks.push_back(grove::spawn([&c] { return PQresultStatus(exec(c.get(), "SELECT pg_sleep(0.2)").get()); }));
  }
  grove::joinall(tasks);
  const double took = seconds_since(t0);
  MESSAGE("50 concurrent SELECT pg_sleep(0.2) through libpq: " << took << " s (one after another: 10 s)");
  for (auto& task : tasks) CHECK(task.get() == PGRES_TUPLES_OK);
  CHECK(took >= 0.19);
  CHECK(took < 1.5);
  CHECK(t.ticks() >= 10);
}

TEST_CASE_FIXTURE(leak_check, "libpq queries from many tasks at once each get their own results and errors") {
  postgres_cluster& pg = cluster();
  std::vector<grove::task<void>> tasks;
  for (int i = 1; i <= 20; ++i) {
    tasks.push_back(grove::spawn([&pg, i] {
      pg_conn c = pg.connect();
      const std::string n = std::to_string(i);
      const char* params[] = {n.c_str()};
      for (int round = 0; round < 10; ++round) {
        // A result of i * 50 kB: many reads, interleaved with the other tasks'.
        pg_result r(PQexecParams(c.get(), "SELECT $1::int * 2, repeat(chr(64 + $1::int), $1::int * 50000)", 1, nullptr,
                                 params, nullptr, nullptr, 0));
        REQUIRE_MESSAGE(PQresultStatus(r.get()) == PGRES_TUPLES_OK, PQerrorMessage(c.get()));
        CHECK(std::atoi(PQgetvalue(r.get(), 0, 0)) == 2 * i);
        CHECK(PQgetlength(r.get(), 0, 1) == i * 50000);
        CHECK(PQgetvalue(r.get(), 0, 1)[i * 50000 - 1] == static_cast<char>(64 + i));
      }
      // An error leaves the connection usable, as it would without the hooks.
      pg_result bad = exec(c.get(), "SELEC 1");
      CHECK(PQresultStatus(bad.get()) == PGRES_FATAL_ERROR);
      CHECK(std::string_view(PQresultErrorField(bad.get(), PG_DIAG_SQLSTATE)) == "42601");
      pg_result good = exec(c.get(), "SELECT 'still here'");
      REQUIRE(PQresultStatus(good.get()) == PGRES_TUPLES_OK);
      CHECK(std::string_view(PQgetvalue(good.get(), 0, 0)) == "still here");
    }));
  }
  grove::joinall(tasks);
  for (auto& task : tasks) task.get();
}

TEST_CASE_FIXTURE(leak_check, "PQcancel from another task stops a running libpq query") {
  postgres_cluster& pg = cluster();
  pg_conn c = pg.connect();
  auto query = grove::spawn([&] { return exec(c.get(), "SELECT pg_sleep(30)"); });
  grove::sleep(200ms);
  const auto t0 = std::chrono::steady_clock::now();
  PGcancel* cancel = PQgetCancel(c.get());
  REQUIRE(cancel != nullptr);
  char why[256] = {};
  CHECK(PQcancel(cancel, why, sizeof why) == 1);
  PQfreeCancel(cancel);
  pg_result r = query.get();
  CHECK(seconds_since(t0) < 5.0);
  CHECK(PQresultStatus(r.get()) == PGRES_FATAL_ERROR);
  CHECK(std::string_view(PQresultErrorField(r.get(), PG_DIAG_SQLSTATE)) == "57014");  // query_canceled
}

TEST_CASE_FIXTURE(leak_check, "libpq over TCP to \"localhost\" resolves and connects from many tasks at once") {
  postgres_cluster& pg = cluster();
  std::vector<grove::task<std::string>> tasks;
  for (int i = 0; i < 10; ++i) {
    tasks.push_back(grove::spawn([&pg] {
      pg_conn c(PQconnectdb(pg.tcp_conninfo("localhost").c_str()));
      REQUIRE_MESSAGE(PQstatus(c.get()) == CONNECTION_OK, PQerrorMessage(c.get()));
      pg_result r = exec(c.get(), "SELECT inet_client_addr()::text, pg_sleep(0.2)");
      REQUIRE(PQresultStatus(r.get()) == PGRES_TUPLES_OK);
      return std::string(PQgetvalue(r.get(), 0, 0));
    }));
  }
  const auto t0 = std::chrono::steady_clock::now();
  grove::joinall(tasks);
  CHECK(seconds_since(t0) < 1.5);
  for (auto& t : tasks) {
    const std::string client = t.get();
    CHECK_MESSAGE((client == "127.0.0.1/32" || client == "::1/128"), client);
  }
}

// ================================================================ libcurl

TEST_CASE_FIXTURE(leak_check, "20 libcurl easy transfers of a page served after 0.2 s overlap, each with its body") {
  grove::stream_server server("127.0.0.1:0",
                              [](grove::socket conn, grove::address peer) { slow_page(std::move(conn), peer, 200ms); });
  server.start();
  const std::string base = "http://127.0.0.1:" + std::to_string(server.address().port());
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<grove::task<http_reply>> tasks;
  for (int i = 0; i < 20; ++i) {
    tasks.push_back(grove::spawn([&base, i] { return http_get(base + "/item/" + std::to_string(i)); }));
  }
  auto big = grove::spawn([&base] { return http_get(base + "/big"); });
  grove::joinall(tasks);
  const double took = seconds_since(t0);
  big.join();
  MESSAGE("20 concurrent curl_easy_perform of a 0.2 s page: " << took << " s (one after another: 4 s)");
  for (int i = 0; i < 20; ++i) {
    const http_reply r = tasks[static_cast<std::size_t>(i)].get();
    CHECK_MESSAGE(r.code == CURLE_OK, curl_easy_strerror(r.code));
    CHECK(r.status == 200);
    CHECK(r.body == "page /item/" + std::to_string(i));
  }
  const http_reply b = big.get();
  CHECK(b.code == CURLE_OK);
  std::string expected;
  for (int i = 0; expected.size() < (2u << 20); ++i) expected += std::to_string(i) + ',';
  CHECK(b.body.size() == expected.size());
  CHECK(b.body == expected);
  CHECK(took >= 0.19);
  CHECK(took < 1.5);
  server.stop();
}

TEST_CASE_FIXTURE(leak_check,
                  "libcurl's own timeout still fires, and \"localhost\" resolves, while other transfers go on") {
  grove::stream_server server("127.0.0.1:0",
                              [](grove::socket conn, grove::address peer) { slow_page(std::move(conn), peer, 300ms); });
  server.start();
  const std::string port = std::to_string(server.address().port());
  curl_ready();
  auto impatient = grove::spawn([&] {
    const auto t0 = std::chrono::steady_clock::now();
    const http_reply r = http_get("http://127.0.0.1:" + port + "/impatient", nullptr, 100);
    return std::pair(r.code, seconds_since(t0));
  });
  auto by_name = grove::spawn([&] { return http_get("http://localhost:" + port + "/by-name"); });
  const auto [code, took] = impatient.get();
  CHECK(code == CURLE_OPERATION_TIMEDOUT);
  CHECK(took >= 0.09);
  CHECK(took < 0.29);
  const http_reply r = by_name.get();
  CHECK_MESSAGE(r.code == CURLE_OK, curl_easy_strerror(r.code));
  CHECK(r.body == "page /by-name");
  server.stop();
}

// ================================================================ bug_service

#ifdef GROVE_BUG_SERVICE
TEST_CASE_FIXTURE(leak_check,
                  "bug_service answers 200, 404 and 400 in JSON from PostgreSQL over kept-alive connections") {
  bug_service_process service({cluster().conninfo()});
  curl_ready();
  curl_handle h(curl_easy_init());
  const http_reply found = http_get(service.url("/bugs/1"), h.get());
  CHECK_MESSAGE(found.code == CURLE_OK, curl_easy_strerror(found.code));
  CHECK(found.status == 200);
  CHECK(found.content_type == "application/json");
  CHECK(found.body.starts_with("{\"id\":1,"));
  CHECK(found.body.find("\"title\":") != std::string::npos);
  CHECK(found.body.find("\"status\":") != std::string::npos);
  const http_reply other = http_get(service.url("/bugs/3"), h.get());
  CHECK(other.status == 200);
  CHECK(other.body.starts_with("{\"id\":3,"));
  CHECK(other.new_connections == 0);  // kept alive
  const http_reply missing = http_get(service.url("/bugs/424242"), h.get());
  CHECK(missing.status == 404);
  CHECK(missing.content_type == "application/json");
  CHECK(missing.body.find("\"error\":") != std::string::npos);
  CHECK(missing.new_connections == 0);
  for (const char* bad : {"/bugs/abc", "/bugs/12x", "/bugs/", "/bugs/99999999999999999999999", "/bugs/1?delay=x"}) {
    const http_reply r = http_get(service.url(bad), h.get());
    CHECK_MESSAGE(r.status == 400, bad);
    CHECK(r.content_type == "application/json");
    CHECK(r.body.find("\"error\":") != std::string::npos);
  }
  const http_reply nowhere = http_get(service.url("/nowhere"), h.get());
  CHECK(nowhere.status == 404);
  CHECK(service.stop() == 0);
}

TEST_CASE_FIXTURE(leak_check,
                  "bug_service serves slow requests concurrently, as many at once as its connection pool holds") {
  bug_service_process service({cluster().conninfo()});
  // 20 requests whose query takes 0.3 s, over a pool of 10 connections: two
  // rounds (0.6 s), not twenty (6 s), and never one (which would mean the pool
  // let more than 10 queries run at once).
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<grove::task<http_reply>> tasks;
  for (int i = 0; i < 20; ++i) {
    tasks.push_back(grove::spawn(
        [&service, i] { return http_get(service.url("/bugs/" + std::to_string(1 + i % 5) + "?delay=0.3")); }));
  }
  grove::joinall(tasks);
  const double took = seconds_since(t0);
  MESSAGE("20 concurrent 0.3 s requests to bug_service: " << took << " s");
  for (int i = 0; i < 20; ++i) {
    const http_reply r = tasks[static_cast<std::size_t>(i)].get();
    CHECK_MESSAGE(r.code == CURLE_OK, curl_easy_strerror(r.code));
    CHECK(r.status == 200);
    CHECK(r.body.starts_with("{\"id\":" + std::to_string(1 + i % 5) + ","));
  }
  CHECK(took >= 0.59);
  CHECK(took < 2.0);
  CHECK(service.stop() == 0);
}

TEST_CASE_FIXTURE(leak_check,
                  "bug_service without CONNINFO starts its own PostgreSQL cluster and removes it on SIGTERM") {
  bug_service_process service({});
  const http_reply r = http_get(service.url("/bugs/2"));
  CHECK_MESSAGE(r.code == CURLE_OK, curl_easy_strerror(r.code));
  CHECK(r.status == 200);
  CHECK(r.body.starts_with("{\"id\":2,"));
  const std::string log = service.log();
  const std::size_t at = log.find("throwaway PostgreSQL cluster in ");
  REQUIRE_MESSAGE(at != std::string::npos, log);
  const std::size_t from = at + std::strlen("throwaway PostgreSQL cluster in ");
  const std::string dir = log.substr(from, log.find_first_of(" \n", from) - from);
  CHECK(std::filesystem::exists(dir));
  CHECK(service.stop() == 0);
  CHECK_MESSAGE(!std::filesystem::exists(dir), log);
}
#endif
