// dns_hub.cpp — getaddrinfo answered on the hub (see resolver.hpp): /etc/hosts
// names through glibc's own call, other names through c-ares driven by the
// hub, with glibc's checks, layout and address order.
#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "context.hpp"
#include "libc.hpp"
#include "resolver.hpp"
#include "scratch_epoll.hpp"
#include "signals.hpp"

namespace grove::hooks {
namespace {

// ---------------------------------------------------------------------------
// DNS through c-ares

// One address family's answer to a DNS search.
struct dns_answer {
  int status = ARES_ENOTFOUND;
  std::string canonical;
  std::vector<std::vector<unsigned char>> addrs;  // 4 or 16 bytes each, in answer order
};

// resolver_options reads glibc's retransmission settings: `options timeout:N
// attempts:N` in /etc/resolv.conf, then RES_OPTIONS; glibc's defaults (5 s,
// 2 attempts) otherwise, and its bounds (30 s, 5 attempts).
void resolver_options(int& timeout_s, int& attempts) {
  timeout_s = 5;
  attempts = 2;
  auto apply = [&](const std::string& words) {
    std::istringstream in(words);
    for (std::string w; in >> w;) {
      if (w.rfind("timeout:", 0) == 0) timeout_s = std::min(std::atoi(w.c_str() + 8), 30);
      if (w.rfind("attempts:", 0) == 0) attempts = std::min(std::atoi(w.c_str() + 9), 5);
    }
  };
  std::string text;
  (void)read_config("/etc/resolv.conf", text);
  std::istringstream conf(text);
  for (std::string line; std::getline(conf, line);) {
    if (line.rfind("options", 0) == 0 && line.size() > 7 && (line[7] == ' ' || line[7] == '\t')) {
      apply(line.substr(7));
    }
  }
  if (const char* env = std::getenv("RES_OPTIONS")) apply(env);
  timeout_s = std::max(timeout_s, 1);
  attempts = std::max(attempts, 1);
}

// c-ares makes its socket calls through libc's own functions: its descriptors
// are non-blocking from the start and never enter the hooks' fd table.
ares_socket_t ares_open(int domain, int type, int protocol, void*) {
  return real_socket()(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
}
int ares_close_fd(ares_socket_t fd, void*) { return real_close()(fd); }
int ares_connect_fd(ares_socket_t fd, const sockaddr* addr, ares_socklen_t len, void*) {
  return real_connect()(fd, addr, len);
}
ares_ssize_t ares_recvfrom_fd(ares_socket_t fd, void* buf, size_t len, int flags, sockaddr* from,
                              ares_socklen_t* from_len, void*) {
  return real_recvfrom()(fd, buf, len, flags, from, from_len);
}
ares_ssize_t ares_sendv_fd(ares_socket_t fd, const iovec* iov, int n, void*) { return real_writev()(fd, iov, n); }
const ares_socket_functions socket_functions = {ares_open, ares_close_fd, ares_connect_fd, ares_recvfrom_fd,
                                                ares_sendv_fd};

// sock_state keeps the lookup's epoll set holding what c-ares waits for.
void sock_state(void* data, ares_socket_t fd, int readable, int writable) {
  const int ep = *static_cast<int*>(data);
  if (!readable && !writable) {
    ::epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
    return;
  }
  epoll_event ev{};
  ev.events = (readable ? EPOLLIN : 0u) | (writable ? EPOLLOUT : 0u);
  ev.data.fd = fd;
  if (::epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) != 0 && errno == ENOENT) ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

struct query {
  dns_answer* out;
  int* pending;
  int type;
};

// owner_of_first is the owner name of the reply's first record of `type`:
// where its CNAME chain ends, the canonical name glibc reports. (c-ares'
// hostent names the first CNAME's target instead.) Empty if there is none.
std::string owner_of_first(const unsigned char* abuf, int alen, int type) {
  if (alen < 12) return {};
  const int questions = (abuf[4] << 8) | abuf[5];
  const int answers = (abuf[6] << 8) | abuf[7];
  const unsigned char* p = abuf + 12;
  const unsigned char* end = abuf + alen;
  auto name_at = [&](const unsigned char*& at, std::string* out) {
    char* name = nullptr;
    long len = 0;
    if (ares_expand_name(at, abuf, alen, &name, &len) != ARES_SUCCESS) return false;
    if (out != nullptr) *out = name;
    ares_free_string(name);
    at += len;
    return true;
  };
  for (int i = 0; i < questions; ++i) {
    if (!name_at(p, nullptr) || end - p < 4) return {};
    p += 4;
  }
  for (int i = 0; i < answers; ++i) {
    std::string owner;
    if (!name_at(p, &owner) || end - p < 10) return {};
    const int rr_type = (p[0] << 8) | p[1];
    const int rdlen = (p[8] << 8) | p[9];
    p += 10;
    if (end - p < rdlen) return {};
    if (rr_type == type) return owner;
    p += rdlen;
  }
  return {};
}

// answered parses one reply into its dns_answer.
void answered(void* arg, int status, int, unsigned char* abuf, int alen) {
  auto* q = static_cast<query*>(arg);
  --*q->pending;
  q->out->status = status;
  if (status != ARES_SUCCESS) return;
  hostent* host = nullptr;
  const int parsed = q->type == ns_t_a ? ares_parse_a_reply(abuf, alen, &host, nullptr, nullptr)
                                       : ares_parse_aaaa_reply(abuf, alen, &host, nullptr, nullptr);
  q->out->status = parsed;
  if (parsed != ARES_SUCCESS || host == nullptr) return;
  q->out->canonical = owner_of_first(abuf, alen, q->type);
  if (q->out->canonical.empty() && host->h_name != nullptr) q->out->canonical = host->h_name;
  for (char** a = host->h_addr_list; a != nullptr && *a != nullptr; ++a) {
    q->out->addrs.emplace_back(*a, *a + host->h_length);
  }
  ares_free_hostent(host);
}

struct channel_holder {
  ares_channel ch = nullptr;
  ~channel_holder() {
    if (ch != nullptr) ares_destroy(ch);  // calls the callbacks of unfinished queries (ARES_EDESTRUCTION)
  }
};

// dns_search searches name for A (want_a) and AAAA (want_aaaa) records at
// once, as glibc's resolver does, with resolv.conf's servers, search list and
// ndots. The calling task waits on the hub: c-ares' sockets through one epoll
// set, its retransmission timeouts as the wait's limit. Empty if c-ares cannot
// start. Interruptions of the task propagate (the queries are dropped).
std::optional<std::pair<dns_answer, dns_answer>> dns_search(const char* name, bool want_a, bool want_aaaa) {
  static const bool initialised = ares_library_init(ARES_LIB_INIT_ALL) == ARES_SUCCESS;
  if (!initialised) return std::nullopt;
  scratch_epoll set;
  if (set.fd() < 0) return std::nullopt;
  int ep = set.fd();
  int timeout_s = 5;
  int attempts = 2;
  resolver_options(timeout_s, attempts);
  ares_options opts{};
  opts.sock_state_cb = sock_state;
  opts.sock_state_cb_data = &ep;
  opts.timeout = timeout_s * 1000;
  opts.tries = attempts;
  char lookups[] = "b";
  opts.lookups = lookups;
  dns_answer a;
  dns_answer aaaa;
  int pending = 0;
  query qa{&a, &pending, ns_t_a};
  query qaaaa{&aaaa, &pending, ns_t_aaaa};
  channel_holder channel;
  if (ares_init_options(&channel.ch, &opts,
                        ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS) !=
      ARES_SUCCESS) {
    channel.ch = nullptr;
    return std::nullopt;
  }
  ares_set_socket_functions(channel.ch, &socket_functions, nullptr);
  if (want_a) {
    ++pending;
    ares_search(channel.ch, name, ns_c_in, ns_t_a, answered, &qa);
  }
  if (want_aaaa) {
    ++pending;
    ares_search(channel.ch, name, ns_c_in, ns_t_aaaa, answered, &qaaaa);
  }
  while (pending > 0) {
    timeval tv{};
    const timeval* t = ares_timeout(channel.ch, nullptr, &tv);
    const limit l = t != nullptr ? limit::after(std::chrono::seconds(t->tv_sec) + std::chrono::microseconds(t->tv_usec))
                                 : limit::never();
    // As glibc's resolver, a signal handler that runs meanwhile does not end the lookup (no EINTR).
    if (wait_fd(ep, true, l, on_handler::resume) == waited::failed) {
      ares_cancel(channel.ch);  // the callbacks run now, with ARES_ECANCELLED
      break;
    }
    epoll_event events[16];
    const int n = real_epoll_wait()(ep, events, 16, 0);
    if (n <= 0) ares_process_fd(channel.ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts
    for (int i = 0; i < n; ++i) {
      const auto ev = events[i].events;
      const int fd = events[i].data.fd;
      ares_process_fd(channel.ch, (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0 ? fd : ARES_SOCKET_BAD,
                      (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0 ? fd : ARES_SOCKET_BAD);
    }
  }
  return std::pair{std::move(a), std::move(aaaa)};
}

// ---------------------------------------------------------------------------
// glibc's destination address order (RFC 3484 with glibc's built-in tables)

struct prefix_value {
  unsigned char prefix[16];
  unsigned bits;
  int value;
};

constexpr prefix_value labels[] = {
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, 0},
    {{0x20, 0x02}, 16, 2},
    {{}, 96, 3},
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 96, 4},
    {{0xfe, 0xc0}, 10, 5},
    {{0xfc, 0x00}, 7, 6},
    {{0x20, 0x01, 0, 0}, 32, 7},
    {{}, 0, 1},
};

constexpr prefix_value precedences[] = {
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, 50},
    {{0x20, 0x02}, 16, 30},
    {{}, 96, 20},
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 96, 10},
    {{}, 0, 40},
};

// as_ipv6 is the address glibc's tables look up: IPv4 as v4-mapped.
in6_addr as_ipv6(const sockaddr_storage& s) {
  in6_addr a{};
  if (s.ss_family == AF_INET6) return reinterpret_cast<const sockaddr_in6&>(s).sin6_addr;
  a.s6_addr[10] = 0xff;
  a.s6_addr[11] = 0xff;
  std::memcpy(&a.s6_addr[12], &reinterpret_cast<const sockaddr_in&>(s).sin_addr, 4);
  return a;
}

template <std::size_t N>
int match(const sockaddr_storage& s, const prefix_value (&table)[N]) {
  const in6_addr a = as_ipv6(s);
  for (const auto& e : table) {
    unsigned bits = e.bits;
    std::size_t i = 0;
    for (; bits >= 8; bits -= 8, ++i) {
      if (e.prefix[i] != a.s6_addr[i]) break;
    }
    if (bits >= 8) continue;
    const unsigned mask = (0xff00u >> bits) & 0xffu;
    if ((e.prefix[i] & mask) == (a.s6_addr[i] & mask)) return e.value;
  }
  return 0;
}

int scope_of(const sockaddr_storage& s) {
  if (s.ss_family == AF_INET6) {
    const in6_addr& a = reinterpret_cast<const sockaddr_in6&>(s).sin6_addr;
    if (IN6_IS_ADDR_MULTICAST(&a)) return a.s6_addr[1] & 0xf;
    if (IN6_IS_ADDR_LINKLOCAL(&a) || IN6_IS_ADDR_LOOPBACK(&a)) return 2;
    if (IN6_IS_ADDR_SITELOCAL(&a)) return 5;
    return 14;
  }
  if (s.ss_family == AF_INET) {
    const std::uint32_t a = ntohl(reinterpret_cast<const sockaddr_in&>(s).sin_addr.s_addr);
    if ((a & 0xffff0000u) == 0xa9fe0000u || (a & 0xff000000u) == 0x7f000000u) return 2;
    if ((a & 0xff000000u) == 0x0a000000u || (a & 0xfff00000u) == 0xac100000u || (a & 0xffff0000u) == 0xc0a80000u) {
      return 5;
    }
    return 14;
  }
  return 15;
}

// leading_same counts the leading bits two words share (glibc's fls).
int leading_same(std::uint32_t x) {
  int n = 0;
  for (std::uint32_t mask = 1u << 31; n < 32 && (x & mask) == 0; mask >>= 1) ++n;
  return n;
}

// A destination address and what the sort needs to know of its source.
struct destination {
  sockaddr_storage dest{};
  sockaddr_storage source{};
  bool has_source = false;
  unsigned prefixlen = 0;
};

// interface_prefix is the prefix length of the interface address `source`
// (glibc looks 127/8 sources up as 127.0.0.1); 0 if none has it.
unsigned interface_prefix(const sockaddr_storage& source, const ifaddrs* list) {
  for (const ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_netmask == nullptr || i->ifa_addr->sa_family != source.ss_family) continue;
    unsigned bits = 0;
    if (source.ss_family == AF_INET) {
      std::uint32_t want = ntohl(reinterpret_cast<const sockaddr_in&>(source).sin_addr.s_addr);
      if ((want & 0xff000000u) == 0x7f000000u) want = 0x7f000001u;
      if (ntohl(reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr) != want) continue;
      bits = static_cast<unsigned>(
          __builtin_popcount(reinterpret_cast<const sockaddr_in*>(i->ifa_netmask)->sin_addr.s_addr));
    } else {
      if (std::memcmp(&reinterpret_cast<const sockaddr_in6*>(i->ifa_addr)->sin6_addr,
                      &reinterpret_cast<const sockaddr_in6&>(source).sin6_addr, 16) != 0) {
        continue;
      }
      for (unsigned char b : reinterpret_cast<const sockaddr_in6*>(i->ifa_netmask)->sin6_addr.s6_addr) {
        bits += static_cast<unsigned>(__builtin_popcount(b));
      }
    }
    return bits;
  }
  return 0;
}

// find_sources asks the kernel which source address each destination would
// get (a UDP connect sends nothing), as glibc does: no source, unreachable.
void find_sources(std::vector<destination>& d) {
  ifaddrs* ifs = nullptr;
  if (::getifaddrs(&ifs) != 0) ifs = nullptr;
  for (auto& x : d) {
    const int fd = real_socket()(x.dest.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_IP);
    if (fd < 0) continue;
    const socklen_t len = x.dest.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    socklen_t sl = sizeof x.source;
    if (real_connect()(fd, reinterpret_cast<const sockaddr*>(&x.dest), len) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&x.source), &sl) == 0) {
      x.has_source = true;
      x.prefixlen = interface_prefix(x.source, ifs);
    }
    real_close()(fd);
  }
  if (ifs != nullptr) ::freeifaddrs(ifs);
}

