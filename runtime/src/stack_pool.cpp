#include "stack_pool.hpp"

#include <sys/mman.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>

#include <grove/error.hpp>

#include "sanitizer.hpp"
#include "settings.hpp"

namespace grove::detail {
namespace {

std::atomic<std::size_t> stacks_reserved_bytes{0};

// Every thread's pool, for stack_statistics; and what pools that are gone left in use.
std::mutex registry_lock;
std::vector<const stack_pool*>& registry() {
  static std::vector<const stack_pool*> pools;
  return pools;
}
std::atomic<std::size_t> stacks_left_in_use{0};

std::string max_map_count() {
  std::ifstream f("/proc/sys/vm/max_map_count");
  std::string v;
  if (!(f >> v)) v = "unknown";
  return v;
}

[[noreturn]] void refuse(const std::string& what, int err) {
  std::string msg = "grove: " + what + ": " + std::strerror(err);
  if (err == ENOMEM) {
    msg += " (each guarded stack costs the kernel two memory mappings and vm.max_map_count is " + max_map_count() +
           "; use dense stacks (GROVE_STACK_MODE=dense or grove::set_default_stack_mode) or raise "
           "vm.max_map_count)";
  }
  throw grove::error(msg);
}

unsigned register_with_valgrind([[maybe_unused]] char* base, [[maybe_unused]] std::size_t size) {
#if GROVE_VALGRIND
  return VALGRIND_STACK_REGISTER(base, base + size);
#else
  return 0;
#endif
}

void deregister_with_valgrind([[maybe_unused]] unsigned id) {
#if GROVE_VALGRIND
  VALGRIND_STACK_DEREGISTER(id);
#endif
}

constexpr int map_flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK;

}  // namespace

stack_pool::stack_pool() {
  std::lock_guard<std::mutex> hold(registry_lock);
  registry().push_back(this);
}

stack_pool::~stack_pool() {
  {
    std::lock_guard<std::mutex> hold(registry_lock);
    std::erase(registry(), this);
    stacks_left_in_use.fetch_add(in_use(), std::memory_order_relaxed);
  }
  for (auto& b : buckets_) {
    if (b.mode == stack_mode::guarded) {
      for (auto& s : b.hot) unmap(s);
    } else {
      for (auto& s : b.hot) deregister_with_valgrind(s.valgrind_id);
      for (auto& s : b.cold) deregister_with_valgrind(s.valgrind_id);
    }
  }
  // A slab still holding a stack in use must stay mapped (its greenlet could not
  // be killed); we cannot tell which slab, so we keep them all in that case.
  if (in_use() == 0) {
    for (auto& s : slabs_) {
      ::munmap(s.start, s.bytes);
      stacks_reserved_bytes.fetch_sub(s.bytes, std::memory_order_relaxed);
    }
  }
}

stack_pool::bucket& stack_pool::bucket_for(std::size_t size, stack_mode mode) {
  for (auto& b : buckets_) {
    if (b.size == size && b.mode == mode) return b;
  }
  buckets_.push_back(bucket{size, mode, {}, {}});
  return buckets_.back();
}

stack_region stack_pool::acquire(std::size_t size, stack_mode mode) {
  bucket& b = bucket_for(size, mode);
  stack_region s;
  if (!b.hot.empty()) {
    s = b.hot.back();
    b.hot.pop_back();
    bump(pooled_, -1);
    if (b.hot.size() >= hot_limit && excess_ > 0) --excess_;
  } else if (!b.cold.empty()) {
    s = b.cold.back();
    b.cold.pop_back();
    bump(pooled_, -1);
  } else if (mode == stack_mode::guarded) {
    s = map_guarded(size);
  } else {
    map_dense_slab(b);
    s = b.cold.back();
    b.cold.pop_back();
    bump(pooled_, -1);
  }
  bump(in_use_, 1);
  return s;
}

stack_region stack_pool::map_guarded(std::size_t size) {
  const std::size_t guard = page_size();
  void* p = ::mmap(nullptr, size + guard, PROT_READ | PROT_WRITE, map_flags, -1, 0);
  if (p == MAP_FAILED) refuse("cannot map a " + std::to_string(size) + "-byte greenlet stack", errno);
  auto* start = static_cast<char*>(p);
  if (::mprotect(start, guard, PROT_NONE) != 0) {
    const int err = errno;
    ::munmap(start, size + guard);
    refuse(
        "cannot protect the guard page below a new greenlet stack, and grove never hands out an "
        "unguarded one",
        err);
  }
  stacks_reserved_bytes.fetch_add(size + guard, std::memory_order_relaxed);
  stack_region s{start + guard, size, stack_mode::guarded, 0};
  s.valgrind_id = register_with_valgrind(s.base, s.size);
  return s;
}

void stack_pool::map_dense_slab(bucket& b) {
  const std::size_t bytes = b.size * slab_stacks;
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, map_flags, -1, 0);
  if (p == MAP_FAILED) refuse("cannot map " + std::to_string(bytes) + " bytes of dense greenlet stacks", errno);
  auto* start = static_cast<char*>(p);
  slabs_.push_back(slab{start, bytes});
  stacks_reserved_bytes.fetch_add(bytes, std::memory_order_relaxed);
  // Hand out the lowest stacks last, so the slab fills from the top down.
  for (std::size_t i = 0; i < slab_stacks; ++i) {
    stack_region s{start + i * b.size, b.size, stack_mode::dense, 0};
    s.valgrind_id = register_with_valgrind(s.base, s.size);
    b.cold.push_back(s);
  }
  bump(pooled_, slab_stacks);
}

