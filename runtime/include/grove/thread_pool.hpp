// grove/thread_pool.hpp — running a blocking call on a real thread while the
// hub runs on: gevent's threadpool.
//
//   std::string body = grove::run_in_thread(read_whole_file, path);  // the task waits, other tasks run
//
// Each hub has its own pool of OS threads, started as calls need them (a call
// that finds no idle thread starts one) up to its size: GROVE_THREADPOOL_SIZE
// (1 to 1024; default 10), or set_thread_pool_size. A thread idle for 5 seconds
// (set_thread_pool_idle_timeout) exits, so an idle pool holds no OS thread and
// the number of threads follows the calls that overlap. A bad
// GROVE_THREADPOOL_SIZE prints a message on stderr and exits with status 2.
#pragma once

#include <chrono>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include <grove/detail/wait.hpp>
#include <grove/task.hpp>

namespace grove {

namespace detail {

// thread_job is one call handed to the pool.
struct thread_job {
  thread_job() = default;
  thread_job(const thread_job&) = delete;
  thread_job& operator=(const thread_job&) = delete;
  virtual ~thread_job() = default;
  // run makes the call, on a worker thread, catching what it throws.
  virtual void run() noexcept = 0;
  std::exception_ptr error;  // written by the worker before it reports back
  bool done = false;         // hub thread only: the worker has reported back
  waiter* w = nullptr;       // hub thread only: who waits; null once abandoned
};

template <class R, class Fn>
struct thread_job_of final : thread_job {
  explicit thread_job_of(Fn&& f) : fn(std::move(f)) {}
  void run() noexcept override {
    try {
      if constexpr (std::is_void_v<R>) {
        std::invoke(fn);
      } else {
        value.emplace(std::invoke(fn));
      }
    } catch (...) {
      error = std::current_exception();
    }
  }
  Fn fn;
  std::conditional_t<std::is_void_v<R>, bool, std::optional<R>> value{};
};

// run_job hands job to this thread's hub's pool and parks until it is done.
// If the waiting task is killed (or a timeout scope fires) meanwhile, the job is
// abandoned: it runs to its end on the worker and its result is dropped.
void run_job(std::shared_ptr<thread_job> job);

// run_job_to_end is run_job for a job that borrows the caller's memory (a
// file call's buffer): it parks until the job is done even if the task is
// interrupted meanwhile, and then makes the first interrupt pending again, to
// be raised at the task's next blocking call. Throws std::system_error (no
// thread could be started) or std::bad_alloc before the job is queued.
void run_job_to_end(const std::shared_ptr<thread_job>& job);

}  // namespace detail

// run_in_thread calls f(args...) on a thread of the current hub's pool and
// returns its result, or rethrows its exception. The calling task waits; the
// hub and its other tasks run meanwhile. Arguments are copied (or moved) into
// the call. If the task is killed or a timeout scope fires while it waits, the
// call is abandoned (it cannot be stopped: it runs to its end on the worker,
// and its result is dropped safely). Must not be called from the hub itself.
template <class F, class... Args>
auto run_in_thread(F&& f, Args&&... args) {
  auto call = detail::make_call(std::forward<F>(f), std::forward<Args>(args)...);
  using Fn = decltype(call);
  using R = std::invoke_result_t<Fn&>;
  auto job = std::make_shared<detail::thread_job_of<R, Fn>>(std::move(call));
  detail::run_job(job);
  if (job->error) std::rethrow_exception(job->error);
  if constexpr (!std::is_void_v<R>) return std::move(*job->value);
}

// set_thread_pool_size sets how many threads the current hub's pool may run at
// once (1 to 1024; grove::error otherwise). Shrinking lets extra idle threads exit.
void set_thread_pool_size(std::size_t threads);

// thread_pool_size is the current hub's pool size.
std::size_t thread_pool_size();

// set_thread_pool_idle_timeout sets how long a thread of the current hub's pool
// waits for work before it exits (5 s by default; grove::error unless positive),
// threads already idle included: one idle longer than the new time exits.
void set_thread_pool_idle_timeout(std::chrono::nanoseconds idle);

// thread_pool_threads is how many OS threads the current hub's pool runs now
// (busy or idle); 0 before its first call and after its threads have idled out.
std::size_t thread_pool_threads();

}  // namespace grove
