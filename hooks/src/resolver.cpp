// resolver.cpp — which lookups the hub answers (GROVE_RESOLVER, nsswitch) and
// what /etc/hosts answers (see resolver.hpp).
#include "resolver.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <strings.h>
#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "libc.hpp"

namespace grove::hooks {

bool read_config(const char* path, std::string& text) {
  text.clear();
  const int fd = real_open()(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[4096];
  for (;;) {
    const ssize_t n = real_read()(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  real_close()(fd);
  return true;
}

namespace {

// nsswitch_files_dns tells whether /etc/nsswitch.conf has exactly one hosts
// line and it is `files dns`: no other service, no [STATUS=ACTION]. Anything
// else (no file: glibc's default `dns [!UNAVAIL=return] files`) is not ours.
bool nsswitch_files_dns() {
  std::string text;
  if (!read_config("/etc/nsswitch.conf", text)) return false;
  std::istringstream in(text);
  std::string line;
  int hosts_lines = 0;
  bool files_dns = false;
  while (std::getline(in, line)) {
    if (const auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    std::string database;
    if (!(words >> database)) continue;
    if (database != "hosts:") {
      if (database != "hosts") continue;
      std::string colon;  // "hosts :" is read by glibc too
      if (!(words >> colon) || colon != ":") continue;
    }
    ++hosts_lines;
    std::vector<std::string> services;
    for (std::string w; words >> w;) services.push_back(w);
    files_dns = services == std::vector<std::string>{"files", "dns"};
  }
  return hosts_lines == 1 && files_dns;
}

// gai_conf_default tells whether /etc/gai.conf holds no rule (only comments
// and blank lines, or no file): then glibc orders addresses by its built-in
// tables, which hub_getaddrinfo follows.
bool gai_conf_default() {
  std::string text;
  (void)read_config("/etc/gai.conf", text);  // no file: no rule
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (const auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    if (line.find_first_not_of(" \t\r") != std::string::npos) return false;
  }
  return true;
}

int read_resolver_mode() {
  const char* v = std::getenv("GROVE_RESOLVER");
  std::string mode = v != nullptr && *v != '\0' ? v : "auto";
  if (mode == "ares") return 1;
  if (mode == "thread") return 0;
  if (mode != "auto") {
    std::fprintf(stderr,
                 "grove: GROVE_RESOLVER=\"%s\": not auto (lookups on the hub when nsswitch.conf's hosts line is "
                 "`files dns`, else on the thread pool), ares (always on the hub) or thread (always on the pool)\n",
                 v);
    std::fflush(stderr);
    std::_Exit(2);
  }
  return nsswitch_files_dns() && gai_conf_default() ? 1 : 0;
}

std::atomic<int> resolver_mode{-1};  // -1: not read yet; 0: pool; 1: hub

// One /etc/hosts line: its address and names.
struct hosts_line {
  int family = 0;
  unsigned char addr[16] = {};
  std::vector<std::string> names;
};

struct hosts_file {
  bool loaded = false;
  struct stat seen {};
  std::vector<hosts_line> lines;
};

bool same_file(const struct stat& a, const struct stat& b) noexcept {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_size == b.st_size &&
         a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec &&
         a.st_ctim.tv_sec == b.st_ctim.tv_sec && a.st_ctim.tv_nsec == b.st_ctim.tv_nsec;
}

// hosts reads /etc/hosts as glibc's files service parses it (an address that
// is neither IPv6 nor IPv4 skips its line), again whenever it changed. Each
// thread keeps its own copy: no lock, and a change is seen at the next lookup.
const std::vector<hosts_line>& hosts() {
  thread_local hosts_file file;
  struct stat now {};
  if (real_stat()("/etc/hosts", &now) != 0) {
    file.loaded = false;
    file.lines.clear();
    return file.lines;
  }
  if (file.loaded && same_file(now, file.seen)) return file.lines;
  file.lines.clear();
  std::string whole;
  (void)read_config("/etc/hosts", whole);
  std::istringstream in(whole);
  std::string text;
  while (std::getline(in, text)) {
    if (const auto hash = text.find('#'); hash != std::string::npos) text.resize(hash);
    std::istringstream words(text);
    std::string addr;
    if (!(words >> addr)) continue;
    hosts_line line;
    if (::inet_pton(AF_INET6, addr.c_str(), line.addr) == 1) {
      line.family = AF_INET6;
    } else if (::inet_pton(AF_INET, addr.c_str(), line.addr) == 1) {
      line.family = AF_INET;
    } else {
      continue;
    }
    for (std::string name; words >> name;) line.names.push_back(name);
    if (!line.names.empty()) file.lines.push_back(std::move(line));
  }
  file.loaded = true;
  file.seen = now;
  return file.lines;
}

bool names(const hosts_line& line, const char* name) {
  for (const auto& n : line.names) {
    if (::strcasecmp(n.c_str(), name) == 0) return true;
  }
  return false;
}

// ipv4_view: an IPv6 line glibc's files service also answers for IPv4 (a
// v4-mapped address, or ::1 read as 127.0.0.1).
bool ipv4_view(const hosts_line& line) {
  if (line.family == AF_INET) return true;
  in6_addr a;
  std::memcpy(&a, line.addr, sizeof a);
  return IN6_IS_ADDR_V4MAPPED(&a) || IN6_IS_ADDR_LOOPBACK(&a);
}

}  // namespace

bool hub_resolver() {
  int m = resolver_mode.load(std::memory_order_relaxed);
  if (m < 0) [[unlikely]] {
    m = read_resolver_mode();
    resolver_mode.store(m, std::memory_order_relaxed);
  }
  return m == 1;
}

bool hosts_answer(const char* name, int family, int flags) {
  if (name == nullptr) return false;
  bool v4 = false;
  bool v6 = false;
  for (const auto& line : hosts()) {
    if (!names(line, name)) continue;
    if (line.family == AF_INET6) v6 = true;
    if (ipv4_view(line)) v4 = true;
  }
  switch (family) {
    case AF_UNSPEC:
      return v4 || v6;
    case AF_INET:
      return v4;
    case AF_INET6:
      return v6 || ((flags & AI_V4MAPPED) != 0 && v4);
    default:
      return false;
  }
}

bool hosts_answer_address(const void* addr, socklen_t len, int family) {
  if (addr == nullptr) return false;
  if (!((family == AF_INET && len == 4) || (family == AF_INET6 && len == 16))) return false;
  for (const auto& line : hosts()) {
    if (line.family == family && std::memcmp(line.addr, addr, len) == 0) return true;
  }
  return false;
}

}  // namespace grove::hooks
