// sockets.cpp — descriptor I/O in tasks: sockets, pipes, FIFOs, ttys.
//
// A blocking call in a task becomes "try without blocking, wait on the hub,
// try again", keeping the blocking contract exactly:
//   sockets   the try is the same call with MSG_DONTWAIT, so the descriptor's
//             own flags never change; a blocking stream send goes on until
//             every byte is sent (or the send timeout / an error stops it,
//             returning the partial count as the kernel does).
//   pipes, FIFOs, ttys, character devices
//             a zero-timeout poll decides whether the call can go ahead without
//             blocking; writes to them go in PIPE_BUF pieces, each of which a
//             writable pipe accepts whole.
//   anything else (regular files, directories, block devices) straight to libc.
// A descriptor the program made non-blocking, or a call with MSG_DONTWAIT,
// goes straight to libc: it returns EAGAIN as it would natively.
// SO_RCVTIMEO / SO_SNDTIMEO bound the wait and end it with EAGAIN.
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <vector>

#include <grove/io.hpp>

#include "context.hpp"
#include "fd_table.hpp"
#include "files.hpp"
#include "hub_fds.hpp"
#include "libc.hpp"
#include "locks.hpp"
#include "signals.hpp"
#include "threads.hpp"

namespace grove::hooks {
namespace {

bool would_block() noexcept { return errno == EAGAIN || errno == EWOULDBLOCK; }

limit limit_of(std::chrono::nanoseconds t) { return t.count() > 0 ? limit::after(t) : limit::never(); }

// mode_of: what a handler does to a socket call; signal(7): one with a
// timeout (SO_RCVTIMEO / SO_SNDTIMEO) is never restarted.
on_handler mode_of(std::chrono::nanoseconds t) { return t.count() > 0 ? on_handler::fail : on_handler::restart; }

// ready_now asks, without waiting, whether fd is ready for reading or writing.
bool ready_now(int fd, bool for_read) noexcept {
  pollfd p{fd, static_cast<short>(for_read ? POLLIN : POLLOUT), 0};
  return real_poll()(&p, 1, 0) != 0;  // an error or POLLNVAL: let the call itself report it
}

// wrong_way tells whether fd, a pipe, FIFO or tty that is not ready, was
// opened without the access the call needs (reading the write end of a pipe):
// such a call fails at once with EBADF natively, and poll never reports the
// readiness it would wait for. One fcntl, only on the way to a wait.
bool wrong_way(int fd, bool for_read) noexcept {
  const int fl = real_fcntl()(fd, F_GETFL);
  if (fl == -1) return true;  // let the call itself report it
  return (fl & O_ACCMODE) == (for_read ? O_WRONLY : O_RDONLY);
}

// fail_with sets errno and returns -1, for the hooked call to return.
ssize_t fail_with(int code) noexcept {
  errno = code;
  return -1;
}

// wait_or_fail waits for fd; on a timeout, failure or signal it returns the
// errno the call must fail with (EAGAIN for a timeout, as the kernel reports
// SO_RCVTIMEO; EINTR when a handler interrupted it).
// errno is left as it was: a call that returns what it had moved before the
// wait failed succeeds, and must not change errno (callers set it with
// fail_with when they fail).
int wait_or_fail(int fd, bool for_read, const limit& l, on_handler mode) {
  const int saved = errno;
  int code = 0;
  switch (wait_fd(fd, for_read, l, mode)) {
    case waited::ready:
      break;
    case waited::timed_out:
      code = EAGAIN;
      break;
    case waited::failed:
      code = errno;
      break;
    case waited::interrupted:
      code = EINTR;
      break;
  }
  errno = saved;
  return code;
}

// moved is what a call returns when it moved count bytes after waiting: a
// success, which leaves errno as the caller had it (the tries that found
// nothing set EAGAIN on the way).
ssize_t moved(std::size_t count, int caller_errno) noexcept {
  errno = caller_errno;
  return static_cast<ssize_t>(count);
}

// receive runs a receiving call `once(extra_flags)` on fd as a blocking call
// would, in a task. once returns the call's result (errno set on -1).
template <class Once>
ssize_t receive(int fd, int flags, Once once) {
  const fd_info info = fd_info_of(fd);
  if (straight(info.kind) || info.nonblocking || (flags & MSG_DONTWAIT) != 0) return once(0);
  const limit l = limit_of(info.recv_timeout);
  const int saved = errno;
  for (;;) {
    if (info.kind == fd_kind::socket) {
      const ssize_t n = once(MSG_DONTWAIT);
      if (n >= 0) return moved(static_cast<std::size_t>(n), saved);
      if (!would_block()) return n;
    } else if (ready_now(fd, true) || wrong_way(fd, true)) {
      return once(0);
    }
    if (const int code = wait_or_fail(fd, true, l, mode_of(info.recv_timeout))) return fail_with(code);
  }
}

// transmit_socket sends what msg describes on a blocking socket in a task.
// Stream sockets send everything before returning, as a blocking send does;
// datagram sockets send one message.
ssize_t transmit_socket(int fd, const fd_info& info, msghdr msg, int flags) {
  std::size_t total = 0;
  for (int i = 0; i < static_cast<int>(msg.msg_iovlen); ++i) total += msg.msg_iov[i].iov_len;
  // After a partial send, msg_iov is advanced in a copy (the caller's array is
  // const); the common case, everything sent at the first try, copies nothing.
  std::vector<iovec> iov;
  const limit l = limit_of(info.send_timeout);
  const int saved = errno;
  std::size_t sent = 0;
  for (;;) {
    const ssize_t n = real_sendmsg()(fd, &msg, flags | MSG_DONTWAIT);
    if (n >= 0) {
      sent += static_cast<std::size_t>(n);
      if (!info.stream || sent >= total) return moved(sent, saved);
      if (iov.empty()) {
        iov.assign(msg.msg_iov, msg.msg_iov + msg.msg_iovlen);
        msg.msg_iov = iov.data();
      }
      // Drop what went, and any ancillary data (it travels with the first byte).
      msg.msg_control = nullptr;
      msg.msg_controllen = 0;
      std::size_t skip = static_cast<std::size_t>(n);
      while (msg.msg_iovlen > 0 && skip >= msg.msg_iov->iov_len) {
        skip -= msg.msg_iov->iov_len;
        ++msg.msg_iov;
        --msg.msg_iovlen;
      }
      if (msg.msg_iovlen > 0) {
        msg.msg_iov->iov_base = static_cast<char*>(msg.msg_iov->iov_base) + skip;
        msg.msg_iov->iov_len -= skip;
      }
      continue;
    }
    if (!would_block()) return sent > 0 ? moved(sent, saved) : -1;
    if (const int code = wait_or_fail(fd, false, l, mode_of(info.send_timeout))) {
      return sent > 0 ? moved(sent, saved) : fail_with(code);
    }
  }
}

// transmit_pollable writes iov to a blocking pipe, FIFO or tty in a task: all
// of it, in pieces a writable pipe takes whole.
ssize_t transmit_pollable(int fd, const iovec* iov, int count) {
  std::size_t sent = 0;
  std::size_t total = 0;
  for (int i = 0; i < count; ++i) total += iov[i].iov_len;
  if (total <= PIPE_BUF) {
    // Small writes stay one call: POSIX makes them atomic on pipes.
    for (;;) {
      if (ready_now(fd, false) || wrong_way(fd, false)) return real_writev()(fd, iov, count);
      if (const int code = wait_or_fail(fd, false, limit::never(), on_handler::restart)) return fail_with(code);
    }
  }
  const int saved = errno;
  int at = 0;          // the iovec being written
  std::size_t off = 0;  // bytes of it already written
  while (sent < total) {
    if (!ready_now(fd, false)) {
      if (sent == 0 && wrong_way(fd, false)) return real_writev()(fd, iov, count);
      if (const int code = wait_or_fail(fd, false, limit::never(), on_handler::restart)) {
        return sent > 0 ? static_cast<ssize_t>(sent) : fail_with(code);
      }
      continue;
    }
    iovec piece[IOV_MAX > 64 ? 64 : IOV_MAX];
    int pieces = 0;
    std::size_t room = PIPE_BUF;
    for (int i = at; i < count && room > 0 && pieces < static_cast<int>(std::size(piece)); ++i) {
      const std::size_t skip = i == at ? off : 0;
      const std::size_t take = std::min(room, iov[i].iov_len - skip);
      if (take == 0) continue;
      piece[pieces++] = {static_cast<char*>(iov[i].iov_base) + skip, take};
      room -= take;
    }
    const ssize_t n = real_writev()(fd, piece, pieces);
    if (n < 0) return sent > 0 ? moved(sent, saved) : -1;
    sent += static_cast<std::size_t>(n);
    std::size_t advance = static_cast<std::size_t>(n);
    while (at < count && advance >= iov[at].iov_len - off) {
      advance -= iov[at].iov_len - off;
      off = 0;
      ++at;
    }
    off += advance;
  }
  return static_cast<ssize_t>(sent);
}

// transmit runs a sending call on fd as a blocking call would, in a task.
// `direct` is the call itself, for descriptors that need no help.
// socket_call: send or sendto, which only sockets take (libc reports ENOTSOCK).
template <class Direct>
ssize_t transmit(int fd, const iovec* iov, int count, int flags, const sockaddr* to, socklen_t to_len,
                 Direct direct, bool socket_call = false) {
  const fd_info info = fd_info_of(fd);
  if (straight(info.kind) || info.nonblocking || (flags & MSG_DONTWAIT) != 0) return direct();
  if (info.kind == fd_kind::pollable) return socket_call ? direct() : transmit_pollable(fd, iov, count);
  msghdr msg{};
  msg.msg_name = const_cast<sockaddr*>(to);
  msg.msg_namelen = to_len;
  msg.msg_iov = const_cast<iovec*>(iov);
  msg.msg_iovlen = static_cast<std::size_t>(count);
  return transmit_socket(fd, info, msg, flags);
}

// accept_one accepts on a blocking listening socket in a task.
int accept_one(int fd, sockaddr* addr, socklen_t* len, int flags) {
  const fd_info info = fd_info_of(fd);
  int s = -1;
  if (info.kind != fd_kind::socket || info.nonblocking) {
    s = real_accept4()(fd, addr, len, flags);
  } else {
    // accept has no MSG_DONTWAIT: poll first. No other task runs between the
    // poll and the accept, so only another process could take the connection.
    const limit l = limit_of(info.recv_timeout);
    const int saved = errno;
    for (;;) {
      if (ready_now(fd, true)) {
        s = real_accept4()(fd, addr, len, flags);
        if (s >= 0) errno = saved;  // a success leaves errno alone
        if (s >= 0 || !would_block()) break;
      }
      if (const int code = wait_or_fail(fd, true, l, mode_of(info.recv_timeout))) {
        return static_cast<int>(fail_with(code));
      }
    }
  }
  if (s >= 0) note_socket(s, (flags & SOCK_NONBLOCK) != 0, true, info.recv_timeout, info.send_timeout);
  return s;
}

// restore_flags puts back the flags connect or sendfile found, when they are
// done, unless the descriptor was closed while they waited: its number may
// already belong to another descriptor.
struct restore_flags {
  restore_flags(int descriptor, int flags) : fd(descriptor), fl(flags) {}
  restore_flags(const restore_flags&) = delete;
  restore_flags& operator=(const restore_flags&) = delete;
  ~restore_flags() {
    const int saved = errno;
    set_in_connect(fd, false);
    if (!closed) real_fcntl()(fd, F_SETFL, fl);
    errno = saved;
  }
  int fd, fl;
  bool closed = false;
};

// connect_blocking connects a blocking socket in a task: O_NONBLOCK for the
// moment of the call (fcntl(F_GETFL) still shows the program's flags), then a
// cooperative wait for the outcome, bounded by SO_SNDTIMEO as the kernel bounds
// it. Returns the kernel's verdict: 0, or -1 with ECONNREFUSED, ETIMEDOUT...
int connect_blocking(int fd, const sockaddr* addr, socklen_t len, const fd_info& info) {
  const int fl = real_fcntl()(fd, F_GETFL);
  if (fl == -1) return -1;
  if (real_fcntl()(fd, F_SETFL, fl | O_NONBLOCK) == -1) return -1;
  set_in_connect(fd, true);
  restore_flags on_exit{fd, fl};
  if (real_connect()(fd, addr, len) == 0) return 0;
  if (errno != EINPROGRESS) return -1;
  const limit l = limit_of(info.send_timeout);
  switch (wait_fd(fd, false, l, mode_of(info.send_timeout))) {
    case waited::ready:
      break;
    case waited::interrupted:
      return -1;  // EINTR; the connection goes on being made, as natively
    case waited::timed_out:
      return static_cast<int>(fail_with(EINPROGRESS));  // what a blocking connect says when SO_SNDTIMEO passes
    case waited::failed:
      on_exit.closed = errno == EBADF;
      return -1;
  }
  int err = 0;
  socklen_t err_len = sizeof err;
  if (real_getsockopt()(fd, SOL_SOCKET, SO_ERROR, &err, &err_len) != 0) return -1;
  return err == 0 ? 0 : static_cast<int>(fail_with(err));
}

// send_file is sendfile and sendfile64 in a task; real is libc's symbol of
// the same name, and Offset its offset type.
template <class Offset>
ssize_t send_file(ssize_t (*real)(int, int, Offset*, size_t), int out, int in, Offset* offset, size_t count) {
  if (!cooperative()) return real(out, in, offset, count);
  const fd_info info = fd_info_of(out);
  if (info.kind == fd_kind::file) {  // file to file: off the hub (to a socket or pipe: below)
    return file_call([&] { return grove::file::sendfile(out, in, reinterpret_cast<off_t*>(offset), count); });
  }
  if (info.kind == fd_kind::passthrough || info.nonblocking) return real(out, in, offset, count);
  // sendfile has no MSG_DONTWAIT: like connect, hold O_NONBLOCK on the output
  // for the call and wait between partial transfers.
  const int fl = real_fcntl()(out, F_GETFL);
  if (fl == -1 || real_fcntl()(out, F_SETFL, fl | O_NONBLOCK) == -1) return -1;
  set_in_connect(out, true);
  restore_flags on_exit{out, fl};
  const limit l = limit_of(info.send_timeout);
  const int saved = errno;
  std::size_t sent = 0;
  while (sent < count) {
    const ssize_t n = real(out, in, offset, count - sent);
    if (n == 0) break;  // end of the input file
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      if (!info.stream && info.kind == fd_kind::socket) break;
      continue;
    }
    if (!would_block()) return sent > 0 ? moved(sent, saved) : -1;
    if (const int code = wait_or_fail(out, false, l, mode_of(info.send_timeout))) {
      on_exit.closed = code == EBADF;
      return sent > 0 ? moved(sent, saved) : fail_with(code);
    }
  }
  return moved(sent, saved);
}

// file_control is fcntl and fcntl64 with their argument read; real is libc's
// symbol of the same name. A lock that must wait waits on the pool (locks.cpp);
// it records what the program sets (O_NONBLOCK) and forgets descriptors it
// duplicates.
int file_control(int (*real)(int, int, ...), int fd, int cmd, void* arg) {
  if ((cmd == F_SETLKW || cmd == F_OFD_SETLKW) && cooperative()) {
    cancellation_point();
    return record_lock_in_task(real, fd, cmd, arg);
  }
  const int r = real(fd, cmd, arg);
  if (r == -1) return r;
  switch (cmd) {
    case F_SETFL:
      set_nonblocking(fd, (static_cast<int>(reinterpret_cast<std::intptr_t>(arg)) & O_NONBLOCK) != 0);
      break;
    case F_GETFL: {
      // During a cooperative connect or sendfile the kernel shows O_NONBLOCK:
      // report the program's own flag.
      const fd_info info = fd_info_of(fd);
      if (info.in_connect) return info.nonblocking ? (r | O_NONBLOCK) : (r & ~O_NONBLOCK);
      break;
    }
    case F_DUPFD:
    case F_DUPFD_CLOEXEC:
      forget(r);
      break;
    default:
      break;
  }
  return r;
}

}  // namespace
}  // namespace grove::hooks