// before is glibc's rfc3484_sort rules 1, 2, 5, 6, 8 and 9: a1 goes first.
// Rules 3, 4 and 7 (deprecated, home and tunnelled source addresses) are not
// applied. Rule 10 (keep the order) is the stable sort's.
bool before(const destination& a1, const destination& a2) {
  if (a1.has_source != a2.has_source) return a1.has_source;
  const int a1_dst_scope = scope_of(a1.dest);
  const int a2_dst_scope = scope_of(a2.dest);
  if (a1.has_source) {
    const bool m1 = a1_dst_scope == scope_of(a1.source);
    const bool m2 = a2_dst_scope == scope_of(a2.source);
    if (m1 != m2) return m1;
    const bool l1 = match(a1.dest, labels) == match(a1.source, labels);
    const bool l2 = match(a2.dest, labels) == match(a2.source, labels);
    if (l1 != l2) return l1;
  }
  const int p1 = match(a1.dest, precedences);
  const int p2 = match(a2.dest, precedences);
  if (p1 != p2) return p1 > p2;
  if (a1_dst_scope != a2_dst_scope) return a1_dst_scope < a2_dst_scope;
  if (a1.has_source && a1.dest.ss_family == a2.dest.ss_family) {
    int bit1 = 0;
    int bit2 = 0;
    if (a1.dest.ss_family == AF_INET) {
      auto v4 = [](const sockaddr_storage& s) {
        return ntohl(reinterpret_cast<const sockaddr_in&>(s).sin_addr.s_addr);
      };
      // glibc's netmask is 0xffffffff << (32 - prefixlen), as x86 shifts (by the count mod 32).
      auto mask = [](unsigned prefixlen) { return 0xffffffffu << ((32 - prefixlen) & 31); };
      if ((v4(a1.source) & mask(a1.prefixlen)) == (v4(a1.dest) & mask(a1.prefixlen))) {
        bit1 = leading_same(v4(a1.dest) ^ v4(a1.source));
      }
      if ((v4(a2.source) & mask(a2.prefixlen)) == (v4(a2.dest) & mask(a2.prefixlen))) {
        bit2 = leading_same(v4(a2.dest) ^ v4(a2.source));
      }
    } else {
      auto words = [](const sockaddr_storage& s, int i) {
        std::uint32_t w;
        std::memcpy(&w, &reinterpret_cast<const sockaddr_in6&>(s).sin6_addr.s6_addr[4 * i], 4);
        return w;
      };
      int i = 0;
      for (; i < 4; ++i) {
        if (words(a1.dest, i) != words(a1.source, i) || words(a2.dest, i) != words(a2.source, i)) break;
      }
      if (i < 4) {
        bit1 = leading_same(ntohl(words(a1.dest, i) ^ words(a1.source, i)));
        bit2 = leading_same(ntohl(words(a2.dest, i) ^ words(a2.source, i)));
      }
    }
    if (bit1 != bit2) return bit1 > bit2;
  }
  return false;
}

