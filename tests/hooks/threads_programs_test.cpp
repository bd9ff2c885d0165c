// Plain C pthread programs from tests/programs/thr_*.c, built without grove,
// run natively, under grove-run (green threads, its default) and under
// grove-run --threads=native: the same output and exit status each time.
// With green threads every pthread they create is a grove task, so a process
// with hundreds of threads alive has one OS thread; natively it has hundreds.
//
// How the OS threads are counted without touching stdout: with
// THR_THREADS_FILE set, a program appends "peak N" to that file at the moment
// its threads are all alive and blocked, N being the "Threads:" line of its
// /proc/self/status (see tests/programs/thr_common.h).
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "../support.hpp"

using namespace grove_test;
using namespace std::chrono_literals;

namespace {

const std::string grove_run = GROVE_RUN;
const std::string programs = GROVE_PROGRAMS;

// Under grove-run the program's own threads are green, so the process has its
// main thread plus only the helper threads grove starts for itself: the
// thread-pool workers, started lazily by DNS look-ups and run_in_thread (none
// of these programs does either), and the blocking monitor (only with
// GROVE_MONITOR_MS). So 1 is expected; 3 leaves room for a helper or two
// started at start-up, and is still far below the hundreds natively.
constexpr int green_os_threads_at_most = 3;

// limited_run is what a program did within its time limit, with its own
// report of its OS threads at its peak.
struct limited_run {
  limited_result result;
  int peak_threads = -1;  // the "peak" line of THR_THREADS_FILE, -1 without one
};

// run_thr runs a thr_ program like run_limited (env entries "NAME=value", or
// "NAME" to unset it), killed after 60 s, and reads its thread report.
limited_run run_thr(const std::vector<std::string>& argv, const std::vector<std::string>& env = {}) {
  char report[] = "/tmp/grove-thr-threads-XXXXXX";
  const int report_fd = ::mkstemp(report);
  REQUIRE(report_fd >= 0);
  ::close(report_fd);
  std::vector<std::string> with_report = env;
  with_report.push_back(std::string("THR_THREADS_FILE=") + report);
  limited_run run;
  run.result = run_limited(argv, 60s, with_report);
  std::ifstream f(report);
  std::string label;
  int n = -1;
  while (f >> label >> n)
    if (label == "peak") run.peak_threads = n;
  ::unlink(report);
  return run;
}

struct runs {
  limited_run native;        // the program alone
  limited_run green;         // under grove-run: green threads
  limited_run grove_native;  // under grove-run --threads=native: OS threads, hooked calls
};

// same_natively_and_under_grove_run runs a thr_ program natively, under
// grove-run with green threads (its default: GROVE_THREADS unset), and under
// grove-run --threads=native, and checks all three exit 0 with the same output.
runs same_natively_and_under_grove_run(const std::string& name) {
  CAPTURE(name);
  runs r;
  r.native = run_thr({programs + "/" + name});
  r.green = run_thr({grove_run, programs + "/" + name}, {"GROVE_THREADS"});
  r.grove_native = run_thr({grove_run, "--threads=native", programs + "/" + name}, {"GROVE_THREADS"});
  CHECK_MESSAGE(!r.native.result.timed_out, "natively, the program did not finish in time");
  CHECK(r.native.result.exit_code == 0);
  CHECK(r.native.result.signal == 0);
  {
    INFO("under grove-run, green threads");
    CHECK_MESSAGE(!r.green.result.timed_out, "the program did not finish in time");
    CHECK(r.green.result.out == r.native.result.out);
    CHECK(r.green.result.exit_code == r.native.result.exit_code);
    CHECK(r.green.result.signal == r.native.result.signal);
  }
  {
    INFO("under grove-run --threads=native");
    CHECK_MESSAGE(!r.grove_native.result.timed_out, "the program did not finish in time");
    CHECK(r.grove_native.result.out == r.native.result.out);
    CHECK(r.grove_native.result.exit_code == r.native.result.exit_code);
    CHECK(r.grove_native.result.signal == r.native.result.signal);
  }
  return r;
}

// serves_500_clients checks a thr_echo.c build: every client's echoes right,
// 500 clients, 500 connection threads, the server thread and main natively
// (and with --threads=native), one OS thread (or a helper or two) green.
void serves_500_clients(const char* program) {
  const runs r = same_natively_and_under_grove_run(program);
  CHECK(r.native.result.out.find("clients with every echo right: 500\n") != std::string::npos);
  CHECK(r.native.peak_threads >= 1000);
  CHECK(r.grove_native.peak_threads >= 1000);
  CHECK(r.green.peak_threads >= 1);
  CHECK(r.green.peak_threads <= green_os_threads_at_most);
}

}  // namespace

