// processes.cpp — waiting for child processes in tasks: wait, waitpid, wait3,
// wait4, waitid, and the calls that wait inside glibc (system, pclose).
//
// A wait in a task becomes "try with WNOHANG, wait on the hub, try again",
// with the caller's other options (WUNTRACED, WCONTINUED, WNOWAIT, __WALL...)
// kept, so the kernel decides everything a blocking call would: which child,
// its status word, rusage, siginfo, ECHILD when there is none (also once
// children that SIGCHLD's SIG_IGN reaps are gone), EINVAL for bad options.
// Between tries a task waits for one child on a pidfd (readable once the child
// has exited; Linux 5.3), and for any child, a process group, or a stop or
// continue event (no pidfd reports those) by sleeping on the hub: 1 ms, then
// twice as long each time, up to 10 ms. Calls with WNOHANG, and every call
// outside a task, go straight to libc.
//
// system and pclose wait inside glibc, where no hook sees it, so they are
// hooked whole: system as glibc's own (posix_spawn of /bin/sh -c, the caller's
// signal handling while it waits) with a cooperative wait; pclose (and fclose,
// which does the same on a popen stream) by waiting for the child's exit
// cooperatively before glibc's own pclose reaps it at once.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

#include "context.hpp"
#include "libc.hpp"
#include "processes.hpp"
#include "signals.hpp"
#include "threads.hpp"

extern "C" char** environ;

