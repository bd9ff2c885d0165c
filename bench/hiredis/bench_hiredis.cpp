// bench_hiredis — redis GET/SET from many connections at once, two ways, in one
// process against one redis-server:
//   hooks   one grove task per connection making hiredis's plain blocking
//           calls (redisCommand); grove::hooks turns each wait into a switch
//           to the hub. The code is what a sequential program would be.
//   async   hiredis's own asynchronous API on a libev loop
//           (hiredis/adapters/libev.h): callbacks, the hand-written best.
// Each connection keeps one command in flight (SET key value, then GET key,
// and again); every reply is checked. Both run the same number of
// connections for the same time, alternating rounds; each mode's best round
// is kept. The async rounds run on a thread of their own that has no hub, so
// the hooks pass their calls straight to libc there.
//
//   bench_hiredis (--unix PATH | --port PORT) [--connections N] [--seconds T]
//                 [--warmup W] [--rounds R] [--mode both|hooks|async]
//   bench_hiredis --free-port      prints a free loopback TCP port and exits
//
// Prints one line per mode, "mode=<m> requests/s=<r> client_cpu_us/request=<c>
// connections=<n>", then "ratio hooks/async: requests/s=<x> client_cpu_per_request=<y>".
// When the server's CPU is the bottleneck both modes reach about the same
// requests/s, and the client's CPU per request is what tells them apart.
// Exits 1 on any error (a failed connection, a wrong reply).
// bench/hiredis/run.sh starts the server and pins both processes.
#include <ev.h>
#include <hiredis/adapters/libev.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <grove/grove.hpp>

namespace {

using std::chrono::duration;
using std::chrono::steady_clock;

struct options {
  std::string unix_path;
  int port = 0;
  int connections = 100;
  double seconds = 3;
  double warmup = 1;
  int rounds = 3;
  std::string mode = "both";
};

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "bench_hiredis: %s\n", what.c_str());
  std::exit(1);
}

// cpu_seconds is the CPU time (user + system) the calling thread has used.
double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_THREAD, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// result is one round's throughput, and the client's CPU time per request
// (what tells the two apart when the server is the bottleneck).
struct result {
  double requests_per_s = 0;
  double cpu_us_per_request = 0;
};

std::string key_of(int i) { return "bench:key:" + std::to_string(i); }
std::string value_of(int i) { return "value-" + std::to_string(i) + "-0123456789abcdef"; }

// ---------------------------------------------------------------- hooks

redisContext* connect_blocking(const options& o) {
  redisContext* c = o.unix_path.empty() ? redisConnect("127.0.0.1", o.port) : redisConnectUnix(o.unix_path.c_str());
  if (c == nullptr || c->err) fail(std::string("connect: ") + (c ? c->errstr : "out of memory"));
  return c;
}

// run_hooks: a task per connection, each a plain blocking loop.
result run_hooks(const options& o) {
  bool measuring = false;
  bool stop = false;
  long count = 0;
  std::vector<grove::task<void>> clients;
  for (int i = 0; i < o.connections; ++i) {
    clients.push_back(grove::spawn([&, i] {
      redisContext* c = connect_blocking(o);
      const std::string key = key_of(i);
      const std::string value = value_of(i);
      while (!stop) {
        auto* set =
            static_cast<redisReply*>(redisCommand(c, "SET %b %b", key.data(), key.size(), value.data(), value.size()));
        if (set == nullptr || set->type != REDIS_REPLY_STATUS) fail("SET failed");
        freeReplyObject(set);
        auto* get = static_cast<redisReply*>(redisCommand(c, "GET %b", key.data(), key.size()));
        if (get == nullptr || get->type != REDIS_REPLY_STRING || std::string_view(get->str, get->len) != value) {
          fail("GET returned something else than was SET");
        }
        freeReplyObject(get);
        if (measuring) count += 2;
      }
      redisFree(c);
    }));
  }
  grove::sleep(std::chrono::duration_cast<std::chrono::nanoseconds>(duration<double>(o.warmup)));
  measuring = true;
  const auto t0 = steady_clock::now();
  const double cpu0 = cpu_seconds();
  grove::sleep(std::chrono::duration_cast<std::chrono::nanoseconds>(duration<double>(o.seconds)));
  const long done = count;
  const double took = duration<double>(steady_clock::now() - t0).count();
  const double cpu = cpu_seconds() - cpu0;
  stop = true;
  grove::joinall(clients);
  for (auto& c : clients) c.get();
  return {static_cast<double>(done) / took, cpu * 1e6 / static_cast<double>(done)};
}