using namespace grove::hooks;

extern "C" {

int socket(int domain, int type, int protocol) noexcept {
  const int fd = real_socket()(domain, type, protocol);
  if (fd >= 0) note_socket(fd, (type & SOCK_NONBLOCK) != 0, (type & 0xf) == SOCK_STREAM);
  return fd;
}

int socketpair(int domain, int type, int protocol, int sv[2]) noexcept {
  const int r = real_socketpair()(domain, type, protocol, sv);
  if (r == 0) {
    for (int i = 0; i < 2; ++i) note_socket(sv[i], (type & SOCK_NONBLOCK) != 0, (type & 0xf) == SOCK_STREAM);
  }
  return r;
}

int pipe(int fds[2]) noexcept {
  const int r = real_pipe()(fds);
  if (r == 0) {
    note_pollable(fds[0], false);
    note_pollable(fds[1], false);
  }
  return r;
}

int pipe2(int fds[2], int flags) noexcept {
  const int r = real_pipe2()(fds, flags);
  if (r == 0) {
    note_pollable(fds[0], (flags & O_NONBLOCK) != 0);
    note_pollable(fds[1], (flags & O_NONBLOCK) != 0);
  }
  return r;
}

int connect(int fd, const sockaddr* addr, socklen_t len) {
  if (!cooperative()) return real_connect()(fd, addr, len);
  const fd_info info = fd_info_of(fd);
  if (info.kind != fd_kind::socket || info.nonblocking) return real_connect()(fd, addr, len);
  return connect_blocking(fd, addr, len, info);
}

int accept(int fd, sockaddr* addr, socklen_t* len) {
  if (!cooperative()) {
    const int s = real_accept()(fd, addr, len);
    if (s >= 0) forget(s);
    return s;
  }
  return accept_one(fd, addr, len, 0);
}

int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  if (!cooperative()) {
    const int s = real_accept4()(fd, addr, len, flags);
    if (s >= 0) forget(s);
    return s;
  }
  return accept_one(fd, addr, len, flags);
}

