// libc.hpp — the real libc functions behind every hook.
//
// A hook that passes a call on must reach the next definition of the symbol
// (libc's), never itself: each is looked up once with dlsym(RTLD_NEXT) and kept
// in a plain pointer. The lookup happens in a constructor that runs before the
// program's, and again on first use for calls made before it (another
// library's constructor, the dynamic loader's start-up): dlsym does not call any
// hooked function, so there is no recursion. Racing first uses store the same
// value.
#pragma once

#include <dirent.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/msg.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/sem.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>

namespace grove::hooks {

// The stat buffers by names that the hooked stat and stat64 (fn::stat...) do not hide.
using stat_buf = struct stat;
using stat64_buf = struct stat64;

// GROVE_LIBC_FUNCTIONS(X) lists every hooked symbol once: X(name, type).
#define GROVE_LIBC_FUNCTIONS(X)                                                                                   \
  X(sleep, unsigned int (*)(unsigned int))                                                                        \
  X(usleep, int (*)(useconds_t))                                                                                  \
  X(nanosleep, int (*)(const timespec*, timespec*))                                                               \
  X(clock_nanosleep, int (*)(clockid_t, int, const timespec*, timespec*))                                         \
  X(socket, int (*)(int, int, int))                                                                               \
  X(socketpair, int (*)(int, int, int, int*))                                                                     \
  X(connect, int (*)(int, const sockaddr*, socklen_t))                                                            \
  X(accept, int (*)(int, sockaddr*, socklen_t*))                                                                  \
  X(accept4, int (*)(int, sockaddr*, socklen_t*, int))                                                            \
  X(read, ssize_t (*)(int, void*, size_t))                                                                        \
  X(readv, ssize_t (*)(int, const iovec*, int))                                                                   \
  X(write, ssize_t (*)(int, const void*, size_t))                                                                 \
  X(writev, ssize_t (*)(int, const iovec*, int))                                                                  \
  X(recv, ssize_t (*)(int, void*, size_t, int))                                                                   \
  X(recvfrom, ssize_t (*)(int, void*, size_t, int, sockaddr*, socklen_t*))                                        \
  X(recvmsg, ssize_t (*)(int, msghdr*, int))                                                                      \
  X(recvmmsg, int (*)(int, mmsghdr*, unsigned int, int, timespec*))                                               \
  X(send, ssize_t (*)(int, const void*, size_t, int))                                                             \
  X(sendto, ssize_t (*)(int, const void*, size_t, int, const sockaddr*, socklen_t))                               \
  X(sendmsg, ssize_t (*)(int, const msghdr*, int))                                                                \
  X(sendmmsg, int (*)(int, mmsghdr*, unsigned int, int))                                                          \
  X(sendfile, ssize_t (*)(int, int, off_t*, size_t))                                                              \
  X(sendfile64, ssize_t (*)(int, int, off64_t*, size_t))                                                          \
  X(close, int (*)(int))                                                                                          \
  X(close_range, int (*)(unsigned int, unsigned int, int))                                                        \
  X(closefrom, void (*)(int))                                                                                     \
  X(epoll_create1, int (*)(int))                                                                                  \
  X(eventfd, int (*)(unsigned int, int))                                                                          \
  X(fstat, int (*)(int, stat_buf*))                                                                            \
  X(fstat64, int (*)(int, stat64_buf*))                                                                        \
  X(fstatat, int (*)(int, const char*, stat_buf*, int))                                                        \
  X(fstatat64, int (*)(int, const char*, stat64_buf*, int))                                                    \
  X(statx, int (*)(int, const char*, int, unsigned int, struct statx*))                                           \
  X(pread, ssize_t (*)(int, void*, size_t, off_t))                                                                 \
  X(pread64, ssize_t (*)(int, void*, size_t, off64_t))                                                             \
  X(pwrite, ssize_t (*)(int, const void*, size_t, off_t))                                                          \
  X(pwrite64, ssize_t (*)(int, const void*, size_t, off64_t))                                                      \
  X(preadv, ssize_t (*)(int, const iovec*, int, off_t))                                                            \
  X(preadv64, ssize_t (*)(int, const iovec*, int, off64_t))                                                        \
  X(pwritev, ssize_t (*)(int, const iovec*, int, off_t))                                                           \
  X(pwritev64, ssize_t (*)(int, const iovec*, int, off64_t))                                                       \
  X(preadv2, ssize_t (*)(int, const iovec*, int, off_t, int))                                                      \
  X(preadv64v2, ssize_t (*)(int, const iovec*, int, off64_t, int))                                                 \
  X(pwritev2, ssize_t (*)(int, const iovec*, int, off_t, int))                                                     \
  X(pwritev64v2, ssize_t (*)(int, const iovec*, int, off64_t, int))                                                \
  X(__pread_chk, ssize_t (*)(int, void*, size_t, off_t, size_t))                                                   \
  X(__pread64_chk, ssize_t (*)(int, void*, size_t, off64_t, size_t))                                               \
  X(open, int (*)(const char*, int, ...))                                                                          \
  X(open64, int (*)(const char*, int, ...))                                                                        \
  X(openat, int (*)(int, const char*, int, ...))                                                                   \
  X(openat64, int (*)(int, const char*, int, ...))                                                                 \
  X(__open_2, int (*)(const char*, int))                                                                           \
  X(__open64_2, int (*)(const char*, int))                                                                         \
  X(__openat_2, int (*)(int, const char*, int))                                                                    \
  X(__openat64_2, int (*)(int, const char*, int))                                                                  \
  X(creat, int (*)(const char*, mode_t))                                                                           \
  X(creat64, int (*)(const char*, mode_t))                                                                         \
  X(fsync, int (*)(int))                                                                                           \
  X(fdatasync, int (*)(int))                                                                                       \
  X(stat, int (*)(const char*, stat_buf*))                                                                      \
  X(stat64, int (*)(const char*, stat64_buf*))                                                                  \
  X(lstat, int (*)(const char*, stat_buf*))                                                                     \
  X(lstat64, int (*)(const char*, stat64_buf*))                                                                 \
  X(fallocate, int (*)(int, int, off_t, off_t))                                                                    \
  X(fallocate64, int (*)(int, int, off64_t, off64_t))                                                              \
  X(ftruncate, int (*)(int, off_t))                                                                                \
  X(ftruncate64, int (*)(int, off64_t))                                                                            \
  X(truncate, int (*)(const char*, off_t))                                                                         \
  X(truncate64, int (*)(const char*, off64_t))                                                                     \
  X(rename, int (*)(const char*, const char*))                                                                     \
  X(renameat, int (*)(int, const char*, int, const char*))                                                         \
  X(unlink, int (*)(const char*))                                                                                  \
  X(unlinkat, int (*)(int, const char*, int))                                                                      \
  X(copy_file_range, ssize_t (*)(int, off64_t*, int, off64_t*, size_t, unsigned int))                              \
  X(shutdown, int (*)(int, int))                                                                                  \
  X(dup, int (*)(int))                                                                                            \
  X(dup2, int (*)(int, int))                                                                                      \
  X(dup3, int (*)(int, int, int))                                                                                 \
  X(fcntl, int (*)(int, int, ...))                                                                                \
  X(fcntl64, int (*)(int, int, ...))                                                                              \
  X(ioctl, int (*)(int, unsigned long, ...))                                                                      \
  X(setsockopt, int (*)(int, int, int, const void*, socklen_t))                                                   \
  X(getsockopt, int (*)(int, int, int, void*, socklen_t*))                                                        \
  X(pipe, int (*)(int*))                                                                                          \
  X(pipe2, int (*)(int*, int))                                                                                    \
  X(poll, int (*)(pollfd*, nfds_t, int))                                                                          \
  X(ppoll, int (*)(pollfd*, nfds_t, const timespec*, const sigset_t*))                                            \
  X(select, int (*)(int, fd_set*, fd_set*, fd_set*, timeval*))                                                    \
  X(pselect, int (*)(int, fd_set*, fd_set*, fd_set*, const timespec*, const sigset_t*))                           \
  X(epoll_wait, int (*)(int, epoll_event*, int, int))                                                             \
  X(epoll_pwait, int (*)(int, epoll_event*, int, int, const sigset_t*))                                           \
  X(getaddrinfo, int (*)(const char*, const char*, const addrinfo*, addrinfo**))                                  \
  X(getnameinfo, int (*)(const sockaddr*, socklen_t, char*, socklen_t, char*, socklen_t, int))                    \
  X(gethostbyname, hostent* (*)(const char*))                                                                     \
  X(gethostbyname_r, int (*)(const char*, hostent*, char*, size_t, hostent**, int*))                              \
  X(gethostbyname2, hostent* (*)(const char*, int))                                                               \
  X(gethostbyname2_r, int (*)(const char*, int, hostent*, char*, size_t, hostent**, int*))                         \
  X(gethostbyaddr, hostent* (*)(const void*, socklen_t, int))                                                     \
  X(gethostbyaddr_r, int (*)(const void*, socklen_t, int, hostent*, char*, size_t, hostent**, int*))               \
  X(__read_chk, ssize_t (*)(int, void*, size_t, size_t))                                                          \
  X(__recv_chk, ssize_t (*)(int, void*, size_t, size_t, int))                                                     \
  X(__recvfrom_chk, ssize_t (*)(int, void*, size_t, size_t, int, sockaddr*, socklen_t*))                          \
  X(__poll_chk, int (*)(pollfd*, nfds_t, int, size_t))                                                            \
  X(__ppoll_chk, int (*)(pollfd*, nfds_t, const timespec*, const sigset_t*, size_t))                              \
  X(fgets, char* (*)(char*, int, FILE*))                                                                          \
  X(fgets_unlocked, char* (*)(char*, int, FILE*))                                                                 \
  X(__fgets_chk, char* (*)(char*, size_t, int, FILE*))                                                            \
  X(__fgets_unlocked_chk, char* (*)(char*, size_t, int, FILE*))                                                   \
  X(fgetc, int (*)(FILE*))                                                                                        \
  X(getc, int (*)(FILE*))                                                                                         \
  X(getchar, int (*)())                                                                                           \
  X(fgetc_unlocked, int (*)(FILE*))                                                                               \
  X(getc_unlocked, int (*)(FILE*))                                                                                \
  X(getchar_unlocked, int (*)())                                                                                  \
  X(__uflow, int (*)(FILE*))                                                                                      \
  X(__underflow, int (*)(FILE*))                                                                                  \
  X(fread, size_t (*)(void*, size_t, size_t, FILE*))                                                              \
  X(fread_unlocked, size_t (*)(void*, size_t, size_t, FILE*))                                                     \
  X(__fread_chk, size_t (*)(void*, size_t, size_t, size_t, FILE*))                                                \
  X(__fread_unlocked_chk, size_t (*)(void*, size_t, size_t, size_t, FILE*))                                       \
  X(getline, ssize_t (*)(char**, size_t*, FILE*))                                                                 \
  X(getdelim, ssize_t (*)(char**, size_t*, int, FILE*))                                                           \
  X(__getdelim, ssize_t (*)(char**, size_t*, int, FILE*))                                                         \
  X(fscanf, int (*)(FILE*, const char*, ...))                                                                     \
  X(scanf, int (*)(const char*, ...))                                                                             \
  X(vfscanf, int (*)(FILE*, const char*, va_list))                                                                \
  X(vscanf, int (*)(const char*, va_list))                                                                        \
  X(__isoc99_fscanf, int (*)(FILE*, const char*, ...))                                                            \
  X(__isoc99_scanf, int (*)(const char*, ...))                                                                    \
  X(__isoc99_vfscanf, int (*)(FILE*, const char*, va_list))                                                       \
  X(__isoc99_vscanf, int (*)(const char*, va_list))                                                               \
  X(fwrite, size_t (*)(const void*, size_t, size_t, FILE*))                                                       \
  X(fwrite_unlocked, size_t (*)(const void*, size_t, size_t, FILE*))                                              \
  X(fputs, int (*)(const char*, FILE*))                                                                           \
  X(fputs_unlocked, int (*)(const char*, FILE*))                                                                  \
  X(puts, int (*)(const char*))                                                                                   \
  X(fputc, int (*)(int, FILE*))                                                                                   \
  X(putc, int (*)(int, FILE*))                                                                                    \
  X(putchar, int (*)(int))                                                                                        \
  X(fputc_unlocked, int (*)(int, FILE*))                                                                          \
  X(putc_unlocked, int (*)(int, FILE*))                                                                           \
  X(putchar_unlocked, int (*)(int))                                                                               \
  X(__overflow, int (*)(FILE*, int))                                                                              \
  X(fprintf, int (*)(FILE*, const char*, ...))                                                                    \
  X(printf, int (*)(const char*, ...))                                                                            \
  X(vfprintf, int (*)(FILE*, const char*, va_list))                                                               \
  X(vprintf, int (*)(const char*, va_list))                                                                       \
  X(__fprintf_chk, int (*)(FILE*, int, const char*, ...))                                                         \
  X(__printf_chk, int (*)(int, const char*, ...))                                                                 \
  X(__vfprintf_chk, int (*)(FILE*, int, const char*, va_list))                                                    \
  X(__vprintf_chk, int (*)(int, const char*, va_list))                                                            \
  X(dprintf, int (*)(int, const char*, ...))                                                                      \
  X(vdprintf, int (*)(int, const char*, va_list))                                                                 \
  X(__dprintf_chk, int (*)(int, int, const char*, ...))                                                           \
  X(__vdprintf_chk, int (*)(int, int, const char*, va_list))                                                      \
  X(fflush, int (*)(FILE*))                                                                                       \
  X(fflush_unlocked, int (*)(FILE*))                                                                              \
  X(fclose, int (*)(FILE*))                                                                                       \
  X(pthread_create, int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*))                         \
  X(pthread_join, int (*)(pthread_t, void**))                                                                     \
  X(pthread_tryjoin_np, int (*)(pthread_t, void**))                                                               \
  X(pthread_timedjoin_np, int (*)(pthread_t, void**, const timespec*))                                            \
  X(pthread_clockjoin_np, int (*)(pthread_t, void**, clockid_t, const timespec*))                                 \
  X(pthread_detach, int (*)(pthread_t))                                                                           \
  X(pthread_exit, void (*)(void*))                                                                                \
  X(pthread_self, pthread_t (*)())                                                                                \
  X(pthread_setname_np, int (*)(pthread_t, const char*))                                                          \
  X(pthread_getname_np, int (*)(pthread_t, char*, size_t))                                                        \
  X(pthread_getattr_np, int (*)(pthread_t, pthread_attr_t*))                                                      \
  X(pthread_kill, int (*)(pthread_t, int))                                                                        \
  X(gettid, pid_t (*)())                                                                                          \
  X(tgkill, int (*)(pid_t, pid_t, int))                                                                           \
  X(syscall, long (*)(long, ...))                                                                                 \
  X(pthread_cancel, int (*)(pthread_t))                                                                           \
  X(pthread_setcancelstate, int (*)(int, int*))                                                                   \
  X(pthread_setcanceltype, int (*)(int, int*))                                                                    \
  X(pthread_testcancel, void (*)())                                                                               \
  X(__pthread_register_cancel, void (*)(__pthread_unwind_buf_t*))                                                 \
  X(__pthread_unregister_cancel, void (*)(__pthread_unwind_buf_t*))                                               \
  X(__pthread_unwind_next, void (*)(__pthread_unwind_buf_t*))                                                     \
  X(pthread_key_create, int (*)(pthread_key_t*, void (*)(void*)))                                                 \
  X(pthread_key_delete, int (*)(pthread_key_t))                                                                   \
  X(pthread_getspecific, void* (*)(pthread_key_t))                                                                \
  X(pthread_setspecific, int (*)(pthread_key_t, const void*))                                                     \
  X(sched_yield, int (*)())                                                                                       \
  X(pthread_mutex_lock, int (*)(pthread_mutex_t*))                                                                \
  X(pthread_mutex_trylock, int (*)(pthread_mutex_t*))                                                             \
  X(pthread_mutex_timedlock, int (*)(pthread_mutex_t*, const timespec*))                                          \
  X(pthread_mutex_clocklock, int (*)(pthread_mutex_t*, clockid_t, const timespec*))                               \
  X(pthread_mutex_unlock, int (*)(pthread_mutex_t*))                                                              \
  X(pthread_mutex_destroy, int (*)(pthread_mutex_t*))                                                             \
  X(pthread_cond_wait, int (*)(pthread_cond_t*, pthread_mutex_t*))                                                \
  X(pthread_cond_timedwait, int (*)(pthread_cond_t*, pthread_mutex_t*, const timespec*))                          \
  X(pthread_cond_clockwait, int (*)(pthread_cond_t*, pthread_mutex_t*, clockid_t, const timespec*))               \
  X(pthread_cond_signal, int (*)(pthread_cond_t*))                                                                \
  X(pthread_cond_broadcast, int (*)(pthread_cond_t*))                                                             \
  X(pthread_rwlock_rdlock, int (*)(pthread_rwlock_t*))                                                            \
  X(pthread_rwlock_tryrdlock, int (*)(pthread_rwlock_t*))                                                         \
  X(pthread_rwlock_timedrdlock, int (*)(pthread_rwlock_t*, const timespec*))                                      \
  X(pthread_rwlock_clockrdlock, int (*)(pthread_rwlock_t*, clockid_t, const timespec*))                           \
  X(pthread_rwlock_wrlock, int (*)(pthread_rwlock_t*))                                                            \
  X(pthread_rwlock_trywrlock, int (*)(pthread_rwlock_t*))                                                         \
  X(pthread_rwlock_timedwrlock, int (*)(pthread_rwlock_t*, const timespec*))                                      \
  X(pthread_rwlock_clockwrlock, int (*)(pthread_rwlock_t*, clockid_t, const timespec*))                           \
  X(pthread_rwlock_unlock, int (*)(pthread_rwlock_t*))                                                            \
  X(pthread_barrier_init, int (*)(pthread_barrier_t*, const pthread_barrierattr_t*, unsigned))                    \
  X(pthread_barrier_destroy, int (*)(pthread_barrier_t*))                                                         \
  X(pthread_barrier_wait, int (*)(pthread_barrier_t*))                                                            \
  X(pthread_spin_lock, int (*)(pthread_spinlock_t*))                                                              \
  X(pthread_spin_trylock, int (*)(pthread_spinlock_t*))                                                           \
  X(pthread_spin_unlock, int (*)(pthread_spinlock_t*))                                                            \
  X(pthread_once, int (*)(pthread_once_t*, void (*)()))                                                           \
  X(sem_wait, int (*)(sem_t*))                                                                                    \
  X(sem_timedwait, int (*)(sem_t*, const timespec*))                                                              \
  X(sem_clockwait, int (*)(sem_t*, clockid_t, const timespec*))                                                   \
  X(sem_trywait, int (*)(sem_t*))                                                                                 \
  X(sem_post, int (*)(sem_t*))                                                                                    \
  X(vfork, pid_t (*)())                                                                                           \
  X(sigaction, int (*)(int, const struct sigaction*, struct sigaction*))                                          \
  X(signal, sighandler_t (*)(int, sighandler_t))                                                                  \
  X(bsd_signal, sighandler_t (*)(int, sighandler_t))                                                              \
  X(ssignal, sighandler_t (*)(int, sighandler_t))                                                                 \
  X(sysv_signal, sighandler_t (*)(int, sighandler_t))                                                             \
  X(__sysv_signal, sighandler_t (*)(int, sighandler_t))                                                           \
  X(siginterrupt, int (*)(int, int))                                                                              \
  X(sigignore, int (*)(int))                                                                                      \
  X(sigset, sighandler_t (*)(int, sighandler_t))                                                                  \
  X(sigprocmask, int (*)(int, const sigset_t*, sigset_t*))                                                        \
  X(pthread_sigmask, int (*)(int, const sigset_t*, sigset_t*))                                                    \
  X(sighold, int (*)(int))                                                                                        \
  X(sigrelse, int (*)(int))                                                                                       \
  X(sigpending, int (*)(sigset_t*))                                                                               \
  X(sigsuspend, int (*)(const sigset_t*))                                                                         \
  X(pause, int (*)())                                                                                             \
  X(sigpause, int (*)(int))                                                                                       \
  X(__sigpause, int (*)(int, int))                                                                                \
  X(__xpg_sigpause, int (*)(int))                                                                                 \
  X(raise, int (*)(int))                                                                                          \
  X(sigwait, int (*)(const sigset_t*, int*))                                                                      \
  X(sigwaitinfo, int (*)(const sigset_t*, siginfo_t*))                                                            \
  X(sigtimedwait, int (*)(const sigset_t*, siginfo_t*, const timespec*))                                          \
  X(wait, pid_t (*)(int*))                                                                                        \
  X(waitpid, pid_t (*)(pid_t, int*, int))                                                                         \
  X(wait3, pid_t (*)(int*, int, rusage*))                                                                         \
  X(wait4, pid_t (*)(pid_t, int*, int, rusage*))                                                                  \
  X(waitid, int (*)(idtype_t, id_t, siginfo_t*, int))                                                             \
  X(system, int (*)(const char*))                                                                                 \
  X(popen, FILE* (*)(const char*, const char*))                                                                   \
  X(pclose, int (*)(FILE*))                                                                                       \
  X(flock, int (*)(int, int))                                                                                     \
  X(lockf, int (*)(int, int, off_t))                                                                              \
  X(lockf64, int (*)(int, int, off64_t))                                                                          \
  X(msgrcv, ssize_t (*)(int, void*, size_t, long, int))                                                           \
  X(msgsnd, int (*)(int, const void*, size_t, int))                                                               \
  X(semop, int (*)(int, sembuf*, size_t))                                                                         \
  X(semtimedop, int (*)(int, sembuf*, size_t, const timespec*))

