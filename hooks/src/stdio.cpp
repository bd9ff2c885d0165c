// stdio.cpp — stdio streams on sockets, pipes, FIFOs, ttys and files in tasks.
//
// glibc's stdio reads and writes through its internal __read/__write, which no
// interposer sees, so a FILE on a blocking socket would block the OS thread.
// These hooks keep glibc's FILE (its buffer, flags and lock) and let glibc do
// everything that cannot block; the few steps that touch the descriptor are
// done here instead, one at a time:
//   reading   a refill is glibc's own __underflow (one read into the FILE's
//             buffer), called only once the descriptor is readable (a
//             zero-timeout poll, else a wait on the hub). A call that needs
//             several refills (fgets of a line that arrives in pieces, fread,
//             getline) takes what is buffered, then refills, as glibc's code
//             does, so it never enters a read that blocks.
//   writing   a flush is glibc's new_do_write done here: the pending bytes go
//             out through the hooked write (MSG_DONTWAIT tries on sockets,
//             PIPE_BUF pieces on pipes), then the buffer is emptied as glibc
//             empties it. Large writes that glibc sends past the buffer go the
//             same way. The decisions of when to flush (full, line-buffered
//             '\n', unbuffered) follow glibc's _IO_new_file_xsputn,
//             _IO_default_xsputn and _IO_new_file_overflow step by step.
//   printf    formats into memory first (vsnprintf, or the __vsnprintf_chk
//             of a fortified call), then writes that as fwrite would.
//   scanf     runs glibc's own vfscanf on a private, unbuffered fopencookie
//             stream whose reads take bytes from the FILE's buffer and refill
//             it cooperatively; what scanf read ahead and pushed back is given
//             back to the FILE. So any format waits on the hub, however much
//             input it needs, with glibc's parsing.
//   files     a stream on a regular file or block device reads as above, but
//             its refill reads through the hooked read (grove::file: one
//             RWF_NOWAIT read where the page cache has the bytes, else off the
//             hub with the task parked), setting the buffer's pointers as
//             glibc's _IO_new_file_underflow does. A stream glibc refills in a
//             way of its own (pushback or markers, line-buffered or
//             unbuffered, fopen's mmap mode) gets glibc's __underflow, once
//             the page cache holds the buffer's worth it will read
//             (grove::detail::warm_file_range). A large fread reads whole
//             blocks through the hooked read, as glibc reads them straight
//             into the caller's buffer. Writes stay glibc's: a buffered write
//             to a file is a copy into the page cache, made on the hub anyway.
// A call whose buffer already holds what it needs (a line for fgets, room for
// fputs) is glibc's own call, after a look at the buffer pointers.
//
// Straight to glibc: calls outside a task; streams with no descriptor
// (fmemopen, open_memstream, fopencookie); wide-oriented streams; sockets,
// pipes and ttys that the program made non-blocking; writes to files; fseek,
// which may read a block (it is rare, and reads where the stream was).
//
// Green threads share an OS thread, and glibc's FILE lock is recursive per OS
// thread, so it does not keep them apart. A call here that may wait (a refill,
// a flush) first takes the stream's *turn*, a cooperative per-FILE lock held to
// the end of the call; another green thread's call that needs a refill or a
// flush of that FILE waits for the turn. Calls that need neither (the buffer
// has the data, or room) do not take it, and they cannot run inside a call
// that waits: while a reader waits its buffer is empty, and while a flush waits
// the buffer shows no room (write_end is held at write_ptr), so every such call
// comes here for the turn. glibc's lock is also held for the whole call, as
// glibc holds it, so an OS thread using the same FILE waits for it.
#undef _FORTIFY_SOURCE  // our own definitions must not meet glibc's fortify wrappers
#ifndef __NO_INLINE__
#define __NO_INLINE__ 1  // nor glibc's inline getchar, putc_unlocked... (<bits/stdio.h>), which clang rejects
#endif

#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <chrono>
#include <exception>
#include <optional>

#include <grove/detail/file_cache.hpp>
#include <grove/io.hpp>
#include <grove/sleep.hpp>

#include "context.hpp"
#include "fd_table.hpp"
#include "libc.hpp"
#include "parking.hpp"
#include "processes.hpp"
#include "signals.hpp"
#include "spread.hpp"
#include "threads.hpp"

extern "C" {
// glibc's, not declared by its headers (or only under _FORTIFY_SOURCE).
int __underflow(FILE*);
void _IO_doallocbuf(FILE*);
[[noreturn]] void __chk_fail(void);
int __vsnprintf_chk(char*, size_t, int, size_t, const char*, va_list);
int __vasprintf_chk(char**, int, const char*, va_list);
}

namespace grove::hooks {
namespace {

// glibc's FILE as it allocates it: the vtable pointer follows (struct
// _IO_FILE_plus, ABI since 2.1). Its stdin starts with the plain file vtable.
struct file_plus {
  FILE file;
  const void* vtable;
};
extern "C" file_plus glibc_stdin __asm__("_IO_2_1_stdin_");

// glibc's FILE flag bits (libio/libio.h; part of its ABI since glibc 2.1,
// and read by the inline getc/putc macros programs are compiled with).
constexpr int unbuffered_flag = 0x0002;
constexpr int no_reads_flag = 0x0004;
constexpr int no_writes_flag = 0x0008;
constexpr int eof_flag = _IO_EOF_SEEN;
constexpr int error_flag = _IO_ERR_SEEN;
constexpr int linked_flag = 0x0080;
constexpr int in_backup_flag = 0x0100;
constexpr int line_buffered_flag = 0x0200;
constexpr int putting_flag = 0x0800;
constexpr int appending_flag = 0x1000;

// ---------------------------------------------------------------------------
// The turn: a cooperative lock per FILE, taken by calls that may wait.

// holder records the caller that holds a FILE's turn, on its own stack.
struct holder {
  const FILE* fp = nullptr;
  std::uintptr_t owner = 0;
  holder* next = nullptr;
};

struct alignas(64) turn_bucket {
  std::atomic<bool> locked{false};
  holder* head = nullptr;

