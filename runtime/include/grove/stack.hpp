// grove/stack.hpp — how greenlet stacks are allocated, and the knobs for it.
//
// Every greenlet runs on its own stack. Stacks are mmap'd and lazily committed:
// a parked greenlet costs the pages it has touched, not its reserved size.
// Finished greenlets give their stacks back to a per-thread pool for reuse.
//
// Two modes:
//  - guarded (the default): a PROT_NONE guard page below every stack, so an
//    overflow ends the process with a message naming the greenlet and its
//    stack size. Each guarded stack costs the kernel two memory mappings, and
//    vm.max_map_count (65530 by default) caps a process near 32,000 guarded
//    stacks; past that grove throws grove::error rather than hand out an
//    unguarded stack.
//  - dense: no guard pages; stacks are carved from large shared mappings, so
//    millions of greenlets fit. An overflow silently corrupts the neighbouring
//    stack: use it for greenlets whose depth you know.
#pragma once

#include <cstddef>

namespace grove {

// stack_mode selects guarded or dense stacks (see above).
enum class stack_mode { guarded, dense };

// default_stack_size returns the stack size, in bytes, of greenlets created
// without an explicit size: GROVE_STACK_SIZE from the environment (a byte
// count with an optional K, M or G suffix), else 256 KiB.
// A bad GROVE_STACK_SIZE prints a message on stderr and exits with status 2.
std::size_t default_stack_size();

// set_default_stack_size changes the default for greenlets started from now on.
// Sizes are rounded up to whole pages. Throws grove::error outside
// [min_stack_size, max_stack_size].
void set_default_stack_size(std::size_t bytes);

// min_stack_size and max_stack_size bound every stack size grove accepts.
inline constexpr std::size_t min_stack_size = 16 * 1024;
inline constexpr std::size_t max_stack_size = std::size_t{1} << 30;

// default_stack_mode returns the mode new stacks get: GROVE_STACK_MODE from the
// environment ("guarded" or "dense"), else guarded. A bad value prints a
// message on stderr and exits with status 2.
stack_mode default_stack_mode();

// set_default_stack_mode changes the mode of stacks allocated from now on.
void set_default_stack_mode(stack_mode mode);

// stack_stats counts grove's stacks, process-wide.
struct stack_stats {
  std::size_t in_use = 0;          // stacks held by started, unfinished greenlets
  std::size_t pooled = 0;          // stacks kept for reuse in the threads' pools
  std::size_t reserved_bytes = 0;  // address space reserved for stacks (not memory used)
};

// stack_statistics returns a snapshot of stack_stats. Thread-safe.
stack_stats stack_statistics();

// trim_stack_pool returns this thread's pooled stacks to the operating system.
void trim_stack_pool();

}  // namespace grove
