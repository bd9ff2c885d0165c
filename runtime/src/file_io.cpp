// file_io.cpp — grove::file: file I/O that parks the task, not the hub.
//
// Each call first tries what cannot wait: preadv2/pwritev2 with RWF_NOWAIT
// (page-cache hits), openat2 with RESOLVE_CACHED (lookups in the dentry
// cache). What would wait goes off the hub's thread, and the task parks until
// it is done:
//   io_uring  one ring per hub, made on first need; its completions raise an
//             eventfd (io_uring_register_eventfd) that the hub's libev loop
//             watches, and the hub wakes their tasks right after its poll, as
//             it does for sockets. Submitted at once, one io_uring_enter per
//             call; no SQPOLL (a kernel thread per hub spinning for work).
//   pool      the hub's thread pool (run_in_thread's), for the calls io_uring
//             cannot make in this kernel or liburing (ftruncate, truncate,
//             sendfile, copy_file_range; fstatat, whose struct stat statx does
//             not fill), and for everything where io_uring is unavailable
//             (valgrind included) or GROVE_FILE_IO=pool.
// A call handed off is waited for to its end, whatever interrupts the task
// meanwhile: the kernel writes into the caller's buffer until it completes,
// so the task cannot leave before it (the interrupt is raised at its next
// blocking call, as the hooks' noexcept calls defer theirs).
//
// Every system call here is made with syscall(2), never through libc's
// wrappers: in a program under the hooks those are the hooks, which call here.
#include <grove/detail/file_cache.hpp>
#include <grove/detail/os_threads.hpp>
#include <grove/file.hpp>
#include <grove/thread_pool.hpp>

#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sys/eventfd.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <system_error>
#include <string_view>
#include <vector>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif

#include "hub_state.hpp"
#include "settings.hpp"

namespace grove::detail {

// file_engine is one hub's way off its thread for file calls.
struct file_engine {
  io_uring ring{};
  bool has_ring = false;
  int efd = -1;  // raised by the ring for each completion
  ev_io watch{};
  io_uring_probe* probe = nullptr;  // the opcodes this kernel supports
  // Large calls in flight off the hub (the ring's workers or the pool),
  // during which the hub's thread and the workers keep apart (keep_apart).
  int apart_calls = 0;
  int bound_cpu = -1;   // the CPU the hub's thread is bound to meanwhile, or -1
  cpu_set_t allowed{};  // the hub thread's own affinity, given back after
  cpu_set_t others{};   // allowed but the hub's CPU: where the workers run meanwhile
};

namespace {

bool running_on_valgrind() noexcept {
#if __has_include(<valgrind/valgrind.h>)
  return RUNNING_ON_VALGRIND != 0;
#else
  return false;
#endif
}

// The setting: GROVE_FILE_IO=io_uring (default) or pool.
bool pool_only() {
  static const bool pool = [] {
    const char* v = std::getenv("GROVE_FILE_IO");
    if (v == nullptr || *v == '\0' || std::string_view(v) == "io_uring") return false;
    if (std::string_view(v) == "pool") return true;
    bad_setting("GROVE_FILE_IO", v, "the way file calls leave the hub: io_uring or pool");
  }();
  return pool;
}

// file_request is one handed-off call: its waiter and its result, as the
// kernel gives it (>= 0, or -errno).
struct file_request {
  waiter w;
  long result = 0;
  bool done = false;
};

// wait_to_end parks until r is done, however often the task is interrupted
// meanwhile; the first interrupt (or `deferred`) is then made pending again.
// keep_apart: a worker (the ring's, or the pool's) that copies a large read
// competes with the hub for a CPU only when the scheduler puts both on one,
// and it does: each completion wakes the hub from the worker's CPU, and
// wake-affine placement moves the hub there. bench_file stall measured the p99
// of the hub's other connections at 1.4-2.8x that with no read, and at
// 0.93-1.04x with the two kept apart. So while such a call is in flight the
// hub's thread stays on the CPU it is on, and the workers on the others: the
// ring's through IORING_REGISTER_IOWQ_AFF, a pool thread for the length of
// its job (file_job::away). let_together gives the hub's thread its own
// affinity back when the last one ends. Nothing is done on one CPU or when
// the thread is already bound to one.
void keep_apart(file_engine& e) noexcept {
  if (e.apart_calls++ > 0) return;
  if (::sched_getaffinity(0, sizeof e.allowed, &e.allowed) != 0 || CPU_COUNT(&e.allowed) < 2) return;
  const int cpu = ::sched_getcpu();
  if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &e.allowed)) return;
  e.others = e.allowed;
  CPU_CLR(cpu, &e.others);
  if (e.has_ring && io_uring_register_iowq_aff(&e.ring, sizeof e.others, &e.others) != 0) return;
  cpu_set_t here;
  CPU_ZERO(&here);
  CPU_SET(cpu, &here);
  if (::sched_setaffinity(0, sizeof here, &here) == 0) e.bound_cpu = cpu;
}