  void lock() noexcept {
    while (locked.exchange(true, std::memory_order_acquire)) {
      // Held by another OS thread for a few instructions (never across a switch).
      while (locked.load(std::memory_order_relaxed)) __builtin_ia32_pause();
    }
  }
  void unlock() noexcept { locked.store(false, std::memory_order_release); }
  holder* find(const FILE* fp) const noexcept {
    for (holder* h = head; h != nullptr; h = h->next)
      if (h->fp == fp) return h;
    return nullptr;
  }
};

constexpr std::size_t turn_buckets = 256;
turn_bucket turns[turn_buckets];

turn_bucket& bucket_of(const FILE* fp) noexcept {
  const auto a = reinterpret_cast<std::uintptr_t>(fp);
  return turns[((a >> 4) * 0x9E3779B97F4A7C15ull) >> 56];  // 64 - log2(turn_buckets)
}

// stream_turn holds fp's turn for its lifetime: it waits (cooperatively, in the
// parking lot keyed by the FILE's address) while another caller holds it. A
// caller that already holds the turn (a nested step of its own call) just
// goes on. Interruptions of the waiting task (kill, cancellation) propagate.
class stream_turn {
 public:
  explicit stream_turn(FILE* fp) : fp_(fp) {
    turn_bucket& b = bucket_of(fp);
    self_.fp = fp;
    self_.owner = owner_id();
    for (;;) {
      b.lock();
      const holder* h = b.find(fp);
      if (h == nullptr) {
        self_.next = b.head;
        b.head = &self_;
        b.unlock();
        held_ = true;
        return;
      }
      const bool mine = h->owner == self_.owner;
      b.unlock();
      if (mine) return;
      parking::park(
          fp,
          [&] {
            b.lock();
            const bool busy = b.find(fp) != nullptr;
            b.unlock();
            return busy;
          },
          limit::never());
    }
  }
  stream_turn(const stream_turn&) = delete;
  stream_turn& operator=(const stream_turn&) = delete;
  ~stream_turn() {
    if (!held_) return;
    turn_bucket& b = bucket_of(fp_);
    b.lock();
    for (holder** p = &b.head; *p != nullptr; p = &(*p)->next) {
      if (*p == &self_) {
        *p = self_.next;
        break;
      }
    }
    b.unlock();
    parking::unpark_one(fp_);
  }

 private:
  FILE* fp_;
  holder self_;
  bool held_ = false;
};

// file_lock holds glibc's own lock of fp (recursive per OS thread), as the
// locking stdio calls do; `take` false for the _unlocked ones.
//
// With one hub every green thread shares its OS thread's ownership of that
// lock, and the turn orders them. With several hubs a green thread that holds
// it across a wait (an fgets waiting for its line) would block the OS thread
// of any other hub that asks for it, and with it that hub's green threads. So
// there a green caller takes fp's turn first (green threads of every hub wait
// for it parked), then glibc's lock without blocking: what can still hold it
// is an OS thread, for the length of its own call; the caller sleeps in short
// steps meanwhile, its hub running on.
class file_lock {
 public:
  file_lock(FILE* fp, bool take) : fp_(take ? fp : nullptr) {
    if (fp_ == nullptr) return;
    if (!spread::several() || !cooperative()) {
      ::flockfile(fp_);
      return;
    }
    turn_.emplace(fp_);
    while (::ftrylockfile(fp_) != 0) grove::sleep(std::chrono::microseconds(100));
  }
  file_lock(const file_lock&) = delete;
  file_lock& operator=(const file_lock&) = delete;
  ~file_lock() {
    if (fp_ != nullptr) ::funlockfile(fp_);
  }