namespace grove::hooks {
namespace {

using std::chrono::milliseconds;

// How long a task sleeps between tries when no pidfd tells it when to look.
constexpr milliseconds first_look{1};
constexpr milliseconds slowest_look{10};

// pidfd is a pidfd of one child (-1: none), closed with the hooks' close so
// the hub forgets it before its number can be reused.
struct pidfd {
  int fd;
  explicit pidfd(pid_t pid) noexcept : fd(-1) {
    const keep_errno kept;  // no pidfd (ENOSYS, EMFILE...) is no failure of the wait
    if (pid > 0) fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  }
  pidfd(const pidfd&) = delete;
  pidfd& operator=(const pidfd&) = delete;
  ~pidfd() {
    if (fd >= 0) {
      const keep_errno kept;
      ::close(fd);
    }
  }
};

// wait_between waits for children cooperatively between tries: try_once()
// makes the call without blocking and returns true when it has the call's
// outcome (a child, or an error). `one` is the pid of the one child waited
// for (0: any child, a group, or a pidfd the caller gave in `given_fd`);
// exits_only says the call waits for nothing but exits, which a pidfd
// reports. The first try is the caller's. Returns false when a signal handler
// that ran in the caller meanwhile ends the wait (errno EINTR; with
// SA_RESTART the wait goes on, as the kernel restarts it). Interruptions of
// the task propagate as exceptions.
template <class Try>
bool wait_between(pid_t one, int given_fd, bool exits_only, Try try_once) {
  const pidfd own(one);
  int fd = given_fd >= 0 ? given_fd : own.fd;
  milliseconds nap = first_look;
  for (;;) {
    waited how;
    if (fd >= 0) {
      // A pidfd turns readable when the child exits; a stop or continue
      // event does not, so those are looked for every slowest_look too.
      const limit l = exits_only ? limit::never() : limit::after(slowest_look);
      const int saved = errno;
      how = wait_fd(fd, true, l, on_handler::restart);
      if (how == waited::failed) {  // cannot be watched: sleep instead
        errno = saved;
        fd = -1;
        how = waited::ready;
      }
    } else {
      how = sleep_until(limit::after(nap), on_handler::restart);
      nap = std::min(nap * 2, slowest_look);
    }
    if (how == waited::interrupted) return false;
    if (try_once()) return true;
  }
}

// wait4_in_task is wait4(pid, status, options, usage) in a task, cooperative.
// The kernel writes *status and *usage only when it reports a child, so the
// caller's pointers go to every try.
pid_t wait4_in_task(pid_t pid, int* status, int options, rusage* usage) {
  pid_t r = real_wait4()(pid, status, options | WNOHANG, usage);
  if (r != 0) return r;  // a child, or an error (ECHILD, EINVAL...)
  const bool exits_only = (options & (WUNTRACED | WCONTINUED)) == 0;
  const bool done = wait_between(pid, -1, exits_only, [&] {
    r = real_wait4()(pid, status, options | WNOHANG, usage);
    return r != 0;
  });
  return done ? r : -1;
}

// waitid_in_task is waitid(type, id, info, options) in a task, cooperative.
// The tries fill a siginfo of our own (a WNOHANG try that finds no child
// writes zeros); the caller's gets the fields the kernel writes once there is
// a child.
int waitid_in_task(idtype_t type, id_t id, siginfo_t* info, int options) {
  siginfo_t got{};
  int r = real_waitid()(type, id, &got, options | WNOHANG);
  const auto done = [&] { return r != 0 || got.si_pid != 0; };
  if (!done()) {
    const bool exits_only = (options & (WSTOPPED | WCONTINUED)) == 0;
    const pid_t one = type == P_PID ? static_cast<pid_t>(id) : 0;
    const int given_fd = type == P_PIDFD ? static_cast<int>(id) : -1;
    const bool finished = wait_between(one, given_fd, exits_only, [&] {
      got = siginfo_t{};
      r = real_waitid()(type, id, &got, options | WNOHANG);
      return done();
    });
    if (!finished) return -1;
  }
  if (r == 0 && info != nullptr) {
    info->si_signo = got.si_signo;
    info->si_errno = got.si_errno;
    info->si_code = got.si_code;
    info->si_pid = got.si_pid;
    info->si_uid = got.si_uid;
    info->si_status = got.si_status;
  }
  return r;
}

// ---- system -----------------------------------------------------------------

// shell_signals is glibc's system() bookkeeping, shared by every caller in the
// process: the first of concurrent system() calls sets SIGINT and SIGQUIT to
// SIG_IGN and keeps their dispositions, the last puts them back. And SIGCHLD
// is blocked in the caller's mask while it waits. glibc saves and restores
// that mask around each call; but tasks of one hub that are not green threads
// share one mask (main's), and there concurrent calls would undo each other's.
// So SIGCHLD is counted per mask: the first call on a mask blocks it, the last
// unblocks it, if it was not blocked before. A green thread has a mask of its
// own, which makes this glibc's per-call save and restore.
struct chld_hold {
  const void* owner;  // the mask: its signals::thread_state, or an OS thread's marker
  int users;
  bool added;  // SIGCHLD was not blocked before the first call
};
struct shell_signals {
  std::mutex lock;  // held only around sigaction and mask calls, never across a wait
  int users = 0;
  struct sigaction intr {};
  struct sigaction quit {};
  std::vector<chld_hold> chld;
};
shell_signals& shell() {
  static shell_signals* const s = new shell_signals;  // never destroyed: system() may run at exit
  return *s;
}

// mask_key names the calling thread's signal mask.
const void* mask_key() noexcept {
  if (const signals::thread_state* s = signals::mask_owner()) return s;
  static thread_local const char os_thread_mask = 0;  // no hub: the OS thread's own mask
  return &os_thread_mask;
}

// shell_wait is one system() call's hold on the signal state: taken when it
// starts, given back when it ends, however it ends (a cancelled green thread
// unwinds through it, and so does a killed task).
class shell_wait {
 public:
  shell_wait() : owner_(mask_key()) {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    sigset_t only_chld;
    sigemptyset(&only_chld);
    sigaddset(&only_chld, SIGCHLD);
    shell_signals& sh = shell();
    const std::lock_guard<std::mutex> held(sh.lock);
    if (sh.users++ == 0) {
      ::sigaction(SIGINT, &ignore, &sh.intr);
      ::sigaction(SIGQUIT, &ignore, &sh.quit);
    }
    intr_ignored_ = sh.intr.sa_handler == SIG_IGN;
    quit_ignored_ = sh.quit.sa_handler == SIG_IGN;
    sigset_t before;
    ::pthread_sigmask(SIG_BLOCK, &only_chld, &before);
    auto it = std::find_if(sh.chld.begin(), sh.chld.end(), [this](const chld_hold& h) { return h.owner == owner_; });
    if (it == sh.chld.end()) {
      sh.chld.push_back({owner_, 0, sigismember(&before, SIGCHLD) == 0});
      it = sh.chld.end() - 1;
    }
    ++it->users;
    // The child's mask is the caller's as it was before system(): SIGCHLD
    // comes off again if a system() on this mask blocked it.
    child_mask_ = before;
    if (it->added) sigdelset(&child_mask_, SIGCHLD);
  }
  shell_wait(const shell_wait&) = delete;
  shell_wait& operator=(const shell_wait&) = delete;
  ~shell_wait() {
    const keep_errno kept;
    shell_signals& sh = shell();
    const std::lock_guard<std::mutex> held(sh.lock);
    if (--sh.users == 0) {
      ::sigaction(SIGINT, &sh.intr, nullptr);
      ::sigaction(SIGQUIT, &sh.quit, nullptr);
    }
    const auto it =
        std::find_if(sh.chld.begin(), sh.chld.end(), [this](const chld_hold& h) { return h.owner == owner_; });
    if (it != sh.chld.end() && --it->users == 0) {
      if (it->added) {
        sigset_t only_chld;
        sigemptyset(&only_chld);
        sigaddset(&only_chld, SIGCHLD);
        ::pthread_sigmask(SIG_UNBLOCK, &only_chld, nullptr);
      }
      sh.chld.erase(it);
    }
  }