void let_together(file_engine& e) noexcept {
  if (e.apart_calls == 0 || --e.apart_calls > 0 || e.bound_cpu < 0) return;
  e.bound_cpu = -1;
  (void)::sched_setaffinity(0, sizeof e.allowed, &e.allowed);
}

void wait_to_end(file_request& r, std::exception_ptr& deferred) {
  r.w.what = "file I/O";
  while (!r.done) {
    try {
      park(r.w);
    } catch (...) {
      if (!deferred) deferred = std::current_exception();
    }
  }
  if (deferred) interrupt(current_greenlet(), std::move(deferred));
}

void on_completions(struct ev_loop*, ev_io* io, int) {
  auto& e = *static_cast<file_engine*>(io->data);
  std::uint64_t count = 0;
  while (::syscall(SYS_read, e.efd, &count, sizeof count) > 0) {
  }
  hub_state& h = state_of(*tls_hub);
  io_uring_cqe* cqe = nullptr;
  unsigned head = 0;
  unsigned seen = 0;
  io_uring_for_each_cqe(&e.ring, head, cqe) {
    auto* r = static_cast<file_request*>(io_uring_cqe_get_data(cqe));
    r->result = cqe->res;
    r->done = true;
    --h.jobs_in_flight;
    wake(r->w, false, /*after_poll=*/true);
    ++seen;
  }
  io_uring_cq_advance(&e.ring, seen);
}

// release_ring lets go of e's ring and eventfd. The descriptors are closed
// through ::close, so that the hooks stop hiding their numbers; liburing then
// finds the ring's closed.
void release_ring(file_engine& e) noexcept {
  const hub_descriptors_scope own;
  if (e.probe != nullptr) io_uring_free_probe(e.probe);
  e.probe = nullptr;
  ::close(e.ring.ring_fd);
  e.ring.ring_fd = e.ring.enter_ring_fd = -1;
  io_uring_queue_exit(&e.ring);
  if (e.efd >= 0) ::close(e.efd);
  e.efd = -1;
  e.has_ring = false;
}

// start_ring sets up e's ring, or leaves has_ring false where the kernel
// refuses one (ENOSYS, EPERM: seccomp, io_uring_disabled; ENOMEM: locked
// memory) or the program runs under valgrind, which cannot see the kernel
// write a read's buffer through the ring.
void start_ring(hub_state& h, file_engine& e) {
  if (pool_only() || running_on_valgrind()) return;
  const hub_descriptors_scope own;
  if (io_uring_queue_init(256, &e.ring, 0) != 0) return;
  e.ring.ring_fd = e.ring.enter_ring_fd = adopt_hub_descriptor(e.ring.ring_fd);
  e.efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);  // the hooks adopt this one
  // The opcodes the kernel supports (IORING_REGISTER_PROBE, Linux 5.6).
  e.probe = io_uring_get_probe_ring(&e.ring);
  if (e.efd < 0 || e.probe == nullptr || io_uring_register_eventfd(&e.ring, e.efd) != 0) {
    release_ring(e);
    return;
  }
  e.has_ring = true;
  ev_io_init(&e.watch, on_completions, e.efd, EV_READ);
  e.watch.data = &e;
  ev_io_start(h.loop, &e.watch);
  ev_unref(h.loop);  // calls in flight keep the hub waiting (jobs_in_flight), not the watcher
}

file_engine& engine_of(hub_state& h) {
  if (h.files == nullptr) {
    h.files = new file_engine;
    start_ring(h, *h.files);
  }
  return *h.files;
}

bool in_task() noexcept {
  hub_core* h = tls_hub;
  return h != nullptr && h->ts->current != h->greenlet && !h->closing;
}

// Results in the kernel's form (>= 0 or -errno) to libc's (-1 and errno).
long to_libc(long r) noexcept {
  if (r < 0) {
    errno = static_cast<int>(-r);
    return -1;
  }
  return r;
}
long from_syscall(long r) noexcept { return r < 0 ? -errno : r; }

