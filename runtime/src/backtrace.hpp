// backtrace.hpp — symbolized backtraces of code that is not running: a
// suspended greenlet (from the context Boost saved when it switched away) or
// another thread stopped in a signal handler (from its ucontext). Unwinding and
// symbolizing are elfutils' libdw (libdwfl): it unwinds from a register set we
// hand it, reads the stack through a callback, and names each frame with its
// function and, where there is debug information, file and line. libdw is
// opened (dlopen) on the first backtrace, never linked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>

namespace grove::detail {

struct greenlet_core;

// saved_registers: what an x86-64 unwind starts from (the callee-saved
// registers, the stack pointer and the resume address).
struct saved_registers {
  std::uintptr_t pc = 0;
  std::uintptr_t sp = 0;
  std::uintptr_t rbp = 0, rbx = 0, r12 = 0, r13 = 0, r14 = 0, r15 = 0;
  bool pc_is_return_address = true;  // pc follows a call (a suspended greenlet); false for a signal's ucontext
  // A copy of the stack from sp up, taken while the thread was stopped (the
  // monitor's sample): the unwinder reads this range from it, since the thread
  // has gone on since. Empty for a suspended greenlet, whose stack holds still.
  const unsigned char* stack_copy = nullptr;
  std::size_t stack_copy_size = 0;
};

// suspended_registers reads g's registers from its saved context. g must be
// suspended (not running, started, not dead). False if it has no context.
bool suspended_registers(const greenlet_core* g, saved_registers& out) noexcept;

// write_backtrace writes one line per frame ("<indent>#N function at file:line"),
// at most max_frames of them. Never throws; a failure is one line saying why.
void write_backtrace(std::ostream& out, const saved_registers& regs, const char* indent, int max_frames = 32) noexcept;

}  // namespace grove::detail