  // spawn_attributes sets up attr for the child as glibc's system() does: the
  // caller's mask, and SIGINT and SIGQUIT back to SIG_DFL unless the caller
  // ignored them itself.
  void spawn_attributes(posix_spawnattr_t& attr) const noexcept {
    sigset_t reset;
    sigemptyset(&reset);
    if (!intr_ignored_) sigaddset(&reset, SIGINT);
    if (!quit_ignored_) sigaddset(&reset, SIGQUIT);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setsigmask(&attr, &child_mask_);
    posix_spawnattr_setsigdefault(&attr, &reset);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  }

 private:
  const void* owner_;
  sigset_t child_mask_{};
  bool intr_ignored_ = false;
  bool quit_ignored_ = false;
};

// shell_child is the shell a system() call started. If the call is cut short
// while it waits (a cancelled green thread or thread, a killed task), the
// shell is killed and reaped, as glibc's cancellation handler does.
struct shell_child {
  pid_t pid = -1;
  bool reaped = false;
  shell_child() = default;
  shell_child(const shell_child&) = delete;
  shell_child& operator=(const shell_child&) = delete;
  ~shell_child() {
    if (pid <= 0 || reaped) return;
    const keep_errno kept;
    ::kill(pid, SIGKILL);
    int state = 0;
    ::pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &state);
    while (real_wait4()(pid, nullptr, 0, nullptr) == -1 && errno == EINTR) {
    }
    ::pthread_setcancelstate(state, nullptr);
  }
};

// run_shell is glibc's do_system: /bin/sh -c line, waited for cooperatively in
// a task. Returns its wait status, W_EXITCODE(127, 0) with errno set when the
// shell cannot be started, -1 when the wait fails.
int run_shell(const char* line) {
  keep_errno kept;
  int status = -1;
  int spawned = 0;
  {
    const shell_wait hold;
    posix_spawnattr_t attr;
    hold.spawn_attributes(attr);
    char* const argv[] = {const_cast<char*>("sh"), const_cast<char*>("-c"), const_cast<char*>(line), nullptr};
    shell_child child;
    spawned = ::posix_spawn(&child.pid, "/bin/sh", nullptr, &attr, argv, environ);
    posix_spawnattr_destroy(&attr);
    if (spawned == 0) {
      pid_t r;
      do {
        r = cooperative() ? wait4_in_task(child.pid, &status, 0, nullptr)
                          : real_wait4()(child.pid, &status, 0, nullptr);
      } while (r == -1 && errno == EINTR);
      if (r != child.pid) status = -1;
      child.reaped = r == child.pid || errno == ECHILD;
    } else {
      child.pid = -1;
      status = W_EXITCODE(127, 0);
    }
  }
  if (spawned != 0) kept.saved = spawned;
  return status;
}

// ---- popen streams ----------------------------------------------------------

// glibc keeps a popen stream's child in the stream's own record, right after
// the FILE and its jump table (libio's _IO_proc_file). The hooks read it there
// when popen returns and keep it beside the stream's jump table, which tells a
// popen stream from any other: pclose checks both before relying on them, and
// popen checks that the pid is really a child of ours.
struct proc_file_view {
  FILE file;
  const void* jumps;
  pid_t pid;
};

struct popen_stream {
  FILE* stream;
  const void* jumps;
  pid_t pid;
};

// popen_streams maps the open popen streams to their children.
struct popen_streams {
  std::mutex lock;  // never held across a wait
  std::vector<popen_stream> open;
  std::atomic<int> count{0};  // open.size(), read without the lock by fclose

