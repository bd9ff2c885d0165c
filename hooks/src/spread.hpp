// spread.hpp — green threads over several hubs (GROVE_HUBS, grove-run --hubs).
//
// With GROVE_HUBS=N, green threads run on N hubs, each a libev loop on its own
// OS thread: the first is the hub of the thread that creates the first green
// thread (main's, under grove-run), the others are started with the real
// pthread_create when the first green thread is made. The default (and
// GROVE_HUBS=cpus) is the number of CPUs in the process's affinity mask;
// GROVE_HUBS=1 keeps everything on one OS thread.
//
// Placement, never migration. pthread_create puts the new green thread on the
// least-loaded hub, and there it stays until it ends. A hub's load is its
// unfinished green threads plus its recent CPU use (the share of the last
// 100 ms or so it ran rather than slept; a hub that computes all the time
// counts as two threads more); the creator's hub wins a tie. A green thread
// that has run never moves to another OS thread: compiled code keeps
// thread-local addresses (errno's, every `thread_local`'s, the thread pointer
// itself) in registers and on its stack across calls, so a thread resumed on
// another OS thread would read and write the first thread's variables — the
// corruption libgo and others hit when they moved running coroutines. So the
// only green threads that may go to another hub are those that have not
// started yet.
//
// Those wait in their hub's queue (queue below) until a hub takes them, one
// at a time (a taken thread is a task on the taker's ready ring, which no
// other hub can take from). Their own hub takes them after its polls. A hub
// running one green thread that never gives way (a CPU-bound loop) would
// hold back every thread placed on it, so an idle hub (one with nothing
// ready, about to sleep) takes the first queued thread of an awake hub that
// has not come round to its queue for 2 ms; a hub asleep in its poll is on its
// way and is never robbed. Placing a thread on a busy hub wakes an idle one
// for this, and the blocking monitor (GROVE_MONITOR_MS) hands a stuck hub's
// queue to the other hubs, for when none is idle. A queued thread's hub is
// written by the hub that takes it, under the queues' lock; pthread_kill and
// pthread_cancel of a thread still queued note the signal or the cancellation
// for its start (if_queued) rather than posting to a hub it may never run on.
//
// Everything between hubs goes through what is already safe across OS
// threads: the parking lot (pthread objects; a waker on another hub wakes a
// waiter through that hub's lock-free hand-over list), hub::post (signals, cancellation), and
// grove::notify_close (a descriptor closed on one hub wakes its waiters on all).
#pragma once

#include <pthread.h>

#include <cstdint>

#include <grove/detail/wait.hpp>
#include <grove/hub.hpp>

namespace grove::hooks::spread {

// hubs is GROVE_HUBS (read once; a bad value prints a message and exits 2).
unsigned hubs();

// place is where a new green thread goes.
struct place {
  int index = 0;  // the hub's number, 0 to hubs()-1
  detail::hub_core* core = nullptr;
  grove::hub* handle = nullptr;
  pthread_t os_thread{};
};

// choose picks the hub for a new green thread made by the calling task, starting
// the other hubs if they have not been, and counts the thread there. False: the
// caller's hub is not one of the group (a hub of a thread the program made
// itself): the thread stays on the caller's hub, uncounted.
bool choose(place& out);

// queued is the node of a green thread that a hub has not started yet.
struct queued {
  queued* next = nullptr;
  int on = -1;  // the hub whose queue holds it; -1 once a hub has taken it, or never queued
};

// set_starter installs the two halves of taking a queued thread: claim runs
// under the queues' lock and records that the thread now lives on `where`;
// start then runs on that hub's greenlet, outside the lock, and starts it.
void set_starter(void (*claim)(queued&, const place& where), void (*start)(queued&)) noexcept;

// queue puts q, a thread choose placed on where (the caller's hub or
// another), on that hub's queue. From then on q's thread may start on any hub at any time.
void queue(queued& q, const place& where) noexcept;

void lock_queues() noexcept;
void unlock_queues() noexcept;

// if_queued runs f under the queues' lock if q is still queued, and tells
// whether it was. When it was not, the hub that took q's thread has written
// its hub fields, and they are final and visible to the caller.
template <class F>
bool if_queued(queued& q, F&& f) {
  lock_queues();
  const bool waiting = q.on >= 0;
  if (waiting) f();
  unlock_queues();
  return waiting;
}

// finished uncounts a green thread of hub `index` that has ended.
void finished(int index) noexcept;

// several tells whether more than one hub runs: then a green thread's waiter may
// be woken from another hub at any time.
bool several() noexcept;

// after_fork_in_child: the child has one thread, the forker, and so one hub;
// the group starts again (the forker's hub first) when it next makes a thread.
void after_fork_in_child() noexcept;

}  // namespace grove::hooks::spread
