// fortify.cpp — the checked entry points that programs built with
// -D_FORTIFY_SOURCE call instead of read, recv, recvfrom, poll and ppoll when
// the compiler knows the buffer's size. Without these, an optimised build would
// reach libc's blocking calls straight past the hooks.
//
// Each makes glibc's bounds check, failing as glibc fails (__chk_fail: "buffer
// overflow detected" and abort), then goes through the hooked call, so it
// waits cooperatively. Outside a task it is libc's own checked call.
#undef _FORTIFY_SOURCE  // our own headers must not declare these with glibc's attributes

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>

#include "context.hpp"
#include "libc.hpp"

using namespace grove::hooks;

extern "C" {

// glibc's report of a failed check; it does not return.
[[noreturn]] void __chk_fail(void);

ssize_t __read_chk(int fd, void* buf, size_t nbytes, size_t buflen) {
  if (!cooperative()) return real___read_chk()(fd, buf, nbytes, buflen);
  if (nbytes > buflen) __chk_fail();
  return read(fd, buf, nbytes);
}

ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags) {
  if (!cooperative()) return real___recv_chk()(fd, buf, n, buflen, flags);
  if (n > buflen) __chk_fail();
  return recv(fd, buf, n, flags);
}

ssize_t __recvfrom_chk(int fd, void* buf, size_t n, size_t buflen, int flags, sockaddr* from, socklen_t* from_len) {
  if (!cooperative()) return real___recvfrom_chk()(fd, buf, n, buflen, flags, from, from_len);
  if (n > buflen) __chk_fail();
  return recvfrom(fd, buf, n, flags, from, from_len);
}

int __poll_chk(pollfd* fds, nfds_t n, int timeout, size_t fdslen) {
  if (!cooperative()) return real___poll_chk()(fds, n, timeout, fdslen);
  if (fdslen / sizeof(*fds) < n) __chk_fail();
  return poll(fds, n, timeout);
}

int __ppoll_chk(pollfd* fds, nfds_t n, const timespec* timeout, const sigset_t* mask, size_t fdslen) {
  if (!cooperative()) return real___ppoll_chk()(fds, n, timeout, mask, fdslen);
  if (fdslen / sizeof(*fds) < n) __chk_fail();
  return ppoll(fds, n, timeout, mask);
}

}  // extern "C"
