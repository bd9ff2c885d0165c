// libc.cpp — looking up the real libc functions (see libc.hpp).
#include "libc.hpp"

#include <dlfcn.h>
#include <sys/syscall.h>

#include <cstring>

namespace grove::hooks {

real_functions real_fns;

void* lookup(const char* name) noexcept {
  void* f = ::dlsym(RTLD_NEXT, name);
  if (f == nullptr) {
    // No stdio and no write(): neither may be usable yet, and write is hooked.
    static const char head[] = "grove: cannot find libc's ";
    ::syscall(SYS_write, 2, head, sizeof head - 1);
    ::syscall(SYS_write, 2, name, std::strlen(name));
    ::syscall(SYS_write, 2, "\n", 1);
    ::_exit(2);
  }
  return f;
}

void resolve_all() noexcept {
#define GROVE_RESOLVE(name, type) (void)real_##name();
  GROVE_LIBC_FUNCTIONS(GROVE_RESOLVE)
#undef GROVE_RESOLVE
}

namespace {
[[gnu::constructor(101)]] void resolve_at_start() { resolve_all(); }
}  // namespace

}  // namespace grove::hooks

// A program linking the shared libgrove-hooks is made to reference this
// (--undefined=grove_hooks_linked), so that --as-needed never drops the library
// even when the program calls none of the hooked functions itself.
extern "C" [[gnu::visibility("default"), gnu::used]] const int grove_hooks_linked = 1;