TEST_CASE(
    "a thread-per-connection echo server with 500 clients behaves the same natively and under grove-run, "
    "on one OS thread") {
  serves_500_clients("thr_echo");
}

TEST_CASE(
    "producers and consumers on a mutex and condition variables behave the same natively and under "
    "grove-run, and 300 threads waiting for one broadcast share one OS thread") {
  const runs r = same_natively_and_under_grove_run("thr_prodcons");
  CHECK(r.native.result.out.find("items consumed: 80000 of 80000\n") != std::string::npos);
  CHECK(r.native.result.out.find("threads woken by one broadcast: 300\n") != std::string::npos);
  CHECK(r.native.peak_threads >= 300);
  CHECK(r.grove_native.peak_threads >= 300);
  CHECK(r.green.peak_threads >= 1);
  CHECK(r.green.peak_threads <= green_os_threads_at_most);
}

TEST_CASE(
    "a worker pool on POSIX semaphores, timed waits, trywait, getvalue and a named semaphore behave the same "
    "natively and under grove-run") {
  const runs r = same_natively_and_under_grove_run("thr_sem");
  CHECK(r.native.result.out.find("sem_timedwait on 0 for 100 ms: ETIMEDOUT\n") != std::string::npos);
  CHECK(r.native.result.out.find("pool: never more than 3 jobs at once: yes\n") != std::string::npos);
}

TEST_CASE(
    "semaphores posted by another process wake a waiting thread without stopping the others, natively and "
    "under grove-run") {
  same_natively_and_under_grove_run("thr_sem_fork");
}

TEST_CASE(
    "thread keys keep one value per thread and run their destructors at thread exit, again up to "
    "PTHREAD_DESTRUCTOR_ITERATIONS times, natively and under grove-run") {
  const runs r = same_natively_and_under_grove_run("thr_keys");
  CHECK(r.native.result.out.find("a destructor that always sets again ran 4 times\n") != std::string::npos);
}

TEST_CASE(
    "error-checking and recursive mutexes, trylock, timedlock and the static initialisers return the same "
    "errors natively and under grove-run") {
  const runs r = same_natively_and_under_grove_run("thr_mutex");
  CHECK(r.native.result.out.find("errorcheck: lock again: EDEADLK\n") != std::string::npos);
  CHECK(r.native.result.out.find("errorcheck: unlock by another thread: EPERM\n") != std::string::npos);
}

TEST_CASE(
    "rwlocks admit readers together and writers alone, with the same EBUSY, ETIMEDOUT and EDEADLK natively "
    "and under grove-run") {
  const runs r = same_natively_and_under_grove_run("thr_rwlock");
  CHECK(r.native.result.out.find("readers that saw all 16 in: 16\n") != std::string::npos);
}

TEST_CASE(
    "a barrier names one serial thread per round, and pthread_once runs its routine once, natively and "
    "under grove-run") {
  const runs r = same_natively_and_under_grove_run("thr_barrier");
  CHECK(r.native.result.out.find("barrier: rounds with exactly one serial thread: 50\n") != std::string::npos);
}

TEST_CASE("spin locks exclude, report EBUSY, and wait out a holder that sleeps, natively and under grove-run") {
  const runs r = same_natively_and_under_grove_run("thr_spin");
  CHECK(r.native.result.out.find("spin: 4 threads counted to 80000") != std::string::npos);
}

TEST_CASE(
    "a program built with 64-bit file offsets (fcntl64, sendfile64) gets EAGAIN from a pipe it made non-blocking "
    "and sends a whole file into a blocking socket read by another thread, natively and under grove-run") {
  const runs r = same_natively_and_under_grove_run("thr_offset64");
  CHECK(r.native.result.out.find("read of the empty non-blocking pipe: -1 EAGAIN\n") != std::string::npos);
  CHECK(r.native.result.out.find("sent 4193304, received 4193304, offset now 4194304\n") != std::string::npos);
}

TEST_CASE(
    "detached threads, thread attributes, pthread_self, pthread_equal and thread names behave the same "
    "natively and under grove-run") {
  same_natively_and_under_grove_run("thr_detach");
}

TEST_CASE(
    "pthread_exit hands its value to pthread_join, and pthread_exit from main lets the other threads finish "
    "before the process exits 0, natively and under grove-run") {
  const runs r = same_natively_and_under_grove_run("thr_exit");
  CHECK(r.native.result.out.find("atexit handler ran, survivors done: 5\n") != std::string::npos);
}

TEST_CASE(
    "condition variable waits time out with ETIMEDOUT on CLOCK_REALTIME and CLOCK_MONOTONIC, never early, "
    "natively and under grove-run, 200 timed waiters on one OS thread") {
  const runs r = same_natively_and_under_grove_run("thr_condtime");
  CHECK(r.native.result.out.find("monotonic cond, 100 ms: ETIMEDOUT, not early: yes") != std::string::npos);
  CHECK(r.native.peak_threads >= 200);
  CHECK(r.grove_native.peak_threads >= 200);
  CHECK(r.green.peak_threads >= 1);
  CHECK(r.green.peak_threads <= green_os_threads_at_most);
}