// A call for the pool: the plain blocking call on a worker thread.
struct file_job final : thread_job {
  long (*call)(const void*) = nullptr;
  const void* args = nullptr;
  long result = 0;
  const cpu_set_t* away = nullptr;  // the CPUs to make the call on (keep_apart), or any
  void run() noexcept override {
    cpu_set_t own;
    const bool moved = away != nullptr && ::sched_getaffinity(0, sizeof own, &own) == 0 &&
                       ::sched_setaffinity(0, sizeof *away, away) == 0;
    result = call(args);
    if (moved) (void)::sched_setaffinity(0, sizeof own, &own);
  }
};

// off_hub makes a call that may wait off the hub's thread and returns its
// result in the kernel's form. Op says how: Op::opcode and op.prep(sqe) for
// the ring (opcode -1: none), op.call() as a blocking system call for the
// pool. op outlives the call: the caller waits to its end.
template <class Op>
long off_hub(const Op& op) {
  hub_state& h = state_of(current_hub());
  file_engine& e = engine_of(h);
  if (Op::opcode >= 0 && e.has_ring && io_uring_opcode_supported(e.probe, Op::opcode)) {
    io_uring_sqe* sqe = io_uring_get_sqe(&e.ring);
    if (sqe == nullptr) {  // only with 256 calls placed and not submitted, which submitting at once never leaves
      io_uring_submit(&e.ring);
      sqe = io_uring_get_sqe(&e.ring);
    }
    if (sqe != nullptr) {
      file_request r;
      op.prep(sqe);
      io_uring_sqe_set_data(sqe, &r);
      const bool apart = (sqe->flags & IOSQE_ASYNC) != 0;
      if (apart) keep_apart(e);
      // Placed, the SQE must be submitted and waited for. The kernel refuses
      // it (EBUSY, EAGAIN) only while completions wait to be reaped: the hub
      // reaps them while this task sleeps a millisecond.
      std::exception_ptr deferred;
      while (io_uring_submit(&e.ring) < 0) {
        waiter pause;
        pause.what = "room in the io_uring";
        try {
          park(pause, deadline_after(std::chrono::milliseconds(1)));
        } catch (...) {
          if (!deferred) deferred = std::current_exception();
        }
      }
      ++h.jobs_in_flight;
      wait_to_end(r, deferred);
      if (apart && h.files == &e) let_together(e);  // (a fork child has let go of the parent's ring)
      return r.result;
    }
  }
  bool apart = false;
  if constexpr (requires { op.large(); }) apart = op.large();
  auto job = std::make_shared<file_job>();
  job->call = [](const void* a) { return static_cast<const Op*>(a)->call(); };
  job->args = &op;
  if (apart) {
    keep_apart(e);
    if (e.bound_cpu >= 0) job->away = &e.others;
  }
  long result;
  try {
    run_job_to_end(job);
    result = job->result;
  } catch (const std::bad_alloc&) {
    result = op.call();  // no pool: the call blocks the hub, as it would natively block the thread
  } catch (const std::system_error&) {
    result = op.call();
  }
  if (apart && h.files == &e) let_together(e);
  return result;
}

// bound_engine is the engine of the hub whose OS thread this is, when
// keep_apart has bound that thread to its CPU.
file_engine* bound_engine() noexcept {
  hub_core* h = tls_hub;
  if (h == nullptr) return nullptr;
  file_engine* e = state_of(*h).files;
  return e != nullptr && e->bound_cpu >= 0 ? e : nullptr;
}

// In a child of fork the ring is still the parent's: its rings are shared
// memory, and a completion the child caused could reach the parent's hub,
// which would take its user data for one of its own calls. So the child lets
// go of it (unmapped, descriptors closed) and makes its own on its next call.
// Its tasks that were waiting for the parent's calls wait on; with
// jobs_in_flight back to zero (thread_pool.cpp) they get loop_exit when nothing
// else can wake them.
void after_fork_in_child() noexcept {
  if (tls_hub != nullptr) close_files(state_of(*tls_hub));
}

[[maybe_unused]] const int fork_handler_registered = ::pthread_atfork(nullptr, nullptr, after_fork_in_child);

}  // namespace

void check_file_io_setting() { (void)pool_only(); }

own_affinity_scope::own_affinity_scope() noexcept {
  file_engine* e = bound_engine();
  if (e == nullptr || ::sched_setaffinity(0, sizeof e->allowed, &e->allowed) != 0) return;
  rebind_to = e->bound_cpu;
}

own_affinity_scope::~own_affinity_scope() {
  if (rebind_to < 0 || bound_engine() == nullptr) return;
  cpu_set_t here;
  CPU_ZERO(&here);
  CPU_SET(rebind_to, &here);
  (void)::sched_setaffinity(0, sizeof here, &here);
}

