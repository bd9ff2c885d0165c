// thread_pool.cpp — each hub's pool of OS threads for run_in_thread.
//
// Workers share `pool_state` with the hub through a shared_ptr: a worker that
// finishes after its hub's thread has exited finds `hub == nullptr` and drops
// the result instead of posting to a dead hub. So the hub never waits for its
// workers at thread exit (a call blocked forever cannot hang it); they are
// detached and end when their current call does.
//
// Threads come and go with the work: run_job starts one only when a call finds
// no idle thread to take it (up to the pool's size), and a thread that has
// waited idle_timeout for work exits, so an idle pool holds no OS thread. The
// check for work and the decision to exit happen under the lock, and run_job
// counts only threads that are waiting under it as idle: a call queued while a
// thread times out is seen by that thread (or gets a thread of its own), never
// left in the queue, and each queued call is popped by exactly one worker.
#include <grove/detail/os_threads.hpp>
#include <grove/thread_pool.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <new>
#include <string>
#include <thread>

#include <pthread.h>
#include <unistd.h>

#include "hub_state.hpp"
#include "settings.hpp"

namespace grove::detail {

struct pool_state {
  std::mutex lock;
  std::condition_variable work;
  std::deque<std::shared_ptr<thread_job>> queue;  // guarded by lock
  std::size_t size = 0;                           // guarded by lock
  std::size_t threads = 0;                        // guarded by lock
  std::size_t idle = 0;                           // guarded by lock
  std::chrono::nanoseconds idle_timeout{};        // guarded by lock
  hub_state* hub = nullptr;                       // guarded by lock; null once the hub is gone
};

namespace {

constexpr std::size_t max_threads = 1024;
constexpr std::chrono::nanoseconds default_idle_timeout = std::chrono::seconds(5);

std::size_t configured_size() {
  static const std::size_t size = [] {
    const char* v = std::getenv("GROVE_THREADPOOL_SIZE");
    if (v == nullptr || *v == '\0') return std::size_t{10};
    char* end = nullptr;
    const unsigned long n = std::strtoul(v, &end, 10);
    if (*end != '\0' || v[0] == '-' || n == 0 || n > max_threads) {
      bad_setting("GROVE_THREADPOOL_SIZE", v, "not a thread count between 1 and 1024");
    }
    return static_cast<std::size_t>(n);
  }();
  return size;
}

void worker(std::shared_ptr<pool_state> pool) {
  std::unique_lock<std::mutex> lock(pool->lock);
  for (;;) {
    ++pool->idle;
    // The idle time is read again at every wake-up, so a new idle timeout
    // (set_thread_pool_idle_timeout notifies) applies to threads already idle.
    const auto since = std::chrono::steady_clock::now();
    bool woken;
    while (!(woken = pool->hub == nullptr || !pool->queue.empty() || pool->threads > pool->size) &&
           std::chrono::steady_clock::now() < since + pool->idle_timeout) {
      pool->work.wait_until(lock, since + pool->idle_timeout);
    }
    --pool->idle;
    // Exit when the hub is gone, when the pool shrank below us, or when we
    // waited idle_timeout with nothing to do.
    if (pool->hub == nullptr || (pool->queue.empty() && (pool->threads > pool->size || !woken))) {
      --pool->threads;
      return;
    }
    std::shared_ptr<thread_job> job = std::move(pool->queue.front());
    pool->queue.pop_front();
    lock.unlock();
    job->run();
    lock.lock();
    if (pool->hub != nullptr) {
      hub_state* h = pool->hub;
      // The job (and any exception it holds) must die on the hub's thread,
      // where its result was used: hand our reference over with the callback.
      h->post([h, job = std::move(job)] {
        job->done = true;
        --h->jobs_in_flight;
        if (job->w != nullptr) wake(*job->w);
      });
    }
  }
}

pool_state& pool_of(hub_state& h) {
  if (!h.pool) {
    h.pool = std::make_shared<pool_state>();
    h.pool->size = configured_size();
    h.pool->idle_timeout = default_idle_timeout;
    h.pool->hub = &h;
  }
  return *h.pool;
}

// In a child of fork, only the forking thread lives on. Its hub's loop must
// stop sharing the parent's epoll set (ev_loop_fork), and its pool's threads are
// gone: the child starts a fresh pool on its next run_in_thread. The old pool
// state is leaked, not destroyed: a parent's worker may have held its mutex at
// the fork. Calls that were in flight cannot finish; with jobs_in_flight back to
// zero their tasks get loop_exit when nothing else can wake them, never a hang.
void after_fork_in_child() noexcept {
  if (tls_hub == nullptr) return;
  hub_state& h = state_of(*tls_hub);
  ev_loop_fork(h.loop);
  h.pid = ::getpid();
  h.stale_clock = true;  // the parent may have waited (in wait()) since libev last read the clock
  if (h.pool) {
    // Kept reachable from static storage (so leak checkers stay quiet) and never
    // destroyed: destroying a condition variable that the parent's idle workers
    // waited on would wait for those waiters forever.
    alignas(std::shared_ptr<pool_state>) static unsigned char graveyard[8][sizeof(std::shared_ptr<pool_state>)];
    static std::size_t buried = 0;
    void* slot = buried < 8 ? graveyard[buried++] : ::operator new(sizeof(std::shared_ptr<pool_state>));
    new (slot) std::shared_ptr<pool_state>(std::move(h.pool));
  }
  h.jobs_in_flight = 0;
  // Another thread may have been posting at the fork: then its lock stays
  // locked here, and the queue may be half-written; both start anew.
  if (h.post_lock.try_lock()) {
    h.post_lock.unlock();
  } else {
    new (&h.post_lock) std::mutex;
    new (&h.posts) std::vector<std::function<void()>>;
    h.has_posts.store(false, std::memory_order_relaxed);
  }
  h.restart_monitor_after_fork();
}

[[maybe_unused]] const int fork_handler_registered = ::pthread_atfork(nullptr, nullptr, after_fork_in_child);

}  // namespace

void close_pool(hub_state& h) noexcept {
  if (!h.pool) return;
  {
    std::lock_guard<std::mutex> hold(h.pool->lock);
    h.pool->hub = nullptr;
    h.pool->queue.clear();
  }
  h.pool->work.notify_all();
  h.pool.reset();
}

namespace {

// submit queues job on h's pool, starting a thread for it if none is idle.
// Throws (std::system_error, std::bad_alloc) only with the job not queued: a
// thread that cannot be started is no failure while the pool has others.
void submit(hub_state& h, const std::shared_ptr<thread_job>& job) {
  pool_state& pool = pool_of(h);
  {
    std::lock_guard<std::mutex> hold(pool.lock);
    if (pool.idle < pool.queue.size() + 1 && pool.threads < pool.size) {
      ++pool.threads;
      try {
        const helper_thread_scope own;  // a worker is an OS thread, whatever pthread_create has become
        std::thread(worker, h.pool).detach();
      } catch (...) {
        --pool.threads;
        if (pool.threads == 0) throw;
      }
    }
    pool.queue.push_back(job);
  }
  pool.work.notify_one();
  ++h.jobs_in_flight;
}

}  // namespace

void run_job(std::shared_ptr<thread_job> job) {
  hub_state& h = state_of(current_hub());
  if (h.ts->current == h.greenlet) {
    throw error("grove::run_in_thread: called in the hub itself (from a callback the hub runs); call it from a task");
  }
  submit(h, job);
  // Wait for the worker's report. Leaving early (kill, timeout) abandons the job.
  waiter w;
  w.what = "run_in_thread";
  w.on = job.get();
  job->w = &w;
  struct abandon {
    thread_job& job;
    ~abandon() { job.w = nullptr; }
  } on_exit{*job};
  while (!job->done) park(w);
}

void run_job_to_end(const std::shared_ptr<thread_job>& job) {
  hub_state& h = state_of(current_hub());
  submit(h, job);
  waiter w;
  w.what = "a call on the thread pool";
  w.on = job.get();
  job->w = &w;
  std::exception_ptr deferred;
  while (!job->done) {
    try {
      park(w);
    } catch (...) {
      if (!deferred) deferred = std::current_exception();
    }
  }
  job->w = nullptr;
  if (deferred) interrupt(h.ts->current, std::move(deferred));
}

}  // namespace grove::detail

