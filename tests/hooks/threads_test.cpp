// Green pthreads in link mode: this program links grove::hooks and runs with
// GROVE_THREADS=green (CTest sets it), so pthread_create in main or a task
// makes a green thread, and every pthread object waits in the hooks' parking
// lot. OS threads for the cross-thread cases come from grove's thread pool and
// from helper_thread_scope (grove's own threads stay OS threads).
#include <pthread.h>
#include <semaphore.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <grove/detail/os_threads.hpp>
#include <grove/hub.hpp>
#include <grove/thread_pool.hpp>

#include "hooks_support.hpp"

using namespace grove_test;
using namespace std::chrono_literals;

namespace {

long os_tid() { return ::syscall(SYS_gettid); }

int os_threads_in_process() {
  std::ifstream f("/proc/self/status");
  std::string key;
  while (f >> key) {
    if (key == "Threads:") {
      int n = 0;
      f >> n;
      return n;
    }
  }
  return -1;
}

// hubs is GROVE_HUBS, which CTest sets (1 or 2): the OS threads green threads run on.
int hubs() {
  const char* v = std::getenv("GROVE_HUBS");
  return v != nullptr && *v != '\0' ? std::atoi(v) : 1;
}

// kernel_tid is the calling OS thread's id as the kernel has it (gettid is the
// green thread's own id under the hooks): /proc/thread-self names its task.
long kernel_tid() {
  char buf[64] = {};
  const ssize_t n = ::readlink("/proc/thread-self", buf, sizeof buf - 1);
  if (n <= 0) return -1;
  const char* slash = std::strrchr(buf, '/');
  return slash != nullptr ? std::atol(slash + 1) : -1;
}

// os_thread starts f on a real OS thread, whatever pthread_create has become.
template <class F>
std::thread os_thread(F f) {
  const grove::detail::helper_thread_scope own;
  return std::thread(std::move(f));
}

// spawn_green starts f() as a green thread and returns its id.
template <class F>
pthread_t spawn_green(F& f) {
  grove::hub::current();  // the caller has a hub, so its pthread_create makes a green thread
  pthread_t t{};
  REQUIRE(::pthread_create(
              &t, nullptr, [](void* p) -> void* { return (*static_cast<F*>(p))(); }, &f) == 0);
  return t;
}

timespec in(clockid_t c, std::chrono::nanoseconds d) {
  timespec t{};
  ::clock_gettime(c, &t);
  const long long ns = t.tv_nsec + d.count();
  t.tv_sec += ns / 1'000'000'000;
  t.tv_nsec = ns % 1'000'000'000;
  return t;
}

struct joined {
  void* value = nullptr;
  int rc = -1;
};
joined join(pthread_t t) {
  joined j;
  j.rc = ::pthread_join(t, &j.value);
  return j;
}

}  // namespace

