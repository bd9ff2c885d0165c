// Real, unmodified Debian programs under grove-run, compared with native runs:
// curl and wget against a local HTTP server, nc moving a large file, redis-cli
// (commands, and --pipe mass insertion) and redis-benchmark against a local
// redis-server; and threaded programs whose pthreads become
// grove tasks on one OS thread: Python threads sleeping, Python's
// ThreadingHTTPServer under load, siege's pthread-per-user client, xz -T4.
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../runtime/io_support.hpp"
#include "../support.hpp"

using namespace grove_test;
using namespace std::chrono_literals;

namespace {

const std::string grove_run = GROVE_RUN;

// background is a server process that lives as long as the object.
class background {
 public:
  explicit background(const std::vector<std::string>& argv) {
    int out[2];
    REQUIRE(::pipe(out) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      ::close(out[0]);
      ::close(out[1]);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(out[1]);
    out_ = out[0];
  }
  background(const background&) = delete;
  background& operator=(const background&) = delete;
  // The destructor ends the process with SIGTERM, and SIGKILL if it is still
  // there after 10 s: a server that ignores SIGTERM fails the test, never hangs it.
  ~background() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      if (!reaped_within(10s)) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
      }
    }
    ::close(out_);
  }
  // wait waits for the process to exit and returns its exit status; after
  // limit it kills the process with SIGKILL (status 128 + 9).
  int wait(std::chrono::seconds limit = 120s) {
    if (!reaped_within(limit)) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status_, 0);
    }
    pid_ = -1;
    return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
  }
  // first_line reads the first line the server prints, waiting at most 60 s
  // for it (then it returns what it has).
  std::string first_line() {
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    for (;;) {
      pollfd p{out_, POLLIN, 0};
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) return line;
      char c;
      if (::read(out_, &c, 1) != 1 || c == '\n') return line;
      line += c;
    }
  }
  // alive is true while the process has not exited.
  bool alive() {
    if (pid_ > 0 && ::waitpid(pid_, &status_, WNOHANG) == pid_) pid_ = -1;
    return pid_ > 0;
  }

 private:
  // reaped_within waits up to limit for the process to exit, and reaps it.
  bool reaped_within(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (::waitpid(pid_, &status_, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }

  pid_t pid_ = -1;
  int out_ = -1;
  int status_ = 0;
};

// free_port returns a TCP port on 127.0.0.1 that nothing uses right now.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  ::close(fd);
  return ntohs(a.sin_port);
}

void require_program(const std::string& path) {
  REQUIRE_MESSAGE(::access(path.c_str(), X_OK) == 0, path << " is missing: test.sh installs it (cmake/debian-deps.sh)");
}