 private:
  FILE* fp_;
  std::optional<stream_turn> turn_;  // several hubs: taken before the lock, let go after it
};

// ---------------------------------------------------------------------------
// Which streams are ours.

// waitable tells whether fp's descriptor is one a blocking call waits on (a
// blocking socket, pipe, FIFO or tty) and fp a byte stream, filling info.
bool waitable(FILE* fp, fd_info& info) noexcept {
  if (fp == nullptr || fp->_fileno < 0 || fp->_mode > 0) return false;
  info = fd_info_of(fp->_fileno);
  return (info.kind == fd_kind::socket || info.kind == fd_kind::pollable) && !info.nonblocking;
}

// fillable tells whether fp's reads are made here, filling info: a waitable
// stream's, and a byte stream's on a regular file or block device (whose
// refills are made once the page cache holds what glibc will read, and whose
// large reads go through the hooked read).
bool fillable(FILE* fp, fd_info& info) noexcept {
  if (waitable(fp, info)) return true;
  return fp != nullptr && fp->_fileno >= 0 && fp->_mode <= 0 && info.kind == fd_kind::file;
}

limit recv_limit(const fd_info& info) {
  return info.kind == fd_kind::socket && info.recv_timeout.count() > 0 ? limit::after(info.recv_timeout)
                                                                      : limit::never();
}

// byte_oriented does what glibc's _IO_fwide(fp, -1) does to an unoriented stream.
void byte_oriented(FILE* fp) noexcept {
  if (fp->_mode == 0) fp->_mode = -1;
}

std::size_t buffered(const FILE* fp) noexcept {
  return fp->_IO_read_ptr < fp->_IO_read_end ? static_cast<std::size_t>(fp->_IO_read_end - fp->_IO_read_ptr) : 0;
}

// ---------------------------------------------------------------------------
// Writing: glibc's flush, done through the hooked write.

// write_out is glibc's new_do_write: it writes data (the FILE's pending bytes
// or a caller's large block) through the hooked write, then marks the buffer
// empty. Returns how many bytes went; on an error the error flag is set and
// errno says why, as glibc's _IO_new_file_write leaves them.
std::size_t write_out(FILE* fp, const char* data, std::size_t to_do) {
  if ((fp->_flags & appending_flag) != 0) {
    fp->_offset = -1;
  } else if (fp->_IO_read_end != fp->_IO_write_base) {
    // glibc seeks back over read-ahead first; on a pipe, socket or tty the
    // seek fails (ESPIPE) and glibc writes nothing: let it say so itself.
    return real___overflow()(fp, EOF) == EOF ? 0 : to_do;
  }
  // While the write waits, the buffer shows no room, so that another green
  // thread's put comes here and waits for the turn instead of adding bytes
  // that the reset below would drop.
  fp->_IO_write_end = fp->_IO_write_ptr;
  std::size_t left = to_do;
  while (left > 0) {
    const ssize_t n = ::write(fp->_fileno, data, left);
    if (n <= 0) {
      fp->_flags |= error_flag;
      break;
    }
    left -= static_cast<std::size_t>(n);
    data += n;
  }
  const std::size_t count = to_do - left;
  if (fp->_offset >= 0) fp->_offset += static_cast<off64_t>(count);
  fp->_IO_read_base = fp->_IO_read_ptr = fp->_IO_read_end = fp->_IO_buf_base;
  fp->_IO_write_base = fp->_IO_write_ptr = fp->_IO_buf_base;
  fp->_IO_write_end =
      fp->_mode <= 0 && (fp->_flags & (line_buffered_flag | unbuffered_flag)) != 0 ? fp->_IO_buf_base : fp->_IO_buf_end;
  return count;
}

// drain writes fp's pending output (glibc's _IO_do_write of the buffer):
// 0, or EOF when not all of it went.
int drain(FILE* fp) {
  const std::size_t pending = static_cast<std::size_t>(fp->_IO_write_ptr - fp->_IO_write_base);
  if (fp->_IO_write_base == nullptr || pending == 0) return 0;
  return write_out(fp, fp->_IO_write_base, pending) == pending ? 0 : EOF;
}

bool in_put_mode(const FILE* fp) noexcept {
  return (fp->_flags & putting_flag) != 0 && fp->_IO_write_base != nullptr;
}

// put_mode puts fp in put mode as glibc's overflow does before it writes
// (allocating the buffer; nothing is pending then, so nothing is written).
// False: the stream is not writable (glibc set the error flag and EBADF).
bool put_mode(FILE* fp) {
  if (in_put_mode(fp)) return true;
  return real___overflow()(fp, EOF) != EOF;
}

// overflow_eof is glibc's _IO_new_file_overflow(fp, EOF): put mode, then a
// flush of what is pending. 0, or EOF.
int overflow_eof(FILE* fp) {
  if (!in_put_mode(fp)) return real___overflow()(fp, EOF);  // nothing is pending: no write
  return drain(fp);
}

// overflow_char is glibc's _IO_new_file_overflow(fp, ch) for a character.
int overflow_char(FILE* fp, int ch) {
  if ((fp->_flags & no_writes_flag) != 0 || !put_mode(fp)) return real___overflow()(fp, ch);  // its EBADF
  if (fp->_IO_write_ptr == fp->_IO_buf_end && drain(fp) == EOF) return EOF;
  *fp->_IO_write_ptr++ = static_cast<char>(ch);
  if ((fp->_flags & unbuffered_flag) != 0 || ((fp->_flags & line_buffered_flag) != 0 && ch == '\n')) {
    if (drain(fp) == EOF) return EOF;
  }
  return static_cast<unsigned char>(ch);
}

// put_char is glibc's _IO_putc_unlocked.
int put_char(FILE* fp, int ch) {
  if (fp->_IO_write_ptr < fp->_IO_write_end) {
    *fp->_IO_write_ptr++ = static_cast<char>(ch);
    return static_cast<unsigned char>(ch);
  }
  return overflow_char(fp, static_cast<unsigned char>(ch));
}

// put_chars is glibc's _IO_default_xsputn.
std::size_t put_chars(FILE* fp, const char* s, std::size_t n) {
  std::size_t more = n;
  while (more > 0) {
    if (fp->_IO_write_ptr < fp->_IO_write_end) {
      std::size_t count = static_cast<std::size_t>(fp->_IO_write_end - fp->_IO_write_ptr);
      if (count > more) count = more;
      ::memcpy(fp->_IO_write_ptr, s, count);
      fp->_IO_write_ptr += count;
      s += count;
      more -= count;
    }
    if (more == 0 || overflow_char(fp, static_cast<unsigned char>(*s++)) == EOF) break;
    --more;
  }
  return n - more;
}

constexpr std::size_t put_failed = static_cast<std::size_t>(EOF);

// put is glibc's _IO_new_file_xsputn: n bytes into fp, flushing where glibc
// would. Returns the bytes taken, or put_failed when all were taken but the
// flush a '\n' asked for failed (glibc's EOF). The caller holds the turn.
std::size_t put(FILE* fp, const char* s, std::size_t n) {
  if (n == 0) return 0;
  std::size_t to_do = n;
  std::size_t count = 0;
  bool must_flush = false;
  if ((fp->_flags & (line_buffered_flag | putting_flag)) == (line_buffered_flag | putting_flag)) {
    count = static_cast<std::size_t>(fp->_IO_buf_end - fp->_IO_write_ptr);
    if (count >= n) {
      for (const char* p = s + n; p > s;) {
        if (*--p == '\n') {
          count = static_cast<std::size_t>(p - s + 1);
          must_flush = true;
          break;
        }
      }
    }
  } else if (fp->_IO_write_end > fp->_IO_write_ptr) {
    count = static_cast<std::size_t>(fp->_IO_write_end - fp->_IO_write_ptr);
  }
  if (count > 0) {
    if (count > to_do) count = to_do;
    ::memcpy(fp->_IO_write_ptr, s, count);
    fp->_IO_write_ptr += count;
    s += count;
    to_do -= count;
  }
  if (to_do + (must_flush ? 1 : 0) > 0) {
    if (overflow_eof(fp) == EOF) return to_do == 0 ? put_failed : n - to_do;
    const std::size_t block = static_cast<std::size_t>(fp->_IO_buf_end - fp->_IO_buf_base);
    const std::size_t direct = to_do - (block >= 128 ? to_do % block : 0);
    if (direct > 0) {
      const std::size_t went = write_out(fp, s, direct);
      to_do -= went;
      if (went < direct) return n - to_do;
    }
    if (to_do > 0) to_do -= put_chars(fp, s + direct, to_do);
  }
  return n - to_do;
}

// fits tells whether glibc would take n bytes into fp's buffer with no write.
bool fits(const FILE* fp, const char* s, std::size_t n) noexcept {
  if ((fp->_flags & (putting_flag | unbuffered_flag)) != putting_flag || fp->_IO_write_base == nullptr) return false;
  if ((fp->_flags & line_buffered_flag) != 0) {
    return static_cast<std::size_t>(fp->_IO_buf_end - fp->_IO_write_ptr) >= n && ::memchr(s, '\n', n) == nullptr;
  }
  return static_cast<std::size_t>(fp->_IO_write_end - fp->_IO_write_ptr) >= n;
}

// put_cooperatively writes n bytes to a waitable fp as _IO_sputn would,
// taking the turn only when the bytes do not simply fit.
std::size_t put_cooperatively(FILE* fp, const char* s, std::size_t n) {
  byte_oriented(fp);
  if (fits(fp, s, n)) {
    ::memcpy(fp->_IO_write_ptr, s, n);
    fp->_IO_write_ptr += n;
    return n;
  }
  const stream_turn turn(fp);
  return put(fp, s, n);
}

// ---------------------------------------------------------------------------
// Reading: glibc's refill, once the descriptor is readable.

// would_read tells whether glibc's __underflow would read the descriptor.
bool would_read(const FILE* fp) noexcept {
  if ((fp->_flags & (eof_flag | no_reads_flag)) != 0) return false;  // sticky EOF; EBADF
  if (fp->_IO_read_ptr < fp->_IO_read_end) return false;
  return (fp->_flags & in_backup_flag) == 0 || fp->_IO_save_base >= fp->_IO_save_end;
}

// flush_stdout_first does cooperatively the flush of a line-buffered stdout
// that glibc's underflow makes before reading a line-buffered or unbuffered
// stream, so that glibc finds nothing to write.
void flush_stdout_first(FILE* fp) {
  FILE* out = stdout;
  if (out == nullptr || out == fp) return;
  if ((out->_flags & (linked_flag | no_writes_flag | line_buffered_flag)) != (linked_flag | line_buffered_flag)) return;
  fd_info info;
  if (!in_put_mode(out) || out->_IO_write_ptr <= out->_IO_write_base || !waitable(out, info)) return;
  const file_lock locked(out, true);
  const stream_turn turn(out);
  (void)drain(out);  // glibc ignores the outcome too
}

// warm_refill makes the page cache hold what glibc's refill of fp (a stream
// on a file) will read: a buffer's worth from the descriptor's offset, read
// off the hub if it is not cached. The buffer is allocated first, as the
// refill would allocate it, to know its size.
void warm_refill(FILE* fp) {
  if (fp->_IO_buf_base == nullptr) ::_IO_doallocbuf(fp);
  const off64_t at = ::lseek64(fp->_fileno, 0, SEEK_CUR);
  if (at < 0 || fp->_IO_buf_base == nullptr) return;  // glibc's read reports what is wrong
  grove::detail::warm_file_range(fp->_fileno, at, static_cast<std::size_t>(fp->_IO_buf_end - fp->_IO_buf_base));
}

// plain_file_stream tells whether a refill of fp (a stream on a file whose
// buffer is empty) can be made here as glibc's _IO_new_file_underflow makes
// it: a buffered stream in get mode with its buffer allocated, no pushback or
// markers, and glibc's plain file vtable (the one its stdin starts with; not
// the mmap ones of fopen's "m" mode).
bool plain_file_stream(const FILE* fp) noexcept {
  constexpr int not_plain =
      putting_flag | line_buffered_flag | unbuffered_flag | in_backup_flag | eof_flag | no_reads_flag;
  return fp->_IO_buf_base != nullptr && (fp->_flags & not_plain) == 0 && fp->_IO_save_base == nullptr &&
         fp->_markers == nullptr && reinterpret_cast<const file_plus*>(fp)->vtable == glibc_stdin.vtable;
}

// refill_file is glibc's _IO_new_file_underflow for a plain_file_stream,
// reading through the hooked read (grove::file: one RWF_NOWAIT read where the
// page cache has the bytes, else the read off the hub with the task parked).
int refill_file(FILE* fp) {
  fp->_IO_read_base = fp->_IO_read_ptr = fp->_IO_read_end = fp->_IO_buf_base;
  fp->_IO_write_base = fp->_IO_write_ptr = fp->_IO_write_end = fp->_IO_buf_base;
  const ssize_t count =
      ::read(fp->_fileno, fp->_IO_buf_base, static_cast<std::size_t>(fp->_IO_buf_end - fp->_IO_buf_base));
  if (count <= 0) {
    fp->_flags |= count == 0 ? eof_flag : error_flag;
    fp->_offset = -1;  // glibc forgets the offset at the end of the stream
    return EOF;
  }
  fp->_IO_read_end += count;
  if (fp->_offset >= 0) fp->_offset += count;
  return static_cast<unsigned char>(*fp->_IO_read_ptr);
}

// fill makes fp's buffer hold unread bytes, as glibc's __underflow does (it
// returns the next byte without taking it, or EOF with the EOF or error flag
// set), waiting on the hub until the descriptor is readable (a file: until
// the page cache holds the bytes) first. The caller holds the turn and glibc's
// lock.
int fill(FILE* fp, const fd_info& info) {
  if (in_put_mode(fp) && fp->_IO_write_ptr > fp->_IO_write_base) {
    // __underflow's switch to get mode flushes first.
    if (drain(fp) == EOF) return EOF;
  }
  if (would_read(fp) && info.kind == fd_kind::file) {
    byte_oriented(fp);
    if (plain_file_stream(fp)) return refill_file(fp);
    if ((fp->_flags & (line_buffered_flag | unbuffered_flag)) != 0) flush_stdout_first(fp);  // as for the others
    warm_refill(fp);
  } else if (would_read(fp)) {
    if ((fp->_flags & (line_buffered_flag | unbuffered_flag)) != 0) flush_stdout_first(fp);
    const limit l = recv_limit(info);
    // signal(7): a read is restarted after an SA_RESTART handler, unless it
    // has a socket timeout.
    const on_handler mode = l.forever ? on_handler::restart : on_handler::fail;
    for (;;) {
      pollfd p{fp->_fileno, POLLIN, 0};
      if (real_poll()(&p, 1, 0) != 0) break;  // readable, hung up, or an error for the read to report
      switch (wait_fd(fp->_fileno, true, l, mode)) {
        case waited::ready:
          continue;  // look again: another caller may have taken the bytes
        case waited::timed_out:
          fp->_flags |= error_flag;  // what the read would do on SO_RCVTIMEO
          errno = EAGAIN;
          return EOF;
        case waited::failed:       // errno says why (EBADF: closed meanwhile)
        case waited::interrupted:  // EINTR, as the read would fail
          fp->_flags |= error_flag;
          return EOF;
      }
    }
  }
  return real___underflow()(fp);
}

// take_line is glibc's _IO_getline_info(fp, buf, n, delim, 1, nullptr): up to
// n bytes, through the first delim. The caller holds the turn.
std::size_t take_line(FILE* fp, const fd_info& info, char* buf, std::size_t n, int delim) {
  byte_oriented(fp);
  char* ptr = buf;
  while (n != 0) {
    std::size_t len = buffered(fp);
    if (len == 0) {
      if (fill(fp, info) == EOF) break;
      continue;
    }
    if (len > n) len = n;
    const auto* t = static_cast<const char*>(::memchr(fp->_IO_read_ptr, delim, len));
    if (t != nullptr) {
      const std::size_t k = static_cast<std::size_t>(t - fp->_IO_read_ptr) + 1;
      ::memcpy(ptr, fp->_IO_read_ptr, k);
      fp->_IO_read_ptr += k;
      return static_cast<std::size_t>(ptr - buf) + k;
    }
    ::memcpy(ptr, fp->_IO_read_ptr, len);
    fp->_IO_read_ptr += len;
    ptr += len;
    n -= len;
  }
  return static_cast<std::size_t>(ptr - buf);
}

// line_ready tells whether fgets could take its line from the buffer alone.
bool line_ready(const FILE* fp, std::size_t most) noexcept {
  const std::size_t have = buffered(fp);
  return have > 0 && (have >= most || ::memchr(fp->_IO_read_ptr, '\n', have) != nullptr);
}

// get_line is glibc's fgets (and __fgets_chk with size) for a waitable fp.
char* get_line(char* buf, int n, FILE* fp, const fd_info& info, std::size_t size, bool lock) {
  const file_lock locked(fp, lock);
  const stream_turn turn(fp);
  // Only a new error makes fgets fail (a non-blocking descriptor's old
  // EAGAIN does not), as in glibc.
  const int old_error = fp->_flags & error_flag;
  fp->_flags &= ~error_flag;
  const std::size_t most = static_cast<std::size_t>(n) - 1 < size ? static_cast<std::size_t>(n) - 1 : size;
  const std::size_t count = take_line(fp, info, buf, most, '\n');
  char* result;
  if (count == 0 || ((fp->_flags & error_flag) != 0 && errno != EAGAIN)) {
    result = nullptr;
  } else if (count >= size) {
    __chk_fail();
  } else {
    buf[count] = '\0';
    result = buf;
  }
  fp->_flags |= old_error;
  return result;
}

// get_bytes is glibc's _IO_file_xsgetn for a waitable fp: n bytes, or fewer
// at EOF or an error. The caller holds the turn.
std::size_t get_bytes(FILE* fp, const fd_info& info, char* s, std::size_t n) {
  std::size_t want = n;
  while (want > 0) {
    std::size_t have = buffered(fp);
    if (have > 0) {
      if (have > want) have = want;
      ::memcpy(s, fp->_IO_read_ptr, have);
      fp->_IO_read_ptr += have;
      s += have;
      want -= have;
      continue;
    }
    const std::size_t block = static_cast<std::size_t>(fp->_IO_buf_end - fp->_IO_buf_base);
    if (info.kind == fd_kind::file && fp->_IO_buf_base != nullptr && want >= block && would_read(fp) &&
        !(in_put_mode(fp) && fp->_IO_write_ptr > fp->_IO_write_base)) {
      // glibc reads whole blocks straight into the caller's buffer; here
      // through the hooked read, which waits for the disk off the hub.
      fp->_IO_read_base = fp->_IO_read_ptr = fp->_IO_read_end = fp->_IO_buf_base;
      fp->_IO_write_base = fp->_IO_write_ptr = fp->_IO_write_end = fp->_IO_buf_base;
      const std::size_t count = block >= 128 ? want - want % block : want;
      const ssize_t got = ::read(fp->_fileno, s, count);
      if (got <= 0) {
        fp->_flags |= got == 0 ? eof_flag : error_flag;
        break;
      }
      s += got;
      want -= static_cast<std::size_t>(got);
      if (fp->_offset >= 0) fp->_offset += got;
      continue;
    }
    if (fill(fp, info) == EOF) break;
  }
  return n - want;
}

std::size_t read_items(void* buf, std::size_t size, std::size_t count, FILE* fp, const fd_info& info, bool lock) {
  const std::size_t bytes = size * count;
  const file_lock locked(fp, lock);
  const stream_turn turn(fp);
  const std::size_t got = get_bytes(fp, info, static_cast<char*>(buf), bytes);
  return got == bytes ? count : got / size;
}

// get_delimited is glibc's getdelim for a waitable fp.
ssize_t get_delimited(char** lineptr, size_t* n, int delim, FILE* fp, const fd_info& info) {
  const file_lock locked(fp, true);
  const stream_turn turn(fp);
  if ((fp->_flags & error_flag) != 0) return -1;
  if (*lineptr == nullptr || *n == 0) {
    *n = 120;
    *lineptr = static_cast<char*>(::malloc(*n));
    if (*lineptr == nullptr) return -1;
  }
  std::size_t len = buffered(fp);
  if (len == 0) {
    if (fill(fp, info) == EOF) return -1;
    len = buffered(fp);
  }
  std::size_t cur = 0;
  for (;;) {
    const auto* t = static_cast<const char*>(::memchr(fp->_IO_read_ptr, delim, len));
    if (t != nullptr) len = static_cast<std::size_t>(t - fp->_IO_read_ptr) + 1;
    if (len >= static_cast<std::size_t>(SSIZE_MAX) - cur) {
      errno = EOVERFLOW;
      return -1;
    }
    std::size_t needed = cur + len + 1;
    if (needed > *n) {
      if (needed < 2 * *n) needed = 2 * *n;
      auto* grown = static_cast<char*>(::realloc(*lineptr, needed));
      if (grown == nullptr) return -1;
      *lineptr = grown;
      *n = needed;
    }
    ::memcpy(*lineptr + cur, fp->_IO_read_ptr, len);
    fp->_IO_read_ptr += len;
    cur += len;
    if (t != nullptr || fill(fp, info) == EOF) break;
    len = buffered(fp);
  }
  (*lineptr)[cur] = '\0';
  return static_cast<ssize_t>(cur);
}

// get_char is glibc's getc (take) or __underflow (peek) for a waitable fp
// whose buffer is empty.
int get_char(FILE* fp, const fd_info& info, bool lock, bool take) {
  const file_lock locked(fp, lock);
  const stream_turn turn(fp);
  const int c = fill(fp, info);
  if (c == EOF || !take) return c;
  return static_cast<unsigned char>(*fp->_IO_read_ptr++);
}

// ---------------------------------------------------------------------------
// scanf: glibc's vfscanf on a cookie stream that refills cooperatively.

struct scan_source {
  FILE* fp;
  const fd_info* info;
  std::exception_ptr interrupted;  // a kill or cancellation met while waiting
};

ssize_t scan_read(void* cookie, char* buf, size_t size) {
  auto* src = static_cast<scan_source*>(cookie);
  FILE* fp = src->fp;
  try {
    if (buffered(fp) == 0 && fill(src->fp, *src->info) == EOF) {
      return (fp->_flags & eof_flag) != 0 ? 0 : -1;
    }
  } catch (...) {
    // Never unwind through glibc's vfscanf: end its input, rethrow after.
    src->interrupted = std::current_exception();
    return -1;
  }
  std::size_t k = buffered(fp);
  if (k > size) k = size;
  ::memcpy(buf, fp->_IO_read_ptr, k);
  fp->_IO_read_ptr += k;
  return static_cast<ssize_t>(k);
}

// give_back returns to fp the bytes scanf read from it but did not use (its
// pushback, left in the cookie stream), newest first.
void give_back(FILE* fp, FILE* in) {
  char left[8];
  std::size_t count = 0;
  auto collect = [&](const char* from, const char* to) {
    for (; from < to && count < sizeof left; ++from) left[count++] = *from;
  };
  collect(in->_IO_read_ptr, in->_IO_read_end);
  if ((in->_flags & in_backup_flag) != 0) collect(in->_IO_save_base, in->_IO_save_end);
  while (count > 0) {
    const char c = left[--count];
    if (fp->_IO_read_ptr > fp->_IO_read_base && fp->_IO_read_ptr[-1] == c) {
      --fp->_IO_read_ptr;
    } else {
      ::ungetc(static_cast<unsigned char>(c), fp);
    }
  }
}

int scan(FILE* fp, const fd_info& info, const char* format, va_list ap, bool isoc99) {
  const file_lock locked(fp, true);
  const stream_turn turn(fp);
  byte_oriented(fp);
  scan_source src{fp, &info, nullptr};
  cookie_io_functions_t io{};
  io.read = scan_read;
  FILE* in = ::fopencookie(&src, "r", io);
  if (in == nullptr) return EOF;
  ::setvbuf(in, nullptr, _IONBF, 0);
  const int r = isoc99 ? real___isoc99_vfscanf()(in, format, ap) : real_vfscanf()(in, format, ap);
  const int saved = errno;
  give_back(fp, in);
  real_fclose()(in);
  if (src.interrupted) std::rethrow_exception(src.interrupted);
  errno = saved;
  return r;
}

int scan_or_pass(FILE* fp, const char* format, va_list ap, bool isoc99) {
  fd_info info;
  if (!cooperative() || !fillable(fp, info)) {
    return isoc99 ? real___isoc99_vfscanf()(fp, format, ap) : real_vfscanf()(fp, format, ap);
  }
  return scan(fp, info, format, ap, isoc99);
}

// ---------------------------------------------------------------------------
// printf: formatted in memory, then written as fwrite writes.

// formatted is printf's output made in memory (fortified when flag >= 0,
// glibc's __vfprintf_chk flag): in a buffer of its own, or on the heap when
// longer. size() is -1 when the format failed (EOVERFLOW, EILSEQ, ENOMEM).
class formatted {
 public:
  formatted(int flag, const char* format, va_list ap) {
    va_list again;
    va_copy(again, ap);
    len_ = flag >= 0 ? ::__vsnprintf_chk(small_, sizeof small_, flag, sizeof small_, format, ap)
                     : ::vsnprintf(small_, sizeof small_, format, ap);
    if (len_ >= 0 && static_cast<std::size_t>(len_) >= sizeof small_) {
      len_ = flag >= 0 ? ::__vasprintf_chk(&heap_, flag, format, again) : ::vasprintf(&heap_, format, again);
      if (len_ < 0) heap_ = nullptr;  // vasprintf leaves it undefined
    }
    va_end(again);
  }
  formatted(const formatted&) = delete;
  formatted& operator=(const formatted&) = delete;
  ~formatted() { ::free(heap_); }
  const char* data() const noexcept { return heap_ != nullptr ? heap_ : small_; }
  int size() const noexcept { return len_; }

