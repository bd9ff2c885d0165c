// future — an async_result set by another task after a delay: the "future"
// of asyncio and gevent's AsyncResult.
#include <chrono>
#include <cstdio>
#include <string>

#include <grove/grove.hpp>

using namespace std::chrono_literals;

int main() {
  grove::async_result<std::string> answer;
  auto worker = grove::spawn([&] {
    std::printf("worker: thinking for 300 ms...\n");
    grove::sleep(300ms);
    answer.set("forty-two");
  });
  if (!answer.get(100ms)) std::printf("main: not ready after 100 ms, waiting on\n");
  std::printf("main: the answer is %s\n", answer.get().c_str());
  worker.join();

  grove::async_result<int> failing;
  grove::spawn([&] { failing.set_exception(std::make_exception_ptr(std::runtime_error("no answer today"))); });
  try {
    failing.get();
  } catch (const std::exception& e) {
    std::printf("main: the second future failed: %s\n", e.what());
  }
}