TEST_CASE(
    "pthread_create in main makes green threads: spread over GROVE_HUBS OS threads and no more, a pthread_self and a "
    "gettid each, join returns the value") {
  grove::hub::current();
  const long main_tid = os_tid();
  const int threads_before = os_threads_in_process();
  struct rec {
    long tid = 0;
    long kernel_tid = 0;
    pthread_t self{};
    int threads = 0;
  };
  std::vector<rec> seen(100);
  std::vector<pthread_t> ids(100);
  struct arg {
    rec* r;
    long n;
  };
  std::vector<arg> args(100);
  for (long i = 0; i < 100; ++i) {
    args[i] = {&seen[i], i};
    REQUIRE(::pthread_create(
                &ids[i], nullptr,
                [](void* p) -> void* {
                  auto* a = static_cast<arg*>(p);
                  ::usleep(20'000);  // all 100 are alive at once
                  a->r->tid = os_tid();
                  a->r->kernel_tid = kernel_tid();
                  a->r->self = ::pthread_self();
                  a->r->threads = os_threads_in_process();
                  return reinterpret_cast<void*>(a->n * 2);
                },
                &args[i]) == 0);
  }
  std::set<pthread_t> selves;
  std::set<long> tids;
  std::set<long> os_threads;  // the kernel's: the hubs' threads
  for (long i = 0; i < 100; ++i) {
    const joined j = join(ids[i]);
    CHECK(j.rc == 0);
    CHECK(reinterpret_cast<long>(j.value) == i * 2);
    CHECK(seen[i].tid != main_tid);  // an id of its own, though on main's OS thread (the count below)
    tids.insert(seen[i].tid);
    CHECK(::pthread_equal(seen[i].self, ids[i]));
    // The other hubs' threads start with the first green thread, and no others
    // (but for one a sanitizer runtime may start beside the first new thread).
    CHECK(seen[i].threads <= threads_before + hubs());
    CHECK(seen[i].threads == seen[0].threads);
    selves.insert(seen[i].self);
    os_threads.insert(seen[i].kernel_tid);
  }
  CHECK(selves.size() == 100);
  CHECK(tids.size() == 100);
  CHECK(selves.count(::pthread_self()) == 0);
  // Placed on the least-loaded hub: all 100 threads at once fill every hub.
  CHECK(os_threads.size() == static_cast<std::size_t>(hubs()));
  CHECK(os_threads.count(kernel_tid()) == 1);
}

TEST_CASE("a green thread blocked on a mutex lets the hub run other tasks, and gets the mutex when it is unlocked") {
  static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  REQUIRE(::pthread_mutex_lock(&m) == 0);
  std::atomic<bool> got{false};
  auto body = [&]() -> void* {
    ::pthread_mutex_lock(&m);
    got = true;
    ::pthread_mutex_unlock(&m);
    return nullptr;
  };
  const pthread_t t = spawn_green(body);
  {
    ticker tick;
    ::usleep(50'000);
    CHECK_FALSE(got.load());
    CHECK(tick.ticks() > 0);
  }
  CHECK(::pthread_mutex_trylock(&m) == EBUSY);
  REQUIRE(::pthread_mutex_unlock(&m) == 0);
  CHECK(join(t).rc == 0);
  CHECK(got.load());
  CHECK(::pthread_mutex_destroy(&m) == 0);
}

TEST_CASE("condition variables: signal wakes one green waiter, broadcast wakes the rest") {
  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t c = PTHREAD_COND_INITIALIZER;
  int tokens = 0;
  int woken = 0;
  auto waiter = [&]() -> void* {
    ::pthread_mutex_lock(&m);
    while (tokens == 0) ::pthread_cond_wait(&c, &m);
    --tokens;
    ++woken;
    ::pthread_mutex_unlock(&m);
    return nullptr;
  };
  std::vector<pthread_t> ts;
  for (int i = 0; i < 5; ++i) ts.push_back(spawn_green(waiter));
  ::usleep(10'000);
  ::pthread_mutex_lock(&m);
  tokens = 1;
  ::pthread_cond_signal(&c);
  ::pthread_mutex_unlock(&m);
  ::usleep(10'000);
  ::pthread_mutex_lock(&m);  // the waiters may run on another hub's OS thread: read under the mutex
  CHECK(woken == 1);
  tokens = 4;
  ::pthread_cond_broadcast(&c);
  ::pthread_mutex_unlock(&m);
  for (pthread_t t : ts) CHECK(join(t).rc == 0);
  CHECK(woken == 5);
}

TEST_CASE("timed waits time out with ETIMEDOUT on the realtime and monotonic clocks while other tasks run") {
  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  pthread_condattr_t ca;
  ::pthread_condattr_init(&ca);
  ::pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_t mono;
  ::pthread_cond_init(&mono, &ca);
  pthread_cond_t real = PTHREAD_COND_INITIALIZER;
  sem_t s;
  ::sem_init(&s, 0, 0);
  ticker tick;
  const auto start = std::chrono::steady_clock::now();
  ::pthread_mutex_lock(&m);
  timespec at = in(CLOCK_MONOTONIC, 30ms);
  CHECK(::pthread_cond_timedwait(&mono, &m, &at) == ETIMEDOUT);
  at = in(CLOCK_REALTIME, 30ms);
  CHECK(::pthread_cond_timedwait(&real, &m, &at) == ETIMEDOUT);
  at = in(CLOCK_MONOTONIC, 30ms);
  CHECK(::pthread_cond_clockwait(&real, &m, CLOCK_MONOTONIC, &at) == ETIMEDOUT);
  ::pthread_mutex_unlock(&m);
  at = in(CLOCK_REALTIME, 30ms);
  errno = 0;
  CHECK(::sem_timedwait(&s, &at) == -1);
  CHECK(errno == ETIMEDOUT);
  at = in(CLOCK_MONOTONIC, 30ms);
  CHECK(::sem_clockwait(&s, CLOCK_MONOTONIC, &at) == -1);
  CHECK(errno == ETIMEDOUT);
  CHECK(std::chrono::steady_clock::now() - start >= 150ms);
  CHECK(tick.ticks() > 0);
  // A malformed time is refused only when the call would have to wait.
  timespec bad{0, 2'000'000'000};
  ::pthread_mutex_lock(&m);
  CHECK(::pthread_cond_timedwait(&real, &m, &bad) == EINVAL);
  ::pthread_mutex_unlock(&m);
  ::pthread_cond_destroy(&mono);
  ::sem_destroy(&s);
}

TEST_CASE("a mutex, condvar and semaphore shared between a green thread and an OS thread lose no wake-up") {
  grove::hub::current();
  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t c = PTHREAD_COND_INITIALIZER;
  int turn = 0;
  constexpr int rounds = 20'000;
  // Ping-pong: the green side (main) waits for 1, the OS thread for 0.
  std::thread os = os_thread([&] {
    for (int i = 0; i < rounds; ++i) {
      ::pthread_mutex_lock(&m);
      while (turn != 0) ::pthread_cond_wait(&c, &m);
      turn = 1;
      ::pthread_cond_signal(&c);
      ::pthread_mutex_unlock(&m);
    }
  });
  ticker tick;
  for (int i = 0; i < rounds; ++i) {
    ::pthread_mutex_lock(&m);
    while (turn != 1) ::pthread_cond_wait(&c, &m);
    turn = 0;
    ::pthread_cond_signal(&c);
    ::pthread_mutex_unlock(&m);
  }
  os.join();
  CHECK(tick.ticks() > 0);

  // Semaphores both ways, and a green thread that posts to an OS thread.
  sem_t to_os, to_green;
  ::sem_init(&to_os, 0, 0);
  ::sem_init(&to_green, 0, 0);
  std::thread echo = os_thread([&] {
    for (int i = 0; i < rounds; ++i) {
      ::sem_wait(&to_os);
      ::sem_post(&to_green);
    }
  });
  auto pinger = [&]() -> void* {
    for (int i = 0; i < rounds; ++i) {
      ::sem_post(&to_os);
      ::sem_wait(&to_green);
    }
    return nullptr;
  };
  const pthread_t green = spawn_green(pinger);
  CHECK(join(green).rc == 0);
  echo.join();
  int v = -1;
  ::sem_getvalue(&to_green, &v);
  CHECK(v == 0);

  // A mutex held by a pool worker: the green thread waits, then gets it.
  std::atomic<bool> held{false};
  auto job = grove::spawn([&] {
    grove::run_in_thread([&] {
      ::pthread_mutex_lock(&m);
      held = true;
      std::this_thread::sleep_for(30ms);
      ::pthread_mutex_unlock(&m);
    });
  });
  while (!held) ::usleep(1000);
  CHECK(::pthread_mutex_lock(&m) == 0);
  ::pthread_mutex_unlock(&m);
  job.get();
  ::sem_destroy(&to_os);
  ::sem_destroy(&to_green);
}

TEST_CASE("a condition variable broadcast from an OS thread wakes every green waiter") {
  grove::hub::current();
  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t c = PTHREAD_COND_INITIALIZER;
  bool go = false;
  int done = 0;
  auto waiter = [&]() -> void* {
    ::pthread_mutex_lock(&m);
    while (!go) ::pthread_cond_wait(&c, &m);
    ++done;
    ::pthread_mutex_unlock(&m);
    return nullptr;
  };
  // The OS thread is grove's own kind (helper_thread_scope), which the hooks do
  // not count as a thread that may wake green ones: say so, as a program
  // posting from its own threads does with a keepalive.
  const grove::hub::keepalive expect_wake(grove::hub::current());
  std::vector<pthread_t> ts;
  for (int i = 0; i < 50; ++i) ts.push_back(spawn_green(waiter));
  ::usleep(10'000);
  std::thread os = os_thread([&] {
    ::pthread_mutex_lock(&m);
    go = true;
    ::pthread_cond_broadcast(&c);
    ::pthread_mutex_unlock(&m);
  });
  for (pthread_t t : ts) CHECK(join(t).rc == 0);
  os.join();
  CHECK(done == 50);
}

TEST_CASE("recursive and error-checking mutexes know each green thread as a different owner") {
  pthread_mutex_t rec = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
  pthread_mutex_t chk = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
  CHECK(::pthread_mutex_lock(&rec) == 0);
  CHECK(::pthread_mutex_lock(&rec) == 0);
  CHECK(::pthread_mutex_trylock(&rec) == 0);
  CHECK(::pthread_mutex_lock(&chk) == 0);
  CHECK(::pthread_mutex_lock(&chk) == EDEADLK);
  CHECK(::pthread_mutex_trylock(&chk) == EBUSY);
  struct seen {
    int rec_try = -1, chk_unlock = -1, rec_unlock = -1, rec_timed = -1;
  } s;
  auto other = [&]() -> void* {
    s.rec_try = ::pthread_mutex_trylock(&rec);
    s.chk_unlock = ::pthread_mutex_unlock(&chk);
    s.rec_unlock = ::pthread_mutex_unlock(&rec);
    const timespec at = in(CLOCK_REALTIME, 20ms);
    s.rec_timed = ::pthread_mutex_timedlock(&rec, &at);
    return nullptr;
  };
  CHECK(join(spawn_green(other)).rc == 0);
  CHECK(s.rec_try == EBUSY);
  CHECK(s.chk_unlock == EPERM);
  CHECK(s.rec_unlock == EPERM);
  CHECK(s.rec_timed == ETIMEDOUT);
  for (int i = 0; i < 3; ++i) CHECK(::pthread_mutex_unlock(&rec) == 0);
  CHECK(::pthread_mutex_unlock(&rec) == EPERM);
  CHECK(::pthread_mutex_unlock(&chk) == 0);
  CHECK(::pthread_mutex_unlock(&chk) == EPERM);
}

TEST_CASE("rwlocks: green readers share the lock; a writer waits for them, then excludes them") {
  pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
  // Readers on different hubs are in at once on different OS threads: atomics.
  std::atomic<int> readers_in{0};
  std::atomic<int> max_readers{0};
  bool writer_saw_readers = false;
  auto reader = [&]() -> void* {
    ::pthread_rwlock_rdlock(&rw);
    const int now = ++readers_in;
    for (int seen = max_readers.load(); now > seen && !max_readers.compare_exchange_weak(seen, now);) {
    }
    ::usleep(20'000);
    --readers_in;
    ::pthread_rwlock_unlock(&rw);
    return nullptr;
  };
  auto writer = [&]() -> void* {
    ::pthread_rwlock_wrlock(&rw);
    writer_saw_readers = readers_in != 0;
    ::usleep(5'000);
    ::pthread_rwlock_unlock(&rw);
    return nullptr;
  };
  std::vector<pthread_t> ts;
  for (int i = 0; i < 5; ++i) ts.push_back(spawn_green(reader));
  ::usleep(5'000);
  CHECK(::pthread_rwlock_trywrlock(&rw) == EBUSY);
  ts.push_back(spawn_green(writer));
  for (pthread_t t : ts) CHECK(join(t).rc == 0);
  CHECK(max_readers == 5);
  CHECK_FALSE(writer_saw_readers);
  CHECK(::pthread_rwlock_wrlock(&rw) == 0);
  CHECK(::pthread_rwlock_tryrdlock(&rw) == EBUSY);
  CHECK(::pthread_rwlock_wrlock(&rw) == EDEADLK);
  timespec at = in(CLOCK_REALTIME, 10ms);
  int timed = -1;
  auto late = [&]() -> void* {
    timed = ::pthread_rwlock_timedrdlock(&rw, &at);
    return nullptr;
  };
  CHECK(join(spawn_green(late)).rc == 0);
  CHECK(timed == ETIMEDOUT);
  CHECK(::pthread_rwlock_unlock(&rw) == 0);
  CHECK(::pthread_rwlock_unlock(&rw) == EPERM);
}

TEST_CASE("a barrier releases each round together with one serial thread; once runs its routine once; spinlocks exclude") {
  pthread_barrier_t b;
  REQUIRE(::pthread_barrier_init(&b, nullptr, 4) == 0);
  CHECK(::pthread_barrier_init(&b, nullptr, 0) == EINVAL);
  std::atomic<int> serial{0};
  std::atomic<int> arrived{0};
  bool early = false;
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  static int once_runs = 0;
  pthread_spinlock_t spin;
  ::pthread_spin_init(&spin, PTHREAD_PROCESS_PRIVATE);
  long in_spin = 0;
  auto party = [&]() -> void* {
    for (int round = 0; round < 10; ++round) {
      ++arrived;
      const int rc = ::pthread_barrier_wait(&b);
      if (arrived.load() < 4 * (round + 1)) early = true;
      if (rc == PTHREAD_BARRIER_SERIAL_THREAD) ++serial;
      ::pthread_once(&once, [] { ++once_runs; });
      ::pthread_spin_lock(&spin);
      ++in_spin;
      sched_yield();  // the others spin on the lock meanwhile, yielding to this holder
      ::pthread_spin_unlock(&spin);
      ::pthread_barrier_wait(&b);
    }
    return nullptr;
  };
  std::vector<pthread_t> ts;
  for (int i = 0; i < 4; ++i) ts.push_back(spawn_green(party));
  for (pthread_t t : ts) CHECK(join(t).rc == 0);
  CHECK(serial == 10);
  CHECK_FALSE(early);
  CHECK(once_runs == 1);
  CHECK(in_spin == 40);
  CHECK(::pthread_barrier_destroy(&b) == 0);
}

namespace {
pthread_key_t key;
std::atomic<int> destroyed{0};
std::atomic<int> reset_in_destructor{0};
struct unwound_flag {
  bool* flag;
  ~unwound_flag() { *flag = true; }
};
}  // namespace

TEST_CASE("thread-specific data is per green thread, and its destructors run when the thread ends") {
  REQUIRE(::pthread_key_create(&key, [](void* v) {
            ++destroyed;
            if (reset_in_destructor.fetch_add(1) == 0) ::pthread_setspecific(key, v);  // a second round runs it again
          }) == 0);
  int main_value = 1;
  CHECK(::pthread_setspecific(key, &main_value) == 0);
  int values[3] = {10, 20, 30};
  bool own[3] = {false, false, false};
  struct arg {
    int* v;
    bool* own;
  };
  arg args[3] = {{&values[0], &own[0]}, {&values[1], &own[1]}, {&values[2], &own[2]}};
  pthread_t ts[3];
  for (int i = 0; i < 3; ++i) {
    REQUIRE(::pthread_create(
                &ts[i], nullptr,
                [](void* p) -> void* {
                  auto* a = static_cast<arg*>(p);
                  const bool empty_at_start = ::pthread_getspecific(key) == nullptr;
                  ::pthread_setspecific(key, a->v);
                  ::usleep(10'000);  // the others set theirs meanwhile
                  *a->own = empty_at_start && ::pthread_getspecific(key) == a->v;
                  return nullptr;
                },
                &args[i]) == 0);
  }
  for (pthread_t t : ts) CHECK(join(t).rc == 0);
  CHECK((own[0] && own[1] && own[2]));
  CHECK(destroyed == 4);  // three threads, one of them twice
  CHECK(::pthread_getspecific(key) == &main_value);
  CHECK(::pthread_key_delete(key) == 0);
}

TEST_CASE("pthread_exit unwinds a green thread's destructors and join returns its value") {
  bool unwound = false;
  auto body = [&]() -> void* {
    const unwound_flag f{&unwound};
    [] { ::pthread_exit(reinterpret_cast<void*>(42)); }();
    return nullptr;
  };
  const joined j = join(spawn_green(body));
  CHECK(j.rc == 0);
  CHECK(reinterpret_cast<long>(j.value) == 42);
  CHECK(unwound);
}

TEST_CASE("pthread_cancel ends a green thread blocked in pthread_cond_wait with PTHREAD_CANCELED, the mutex held") {
  static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
  static bool cleanup_held_mutex = false;
  auto body = [&]() -> void* {
    ::pthread_mutex_lock(&m);
    pthread_cleanup_push(
        [](void*) {
          cleanup_held_mutex = ::pthread_mutex_trylock(&m) == EBUSY;
          ::pthread_mutex_unlock(&m);
        },
        nullptr);
    for (;;) ::pthread_cond_wait(&c, &m);
    pthread_cleanup_pop(1);
    return nullptr;
  };
  const pthread_t t = spawn_green(body);
  ::usleep(10'000);
  CHECK(::pthread_cancel(t) == 0);
  const joined j = join(t);
  CHECK(j.rc == 0);
  CHECK(j.value == PTHREAD_CANCELED);
  CHECK(cleanup_held_mutex);
  CHECK(::pthread_mutex_trylock(&m) == 0);
  ::pthread_mutex_unlock(&m);
}

TEST_CASE("detached green threads run to their end; joining one is refused") {
  std::atomic<int> finished{0};
  auto body = [&]() -> void* {
    ::usleep(5'000);
    ++finished;
    return nullptr;
  };
  pthread_attr_t attr;
  ::pthread_attr_init(&attr);
  ::pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_t a{};
  REQUIRE(::pthread_create(
              &a, &attr, [](void* p) -> void* { return (*static_cast<decltype(body)*>(p))(); }, &body) == 0);
  const pthread_t b = spawn_green(body);
  CHECK(::pthread_detach(b) == 0);
  CHECK(::pthread_join(b, nullptr) == EINVAL);
  while (finished < 2) ::usleep(1000);
  CHECK(finished == 2);
  ::pthread_attr_destroy(&attr);
}

TEST_CASE("a green thread reads back its stack, guard and detach state; names round-trip and name its task") {
  pthread_attr_t attr;
  ::pthread_attr_init(&attr);
  ::pthread_attr_setstacksize(&attr, 1 << 20);
  struct seen {
    std::size_t size = 0;
    void* low = nullptr;
    void* local = nullptr;
    int detach = -1;
    char name[16] = {};
    int long_name = 0;
    std::string task;
  } s;
  pthread_t t{};
  REQUIRE(::pthread_create(
              &t, &attr,
              [](void* p) -> void* {
                auto* out = static_cast<seen*>(p);
                pthread_attr_t a;
                ::pthread_getattr_np(::pthread_self(), &a);
                ::pthread_attr_getstack(&a, &out->low, &out->size);
                ::pthread_attr_getdetachstate(&a, &out->detach);
                ::pthread_attr_destroy(&a);
                out->local = __builtin_frame_address(0);  // the real stack (a local may be on ASan's fake one)
                ::pthread_setname_np(::pthread_self(), "green-worker");
                ::pthread_getname_np(::pthread_self(), out->name, sizeof out->name);
                out->long_name = ::pthread_setname_np(::pthread_self(), "a-name-longer-than-15");
                out->task = grove::greenlet::current().name();  // what dump_tasks and the monitor show
                return nullptr;
              },
              &s) == 0);
  CHECK(join(t).rc == 0);
  CHECK(s.size >= std::size_t{1} << 20);
  CHECK(s.local > s.low);
  CHECK(s.local < static_cast<char*>(s.low) + s.size);
  CHECK(s.detach == PTHREAD_CREATE_JOINABLE);
  CHECK(std::string(s.name) == "green-worker");
  CHECK(s.long_name == ERANGE);
  CHECK(s.task == "pthread \"green-worker\"");
  ::pthread_attr_destroy(&attr);
}

TEST_CASE("errno is kept per green thread across its blocking calls") {
  bool kept[2] = {false, false};
  struct arg {
    int code;
    bool* kept;
  };
  arg args[2] = {{EPIPE, &kept[0]}, {ENOENT, &kept[1]}};
  pthread_t ts[2];
  for (int i = 0; i < 2; ++i) {
    REQUIRE(::pthread_create(
                &ts[i], nullptr,
                [](void* p) -> void* {
                  auto* a = static_cast<arg*>(p);
                  for (int k = 0; k < 20; ++k) {
                    errno = a->code;
                    ::usleep(1'000);  // the other thread sets its own errno meanwhile
                    sched_yield();
                    if (errno != a->code) return nullptr;
                  }
                  *a->kept = true;
                  return nullptr;
                },
                &args[i]) == 0);
  }
  for (pthread_t t : ts) CHECK(join(t).rc == 0);
  CHECK(kept[0]);
  CHECK(kept[1]);
}

TEST_CASE("close of a pipe that green threads of every hub wait on wakes each with EBADF, and the number is safe to reuse") {
  grove::hub::current();
  int p[2];
  REQUIRE(::pipe(p) == 0);
  struct reader {
    int fd;
    int rc = 0;
    int err = 0;
    long kernel_tid = 0;
  };
  std::vector<reader> readers(4, reader{p[0]});
  std::vector<pthread_t> ids(readers.size());
  for (std::size_t i = 0; i < readers.size(); ++i) {
    REQUIRE(::pthread_create(
                &ids[i], nullptr,
                [](void* a) -> void* {
                  auto* r = static_cast<reader*>(a);
                  r->kernel_tid = kernel_tid();
                  char c;
                  r->rc = static_cast<int>(::read(r->fd, &c, 1));
                  r->err = errno;
                  return nullptr;
                },
                &readers[i]) == 0);
  }
  ::usleep(50'000);  // every reader blocks in read
  REQUIRE(::close(p[0]) == 0);
  // The number comes back at once; nobody's wake-up may land on the new pipe.
  int q[2];
  REQUIRE(::pipe(q) == 0);
  std::set<long> os_threads;
  for (std::size_t i = 0; i < readers.size(); ++i) {
    CHECK(join(ids[i]).rc == 0);
    CHECK(readers[i].rc == -1);
    CHECK(readers[i].err == EBADF);
    os_threads.insert(readers[i].kernel_tid);
  }
  CHECK(os_threads.size() == static_cast<std::size_t>(std::min(hubs(), 4)));
  // The reused number works for its new owner, from a green thread of any hub.
  pthread_t t;
  static int new_read_end = -1;
  new_read_end = q[0];
  REQUIRE(::pthread_create(
              &t, nullptr,
              [](void*) -> void* {
                char c = 0;
                return reinterpret_cast<void*>(::read(new_read_end, &c, 1) == 1 && c == 'x' ? 1L : 0L);
              },
              nullptr) == 0);
  ::usleep(20'000);
  REQUIRE(::write(q[1], "x", 1) == 1);
  CHECK(join(t).value == reinterpret_cast<void*>(1L));
  ::close(q[0]);
  ::close(q[1]);
  ::close(p[1]);
}

TEST_CASE("1,000 green threads over every hub contend one mutex and ping-pong a condvar, semaphore and rwlock: no "
          "lost wake-up, exact counts") {
  grove::hub::current();
  static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  static pthread_cond_t turn_changed = PTHREAD_COND_INITIALIZER;
  static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
  static sem_t sems[2];
  static long counter = 0;
  static long rw_counter = 0;
  static int turn = 0;
  ::sem_init(&sems[0], 0, 1);
  ::sem_init(&sems[1], 0, 0);
  constexpr int contenders = 1000;
  constexpr int rounds = 20;
  std::vector<pthread_t> ids;
  for (int i = 0; i < contenders; ++i) {
    pthread_t t;
    REQUIRE(::pthread_create(
                &t, nullptr,
                [](void*) -> void* {
                  for (int k = 0; k < rounds; ++k) {
                    ::pthread_mutex_lock(&m);
                    const long seen = counter;
                    if (k % 5 == 0) ::sched_yield();  // another hub's thread may come in meanwhile: it must not
                    counter = seen + 1;
                    ::pthread_mutex_unlock(&m);
                    ::pthread_rwlock_wrlock(&rw);
                    ++rw_counter;
                    ::pthread_rwlock_unlock(&rw);
                  }
                  return nullptr;
                },
                nullptr) == 0);
    ids.push_back(t);
  }
  // Two threads (on two hubs, when there are two) pass a turn back and forth
  // through the condvar, and a token through two semaphores.
  struct player {
    int me;
    long passes = 0;
  };
  player players[2] = {{0}, {1}};
  pthread_t ping[2];
  for (int i = 0; i < 2; ++i) {
    REQUIRE(::pthread_create(
                &ping[i], nullptr,
                [](void* a) -> void* {
                  auto* pl = static_cast<player*>(a);
                  for (int k = 0; k < 2000; ++k) {
                    ::pthread_mutex_lock(&m);
                    while (turn != pl->me) ::pthread_cond_wait(&turn_changed, &m);
                    turn = 1 - pl->me;
                    ::pthread_cond_broadcast(&turn_changed);
                    ::pthread_mutex_unlock(&m);
                    ::sem_wait(&sems[pl->me]);
                    ::sem_post(&sems[1 - pl->me]);
                    ++pl->passes;
                  }
                  return nullptr;
                },
                &players[i]) == 0);
  }
  for (pthread_t t : ids) CHECK(join(t).rc == 0);
  for (pthread_t t : ping) CHECK(join(t).rc == 0);
  CHECK(counter == long{contenders} * rounds);
  CHECK(rw_counter == long{contenders} * rounds);
  CHECK(players[0].passes == 2000);
  CHECK(players[1].passes == 2000);
  ::sem_destroy(&sems[0]);
  ::sem_destroy(&sems[1]);
}

TEST_CASE("condvar waits whose limit is a microsecond away or already past, woken from other hubs and an OS thread (a "
          "GIL's pattern), each end once: no thread is resumed twice") {
  grove::hub::current();
  // A lock handed over as CPython's GIL is: waiters wait in steps of a
  // microsecond, so a wait often ends by its limit just as a waker on another
  // OS thread has picked it; that late wake must not resume it again later.
  struct gil {
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t c = PTHREAD_COND_INITIALIZER;
    bool held = false;
    long taken = 0;
    long timeouts = 0;
  };
  static gil g;
  constexpr int rounds = 2000;
  auto body = [](void*) -> void* {
    for (int i = 0; i < rounds; ++i) {
      ::pthread_mutex_lock(&g.m);
      for (int k = 0; g.held; ++k) {
        const timespec at = in(CLOCK_REALTIME, std::chrono::nanoseconds(k % 3 == 0 ? 0 : 1000));
        if (::pthread_cond_timedwait(&g.c, &g.m, &at) == ETIMEDOUT) ++g.timeouts;
      }
      g.held = true;
      ++g.taken;
      ::pthread_mutex_unlock(&g.m);
      // Hold it a while, letting the others come and wait.
      const auto until = std::chrono::steady_clock::now() + 2us;
      while (std::chrono::steady_clock::now() < until) {
      }
      ::sched_yield();
      ::pthread_mutex_lock(&g.m);
      g.held = false;
      ::pthread_cond_signal(&g.c);
      ::pthread_mutex_unlock(&g.m);
    }
    return nullptr;
  };
  std::vector<pthread_t> ids(4);
  for (pthread_t& t : ids) REQUIRE(::pthread_create(&t, nullptr, body, nullptr) == 0);
  std::thread native = os_thread([&] { body(nullptr); });
  for (pthread_t t : ids) CHECK(join(t).rc == 0);
  native.join();
  CHECK(g.taken == 5L * rounds);
  CHECK_FALSE(g.held);
  MESSAGE("waits that ended by their limit: " << g.timeouts);
}

TEST_CASE("a green thread that keeps waiting with limits already past lets the other threads of its hub run") {
  grove::hub::current();
  // Natively the kernel preempts such a thread; here it must give way by
  // itself, or a thread of its hub that would end its loop never runs.
  static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
  static std::atomic<bool> done{false};
  static long waits = 0;
  auto spinner = [](void*) -> void* {
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    const timespec past{0, 0};
    ::pthread_mutex_lock(&m);
    while (!done.load() && std::chrono::steady_clock::now() < give_up) {
      if (::pthread_cond_timedwait(&c, &m, &past) != ETIMEDOUT) break;
      ++waits;
    }
    ::pthread_mutex_unlock(&m);
    return done.load() ? nullptr : reinterpret_cast<void*>(1);
  };
  auto ender = [](void*) -> void* {
    done = true;
    return nullptr;
  };
  pthread_t a{}, b{};
  REQUIRE(::pthread_create(&a, nullptr, spinner, nullptr) == 0);
  REQUIRE(::pthread_create(&b, nullptr, ender, nullptr) == 0);
  const joined ja = join(a);
  CHECK(join(b).rc == 0);
  CHECK(ja.rc == 0);
  CHECK(ja.value == nullptr);  // it saw `done`, well before its 10 s were up
  MESSAGE("waits with a past limit before the other thread ran: " << waits);
}

namespace steal {
std::atomic<int> ran{0};
std::atomic<bool> ran_while_spinning{false};
std::atomic<int> handled_in_its_thread{0};
std::atomic<int> handled{0};
pthread_t signalled{};
constexpr int late = 4;
pthread_t lates[late];

void on_usr1(int) {
  handled.fetch_add(1);
  if (pthread_equal(pthread_self(), signalled)) handled_in_its_thread.fetch_add(1);
}

// A late thread makes one hooked call, a short sleep: wherever it is when the
// signal comes (queued, or already running on the other hub), its handler
// runs in it, as natively.
void* late_one(void*) {
  ran.fetch_add(1);
  ::usleep(1000);
  return nullptr;
}

// spinner makes the late threads, then computes until they have all run. It
// gives up after 10 s with two hubs (they must start long before, on the
// other hub), after 0.2 s with one (they cannot start while it computes).
void* spinner(void*) {
  for (int i = 0; i < late; ++i) {
    if (::pthread_create(&lates[i], nullptr, late_one, nullptr) != 0) return nullptr;
    if (i == 1) {
      signalled = lates[i];
      if (::pthread_kill(lates[i], SIGUSR1) != 0) return nullptr;  // before it can have started, with one hub
    }
  }
  const auto give_up =
      std::chrono::steady_clock::now() + (hubs() >= 2 ? std::chrono::seconds(10) : std::chrono::milliseconds(200));
  std::uint64_t x = 1;
  while (ran.load() < late) {
    for (int i = 0; i < 20000; ++i) x = x * 6364136223846793005u + 1442695040888963407u;
    if (std::chrono::steady_clock::now() > give_up) break;
  }
  ran_while_spinning.store(ran.load() == late);
  return reinterpret_cast<void*>(static_cast<std::uintptr_t>(x | 1));
}
}  // namespace steal

TEST_CASE(
    "threads a green thread makes and then computes without a pause start on another hub with two hubs, and once it "
    "ends with one; a signal sent to one before it started runs its handler in it") {
  grove::hub::current();  // pthread_create makes green threads from here on
  struct sigaction sa {};
  sa.sa_handler = steal::on_usr1;
  struct sigaction old {};
  REQUIRE(::sigaction(SIGUSR1, &sa, &old) == 0);
  pthread_t spin;
  REQUIRE(::pthread_create(&spin, nullptr, steal::spinner, nullptr) == 0);
  const joined s = join(spin);
  CHECK(s.rc == 0);
  REQUIRE(s.value != nullptr);  // it made every late thread
  for (pthread_t t : steal::lates) CHECK(join(t).rc == 0);
  CHECK(steal::ran.load() == steal::late);
  CHECK(steal::ran_while_spinning.load() == (hubs() >= 2));
  CHECK(steal::handled.load() == 1);
  CHECK(steal::handled_in_its_thread.load() == 1);
  REQUIRE(::sigaction(SIGUSR1, &old, nullptr) == 0);
}

namespace by_cpu {
std::atomic<bool> stop{false};
std::atomic<bool> spinner_done{false};
std::atomic<long> spinner_tid{0};
std::atomic<long> probe_tid{0};
std::atomic<bool> probe_ran_while_spinning{false};

// spinner computes with no hooked call until told to stop: 5 s at most with
// two hubs, 0.3 s with one (where nothing else runs meanwhile).
void* spinner(void*) {
  spinner_tid = kernel_tid();
  const auto give_up =
      std::chrono::steady_clock::now() + (hubs() >= 2 ? std::chrono::seconds(5) : std::chrono::milliseconds(300));
  std::uint64_t x = 1;
  while (!stop.load() && std::chrono::steady_clock::now() < give_up) {
    for (int i = 0; i < 20000; ++i) x = x * 6364136223846793005u + 1442695040888963407u;
  }
  spinner_done = true;
  return reinterpret_cast<void*>(static_cast<std::uintptr_t>(x | 1));
}

void* sleeper(void*) {
  while (!stop.load()) ::usleep(1000);
  return nullptr;
}

void* probe(void*) {
  probe_tid = kernel_tid();
  probe_ran_while_spinning = !spinner_done.load();
  return nullptr;
}
}  // namespace by_cpu

TEST_CASE("a new green thread goes to a hub that is not computing, even one with more threads: with two hubs it runs "
          "on main's OS thread while the other hub's thread computes") {
  grove::hub::current();  // pthread_create makes green threads from here on
  ::usleep(300'000);      // what earlier cases computed has faded from every hub's CPU use
  pthread_t spin{}, sleeper{}, probe{};
  REQUIRE(::pthread_create(&spin, nullptr, by_cpu::spinner, nullptr) == 0);
  // Main sleeps, so its hub is idle while the spinner's computes: with two
  // hubs the spinner has the other hub to itself by now.
  ::usleep(300'000);
  // Placed by thread count alone, the sleeper would go to main's hub and the
  // probe to the spinner's: one thread each.
  REQUIRE(::pthread_create(&sleeper, nullptr, by_cpu::sleeper, nullptr) == 0);
  REQUIRE(::pthread_create(&probe, nullptr, by_cpu::probe, nullptr) == 0);
  // Main's hub stays busy (sched_yield runs its ready threads without going
  // idle), so it cannot take a thread queued on the spinner's hub: the probe
  // runs now only if it was placed here.
  const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (by_cpu::probe_tid.load() == 0 && std::chrono::steady_clock::now() < limit) ::sched_yield();
  by_cpu::stop = true;
  CHECK(join(probe).rc == 0);
  CHECK(join(sleeper).rc == 0);
  CHECK(join(spin).rc == 0);
  REQUIRE(by_cpu::probe_tid.load() != 0);
  if (hubs() >= 2) {
    CHECK(by_cpu::spinner_tid.load() != kernel_tid());
    CHECK(by_cpu::probe_tid.load() != by_cpu::spinner_tid.load());
    CHECK(by_cpu::probe_ran_while_spinning.load());
  } else {
    CHECK(by_cpu::probe_tid.load() == kernel_tid());
  }
}
