// files.hpp — how the hooks make a call on a regular file or block device:
// through grove::file (which tries it without waiting, then hands it off the
// hub), then as any hooked call that may have waited ends.
#pragma once

#include <cerrno>
#include <grove/file.hpp>

#include "context.hpp"
#include "signals.hpp"

namespace grove::hooks {

// file_call runs call (a grove::file function, in a task), then the handlers
// of signals that came while it waited run, on the task's stack, before it
// returns (natively a disk wait is not interrupted: the call completes, and
// the handlers run as it returns).
//
// A call that did not wait is not a scheduling point: grove's own code reads
// files through these hooks too (the resolver's /etc/hosts, the stack pool's
// /proc file), and must not find another task run in the middle of it.
template <class Call>
auto file_call(Call call) -> decltype(call()) {
  const auto r = call();
  const int err = errno;
  signals::after_wait(on_handler::resume);
  errno = err;
  return r;
}

}  // namespace grove::hooks