void close_files(hub_state& h) noexcept {
  file_engine* e = h.files;
  if (e == nullptr) return;
  h.files = nullptr;
  if (e->bound_cpu >= 0) (void)::sched_setaffinity(0, sizeof e->allowed, &e->allowed);
  if (e->has_ring) {
    ev_ref(h.loop);
    ev_io_stop(h.loop, &e->watch);
    release_ring(*e);
  }
  delete e;
}

}  // namespace grove::detail

// ---------------------------------------------------------------------------
// The calls

namespace grove::detail {
namespace {

// preadv2/pwritev2 as the kernel takes them: the offset in two halves.
long sys_preadv2(int fd, const iovec* iov, int count, off_t off, int flags) noexcept {
  const auto u = static_cast<std::uint64_t>(off);
  return ::syscall(SYS_preadv2, fd, iov, count, static_cast<unsigned long>(u), static_cast<unsigned long>(u >> 32 >> 32),
                   flags);
}
long sys_pwritev2(int fd, const iovec* iov, int count, off_t off, int flags) noexcept {
  const auto u = static_cast<std::uint64_t>(off);
  return ::syscall(SYS_pwritev2, fd, iov, count, static_cast<unsigned long>(u),
                   static_cast<unsigned long>(u >> 32 >> 32), flags);
}

// rw_op is a read or write of iov at off (-1: at the file's offset, which it advances).
struct rw_op {
  int fd;
  const iovec* iov;
  int count;
  off_t off;
};
// A buffered read that io_uring does not find cached is retried as the pages
// arrive by task work, on the submitting thread: the hub's. Its copy to the
// caller's buffer then runs there, about 0.3 ms per MiB. Small reads keep that
// (it lets every one of them be in flight at once); a large one is sent
// straight to io_uring's workers (IOSQE_ASYNC), so the hub never copies more
// than this at a time.
constexpr std::size_t copy_on_hub_at_most = 256 << 10;

std::size_t bytes_of(const iovec* iov, int count) noexcept {
  std::size_t n = 0;
  for (int i = 0; i < count; ++i) n += iov[i].iov_len;
  return n;
}

// rw_call is a read (Write false) or write of iov, handed off.
template <bool Write>
struct rw_call : rw_op {
  static constexpr int opcode = Write ? IORING_OP_WRITEV : IORING_OP_READV;
  bool large() const { return bytes_of(iov, count) > copy_on_hub_at_most; }
  void prep(io_uring_sqe* s) const {
    io_uring_prep_rw(opcode, s, fd, iov, static_cast<unsigned>(count), static_cast<__u64>(off));
    if (large()) s->flags |= IOSQE_ASYNC;
  }
  long call() const {
    return from_syscall(Write ? sys_pwritev2(fd, iov, count, off, 0) : sys_preadv2(fd, iov, count, off, 0));
  }
};

// A descriptor that is not a regular file or block device gets the plain call;
// so do files whose reads never wait for a disk (/proc, /sys...), which also
// refuse RWF_NOWAIT.
bool waits_for_disk(int fd) noexcept {
  struct stat st {};
  if (::syscall(SYS_fstat, fd, &st) != 0) return false;
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) return false;
  struct statfs fs {};
  if (::syscall(SYS_fstatfs, fd, &fs) != 0) return true;
  switch (static_cast<unsigned long>(fs.f_type)) {
    case PROC_SUPER_MAGIC:
    case SYSFS_MAGIC:
    case DEBUGFS_MAGIC:
    case TRACEFS_MAGIC:
    case CGROUP_SUPER_MAGIC:
    case CGROUP2_SUPER_MAGIC:
    case SECURITYFS_MAGIC:
    case BPF_FS_MAGIC:
    case TMPFS_MAGIC:  // memory (unless it swaps), and /dev/shm refuses RWF_NOWAIT
    case RAMFS_MAGIC:
      return false;
    default:
      return true;
  }
}

// position_turn: tasks of this process that use one descriptor's file offset
// take turns (the kernel's f_pos lock, which an io_uring call does not take),
// so a read or write handed off and one tried without waiting meanwhile never
// use the same offset. A stripe per descriptor number modulo 256; a task that
// finds its stripe taken looks again every 50 µs to 1 ms (tasks of other hubs
// may hold it).
std::atomic<bool> position_stripes[256];

struct position_turn {
  explicit position_turn(int fd) : stripe(position_stripes[static_cast<unsigned>(fd) % 256]) {
    auto pause = std::chrono::microseconds(50);
    while (stripe.exchange(true, std::memory_order_acquire)) {
      waiter w;
      w.what = "a file offset another task is using";
      park(w, deadline_after(pause));
      pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(1));
    }
  }
  ~position_turn() { stripe.store(false, std::memory_order_release); }
  position_turn(const position_turn&) = delete;
  position_turn& operator=(const position_turn&) = delete;
  std::atomic<bool>& stripe;
};