// ---------------------------------------------------------------------------
// getaddrinfo

// numeric_host: a node glibc reads as an address (inet_aton's IPv4 forms, or
// IPv6 with an optional %scope) and never looks up.
bool numeric_host(const char* node) {
  in_addr a4;
  if (::inet_aton(node, &a4) != 0) return true;
  std::string text = node;
  if (const auto pct = text.find('%'); pct != std::string::npos) text.resize(pct);
  unsigned char a6[16];
  return ::inet_pton(AF_INET6, text.c_str(), a6) == 1;
}

// The flags glibc accepts without IDN: other accepted flags go to the pool.
constexpr int plain_flags = AI_PASSIVE | AI_CANONNAME | AI_NUMERICHOST | AI_V4MAPPED | AI_ALL | AI_ADDRCONFIG |
                            AI_NUMERICSERV;

// seen_families is glibc's __check_pf for AI_ADDRCONFIG: is there an IPv4
// address other than 127.0.0.1, an IPv6 address other than ::1.
void seen_families(bool& v4, bool& v6) {
  v4 = v6 = false;
  ifaddrs* ifs = nullptr;
  if (::getifaddrs(&ifs) != 0) return;
  for (const ifaddrs* i = ifs; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    if (i->ifa_addr->sa_family == AF_INET) {
      if (reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr != htonl(INADDR_LOOPBACK)) v4 = true;
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      if (!IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<const sockaddr_in6*>(i->ifa_addr)->sin6_addr)) v6 = true;
    }
  }
  ::freeifaddrs(ifs);
}

