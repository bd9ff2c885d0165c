// backtrace.cpp — see backtrace.hpp.
#include "backtrace.hpp"

#include <cxxabi.h>
#include <dlfcn.h>
#include <elfutils/libdwfl.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <ostream>
#include <string>

#include <grove/detail/switch.hpp>

namespace grove::detail {
namespace {

// libdw is opened on the first backtrace, not linked: a program (and every
// process grove-run preloads into) pays for it and its five libraries only
// when it asks for a backtrace. The functions used, by their declarations.
struct libdw_api {
#define GROVE_LIBDW(X)                                                                                     \
  X(dwfl_begin) X(dwfl_end) X(dwfl_errmsg) X(dwfl_linux_proc_report) X(dwfl_report_end) X(dwfl_attach_state) \
  X(dwfl_getthread_frames) X(dwfl_thread_state_registers) X(dwfl_thread_state_register_pc) X(dwfl_frame_pc)  \
  X(dwfl_addrmodule) X(dwfl_module_addrname) X(dwfl_module_getsrc) X(dwfl_lineinfo) X(dwfl_module_info)      \
  X(dwfl_linux_proc_find_elf) X(dwfl_build_id_find_debuginfo)
#define GROVE_LIBDW_MEMBER(name) decltype(::name)* name = nullptr;
  GROVE_LIBDW(GROVE_LIBDW_MEMBER)
#undef GROVE_LIBDW_MEMBER
  const char* missing = nullptr;  // why there is none, or nullptr