// rest_of is iov with its first `done` bytes dropped, in `room` (or on the heap).
struct rest_of {
  std::array<iovec, 8> room{};
  std::vector<iovec> heap;
  const iovec* iov = nullptr;
  int count = 0;
  rest_of(const iovec* from, int n, std::size_t done) {
    while (n > 0 && done >= from->iov_len) {
      done -= from->iov_len;
      ++from;
      --n;
    }
    iovec* to = room.data();
    if (static_cast<std::size_t>(n) > room.size()) {
      heap.resize(static_cast<std::size_t>(n));
      to = heap.data();
    }
    for (int i = 0; i < n; ++i) to[i] = from[i];
    if (n > 0) {
      to[0].iov_base = static_cast<char*>(to[0].iov_base) + done;
      to[0].iov_len -= done;
    }
    iov = to;
    count = n;
  }
};

// syncs: writes to fd wait for the disk by themselves (O_SYNC, O_DSYNC, O_DIRECT).
bool syncs(int fd) noexcept {
  const long fl = ::syscall(SYS_fcntl, fd, F_GETFL);
  return fl != -1 && (fl & (O_DSYNC | O_DIRECT)) != 0;
}

// transfer_slowly is transfer past its first try: n is what that try gave (a
// short count, or -1 and errno), or -2 when the call was not tried on the hub.
// (-3, inside: try the rest without waiting.)
[[gnu::noinline]] long transfer_slowly(int fd, const iovec* iov, int count, off_t off, bool write, long n,
                                       std::size_t total, int saved) {
  std::size_t done = 0;
  const iovec* cur = iov;
  int cur_count = count;
  std::optional<rest_of> rest;
  for (;;) {
    const off_t at = off == -1 ? -1 : off + static_cast<off_t>(done);
    if (n == -3) {
      n = write ? sys_pwritev2(fd, cur, cur_count, at, RWF_NOWAIT) : sys_preadv2(fd, cur, cur_count, at, RWF_NOWAIT);
    }
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      if (done >= total) break;
      rest.emplace(iov, count, done);  // short: the rest may be cached too, or at end of file
      cur = rest->iov;
      cur_count = rest->count;
      n = -3;  // try the rest
      continue;
    }
    if (n == 0) break;  // end of file
    if (n == -1 && errno != EAGAIN && errno != EOPNOTSUPP) {
      if (done > 0) break;
      return -1;  // EBADF, EISDIR, EINVAL, EFAULT...: what the plain call says
    }
    if (write && n == -1 && errno == EOPNOTSUPP && !syncs(fd)) {
      // A file system that cannot say whether a buffered write would wait
      // (ext4 refuses RWF_NOWAIT for all of them): the write is a copy into
      // the page cache, made here. Sending it off the hub would cost two
      // cross-thread wake-ups, 25 times the write (bench/file/run.sh).
      const long r = sys_pwritev2(fd, cur, cur_count, at, 0);
      if (r < 0) {
        if (done > 0) break;
        return -1;
      }
      done += static_cast<std::size_t>(r);
      break;
    }
    if (done == 0 && !waits_for_disk(fd)) {
      errno = saved;
      return write ? sys_pwritev2(fd, iov, count, off, 0) : sys_preadv2(fd, iov, count, off, 0);
    }
    const rw_op op{fd, cur, cur_count, at};
    const long r = write ? off_hub(rw_call<true>{op}) : off_hub(rw_call<false>{op});
    if (r < 0) {
      if (done > 0) break;
      errno = static_cast<int>(-r);
      return -1;
    }
    done += static_cast<std::size_t>(r);
    break;
  }
  errno = saved;
  return static_cast<long>(done);
}

// transfer is every read and write. In a task it first tries the call without
// waiting (what the page cache has is copied at once), then sends what is left
// off the hub. A call of more than copy_on_hub_at_most bytes goes off the hub
// whole: copying it would hold the hub about 0.3 ms per MiB.
long transfer(int fd, const iovec* iov, int count, off_t off, bool write) {
  if (!in_task() || count < 0 || count > IOV_MAX) [[unlikely]]
    return write ? sys_pwritev2(fd, iov, count, off, 0) : sys_preadv2(fd, iov, count, off, 0);
  const std::size_t total = bytes_of(iov, count);
  const int saved = errno;
  std::optional<position_turn> turn;
  if (off == -1) turn.emplace(fd);
  if (total > copy_on_hub_at_most) [[unlikely]]
    return transfer_slowly(fd, iov, count, off, write, -2, total, saved);
  const long n = write ? sys_pwritev2(fd, iov, count, off, RWF_NOWAIT) : sys_preadv2(fd, iov, count, off, RWF_NOWAIT);
  if (n >= 0 && static_cast<std::size_t>(n) == total) [[likely]]
    return n;  // all of it from the page cache (a success leaves errno as it was)
  return transfer_slowly(fd, iov, count, off, write, n, total, saved);
}

