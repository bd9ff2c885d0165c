// locks.cpp — file locks (flock, lockf, fcntl's F_SETLKW and F_OFD_SETLKW)
// and SysV message queues and semaphores (msgrcv, msgsnd, semop,
// semtimedop) in tasks.
//
// Nothing tells the hub when a lock is released or a message or semaphore
// count arrives, so a call that must wait waits on the hub's thread pool
// (blocking_on_pool): only the calling task waits, and the kernel still
// decides everything — lock conflicts and EDEADLK, message selection, the
// atomicity of a semaphore set's operations, EIDRM when the object is
// removed. First each call is tried in its non-blocking form (LOCK_NB,
// F_SETLK, F_TLOCK, IPC_NOWAIT), so an uncontended call never touches the
// pool and returns exactly what libc would. Calls that cannot block (their
// caller asked for the non-blocking form, an unlock), and every call outside
// a task, go straight to libc.
//
// The pool worker's call acts for the process: POSIX record locks belong to
// the process, flock and OFD locks to the open file description, SEM_UNDO
// adjustments to the process, so it makes no difference which thread waits.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "libc.hpp"
#include "locks.hpp"
#include "pool.hpp"
#include "threads.hpp"

namespace grove::hooks {
namespace {

// conflict: a non-blocking lock attempt failed because another holds the lock
// (POSIX lets F_SETLK say either).
bool conflict() noexcept { return errno == EAGAIN || errno == EACCES; }

// sem_ops_at_most is the kernel's SEMOPM, the most operations one semop takes
// (read once; more are E2BIG, which libc's own call reports).
std::size_t sem_ops_at_most() noexcept {
  static std::atomic<int> cached{0};
  int n = cached.load(std::memory_order_relaxed);
  if (n == 0) {
    const int saved = errno;
    seminfo info{};
    n = ::semctl(0, 0, IPC_INFO, reinterpret_cast<semid_ds*>(&info)) >= 0 && info.semopm > 0 ? info.semopm : -1;
    errno = saved;
    cached.store(n, std::memory_order_relaxed);
  }
  return n > 0 ? static_cast<std::size_t>(n) : 0;
}

// semop_on_pool makes semtimedop(id, ops, n, timeout) on the pool, with a
// copy of the caller's operations (semop when timeout is null). The timeout
// counts from now, not from when a worker takes the call.
int semop_on_pool(int id, const sembuf* ops, std::size_t n, const timespec* timeout) {
  std::shared_ptr<std::vector<sembuf>> copy;
  try {
    copy = std::make_shared<std::vector<sembuf>>(ops, ops + n);
  } catch (const std::bad_alloc&) {
    return real_semtimedop()(id, const_cast<sembuf*>(ops), n, timeout);  // blocks the OS thread, as natively
  }
  const bool timed = timeout != nullptr;
  const auto deadline =
      timed ? clock::now() + std::chrono::seconds(timeout->tv_sec) + std::chrono::nanoseconds(timeout->tv_nsec)
            : clock::time_point{};
  return blocking_on_pool([id, copy, n, timed, deadline] {
    if (!timed) return real_semop()(id, copy->data(), n);
    const auto left = std::max(deadline - clock::now(), clock::duration::zero());
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(left);
    const timespec t{static_cast<time_t>(secs.count()),
                     static_cast<long>(std::chrono::duration_cast<std::chrono::nanoseconds>(left - secs).count())};
    return real_semtimedop()(id, copy->data(), n, &t);
  }, on_handler::fail);
}

// semop_in_task is semtimedop(id, ops, n, timeout) in a task (semop when
// timeout is null): the operations tried with IPC_NOWAIT, then as given, on
// the pool.
int semop_in_task(int id, sembuf* ops, std::size_t n, const timespec* timeout) {
  bool all_nowait = true;
  for (std::size_t i = 0; i < n; ++i) all_nowait = all_nowait && (ops[i].sem_flg & IPC_NOWAIT) != 0;
  if (all_nowait) return real_semtimedop()(id, ops, n, timeout);
  const int saved = errno;
  {
    constexpr std::size_t on_stack = 16;
    sembuf small[on_stack];
    std::vector<sembuf> large;
    sembuf* now = small;
    if (n > on_stack) {
      try {
        large.resize(n);
      } catch (const std::bad_alloc&) {
        return real_semtimedop()(id, ops, n, timeout);
      }
      now = large.data();
    }
    for (std::size_t i = 0; i < n; ++i) {
      now[i] = ops[i];
      now[i].sem_flg = static_cast<short>(now[i].sem_flg | IPC_NOWAIT);
    }
    // The caller's timeout goes along, for the kernel to check (EINVAL, EFAULT).
    const int r = real_semtimedop()(id, now, n, timeout);
    if (r == 0 || errno != EAGAIN) return r;
  }
  errno = saved;
  return semop_on_pool(id, ops, n, timeout);
}

// takes_semop tells whether a semop of n operations at ops is one the hooks
// take over: not libc's own errors (null operations, none, too many), which
// libc's call reports without waiting.
bool takes_semop(const sembuf* ops, std::size_t n) noexcept {
  return ops != nullptr && n > 0 && n <= sem_ops_at_most();
}

}  // namespace

int record_lock_in_task(fn::fcntl real, int fd, int cmd, void* lock) {
  const int saved = errno;
  const int r = real(fd, cmd == F_SETLKW ? F_SETLK : F_OFD_SETLK, lock);
  if (r != -1 || !conflict()) return r;
  // The try read the caller's struct (EFAULT had it been bad); F_SETLKW reads
  // it and never writes it, so the pool's call gets a copy.
  errno = saved;
  const struct flock copy = *static_cast<const struct flock*>(lock);
  return cancellable([&] {
    return blocking_on_pool([real, fd, cmd, copy]() mutable { return real(fd, cmd, &copy); }, on_handler::restart);
  });
}

}  // namespace grove::hooks