  libdw_api() {
    void* lib = ::dlopen("libdw.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      missing = "cannot open libdw.so.1 (Debian's libdw1)";
      return;
    }
#define GROVE_LIBDW_LOOKUP(name)                                        \
  name = reinterpret_cast<decltype(::name)*>(::dlsym(lib, #name)); \
  if (name == nullptr) missing = "libdw.so.1 lacks " #name;
    GROVE_LIBDW(GROVE_LIBDW_LOOKUP)
#undef GROVE_LIBDW_LOOKUP
  }
};
#undef GROVE_LIBDW

// exit and an unwind in progress: a watchdog's report may be unwinding on its
// own thread when the program's main returns, and under grove-run no hub is
// taken down at exit to stop it first. exit waits for it (up to 5 s) before
// the libraries' destructors run (libdw's and what it opened), and no unwind
// starts after, but on the exiting thread itself.
std::atomic<int> unwinding{0};
std::atomic<bool> exiting{false};
std::atomic<pthread_t> exiting_thread{};

void wait_for_unwinding() noexcept {
  exiting_thread.store(::pthread_self());
  exiting.store(true);
  for (int waited_ms = 0; unwinding.load() != 0 && waited_ms < 5000; ++waited_ms) {
    timespec ms{0, 1000000};
    ::syscall(SYS_nanosleep, &ms, nullptr);  // the OS thread's, not a green sleep: the process is ending
  }
}

const libdw_api& libdw() {
  static const libdw_api api = [] {
    std::atexit(wait_for_unwinding);
    return libdw_api();
  }();
  return api;
}

// unwind_turn holds off exit's wait_for_unwinding while it lives; `refused`
// when the process already exits on another thread.
struct unwind_turn {
  bool refused = false;
  unwind_turn() noexcept {
    unwinding.fetch_add(1);
    refused = exiting.load() && !::pthread_equal(exiting_thread.load(), ::pthread_self());
  }
  ~unwind_turn() { unwinding.fetch_sub(1); }
  unwind_turn(const unwind_turn&) = delete;
  unwind_turn& operator=(const unwind_turn&) = delete;
};

// Boost.Context's x86-64 System V jump_fcontext saves, below the resume
// address, (from the low end) mxcsr/x87 control word, r12, r13, r14, r15, rbx,
// rbp, and then the address to resume at; a fiber holds a pointer to that
// block (its one member). Resuming pops all of it: the stack pointer is then
// the block's address + 0x40.
struct fcontext_block {
  std::uint64_t fpu_control;
  std::uint64_t r12, r13, r14, r15, rbx, rbp, pc;
};
static_assert(sizeof(boost::context::fiber) == sizeof(void*), "boost::context::fiber is one fcontext pointer");

// The stack is read with process_vm_readv, which fails cleanly on an address
// that is not mapped: a bad frame ends the backtrace rather than the process.
bool read_word(Dwfl*, Dwarf_Addr addr, Dwarf_Word* result, void* arg) {
  const auto& r = *static_cast<const saved_registers*>(arg);
  if (addr >= r.sp && addr - r.sp + sizeof *result <= r.stack_copy_size) {
    std::memcpy(result, r.stack_copy + (addr - r.sp), sizeof *result);
    return true;
  }
  iovec local{result, sizeof *result};
  iovec remote{reinterpret_cast<void*>(addr), sizeof *result};
  return ::process_vm_readv(::getpid(), &local, 1, &remote, 1, 0) == static_cast<ssize_t>(sizeof *result);
}

// One pretend thread (tid 1) whose registers are *arg.
pid_t one_thread(Dwfl*, void* arg, void** thread_arg) {
  if (*thread_arg != nullptr) return 0;
  *thread_arg = arg;
  return 1;
}

bool initial_registers(Dwfl_Thread* thread, void* arg) {
  const auto& r = *static_cast<const saved_registers*>(arg);
  // DWARF numbering on x86-64: 3 rbx, 6 rbp, 7 rsp, 12-15 r12-r15.
  const Dwarf_Word rbx = r.rbx;
  const Dwarf_Word rbp_rsp[] = {r.rbp, r.sp};
  const Dwarf_Word r12_15[] = {r.r12, r.r13, r.r14, r.r15};
  const libdw_api& dw = libdw();
  if (!dw.dwfl_thread_state_registers(thread, 3, 1, &rbx) || !dw.dwfl_thread_state_registers(thread, 6, 2, rbp_rsp) ||
      !dw.dwfl_thread_state_registers(thread, 12, 4, r12_15)) {
    return false;
  }
  dw.dwfl_thread_state_register_pc(thread, r.pc);
  return true;
}

const Dwfl_Thread_Callbacks thread_callbacks = {one_thread, nullptr, read_word, initial_registers, nullptr, nullptr};

char* no_debuginfo_path = nullptr;

struct walk {
  std::ostream* out;
  Dwfl* dwfl;
  const char* indent;
  int max_frames;
  int n = 0;
  bool first_is_return_address;
};

std::string demangled(const char* name) {
  int status = 0;
  char* d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  if (d == nullptr) return name;
  std::string s(d);
  std::free(d);
  return s;
}

int on_frame(Dwfl_Frame* frame, void* arg) {
  auto& w = *static_cast<walk*>(arg);
  const libdw_api& dw = libdw();
  Dwarf_Addr pc = 0;
  bool activation = false;
  if (!dw.dwfl_frame_pc(frame, &pc, &activation)) return DWARF_CB_ABORT;
  // A return address names the call before it: look up pc - 1.
  if (w.n == 0 ? w.first_is_return_address : !activation) --pc;
  std::ostream& out = *w.out;
  out << w.indent << '#' << w.n << ' ';
  Dwfl_Module* mod = dw.dwfl_addrmodule(w.dwfl, pc);
  const char* name = mod != nullptr ? dw.dwfl_module_addrname(mod, pc) : nullptr;
  if (name != nullptr) {
    out << demangled(name);
  } else {
    out << "0x" << std::hex << pc << std::dec;
  }
  int line = 0;
  const char* file = nullptr;
  if (Dwfl_Line* l = mod != nullptr ? dw.dwfl_module_getsrc(mod, pc) : nullptr; l != nullptr) {
    file = dw.dwfl_lineinfo(l, nullptr, &line, nullptr, nullptr, nullptr);
  }
  if (file != nullptr) {
    out << " at " << file << ':' << line;
  } else if (mod != nullptr) {
    const char* mod_name = dw.dwfl_module_info(mod, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
    if (mod_name != nullptr) out << " in " << mod_name;
  }
  out << '\n';
  // A greenlet's stack begins in Boost's make_fcontext trampoline: nothing lies below.
  if (name != nullptr && std::strcmp(name, "make_fcontext") == 0) return DWARF_CB_ABORT;
  return ++w.n < w.max_frames ? DWARF_CB_OK : DWARF_CB_ABORT;
}

}  // namespace

bool suspended_registers(const greenlet_core* g, saved_registers& out) noexcept {
  if (!g->ctx) return false;
  void* block = nullptr;
  std::memcpy(&block, static_cast<const void*>(&g->ctx), sizeof block);
  const auto* b = static_cast<const fcontext_block*>(block);
  out.pc = b->pc;
  out.sp = reinterpret_cast<std::uintptr_t>(b) + sizeof(fcontext_block);
  out.rbp = b->rbp;
  out.rbx = b->rbx;
  out.r12 = b->r12;
  out.r13 = b->r13;
  out.r14 = b->r14;
  out.r15 = b->r15;
  out.pc_is_return_address = true;
  return true;
}

void write_backtrace(std::ostream& out, const saved_registers& regs, const char* indent, int max_frames) noexcept {
  try {
    const unwind_turn turn;
    if (turn.refused) {
      out << indent << "(no backtrace: the process is exiting)\n";
      return;
    }
    const libdw_api& dw = libdw();
    if (dw.missing != nullptr) {
      out << indent << "(no backtrace: " << dw.missing << ")\n";
      return;
    }
    // Debug information is looked for on this machine only, by build id
    // (Debian's -dbgsym packages, /usr/lib/debug/.build-id) and in the file
    // itself: libdw's standard lookup would also ask debuginfod servers, which
    // loads libcurl and its TLS libraries into the program from the watchdog's
    // thread and may wait on the network.
    static const Dwfl_Callbacks process_callbacks = {dw.dwfl_linux_proc_find_elf, dw.dwfl_build_id_find_debuginfo,
                                                     nullptr, &no_debuginfo_path};
    Dwfl* dwfl = dw.dwfl_begin(&process_callbacks);
    if (dwfl == nullptr) {
      out << indent << "(no backtrace: " << dw.dwfl_errmsg(-1) << ")\n";
      return;
    }
    saved_registers r = regs;
    walk w{&out, dwfl, indent, max_frames, 0, regs.pc_is_return_address};
    if (dw.dwfl_linux_proc_report(dwfl, ::getpid()) != 0 || dw.dwfl_report_end(dwfl, nullptr, nullptr) != 0 ||
        !dw.dwfl_attach_state(dwfl, nullptr, ::getpid(), &thread_callbacks, &r)) {
      out << indent << "(no backtrace: " << dw.dwfl_errmsg(-1) << ")\n";
    } else if (dw.dwfl_getthread_frames(dwfl, 1, on_frame, &w) == -1 && w.n == 0) {
      out << indent << "(no backtrace: " << dw.dwfl_errmsg(-1) << ")\n";
    }
    dw.dwfl_end(dwfl);
  } catch (...) {
    // out threw (a full disk, a closed pipe): the backtrace is lost, not the program
  }
}

}  // namespace grove::detail