std::string file_contents(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// wait_for_port waits until something accepts connections on port.
void wait_for_port(int port) {
  for (int i = 0; i < 500; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    const bool up = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    if (up) return;
    std::this_thread::sleep_for(10ms);
  }
  FAIL("nothing listens on port " << port);
}

// wait_for_listener waits until a socket listens on port (without connecting:
// a connection would be the one nc -l serves).
void wait_for_listener(int port) {
  char wanted[8];
  std::snprintf(wanted, sizeof wanted, ":%04X", port);
  for (int i = 0; i < 500; ++i) {
    std::ifstream tcp("/proc/net/tcp");
    std::string line;
    std::getline(tcp, line);  // the header
    while (std::getline(tcp, line)) {
      std::istringstream fields(line);  // sl local_address rem_address st ...
      std::string sl, local, remote, state;
      fields >> sl >> local >> remote >> state;
      if (local.size() >= 5 && local.substr(local.size() - 5) == wanted && state == "0A") return;  // 0A: LISTEN
    }
    std::this_thread::sleep_for(10ms);
  }
  FAIL("nothing listens on port " << port);
}

// redis_server is a private redis-server on a free loopback port, with
// nothing saved to disk, for as long as the object lives.
struct redis_server {
  temp_dir dir;
  std::string port = std::to_string(free_port());
  background process{{"/usr/bin/redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly",
                      "no", "--dir", dir.path(), "--loglevel", "warning"}};
  redis_server() { wait_for_port(std::stoi(port)); }
  // ask runs one command with redis-cli, natively, and returns its output.
  std::string ask(const std::vector<std::string>& command) const {
    std::vector<std::string> argv = {"/usr/bin/redis-cli", "-p", port};
    argv.insert(argv.end(), command.begin(), command.end());
    return run_program(argv).out;
  }
};

std::vector<std::string> under_grove_run(const std::vector<std::string>& argv) {
  std::vector<std::string> under = {grove_run};
  under.insert(under.end(), argv.begin(), argv.end());
  return under;
}

// Debian's interpreter, not whatever python3 comes first in PATH; -I ignores
// the user's environment and site-packages.
const std::string python = "/usr/bin/python3";

// python_sleepers starts 200 threads that each sleep 1 s, then joins them.
constexpr const char* python_sleepers = R"(import threading
import time

woke = []
lock = threading.Lock()


def sleeper(i):
    time.sleep(1)
    with lock:
        woke.append(i)


threads = [threading.Thread(target=sleeper, args=(i,)) for i in range(200)]
for t in threads:
    t.start()
print(f"{threading.active_count() - 1} threads sleeping", flush=True)
for t in threads:
    t.join()
print(f"{len(woke)} threads woke, each once: {sorted(woke) == list(range(200))}")
)";

// python_http_server is http.server.ThreadingHTTPServer (a thread per
// request) on an ephemeral port; it prints "listening on 127.0.0.1:PORT".
constexpr const char* python_http_server = R"(import http.server
import time


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 1024  # socketserver's 5 makes 200 clients retry their SYNs for seconds


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(0.05)  # every handler thread blocks a while: many are waiting at once
        body = b"Hello from Python threads\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


with Server(("127.0.0.1", 0), Handler) as server:
    print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()
)";

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
  REQUIRE(f.good());
}

// siege_setup is a HOME for siege (it keeps cookies in ~/.siege) and an rc
// file, so that a run reads neither the user's ~/.siege nor /etc/siege.
struct siege_setup {
  temp_dir dir;
  std::string rc = dir.path() + "/siegerc";
  std::string home = "HOME=" + dir.path();
  siege_setup() {
    std::filesystem::create_directory(dir.path() + "/.siege");
    write_file(rc,
               "protocol = HTTP/1.1\nlogging = false\nshow-logfile = false\nverbose = false\nparser = false\n"
               "timeout = 30\nfailures = 1000000\nlimit = 1000\n");
  }
  // argv is siege -b (no delay between requests) with `users` simulated users
  // each making `reps` requests to url, printing its summary as JSON (-j).
  std::vector<std::string> argv(int users, int reps, const std::string& url) const {
    return {"/usr/bin/siege", "-R", rc, "-b", "-j", "-c", std::to_string(users), "-r", std::to_string(reps), url};
  }
};

// siege_number reads a field of siege's JSON summary ("transactions",
// "availability", "failed_transactions"...); -1 when it is missing.
double siege_number(const std::string& out, const std::string& field) {
  const std::string key = "\"" + field + "\":";
  const std::size_t at = out.find(key);
  if (at == std::string::npos) return -1;
  return std::strtod(out.c_str() + at + key.size(), nullptr);
}

// generated_text is `size` bytes of words drawn from a fixed vocabulary: text
// that compresses like text, the same on every run.
std::string generated_text(std::size_t size) {
  std::mt19937_64 random(7);
  std::vector<std::string> words(3000);
  for (auto& w : words) {
    const std::size_t length = 2 + random() % 9;
    for (std::size_t i = 0; i < length; ++i) w += static_cast<char>('a' + random() % 26);
  }
  std::string text;
  text.reserve(size + 16);
  while (text.size() < size) {
    text += words[random() % words.size()];
    text += random() % 12 == 0 ? '\n' : ' ';
  }
  text.resize(size);
  return text;
}

}  // namespace

