// resolver.hpp — name lookups answered on the hub, without an OS thread.
//
// When the hosts line of /etc/nsswitch.conf is Debian's `files dns` (or
// GROVE_RESOLVER=ares), a task's lookup is answered on its hub:
//   - a name (or address) /etc/hosts answers: glibc's own call, made right
//     here. With `files` first, glibc reads /etc/hosts, finds it and never asks
//     DNS: the call cannot block, and its results are glibc's by construction.
//   - anything else: DNS through c-ares on the hub (its sockets waited on with
//     wait_fd, its timeouts as the wait's limit), the results laid out and
//     ordered as glibc's getaddrinfo lays them out and orders them.
// Cases this does not answer itself (IDN flags, an /etc/gai.conf with rules,
// the reverse lookups and hostent calls that need DNS) go to the thread pool
// as before, so their semantics stay exactly glibc's.
#pragma once

#include <netdb.h>
#include <sys/socket.h>

#include <optional>
#include <string>

namespace grove::hooks {

// read_config reads a small configuration file (/etc/hosts, resolv.conf...)
// whole into text with libc's own calls: false if it cannot be opened. Never
// through the hooks, which would make it a file call that may park or give
// way: the parsers that read it keep per-thread state a task switch would
// share with another lookup half-way.
bool read_config(const char* path, std::string& text);

// hub_resolver tells whether lookups in tasks are answered on the hub:
// GROVE_RESOLVER=ares, or auto (the default) with nsswitch's hosts line
// `files dns`; thread (or auto with any other hosts line) keeps the pool.
// Read once; a bad GROVE_RESOLVER prints a message and exits with status 2.
bool hub_resolver();

// hosts_answer tells whether glibc's `files` service answers a lookup of name
// for family (AF_INET, AF_INET6 or AF_UNSPEC) with getaddrinfo's flags (only
// AI_V4MAPPED and AI_ALL matter): then glibc never reaches DNS. /etc/hosts is
// parsed once per thread and again when it changes.
bool hosts_answer(const char* name, int family, int flags);

// hosts_answer_address tells whether /etc/hosts lists the address (len bytes
// of family AF_INET or AF_INET6), so a reverse lookup ends in files.
bool hosts_answer_address(const void* addr, socklen_t len, int family);

// hub_getaddrinfo answers getaddrinfo in a task on the hub (the caller checked
// hub_resolver()). Empty: this lookup is not one it answers; use the pool.
// Its results are freed by glibc's freeaddrinfo (each entry one malloc with its
// address, the canonical name its own).
std::optional<int> hub_getaddrinfo(const char* node, const char* service, const addrinfo* hints, addrinfo** res);

}  // namespace grove::hooks
