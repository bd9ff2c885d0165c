// bench_passthrough — what the hooks add to a call made where grove is not in
// charge (a plain thread with no hub), against calling libc's function
// directly, in the same run. Each call is a cheap failing syscall (fd -1:
// EBADF), so the difference is the hook's check and its indirect call.
// Also: a hooked read of a ready socket in a task, against the same direct read.
//
//   taskset -c 1 build/release/bench/hooks/bench_passthrough
#include <dlfcn.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <thread>

#include <grove/task.hpp>

#include "../common.hpp"

namespace {

using read_fn = ssize_t (*)(int, void*, size_t);
using close_fn = int (*)(int);
using recv_fn = ssize_t (*)(int, void*, size_t, int);

constexpr long calls = 300'000;
constexpr int repeats = 60;

// compare prints the best ns per call of hooked and direct, alternating the
// two so that both see the same machine.
template <class Hooked, class Direct>
void compare(const char* what, Hooked hooked, Direct direct) {
  double best_hooked = 1e300, best_direct = 1e300;
  for (int r = 0; r < repeats; ++r) {
    best_hooked = std::min(best_hooked, grove_bench::best_ns(1, calls, [&] {
                             for (long i = 0; i < calls; ++i) hooked();
                           }));
    best_direct = std::min(best_direct, grove_bench::best_ns(1, calls, [&] {
                             for (long i = 0; i < calls; ++i) direct();
                           }));
  }
  std::printf("%-44s hooked %7.1f ns   libc %7.1f ns   added %5.1f ns\n", what, best_hooked, best_direct,
              best_hooked - best_direct);
}

}  // namespace

int main() {
  auto* libc_read = reinterpret_cast<read_fn>(::dlsym(RTLD_NEXT, "read"));
  auto* libc_close = reinterpret_cast<close_fn>(::dlsym(RTLD_NEXT, "close"));
  auto* libc_recv = reinterpret_cast<recv_fn>(::dlsym(RTLD_NEXT, "recv"));
  char buf[64];
  std::printf("pass-through: calls on a plain thread with no hub (target: <= 5 ns added)\n");
  std::thread([&] {
    compare("read(-1) outside any task", [&] { (void)::read(-1, buf, sizeof buf); },
            [&] { (void)libc_read(-1, buf, sizeof buf); });
    compare("close(-1) outside any task", [&] { (void)::close(-1); }, [&] { (void)libc_close(-1); });
    compare("recv(-1) outside any task", [&] { (void)::recv(-1, buf, sizeof buf, 0); },
            [&] { (void)libc_recv(-1, buf, sizeof buf, 0); });
  }).join();

  // In a task: a blocking socket that always has a byte to read.
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return 1;
  grove::spawn([&] {
    std::printf("in a task: a read that finds data (no wait)\n");
    const char one = 'x';
    compare(
        "send + recv of 1 ready byte in a task",
        [&] {
          (void)::send(pair[1], &one, 1, MSG_DONTWAIT);
          (void)::recv(pair[0], buf, 1, 0);
        },
        [&] {
          (void)::send(pair[1], &one, 1, MSG_DONTWAIT);
          (void)libc_recv(pair[0], buf, 1, 0);
        });
  }).join();
  return 0;
}