// --- calls by path and the rest ------------------------------------------

struct openat_op {
  static constexpr int opcode = IORING_OP_OPENAT;
  int dirfd;
  const char* path;
  int flags;
  mode_t mode;
  void prep(io_uring_sqe* s) const { io_uring_prep_openat(s, dirfd, path, flags, mode); }
  long call() const { return from_syscall(::syscall(SYS_openat, dirfd, path, flags, mode)); }
};

struct fsync_op {
  static constexpr int opcode = IORING_OP_FSYNC;
  int fd;
  bool data_only;
  void prep(io_uring_sqe* s) const { io_uring_prep_fsync(s, fd, data_only ? IORING_FSYNC_DATASYNC : 0); }
  long call() const { return from_syscall(::syscall(data_only ? SYS_fdatasync : SYS_fsync, fd)); }
};

struct statx_op {
  static constexpr int opcode = IORING_OP_STATX;
  int dirfd;
  const char* path;
  int flags;
  unsigned mask;
  struct statx* st;
  void prep(io_uring_sqe* s) const { io_uring_prep_statx(s, dirfd, path, flags, mask, st); }
  long call() const { return from_syscall(::syscall(SYS_statx, dirfd, path, flags, mask, st)); }
};

struct fstatat_op {
  static constexpr int opcode = -1;
  int dirfd;
  const char* path;
  struct stat* st;
  int flags;
  void prep(io_uring_sqe*) const {}
  long call() const { return from_syscall(::syscall(SYS_newfstatat, dirfd, path, st, flags)); }
};

struct fallocate_op {
  static constexpr int opcode = IORING_OP_FALLOCATE;
  int fd;
  int mode;
  off_t off;
  off_t len;
  void prep(io_uring_sqe* s) const { io_uring_prep_fallocate(s, fd, mode, static_cast<__u64>(off), static_cast<__u64>(len)); }
  long call() const { return from_syscall(::syscall(SYS_fallocate, fd, mode, off, len)); }
};

struct renameat_op {
  static constexpr int opcode = IORING_OP_RENAMEAT;
  int fromdir;
  const char* from;
  int todir;
  const char* to;
  void prep(io_uring_sqe* s) const { io_uring_prep_renameat(s, fromdir, from, todir, to, 0); }
  long call() const { return from_syscall(::syscall(SYS_renameat2, fromdir, from, todir, to, 0)); }
};

struct unlinkat_op {
  static constexpr int opcode = IORING_OP_UNLINKAT;
  int dirfd;
  const char* path;
  int flags;
  void prep(io_uring_sqe* s) const { io_uring_prep_unlinkat(s, dirfd, path, flags); }
  long call() const { return from_syscall(::syscall(SYS_unlinkat, dirfd, path, flags)); }
};

// A call with no io_uring opcode here: the pool.
template <class F>
struct pool_op {
  static constexpr int opcode = -1;
  F f;
  void prep(io_uring_sqe*) const {}
  long call() const { return from_syscall(f()); }
};
template <class F>
long on_pool(F f) {
  const pool_op<F> op{std::move(f)};
  return off_hub(op);
}

// cached_lookup tries the lookup of path without waiting for a disk: 0 when
// a directory on the way is not in the dentry cache (the call goes off the
// hub), 1 otherwise: found, failed without the disk (ENOENT, ENOTDIR,
// EACCES...), or openat2 cannot tell (ENOSYS: an old kernel, valgrind), and
// the call is made here.
int cached_lookup(int dirfd, const char* path, bool follow) noexcept {
  open_how how{};
  how.flags = O_PATH | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW);
  how.resolve = RESOLVE_CACHED;
  const int saved = errno;
  const long fd = ::syscall(SYS_openat2, dirfd, path, &how, sizeof how);
  const int err = errno;
  errno = saved;
  if (fd >= 0) {
    ::syscall(SYS_close, fd);
    return 1;
  }
  return err == EAGAIN ? 0 : 1;  // ENOENT, ENOTDIR, EACCES...: found out without a disk
}

long plain_fstatat(int dirfd, const char* path, struct stat* st, int flags) noexcept {
  return ::syscall(SYS_newfstatat, dirfd, path, st, flags);
}

}  // namespace

