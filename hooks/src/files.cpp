// files.cpp — calls on regular files and block devices in tasks: a read that
// misses the page cache, an fsync, an open or stat whose directory must be
// read from disk park the task, not the hub (grove/file.hpp says how).
// read, readv, write, writev and sendfile are in sockets.cpp, which sends
// their file descriptors here; fstatat and statx in hub_fds.cpp.
//
// Outside a task (and on descriptors that are not files) every call is
// libc's own.
#undef _FORTIFY_SOURCE  // our own definitions must not meet glibc's fortify wrappers

#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <grove/file.hpp>

#include "context.hpp"
#include "fd_table.hpp"
#include "files.hpp"
#include "hub_fds.hpp"
#include "libc.hpp"

using namespace grove::hooks;

namespace {

// may_wait_on_disk: fsync and friends on fd may wait for the disk (a file, a
// directory, or a number that is not open, whose EBADF the call reports).
bool may_wait_on_disk(int fd) noexcept {
  const fd_kind k = fd_info_of(fd).kind;
  return k == fd_kind::file || k == fd_kind::passthrough;
}

// at_hidden: a *at call on a hidden directory descriptor (hub_fds.hpp).
bool at_hidden(int dirfd, const char* path) noexcept {
  return dirfd >= 0 && (path == nullptr || path[0] != '/') && hidden(dirfd);
}

int bad_descriptor() noexcept {
  errno = EBADF;
  return -1;
}

template <class Offset, class Real>
ssize_t positioned(Real real, int fd, void* buf, size_t n, Offset off, bool write) {
  if (!cooperative() || !is_file(fd)) return real(fd, buf, n, off);
  return file_call([&] {
    return write ? grove::file::pwrite(fd, buf, n, static_cast<off_t>(off))
                 : grove::file::pread(fd, buf, n, static_cast<off_t>(off));
  });
}

// vectored is preadv, pwritev, their 64 names and their v2 forms with no flags
// (off -1 in a v2 form: at the file's offset). Flags (RWF_NOWAIT, RWF_HIPRI,
// RWF_APPEND...) are the program's own business: libc's call.
ssize_t vectored(int fd, const iovec* iov, int count, off_t off, bool write) {
  return file_call([&] {
    if (off == -1) return write ? grove::file::writev(fd, iov, count) : grove::file::readv(fd, iov, count);
    return write ? grove::file::pwritev(fd, iov, count, off) : grove::file::preadv(fd, iov, count, off);
  });
}

// opened: a new descriptor's number may have been another kind of descriptor's,
// closed where no hook saw it (inside glibc): what the table knew of it goes.
int opened(int fd) noexcept {
  if (fd >= 0) forget(fd);
  return fd;
}

mode_t mode_arg(int flags, va_list ap) {
  return __OPEN_NEEDS_MODE(flags) ? static_cast<mode_t>(va_arg(ap, int)) : 0;
}

int open_at(int dirfd, const char* path, int flags, mode_t mode) {
  if (at_hidden(dirfd, path)) return bad_descriptor();
  return opened(file_call([&] { return grove::file::openat(dirfd, path, flags, mode); }));
}

}  // namespace

extern "C" {

[[noreturn]] void __chk_fail(void);

ssize_t pread(int fd, void* buf, size_t n, off_t off) { return positioned(real_pread(), fd, buf, n, off, false); }
ssize_t pread64(int fd, void* buf, size_t n, off64_t off) { return positioned(real_pread64(), fd, buf, n, off, false); }
ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) {
  return positioned(real_pwrite(), fd, const_cast<void*>(buf), n, off, true);
}
ssize_t pwrite64(int fd, const void* buf, size_t n, off64_t off) {
  return positioned(real_pwrite64(), fd, const_cast<void*>(buf), n, off, true);
}

ssize_t __pread_chk(int fd, void* buf, size_t n, off_t off, size_t buflen) {
  if (!cooperative()) return real___pread_chk()(fd, buf, n, off, buflen);
  if (n > buflen) __chk_fail();
  return pread(fd, buf, n, off);
}
ssize_t __pread64_chk(int fd, void* buf, size_t n, off64_t off, size_t buflen) {
  if (!cooperative()) return real___pread64_chk()(fd, buf, n, off, buflen);
  if (n > buflen) __chk_fail();
  return pread64(fd, buf, n, off);
}

