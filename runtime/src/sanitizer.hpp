// sanitizer.hpp — telling ASan, TSan and valgrind about greenlet stacks.
//
// Boost 1.74's fcontext backend annotates nothing, so grove does it around every
// boost::context::fiber resume:
//  - ASan's fiber API: __sanitizer_start_switch_fiber right before the jump,
//    __sanitizer_finish_switch_fiber right after landing, so that ASan knows
//    which stack is live (exceptions, fake stacks, use-after-return checks).
//  - TSan's fiber API: one TSan fiber per greenlet, switched right before the jump.
//  - valgrind: every stack is registered (VALGRIND_STACK_REGISTER) while mapped.
// In a build without the sanitizer each helper is empty and inlines to nothing.
#pragma once

#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#define GROVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GROVE_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define GROVE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GROVE_TSAN 1
#endif
#endif

#ifndef GROVE_ASAN
#define GROVE_ASAN 0
#endif
#ifndef GROVE_TSAN
#define GROVE_TSAN 0
#endif

#if GROVE_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if GROVE_TSAN
#include <sanitizer/tsan_interface.h>
#endif
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define GROVE_VALGRIND 1
#endif

namespace grove::detail {

// fiber_marks is what the sanitizers need to know about one greenlet's stack.
struct fiber_marks {
#if GROVE_ASAN
  const void* bottom = nullptr;  // lowest address of the stack
  std::size_t size = 0;
#endif
#if GROVE_TSAN
  void* tsan = nullptr;  // the greenlet's TSan fiber
#endif
};

// before_jump: call right before jumping to `to`. fake_save is a local of the
// frame that will be resumed later, or nullptr when the current greenlet is
// finishing and never comes back (ASan then frees its fake stack).
inline void before_jump([[maybe_unused]] void** fake_save, [[maybe_unused]] const fiber_marks& to) noexcept {
#if GROVE_ASAN
  __sanitizer_start_switch_fiber(fake_save, to.bottom, to.size);
#endif
#if GROVE_TSAN
  __tsan_switch_to_fiber(to.tsan, 0);
#endif
}

// after_jump: call first thing after landing. fake_save is what before_jump
// stored for this frame (nullptr on a greenlet's first entry); `from` learns
// the bounds of the stack just left (how the main greenlet's become known).
inline void after_jump([[maybe_unused]] void* fake_save, [[maybe_unused]] fiber_marks& from) noexcept {
#if GROVE_ASAN
  __sanitizer_finish_switch_fiber(fake_save, &from.bottom, &from.size);
#endif
}

// mark_new_stack records a freshly allocated stack for the sanitizers.
inline void mark_new_stack([[maybe_unused]] fiber_marks& m, [[maybe_unused]] void* bottom,
                           [[maybe_unused]] std::size_t size) noexcept {
#if GROVE_ASAN
  m.bottom = bottom;
  m.size = size;
#endif
#if GROVE_TSAN
  m.tsan = __tsan_create_fiber(0);
#endif
}

// mark_current records the running thread's own stack (a main greenlet).
inline void mark_current([[maybe_unused]] fiber_marks& m) noexcept {
#if GROVE_TSAN
  m.tsan = __tsan_get_current_fiber();
#endif
}

// forget_stack drops what mark_new_stack made, once the greenlet is finished
// and no longer running.
inline void forget_stack([[maybe_unused]] fiber_marks& m) noexcept {
#if GROVE_TSAN
  if (m.tsan != nullptr) __tsan_destroy_fiber(m.tsan);
  m.tsan = nullptr;
#endif
}

}  // namespace grove::detail
