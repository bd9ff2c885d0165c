// signals.hpp — POSIX signals for green threads: dispositions, per-thread
// masks and pending sets, delivery, and EINTR.
//
// The kernel delivers a signal to an OS thread; under the hooks that thread
// runs many green threads. So the hooks keep signal(7)'s model per green
// thread ("thread" below: a green pthread, or an OS thread's main greenlet):
//
//   dispositions  sigaction and friends record the program's handler; the
//                 kernel is given grove's trampoline for it instead.
//   masks         sigprocmask/pthread_sigmask change the calling thread's
//                 mask. The OS thread's real mask blocks a signal only when
//                 every thread on it blocks it, so the kernel delivers exactly
//                 when some thread would natively take the signal, and keeps
//                 it pending (for sigwait, signalfd) when none would.
//   delivery      the trampoline runs the handler at once when the running
//                 thread takes the signal, as the kernel would. Otherwise the
//                 signal becomes pending for the thread the kernel would pick
//                 (a thread-directed one for its thread, a process-directed one
//                 for main if it does not block it, else another thread), and
//                 the hub is kicked: its drain interrupts that thread's hooked
//                 wait, and the thread runs the handler on its own stack before
//                 its call returns, as a blocked thread runs it natively.
//   EINTR         a hooked wait that a handler ran in fails with EINTR, or goes
//                 on after an SA_RESTART handler where signal(7) says the call
//                 restarts (see on_handler).
//
// Synchronous signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS) are
// the faulting code's own: their dispositions stay the kernel's.
#pragma once

#include <signal.h>

#include <atomic>
#include <cstdint>

#include <grove/detail/wait.hpp>
#include <grove/hub.hpp>

namespace grove::hooks::signals {

// bit is signal sig's bit in a 64-signal set (signals 1 to 64, as the kernel's).
constexpr std::uint64_t bit(int sig) noexcept { return std::uint64_t{1} << (sig - 1); }

// Signals no mask blocks: SIGKILL and SIGSTOP, and glibc's two internal ones
// (SIGCANCEL, SIGSETXID), which its sigprocmask leaves out as well.
constexpr std::uint64_t never_blocked = bit(SIGKILL) | bit(SIGSTOP) | bit(32) | bit(33);

// synchronous tells the signals that belong to the faulting code: their
// dispositions stay the kernel's.
constexpr bool synchronous(int sig) noexcept {
  return sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL || sig == SIGTRAP || sig == SIGSYS;
}

// thread_state is one thread's signals.
struct thread_state {
  std::atomic<std::uint64_t> mask{0};     // blocked signals
  std::atomic<std::uint64_t> pending{0};  // taken for this thread, handler not yet run
  std::uint32_t handled = 0;              // handlers run in this thread (sigsuspend watches it)
  bool waiting = false;                   // in a hooked wait a signal may interrupt (wait_scope)
  detail::greenlet_core* g = nullptr;     // the greenlet that waits, while waiting
};

// current returns the calling thread's state: a green thread's or main's;
// nullptr on the hub itself, in a plain task, outside a hub, and inside a
// handler the trampoline runs.
thread_state* current() noexcept;
// mask_owner is the state whose mask the caller's sigprocmask changes:
// current(), or main's for a plain task (tasks share their thread's mask).
thread_state* mask_owner() noexcept;

// How a hooked wait treats a handler that ran in its thread while it waited.
enum class on_handler : std::uint8_t {
  resume,   // the wait goes on (pthread_mutex_lock, join: natively they never fail with EINTR)
  restart,  // EINTR, unless every handler that ran has SA_RESTART (read, write, recv, accept, waitpid...)
  fail,     // always EINTR (poll, select, epoll_wait, sleeps, sem_wait, sigsuspend, calls with a socket timeout)
};

// wake is what interrupts a thread's hooked wait so that it runs its pending
// handlers. It never leaves a wait_scope: whatever parks under one catches it.
struct wake {};

// wait_scope marks the calling thread's wait as one that a signal may
// interrupt (with signals::wake) for as long as it lives. Use it only around a
// park whose every way out is caught by the caller (wake included).
class wait_scope {
 public:
  wait_scope() noexcept;
  ~wait_scope();
  wait_scope(const wait_scope&) = delete;
  wait_scope& operator=(const wait_scope&) = delete;

