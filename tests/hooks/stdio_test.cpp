// stdio streams in tasks (link mode): reads and writes on sockets and pipes
// wait on the hub, a task killed in one leaves the FILE usable, and outside a
// task stdio is glibc's own.
#include <fcntl.h>
#include <stdio.h>

#include <chrono>
#include <cstring>
#include <string>

#include "hooks_support.hpp"

using namespace std::chrono_literals;
using namespace grove_test;

namespace {

// stream wraps a descriptor in a FILE for the test's lifetime (fclose closes it).
struct stream {
  FILE* fp;
  stream(int& fd, const char* mode) : fp(::fdopen(fd, mode)) {
    REQUIRE(fp != nullptr);
    fd = -1;  // the FILE owns it now
  }
  stream(const stream&) = delete;
  stream& operator=(const stream&) = delete;
  ~stream() { ::fclose(fp); }
};

}  // namespace

TEST_CASE_FIXTURE(leak_check, "fgets in a task waits on the hub for a line that arrives in pieces") {
  socket_pair p;
  stream in(p.fd[0], "r");
  ticker t;
  auto writer = grove::spawn([&] {
    for (const char* piece : {"a li", "ne in ", "three\nnext"}) {
      grove::sleep(20ms);
      CHECK(::send(p.fd[1], piece, std::strlen(piece), 0) == static_cast<ssize_t>(std::strlen(piece)));
    }
  });
  char line[64];
  REQUIRE(::fgets(line, sizeof line, in.fp) != nullptr);
  CHECK(std::string(line) == "a line in three\n");
  CHECK(t.ticks() >= 6);
  writer.join();
  ::shutdown(p.fd[1], SHUT_WR);
  REQUIRE(::fgets(line, sizeof line, in.fp) != nullptr);
  CHECK(std::string(line) == "next");
  CHECK(::fgets(line, sizeof line, in.fp) == nullptr);
  CHECK(::feof(in.fp) != 0);
  CHECK(::ferror(in.fp) == 0);
}

TEST_CASE_FIXTURE(leak_check, "fputs and fprintf in a task wait on the hub while a full pipe drains") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  FILE* out = ::fdopen(fds[1], "w");
  REQUIRE(out != nullptr);
  ticker t;
  const std::string line(1000, 'x');
  auto reader = grove::spawn([&] {
    std::size_t got = 0;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fds[0], buf, sizeof buf)) > 0) {
      got += static_cast<std::size_t>(n);
      grove::sleep(1ms);
    }
    return got;
  });
  int printed = 0;
  for (int i = 0; i < 300; ++i) {
    CHECK(::fputs(line.c_str(), out) >= 0);
    printed += ::fprintf(out, " %d\n", i);
  }
  CHECK(::fflush(out) == 0);
  CHECK(::fclose(out) == 0);  // the reader sees EOF
  CHECK(reader.get() == 300 * line.size() + static_cast<std::size_t>(printed));
  CHECK(t.ticks() >= 3);
  ::close(fds[0]);
}

TEST_CASE_FIXTURE(leak_check, "a task killed while it waits in fgets leaves the FILE to the next reader") {
  socket_pair p;
  stream in(p.fd[0], "r");
  char first[64];
  auto stuck = grove::spawn([&] { return ::fgets(first, sizeof first, in.fp) != nullptr; });
  auto next = grove::spawn([&] {
    char line[64];
    return ::fgets(line, sizeof line, in.fp) != nullptr ? std::string(line) : std::string("NULL");
  });
  grove::sleep(20ms);  // both wait: the first for data, the second for its turn
  stuck.kill();
  CHECK(::send(p.fd[1], "hello\n", 6, 0) == 6);
  CHECK(next.get() == "hello\n");
}

TEST_CASE_FIXTURE(leak_check, "fscanf in a task waits on the hub for input that spans pieces and lines") {
  socket_pair p;
  stream in(p.fd[0], "r");
  auto writer = grove::spawn([&] {
    for (const char* piece : {"4", "2\n", "\n  seven", "ty rest"}) {
      grove::sleep(10ms);
      CHECK(::send(p.fd[1], piece, std::strlen(piece), 0) == static_cast<ssize_t>(std::strlen(piece)));
    }
  });
  int n = 0;
  char word[16] = {};
  CHECK(::fscanf(in.fp, "%d %15s", &n, word) == 2);
  CHECK(n == 42);
  CHECK(std::string(word) == "seventy");
  CHECK(::fgetc(in.fp) == ' ');  // the byte scanf looked at and gave back
  writer.join();
}

TEST_CASE("outside a task stdio on a socket is glibc's: fgets reads what is there, fputs buffers") {
  socket_pair p;
  REQUIRE(::send(p.fd[1], "ready\n", 6, 0) == 6);
  const std::string line = natively([&] {
    FILE* in = ::fdopen(::dup(p.fd[0]), "r");
    char buf[16] = {};
    const char* r = ::fgets(buf, sizeof buf, in);
    ::fclose(in);
    return std::string(r != nullptr ? r : "NULL");
  });
  CHECK(line == "ready\n");
  const long pending = natively([&] {
    FILE* out = ::fdopen(::dup(p.fd[1]), "w");
    ::fputs("buffered", out);
    const long r = static_cast<long>(out->_IO_write_ptr - out->_IO_write_base);
    ::fclose(out);
    return r;
  });
  CHECK(pending == 8);
}