 private:
  char small_[1024];
  char* heap_ = nullptr;
  int len_;
};

// print formats and writes the result to a waitable fp.
int print(FILE* fp, int flag, const char* format, va_list ap) {
  const formatted out(flag, format, ap);
  if (out.size() < 0) return -1;  // nothing is written
  const auto len = static_cast<std::size_t>(out.size());
  const file_lock locked(fp, true);
  return put_cooperatively(fp, out.data(), len) == len ? out.size() : -1;
}

int print_or_pass(FILE* fp, int flag, const char* format, va_list ap) {
  fd_info info;
  if (!cooperative() || !waitable(fp, info)) {
    return flag >= 0 ? real___vfprintf_chk()(fp, flag, format, ap) : real_vfprintf()(fp, format, ap);
  }
  return print(fp, flag, format, ap);
}

// dprint is glibc's vdprintf (fortified when flag >= 0) in a task: formatted
// in memory, then written whole through the hooked write, which waits on the
// hub for a socket, pipe or tty that would block. -1 when not all of it went.
int dprint(int fd, int flag, const char* format, va_list ap) {
  if (!cooperative()) return flag >= 0 ? real___vdprintf_chk()(fd, flag, format, ap) : real_vdprintf()(fd, format, ap);
  const formatted out(flag, format, ap);
  if (out.size() < 0) return -1;
  const char* data = out.data();
  auto left = static_cast<std::size_t>(out.size());
  while (left > 0) {
    const ssize_t n = ::write(fd, data, left);
    if (n <= 0) return -1;
    data += n;
    left -= static_cast<std::size_t>(n);
  }
  return out.size();
}

// ---------------------------------------------------------------------------
// The shared shapes of the simple calls.

template <class Real>
std::size_t write_items(const void* buf, std::size_t size, std::size_t count, FILE* fp, bool lock, Real real) {
  const std::size_t bytes = size * count;
  fd_info info;
  if (!cooperative() || bytes == 0 || fits(fp, static_cast<const char*>(buf), bytes) || !waitable(fp, info)) {
    return real(buf, size, count, fp);
  }
  const file_lock locked(fp, lock);
  const std::size_t written = put_cooperatively(fp, static_cast<const char*>(buf), bytes);
  return written == bytes || written == put_failed ? count : written / size;
}

template <class Real>
int write_string(const char* s, FILE* fp, bool lock, Real real) {
  const std::size_t n = ::strlen(s);
  fd_info info;
  if (!cooperative() || fits(fp, s, n) || !waitable(fp, info)) return real(s, fp);
  const file_lock locked(fp, lock);
  return put_cooperatively(fp, s, n) == n ? 1 : EOF;
}

template <class Real>
int write_char(int c, FILE* fp, bool lock, Real real) {
  fd_info info;
  if (!cooperative() || fp->_IO_write_ptr < fp->_IO_write_end || !waitable(fp, info)) return real(c, fp);
  const file_lock locked(fp, lock);
  byte_oriented(fp);
  const stream_turn turn(fp);
  return put_char(fp, c);
}

template <class Real>
int read_char(FILE* fp, bool lock, Real real) {
  fd_info info;
  if (!cooperative() || fp->_IO_read_ptr < fp->_IO_read_end || !fillable(fp, info)) return real(fp);
  return get_char(fp, info, lock, true);
}

template <class Real>
char* read_line(char* buf, int n, FILE* fp, std::size_t size, bool lock, Real real) {
  fd_info info;
  if (!cooperative() || n <= 1) return real();
  const std::size_t most = static_cast<std::size_t>(n) - 1 < size ? static_cast<std::size_t>(n) - 1 : size;
  if (line_ready(fp, most) || !fillable(fp, info)) return real();
  return get_line(buf, n, fp, info, size, lock);
}

template <class Real>
std::size_t read_items_or_pass(void* buf, std::size_t size, std::size_t count, FILE* fp, bool lock, Real real) {
  const std::size_t bytes = size * count;
  fd_info info;
  if (!cooperative() || bytes == 0 || buffered(fp) >= bytes || !fillable(fp, info)) return real();
  return read_items(buf, size, count, fp, info, lock);
}

// fortified_items makes __fread_chk's checks: glibc aborts on an overflowing
// size * n or a buffer too small.
void fortified_items(std::size_t buflen, std::size_t size, std::size_t n) {
  const std::size_t bytes = size * n;
  if ((n | size) >= (std::size_t{1} << (8 * sizeof(std::size_t) / 2)) && size != 0 && bytes / size != n) __chk_fail();
  if (bytes > buflen) __chk_fail();
}

int flush(FILE* fp, bool lock) {
  fd_info info;
  if (!cooperative() || fp == nullptr || !in_put_mode(fp) || fp->_IO_write_ptr <= fp->_IO_write_base ||
      !waitable(fp, info)) {
    return lock ? real_fflush()(fp) : real_fflush_unlocked()(fp);
  }
  const file_lock locked(fp, lock);
  const stream_turn turn(fp);
  if (drain(fp) == EOF) return EOF;
  return real_fflush_unlocked()(fp);  // nothing left to write; glibc's read-side sync
}

}  // namespace
}  // namespace grove::hooks

