// bench_stdio — what the stdio hooks add to fgets and fputs whose FILE buffer
// is ready (a line buffered for fgets, room for fputs), against glibc's own
// functions called directly, in the same run: in a task (where the hooks look
// at the buffer, then call glibc) and on a plain thread (pass-through).
//
// Each round moves 1,000 lines of 32 bytes through a pipe: fputs them into a
// 64 KiB buffer, fflush (one write), fgets them back (one refill, then 999
// lines from the buffer). The flush and refill are amortised over the lines.
//
// Then the same for a cached file (16 MiB of 40-byte lines, glibc's default
// 4 KiB buffer): fgets line by line, where each refill (every ~100 lines)
// first makes sure the page cache has the block (an lseek and a 4 KiB read
// with RWF_NOWAIT), and fread in 1 MiB calls, which read through the hooked
// read (grove::file). ns per line and per MiB, hooked in a task against
// glibc's functions called directly.
//
//   taskset -c 1 build/release/bench/hooks/bench_stdio [FILE]   (FILE: a scratch path, default
//                                                          /tmp/grove-bench-lines.txt, removed after)
#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

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

using fread_fn = size_t (*)(void*, size_t, size_t, FILE*);

// file_pass is the best ns per fgets line (reading all of path) and per MiB of
// fread in 1 MiB calls, over `repeats` passes each.
timing file_pass(const char* path, fgets_fn get, fread_fn read) {
  timing best{1e300, 1e300};
  std::vector<char> big(1 << 20);
  for (int r = 0; r < 7; ++r) {
    FILE* f = std::fopen(path, "r");
    char buf[128];
    long n = 0;
    const auto t0 = std::chrono::steady_clock::now();
    while (get(buf, sizeof buf, f) != nullptr) ++n;
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
    best.get_ns = std::min(best.get_ns, ns / static_cast<double>(n));
    std::rewind(f);
    long mib = 0;
    const auto t1 = std::chrono::steady_clock::now();
    while (read(big.data(), 1, big.size(), f) == big.size()) ++mib;
    const double ns2 = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t1).count();
    best.put_ns = std::min(best.put_ns, ns2 / static_cast<double>(mib));
    std::fclose(f);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
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

  const char* path = argc > 1 ? argv[1] : "/tmp/grove-bench-lines.txt";
  {
    FILE* out = std::fopen(path, "w");
    if (out == nullptr) {
      std::perror(path);
      return 1;
    }
    for (int i = 0; i < (16 << 20) / 40; ++i) std::fprintf(out, "line %08d of forty bytes, for fgets.\n", i);
    std::fclose(out);
  }
  auto* glibc_fread = reinterpret_cast<fread_fn>(::dlsym(RTLD_NEXT, "fread"));
  std::printf("\na cached 16 MiB file of 40-byte lines: fgets ns per line, fread (1 MiB calls) ns per MiB\n");
  timing file_hooked{}, file_direct{};
  grove::spawn([&] {
    file_hooked = file_pass(path, ::fgets, ::fread);
    file_direct = file_pass(path, glibc_fgets, glibc_fread);
    const timing again = file_pass(path, ::fgets, ::fread);
    file_hooked.get_ns = std::min(file_hooked.get_ns, again.get_ns);
    file_hooked.put_ns = std::min(file_hooked.put_ns, again.put_ns);
  }).join();
  std::printf("%-18s fgets: hooked %6.1f ns  glibc %6.1f ns  ratio %.2f\n", "in a task", file_hooked.get_ns,
              file_direct.get_ns, file_hooked.get_ns / file_direct.get_ns);
  std::printf("%-18s fread: hooked %6.0f ns  glibc %6.0f ns  ratio %.2f\n", "in a task", file_hooked.put_ns,
              file_direct.put_ns, file_hooked.put_ns / file_direct.put_ns);
  std::remove(path);
  return 0;
}