TEST_CASE("curl and wget fetch the same page natively and under grove-run") {
  require_program("/usr/bin/curl");
  require_program("/usr/bin/wget");
  background server({GROVE_HTTP_HELLO, "0"});
  const std::string line = server.first_line();  // "listening on 127.0.0.1:PORT"
  const std::string url = "http://" + line.substr(line.rfind(' ') + 1) + "/";
  for (const std::vector<std::string>& fetch :
       {std::vector<std::string>{"/usr/bin/curl", "-sS", url, url}, {"/usr/bin/wget", "-q", "-O", "-", url}}) {
    CAPTURE(fetch[0]);
    const run_result native = run_program(fetch);
    std::vector<std::string> under = {grove_run};
    under.insert(under.end(), fetch.begin(), fetch.end());
    const run_result grove = run_program(under);
    CHECK(native.exit_code == 0);
    CHECK(native.out.find("Hello, World!") != std::string::npos);
    CHECK(grove.exit_code == native.exit_code);
    CHECK(grove.out == native.out);
  }
}

TEST_CASE("nc moves a large file under grove-run with an unchanged checksum, in both directions") {
  require_program("/usr/bin/nc");
  temp_dir dir;
  const std::string data = dir.path() + "/data";
  {
    std::mt19937_64 random(42);
    std::string bytes(24 << 20, '\0');
    for (std::size_t i = 0; i + 8 <= bytes.size(); i += 8) {
      const std::uint64_t v = random();
      std::memcpy(&bytes[i], &v, 8);
    }
    std::ofstream(data, std::ios::binary) << bytes;
  }
  const std::string expected = file_contents(data);
  for (const bool grove_receives : {true, false}) {
    CAPTURE(grove_receives);
    const std::string port = std::to_string(free_port());
    const std::string received = dir.path() + "/received";
    const std::string under = grove_run + " ";
    background receiver({"/bin/sh", "-c",
                         (grove_receives ? under : "") + "/usr/bin/nc -l 127.0.0.1 " + port + " > " + received});
    wait_for_listener(std::stoi(port));
    const run_result sender = run_program(
        {"/bin/sh", "-c", (grove_receives ? "" : under) + "/usr/bin/nc -N 127.0.0.1 " + port + " < " + data});
    CHECK(sender.exit_code == 0);
    CHECK(receiver.wait() == 0);
    const std::string got = file_contents(received);
    CHECK(got.size() == expected.size());
    CHECK(got == expected);
  }
}

TEST_CASE("redis-cli gives the same answers natively and under grove-run") {
  require_program("/usr/bin/redis-server");
  require_program("/usr/bin/redis-cli");
  const redis_server server;
  const std::string& p = server.port;
  const std::vector<std::vector<std::string>> commands = {
      {"SET", "grove", "green threads"}, {"GET", "grove"}, {"RPUSH", "list", "a", "b", "c"},
      {"LRANGE", "list", "0", "-1"},     {"INCR", "counter"}, {"BLPOP", "empty", "0.2"}};
  for (const auto& command : commands) {
    CAPTURE(command[0]);
    std::vector<std::string> native = {"/usr/bin/redis-cli", "-p", p};
    native.insert(native.end(), command.begin(), command.end());
    std::vector<std::string> under = {grove_run};
    under.insert(under.end(), native.begin(), native.end());
    const run_result a = run_program(native);
    if (command[0] == "INCR" || command[0] == "RPUSH") {  // not idempotent: the second run sees the first's effect
      const run_result b = run_program(under);
      CHECK(a.out == (command[0] == "INCR" ? "1\n" : "3\n"));
      CHECK(b.out == (command[0] == "INCR" ? "2\n" : "6\n"));
      continue;
    }
    const run_result b = run_program(under);
    CHECK(a.exit_code == 0);
    CHECK(b.exit_code == a.exit_code);
    CHECK(b.out == a.out);
  }
}

