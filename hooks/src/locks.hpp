// locks.hpp — what the descriptor hooks need from the lock hooks (locks.cpp).
#pragma once

#include "libc.hpp"

namespace grove::hooks {

// record_lock_in_task is fcntl(fd, cmd, lock) for cmd F_SETLKW or
// F_OFD_SETLKW in a task, through `real` (libc's fcntl or fcntl64): the lock
// is tried without waiting (F_SETLK, F_OFD_SETLK) and, when another holds it,
// waited for on the hub's thread pool. A cancellation point, as natively.
int record_lock_in_task(fn::fcntl real, int fd, int cmd, void* lock);

}  // namespace grove::hooks
