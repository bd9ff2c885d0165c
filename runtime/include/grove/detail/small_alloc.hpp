// grove/detail/small_alloc.hpp — a per-thread free list for grove's small,
// short-lived objects (greenlets, task states). Not a public interface.
//
// Why: a program that keeps thousands of tasks alive churns through objects of
// a few hundred bytes faster than malloc's per-thread cache holds them; glibc
// then spends ~650 instructions a task in _int_malloc/_int_free (measured with
// callgrind on bench_hub spawn). Blocks freed on another thread simply join
// that thread's list.
#pragma once

#include <cstddef>

namespace grove::detail {

// small_alloc returns n bytes, aligned for any object; small_free takes them
// back (n must be the size that was asked for).
void* small_alloc(std::size_t n);
void small_free(void* p, std::size_t n) noexcept;

// small_object gives a class (and every class derived from it) the free list.
struct small_object {
  static void* operator new(std::size_t n) { return small_alloc(n); }
  static void operator delete(void* p, std::size_t n) noexcept { small_free(p, n); }
};

}  // namespace grove::detail