namespace grove {

void set_thread_pool_size(std::size_t threads) {
  if (threads == 0 || threads > detail::max_threads) {
    throw error("grove::set_thread_pool_size(" + std::to_string(threads) + "): a pool has between 1 and 1024 threads");
  }
  detail::pool_state& pool = detail::pool_of(detail::state_of(detail::current_hub()));
  {
    std::lock_guard<std::mutex> hold(pool.lock);
    pool.size = threads;
  }
  pool.work.notify_all();  // idle threads beyond the new size exit
}

void set_thread_pool_idle_timeout(std::chrono::nanoseconds idle) {
  if (idle <= std::chrono::nanoseconds::zero()) {
    throw error("grove::set_thread_pool_idle_timeout: the idle time must be positive");
  }
  detail::pool_state& pool = detail::pool_of(detail::state_of(detail::current_hub()));
  {
    std::lock_guard<std::mutex> hold(pool.lock);
    pool.idle_timeout = idle;
  }
  pool.work.notify_all();  // idle threads measure their idle time against the new timeout
}

std::size_t thread_pool_threads() {
  detail::pool_state& pool = detail::pool_of(detail::state_of(detail::current_hub()));
  std::lock_guard<std::mutex> hold(pool.lock);
  return pool.threads;
}

std::size_t thread_pool_size() {
  detail::pool_state& pool = detail::pool_of(detail::state_of(detail::current_hub()));
  std::lock_guard<std::mutex> hold(pool.lock);
  return pool.size;
}

}  // namespace grove