TEST_CASE(
    "sleeps and timed waits that start right after 200 ms of computing last their full time, natively and "
    "under grove-run") {
  same_natively_and_under_grove_run("thr_after_work");
}

TEST_CASE(
    "a thread whose poll, select, epoll_wait or sched_yield loop never waits lets the threads waiting on a read "
    "or a sleep wake, natively and under grove-run") {
  const runs r = same_natively_and_under_grove_run("thr_busy_poll");
  CHECK(r.native.result.out.find("epoll_wait, zero timeout, a writable socket, waiter woken by a read: it ran while "
                                 "the other spun: yes, within 10 s: yes\n") != std::string::npos);
  CHECK(r.native.result.out.find(": no") == std::string::npos);
}

TEST_CASE("each thread keeps its own errno while others fail, natively and under grove-run") {
  same_natively_and_under_grove_run("thr_errno");
}

TEST_CASE(
    "a fork from a thread while 50 others are blocked leaves the child with the forking thread alone, which keeps "
    "its identity and data, makes threads, sleeps, does I/O and exits 0 at its end, while the parent's threads "
    "carry on; atfork handlers run in POSIX order; fork from main, exec, vfork (whose child's "
    "close leaves the parent's readers alone), posix_spawn and system, natively and under grove-run") {
  const runs r = same_natively_and_under_grove_run("thr_fork");
  const std::string& out = r.native.result.out;
  CHECK(out.find("child: atfork handlers: prepare-b prepare-a child-a child-b\n") != std::string::npos);
  CHECK(out.find("parent: atfork handlers: prepare-b prepare-a parent-a parent-b\n") != std::string::npos);
  CHECK(out.find("child: the parent's other threads ran here: sleepers 0, cond waiters 0, readers 0\n") !=
        std::string::npos);
  CHECK(out.find("child: atexit handler ran\nparent: atfork handlers") != std::string::npos);
  CHECK(out.find("parent: child exited: yes, status 0\n") != std::string::npos);
  CHECK(out.find("sleepers done 16 of 16, cond waiters woken 17 of 17, readers got 17 of 17\n") != std::string::npos);
  CHECK(out.find("child of main: the other threads ran here: 0\nparent: child of main exited with 3\n") !=
        std::string::npos);
  CHECK(out.find("a thread reading a pipe the vfork child closed: read its byte\n") != std::string::npos);
  CHECK(out.find("system: 0\n") != std::string::npos);
}

TEST_CASE("under grove-run, joining a thread that vanished in a fork fails with ESRCH (natively it hangs)") {
  const limited_run green =
      run_thr({grove_run, programs + "/thr_fork"}, {"GROVE_THREADS", "THR_FORK_JOIN_VANISHED=1"});
  CHECK(!green.result.timed_out);
  CHECK(green.result.exit_code == 0);
  CHECK(green.result.out.find("child: join of a vanished thread: ESRCH\n") != std::string::npos);
  CHECK(green.result.out.find("parent: child exited: yes, status 0\n") != std::string::npos);
}

TEST_CASE("__thread variables are per OS thread: green threads share them (a documented limit), native ones do not") {
  const std::string program = programs + "/thr_tls";
  const limited_run native = run_thr({program});
  const limited_run green = run_thr({grove_run, program}, {"GROVE_THREADS"});
  const limited_run grove_native = run_thr({grove_run, "--threads=native", program}, {"GROVE_THREADS"});
  REQUIRE(native.result.exit_code == 0);
  CHECK(native.result.out.find("kept their own values across sleeps: 20 of 20") != std::string::npos);
  CHECK(grove_native.result.out == native.result.out);
  // The README's limit: one OS thread, one copy. The first green thread starts
  // from the initialiser, the others from what it left; none keeps its own.
  CHECK(green.result.exit_code == 0);
  CHECK(green.result.out.find("kept their own values across sleeps: 0 of 20") != std::string::npos);
}