ssize_t preadv(int fd, const iovec* iov, int count, off_t off) {
  if (!cooperative() || !is_file(fd) || off < 0) return real_preadv()(fd, iov, count, off);
  return vectored(fd, iov, count, off, false);
}
ssize_t preadv64(int fd, const iovec* iov, int count, off64_t off) {
  if (!cooperative() || !is_file(fd) || off < 0) return real_preadv64()(fd, iov, count, off);
  return vectored(fd, iov, count, off, false);
}
ssize_t pwritev(int fd, const iovec* iov, int count, off_t off) {
  if (!cooperative() || !is_file(fd) || off < 0) return real_pwritev()(fd, iov, count, off);
  return vectored(fd, iov, count, off, true);
}
ssize_t pwritev64(int fd, const iovec* iov, int count, off64_t off) {
  if (!cooperative() || !is_file(fd) || off < 0) return real_pwritev64()(fd, iov, count, off);
  return vectored(fd, iov, count, off, true);
}
ssize_t preadv2(int fd, const iovec* iov, int count, off_t off, int flags) {
  if (!cooperative() || flags != 0 || off < -1 || !is_file(fd)) return real_preadv2()(fd, iov, count, off, flags);
  return vectored(fd, iov, count, off, false);
}
ssize_t preadv64v2(int fd, const iovec* iov, int count, off64_t off, int flags) {
  if (!cooperative() || flags != 0 || off < -1 || !is_file(fd)) return real_preadv64v2()(fd, iov, count, off, flags);
  return vectored(fd, iov, count, off, false);
}
ssize_t pwritev2(int fd, const iovec* iov, int count, off_t off, int flags) {
  if (!cooperative() || flags != 0 || off < -1 || !is_file(fd)) return real_pwritev2()(fd, iov, count, off, flags);
  return vectored(fd, iov, count, off, true);
}
ssize_t pwritev64v2(int fd, const iovec* iov, int count, off64_t off, int flags) {
  if (!cooperative() || flags != 0 || off < -1 || !is_file(fd)) return real_pwritev64v2()(fd, iov, count, off, flags);
  return vectored(fd, iov, count, off, true);
}