ssize_t read(int fd, void* buf, size_t n) {
  if (!cooperative()) return real_read()(fd, buf, n);
  if (is_file(fd)) return file_call([&] { return grove::file::read(fd, buf, n); });
  return receive(fd, 0, [&](int extra) {
    return extra != 0 ? real_recv()(fd, buf, n, extra) : real_read()(fd, buf, n);
  });
}

ssize_t readv(int fd, const iovec* iov, int count) {
  if (!cooperative()) return real_readv()(fd, iov, count);
  if (is_file(fd)) return file_call([&] { return grove::file::readv(fd, iov, count); });
  return receive(fd, 0, [&](int extra) -> ssize_t {
    if (extra == 0) return real_readv()(fd, iov, count);
    msghdr msg{};
    msg.msg_iov = const_cast<iovec*>(iov);
    msg.msg_iovlen = static_cast<std::size_t>(count);
    return real_recvmsg()(fd, &msg, extra);
  });
}

ssize_t recv(int fd, void* buf, size_t n, int flags) {
  if (!cooperative()) return real_recv()(fd, buf, n, flags);
  if ((flags & MSG_WAITALL) == 0) {
    return receive(fd, flags, [&](int extra) { return real_recv()(fd, buf, n, flags | extra); });
  }
  // MSG_WAITALL: a blocking call waits for all n bytes (or EOF, an error, a
  // timeout), returning what it has.
  std::size_t got = 0;
  const int saved = errno;
  while (got < n) {
    const ssize_t r = receive(fd, flags & ~MSG_WAITALL, [&](int extra) {
      return real_recv()(fd, static_cast<char*>(buf) + got, n - got, (flags & ~MSG_WAITALL) | extra);
    });
    if (r < 0) {
      if (got == 0) return -1;
      errno = saved;  // what had arrived is the result: a success leaves errno alone
      return static_cast<ssize_t>(got);
    }
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
  }
  return static_cast<ssize_t>(got);
}