void warm_file_range(int fd, off_t offset, std::size_t n) noexcept {
  if (!in_task() || offset < 0) return;
  // Written by the kernel only, never read: tasks of every hub share it.
  alignas(4096) static char sink[64 * 1024];
  const int saved = errno;
  constexpr off_t page = 4096;
  if (n > 0 && offset / page == (offset + static_cast<off_t>(n) - 1) / page) {
    // Within one page (a 4 KiB stdio buffer read from an aligned offset): one
    // byte says whether it is cached, for half what copying the range costs.
    const iovec one{sink, 1};
    if (sys_preadv2(fd, &one, 1, offset, RWF_NOWAIT) >= 0) {
      errno = saved;
      return;
    }
  }
  while (n > 0) {
    const iovec chunk{sink, std::min(n, sizeof sink)};
    long r = sys_preadv2(fd, &chunk, 1, offset, RWF_NOWAIT);
    if (r < 0) {
      if ((errno != EAGAIN && errno != EOPNOTSUPP) || (errno == EOPNOTSUPP && !waits_for_disk(fd))) break;
      r = off_hub(rw_call<false>{rw_op{fd, &chunk, 1, offset}});
    }
    if (r <= 0) break;  // the end of the file, or an error for the plain read to report
    offset += r;
    n -= std::min(n, static_cast<std::size_t>(r));
  }
  errno = saved;
}

}  // namespace grove::detail

