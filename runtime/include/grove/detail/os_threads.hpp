// grove/detail/os_threads.hpp — what the hooks need to know of grove's own OS
// threads and stacks. Not a public interface: names here change without notice.
#pragma once

#include <cstddef>

namespace grove::detail {

struct greenlet_core;

// creating_helper_thread is true while grove starts a thread of its own (a
// thread-pool worker, the blocking monitor). The hooks, which may turn
// pthread_create into a green thread, give such threads a real OS thread.
extern constinit thread_local bool creating_helper_thread __attribute__((tls_model("initial-exec")));

// helper_thread_scope marks the threads started in its lifetime as grove's own.
struct helper_thread_scope {
  helper_thread_scope() noexcept : was(creating_helper_thread) { creating_helper_thread = true; }
  ~helper_thread_scope() { creating_helper_thread = was; }
  helper_thread_scope(const helper_thread_scope&) = delete;
  helper_thread_scope& operator=(const helper_thread_scope&) = delete;
  bool was;
};

// stack_bounds gives the lowest address and size of g's stack (nullptr, 0 for a
// thread's main greenlet, which runs on the thread's own stack, or an unstarted
// greenlet).
struct stack_span {
  void* lowest = nullptr;
  std::size_t size = 0;
};
stack_span stack_bounds(const greenlet_core* g) noexcept;

// keep_hub_at_exit makes this thread's hub outlive the thread: it is never torn
// down, so the tasks still parked on it are not killed (unwound) when the
// thread exits. The preload library does this for the main thread, where a
// program's other (green) threads must vanish at exit as OS threads do.
void keep_hub_at_exit() noexcept;

}  // namespace grove::detail
