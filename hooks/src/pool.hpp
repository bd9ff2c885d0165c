// pool.hpp — blocking calls that nothing can wait for on the hub (file locks,
// SysV message queues and semaphores) run on the hub's thread pool, so only
// the calling task waits.
//
// blocking_on_pool is the one way hooks hand such a call to the pool: making
// these waits interruptible (EINTR) is a change here, not in every hook.
#pragma once

#include <cerrno>
#include <new>
#include <system_error>
#include <utility>

#include <grove/thread_pool.hpp>

#include "context.hpp"

namespace grove::hooks {

// blocking_on_pool runs call(), a blocking libc call that returns its result
// and sets errno on failure, on a thread of the hub's pool as if on the calling
// thread: the worker starts with the caller's errno, and the caller gets the
// call's result and the errno it left. Only the calling task waits; the hub
// and its other tasks run meanwhile.
//
// call must own everything it touches (copies of the caller's buffers, copied
// back by the hook once this returns): a task killed while it waits (or whose
// grove::timeout scope fires) abandons the call, which runs to its end on the
// worker, and what it does then (a lock taken, a message received) is lost
// with the task. Interruptions propagate as exceptions, as from any wait in a
// task. If the pool cannot take the call (no memory, no thread), it runs here,
// blocking the OS thread, as it would natively: late, but right.
template <class Call>
auto blocking_on_pool(Call call) -> decltype(call()) {
  using result = decltype(call());
  struct outcome {
    result value;
    int err;
  };
  const int before = errno;
  try {
    // The pool gets a copy: `call` stays here for the fallback below.
    const outcome out = grove::run_in_thread([call, before]() mutable {
      errno = before;
      const result r = call();
      return outcome{r, errno};
    });
    errno = out.err;
    return out.value;
  } catch (const std::bad_alloc&) {
  } catch (const std::system_error&) {
  }
  errno = before;
  return call();
}

}  // namespace grove::hooks
