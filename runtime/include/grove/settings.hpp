// grove/settings.hpp — checking grove's GROVE_* settings up front.
//
// grove reads each setting from the environment when it first needs it:
//   GROVE_STACK_SIZE, GROVE_STACK_MODE     (grove/stack.hpp)
//   GROVE_MONITOR_MS, GROVE_DUMP_ON_SIGNAL, GROVE_BACKTRACES (grove/hub.hpp)
//   GROVE_THREADPOOL_SIZE                  (grove/thread_pool.hpp)
// A bad value prints "grove: NAME="VALUE": why" on stderr and exits with
// status 2, never falls back to a default.
#pragma once

namespace grove {

// check_settings reads every setting now, so a bad one stops the program at
// start rather than at first use. Creates the calling thread's hub. Exits with
// status 2 (after a message on stderr) if a setting is bad.
void check_settings();

}  // namespace grove