TEST_CASE(
    "GROVE_THREADS=native under grove-run keeps OS threads, GROVE_THREADS=green makes them green, and a bad "
    "value exits 2") {
  const std::string echo = programs + "/thr_echo";
  const limited_run native = run_thr({echo});
  const limited_run env_native = run_thr({grove_run, echo}, {"GROVE_THREADS=native"});
  const limited_run env_green = run_thr({grove_run, echo}, {"GROVE_THREADS=green"});
  REQUIRE(native.result.exit_code == 0);
  for (const limited_run* r : {&env_native, &env_green}) {
    CHECK(!r->result.timed_out);
    CHECK(r->result.exit_code == 0);
    CHECK(r->result.out == native.result.out);
  }
  CHECK(env_native.peak_threads >= 1000);
  CHECK(env_green.peak_threads >= 1);
  CHECK(env_green.peak_threads <= green_os_threads_at_most);
  const limited_run bad = run_thr({grove_run, programs + "/thr_keys"}, {"GROVE_THREADS=maybe"});
  CHECK(bad.result.exit_code == 2);
  CHECK(bad.result.out.find("GROVE_THREADS") != std::string::npos);
}

TEST_CASE(
    "a process-directed signal interrupts the thread that does not block it, pthread_kill only the thread it "
    "names, masks and pending signals are per thread, each thread has an id of its own that tgkill reaches, and "
    "sigsuspend, pause and sigpause wait in their thread alone, natively and under grove-run") {
  const runs r = same_natively_and_under_grove_run("thr_signals");
  CHECK(r.native.result.out.find("in recv, no SA_RESTART: recv -1 EINTR, handler ran in it: 1\n") !=
        std::string::npos);
  CHECK(r.native.result.out.find("in recv, SA_RESTART: recv 1 , handler ran in it: 1\n") != std::string::npos);
  CHECK(r.native.result.out.find("threads interrupted 1, thread 42 interrupted 1, handler ran in it: 1\n") !=
        std::string::npos);
  CHECK(r.native.result.out.find("handler ran in b: 1\n") != std::string::npos);
  CHECK(r.native.result.out.find("pthread_kill to main in send: sent part 1, handler ran in main: 1, errno left alone: 1\n") !=
        std::string::npos);
  CHECK(r.native.result.out.find("main's is the process id: 1, 20 threads with ids of their own: 1\n") !=
        std::string::npos);
  CHECK(r.native.result.out.find("tgkill of thread 7's id: 0, its read -1 EINTR, handler ran in it: 1, the others "
                                 "read: 1\n") != std::string::npos);
  CHECK(r.native.result.out.find("tgkill of an id whose thread ended: -1 ESRCH\n") != std::string::npos);
  for (const char* wait : {"sigsuspend", "pause", "sigpause", "BSD sigpause"}) {
    CAPTURE(wait);
    CHECK(r.native.result.out.find(std::string(wait) +
                                   " in a thread: -1 EINTR, main ran meanwhile: 1, handler ran in it: 1\n") !=
          std::string::npos);
  }
  CHECK(r.green.peak_threads >= 1);
  CHECK(r.green.peak_threads <= green_os_threads_at_most);
}

TEST_CASE(
    "40 children waited for at once through system and waitpid take one child's time under grove-run, and the "
    "wait family, system and popen return the same natively and under grove-run") {
  const runs r = same_natively_and_under_grove_run("thr_children");
  const std::string& out = r.native.result.out;
  CHECK(out.find("  statuses right: 40 of 40\n  all done in under 3 s: yes\n  the ticking thread ticked meanwhile: "
                 "yes\n") != std::string::npos);
  CHECK(out.find("waitpid(-1) with no children: -1 ECHILD\n") != std::string::npos);
  CHECK(out.find("waitpid with bad options: -1 EINVAL\n") != std::string::npos);
  CHECK(out.find("WNOHANG while the child runs: 0\n") != std::string::npos);
  CHECK(out.find("wait4: yes, exit 9, rusage filled yes\n") != std::string::npos);
  CHECK(out.find("waitid(P_PID, WNOWAIT): 0, the child yes, CLD_EXITED yes, status 11\n") != std::string::npos);
  CHECK(out.find("wait with SIGCHLD ignored: -1 ECHILD, after the children exited yes\n") != std::string::npos);
  CHECK(out.find("  still ignored after the shorter ended: yes\n") != std::string::npos);
  CHECK(out.find("system of a program that cannot run: exit 127\n") != std::string::npos);
  CHECK(out.find("a shell that sends itself SIGINT: signaled yes by SIGINT yes\n") != std::string::npos);
  CHECK(out.find("10 right, all in under 3 s yes, ticking meanwhile yes\n") != std::string::npos);
  CHECK(out.find("meanwhile: no") == std::string::npos);
  CHECK(out.find("meanwhile no") == std::string::npos);
}