ssize_t recvfrom(int fd, void* buf, size_t n, int flags, sockaddr* from, socklen_t* from_len) {
  if (!cooperative()) return real_recvfrom()(fd, buf, n, flags, from, from_len);
  return receive(fd, flags, [&](int extra) { return real_recvfrom()(fd, buf, n, flags | extra, from, from_len); });
}

ssize_t recvmsg(int fd, msghdr* msg, int flags) {
  if (!cooperative()) return real_recvmsg()(fd, msg, flags);
  return receive(fd, flags, [&](int extra) { return real_recvmsg()(fd, msg, flags | extra); });
}

int recvmmsg(int fd, mmsghdr* msgs, unsigned int n, int flags, timespec* timeout) {
  if (!cooperative()) return real_recvmmsg()(fd, msgs, n, flags, timeout);
  // Wait for the first message cooperatively; the rest as the kernel gives
  // them (its timeout is only checked after each message, never while waiting).
  const ssize_t r = receive(fd, flags, [&](int extra) {
    return static_cast<ssize_t>(real_recvmmsg()(fd, msgs, n, flags | extra, timeout));
  });
  return static_cast<int>(r);
}

ssize_t write(int fd, const void* buf, size_t n) {
  if (!cooperative()) return real_write()(fd, buf, n);
  if (is_file(fd)) return file_call([&] { return grove::file::write(fd, buf, n); });
  const iovec one{const_cast<void*>(buf), n};
  return transmit(fd, &one, 1, 0, nullptr, 0, [&] { return real_write()(fd, buf, n); });
}

