// dns.cpp — name lookups in tasks run on the hub's thread pool, so the hub
// never blocks on DNS (glibc's resolver makes its socket calls inside libc,
// where no hook sees them).
//
// The worker makes libc's own call and the task gets exactly its results, and
// errno and h_errno as the call left them: both are per thread, so the worker
// starts the call with the task's values and hands back what it ended with.
//
// Nothing the worker touches belongs to the task: arguments are copied in and
// results copied out. A task killed while it waits (or whose timeout scope
// fires) abandons the call, which runs to its end on the worker and must not
// write to memory the task has since given up; what it returns is freed.
//
// If the pool cannot take the call (no memory, no thread), it runs here, on
// the hub's thread, as it would natively: late, but right.
#undef _FORTIFY_SOURCE

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <grove/thread_pool.hpp>

#include "context.hpp"
#include "libc.hpp"
#include "resolver.hpp"

namespace grove::hooks {
namespace {

// thread_errors is a thread's errno and h_errno.
struct thread_errors {
  int err = 0;
  int herr = 0;
  static thread_errors now() noexcept { return {errno, h_errno}; }
  void install() const noexcept {
    errno = err;
    h_errno = herr;
  }
};

// offload runs call() on the hub's pool as if on the calling thread (errno and
// h_errno go there and back) and returns its result. Throws what
// run_in_thread throws: control flow (kill, timeout scope, loop_exit), or
// std::bad_alloc / std::system_error when the pool cannot take the call.
template <class Call>
auto offload(Call call) {
  const thread_errors before = thread_errors::now();
  auto [result, after] = grove::run_in_thread([call = std::move(call), before]() mutable {
    before.install();
    auto r = call();
    return std::pair{std::move(r), thread_errors::now()};
  });
  after.install();
  return std::move(result);
}

// optional_string copies a C string that may be null.
std::optional<std::string> optional_string(const char* s) {
  return s != nullptr ? std::optional<std::string>(s) : std::nullopt;
}

const char* c_str(const std::optional<std::string>& s) noexcept { return s ? s->c_str() : nullptr; }

struct addrinfo_free {
  void operator()(addrinfo* a) const noexcept { ::freeaddrinfo(a); }
};
using addrinfo_list = std::unique_ptr<addrinfo, addrinfo_free>;

// bytes copies n bytes from p (none if p is null).
std::vector<char> bytes(const void* p, std::size_t n) {
  if (p == nullptr) return {};
  const auto* c = static_cast<const char*>(p);
  return std::vector<char>(c, c + n);
}

// A copy of a caller's buffer that the worker fills. It starts with the
// caller's bytes (what the call does not write stays as it was) at the same
// address modulo the largest alignment, so glibc, which aligns what it puts in
// the buffer, lays it out exactly as it would in the caller's and runs out of
// room (ERANGE) exactly when it would there.
struct mirror_buffer {
  std::vector<char> space;
  std::size_t skew = 0;
  mirror_buffer(const char* caller, std::size_t len)
      : space(len + alignof(std::max_align_t)),
        skew(reinterpret_cast<std::uintptr_t>(caller) % alignof(std::max_align_t)) {
    if (caller != nullptr && len > 0) std::memcpy(data(), caller, len);
  }
  char* data() noexcept { return space.data() + skew; }
};

// relocate moves a pointer into [from, from + len) to the same place in `to`;
// a pointer elsewhere (static data, null) stays.
template <class T>
T* relocate(T* p, const char* from, std::size_t len, char* to) noexcept {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  const auto base = reinterpret_cast<std::uintptr_t>(from);
  if (a < base || a >= base + len) return p;
  return reinterpret_cast<T*>(to + (a - base));
}

// relocate_list relocates a null-terminated array of pointers and its entries,
// when the array itself is in the buffer (then so is the copy we fix).
char** relocate_list(char** list, const char* from, std::size_t len, char* to) noexcept {
  char** moved = relocate(list, from, len, to);
  if (moved == list) return list;
  for (char** p = moved; *p != nullptr; ++p) *p = relocate(*p, from, len, to);
  return moved;
}

struct addrinfo_outcome {
  int rc;
  addrinfo_list list;
};

struct nameinfo_outcome {
  int rc;
  std::vector<char> host;
  std::vector<char> serv;
};

struct hostent_r_outcome {
  int rc;
  bool found;
  int herr;
  hostent entry;
  mirror_buffer buffer;
};

// numeric: a lookup of a numeric address and port, which getaddrinfo answers
// without asking anyone: no need to wait for a pool thread.
bool numeric(const char* node, const char* service) noexcept {
  if (node == nullptr) return false;
  unsigned char addr[sizeof(in6_addr)];
  if (::inet_pton(AF_INET, node, addr) != 1 && ::inet_pton(AF_INET6, node, addr) != 1) return false;
  if (service == nullptr) return true;
  for (const char* p = service; *p != '\0'; ++p) {
    if (*p < '0' || *p > '9') return false;
  }
  return true;
}

// hostent_r_call runs a gethostby*_r call (call(entry, buffer, length, found,
// h_errno)) on the pool against a mirror of the caller's buffer and moves the
// result into the caller's, pointers relocated. When the pool cannot take it
// (or the buffer is too large to mirror), here() makes the call on this thread.
template <class Call, class Here>
int hostent_r_call(Call call, hostent* ret, char* buf, size_t buflen, hostent** result, int* h_errnop, Here here) {
  // A buffer we would not copy (a length that is really "whatever"): libc's call, here.
  constexpr std::size_t largest_mirror = std::size_t{64} << 20;
  if (buflen > largest_mirror) return here();
  try {
    hostent_r_outcome out = offload([call = std::move(call), buffer = mirror_buffer(buf, buflen), buflen]() mutable {
      hostent entry{};
      hostent* found = nullptr;
      int herr = 0;
      const int rc = call(&entry, buffer.data(), buflen, &found, &herr);
      // Moving the vector keeps its storage, so entry's pointers stay good.
      return hostent_r_outcome{rc, found != nullptr, herr, entry, std::move(buffer)};
    });
    char* from = out.buffer.data();
    if (buflen > 0) std::memcpy(buf, from, buflen);
    if (out.found) {
      hostent e = out.entry;
      e.h_name = relocate(e.h_name, from, buflen, buf);
      e.h_aliases = relocate_list(e.h_aliases, from, buflen, buf);
      e.h_addr_list = relocate_list(e.h_addr_list, from, buflen, buf);
      *ret = e;
    }
    *result = out.found ? ret : nullptr;
    *h_errnop = out.herr;
    return out.rc;
  } catch (const std::bad_alloc&) {
  } catch (const std::system_error&) {
  }
  return here();
}

// nameinfo_local: a getnameinfo call that asks no DNS server with nsswitch's
// `files dns`: no host wanted or a numeric one, or an address /etc/hosts lists
// (services come from /etc/services either way).
bool nameinfo_local(const sockaddr* sa, socklen_t salen, int flags) {
  if ((flags & NI_NUMERICHOST) != 0 || sa == nullptr) return true;
  if (sa->sa_family == AF_INET && salen >= sizeof(sockaddr_in)) {
    return hosts_answer_address(&reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, 4, AF_INET);
  }
  if (sa->sa_family == AF_INET6 && salen >= sizeof(sockaddr_in6)) {
    return hosts_answer_address(&reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, 16, AF_INET6);
  }
  return true;  // other families: glibc answers EAI_FAMILY itself
}

}  // namespace
}  // namespace grove::hooks

