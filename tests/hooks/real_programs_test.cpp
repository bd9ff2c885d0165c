// Real, unmodified Debian programs under grove-run, compared with native runs:
// curl and wget against a local HTTP server, nc moving a large file, redis-cli
// against a local redis-server.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
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
  ~background() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(out_);
  }
  // wait waits for the process to exit and returns its exit status.
  int wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  // first_line reads the first line the server prints.
  std::string first_line() {
    std::string line;
    char c;
    while (::read(out_, &c, 1) == 1 && c != '\n') line += c;
    return line;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
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
  temp_dir dir;
  const int port = free_port();
  background server({"/usr/bin/redis-server", "--port", std::to_string(port), "--bind", "127.0.0.1", "--save", "",
                     "--appendonly", "no", "--dir", dir.path(), "--loglevel", "warning"});
  wait_for_port(port);
  const std::string p = std::to_string(port);
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