ssize_t writev(int fd, const iovec* iov, int count) {
  if (!cooperative()) return real_writev()(fd, iov, count);
  if (is_file(fd)) return file_call([&] { return grove::file::writev(fd, iov, count); });
  if (count < 0 || count > IOV_MAX) return real_writev()(fd, iov, count);  // libc's EINVAL
  return transmit(fd, iov, count, 0, nullptr, 0, [&] { return real_writev()(fd, iov, count); });
}

ssize_t send(int fd, const void* buf, size_t n, int flags) {
  if (!cooperative()) return real_send()(fd, buf, n, flags);
  const iovec one{const_cast<void*>(buf), n};
  return transmit(fd, &one, 1, flags, nullptr, 0, [&] { return real_send()(fd, buf, n, flags); }, true);
}

ssize_t sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* to, socklen_t to_len) {
  if (!cooperative()) return real_sendto()(fd, buf, n, flags, to, to_len);
  const iovec one{const_cast<void*>(buf), n};
  return transmit(
      fd, &one, 1, flags, to, to_len, [&] { return real_sendto()(fd, buf, n, flags, to, to_len); }, true);
}

ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
  if (!cooperative()) return real_sendmsg()(fd, msg, flags);
  const fd_info info = fd_info_of(fd);
  if (info.kind != fd_kind::socket || info.nonblocking || (flags & MSG_DONTWAIT) != 0) {
    return real_sendmsg()(fd, msg, flags);
  }
  return transmit_socket(fd, info, *msg, flags);
}

