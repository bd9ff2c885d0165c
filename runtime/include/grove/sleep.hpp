// grove/sleep.hpp — giving way: sleep and yield.
#pragma once

#include <chrono>

namespace grove {

// sleep blocks the current task (not the thread) for at least d; the hub runs
// other tasks meanwhile. sleep(0) or less is yield(). Raises a pending kill or
// timeout at this blocking point.
void sleep(std::chrono::nanoseconds d);

// yield lets every other task that is ready run once, then returns: the current
// task goes to the back of the ready queue. No syscall, no allocation. Raises a
// pending kill or timeout at this blocking point.
void yield();

}  // namespace grove
