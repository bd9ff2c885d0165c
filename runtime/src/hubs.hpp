// hubs.hpp — what the hubs of one process know of each other.
//
// Each OS thread that uses grove has its own hub, and the hubs share nothing
// but what is here: a registry of the live ones (for whole-process views and
// for close), and, per descriptor, which hubs have watched it. A descriptor
// may be waited on from any hub (several threads accepting on one listening
// socket); closing it must wake its waiters on every hub with EBADF before the
// number can be reused, so close tells the other hubs that watched it and, in
// a task, waits (parked, its hub running on) until each has forgotten it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace grove::detail {

struct hub_state;

// Hubs get slots 0..overflow_slot-1 for the per-descriptor bits; the rest share
// the overflow bit (a close asks all of them).
constexpr int overflow_slot = 63;

void register_hub(hub_state& h);
void unregister_hub(hub_state& h) noexcept;

// note_fd_watched records that h watches fd; note_fd_forgotten that it no longer does.
void note_fd_watched(hub_state& h, int fd) noexcept;
void note_fd_forgotten(hub_state& h, int fd) noexcept;

// forget_fd_on_other_hubs has every other hub that watched fd wake its waiters
// with EBADF and drop its watchers, and waits for them: in a task, parked on its
// hub; on a thread with no hub, blocked. (A hub's own greenlet does not wait.)
void forget_fd_on_other_hubs(int fd) noexcept;

}  // namespace grove::detail