int sendmmsg(int fd, mmsghdr* msgs, unsigned int n, int flags) {
  if (!cooperative()) return real_sendmmsg()(fd, msgs, n, flags);
  const fd_info info = fd_info_of(fd);
  if (info.kind != fd_kind::socket || info.nonblocking || (flags & MSG_DONTWAIT) != 0) {
    return real_sendmmsg()(fd, msgs, n, flags);
  }
  const limit l = limit_of(info.send_timeout);
  for (;;) {
    const int r = real_sendmmsg()(fd, msgs, n, flags | MSG_DONTWAIT);
    if (r >= 0 || !would_block()) return r;
    if (const int code = wait_or_fail(fd, false, l, mode_of(info.send_timeout))) {
      return static_cast<int>(fail_with(code));
    }
  }
}

ssize_t sendfile(int out, int in, off_t* offset, size_t count) {
  return send_file(real_sendfile(), out, in, offset, count);
}

// sendfile64 is the symbol a program built with _FILE_OFFSET_BITS=64 calls for
// sendfile: the same call under another name, so it needs its own hook.
ssize_t sendfile64(int out, int in, off64_t* offset, size_t count) {
  return send_file(real_sendfile64(), out, in, offset, count);
}

int close(int fd) {
  if (closing_hub_fd(fd)) {  // the hub's own: natively not open
    errno = EBADF;
    return -1;
  }
  // Wake the tasks that wait on fd (EBADF) before the number can be reused.
  grove::notify_close(fd);
  forget(fd);
  return real_close()(fd);
}

