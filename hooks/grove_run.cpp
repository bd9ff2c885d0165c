// grove-run — run an unmodified program with its blocking calls made
// cooperative: LD_PRELOAD=libgrove-preload.so PROGRAM ARGS..., with options for
// grove's settings. See usage() and the README's "run an existing binary".
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>

#include <grove/settings.hpp>

namespace {

void usage(std::FILE* to) {
  std::fputs(
      "usage: grove-run [options] PROGRAM [ARGS...]\n"
      "\n"
      "Runs PROGRAM with libgrove-preload.so preloaded: its main thread gets a grove\n"
      "hub, and its blocking calls (sleeps, sockets, pipes, poll/select/epoll, DNS,\n"
      "pthread mutexes, condition variables, semaphores, joins) wait cooperatively on\n"
      "it. Its pthreads become green threads: grove tasks spread over one hub (an OS\n"
      "thread with its own event loop) per CPU, or over --hubs of them.\n"
      "Equivalent to LD_PRELOAD=.../libgrove-preload.so.\n"
      "\n"
      "options (each sets the environment variable named after it; the default is\n"
      "what applies when neither the option nor the variable is given):\n"
      "  --threads=MODE         GROVE_THREADS: green (default: pthreads become grove\n"
      "                         tasks on the hubs) or native (they stay OS threads)\n"
      "  --hubs=N               GROVE_HUBS: hubs the green threads are spread over, each\n"
      "                         an OS thread (1-1024, or cpus: one per CPU the process\n"
      "                         may run on, the default); a green thread stays on the\n"
      "                         hub it started on\n"
      "  --stack-size=SIZE      GROVE_STACK_SIZE: stack of each grove task, bytes with\n"
      "                         an optional K, M or G (default 256K); a green thread's\n"
      "                         stack is the one its pthread attributes ask for (8M by\n"
      "                         default, as glibc's)\n"
      "  --stack-mode=MODE      GROVE_STACK_MODE: guarded (default: a guard page below\n"
      "                         each stack) or dense (no guard page, no mapping each)\n"
      "  --threadpool-size=N    GROVE_THREADPOOL_SIZE: threads for DNS and other\n"
      "                         blocking work (1-1024, default 10)\n"
      "  --resolver=MODE        GROVE_RESOLVER: auto (default: name lookups on the hub\n"
      "                         when nsswitch.conf's hosts line is `files dns`, else on\n"
      "                         the thread pool), ares (always on the hub) or thread\n"
      "  --file-io=WAY          GROVE_FILE_IO: how file calls that would wait for the\n"
      "                         disk leave the hub: io_uring (default; the thread pool\n"
      "                         where the kernel refuses io_uring) or pool\n"
      "  --monitor-ms=N         GROVE_MONITOR_MS: report on stderr when the hub is held\n"
      "                         for N ms by code that never yields (default off)\n"
      "  --dump-on-signal=SIG   GROVE_DUMP_ON_SIGNAL: print every task on SIG (USR1,\n"
      "                         SIGUSR2, 10...; default off)\n"
      "  --backtraces=0|1       GROVE_BACKTRACES: that dump shows each suspended task's\n"
      "                         backtrace (default 0)\n"
      "  --no-inherit           GROVE_INHERIT=0: programs PROGRAM starts with exec run\n"
      "                         without grove (default GROVE_INHERIT=1: they inherit it)\n"
      "  -h, --help             print this and exit\n"
      "  --version              print grove-run's version and exit\n"
      "  --                     end of options\n"
      "\n"
      "GROVE_PRELOAD names libgrove-preload.so when it is neither beside grove-run nor\n"
      "in ../lib/grove or ../" GROVE_INSTALL_LIBDIR "/grove (default: found there).\n"
      "A bad option or GROVE_* value prints a message and exits with status 2.\n",
      to);
}

[[noreturn]] void fail(const std::string& why) {
  std::fprintf(stderr, "grove-run: %s\n", why.c_str());
  std::fprintf(stderr, "Try 'grove-run --help'.\n");
  std::exit(2);
}

// preload_library finds libgrove-preload.so beside grove-run (the build tree)
// or in ../lib/grove or ../LIBDIR/grove (an installation); GROVE_PRELOAD names
// it explicitly.
std::string preload_library() {
  if (const char* v = std::getenv("GROVE_PRELOAD"); v != nullptr && *v != '\0') {
    if (::access(v, R_OK) != 0) fail(std::string("GROVE_PRELOAD=\"") + v + "\": no such readable file");
    return v;
  }
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const std::filesystem::path dir = self.parent_path();
    for (const auto& candidate :
         {dir / "libgrove-preload.so", dir / ".." / "lib" / "grove" / "libgrove-preload.so",
          dir / ".." / GROVE_INSTALL_LIBDIR / "grove" / "libgrove-preload.so"}) {
      if (::access(candidate.c_str(), R_OK) == 0) return std::filesystem::weakly_canonical(candidate).string();
    }
  }
  fail("cannot find libgrove-preload.so beside grove-run or in ../lib/grove (set GROVE_PRELOAD to its path)");
}

