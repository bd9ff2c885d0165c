// Built against an installed grove with its hooks (grove::hooks and
// grove::hooks_static through CMake, grove-hooks through pkg-config): two tasks
// each sleep 300 ms in plain blocking libc calls, one through the program's own
// call and one through the symbol any shared library would bind to. With the
// hooks in force they sleep together (about 300 ms); without them, one after
// the other (600 ms).
#include <dlfcn.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <vector>

#include <grove/grove.hpp>

int main() {
  using clock = std::chrono::steady_clock;
  auto* shared_usleep = reinterpret_cast<int (*)(useconds_t)>(::dlsym(RTLD_DEFAULT, "usleep"));
  if (shared_usleep == nullptr) return 3;
  const auto start = clock::now();
  std::vector<grove::task<void>> tasks;
  tasks.push_back(grove::spawn([] { ::usleep(300'000); }));
  tasks.push_back(grove::spawn([&] { shared_usleep(300'000); }));
  grove::joinall(tasks);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - start).count();
  std::printf("hooks consumer: two 300 ms sleeps took %lld ms\n", static_cast<long long>(ms));
  return ms < 550 ? 0 : 1;
}
