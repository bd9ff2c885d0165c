// stack_pool.hpp — mmap'd greenlet stacks and the per-thread pool that reuses them.
//
//   guarded stack (one mapping of its own)     dense stacks (carved from one slab)
//   +----------------------+ <- top            +--------------+ <- slab end
//   | usable, lazily       |                   | stack 63     |
//   | committed            |                   +--------------+
//   +----------------------+ <- base           | ...          |
//   | guard page PROT_NONE |                   +--------------+
//   +----------------------+                   | stack 0      |
//                                              +--------------+ <- slab start
//
// Every page is anonymous and mapped MAP_NORESERVE: a stack costs what its
// greenlet touches. A released stack goes back to this thread's pool; beyond
// `hot_limit` per size, guarded stacks are unmapped and dense stacks have their
// pages returned with MADV_DONTNEED (their slab stays mapped until the pool dies).
// Stacks are always released on the thread that acquired them, so the pool
// takes no lock.
#pragma once

#include <atomic>
#include <cstddef>
#include <deque>
#include <vector>

#include <grove/stack.hpp>

namespace grove::detail {

// stack_region is one usable stack: [base, base + size).
struct stack_region {
  char* base = nullptr;
  std::size_t size = 0;
  stack_mode mode = stack_mode::guarded;
  unsigned valgrind_id = 0;
  char* top() const noexcept { return base + size; }
};

class stack_pool {
 public:
  // hot_limit is how many released stacks of one size and mode are kept ready.
  static constexpr std::size_t hot_limit = 256;
  // slab_stacks is how many dense stacks one mapping holds.
  static constexpr std::size_t slab_stacks = 64;

  stack_pool();
  stack_pool(const stack_pool&) = delete;
  stack_pool& operator=(const stack_pool&) = delete;
  // ~stack_pool unmaps every stack, unless some are still in use (a greenlet
  // that could not be killed): then it leaves their memory mapped.
  ~stack_pool();

  // acquire returns a stack of `size` usable bytes (a multiple of the page size).
  // Throws grove::error when the kernel refuses the mapping or the guard page,
  // saying why; it never returns a guarded-mode stack without its guard.
  stack_region acquire(std::size_t size, stack_mode mode);

  // release takes a stack back from a finished greenlet.
  void release(const stack_region& s) noexcept;

  // trim returns every pooled stack's memory to the system.
  void trim() noexcept;
  // trim_excess returns the memory of at most `most` pooled stacks beyond
  // hot_limit per size; false once there is no excess left.
  bool trim_excess(std::size_t most) noexcept;
  // has_excess: trim_excess has work to do.
  bool has_excess() const noexcept { return excess_ > 0; }

  std::size_t in_use() const noexcept { return in_use_.load(std::memory_order_relaxed); }
  std::size_t pooled() const noexcept { return pooled_.load(std::memory_order_relaxed); }

 private:
  struct bucket {
    std::size_t size;
    stack_mode mode;
    std::deque<stack_region> hot;    // released, pages still committed; newest at the back
    std::vector<stack_region> cold;  // dense only: never used, or pages returned
  };
  struct slab {
    char* start;
    std::size_t bytes;
  };

  bucket& bucket_for(std::size_t size, stack_mode mode);
  stack_region map_guarded(std::size_t size);
  void map_dense_slab(bucket& b);
  static void unmap(const stack_region& s) noexcept;
  // let_go returns the memory of a hot stack taken out of b.
  void let_go(bucket& b, const stack_region& s) noexcept;

  // Counted per pool, written only by the owning thread (a plain load and
  // store, no locked instruction on the hot path), read by stack_statistics
  // from any thread.
  static void bump(std::atomic<std::size_t>& c, std::ptrdiff_t by) noexcept {
    c.store(c.load(std::memory_order_relaxed) + static_cast<std::size_t>(by), std::memory_order_relaxed);
  }

  std::vector<bucket> buckets_;
  std::vector<slab> slabs_;
  std::atomic<std::size_t> in_use_{0};
  std::atomic<std::size_t> pooled_{0};
  std::size_t excess_ = 0;  // hot stacks beyond hot_limit, over all buckets
};

}  // namespace grove::detail