// ---------------------------------------------------------------- async

struct async_run;

struct async_client {
  async_run* run;
  redisAsyncContext* ac;
  std::string key;
  std::string value;
};

struct async_run {
  bool measuring = false;
  bool stop = false;
  long count = 0;
  int connected = 0;
  std::vector<async_client> clients;
};

void on_get(redisAsyncContext* ac, void* reply, void* data);

void on_set(redisAsyncContext* ac, void* reply, void* data) {
  auto* cl = static_cast<async_client*>(data);
  auto* r = static_cast<redisReply*>(reply);
  if (r == nullptr) return;  // freed while stopping
  if (r->type != REDIS_REPLY_STATUS) fail("async SET failed");
  if (cl->run->measuring) ++cl->run->count;
  redisAsyncCommand(ac, on_get, cl, "GET %b", cl->key.data(), cl->key.size());
}

void on_get(redisAsyncContext* ac, void* reply, void* data) {
  auto* cl = static_cast<async_client*>(data);
  auto* r = static_cast<redisReply*>(reply);
  if (r == nullptr) return;
  if (r->type != REDIS_REPLY_STRING || std::string_view(r->str, r->len) != cl->value) {
    fail("async GET returned something else than was SET");
  }
  if (cl->run->measuring) ++cl->run->count;
  if (cl->run->stop) {
    redisAsyncDisconnect(ac);  // nothing in flight now: closes at once
    return;
  }
  redisAsyncCommand(ac, on_set, cl, "SET %b %b", cl->key.data(), cl->key.size(), cl->value.data(), cl->value.size());
}

void on_connect(const redisAsyncContext* ac, int status) {
  if (status != REDIS_OK) fail(std::string("async connect: ") + ac->errstr);
}

// run_async: every connection on one libev loop, driven by callbacks.
result run_async(const options& o) {
  struct ev_loop* loop = ev_loop_new(EVFLAG_AUTO);
  async_run run;
  run.clients.resize(static_cast<std::size_t>(o.connections));
  for (int i = 0; i < o.connections; ++i) {
    async_client& cl = run.clients[static_cast<std::size_t>(i)];
    cl.run = &run;
    cl.key = key_of(i);
    cl.value = value_of(i);
    cl.ac = o.unix_path.empty() ? redisAsyncConnect("127.0.0.1", o.port) : redisAsyncConnectUnix(o.unix_path.c_str());
    if (cl.ac == nullptr || cl.ac->err)
      fail(std::string("async connect: ") + (cl.ac ? cl.ac->errstr : "out of memory"));
    redisLibevAttach(loop, cl.ac);
    redisAsyncSetConnectCallback(cl.ac, on_connect);
    redisAsyncCommand(cl.ac, on_set, &cl, "SET %b %b", cl.key.data(), cl.key.size(), cl.value.data(), cl.value.size());
  }
  // Two timers: the end of the warm-up, the end of the measured time.
  struct phase {
    ev_timer timer;
    async_run* run;
    steady_clock::time_point* at;
    double* cpu_at;
    long* count_at;
    bool last;
  };
  steady_clock::time_point t0, t1;
  double cpu0 = 0, cpu1 = 0;
  long c1 = 0, ignored = 0;
  auto on_timer = [](struct ev_loop*, ev_timer* w, int) {
    auto* p = reinterpret_cast<phase*>(w);
    *p->at = steady_clock::now();
    *p->cpu_at = cpu_seconds();
    *p->count_at = p->run->count;
    if (p->last) {
      p->run->stop = true;
    } else {
      p->run->measuring = true;
    }
  };
  phase warm{{}, &run, &t0, &cpu0, &ignored, false};
  phase end{{}, &run, &t1, &cpu1, &c1, true};
  ev_timer_init(&warm.timer, on_timer, o.warmup, 0);
  ev_timer_init(&end.timer, on_timer, o.warmup + o.seconds, 0);
  ev_timer_start(loop, &warm.timer);
  ev_timer_start(loop, &end.timer);
  ev_run(loop, 0);  // until every connection has disconnected
  ev_loop_destroy(loop);
  return {static_cast<double>(c1) / duration<double>(t1 - t0).count(), (cpu1 - cpu0) * 1e6 / static_cast<double>(c1)};
}

