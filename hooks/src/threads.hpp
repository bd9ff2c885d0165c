// threads.hpp — green pthreads: what the thread and synchronisation hooks share.
//
// With GROVE_THREADS=green (grove-run's default), pthread_create called by a
// task or by main becomes a grove task on the caller's hub: a green thread.
// Its identity (pthread_self) is its record here; its thread-specific data
// lives in the record too. Threads grove starts for itself, and threads
// created where there is no hub, stay OS threads, as every thread does with
// GROVE_THREADS=native.
#pragma once

#include <pthread.h>

#include <cstdint>
#include <type_traits>

#include <grove/detail/wait.hpp>

#include "context.hpp"
#include "signals.hpp"

namespace grove::hooks {

struct green_thread;

// green_threads tells whether pthread_create makes green threads
// (GROVE_THREADS; a bad value prints a message and exits with status 2).
bool green_threads();
// default_to_green makes green the default when GROVE_THREADS is unset (the
// preload library's choice; a program linking grove::hooks defaults to native).
void default_to_green() noexcept;

// current_green returns the green thread the caller runs in, or nullptr (an OS
// thread, main, a plain task, the hub).
[[gnu::always_inline]] inline green_thread* current_green() noexcept {
  detail::hub_core* h = detail::tls_hub;
  return h == nullptr ? nullptr : static_cast<green_thread*>(h->ts->current->hooks_data);
}

// owner_id identifies the caller as the owner of a lock: its greenlet when it
// is cooperative (main, a task, a green thread), else its OS thread.
[[gnu::always_inline]] inline std::uintptr_t owner_id() noexcept {
  if (cooperative()) return reinterpret_cast<std::uintptr_t>(detail::tls_hub->ts->current);
  return static_cast<std::uintptr_t>(::pthread_self()) | 1;  // greenlets are aligned: never odd
}

// threads_alive counts the program's threads that run as greenlets: its green
// threads, and main unless it is gone (a child of fork from a green thread).
long threads_alive() noexcept;

// cancellation_point acts on a pending pthread_cancel of the calling green
// thread (unwinding it), as glibc's cancellation points do.
void cancellation_point();

// thread_exit unwinds a green thread for pthread_exit and cancellation. Like
// glibc's forced unwinding it runs C++ destructors and cleanup handlers on the
// way; it is not a std::exception, so handlers for those let it pass.
struct thread_exit {
  void* value;
};

// unwind_green ends the calling green thread with value: through the cleanup
// handlers C code registered with pthread_cleanup_push first (glibc keeps
// those per OS thread; the hooks keep them per green thread), then by
// unwinding its stack with thread_exit.
[[noreturn]] void unwind_green(void* value);

// cancellable runs a cancellation point's wait: a cancellation that reaches it
// goes through the C cleanup handlers too.
template <class F>
auto cancellable(F f) -> decltype(f()) {
  void* value = nullptr;
  try {
    return f();
  } catch (const thread_exit& e) {
    value = e.value;
  }
  unwind_green(value);  // out of the handler: the exception is over
}

// signal_state_of returns green thread t's signals.
signals::thread_state& signal_state_of(green_thread& t) noexcept;

// for_each_green_here calls f(signals::thread_state&) for every green thread
// running on the caller's OS thread.
void for_each_green_here_with(void (*f)(signals::thread_state&, void*), void* arg);
template <class F>
void for_each_green_here(F&& f) {
  using G = std::remove_reference_t<F>;
  for_each_green_here_with([](signals::thread_state& s, void* a) { (*static_cast<G*>(a))(s); }, &f);
}

// to_limit converts an absolute time on clock c into a limit on the hub's
// clock. False: c is not a clock pthread waits accept, or t is malformed.
bool to_limit(clockid_t c, const timespec* t, limit& out) noexcept;

}  // namespace grove::hooks