int shutdown(int fd, int how) noexcept { return real_shutdown()(fd, how); }

// The hub's own descriptors are closed to the program (hub_fds.hpp): dup and
// fcntl of one fail with EBADF; dup2 onto one fails with EBUSY, as the kernel
// says of a number another thread is opening, and leaves the hub's alone.
static int hidden_error(int code) noexcept {
  errno = code;
  return -1;
}

int dup(int fd) noexcept {
  if (hidden(fd)) return hidden_error(EBADF);
  const int r = real_dup()(fd);
  if (r >= 0) forget(r);
  return r;
}

int dup2(int fd, int to) noexcept {
  if (hidden(fd)) return hidden_error(EBADF);
  if (hidden(to)) return hidden_error(EBUSY);
  if (fd != to) {
    grove::notify_close(to);
    forget(to);
  }
  return real_dup2()(fd, to);
}

int dup3(int fd, int to, int flags) noexcept {
  if (hidden(fd)) return hidden_error(EBADF);
  if (hidden(to)) return hidden_error(EBUSY);
  if (fd != to) {
    grove::notify_close(to);
    forget(to);
  }
  return real_dup3()(fd, to, flags);
}

int fcntl(int fd, int cmd, ...) {
  // Every command's argument is an int, a pointer or absent; like glibc's own
  // wrapper, read it as a pointer-sized value and pass it on.
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  if (hidden(fd)) return hidden_error(EBADF);
  return file_control(real_fcntl(), fd, cmd, arg);
}

// fcntl64 is the symbol a program built with _FILE_OFFSET_BITS=64 calls for
// fcntl (glibc's headers redirect it there, as redis's do): without its own
// hook, the O_NONBLOCK such a program sets would go unseen and its
// non-blocking reads would wait instead of returning EAGAIN.
int fcntl64(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  if (hidden(fd)) return hidden_error(EBADF);
  return file_control(real_fcntl64(), fd, cmd, arg);
}

int ioctl(int fd, unsigned long request, ...) noexcept {
  va_list ap;
  va_start(ap, request);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  const int r = real_ioctl()(fd, request, arg);
  if (r != -1 && request == FIONBIO && arg != nullptr) set_nonblocking(fd, *static_cast<int*>(arg) != 0);
  return r;
}

int setsockopt(int fd, int level, int name, const void* value, socklen_t len) noexcept {
  const int r = real_setsockopt()(fd, level, name, value, len);
  if (r == 0 && level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO) && value != nullptr &&
      len >= sizeof(timeval)) {
    const auto* tv = static_cast<const timeval*>(value);
    set_timeout(fd, name == SO_RCVTIMEO, std::chrono::seconds(tv->tv_sec) + std::chrono::microseconds(tv->tv_usec));
  }
  return r;
}

int getsockopt(int fd, int level, int name, void* value, socklen_t* len) noexcept {
  return real_getsockopt()(fd, level, name, value, len);
}

}  // extern "C"