using namespace grove::hooks;

extern "C" {

int flock(int fd, int operation) {
  if (!cooperative() || (operation & LOCK_NB) != 0 || (operation & (LOCK_SH | LOCK_EX)) == 0) {
    return real_flock()(fd, operation);
  }
  const int saved = errno;
  const int r = real_flock()(fd, operation | LOCK_NB);
  if (r == 0 || errno != EWOULDBLOCK) return r;
  errno = saved;
  return blocking_on_pool([fd, operation] { return real_flock()(fd, operation); }, on_handler::restart);
}

int lockf(int fd, int cmd, off_t len) {
  if (!cooperative() || cmd != F_LOCK) return real_lockf()(fd, cmd, len);
  cancellation_point();
  const int saved = errno;
  const int r = real_lockf()(fd, F_TLOCK, len);
  if (r == 0 || !conflict()) return r;
  errno = saved;
  return cancellable([&] { return blocking_on_pool([fd, len] { return real_lockf()(fd, F_LOCK, len); }, on_handler::restart); });
}

int lockf64(int fd, int cmd, off64_t len) {
  if (!cooperative() || cmd != F_LOCK) return real_lockf64()(fd, cmd, len);
  cancellation_point();
  const int saved = errno;
  const int r = real_lockf64()(fd, F_TLOCK, len);
  if (r == 0 || !conflict()) return r;
  errno = saved;
  return cancellable([&] { return blocking_on_pool([fd, len] { return real_lockf64()(fd, F_LOCK, len); }, on_handler::restart); });
}

ssize_t msgrcv(int id, void* message, size_t size, long type, int flags) {
  if (!cooperative() || (flags & IPC_NOWAIT) != 0) return real_msgrcv()(id, message, size, type, flags);
  cancellation_point();
  const int saved = errno;
  const ssize_t r = real_msgrcv()(id, message, size, type, flags | IPC_NOWAIT);
  if (r >= 0 || errno != ENOMSG) return r;
  errno = saved;
  // The worker receives into a buffer of its own (its pages are touched only
  // as far as the message goes), copied to the caller's once it is back.
  const std::size_t bytes = sizeof(long) + size;
  std::shared_ptr<char[]> into;
  try {
    into = std::make_shared_for_overwrite<char[]>(bytes);
  } catch (const std::bad_alloc&) {
    return real_msgrcv()(id, message, size, type, flags);  // blocks the OS thread, as natively
  }
  return cancellable([&] {
    const ssize_t n = blocking_on_pool(
        [id, into, size, type, flags] { return real_msgrcv()(id, into.get(), size, type, flags); },
        on_handler::fail);
    if (n >= 0) std::memcpy(message, into.get(), sizeof(long) + static_cast<std::size_t>(n));
    return n;
  });
}

int msgsnd(int id, const void* message, size_t size, int flags) {
  if (!cooperative() || (flags & IPC_NOWAIT) != 0) return real_msgsnd()(id, message, size, flags);
  cancellation_point();
  const int saved = errno;
  const int r = real_msgsnd()(id, message, size, flags | IPC_NOWAIT);
  if (r == 0 || errno != EAGAIN) return r;
  errno = saved;
  // The try read the whole message (EFAULT had it been bad): copy it for the worker.
  std::shared_ptr<std::vector<char>> copy;
  try {
    const auto* m = static_cast<const char*>(message);
    copy = std::make_shared<std::vector<char>>(m, m + sizeof(long) + size);
  } catch (const std::bad_alloc&) {
    return real_msgsnd()(id, message, size, flags);
  }
  return cancellable(
      [&] { return blocking_on_pool([id, copy, size, flags] { return real_msgsnd()(id, copy->data(), size, flags); },
                                 on_handler::fail); });
}

int semop(int id, sembuf* ops, size_t n) {
  if (!cooperative() || !takes_semop(ops, n)) return real_semop()(id, ops, n);
  return semop_in_task(id, ops, n, nullptr);
}

int semtimedop(int id, sembuf* ops, size_t n, const timespec* timeout) {
  if (!cooperative() || !takes_semop(ops, n)) return real_semtimedop()(id, ops, n, timeout);
  return semop_in_task(id, ops, n, timeout);
}

}  // extern "C"