TEST_CASE(
    "redis-cli --pipe sends 5000 SETs from a file or a pipe and reads every reply, natively and under grove-run") {
  require_program("/usr/bin/redis-server");
  require_program("/usr/bin/redis-cli");
  const redis_server server;
  temp_dir dir;
  // The same commands in the Redis protocol (read from a file) and inline
  // (through a pipe): --pipe takes either.
  const int count = 5000;
  std::string protocol, inline_commands;
  for (int i = 0; i < count; ++i) {
    const std::string key = "key:" + std::to_string(i), value = "value-" + std::to_string(i);
    protocol += "*3\r\n$3\r\nSET\r\n$" + std::to_string(key.size()) + "\r\n" + key + "\r\n$" +
                std::to_string(value.size()) + "\r\n" + value + "\r\n";
    inline_commands += "SET " + key + " " + value + "\n";
  }
  const std::string protocol_file = dir.path() + "/commands.resp", inline_file = dir.path() + "/commands.txt";
  write_file(protocol_file, protocol);
  write_file(inline_file, inline_commands);
  for (const bool green : {false, true}) {
    for (const bool from_pipe : {false, true}) {
      CAPTURE(green);
      CAPTURE(from_pipe);
      REQUIRE(server.ask({"FLUSHALL"}) == "OK\n");
      const std::string cli = (green ? grove_run + " " : "") + "/usr/bin/redis-cli -p " + server.port + " --pipe";
      const std::string line = from_pipe ? "cat " + inline_file + " | " + cli : "exec " + cli + " < " + protocol_file;
      const limited_result r = run_limited({"/bin/sh", "-c", line}, 60s);
      CAPTURE(r.out);
      CHECK_FALSE(r.timed_out);
      CHECK(r.exit_code == 0);
      CHECK(r.out.find("errors: 0, replies: " + std::to_string(count) + "\n") != std::string::npos);
      CHECK(server.ask({"DBSIZE"}) == std::to_string(count) + "\n");
      CHECK(server.ask({"GET", "key:" + std::to_string(count - 1)}) == "value-" + std::to_string(count - 1) + "\n");
    }
  }
}

TEST_CASE(
    "redis-benchmark finishes 2000 SETs from 50 clients natively and under grove-run: on 4 threads, on one, and "
    "pipelined") {
  require_program("/usr/bin/redis-server");
  require_program("/usr/bin/redis-benchmark");
  const redis_server server;
  // -q's summary: "SET: 7812.50 requests per second, p50=0.159 msec".
  const std::regex summary(R"((^|[\r\n])SET: ([0-9.]+) requests per second)");
  const std::vector<std::vector<std::string>> variants = {{"--threads", "4"}, {}, {"-P", "16"}, {"--threads", "4", "-P", "16"}};
  for (const auto& variant : variants) {
    std::vector<std::string> argv = {"/usr/bin/redis-benchmark", "-p", server.port, "-n", "2000", "-c", "50",
                                     "-t", "set", "-q"};
    argv.insert(argv.end(), variant.begin(), variant.end());
    std::string options;
    for (const auto& o : variant) options += o + " ";
    for (const bool green : {false, true}) {
      CAPTURE(options);
      CAPTURE(green);
      const limited_result r = run_limited(green ? under_grove_run(argv) : argv, 60s);
      CAPTURE(r.out);
      CHECK_FALSE(r.timed_out);
      CHECK(r.exit_code == 0);
      std::smatch m;
      REQUIRE(std::regex_search(r.out, m, summary));
      CHECK(std::stod(m[2].str()) > 0);
      if (green) CHECK(r.max_threads <= 3);  // its threads are green
    }
  }
}

