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

// own_affinity_scope: while a large file call runs off the hub, the hub's OS
// thread is bound to the CPU it is on (grove::file, file_io.cpp). A thread
// created meanwhile would inherit that binding, so for its lifetime this gives
// the calling thread its own CPU affinity back, and binds it again after.
// Nothing is done on a thread that is not so bound.
struct own_affinity_scope {
  own_affinity_scope() noexcept;
  ~own_affinity_scope();
  own_affinity_scope(const own_affinity_scope&) = delete;
  own_affinity_scope& operator=(const own_affinity_scope&) = delete;
  int rebind_to = -1;  // the CPU to bind the thread to again, or -1
};

// helper_thread_scope marks the threads started in its lifetime as grove's own.
// They start with every asynchronous signal blocked: natively the program has
// no such threads, so the kernel must never pick one to run a handler on; and
// with the creating thread's own CPU affinity (own_affinity_scope).
struct helper_thread_scope {
  helper_thread_scope() noexcept;
  ~helper_thread_scope();
  helper_thread_scope(const helper_thread_scope&) = delete;
  helper_thread_scope& operator=(const helper_thread_scope&) = delete;
  bool was;
  unsigned long saved_mask;  // the creating thread's signal mask, in the kernel's form
  own_affinity_scope affinity;
};

// making_hub_descriptors is true while grove creates or destroys a hub's own
// descriptors (its libev loop's epoll set and wake-up eventfd) on this thread.
// The hooks move the descriptors made meanwhile out of the program's way (to
// high numbers) and keep the program's own calls off them: natively the
// program has no such descriptors.
extern constinit thread_local bool making_hub_descriptors __attribute__((tls_model("initial-exec")));

// hub_descriptors_scope sets making_hub_descriptors for its lifetime.
struct hub_descriptors_scope {
  hub_descriptors_scope() noexcept : was(making_hub_descriptors) { making_hub_descriptors = true; }
  ~hub_descriptors_scope() { making_hub_descriptors = was; }
  hub_descriptors_scope(const hub_descriptors_scope&) = delete;
  hub_descriptors_scope& operator=(const hub_descriptors_scope&) = delete;
  bool was;
};

// adopt_hub_descriptor hands a hub's descriptor that grove made without a
// libc call the hooks see (the io_uring's, made by a raw system call) to the
// hooks, which move it out of the program's way as they move the others, and
// returns its number then. Without the hooks, fd itself.
int adopt_hub_descriptor(int fd) noexcept;
// set_descriptor_adopter installs the hooks' adopter.
void set_descriptor_adopter(int (*adopt)(int)) noexcept;

// thread_sigmask changes the calling OS thread's signal mask with the system
// call itself (as pthread_sigmask does natively), whatever the hooks have made
// of pthread_sigmask: grove's own code uses it where the kernel's mask matters.
int thread_sigmask(int how, const void* set, void* old) noexcept;

// stack_bounds gives the lowest address and size of g's stack (nullptr, 0 for a
// thread's main greenlet, which runs on the thread's own stack, or an unstarted
// greenlet).
struct stack_span {
  void* lowest = nullptr;
  std::size_t size = 0;
};
stack_span stack_bounds(const greenlet_core* g) noexcept;

// dump_other_hubs has every hub but the caller's print its tasks
// (grove::dump_tasks(std::cerr), so with backtraces when GROVE_BACKTRACES=1),
// each on its own thread as soon as it gets to it, under a line naming the
// hub's OS thread. It does not wait for them.
void dump_other_hubs() noexcept;

// keep_hub_at_exit makes this thread's hub outlive the thread: it is never torn
// down, so the tasks still parked on it are not killed (unwound) when the
// thread exits. The preload library does this for the main thread, where a
// program's other (green) threads must vanish at exit as OS threads do.
void keep_hub_at_exit() noexcept;

// keep_only_current_after_fork makes the calling greenlet the only one that
// runs on in the child of a fork, as the forking thread is the only thread
// there: for the hooks' green threads, which are tasks of the hub. Call it in
// the child only, first thing (an atfork child handler), on the hub's thread.
// Every other task of this thread's hub, every greenlet parked on it or ready
// to run, and the thread's main greenlet (unless it is the caller) vanish
// (abandoned, never unwound: their stacks stay allocated and untouched). The
// hub starts afresh: a new libev loop (the old one, with the vanished
// greenlets' timers and descriptor watchers in it, is destroyed), empty ready
// rings and parked list, no descriptor watchers, no posts, no keepalives. The
// caller's own timeout scopes carry their deadlines over to the new loop, and
// waiters of other greenlets for the caller's task are dropped. Does nothing on
// a thread with no hub, or when the hub itself is the caller.
void keep_only_current_after_fork() noexcept;

}  // namespace grove::detail