using namespace grove::hooks;

extern "C" {

int getaddrinfo(const char* node, const char* service, const addrinfo* hints, addrinfo** res) {
  if (!cooperative() || numeric(node, service)) return real_getaddrinfo()(node, service, hints, res);
  if (hub_resolver()) {
    try {
      if (const std::optional<int> rc = hub_getaddrinfo(node, service, hints, res)) return *rc;
    } catch (const std::bad_alloc&) {
      return EAI_MEMORY;
    }
  }
  try {
    // Of the hints, getaddrinfo reads flags, family, socket type and protocol.
    std::optional<addrinfo> hints_copy;
    if (hints != nullptr) {
      hints_copy.emplace();
      hints_copy->ai_flags = hints->ai_flags;
      hints_copy->ai_family = hints->ai_family;
      hints_copy->ai_socktype = hints->ai_socktype;
      hints_copy->ai_protocol = hints->ai_protocol;
    }
    addrinfo_outcome out =
        offload([node_copy = optional_string(node), service_copy = optional_string(service), hints_copy] {
          addrinfo* list = nullptr;
          const int rc =
              real_getaddrinfo()(c_str(node_copy), c_str(service_copy), hints_copy ? &*hints_copy : nullptr, &list);
          return addrinfo_outcome{rc, addrinfo_list(rc == 0 ? list : nullptr)};
        });
    // As glibc: *res is written on success only.
    if (out.rc == 0) *res = out.list.release();
    return out.rc;
  } catch (const std::bad_alloc&) {
  } catch (const std::system_error&) {
  }
  return real_getaddrinfo()(node, service, hints, res);
}

int getnameinfo(const sockaddr* sa, socklen_t salen, char* host, socklen_t hostlen, char* serv, socklen_t servlen,
                int flags) {
  if (!cooperative() || (hub_resolver() && nameinfo_local(sa, salen, flags))) {
    return real_getnameinfo()(sa, salen, host, hostlen, serv, servlen, flags);
  }
  try {
    // The copies start as the caller's buffers, so a partial write (or none)
    // leaves them as the call would. One spare byte keeps data() non-null
    // for a zero-length buffer, which the call must still see as given.
    std::vector<char> host_copy = bytes(host, hostlen);
    std::vector<char> serv_copy = bytes(serv, servlen);
    host_copy.push_back('\0');
    serv_copy.push_back('\0');
    nameinfo_outcome out =
        offload([addr = bytes(sa, salen), has_addr = sa != nullptr, salen, host_copy = std::move(host_copy),
                 has_host = host != nullptr, hostlen, serv_copy = std::move(serv_copy), has_serv = serv != nullptr,
                 servlen, flags]() mutable {
          const int rc = real_getnameinfo()(has_addr ? reinterpret_cast<const sockaddr*>(addr.data()) : nullptr, salen,
                                            has_host ? host_copy.data() : nullptr, hostlen,
                                            has_serv ? serv_copy.data() : nullptr, servlen, flags);
          return nameinfo_outcome{rc, std::move(host_copy), std::move(serv_copy)};
        });
    if (host != nullptr && hostlen > 0) std::memcpy(host, out.host.data(), hostlen);
    if (serv != nullptr && servlen > 0) std::memcpy(serv, out.serv.data(), servlen);
    return out.rc;
  } catch (const std::bad_alloc&) {
  } catch (const std::system_error&) {
  }
  return real_getnameinfo()(sa, salen, host, hostlen, serv, servlen, flags);
}

// gethostbyname and gethostbyaddr return glibc's one static result, filled on
// the worker: as natively, it is valid until the next such call, by any task
// or thread. Tasks make that sooner than a single-threaded program expects:
// another task's lookup while this one is blocked overwrites it. Programs that
// run lookups in several tasks should use getaddrinfo or the _r variants.
hostent* gethostbyname(const char* name) {
  if (!cooperative() || (hub_resolver() && hosts_answer(name, AF_INET, 0))) return real_gethostbyname()(name);
  try {
    return offload([name_copy = optional_string(name)] { return real_gethostbyname()(c_str(name_copy)); });
  } catch (const std::bad_alloc&) {
  } catch (const std::system_error&) {
  }
  return real_gethostbyname()(name);
}

hostent* gethostbyname2(const char* name, int af) {
  if (!cooperative() || (hub_resolver() && (af == AF_INET || af == AF_INET6) && hosts_answer(name, af, 0))) {
    return real_gethostbyname2()(name, af);
  }
  try {
    return offload([name_copy = optional_string(name), af] { return real_gethostbyname2()(c_str(name_copy), af); });
  } catch (const std::bad_alloc&) {
  } catch (const std::system_error&) {
  }
  return real_gethostbyname2()(name, af);
}

hostent* gethostbyaddr(const void* addr, socklen_t len, int type) {
  if (!cooperative() || (hub_resolver() && hosts_answer_address(addr, len, type))) {
    return real_gethostbyaddr()(addr, len, type);
  }
  try {
    return offload([addr_copy = bytes(addr, len), has_addr = addr != nullptr, len, type] {
      return real_gethostbyaddr()(has_addr ? addr_copy.data() : nullptr, len, type);
    });
  } catch (const std::bad_alloc&) {
  } catch (const std::system_error&) {
  }
  return real_gethostbyaddr()(addr, len, type);
}

int gethostbyname_r(const char* name, hostent* ret, char* buf, size_t buflen, hostent** result, int* h_errnop) {
  if (!cooperative() || (hub_resolver() && hosts_answer(name, AF_INET, 0))) {
    return real_gethostbyname_r()(name, ret, buf, buflen, result, h_errnop);
  }
  return hostent_r_call(
      [name_copy = optional_string(name)](hostent* e, char* b, size_t n, hostent** found, int* herr) {
        return real_gethostbyname_r()(c_str(name_copy), e, b, n, found, herr);
      },
      ret, buf, buflen, result, h_errnop,
      [&] { return real_gethostbyname_r()(name, ret, buf, buflen, result, h_errnop); });
}

int gethostbyname2_r(const char* name, int af, hostent* ret, char* buf, size_t buflen, hostent** result,
                     int* h_errnop) {
  if (!cooperative() || (hub_resolver() && (af == AF_INET || af == AF_INET6) && hosts_answer(name, af, 0))) {
    return real_gethostbyname2_r()(name, af, ret, buf, buflen, result, h_errnop);
  }
  return hostent_r_call(
      [name_copy = optional_string(name), af](hostent* e, char* b, size_t n, hostent** found, int* herr) {
        return real_gethostbyname2_r()(c_str(name_copy), af, e, b, n, found, herr);
      },
      ret, buf, buflen, result, h_errnop,
      [&] { return real_gethostbyname2_r()(name, af, ret, buf, buflen, result, h_errnop); });
}

int gethostbyaddr_r(const void* addr, socklen_t len, int type, hostent* ret, char* buf, size_t buflen,
                    hostent** result, int* h_errnop) {
  if (!cooperative() || (hub_resolver() && hosts_answer_address(addr, len, type))) {
    return real_gethostbyaddr_r()(addr, len, type, ret, buf, buflen, result, h_errnop);
  }
  return hostent_r_call(
      [addr_copy = bytes(addr, len), has_addr = addr != nullptr, len, type](hostent* e, char* b, size_t n,
                                                                           hostent** found, int* herr) {
        return real_gethostbyaddr_r()(has_addr ? addr_copy.data() : nullptr, len, type, e, b, n, found, herr);
      },
      ret, buf, buflen, result, h_errnop,
      [&] { return real_gethostbyaddr_r()(addr, len, type, ret, buf, buflen, result, h_errnop); });
}

}  // extern "C"