// fn::NAME is the type of a pointer to libc's NAME.
namespace fn {
#define GROVE_REAL_TYPE(name, type) using name = type;
GROVE_LIBC_FUNCTIONS(GROVE_REAL_TYPE)
#undef GROVE_REAL_TYPE
}  // namespace fn

// real_functions holds libc's definition of every hooked symbol.
struct real_functions {
#define GROVE_REAL_MEMBER(name, type) std::atomic<fn::name> name##_{nullptr};
  GROVE_LIBC_FUNCTIONS(GROVE_REAL_MEMBER)
#undef GROVE_REAL_MEMBER
};
extern real_functions real_fns;

// lookup finds libc's `name`, ending the process with a message if there is none.
void* lookup(const char* name) noexcept;

// real_of returns libc's definition of a hooked symbol, looking it up on first use.
#define GROVE_REAL_ACCESSOR(name, type)                                                     \
  [[gnu::always_inline]] inline fn::name real_##name() noexcept {                          \
    fn::name f = real_fns.name##_.load(std::memory_order_relaxed);                         \
    if (f == nullptr) [[unlikely]] {                                                       \
      f = reinterpret_cast<fn::name>(lookup(#name));                                       \
      real_fns.name##_.store(f, std::memory_order_relaxed);                                \
    }                                                                                      \
    return f;                                                                              \
  }
GROVE_LIBC_FUNCTIONS(GROVE_REAL_ACCESSOR)
#undef GROVE_REAL_ACCESSOR

// os_tid is the calling OS thread's id from the kernel: gettid() is hooked and
// gives a green thread an id of its own (threads.cpp).
inline pid_t os_tid() noexcept { return static_cast<pid_t>(real_syscall()(SYS_gettid)); }

// resolve_all looks every symbol up now (run by a constructor).
void resolve_all() noexcept;

}  // namespace grove::hooks