using namespace grove::hooks;

extern "C" {

// ---- reading ----

char* fgets(char* buf, int n, FILE* fp) {
  return read_line(buf, n, fp, SIZE_MAX, true, [&] { return real_fgets()(buf, n, fp); });
}

char* fgets_unlocked(char* buf, int n, FILE* fp) {
  return read_line(buf, n, fp, SIZE_MAX, false, [&] { return real_fgets_unlocked()(buf, n, fp); });
}

char* __fgets_chk(char* buf, size_t size, int n, FILE* fp) {
  return read_line(buf, n, fp, size, true, [&] { return real___fgets_chk()(buf, size, n, fp); });
}

char* __fgets_unlocked_chk(char* buf, size_t size, int n, FILE* fp) {
  return read_line(buf, n, fp, size, false, [&] { return real___fgets_unlocked_chk()(buf, size, n, fp); });
}

int fgetc(FILE* fp) { return read_char(fp, true, real_fgetc()); }
int getc(FILE* fp) { return read_char(fp, true, real_getc()); }
int getchar(void) { return read_char(stdin, true, [](FILE*) { return real_getchar()(); }); }
int fgetc_unlocked(FILE* fp) { return read_char(fp, false, real_fgetc_unlocked()); }
int getc_unlocked(FILE* fp) { return read_char(fp, false, real_getc_unlocked()); }
int getchar_unlocked(void) { return read_char(stdin, false, [](FILE*) { return real_getchar_unlocked()(); }); }

// __uflow and __underflow are what the inline getc_unlocked and friends of
// <stdio.h> call when the buffer is empty.
int __uflow(FILE* fp) { return read_char(fp, false, real___uflow()); }

int __underflow(FILE* fp) {
  fd_info info;
  if (!cooperative() || fp->_IO_read_ptr < fp->_IO_read_end || !fillable(fp, info)) return real___underflow()(fp);
  return get_char(fp, info, false, false);
}

size_t fread(void* buf, size_t size, size_t count, FILE* fp) {
  return read_items_or_pass(buf, size, count, fp, true, [&] { return real_fread()(buf, size, count, fp); });
}

size_t fread_unlocked(void* buf, size_t size, size_t count, FILE* fp) {
  return read_items_or_pass(buf, size, count, fp, false, [&] { return real_fread_unlocked()(buf, size, count, fp); });
}

size_t __fread_chk(void* buf, size_t buflen, size_t size, size_t count, FILE* fp) {
  if (!cooperative()) return real___fread_chk()(buf, buflen, size, count, fp);
  fortified_items(buflen, size, count);
  return fread(buf, size, count, fp);
}

size_t __fread_unlocked_chk(void* buf, size_t buflen, size_t size, size_t count, FILE* fp) {
  if (!cooperative()) return real___fread_unlocked_chk()(buf, buflen, size, count, fp);
  fortified_items(buflen, size, count);
  return fread_unlocked(buf, size, count, fp);
}

ssize_t getdelim(char** lineptr, size_t* n, int delim, FILE* fp) {
  fd_info info;
  if (!cooperative() || lineptr == nullptr || n == nullptr || fp == nullptr ||
      (buffered(fp) > 0 && ::memchr(fp->_IO_read_ptr, delim, buffered(fp)) != nullptr) || !fillable(fp, info)) {
    return real_getdelim()(lineptr, n, delim, fp);
  }
  return get_delimited(lineptr, n, delim, fp, info);
}

ssize_t __getdelim(char** lineptr, size_t* n, int delim, FILE* fp) { return getdelim(lineptr, n, delim, fp); }

ssize_t getline(char** lineptr, size_t* n, FILE* fp) { return getdelim(lineptr, n, '\n', fp); }

// <stdio.h> renames vfscanf and friends to their __isoc99_ versions for C99
// programs; the old names (for programs built otherwise) are defined under
// their own symbol names here.
int plain_vfscanf(FILE* fp, const char* format, va_list ap) __asm__("vfscanf");
int plain_vscanf(const char* format, va_list ap) __asm__("vscanf");
int plain_fscanf(FILE* fp, const char* format, ...) __asm__("fscanf");
int plain_scanf(const char* format, ...) __asm__("scanf");

int plain_vfscanf(FILE* fp, const char* format, va_list ap) { return scan_or_pass(fp, format, ap, false); }
int plain_vscanf(const char* format, va_list ap) { return scan_or_pass(stdin, format, ap, false); }
int __isoc99_vfscanf(FILE* fp, const char* format, va_list ap) { return scan_or_pass(fp, format, ap, true); }
int __isoc99_vscanf(const char* format, va_list ap) { return scan_or_pass(stdin, format, ap, true); }

int plain_fscanf(FILE* fp, const char* format, ...) {
  va_list ap;
  va_start(ap, format);
  const int r = scan_or_pass(fp, format, ap, false);
  va_end(ap);
  return r;
}

int plain_scanf(const char* format, ...) {
  va_list ap;
  va_start(ap, format);
  const int r = scan_or_pass(stdin, format, ap, false);
  va_end(ap);
  return r;
}

int __isoc99_fscanf(FILE* fp, const char* format, ...) {
  va_list ap;
  va_start(ap, format);
  const int r = scan_or_pass(fp, format, ap, true);
  va_end(ap);
  return r;
}

int __isoc99_scanf(const char* format, ...) {
  va_list ap;
  va_start(ap, format);
  const int r = scan_or_pass(stdin, format, ap, true);
  va_end(ap);
  return r;
}

// ---- writing ----

size_t fwrite(const void* buf, size_t size, size_t count, FILE* fp) {
  return write_items(buf, size, count, fp, true, real_fwrite());
}

size_t fwrite_unlocked(const void* buf, size_t size, size_t count, FILE* fp) {
  return write_items(buf, size, count, fp, false, real_fwrite_unlocked());
}

int fputs(const char* s, FILE* fp) { return write_string(s, fp, true, real_fputs()); }
int fputs_unlocked(const char* s, FILE* fp) { return write_string(s, fp, false, real_fputs_unlocked()); }

int puts(const char* s) {
  FILE* fp = stdout;
  const std::size_t n = ::strlen(s);
  fd_info info;
  if (!cooperative() || (fits(fp, s, n) && fp->_IO_write_ptr + n < fp->_IO_write_end) || !waitable(fp, info)) {
    return real_puts()(s);
  }
  const file_lock locked(fp, true);
  byte_oriented(fp);
  const stream_turn turn(fp);
  if (put(fp, s, n) == n && put_char(fp, '\n') != EOF) return n + 1 > INT_MAX ? INT_MAX : static_cast<int>(n + 1);
  return EOF;
}

int fputc(int c, FILE* fp) { return write_char(c, fp, true, real_fputc()); }
int putc(int c, FILE* fp) { return write_char(c, fp, true, real_putc()); }
int putchar(int c) { return write_char(c, stdout, true, [](int ch, FILE*) { return real_putchar()(ch); }); }
int fputc_unlocked(int c, FILE* fp) { return write_char(c, fp, false, real_fputc_unlocked()); }
int putc_unlocked(int c, FILE* fp) { return write_char(c, fp, false, real_putc_unlocked()); }
int putchar_unlocked(int c) {
  return write_char(c, stdout, false, [](int ch, FILE*) { return real_putchar_unlocked()(ch); });
}

// __overflow is what the inline putc_unlocked of <stdio.h> calls when the
// buffer has no room (always, for a line-buffered stream).
int __overflow(FILE* fp, int c) {
  fd_info info;
  if (!cooperative() || !waitable(fp, info)) return real___overflow()(fp, c);
  const stream_turn turn(fp);
  if (c == EOF) return overflow_eof(fp);
  byte_oriented(fp);
  return overflow_char(fp, c);
}

int vfprintf(FILE* fp, const char* format, va_list ap) { return print_or_pass(fp, -1, format, ap); }
int vprintf(const char* format, va_list ap) { return print_or_pass(stdout, -1, format, ap); }
int __vfprintf_chk(FILE* fp, int flag, const char* format, va_list ap) {
  return print_or_pass(fp, flag < 0 ? 0 : flag, format, ap);
}
int __vprintf_chk(int flag, const char* format, va_list ap) {
  return print_or_pass(stdout, flag < 0 ? 0 : flag, format, ap);
}

int fprintf(FILE* fp, const char* format, ...) {
  va_list ap;
  va_start(ap, format);
  const int r = print_or_pass(fp, -1, format, ap);
  va_end(ap);
  return r;
}

int printf(const char* format, ...) {
  va_list ap;
  va_start(ap, format);
  const int r = print_or_pass(stdout, -1, format, ap);
  va_end(ap);
  return r;
}

int __fprintf_chk(FILE* fp, int flag, const char* format, ...) {
  va_list ap;
  va_start(ap, format);
  const int r = print_or_pass(fp, flag < 0 ? 0 : flag, format, ap);
  va_end(ap);
  return r;
}

int __printf_chk(int flag, const char* format, ...) {
  va_list ap;
  va_start(ap, format);
  const int r = print_or_pass(stdout, flag < 0 ? 0 : flag, format, ap);
  va_end(ap);
  return r;
}

int vdprintf(int fd, const char* format, va_list ap) { return dprint(fd, -1, format, ap); }
int __vdprintf_chk(int fd, int flag, const char* format, va_list ap) { return dprint(fd, flag < 0 ? 0 : flag, format, ap); }

int dprintf(int fd, const char* format, ...) {
  va_list ap;
  va_start(ap, format);
  const int r = dprint(fd, -1, format, ap);
  va_end(ap);
  return r;
}

int __dprintf_chk(int fd, int flag, const char* format, ...) {
  va_list ap;
  va_start(ap, format);
  const int r = dprint(fd, flag < 0 ? 0 : flag, format, ap);
  va_end(ap);
  return r;
}

int fflush(FILE* fp) { return flush(fp, true); }
int fflush_unlocked(FILE* fp) { return flush(fp, false); }

// fclose flushes cooperatively first, and tells the descriptor table and the
// descriptor's waiters that the number is closed, as close() does; a popen
// stream's child is then waited for as pclose does (processes.cpp).
int fclose(FILE* fp) {
  if (fp == nullptr || fp->_fileno < 0) return close_stream(fp);
  fd_info info;
  int flush_error = 0;
  if (cooperative() && in_put_mode(fp) && fp->_IO_write_ptr > fp->_IO_write_base && waitable(fp, info)) {
    const file_lock locked(fp, true);
    const stream_turn turn(fp);
    if (drain(fp) == EOF) flush_error = errno;
  }
  grove::notify_close(fp->_fileno);
  forget(fp->_fileno);
  const int r = close_stream(fp);
  if (flush_error != 0) {
    errno = flush_error;
    return EOF;
  }
  return r;
}

}  // extern "C"