struct option_to_env {
  std::string_view option;
  const char* env;
};

constexpr option_to_env valued_options[] = {
    {"--stack-size", "GROVE_STACK_SIZE"},           {"--stack-mode", "GROVE_STACK_MODE"},
    {"--threadpool-size", "GROVE_THREADPOOL_SIZE"}, {"--monitor-ms", "GROVE_MONITOR_MS"},
    {"--dump-on-signal", "GROVE_DUMP_ON_SIGNAL"},   {"--threads", "GROVE_THREADS"},
    {"--resolver", "GROVE_RESOLVER"},               {"--backtraces", "GROVE_BACKTRACES"},
    {"--hubs", "GROVE_HUBS"},                       {"--file-io", "GROVE_FILE_IO"},
};

}  // namespace

int main(int argc, char** argv) {
  int i = 1;
  for (; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg == "-h" || arg == "--help") {
      usage(stdout);
      return 0;
    }
    if (arg == "--version") {
      std::printf("grove-run %s\n", GROVE_VERSION);
      return 0;
    }
    if (arg == "--no-inherit") {
      ::setenv("GROVE_INHERIT", "0", 1);
      continue;
    }
    if (arg.size() < 2 || arg[0] != '-') break;  // the program
    bool known = false;
    for (const auto& [option, env] : valued_options) {
      if (arg.substr(0, option.size()) != option) continue;
      std::string value;
      if (arg.size() > option.size() && arg[option.size()] == '=') {
        value = arg.substr(option.size() + 1);
      } else if (arg.size() == option.size()) {
        if (i + 1 >= argc) fail(std::string(option) + " needs a value");
        value = argv[++i];
      } else {
        continue;
      }
      ::setenv(env, value.c_str(), 1);
      known = true;
      break;
    }
    if (!known) fail("unknown option " + std::string(arg));
  }
  if (i >= argc) fail("no program to run");

  // Check the settings here, so a bad one is reported before the program runs.
  grove::check_settings();
  if (const char* v = std::getenv("GROVE_THREADS"); v != nullptr && *v != '\0') {
    const std::string_view mode = v;
    if (mode != "green" && mode != "native") {
      std::fprintf(stderr,
                   "grove: GROVE_THREADS=\"%s\": not green (pthreads become green threads on the hubs) or "
                   "native (they stay OS threads)\n",
                   v);
      return 2;
    }
  }

  if (const char* v = std::getenv("GROVE_RESOLVER"); v != nullptr && *v != '\0') {
    const std::string_view mode = v;
    if (mode != "auto" && mode != "ares" && mode != "thread") {
      std::fprintf(stderr,
                   "grove: GROVE_RESOLVER=\"%s\": not auto (lookups on the hub when nsswitch.conf's hosts line is "
                   "`files dns`, else on the thread pool), ares (always on the hub) or thread (always on the pool)\n",
                   v);
      return 2;
    }
  }

  std::string preload = preload_library();
  if (const char* old = std::getenv("LD_PRELOAD"); old != nullptr && *old != '\0') preload += std::string(":") + old;
  ::setenv("LD_PRELOAD", preload.c_str(), 1);
  ::execvp(argv[i], argv + i);
  const int err = errno;
  std::fprintf(stderr, "grove-run: %s: %s\n", argv[i], std::strerror(err));
  return err == ENOENT ? 127 : 126;  // as a shell reports a program it cannot run
}