namespace grove::file {

using namespace grove::detail;

ssize_t read(int fd, void* buf, std::size_t n) {
  const iovec one{buf, n};
  return transfer(fd, &one, 1, -1, false);
}
ssize_t write(int fd, const void* buf, std::size_t n) {
  const iovec one{const_cast<void*>(buf), n};
  return transfer(fd, &one, 1, -1, true);
}
ssize_t pread(int fd, void* buf, std::size_t n, off_t offset) {
  if (offset < 0) return to_libc(-EINVAL);
  const iovec one{buf, n};
  return transfer(fd, &one, 1, offset, false);
}
ssize_t pwrite(int fd, const void* buf, std::size_t n, off_t offset) {
  if (offset < 0) return to_libc(-EINVAL);
  const iovec one{const_cast<void*>(buf), n};
  return transfer(fd, &one, 1, offset, true);
}
ssize_t readv(int fd, const iovec* iov, int count) { return transfer(fd, iov, count, -1, false); }
ssize_t writev(int fd, const iovec* iov, int count) { return transfer(fd, iov, count, -1, true); }
ssize_t preadv(int fd, const iovec* iov, int count, off_t offset) {
  if (offset < 0) return to_libc(-EINVAL);
  return transfer(fd, iov, count, offset, false);
}
ssize_t pwritev(int fd, const iovec* iov, int count, off_t offset) {
  if (offset < 0) return to_libc(-EINVAL);
  return transfer(fd, iov, count, offset, true);
}

int openat(int dirfd, const char* path, int flags, mode_t mode) {
  if (in_task()) {
    open_how how{};
    how.flags = static_cast<unsigned>(flags) | O_LARGEFILE;
    how.mode = (flags & (O_CREAT | O_TMPFILE)) != 0 ? (mode & 07777) : 0;
    how.resolve = RESOLVE_CACHED;
    const int saved = errno;
    const long fd = ::syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    if (fd >= 0) return static_cast<int>(fd);
    if (errno == EAGAIN) {
      errno = saved;
      // RESOLVE_CACHED refuses O_CREAT, O_TRUNC and O_TMPFILE outright: for
      // those, whether the lookup needs the disk is asked without them. A
      // create in a cached directory is made in memory (a trip off the hub
      // would cost 70 µs, bench: an open(O_CREAT|O_TRUNC) + write + close
      // loop); a truncation frees blocks as natively, on the hub.
      const bool refused = (flags & (O_CREAT | O_TRUNC | O_TMPFILE)) != 0;
      if (!refused || cached_lookup(dirfd, path, (flags & (O_NOFOLLOW | O_EXCL)) == 0) == 0) {
        const openat_op op{dirfd, path, flags | O_LARGEFILE, mode};
        return static_cast<int>(to_libc(off_hub(op)));
      }
    }
    errno = saved;  // EINVAL (flags openat2 refuses and openat ignores), ENOSYS...: the plain call says
  }
  return static_cast<int>(::syscall(SYS_openat, dirfd, path, flags | O_LARGEFILE, mode));
}
int open(const char* path, int flags, mode_t mode) { return openat(AT_FDCWD, path, flags, mode); }

int fsync(int fd) {
  if (!in_task()) return static_cast<int>(::syscall(SYS_fsync, fd));
  return static_cast<int>(to_libc(off_hub(fsync_op{fd, false})));
}
int fdatasync(int fd) {
  if (!in_task()) return static_cast<int>(::syscall(SYS_fdatasync, fd));
  return static_cast<int>(to_libc(off_hub(fsync_op{fd, true})));
}

int fstatat(int dirfd, const char* path, struct stat* st, int flags) {
  const bool empty = path != nullptr && path[0] == '\0' && (flags & AT_EMPTY_PATH) != 0;
  if (!in_task() || empty || cached_lookup(dirfd, path, (flags & AT_SYMLINK_NOFOLLOW) == 0) != 0) {
    return static_cast<int>(plain_fstatat(dirfd, path, st, flags));
  }
  return static_cast<int>(to_libc(off_hub(fstatat_op{dirfd, path, st, flags})));
}
int stat(const char* path, struct stat* st) { return file::fstatat(AT_FDCWD, path, st, 0); }
int lstat(const char* path, struct stat* st) { return file::fstatat(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW); }
int fstat(int fd, struct stat* st) { return static_cast<int>(::syscall(SYS_fstat, fd, st)); }
int statx(int dirfd, const char* path, int flags, unsigned mask, struct statx* st) {
  const bool empty = path != nullptr && path[0] == '\0' && (flags & AT_EMPTY_PATH) != 0;
  if (!in_task() || empty || cached_lookup(dirfd, path, (flags & AT_SYMLINK_NOFOLLOW) == 0) != 0) {
    return static_cast<int>(::syscall(SYS_statx, dirfd, path, flags, mask, st));
  }
  return static_cast<int>(to_libc(off_hub(statx_op{dirfd, path, flags, mask, st})));
}

int fallocate(int fd, int mode, off_t offset, off_t len) {
  if (!in_task()) return static_cast<int>(::syscall(SYS_fallocate, fd, mode, offset, len));
  return static_cast<int>(to_libc(off_hub(fallocate_op{fd, mode, offset, len})));
}
int ftruncate(int fd, off_t len) {
  if (!in_task()) return static_cast<int>(::syscall(SYS_ftruncate, fd, len));
  return static_cast<int>(to_libc(on_pool([fd, len] { return ::syscall(SYS_ftruncate, fd, len); })));
}
int truncate(const char* path, off_t len) {
  if (!in_task()) return static_cast<int>(::syscall(SYS_truncate, path, len));
  return static_cast<int>(to_libc(on_pool([path, len] { return ::syscall(SYS_truncate, path, len); })));
}
int renameat(int fromdir, const char* from, int todir, const char* to) {
  if (!in_task()) return static_cast<int>(::syscall(SYS_renameat2, fromdir, from, todir, to, 0));
  return static_cast<int>(to_libc(off_hub(renameat_op{fromdir, from, todir, to})));
}
int rename(const char* from, const char* to) { return renameat(AT_FDCWD, from, AT_FDCWD, to); }
int unlinkat(int dirfd, const char* path, int flags) {
  if (!in_task()) return static_cast<int>(::syscall(SYS_unlinkat, dirfd, path, flags));
  return static_cast<int>(to_libc(off_hub(unlinkat_op{dirfd, path, flags})));
}
int unlink(const char* path) { return unlinkat(AT_FDCWD, path, 0); }

ssize_t sendfile(int out_fd, int in_fd, off_t* offset, std::size_t count) {
  if (!in_task() || !waits_for_disk(in_fd) || !waits_for_disk(out_fd)) {
    return ::syscall(SYS_sendfile, out_fd, in_fd, offset, count);
  }
  std::optional<position_turn> turn;
  if (offset == nullptr) turn.emplace(in_fd);
  return to_libc(on_pool([=] { return ::syscall(SYS_sendfile, out_fd, in_fd, offset, count); }));
}
ssize_t copy_file_range(int in_fd, off_t* in_off, int out_fd, off_t* out_off, std::size_t n, unsigned flags) {
  if (!in_task()) return ::syscall(SYS_copy_file_range, in_fd, in_off, out_fd, out_off, n, flags);
  std::optional<position_turn> turn;
  if (in_off == nullptr) turn.emplace(in_fd);
  return to_libc(on_pool([=] { return ::syscall(SYS_copy_file_range, in_fd, in_off, out_fd, out_off, n, flags); }));
}

const char* way() {
  if (pool_only()) return "pool";
  if (tls_hub == nullptr) return running_on_valgrind() ? "pool" : "io_uring";
  return engine_of(state_of(*tls_hub)).has_ring ? "io_uring" : "pool";
}

}  // namespace grove::file