// dns_error is glibc's getaddrinfo result for failed searches: a name that
// exists without the records asked for is EAI_NODATA, one that does not
// exist EAI_NONAME, and a server that does not answer EAI_AGAIN.
int dns_error(int status) {
  switch (status) {
    case ARES_ENODATA:
      return EAI_NODATA;
    case ARES_ENOTFOUND:
    case ARES_EBADNAME:
      return EAI_NONAME;
    case ARES_ENOMEM:
      return EAI_MEMORY;
    default:
      return EAI_AGAIN;
  }
}

struct addrinfo_chain {
  addrinfo* head = nullptr;
  ~addrinfo_chain() {
    if (head != nullptr) ::freeaddrinfo(head);
  }
};

}  // namespace

std::optional<int> hub_getaddrinfo(const char* node, const char* service, const addrinfo* hints, addrinfo** res) {
  const int flags = hints != nullptr ? hints->ai_flags : (AI_V4MAPPED | AI_ADDRCONFIG);
  const int family = hints != nullptr ? hints->ai_family : AF_UNSPEC;
  // No name to look up, or one glibc reads as an address: glibc's call answers
  // from what it is given (and the services file) without asking anyone.
  if (node == nullptr || (flags & AI_NUMERICHOST) != 0 || (flags & ~plain_flags) != 0 ||
      (family != AF_UNSPEC && family != AF_INET && family != AF_INET6) || numeric_host(node)) {
    if ((flags & ~plain_flags) != 0 && (flags & (AI_IDN | AI_CANONIDN)) != 0) return std::nullopt;
    return real_getaddrinfo()(node, service, hints, res);
  }
  // What glibc looks up: AI_ADDRCONFIG narrows AF_UNSPEC to the one family the
  // machine has addresses of.
  int lookup_family = family;
  if ((flags & AI_ADDRCONFIG) != 0 && family == AF_UNSPEC) {
    bool v4 = false;
    bool v6 = false;
    seen_families(v4, v6);
    if (v4 && !v6) lookup_family = AF_INET;
    if (v6 && !v4) lookup_family = AF_INET6;
  }
  if (hosts_answer(node, lookup_family, flags)) return real_getaddrinfo()(node, service, hints, res);

  // DNS. First glibc's own checks of everything but the name (flags, family,
  // socket type, protocol, service, AI_ADDRCONFIG for one family), and the
  // socket type, protocol and port of each entry, from the same call with a
  // numeric address of the family in place of the name.
  addrinfo probe_hints{};
  if (hints != nullptr) {
    probe_hints.ai_socktype = hints->ai_socktype;
    probe_hints.ai_protocol = hints->ai_protocol;
  }
  probe_hints.ai_family = lookup_family;
  probe_hints.ai_flags = (flags | AI_NUMERICHOST) & ~AI_CANONNAME;
  if (family == AF_UNSPEC) probe_hints.ai_flags &= ~AI_ADDRCONFIG;  // already applied
  addrinfo_chain probe;
  const int checked = real_getaddrinfo()(lookup_family == AF_INET6 ? "::1" : "127.0.0.1", service, &probe_hints,
                                         &probe.head);
  if (checked != 0) return checked;

  const bool want_a =
      lookup_family != AF_INET6 || ((flags & AI_V4MAPPED) != 0);
  const bool want_aaaa = lookup_family != AF_INET;
  auto answers = dns_search(node, want_a, want_aaaa);
  if (!answers) return std::nullopt;
  auto& [a, aaaa] = *answers;

  // The addresses in glibc's order before sorting: A records then AAAA for
  // AF_UNSPEC; for AF_INET6, AAAA then (AI_V4MAPPED, when there is no AAAA
  // or with AI_ALL) the A records mapped.
  std::vector<destination> dests;
  auto add_v4 = [&](const std::vector<unsigned char>& bytes, bool mapped) {
    destination d;
    if (mapped) {
      auto& s6 = reinterpret_cast<sockaddr_in6&>(d.dest);
      s6.sin6_family = AF_INET6;
      s6.sin6_addr.s6_addr[10] = 0xff;
      s6.sin6_addr.s6_addr[11] = 0xff;
      std::memcpy(&s6.sin6_addr.s6_addr[12], bytes.data(), 4);
    } else {
      auto& s4 = reinterpret_cast<sockaddr_in&>(d.dest);
      s4.sin_family = AF_INET;
      std::memcpy(&s4.sin_addr, bytes.data(), 4);
    }
    dests.push_back(d);
  };
  auto add_v6 = [&](const std::vector<unsigned char>& bytes) {
    destination d;
    auto& s6 = reinterpret_cast<sockaddr_in6&>(d.dest);
    s6.sin6_family = AF_INET6;
    std::memcpy(&s6.sin6_addr, bytes.data(), 16);
    dests.push_back(d);
  };
  std::string canonical;
  int status = ARES_SUCCESS;
  if (lookup_family == AF_INET6) {
    for (const auto& b : aaaa.addrs) add_v6(b);
    canonical = aaaa.canonical;
    const bool mapped = (flags & AI_V4MAPPED) != 0 && ((flags & AI_ALL) != 0 || aaaa.addrs.empty());
    if (mapped) {
      for (const auto& b : a.addrs) add_v4(b, true);
      if (canonical.empty()) canonical = a.canonical;
    }
    status = !aaaa.addrs.empty() ? ARES_SUCCESS : (mapped && a.status != ARES_SUCCESS && a.status != ARES_ENODATA
                                                       ? a.status
                                                       : aaaa.status);
  } else {
    for (const auto& b : a.addrs) add_v4(b, false);
    canonical = a.canonical;
    if (want_aaaa) {
      for (const auto& b : aaaa.addrs) add_v6(b);
      if (canonical.empty()) canonical = aaaa.canonical;
    }
    status = a.status;
    if (want_aaaa && status != ARES_SUCCESS) {
      // Both failed: a name neither search found is unknown; one that timed
      // out on both is EAI_AGAIN; otherwise the first's.
      status = aaaa.status == ARES_SUCCESS ? ARES_SUCCESS : a.status;
      if (a.status == ARES_ENODATA || aaaa.status == ARES_ENODATA) status = ARES_ENODATA;
      if (a.status == ARES_ENOTFOUND && aaaa.status == ARES_ENOTFOUND) status = ARES_ENOTFOUND;
    }
  }
  if (dests.empty()) return dns_error(status == ARES_SUCCESS ? ARES_ENODATA : status);

  if (dests.size() > 1) {
    find_sources(dests);
    std::stable_sort(dests.begin(), dests.end(), before);
  }

  // One entry per address and probe entry, each one malloc with its address,
  // as glibc's; the first gets the canonical name (its own malloc).
  addrinfo_chain out;
  addrinfo** tail = &out.head;
  for (const auto& d : dests) {
    const socklen_t len = d.dest.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    for (const addrinfo* p = probe.head; p != nullptr; p = p->ai_next) {
      auto* ai = static_cast<addrinfo*>(std::calloc(1, sizeof(addrinfo) + len));
      if (ai == nullptr) return EAI_MEMORY;
      ai->ai_flags = flags;
      ai->ai_family = d.dest.ss_family;
      ai->ai_socktype = p->ai_socktype;
      ai->ai_protocol = p->ai_protocol;
      ai->ai_addrlen = len;
      ai->ai_addr = reinterpret_cast<sockaddr*>(ai + 1);
      std::memcpy(ai->ai_addr, &d.dest, len);
      // The port is where both sockaddr layouts keep it.
      reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_port = reinterpret_cast<const sockaddr_in*>(p->ai_addr)->sin_port;
      *tail = ai;
      tail = &ai->ai_next;
    }
  }
  if ((flags & AI_CANONNAME) != 0 && out.head != nullptr) {
    out.head->ai_canonname = ::strdup(canonical.empty() ? node : canonical.c_str());
    if (out.head->ai_canonname == nullptr) return EAI_MEMORY;
  }
  *res = out.head;
  out.head = nullptr;
  return 0;
}

}  // namespace grove::hooks
