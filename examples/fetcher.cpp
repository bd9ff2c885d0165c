// fetcher [N] — the classic crawler demo. An HTTP server embedded here serves
// /page/K after a delay of K × 100 ms; the fetcher gets N pages (default 8)
// concurrently, at most 4 at a time (a semaphore), each in its own task written
// as plain blocking-style code. The total time is about the slowest pages', not
// the sum of all delays.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include <grove/grove.hpp>

using namespace std::chrono_literals;

namespace {

// serve_page answers one HTTP/1.0-style request, after the page's delay.
void serve_page(grove::socket conn, grove::address) {
  std::string request;
  char buf[1024];
  while (request.find("\r\n\r\n") == std::string::npos) {
    const std::size_t n = conn.recv(buf, sizeof buf);
    if (n == 0) return;
    request.append(buf, n);
  }
  const std::size_t at = request.find("/page/");
  const int k = at == std::string::npos ? 0 : std::atoi(request.c_str() + at + 6);
  grove::sleep(std::chrono::milliseconds(100 * k));  // a slow backend
  const std::string body = "page " + std::to_string(k) + " took " + std::to_string(100 * k) + " ms\n";
  conn.send_all("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
                body);
}

// fetch gets one URL path from the server and returns the body.
std::string fetch(std::uint16_t port, const std::string& path) {
  grove::socket s = grove::connect("127.0.0.1", port, 2s);
  s.set_timeout(5s);
  s.send_all("GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  std::string response;
  char buf[4096];
  while (const std::size_t n = s.recv(buf, sizeof buf)) response.append(buf, n);
  const std::size_t body = response.find("\r\n\r\n");
  return body == std::string::npos ? response : response.substr(body + 4);
}

}  // namespace

int main(int argc, char** argv) {
  const int pages = argc > 1 ? std::atoi(argv[1]) : 8;
  grove::stream_server server("127.0.0.1:0", serve_page);
  server.start();

  grove::semaphore at_most(4);
  const auto t0 = std::chrono::steady_clock::now();
  auto since = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  std::vector<grove::task<void>> fetchers;
  double sum_of_delays = 0;
  for (int k = 1; k <= pages; ++k) {
    sum_of_delays += 0.1 * k;
    fetchers.push_back(grove::spawn([&, k] {
      std::lock_guard<grove::semaphore> slot(at_most);
      const std::string body = fetch(server.address().port(), "/page/" + std::to_string(k));
      std::printf("[%.2f s] got: %s", since(), body.c_str());
    }));
  }
  grove::joinall(fetchers);
  std::printf("%d pages in %.2f s, 4 at a time; one after another would take %.1f s\n", pages, since(), sum_of_delays);
  server.stop();
}
