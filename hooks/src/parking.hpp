// parking.hpp — where green and OS threads wait on pthread objects.
//
// The pthread objects the hooks implement (mutexes, condition variables,
// semaphores, rwlocks, barriers, once, joins) keep their state in a word or two
// of the program's own object and wait here, in a "parking lot" keyed by the
// object's address: a fixed table of buckets, each a spinlock and a FIFO of
// waiters. Linux's futex works the same way inside the kernel; WebKit's
// ParkingLot and Rust's parking_lot do it in user space.
//
// Any thread may wait: a green thread (a task on its thread's hub) parks on the
// hub, so its OS thread runs other green threads meanwhile; an OS thread with no
// hub (grove's pool workers, threads in GROVE_THREADS=native mode, the hub's own
// callbacks) sleeps on a futex word in its waiter. Any thread may wake any
// waiter: a green waiter of another OS thread is woken through its hub's post.
//
// No wake-up is lost: park() checks the caller's condition (validate) and
// enqueues under the bucket's lock, and a waker changes the object's state
// before it takes that lock to dequeue. A waiter dequeued by a waker always
// returns `unparked`, even if its time ran out meanwhile, so the wake it was
// given is never dropped on the floor.
#pragma once

#include <cstddef>
#include <exception>
#include <type_traits>

#include "context.hpp"

namespace grove::hooks::parking {

enum class result {
  unparked,   // a waker woke it
  invalid,    // validate() said not to wait
  timed_out,  // the limit passed
  signalled,  // a signal handler ran in the waiting thread (it has run by now); no waker woke it
};

// park waits on addr until unpark() picks the caller or the limit passes.
// validate runs under the bucket's lock, before the caller is enqueued; when
// it returns false nothing waits. It must not block or park.
// A green caller that is interrupted (a kill, pthread_cancel, a grove::timeout
// scope) leaves the queue, passing on a wake it had already been given; then
// the exception propagates, or, for calls that must not throw (pthread_mutex_lock
// and the other noexcept functions), is kept in *deferred, to be raised at the
// caller's next blocking call (rearm), and park returns `unparked`.
// A green caller parks on its hub unless `os_thread`: then it blocks its OS
// thread, as a caller with no hub always does.
// A signal for a green caller's thread ends its wait: its handlers run before
// park returns, and the result is `signalled` (or `unparked`, when a waker had
// already picked it). Callers that natively never fail with EINTR just wait
// again.
// Any `unparked` may be spurious: callers look at their object again.
template <class Validate>
result park(const void* addr, Validate&& validate, limit l, std::exception_ptr* deferred = nullptr,
            bool os_thread = false);

// unpark wakes up to `most` waiters of addr, oldest first, and returns how many.
std::size_t unpark(const void* addr, std::size_t most);
inline std::size_t unpark_one(const void* addr) { return unpark(addr, 1); }
inline std::size_t unpark_all(const void* addr) { return unpark(addr, static_cast<std::size_t>(-1)); }

// rearm makes a deferred interrupt pending again on the current greenlet.
void rearm(std::exception_ptr& deferred) noexcept;

// The non-template core of park.
result park_with(const void* addr, bool (*validate)(void*), void* state, limit l, std::exception_ptr* deferred,
                 bool os_thread);

template <class Validate>
result park(const void* addr, Validate&& validate, limit l, std::exception_ptr* deferred, bool os_thread) {
  using V = std::remove_reference_t<Validate>;
  return park_with(
      addr, [](void* v) { return static_cast<bool>((*static_cast<V*>(v))()); }, &validate, l, deferred, os_thread);
}

// native_threads counts the OS threads the program started through the hooks
// that are still running: while there are any, a green waiter may be woken by
// one of them, so its hub must not conclude that nothing can ever wake it.
void native_thread_started() noexcept;
void native_thread_finished() noexcept;

// after_fork_in_child drops the waiters that do not exist in the child of a
// fork: every OS thread's and other hubs' (their threads are gone), and this
// hub's too unless keep_this_hub (its tasks live on in the child). Buckets a
// vanished thread held are unlocked. native_threads becomes `natives`, the
// program's OS threads still running here (the forker, if it is one).
void after_fork_in_child(bool keep_this_hub, long natives) noexcept;

}  // namespace grove::hooks::parking