// ---------------------------------------------------------------- main

double parse_number(const char* flag, const char* text) {
  char* end = nullptr;
  const double v = std::strtod(text, &end);
  if (end == text || *end != '\0' || !(v >= 0)) fail(std::string(flag) + " takes a number, got \"" + text + "\"");
  return v;
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--free-port") {
      grove::socket s(AF_INET, SOCK_STREAM);
      s.bind(grove::address::ip("127.0.0.1", 0));
      std::printf("%u\n", s.local_address().port());
      std::exit(0);
    }
    if (i + 1 >= argc)
      fail(
          "usage: bench_hiredis (--unix PATH | --port PORT) [--connections N] [--seconds T] "
          "[--warmup W] [--rounds R] [--mode both|hooks|async]");
    const char* v = argv[++i];
    if (a == "--unix") {
      o.unix_path = v;
    } else if (a == "--port") {
      o.port = static_cast<int>(parse_number("--port", v));
    } else if (a == "--connections") {
      o.connections = std::max(1, static_cast<int>(parse_number("--connections", v)));
    } else if (a == "--seconds") {
      o.seconds = std::max(0.1, parse_number("--seconds", v));
    } else if (a == "--warmup") {
      o.warmup = parse_number("--warmup", v);
    } else if (a == "--rounds") {
      o.rounds = std::max(1, static_cast<int>(parse_number("--rounds", v)));
    } else if (a == "--mode") {
      o.mode = v;
      if (o.mode != "both" && o.mode != "hooks" && o.mode != "async") fail("--mode takes both, hooks or async");
    } else {
      fail("unknown argument " + std::string(a));
    }
  }
  if (o.unix_path.empty() && o.port == 0) fail("give the server: --unix PATH or --port PORT");
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse(argc, argv);
  result hooks, async;
  // keep: the round with the most requests/s, and the least CPU per request seen.
  auto keep = [](result& best, const result& r) {
    const double cpu =
        best.cpu_us_per_request == 0 ? r.cpu_us_per_request : std::min(best.cpu_us_per_request, r.cpu_us_per_request);
    if (r.requests_per_s > best.requests_per_s) best = r;
    best.cpu_us_per_request = cpu;
  };
  for (int r = 0; r < o.rounds; ++r) {
    if (o.mode != "hooks") {
      // A thread with no hub: the hooks step aside there, as in a program without grove.
      std::thread t([&] { keep(async, run_async(o)); });
      t.join();
    }
    if (o.mode != "async") keep(hooks, run_hooks(o));
  }
  auto print = [&](const char* mode, const result& r) {
    std::printf("mode=%s requests/s=%.0f client_cpu_us/request=%.2f connections=%d\n", mode, r.requests_per_s,
                r.cpu_us_per_request, o.connections);
  };
  if (o.mode != "hooks") print("async", async);
  if (o.mode != "async") print("hooks", hooks);
  if (o.mode == "both") {
    std::printf("ratio hooks/async: requests/s=%.2f client_cpu_per_request=%.2f\n",
                hooks.requests_per_s / async.requests_per_s, hooks.cpu_us_per_request / async.cpu_us_per_request);
  }
  return 0;
}
