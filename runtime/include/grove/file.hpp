// grove/file.hpp — file I/O that never stalls the hub: the task waits for the
// disk, the other tasks run.
//
//   int fd = grove::file::open("/var/data/big", O_RDONLY);
//   char buf[65536];
//   ssize_t n = grove::file::read(fd, buf, sizeof buf);  // a page-cache miss parks only this task
//
// A regular file is always "ready" to epoll, so waiting for readiness cannot
// help; a read that misses the page cache blocks its thread for the whole disk
// read. These functions are the POSIX calls of the same names, with the same
// arguments, results and errno (-1 and errno on failure), made cooperative
// when called in a task:
//
//  - reads and writes of regular files and block devices first try the call
//    without waiting (preadv2/pwritev2 with RWF_NOWAIT): data in the page
//    cache costs one system call, as natively. Calls of more than 256 KiB go
//    off the hub whole (copying them would hold the hub ~0.3 ms per MiB). A
//    buffered write that the file system cannot try without waiting (ext4
//    refuses RWF_NOWAIT for them) is made on the hub: a copy into the page
//    cache, 25 times cheaper than a trip off the hub; O_SYNC, O_DSYNC and
//    O_DIRECT writes are not;
//  - otherwise the task parks and the call completes off the hub's thread:
//    through the hub's io_uring (one per hub, made on first need, its
//    completions read by the hub's loop through an eventfd), or through the
//    hub's thread pool (thread_pool.hpp) where io_uring is unavailable (no
//    kernel support, forbidden by seccomp or io_uring_disabled), for the calls
//    io_uring cannot make, or when GROVE_FILE_IO=pool. While a call of more
//    than 256 KiB runs off the hub, the hub's thread keeps to its CPU and the
//    worker to the others (the scheduler would otherwise move the hub onto the
//    worker's CPU as each completion wakes it);
//  - open, stat and friends first try the lookup without waiting
//    (openat2 with RESOLVE_CACHED; for O_CREAT, O_TRUNC and O_TMPFILE, which
//    it refuses, the lookup alone), and go off the hub only when a directory
//    would have to be read from disk.
//
// Semantics are the blocking calls': a read on a shared file offset advances
// it exactly once (tasks of one process that use one descriptor's offset take
// turns, as the kernel makes threads do), O_APPEND writes are whole, reads are
// short at end of file, and a write is complete unless the kernel says
// otherwise (ENOSPC, EFBIG). A call once handed off cannot be taken back, as
// a disk read cannot be interrupted natively: a kill or a timeout scope that
// fires meanwhile is raised at the task's next blocking call, once the call
// has finished and returned its result.
//
// Descriptors that are not regular files or block devices (sockets, pipes,
// /proc and /sys files, whose reads never wait for a disk) get the plain call,
// as do callers that are not tasks (the hub itself, threads without a hub).
//
// GROVE_FILE_IO: "io_uring" (the default: io_uring where the kernel allows,
// otherwise the pool) or "pool"; anything else prints a message on stderr and
// exits with status 2.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>

namespace grove::file {

ssize_t read(int fd, void* buf, std::size_t n);
ssize_t write(int fd, const void* buf, std::size_t n);
ssize_t pread(int fd, void* buf, std::size_t n, off_t offset);
ssize_t pwrite(int fd, const void* buf, std::size_t n, off_t offset);
ssize_t readv(int fd, const iovec* iov, int count);
ssize_t writev(int fd, const iovec* iov, int count);
ssize_t preadv(int fd, const iovec* iov, int count, off_t offset);
ssize_t pwritev(int fd, const iovec* iov, int count, off_t offset);

int open(const char* path, int flags, mode_t mode = 0);
int openat(int dirfd, const char* path, int flags, mode_t mode = 0);
int fsync(int fd);
int fdatasync(int fd);
int stat(const char* path, struct stat* st);
int lstat(const char* path, struct stat* st);
int fstatat(int dirfd, const char* path, struct stat* st, int flags);
int statx(int dirfd, const char* path, int flags, unsigned mask, struct statx* st);
// fstat reads the in-memory inode of an open file: the plain call.
int fstat(int fd, struct stat* st);
int fallocate(int fd, int mode, off_t offset, off_t len);
int ftruncate(int fd, off_t len);
int truncate(const char* path, off_t len);
int rename(const char* from, const char* to);
int renameat(int fromdir, const char* from, int todir, const char* to);
int unlink(const char* path);
int unlinkat(int dirfd, const char* path, int flags);
// copy_file_range, and sendfile from a file to a file, run off the hub;
// sendfile to anything else is the plain call (the hooks wait for a socket's
// or pipe's room on the hub).
ssize_t sendfile(int out_fd, int in_fd, off_t* offset, std::size_t count);
ssize_t copy_file_range(int in_fd, off_t* in_off, int out_fd, off_t* out_off, std::size_t n, unsigned flags);

// way is how the current hub completes a call that must wait: "io_uring" or
// "pool" (the setting, or what the kernel allowed).
const char* way();

}  // namespace grove::file