 private:
  thread_state* s_;
  bool was_ = false;
};

// deliverable tells whether the calling thread has a pending signal it does not block.
bool deliverable() noexcept;

// after_wait runs the calling thread's deliverable handlers, on its stack, and
// tells whether the hooked call must now fail with EINTR (errno is then EINTR).
// Call it after the wait has ended, outside every wait_scope.
bool after_wait(on_handler mode);

// delivery says what deliver() did: whether a handler ran, and whether every
// handler that ran has SA_RESTART.
struct delivery {
  bool ran = false;
  bool restart = true;
};
// deliver runs the handlers of s's deliverable signals; s is the caller's.
delivery deliver(thread_state& s);

// set_mask makes mask s's mask (less the signals no mask blocks), keeping the
// kernel's mask the intersection of the threads' masks. s is the caller's.
void set_mask(thread_state& s, std::uint64_t mask) noexcept;

// with_mask is ppoll's, pselect's and epoll_pwait's mask for the whole wait:
// the calling thread's mask becomes *set (if set is not null) until it goes.
class with_mask {
 public:
  explicit with_mask(const sigset_t* set) noexcept;
  ~with_mask();
  with_mask(const with_mask&) = delete;
  with_mask& operator=(const with_mask&) = delete;

 private:
  thread_state* s_ = nullptr;
  std::uint64_t saved_ = 0;
};

// take_pending takes a signal of `set` that is pending for the calling thread
// (sigwait's part that the kernel cannot see): its number, with its siginfo in
// *info if info is not null; 0 if there is none.
int take_pending(const sigset_t* set, siginfo_t* info) noexcept;

// pending_here is what is pending for the calling thread beyond the kernel's
// pending set (sigpending adds it).
std::uint64_t pending_here() noexcept;

// from_set / to_set convert between glibc's sigset_t and the 64-bit form.
std::uint64_t from_set(const sigset_t& s) noexcept;
void to_set(std::uint64_t bits, sigset_t& out) noexcept;

// The program's dispositions.
struct handler_info {
  void* handler = nullptr;  // sa_handler or sa_sigaction; SIG_DFL, SIG_IGN
  int flags = 0;            // the program's sa_flags
  std::uint64_t mask = 0;   // the program's sa_mask
};
// handler_of returns sig's disposition as the program set it.
handler_info handler_of(int sig) noexcept;
// set_handler records the program's new disposition of sig and gives the
// kernel the trampoline for it (or SIG_DFL / SIG_IGN themselves). old: what
// the program had, as glibc's sigaction reports it.
int set_handler(int sig, const struct sigaction* act, struct sigaction* old) noexcept;
// set_interrupting: siginterrupt's flag, kept for signal() and bsd_signal.
void set_interrupting(int sig, bool on) noexcept;
bool interrupting(int sig) noexcept;

// A pool worker's call made for a task (pool.hpp) can be interrupted as the
// task's own call would be: the task sends the worker interrupting_signal()
// and its blocking call ends with EINTR.
//
// interrupting_signal is a signal the program handles through the trampoline
// whose delivery makes a blocking call fail with EINTR: one without
// SA_RESTART when `restartable` (flock, F_SETLKW), any otherwise (msgrcv,
// semop: never restarted); 0 if there is none.
int interrupting_signal(bool restartable) noexcept;

// pool_call_scope is a pool worker's call for a task on `hub_tid`: sig (if not
// 0) is unblocked on the worker meanwhile, and the trampoline, run on it,
// ignores what a task of this process sends it with tgkill and passes any other
// signal on to hub_tid, the thread that would have taken it.
class pool_call_scope {
 public:
  pool_call_scope(int sig, pid_t hub_tid) noexcept;
  ~pool_call_scope();
  pool_call_scope(const pool_call_scope&) = delete;
  pool_call_scope& operator=(const pool_call_scope&) = delete;

 private:
  int sig_;
  pid_t was_;
};

// install_drain gives the hubs the signal drain (once).
void install_drain() noexcept;

// The green threads' part, from threads.cpp.
// creator_mask is the mask a thread the caller creates starts with: the
// caller's own, as pthread_create does.
std::uint64_t creator_mask() noexcept;
// thread_started: a new green thread's state (s) joins the calling OS thread,
// with mask (its creator's, taken by creator_mask on the creator's thread).
void thread_started(thread_state& s, std::uint64_t mask) noexcept;
// thread_ended: the green thread whose state is s leaves this OS thread.
void thread_ended(thread_state& s) noexcept;
// send_to_thread: pthread_kill of a green thread whose state is t; it runs on
// `hub`, the caller's own when same_hub. A null hub (and not same_hub): t has
// not started on any hub yet, and takes the signal as it starts.
int send_to_thread(thread_state& t, int sig, bool same_hub, grove::hub* hub) noexcept;

// main_here is the signal state of this OS thread's main thread (the one that
// is not a green thread): a pthread_kill from one of its green threads to the
// OS thread's own pthread_t is meant for it.
thread_state& main_here() noexcept;
// drain_thread, on the thread's own hub: interrupt its wait if it has a
// deliverable signal (the hub's drain does this for every thread).
void drain_thread(thread_state& s) noexcept;
// after_fork_in_child: the forking thread (state forker) is the only one left.
void after_fork_in_child(thread_state& forker) noexcept;

}  // namespace grove::hooks::signals