TEST_CASE(
    "flock, fcntl and lockf locks held by another process or open file description, EDEADLK, SysV message "
    "queues and semaphores wait without stopping the other threads, and a signal handler interrupts them as "
    "signal(7) says, natively and under grove-run") {
  const runs r = same_natively_and_under_grove_run("thr_locks");
  const std::string& out = r.native.result.out;
  for (const char* wait : {"flock LOCK_EX", "F_SETLKW", "lockf F_LOCK", "F_OFD_SETLKW"}) {
    CAPTURE(wait);
    CHECK(out.find(std::string(wait) +
                   ": 0 0, waited for the holder yes, the ticking thread ticked meanwhile yes\n") != std::string::npos);
  }
  CHECK(out.find("F_SETLKW that would deadlock with another process: -1 EDEADLK\n") != std::string::npos);
  CHECK(out.find("msgrcv waited for a message: 6 bytes, type 1, \"hello\", after the send yes, ticking meanwhile "
                 "yes\n") != std::string::npos);
  CHECK(out.find("msgsnd waited for room: 0 0") != std::string::npos);
  CHECK(out.find("msgrcv on a queue removed meanwhile: -1 EIDRM\n") != std::string::npos);
  CHECK(out.find("semop waited for a post: 0, after it yes, ticking meanwhile yes") != std::string::npos);
  CHECK(out.find("-1 EAGAIN, after the timeout yes, ticking meanwhile yes\n") != std::string::npos);
  CHECK(out.find("semop on a set removed meanwhile: -1 EIDRM\n") != std::string::npos);
  CHECK(out.find("meanwhile no") == std::string::npos);
  CHECK(out.find("holder no") == std::string::npos);
  // signal(7): file lock waits are restarted after an SA_RESTART handler,
  // SysV IPC waits never are.
  for (const char* wait : {"flock LOCK_EX", "F_SETLKW", "lockf F_LOCK", "msgrcv", "msgsnd", "semop"}) {
    CAPTURE(wait);
    CHECK(out.find(std::string(wait) +
                   ", SIGALRM handler without SA_RESTART: -1 EINTR, handler ran yes, returned before the other "
                   "process acted\n") != std::string::npos);
  }
  for (const char* wait : {"flock LOCK_EX", "F_SETLKW", "lockf F_LOCK"}) {
    CAPTURE(wait);
    CHECK(out.find(std::string(wait) +
                   ", SIGALRM handler with SA_RESTART: 0 0, handler ran yes, returned after the other process "
                   "acted\n") != std::string::npos);
  }
  for (const char* wait : {"msgrcv", "msgsnd", "semop"}) {
    CAPTURE(wait);
    CHECK(out.find(std::string(wait) +
                   ", SIGALRM handler with SA_RESTART: -1 EINTR, handler ran yes, returned before the other "
                   "process acted\n") != std::string::npos);
  }
}

TEST_CASE(
    "stdio reads and writes on pipes, sockets and stdin wait on the hub while the data arrives in pieces, with "
    "the same lines, EOF and error indicators, errno and buffering natively and under grove-run") {
  const runs r = same_natively_and_under_grove_run("thr_stdio");
  const std::string& out = r.native.result.out;
  for (const char* waited : {"fgets", "getc", "fread", "getline", "fscanf", "scanf"}) {
    CAPTURE(waited);
    CHECK(out.find(std::string("ticker ran while ") + waited + " waited: yes") != std::string::npos);
  }
  std::size_t writers = 0;
  for (std::size_t at = 0; (at = out.find("ticker ran while the writer waited: yes", at)) != std::string::npos; ++at) {
    ++writers;
  }
  CHECK(writers == 4);  // fwrite, fprintf, fputs/fputc/putc, dprintf
  CHECK(out.find("dprintf wrote 648890 bytes\n") != std::string::npos);
  CHECK(out.find("fgets: NULL, errno EAGAIN, waited 40 ms or more: yes\n") != std::string::npos);
  CHECK(out.find("fflush to a pipe with no reader: -1, errno Broken pipe\n") != std::string::npos);
  CHECK(out.find("lines read whole: 20 of 20 (20 read)\n") != std::string::npos);
  CHECK(out.find("lines read whole: 80 of 80 (80 read)\n") != std::string::npos);
  CHECK(out.find("done\n") != std::string::npos);
}

TEST_CASE(
    "a thread-per-connection server written with fdopen, fgets and fprintf serves 500 clients the same "
    "natively and under grove-run, on one OS thread") {
  serves_500_clients("thr_stdio_echo");
}

TEST_CASE(
    "a program sees only its own descriptors and may close every one it did not open (close_range, closefrom, "
    "close in a loop), then its threads still sleep together, natively and under grove-run") {
  const runs r = same_natively_and_under_grove_run("thr_fds");
  const std::string& out = r.native.result.out;
  CHECK(out.find("first open got: ") != std::string::npos);  // the same number both ways (above)
  CHECK(out.find("after close_range: 0 1 2\n") != std::string::npos);
  CHECK(out.find("close of 3 to 1023 one by one closed: 0\n") != std::string::npos);
  CHECK(out.find("wrote 5 through 3, read 5: via 3\n") != std::string::npos);
  CHECK(out.find("after closefrom(3): 0 1 2\n") != std::string::npos);
  CHECK(out.find("disagree") == std::string::npos);
  CHECK(out.find("together after close_range: yes\nclose") != std::string::npos);
  CHECK(out.find("together after closing one by one: yes\n") != std::string::npos);
  CHECK(out.find("together after closefrom: yes\n") != std::string::npos);
}