  void remember(FILE* f) {
    const auto* view = reinterpret_cast<const proc_file_view*>(f);
    siginfo_t info{};
    if (view->pid <= 0 || real_waitid()(P_PID, static_cast<id_t>(view->pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
      return;  // not the layout we know: pclose stays glibc's
    }
    const std::lock_guard<std::mutex> held(lock);
    std::erase_if(open, [f](const popen_stream& s) { return s.stream == f; });  // a stale entry
    open.push_back({f, view->jumps, view->pid});
    count.store(static_cast<int>(open.size()), std::memory_order_relaxed);
  }

  // take forgets f and returns its child, or -1 when f is not a popen stream
  // the hooks know (or no longer looks like one).
  pid_t take(FILE* f) {
    if (count.load(std::memory_order_relaxed) == 0) return -1;
    const std::lock_guard<std::mutex> held(lock);
    const auto it = std::find_if(open.begin(), open.end(), [f](const popen_stream& s) { return s.stream == f; });
    if (it == open.end()) return -1;
    const popen_stream s = *it;
    open.erase(it);
    count.store(static_cast<int>(open.size()), std::memory_order_relaxed);
    const auto* view = reinterpret_cast<const proc_file_view*>(f);
    return view->jumps == s.jumps && view->pid == s.pid ? s.pid : -1;
  }
};
popen_streams& popens() {
  static popen_streams* const p = new popen_streams;  // never destroyed: streams are closed at exit too
  return *p;
}

// await_exit prepares a popen stream for glibc's own pclose in a task: it
// flushes what the program wrote, replaces the stream's end of the pipe with
// /dev/null (so the child sees end-of-file, or a broken pipe, as when pclose
// closes it, while the stream's descriptor stays valid for pclose's own
// close), and waits cooperatively until the child has exited, without reaping
// it. Then glibc's pclose finds it exited and returns at once. False: it could
// not prepare the stream (a failed flush, no descriptor left), and glibc's
// pclose must do everything, as natively.
bool await_exit(FILE* f, pid_t pid) {
  const keep_errno kept;
  if (__fwritable(f) != 0 && ::fflush(f) != 0) return false;
  const int fd = ::fileno(f);
  const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (fd < 0 || null < 0) {
    if (null >= 0) ::close(null);
    return false;
  }
  const bool replaced = ::dup3(null, fd, O_CLOEXEC) == fd;
  ::close(null);
  if (!replaced) return false;
  siginfo_t info{};
  while (waitid_in_task(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) == -1 && errno == EINTR) {
  }
  return true;
}

// close_popen is pclose (and fclose) of f: a popen stream's child waited for
// cooperatively in a task, then `close` (glibc's pclose or fclose) itself.
template <class Close>
int close_popen(FILE* f, Close close) {
  const pid_t pid = popens().take(f);
  if (pid > 0 && cooperative()) {
    cancellation_point();
    cancellable([&] { return await_exit(f, pid); });
  }
  return close(f);
}

}  // namespace
}  // namespace grove::hooks

using namespace grove::hooks;

extern "C" {

pid_t wait(int* status) {
  if (!cooperative()) return real_wait()(status);
  cancellation_point();
  return cancellable([&] { return wait4_in_task(-1, status, 0, nullptr); });
}

pid_t waitpid(pid_t pid, int* status, int options) {
  if (!cooperative() || (options & WNOHANG) != 0) return real_waitpid()(pid, status, options);
  cancellation_point();
  return cancellable([&] { return wait4_in_task(pid, status, options, nullptr); });
}

pid_t wait3(int* status, int options, rusage* usage) {
  if (!cooperative() || (options & WNOHANG) != 0) return real_wait3()(status, options, usage);
  return wait4_in_task(-1, status, options, usage);  // not a cancellation point
}

pid_t wait4(pid_t pid, int* status, int options, rusage* usage) {
  if (!cooperative() || (options & WNOHANG) != 0) return real_wait4()(pid, status, options, usage);
  return wait4_in_task(pid, status, options, usage);  // not a cancellation point
}

int waitid(idtype_t type, id_t id, siginfo_t* info, int options) {
  if (!cooperative() || (options & WNOHANG) != 0) return real_waitid()(type, id, info, options);
  cancellation_point();
  return cancellable([&] { return waitid_in_task(type, id, info, options); });
}

// system is glibc's in every thread, not only in tasks: its SIGINT/SIGQUIT
// bookkeeping is one counter for the whole process, which a passed-on call
// (glibc's own counter) would not share.
int system(const char* line) {
  if (cooperative()) cancellation_point();
  const auto run = [line] { return line == nullptr ? static_cast<int>(run_shell("exit 0") == 0) : run_shell(line); };
  return cooperative() ? cancellable(run) : run();
}

FILE* popen(const char* command, const char* mode) {
  FILE* f = real_popen()(command, mode);
  if (f != nullptr) {
    const keep_errno kept;
    try {
      popens().remember(f);
    } catch (const std::bad_alloc&) {  // unknown to the hooks: pclose stays glibc's
    }
  }
  return f;
}

int pclose(FILE* f) { return close_popen(f, real_pclose()); }

}  // extern "C"

// close_stream is glibc's fclose of f, which for a popen stream waits for its
// child: cooperatively, as pclose. stdio.cpp's fclose ends with it.
int grove::hooks::close_stream(FILE* f) {
  if (popens().count.load(std::memory_order_relaxed) == 0) return real_fclose()(f);
  return close_popen(f, real_fclose());
}