void stack_pool::release(const stack_region& s) noexcept {
#if GROVE_ASAN
  // The finished greenlet's last frames never returned, so their redzones are
  // still poisoned. (Fresh mappings have clean shadow: no need at acquire.)
  ASAN_UNPOISON_MEMORY_REGION(s.base, s.size);
#endif
  bump(in_use_, -1);
  bucket& b = bucket_for(s.size, s.mode);
  if (b.hot.size() >= hot_limit) ++excess_;
  b.hot.push_back(s);
  bump(pooled_, 1);
}

void stack_pool::let_go(bucket& b, const stack_region& s) noexcept {
  if (b.mode == stack_mode::guarded) {
    unmap(s);
    bump(pooled_, -1);
  } else {
    ::madvise(s.base, s.size, MADV_DONTNEED);
    b.cold.push_back(s);
  }
}

bool stack_pool::trim_excess(std::size_t most) noexcept {
  for (auto& b : buckets_) {
    while (most > 0 && b.hot.size() > hot_limit) {
      // The oldest released stacks are the coldest in the caches: let those go.
      const stack_region s = b.hot.front();
      b.hot.pop_front();
      let_go(b, s);
      --excess_;
      --most;
    }
  }
  return excess_ > 0;
}

void stack_pool::trim() noexcept {
  for (auto& b : buckets_) {
    for (auto& s : b.hot) let_go(b, s);
    b.hot.clear();
  }
  excess_ = 0;
}

void stack_pool::unmap(const stack_region& s) noexcept {
  deregister_with_valgrind(s.valgrind_id);
  const std::size_t guard = page_size();
  ::munmap(s.base - guard, s.size + guard);
  stacks_reserved_bytes.fetch_sub(s.size + guard, std::memory_order_relaxed);
}

}  // namespace grove::detail

namespace grove {

stack_stats stack_statistics() {
  stack_stats s;
  {
    std::lock_guard<std::mutex> hold(detail::registry_lock);
    for (const detail::stack_pool* p : detail::registry()) {
      s.in_use += p->in_use();
      s.pooled += p->pooled();
    }
  }
  s.in_use += detail::stacks_left_in_use.load(std::memory_order_relaxed);
  s.reserved_bytes = detail::stacks_reserved_bytes.load(std::memory_order_relaxed);
  return s;
}

}  // namespace grove
