// grove/detail/file_cache.hpp — for code that reads files through a call grove
// cannot replace (glibc stdio's internal __read, used by the hooks).
#pragma once

#include <sys/types.h>

#include <cstddef>

namespace grove::detail {

// warm_file_range makes the page cache hold bytes [offset, offset + n) of
// fd's file, so that a plain read of that range made next does not wait for
// the disk. In a task, what is cached is found without waiting
// (preadv2 with RWF_NOWAIT into a scratch buffer no one reads) and the rest is
// read off the hub, as grove::file::pread reads it, while the task is parked.
// It returns at once outside a task, for descriptors whose reads never wait
// for a disk (/proc, tmpfs...), at the end of the file and on an error (the
// plain read then reports it). errno is kept.
void warm_file_range(int fd, off_t offset, std::size_t n) noexcept;

}  // namespace grove::detail
