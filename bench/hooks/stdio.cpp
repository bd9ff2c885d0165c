// bench_stdio — what the stdio hooks add to fgets and fputs whose FILE buffer
// is ready (a line buffered for fgets, room for fputs), against glibc's own
// functions called directly, in the same run: in a task (where the hooks look
// at the buffer, then call glibc) and on a plain thread (pass-through).
//
// Each round moves 1,000 lines of 32 bytes through a pipe: fputs them into a
// 64 KiB buffer, fflush (one write), fgets them back (one refill, then 999
// lines from the buffer). The flush and refill are amortised over the lines.
//
//   taskset -c 1 build/release/bench/hooks/bench_stdio
#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>

#include <cstdio>
#include <thread>

#include <grove/task.hpp>

#include "../common.hpp"

namespace {

using fgets_fn = char* (*)(char*, int, FILE*);
using fputs_fn = int (*)(const char*, FILE*);

constexpr int lines = 1000;
constexpr int rounds = 40;
constexpr int repeats = 15;
const char line[] = "a line of thirty-two bytes ....\n";
static_assert(sizeof line == 33);

// pipe_files is a pipe with a 64 KiB-buffered FILE on each end.
struct pipe_files {
  FILE* in = nullptr;
  FILE* out = nullptr;
  pipe_files() {
    int fds[2];
    if (::pipe(fds) != 0) std::abort();
    in = ::fdopen(fds[0], "r");
    out = ::fdopen(fds[1], "w");
    ::setvbuf(in, nullptr, _IOFBF, 1 << 16);
    ::setvbuf(out, nullptr, _IOFBF, 1 << 16);
  }
  ~pipe_files() {
    ::fclose(in);
    ::fclose(out);
  }
};

struct timing {
  double put_ns, get_ns;
};

// measure is the best ns per fputs and per fgets over `repeats` runs.
timing measure(fputs_fn put, fgets_fn get) {
  pipe_files p;
  char buf[64];
  timing best{1e300, 1e300};
  for (int r = 0; r < repeats; ++r) {
    double put_ns = 0, get_ns = 0;
    for (int round = 0; round < rounds; ++round) {
      put_ns += grove_bench::best_ns(1, lines, [&] {
        for (int i = 0; i < lines; ++i) put(line, p.out);
        ::fflush(p.out);
      });
      get_ns += grove_bench::best_ns(1, lines, [&] {
        for (int i = 0; i < lines; ++i) get(buf, sizeof buf, p.in);
      });
    }
    best.put_ns = std::min(best.put_ns, put_ns / rounds);
    best.get_ns = std::min(best.get_ns, get_ns / rounds);
  }
  return best;
}

void report(const char* where, const timing& hooked, const timing& direct) {
  std::printf("%-18s fputs: hooked %6.1f ns  glibc %6.1f ns  ratio %.2f  added %5.1f ns\n", where, hooked.put_ns,
              direct.put_ns, hooked.put_ns / direct.put_ns, hooked.put_ns - direct.put_ns);
  std::printf("%-18s fgets: hooked %6.1f ns  glibc %6.1f ns  ratio %.2f  added %5.1f ns\n", where, hooked.get_ns,
              direct.get_ns, hooked.get_ns / direct.get_ns, hooked.get_ns - direct.get_ns);
}

}  // namespace

int main() {
  auto* glibc_fgets = reinterpret_cast<fgets_fn>(::dlsym(RTLD_NEXT, "fgets"));
  auto* glibc_fputs = reinterpret_cast<fputs_fn>(::dlsym(RTLD_NEXT, "fputs"));
  std::printf("fputs and fgets of 32-byte lines through 64 KiB FILE buffers on a pipe, ns per call\n");
  std::printf("(each includes 1/1000 of a flush or a refill)\n");
  timing hooked{}, direct{};
  grove::spawn([&] {
    // Alternate, so that both see the same machine.
    hooked = measure(::fputs, ::fgets);
    direct = measure(glibc_fputs, glibc_fgets);
    const timing again = measure(::fputs, ::fgets);
    hooked.put_ns = std::min(hooked.put_ns, again.put_ns);
    hooked.get_ns = std::min(hooked.get_ns, again.get_ns);
  }).join();
  report("in a task", hooked, direct);
  std::thread([&] {
    hooked = measure(::fputs, ::fgets);
    direct = measure(glibc_fputs, glibc_fgets);
  }).join();
  report("outside any task", hooked, direct);
  return 0;
}
