#include <grove/detail/small_alloc.hpp>

#include <cstdint>
#include <new>

#include "sanitizer.hpp"

namespace grove::detail {
namespace {

// Under ASan, TSan or valgrind, reuse would hide use-after-free: pass through.
bool checked_run() noexcept {
#if GROVE_ASAN || GROVE_TSAN
  return true;
#elif GROVE_VALGRIND
  static const bool on_valgrind = RUNNING_ON_VALGRIND != 0;
  return on_valgrind;
#else
  return false;
#endif
}

constexpr std::size_t granule = 32;
constexpr std::size_t classes = 33;  // sizes up to 1 KiB
constexpr std::uint32_t keep_per_class = 4096;

struct free_block {
  free_block* next;
};

// Blocks go back through the unsized operator delete: clang declares the sized
// forms only under -fsized-deallocation, and they are only a hint to free.
struct free_lists {
  free_block* head[classes] = {};
  std::uint32_t count[classes] = {};
  free_lists() = default;
  free_lists(const free_lists&) = delete;
  free_lists& operator=(const free_lists&) = delete;
  ~free_lists() {
    for (std::size_t c = 0; c < classes; ++c) {
      while (free_block* b = head[c]) {
        head[c] = b->next;
        ::operator delete(b, std::align_val_t{alignof(std::max_align_t)});
      }
    }
  }
};

thread_local free_lists lists;

std::size_t class_of(std::size_t n) noexcept { return (n + granule - 1) / granule; }

}  // namespace

void* small_alloc(std::size_t n) {
  const std::size_t c = class_of(n);
  if (c >= classes || checked_run()) return ::operator new(n);
  free_lists& l = lists;
  if (free_block* b = l.head[c]) {
    l.head[c] = b->next;
    --l.count[c];
    return b;
  }
  return ::operator new (c* granule, std::align_val_t{alignof(std::max_align_t)});
}

void small_free(void* p, std::size_t n) noexcept {
  if (p == nullptr) return;
  const std::size_t c = class_of(n);
  if (c >= classes || checked_run()) {
    ::operator delete(p);
    return;
  }
  free_lists& l = lists;
  if (l.count[c] >= keep_per_class) {
    ::operator delete(p, std::align_val_t{alignof(std::max_align_t)});
    return;
  }
  auto* b = static_cast<free_block*>(p);
  b->next = l.head[c];
  l.head[c] = b;
  ++l.count[c];
}

}  // namespace grove::detail
