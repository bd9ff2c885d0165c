// overflow.cpp — a stack overflow into a guard page ends the process with a
// message naming the greenlet and its stack size, not a bare segfault.
//
// The SIGSEGV handler runs on an alternate signal stack (the faulting stack is
// exhausted), checks whether the fault address lies in the current greenlet's
// guard page, and if so writes the message with write(2) only (nothing here may
// allocate), restores the default action and returns: the faulting instruction
// runs again and the process dies of SIGSEGV as it would have. Any other fault
// is passed on to the handler that was installed before grove's (ASan's, say).
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <mutex>

#include "greenlet_impl.hpp"
#include "settings.hpp"

namespace grove::detail {
namespace {

constexpr std::size_t altstack_bytes = 64 * 1024;

struct sigaction previous_segv;
std::once_flag handler_once;

class message {
 public:
  message& text(const char* s) {
    while (*s != '\0' && len_ < sizeof buf_) buf_[len_++] = *s++;
    return *this;
  }
  message& text(const char* s, std::size_t n) {
    for (std::size_t i = 0; i < n && len_ < sizeof buf_; ++i) buf_[len_++] = s[i];
    return *this;
  }
  message& number(std::uintptr_t v, unsigned base) {
    char digits[32];
    std::size_t n = 0;
    do {
      digits[n++] = "0123456789abcdef"[v % base];
      v /= base;
    } while (v != 0 && n < sizeof digits);
    if (base == 16) text("0x");
    while (n > 0 && len_ < sizeof buf_) buf_[len_++] = digits[--n];
    return *this;
  }
  void write_to_stderr() const {
    const char* p = buf_;
    std::size_t left = len_;
    while (left > 0) {
      // The system call itself: under the hooks, write to a stderr that is a
      // regular file could park the task, and this runs in a SIGSEGV handler.
      const ssize_t w = ::syscall(SYS_write, STDERR_FILENO, p, left);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return;
      p += w;
      left -= static_cast<std::size_t>(w);
    }
  }

 private:
  char buf_[512];
  std::size_t len_ = 0;
};

void restore_default_action() {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(SIGSEGV, &dfl, nullptr);
}

bool in_guard_page(const greenlet_impl* g, const void* addr) {
  if (g == nullptr || g->is_main || g->stack.base == nullptr || g->stack.mode != stack_mode::guarded) return false;
  const auto a = reinterpret_cast<std::uintptr_t>(addr);
  const auto base = reinterpret_cast<std::uintptr_t>(g->stack.base);
  return a < base && a >= base - page_size();
}

void on_segv(int sig, siginfo_t* info, void* context) {
  const int saved_errno = errno;
  thread_state* ts = current_state_if_any();
  if (ts != nullptr && in_guard_page(ts->current_impl(), info->si_addr)) {
    const greenlet_impl* g = ts->current_impl();
    message m;
    m.text("grove: stack overflow in greenlet ");
    if (!g->label().empty()) {
      m.text("\"").text(g->label().data(), g->label().size()).text("\"");
    } else {
      m.number(reinterpret_cast<std::uintptr_t>(g), 16).text(" (unnamed)");
    }
    m.text(": it ran past the guard page below its stack of ")
        .number(g->stack.size, 10)
        .text(" bytes. Give it a larger stack (the stack_bytes argument, or GROVE_STACK_SIZE).\n");
    m.write_to_stderr();
    restore_default_action();  // the faulting access repeats and the process dies of SIGSEGV
    errno = saved_errno;
    return;
  }
  errno = saved_errno;
  if ((previous_segv.sa_flags & SA_SIGINFO) != 0 && previous_segv.sa_sigaction != nullptr) {
    previous_segv.sa_sigaction(sig, info, context);
  } else if (previous_segv.sa_handler != SIG_DFL && previous_segv.sa_handler != SIG_IGN) {
    previous_segv.sa_handler(sig);
  } else {
    restore_default_action();
  }
}

}  // namespace

void install_overflow_handler(thread_state& ts) {
  stack_t current{};
  if (::sigaltstack(nullptr, &current) == 0 && (current.ss_flags & SS_DISABLE) != 0) {
    void* p = ::mmap(nullptr, altstack_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) {
      stack_t ss{};
      ss.ss_sp = p;
      ss.ss_size = altstack_bytes;
      if (::sigaltstack(&ss, nullptr) == 0) {
        ts.altstack = p;
      } else {
        ::munmap(p, altstack_bytes);
      }
    }
  }
  std::call_once(handler_once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGSEGV, &sa, &previous_segv);
  });
}

void remove_overflow_handler(thread_state& ts) noexcept {
  if (ts.altstack == nullptr) return;
  stack_t ss{};
  ss.ss_flags = SS_DISABLE;
  ::sigaltstack(&ss, nullptr);
  ::munmap(ts.altstack, altstack_bytes);
  ts.altstack = nullptr;
}

}  // namespace grove::detail
