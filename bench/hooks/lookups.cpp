// bench_lookups — getaddrinfo of a name from /etc/hosts ("localhost") in a
// task: the hooked call (answered on the hub, GROVE_RESOLVER=auto with
// nsswitch's `files dns`), glibc's getaddrinfo called directly (blocking the
// hub), and the same direct call on the thread pool (what GROVE_RESOLVER=thread
// does), in the same run. Prints lookups per second.
//
//   taskset -c 1 build/release/bench/hooks/bench_lookups
#include <dlfcn.h>
#include <netdb.h>
#include <sys/socket.h>

#include <cstdio>

#include <grove/task.hpp>
#include <grove/thread_pool.hpp>

#include "../common.hpp"

namespace {

using getaddrinfo_fn = int (*)(const char*, const char*, const addrinfo*, addrinfo**);

constexpr long lookups = 20'000;
constexpr int repeats = 5;

// look_up resolves localhost:80 for TCP with f and frees the result.
void look_up(getaddrinfo_fn f) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  if (f("localhost", "80", &hints, &list) == 0) ::freeaddrinfo(list);
}

}  // namespace

int main() {
  auto* libc_getaddrinfo = reinterpret_cast<getaddrinfo_fn>(::dlsym(RTLD_NEXT, "getaddrinfo"));
  grove::spawn([&] {
    const double hub = grove_bench::best_ns(repeats, lookups, [] {
      for (long i = 0; i < lookups; ++i) look_up(::getaddrinfo);
    });
    const double direct = grove_bench::best_ns(repeats, lookups, [&] {
      for (long i = 0; i < lookups; ++i) look_up(libc_getaddrinfo);
    });
    const double pool = grove_bench::best_ns(repeats, lookups / 4, [&] {
      for (long i = 0; i < lookups / 4; ++i) grove::run_in_thread([&] { look_up(libc_getaddrinfo); });
    });
    std::printf("getaddrinfo(\"localhost\") in a task, lookups/s:\n");
    std::printf("  hooked, on the hub            %9.0f\n", 1e9 / hub);
    std::printf("  glibc's, called directly      %9.0f\n", 1e9 / direct);
    std::printf("  glibc's on the thread pool    %9.0f\n", 1e9 / pool);
  }).join();
  return 0;
}