namespace {
// cpu_run is a run of cpu_threads with its output, wall time, CPU time (all its
// threads'), and the CPU time of each OS thread it had at its end.
struct cpu_run {
  std::string out;
  int status = -1;
  double wall = 0;
  double cpu = 0;
  std::vector<long> task_ticks;  // cpu_threads' CPU_THREADS_TASKS report: each OS thread's CPU time
};
// busy_os_threads counts the OS threads of r that computed, when `expected` of
// them should have shared the work: those with at least half of an equal
// share of the CPU time. CPU time does not depend on how busy the machine is,
// unlike CPU against wall time.
int busy_os_threads(const cpu_run& r, int expected) {
  long total = 0;
  for (long t : r.task_ticks) total += t;
  if (total == 0) return -1;
  int busy = 0;
  for (long t : r.task_ticks) busy += t * 2 * expected >= total ? 1 : 0;
  return busy;
}
cpu_run run_cpu_threads(const std::vector<std::string>& argv) {
  char report_name[] = "/tmp/grove-cpu-threads-XXXXXX";
  const int report_fd = ::mkstemp(report_name);
  REQUIRE(report_fd >= 0);
  ::close(report_fd);
  const std::string report = report_name;
  int pipefd[2];
  REQUIRE(::pipe(pipefd) == 0);
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(pipefd[1], STDOUT_FILENO);
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    ::unsetenv("GROVE_HUBS");
    ::setenv("CPU_THREADS_TASKS", report.c_str(), 1);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(pipefd[1]);
  cpu_run r;
  char buf[4096];
  for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof buf)) > 0;) r.out.append(buf, static_cast<std::size_t>(n));
  ::close(pipefd[0]);
  struct rusage use {};
  REQUIRE(::wait4(pid, &r.status, 0, &use) == pid);
  r.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.cpu = static_cast<double>(use.ru_utime.tv_sec + use.ru_stime.tv_sec) +
          static_cast<double>(use.ru_utime.tv_usec + use.ru_stime.tv_usec) / 1e6;
  std::ifstream tasks(report);
  std::string word;
  for (long n = 0; tasks >> word >> n;) r.task_ticks.push_back(n);
  ::unlink(report.c_str());
  return r;
}
}  // namespace

TEST_CASE(
    "8 CPU-bound threads under grove-run --hubs=2 print what they print natively, and keep both hubs' OS threads busy") {
  const std::string program = programs + "/cpu_threads";
  const cpu_run native = run_cpu_threads({program, "8", "48"});
  const cpu_run two = run_cpu_threads({grove_run, "--hubs=2", program, "8", "48"});
  const cpu_run one = run_cpu_threads({grove_run, "--hubs=1", program, "8", "48"});
  REQUIRE(native.status == 0);
  CHECK(two.status == 0);
  CHECK(one.status == 0);
  CHECK(two.out == native.out);
  CHECK(one.out == native.out);
  CAPTURE(two.cpu);
  CAPTURE(two.wall);
  CAPTURE(one.cpu);
  CAPTURE(one.wall);
  // Both hubs' OS threads computed (4 threads of 8 each: each has at least
  // half of an equal share), and with one hub one OS thread did it all.
  CAPTURE(two.task_ticks);
  CHECK(busy_os_threads(two, 2) == 2);
  CHECK(busy_os_threads(one, 1) == 1);
  CHECK(one.cpu < 1.1 * one.wall);  // one OS thread never computes faster than the clock
}

TEST_CASE(
    "with no GROVE_HUBS, grove-run spreads green threads over one hub per CPU of the affinity mask: each hub's OS "
    "thread computes, and taskset -c 0 gives one") {
  cpu_set_t set;
  CPU_ZERO(&set);
  REQUIRE(::sched_getaffinity(0, sizeof set, &set) == 0);
  const int cpus = CPU_COUNT(&set);
  const std::string program = programs + "/cpu_threads";
  const cpu_run native = run_cpu_threads({program, "8", "48"});
  const cpu_run spread = run_cpu_threads({grove_run, program, "8", "48"});  // the child has no GROVE_HUBS
  const cpu_run pinned = run_cpu_threads({"/usr/bin/taskset", "-c", "0", grove_run, program, "8", "48"});
  REQUIRE(native.status == 0);
  CHECK(spread.status == 0);
  CHECK(pinned.status == 0);
  CHECK(spread.out == native.out);
  CHECK(pinned.out == native.out);
  CAPTURE(cpus);
  CAPTURE(spread.cpu);
  CAPTURE(spread.wall);
  CAPTURE(pinned.cpu);
  CAPTURE(pinned.wall);
  CAPTURE(spread.task_ticks);
  const int hubs = std::min(cpus, 8);  // one per CPU, each with some of the 8 threads
  CHECK(busy_os_threads(spread, hubs) == hubs);
  CHECK(busy_os_threads(pinned, 1) == 1);
  CHECK(pinned.cpu < 1.1 * pinned.wall);
}