TEST_CASE("200 Python threads each sleeping 1 s finish in under 2 s on at most 3 OS threads under grove-run") {
  require_program(python);
  temp_dir dir;
  const std::string script = dir.path() + "/sleepers.py";
  write_file(script, python_sleepers);
  const std::vector<std::string> argv = {python, "-I", script};
  const std::string expected = "200 threads sleeping\n200 threads woke, each once: True\n";

  const limited_result native = run_limited(argv, 60s, {}, "threads sleeping");
  CHECK(native.out == expected);
  CHECK(native.exit_code == 0);
  CHECK(native.max_threads > 200);  // the sampling sees the threads a native run has

  const limited_result grove = run_limited(under_grove_run(argv), 60s, {}, "threads sleeping");
  CHECK_FALSE(grove.timed_out);
  CHECK(grove.out == native.out);
  CHECK(grove.exit_code == native.exit_code);
  CHECK(grove.signal == native.signal);
  CHECK(grove.max_threads <= 3);
  CHECK(grove.seconds >= 1.0);  // they did sleep
  CHECK(grove.seconds < 2.0);   // together

  // GROVE_THREADS=native keeps every thread an OS thread, with the same output.
  const limited_result os = run_limited(under_grove_run(argv), 60s, {"GROVE_THREADS=native"}, "threads sleeping");
  CHECK_FALSE(os.timed_out);
  CHECK(os.out == native.out);
  CHECK(os.exit_code == native.exit_code);
  CHECK(os.max_threads > 200);
}

TEST_CASE("CPython's test_fork1 (fork while threads run, the child sees them gone) passes under grove-run") {
  require_program(python);
  REQUIRE_MESSAGE(::access("/usr/lib/python3.11/test/test_fork1.py", R_OK) == 0,
                  "libpython3.11-testsuite is missing: test.sh installs it (cmake/debian-deps.sh)");
  const std::vector<std::string> argv = {python, "-I", "-m", "test", "test_fork1"};
  const limited_result grove = run_limited(under_grove_run(argv), 120s);
  INFO(grove.out);
  CHECK_FALSE(grove.timed_out);
  CHECK(grove.exit_code == 0);
  CHECK(grove.out.find("1 test OK.") != std::string::npos);
}

TEST_CASE("Python's ThreadingHTTPServer under grove-run serves 200 concurrent siege users without a failed request") {
  require_program(python);
  require_program("/usr/bin/siege");
  temp_dir dir;
  const std::string script = dir.path() + "/server.py";
  write_file(script, python_http_server);
  const siege_setup siege;
  constexpr int users = 200;
  constexpr int reps = 5;
  for (const bool green : {false, true}) {
    CAPTURE(green);
    const std::vector<std::string> server_argv = {python, "-I", script};
    background server(green ? under_grove_run(server_argv) : server_argv);
    const std::string line = server.first_line();  // "listening on 127.0.0.1:PORT"
    REQUIRE(line.rfind("listening on ", 0) == 0);
    const std::string url = "http://" + line.substr(line.rfind(' ') + 1) + "/";
    // siege itself runs natively: the load comes from outside the server.
    const limited_result load = run_limited(siege.argv(users, reps, url), 60s, {siege.home});
    CAPTURE(load.out);
    CHECK_FALSE(load.timed_out);
    CHECK(load.exit_code == 0);
    CHECK(siege_number(load.out, "transactions") == users * reps);
    CHECK(siege_number(load.out, "successful_transactions") == users * reps);
    CHECK(siege_number(load.out, "failed_transactions") == 0);
    CHECK(siege_number(load.out, "availability") == 100.0);
    // One handler at a time would take users * reps * 0.05 s = 50 s.
    CHECK(load.seconds < 25.0);
    CHECK(server.alive());  // the server survived the load
  }
}

TEST_CASE("siege's 100 user threads under grove-run: 100% available, native transaction count, at most 3 OS threads") {
  require_program("/usr/bin/siege");
  background server({GROVE_HTTP_HELLO, "0"});
  const std::string line = server.first_line();  // "listening on 127.0.0.1:PORT"
  REQUIRE(line.rfind("listening on ", 0) == 0);
  const std::string url = "http://" + line.substr(line.rfind(' ') + 1) + "/";
  const siege_setup siege;
  constexpr int users = 100;
  constexpr int reps = 20;
  const std::vector<std::string> argv = siege.argv(users, reps, url);

  const limited_result native = run_limited(argv, 60s, {siege.home});
  CAPTURE(native.out);
  CHECK(native.exit_code == 0);
  CHECK(siege_number(native.out, "transactions") == users * reps);
  CHECK(siege_number(native.out, "availability") == 100.0);
  CHECK(native.max_threads > users);  // a thread per simulated user

  const limited_result grove = run_limited(under_grove_run(argv), 60s, {siege.home});
  CAPTURE(grove.out);
  CHECK_FALSE(grove.timed_out);
  CHECK(grove.exit_code == native.exit_code);
  CHECK(grove.signal == native.signal);
  CHECK(siege_number(grove.out, "transactions") == siege_number(native.out, "transactions"));
  CHECK(siege_number(grove.out, "successful_transactions") == users * reps);
  CHECK(siege_number(grove.out, "failed_transactions") == 0);
  CHECK(siege_number(grove.out, "availability") == 100.0);
  CHECK(grove.max_threads <= 3);
}

