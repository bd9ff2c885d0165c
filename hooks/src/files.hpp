// files.hpp — how the hooks make a call on a regular file or block device:
// through grove::file (which tries it without waiting, then hands it off the
// hub), then as any hooked call that may have waited ends.
#pragma once

#include <cerrno>
#include <exception>

#include <grove/detail/wait.hpp>
#include <grove/file.hpp>

#include "context.hpp"
#include "signals.hpp"

namespace grove::hooks {

// file_call runs call (a grove::file function, in a task), then:
//  - the handlers of signals that came while it waited run, on the task's
//    stack, before it returns (natively a disk wait is not interrupted: the
//    call completes, and the handlers run as it returns);
//  - a scheduling point: a task that reads a cached file in a loop never
//    waits, so once the hub's slice is used up it gives way (give_way_if_due),
//    as the kernel would preempt a thread. An interrupt that arrives then is
//    kept for the task's next blocking call: the call's result is not lost.
template <class Call>
auto file_call(Call call) -> decltype(call()) {
  const auto r = call();
  const int err = errno;
  signals::after_wait(on_handler::resume);
  try {
    give_way_if_due();
  } catch (...) {
    detail::interrupt(detail::tls_hub->ts->current, std::current_exception());
  }
  errno = err;
  return r;
}

}  // namespace grove::hooks