TEST_CASE(
    "threads made while a green thread computes without a pause still start under grove-run --hubs=2: an idle hub "
    "takes them from the computing hub's queue, and with every other hub busy the blocking monitor hands them over") {
  const std::string program = programs + "/thr_steal";
  for (const char* mode : {"idle", "busy"}) {
    CAPTURE(mode);
    const limited_result native = run_limited({program, mode}, 60s);
    REQUIRE(native.exit_code == 0);
    REQUIRE(native.out == std::string(mode) + ": the 3 late threads ran while a thread computed: 1, its result: 1\n");
    // In idle mode only an idle hub can take them (no monitor); in busy mode
    // only the monitor can.
    const bool busy = std::string(mode) == "busy";
    const limited_result green =
        run_limited({grove_run, "--hubs=2", program, mode}, 60s, {busy ? "GROVE_MONITOR_MS=200" : "GROVE_MONITOR_MS"});
    CAPTURE(green.out);
    CHECK(!green.timed_out);
    CHECK(green.exit_code == 0);
    if (!busy) {
      CHECK(green.out == native.out);
    } else {  // with the monitor's report on stderr
      CHECK(green.out.find(native.out) != std::string::npos);
      CHECK(green.out.find("grove: blocking monitor: handed ") != std::string::npos);
      CHECK(green.out.find("not-yet-started green thread") != std::string::npos);
    }
  }
}

TEST_CASE(
    "under grove-run --hubs=2 a thread woken from the other hub runs while the thread on its own hub computes and "
    "only takes an uncontended mutex: the unlock gives it its turn, as a core of its own does natively") {
  const std::string program = programs + "/thr_unlock_turn";
  const std::string expected = "main woke while the thread on its core computed: 1, that thread took its mutex: 1\n";
  const limited_result native = run_limited({program}, 60s);
  REQUIRE(native.exit_code == 0);
  REQUIRE(native.out == expected);
  const limited_result green = run_limited({grove_run, "--hubs=2", program}, 60s, {"GROVE_MONITOR_MS"});
  CHECK(!green.timed_out);
  CHECK(green.exit_code == 0);
  CHECK(green.out == expected);
}

TEST_CASE("a deadlock under grove-run hangs as it does natively, and grove reports it on stderr, with one hub or two") {
  const std::string program = programs + "/thr_deadlock";
  const limited_result native = run_limited({program}, 2s);
  CHECK(native.timed_out);
  for (const char* hubs : {"--hubs=1", "--hubs=2"}) {
    CAPTURE(hubs);
    const limited_result r = run_limited({grove_run, hubs, program}, 4s);
    CHECK(r.timed_out);
    CHECK(r.out.find("first: locked a\n") != std::string::npos);
    CHECK(r.out.find("second: locked b\n") != std::string::npos);
    CHECK(r.out.find("never") == std::string::npos);
    CHECK(r.out.find("grove: every green thread waits on a pthread object") != std::string::npos);
  }
}

TEST_CASE(
    "a thread-per-connection file server answers 199 clients while it reads a cold 256 MiB file for another, "
    "natively and under grove-run, with one and with the pool's way off the hub") {
  char dir[] = "/tmp/grove-file-server-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  const std::string big = std::string(dir) + "/big";
  {
    // 256 MiB of varied bytes (the program evicts them from the page cache itself).
    std::ofstream out(big, std::ios::binary);
    std::vector<char> block(1 << 20);
    std::uint64_t x = 88172645463325252ull;
    for (int m = 0; m < 256; ++m) {
      for (char& c : block) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        c = static_cast<char>(x);
      }
      out.write(block.data(), static_cast<std::streamsize>(block.size()));
    }
    REQUIRE(out.good());
  }
  const std::vector<std::string> argv = {programs + "/thr_file_server", dir, big};
  const limited_run native = run_thr(argv);
  REQUIRE(!native.result.timed_out);
  CHECK(native.result.exit_code == 0);
  CHECK(native.result.out.find("big file: 268435456 bytes of 268435456, whole: yes\n") != std::string::npos);
  CHECK(native.result.out.find("small clients: 199, replies: every client at least one, bad replies: 0\n") !=
        std::string::npos);
  CHECK(native.result.out.find("while the server read the big file from disk: some\n") != std::string::npos);
  for (const char* way : {"GROVE_FILE_IO=io_uring", "GROVE_FILE_IO=pool"}) {
    CAPTURE(way);
    std::vector<std::string> green_argv = {grove_run};
    green_argv.insert(green_argv.end(), argv.begin(), argv.end());
    // One hub: with two, the other hub would serve the small clients even while a read blocked the first.
    const limited_run green = run_thr(green_argv, {"GROVE_THREADS", "GROVE_HUBS=1", way});
    CHECK(!green.result.timed_out);
    CHECK(green.result.exit_code == 0);
    CHECK(green.result.out == native.result.out);
  }
  (void)std::system((std::string("rm -rf ") + dir).c_str());
}