TEST_CASE("siege's 100 users against a host name from /etc/hosts under grove-run: lookups on the hub, at most 3 OS "
          "threads") {
  require_program("/usr/bin/siege");
  background server({GROVE_HTTP_HELLO, "0"});
  const std::string line = server.first_line();  // "listening on 127.0.0.1:PORT"
  REQUIRE(line.rfind("listening on ", 0) == 0);
  // "localhost" is in /etc/hosts: each user's getaddrinfo is answered on the hub.
  const std::string url = "http://localhost:" + line.substr(line.rfind(':') + 1) + "/";
  const siege_setup siege;
  constexpr int users = 100;
  constexpr int reps = 10;
  const limited_result grove = run_limited(under_grove_run(siege.argv(users, reps, url)), 60s, {siege.home});
  CAPTURE(grove.out);
  CHECK_FALSE(grove.timed_out);
  CHECK(grove.exit_code == 0);
  CHECK(siege_number(grove.out, "successful_transactions") == users * reps);
  CHECK(siege_number(grove.out, "failed_transactions") == 0);
  CHECK(grove.max_threads <= 3);
}

TEST_CASE("xz -T4 under grove-run compresses to the same bytes as natively, its CPU-bound threads never deadlocking") {
  require_program("/usr/bin/xz");
  temp_dir dir;
  const std::string text = generated_text(4 << 20);
  // 512 KiB blocks: 8 of them, so all four worker threads get work.
  const std::vector<std::string> options = {"-T4", "--block-size=512KiB", "-k"};
  auto compress = [&](const std::string& name, bool green) {
    std::filesystem::create_directory(dir.path() + "/" + name);
    const std::string input = dir.path() + "/" + name + "/data";
    write_file(input, text);
    std::vector<std::string> argv = {"/usr/bin/xz"};
    argv.insert(argv.end(), options.begin(), options.end());
    argv.push_back(input);
    const limited_result r = run_limited(green ? under_grove_run(argv) : argv, 120s);
    CAPTURE(r.out);
    CHECK_FALSE(r.timed_out);
    CHECK(r.exit_code == 0);
    CHECK(r.signal == 0);
    return r;
  };
  const limited_result native = compress("native", false);
  CHECK(native.max_threads >= 4);  // xz really ran its workers as threads
  const limited_result grove = compress("grove", true);
  CHECK(grove.max_threads <= 3);
  const std::string native_xz = file_contents(dir.path() + "/native/data.xz");
  const std::string grove_xz = file_contents(dir.path() + "/grove/data.xz");
  CHECK(native_xz.size() > 0);
  CHECK(native_xz.size() < text.size() / 2);
  CHECK(grove_xz.size() == native_xz.size());
  CHECK(grove_xz == native_xz);

  // And xz -d -T4 under grove-run gets the text back.
  std::filesystem::create_directory(dir.path() + "/back");
  write_file(dir.path() + "/back/data.xz", grove_xz);
  const limited_result back =
      run_limited(under_grove_run({"/usr/bin/xz", "-d", "-T4", dir.path() + "/back/data.xz"}), 120s);
  CAPTURE(back.out);
  CHECK_FALSE(back.timed_out);
  CHECK(back.exit_code == 0);
  CHECK(file_contents(dir.path() + "/back/data") == text);
}
