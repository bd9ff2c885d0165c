// hub_state.hpp — the whole of a thread's hub (hub_core is the inline part).
#pragma once

#include <ev.h>
#include <pthread.h>
#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <grove/detail/wait.hpp>
#include <grove/hub.hpp>
#include <grove/task.hpp>

namespace grove::detail {

struct pool_state;
struct file_engine;
struct hub_state;

// fd_watch is one direction of one descriptor: its watcher and its waiters (io.cpp).
struct fd_watch {
  ev_io io;
  wait_list waiters;
  hub_state* hub = nullptr;
  bool stop_queued = false;  // on hub_state::unwatched
};
// A descriptor's record: its read watch, and its write watch once a task has
// waited to write (an idle connection only ever waits to read: 120 bytes of
// this with its allocation, not 208).
struct fd_entry {
  fd_watch read;
  std::unique_ptr<fd_watch> write;
  // The fd was closed through grove::close: before watching the number again,
  // re-set the watchers so libev registers it anew (the kernel dropped the old
  // registration on close, and libev cannot tell; see libev's "the special
  // problem of disappearing file descriptors").
  bool closed = false;
};

struct hub_state : hub_core {
  hub_state();
  ~hub_state();
  hub_state(const hub_state&) = delete;
  hub_state& operator=(const hub_state&) = delete;

  void run();
  void run_ready(ready_ring& ring, std::size_t most);
  void idle();
  void post(std::function<void()> callback);
  void run_posts();
  // Parked tasks are found through the task registry; only other greenlets (a
  // thread's main one, raw greenlets) are kept on the parked list. Linking every
  // task there would touch its neighbours' stacks on each park and wake.
  void link_parked(waiter& w) noexcept {
    ++parked;
    if (w.g->task == nullptr) link_parked_other(w);
  }
  void unlink_parked(waiter& w) noexcept {
    --parked;
    if (w.g->task == nullptr) unlink_parked_other(w);
  }
  void link_parked_other(waiter& w) noexcept;
  void unlink_parked_other(waiter& w) noexcept;
  // for_each_parked calls f on every parked waiter: tasks' and others'.
  template <class F>
  void for_each_parked(F&& f);
  void register_task(task_base* t) noexcept;
  void unregister_task(task_base* t) noexcept;
  void start_diagnostics();
  void stop_diagnostics() noexcept;
  // start_monitor starts the blocking monitor's watchdog thread (GROVE_MONITOR_MS=ms).
  void start_monitor(unsigned ms);
  // restart_monitor_after_fork gives the child of a fork a watchdog of its own,
  // if the hub had one: the parent's thread does not exist in the child.
  void restart_monitor_after_fork() noexcept;
  void note_switch(greenlet_core* g) noexcept;

  grove::hub public_hub;
  struct ev_loop* loop = nullptr;
  ev_async async;
  std::mutex post_lock;
  std::vector<std::function<void()>> posts;  // guarded by post_lock
  std::atomic<bool> has_posts{false};
  std::atomic<remote_wake*> remote{nullptr};  // hand_over's items, newest first
  std::atomic<bool> signal_kicked{false};      // kick_from_signal: run the signal drain after the poll
  std::atomic<int> holds{0};                   // hub::keepalive objects alive
  int jobs_in_flight = 0;                      // run_in_thread jobs not yet returned
  std::shared_ptr<pool_state> pool;            // run_in_thread's threads, started lazily
  file_engine* files = nullptr;                // grove::file's io_uring, made on first need (file_io.cpp)
  std::vector<std::unique_ptr<fd_entry>> fds;  // by descriptor: its readiness watchers (io.cpp)
  std::vector<fd_watch*> unwatched;            // watchers whose last waiter left: stopped before the next poll
  pid_t pid = 0;                               // the process the hub belongs to (forget_fd's vfork check)
  pthread_t thread = ::pthread_self();         // the thread it belongs to (the monitor samples it)
  bool stale_clock = true;                     // tasks ran since libev last read the clock (main has, from the start)
  std::size_t batch = 256;                     // ready greenlets run between two polls
  waiter* parked_head = nullptr;               // parked greenlets that are not tasks (see link_parked)
  task_base* tasks = nullptr;                  // unfinished tasks, newest first
  std::size_t task_count = 0;
  std::size_t timer_count = 0;
  std::uint64_t next_task_id = 1;
  int slot = -1;  // this hub's bit in the per-descriptor sets (hubs.hpp); -1: the shared overflow bit

  // GROVE_MONITOR_MS: a watchdog thread watches `switches` (hub_core::monitoring).
  std::atomic<std::uint64_t> switches{0};
  std::atomic<greenlet_core*> running{nullptr};
  std::thread monitor;
  std::mutex monitor_lock;
  std::condition_variable monitor_wake;
  bool monitor_stop = false;  // guarded by monitor_lock

  // GROVE_DUMP_ON_SIGNAL
  ev_signal dump_signal;
  bool dump_signal_active = false;
};

inline hub_state& state_of(hub_core& h) noexcept { return static_cast<hub_state&>(h); }

// backtraces_by_default: GROVE_BACKTRACES=1, dump_tasks(out) shows backtraces.
bool backtraces_by_default() noexcept;

// describe_greenlet names g for messages: a task's name, "the main greenlet"...
std::string describe_greenlet(greenlet_core* g);

// enter_greenlet switches to g through the general path (it may be unstarted)
// and returns when control comes back; what it brings back is dropped.
void enter_greenlet(greenlet_core* g);
// kill_greenlet throws greenlet_exit into suspended g, made a child of the
// current greenlet, and returns whether it died.
bool kill_greenlet(greenlet_core* g) noexcept;

// stop_unwatched stops the fd watchers that nobody waits on any more. The hub
// calls it before every poll, so that libev never watches an fd for nobody.
void stop_unwatched(hub_state& h) noexcept;

// forget_fd wakes every task waiting on fd with EBADF and stops watching it.
void forget_fd(hub_state& h, int fd) noexcept;

// close_pool lets the hub's pool threads go; their late results are dropped.
void close_pool(hub_state& h) noexcept;
// close_files tears down the hub's io_uring, if it has one (no call is in flight:
// a task waits for its file calls to end).
void close_files(hub_state& h) noexcept;
// check_file_io_setting reads GROVE_FILE_IO (a bad value exits with status 2).
void check_file_io_setting();

}  // namespace grove::detail