TEST_CASE(
    "pthreads reading one cold file through a shared descriptor, through their own, and appending with O_APPEND "
    "get the same bytes, offsets and whole records natively and as green threads under grove-run") {
  char dir[] = "/tmp/grove-thr-files-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  const std::string program = programs + "/thr_files";
  const limited_run native = run_thr({program, dir});
  REQUIRE(!native.result.timed_out);
  CHECK(native.result.exit_code == 0);
  CHECK(native.result.out.find("shared descriptor: 128 of 128 chunks read exactly once, 0 bad, offset at the end: "
                               "the size\n") != std::string::npos);
  CHECK(native.result.out.find("own descriptors: 4 of 4 readers got the whole file\n") != std::string::npos);
  CHECK(native.result.out.find("O_APPEND: 100000 bytes, 1000 of 1000 records whole\n") != std::string::npos);
  for (const char* way : {"GROVE_FILE_IO=io_uring", "GROVE_FILE_IO=pool"}) {
    CAPTURE(way);
    const limited_run green = run_thr({grove_run, program, dir}, {"GROVE_THREADS", way});
    CHECK(!green.result.timed_out);
    CHECK(green.result.exit_code == 0);
    CHECK(green.result.out == native.result.out);
  }
  (void)std::system((std::string("rm -rf ") + dir).c_str());
}

TEST_CASE(
    "stdio on cold files (fgets, getline, fread, getc, fscanf) under grove-run --hubs=1 parks the reading thread while "
    "the disk reads, so another green thread runs during the call, and reads, positions, EOF and mixed reads and "
    "writes are as natively") {
  char dir[] = "/tmp/grove-thr-stdio-files-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  const std::string program = programs + "/thr_stdio_files";
  const limited_run native = run_thr({program, dir});
  REQUIRE(!native.result.timed_out);
  CHECK(native.result.exit_code == 0);
  CHECK(native.result.out.find("fgets: 40000 lines, hash 4cd46b42, eof 1, the other thread ran during a call: yes\n") !=
        std::string::npos);
  CHECK(native.result.out.find("fscanf: 100000 numbers, sum 34699650000, eof 1") != std::string::npos);
  CHECK(native.result.out.find(": no\n") == std::string::npos);
  CHECK(native.result.out.find("after rewind: \"line 000000: the qui\", ftell 94\n") != std::string::npos);
  CHECK(native.result.out.find("after EOF: getc -1, then fgets \"one more\"\n") != std::string::npos);
  CHECK(native.result.out.find("reading a write-only stream: -1, error 1\n") != std::string::npos);
  for (const char* way : {"GROVE_FILE_IO=io_uring", "GROVE_FILE_IO=pool"}) {
    CAPTURE(way);
    // One hub: with two, the counting thread could run on the other.
    const limited_run green = run_thr({grove_run, "--hubs=1", program, dir}, {"GROVE_THREADS", way});
    CHECK(!green.result.timed_out);
    CHECK(green.result.exit_code == 0);
    CHECK(green.result.out == native.result.out);
  }
  (void)std::system((std::string("rm -rf ") + dir).c_str());
}

TEST_CASE("grove-run --file-io=pool sets GROVE_FILE_IO, and a bad way off the hub exits 2 with a message") {
  const limited_run bad = run_thr({grove_run, programs + "/thr_keys"}, {"GROVE_FILE_IO=maybe"});
  CHECK(bad.result.exit_code == 2);
  CHECK(bad.result.out.find("GROVE_FILE_IO=\"maybe\"") != std::string::npos);
  const limited_run bad_option = run_thr({grove_run, "--file-io=sometimes", programs + "/thr_keys"});
  CHECK(bad_option.result.exit_code == 2);
  CHECK(bad_option.result.out.find("GROVE_FILE_IO") != std::string::npos);
  const limited_run native = run_thr({programs + "/thr_keys"});
  const limited_run pool = run_thr({grove_run, "--file-io=pool", programs + "/thr_keys"});
  CHECK(pool.result.exit_code == 0);
  CHECK(pool.result.out == native.result.out);
}
