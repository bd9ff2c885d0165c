// preload.cpp — the entry of libgrove-preload.so (grove-run, LD_PRELOAD).
//
// Before the program's own constructors and main, on the main thread: check
// every GROVE_* setting (a bad one: message, exit 2) and create the main
// thread's hub, so main runs on it and its blocking calls are cooperative from
// the first one. main runs in the thread's main greenlet, on the process's own
// stack (whose size ulimit -s sets, as natively); the hub runs in its own.
//
// Children started with exec inherit LD_PRELOAD and so run under grove too,
// unless GROVE_INHERIT=0 (grove-run --no-inherit): then this library takes
// itself out of LD_PRELOAD here, before the program can start any.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include <grove/detail/os_threads.hpp>
#include <grove/hub.hpp>
#include <grove/settings.hpp>

#include "resolver.hpp"
#include "spread.hpp"
#include "threads.hpp"

namespace grove::hooks {
namespace {

[[noreturn]] void bad(const char* name, const char* value, const char* why) {
  std::fprintf(stderr, "grove: %s=\"%s\": %s\n", name, value, why);
  std::fflush(stderr);
  std::_Exit(2);
}

// without_self returns LD_PRELOAD's list minus this library.
std::string without_self(std::string_view list) {
  Dl_info self{};
  ::dladdr(reinterpret_cast<void*>(&without_self), &self);
  const std::string_view me = self.dli_fname != nullptr ? self.dli_fname : "libgrove-preload.so";
  std::string kept;
  std::size_t i = 0;
  while (i < list.size()) {
    const std::size_t end = list.find_first_of(": ", i);
    const std::string_view item = list.substr(i, end == std::string_view::npos ? std::string_view::npos : end - i);
    const bool ours = item == me || (item.size() >= 19 && item.substr(item.size() - 19) == "libgrove-preload.so");
    if (!item.empty() && !ours) {
      if (!kept.empty()) kept += ':';
      kept += item;
    }
    if (end == std::string_view::npos) break;
    i = end + 1;
  }
  return kept;
}

[[gnu::constructor(102)]] void start() {
  if (const char* v = std::getenv("GROVE_INHERIT"); v != nullptr && *v != '\0') {
    if (std::strcmp(v, "0") == 0) {
      if (const char* list = std::getenv("LD_PRELOAD")) {
        const std::string kept = without_self(list);
        kept.empty() ? ::unsetenv("LD_PRELOAD") : ::setenv("LD_PRELOAD", kept.c_str(), 1);
      }
    } else if (std::strcmp(v, "1") != 0) {
      bad("GROVE_INHERIT", v, "not 0 (exec'd children run without grove) or 1 (they run under grove, the default)");
    }
  }
  // A preloaded program's pthreads are green unless GROVE_THREADS=native.
  default_to_green();
  (void)green_threads();    // a bad GROVE_THREADS stops the program here, with status 2
  (void)spread::hubs();     // and so does a bad GROVE_HUBS
  (void)hub_resolver();     // and so does a bad GROVE_RESOLVER
  grove::check_settings();  // and creates the main thread's hub
  // The hub is never torn down: at exit the program's other threads vanish,
  // as OS threads do, rather than being unwound.
  grove::detail::keep_hub_at_exit();
}

}  // namespace
}  // namespace grove::hooks