int open(const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  const mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  if (!cooperative()) return opened(real_open()(path, flags, mode));
  return open_at(AT_FDCWD, path, flags, mode);
}
int open64(const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  const mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  if (!cooperative()) return opened(real_open64()(path, flags, mode));
  return open_at(AT_FDCWD, path, flags, mode);
}
int openat(int dirfd, const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  const mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  if (!cooperative()) return opened(real_openat()(dirfd, path, flags, mode));
  return open_at(dirfd, path, flags, mode);
}
int openat64(int dirfd, const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  const mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  if (!cooperative()) return opened(real_openat64()(dirfd, path, flags, mode));
  return open_at(dirfd, path, flags, mode);
}
// The fortified forms: glibc's own aborts for O_CREAT or O_TMPFILE with no mode.
int __open_2(const char* path, int flags) {
  if (!cooperative() || __OPEN_NEEDS_MODE(flags)) return opened(real___open_2()(path, flags));
  return open_at(AT_FDCWD, path, flags, 0);
}
int __open64_2(const char* path, int flags) {
  if (!cooperative() || __OPEN_NEEDS_MODE(flags)) return opened(real___open64_2()(path, flags));
  return open_at(AT_FDCWD, path, flags, 0);
}
int __openat_2(int dirfd, const char* path, int flags) {
  if (!cooperative() || __OPEN_NEEDS_MODE(flags)) return opened(real___openat_2()(dirfd, path, flags));
  return open_at(dirfd, path, flags, 0);
}
int __openat64_2(int dirfd, const char* path, int flags) {
  if (!cooperative() || __OPEN_NEEDS_MODE(flags)) return opened(real___openat64_2()(dirfd, path, flags));
  return open_at(dirfd, path, flags, 0);
}
int creat(const char* path, mode_t mode) {
  if (!cooperative()) return opened(real_creat()(path, mode));
  return open_at(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}
int creat64(const char* path, mode_t mode) {
  if (!cooperative()) return opened(real_creat64()(path, mode));
  return open_at(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

int fsync(int fd) {
  if (!cooperative() || !may_wait_on_disk(fd)) return real_fsync()(fd);
  return file_call([&] { return grove::file::fsync(fd); });
}
int fdatasync(int fd) {
  if (!cooperative() || !may_wait_on_disk(fd)) return real_fdatasync()(fd);
  return file_call([&] { return grove::file::fdatasync(fd); });
}

int stat(const char* path, struct stat* st) {
  if (!cooperative()) return real_stat()(path, st);
  return file_call([&] { return grove::file::stat(path, st); });
}
int stat64(const char* path, struct stat64* st) {
  if (!cooperative()) return real_stat64()(path, st);
  return file_call([&] { return grove::file::stat(path, reinterpret_cast<struct stat*>(st)); });
}
int lstat(const char* path, struct stat* st) {
  if (!cooperative()) return real_lstat()(path, st);
  return file_call([&] { return grove::file::lstat(path, st); });
}
int lstat64(const char* path, struct stat64* st) {
  if (!cooperative()) return real_lstat64()(path, st);
  return file_call([&] { return grove::file::lstat(path, reinterpret_cast<struct stat*>(st)); });
}

int fallocate(int fd, int mode, off_t off, off_t len) {
  if (!cooperative() || !is_file(fd)) return real_fallocate()(fd, mode, off, len);
  return file_call([&] { return grove::file::fallocate(fd, mode, off, len); });
}
int fallocate64(int fd, int mode, off64_t off, off64_t len) {
  if (!cooperative() || !is_file(fd)) return real_fallocate64()(fd, mode, off, len);
  return file_call([&] { return grove::file::fallocate(fd, mode, off, len); });
}
int ftruncate(int fd, off_t len) {
  if (!cooperative() || !is_file(fd)) return real_ftruncate()(fd, len);
  return file_call([&] { return grove::file::ftruncate(fd, len); });
}
int ftruncate64(int fd, off64_t len) {
  if (!cooperative() || !is_file(fd)) return real_ftruncate64()(fd, len);
  return file_call([&] { return grove::file::ftruncate(fd, len); });
}
int truncate(const char* path, off_t len) {
  if (!cooperative()) return real_truncate()(path, len);
  return file_call([&] { return grove::file::truncate(path, len); });
}
int truncate64(const char* path, off64_t len) {
  if (!cooperative()) return real_truncate64()(path, len);
  return file_call([&] { return grove::file::truncate(path, len); });
}
int rename(const char* from, const char* to) {
  if (!cooperative()) return real_rename()(from, to);
  return file_call([&] { return grove::file::rename(from, to); });
}
int renameat(int fromdir, const char* from, int todir, const char* to) {
  if (!cooperative()) return real_renameat()(fromdir, from, todir, to);
  if (at_hidden(fromdir, from) || at_hidden(todir, to)) return bad_descriptor();
  return file_call([&] { return grove::file::renameat(fromdir, from, todir, to); });
}
int unlink(const char* path) {
  if (!cooperative()) return real_unlink()(path);
  return file_call([&] { return grove::file::unlink(path); });
}
int unlinkat(int dirfd, const char* path, int flags) {
  if (!cooperative()) return real_unlinkat()(dirfd, path, flags);
  if (at_hidden(dirfd, path)) return bad_descriptor();
  return file_call([&] { return grove::file::unlinkat(dirfd, path, flags); });
}
ssize_t copy_file_range(int in, off64_t* in_off, int out, off64_t* out_off, size_t n, unsigned int flags) {
  if (!cooperative() || !is_file(in)) return real_copy_file_range()(in, in_off, out, out_off, n, flags);
  return file_call([&] {
    return grove::file::copy_file_range(in, reinterpret_cast<off_t*>(in_off), out, reinterpret_cast<off_t*>(out_off),
                                        n, flags);
  });
}

}  // extern "C"
