// http_hello PORT [--hubs N] [--spread acceptor|reuseport] — a minimal HTTP/1.1
// keep-alive server on grove that answers every request with "Hello, World!".
// Same command line as echo_server. It
// parses requests properly enough for wrk and curl: a request line, headers up
// to the blank line, a Content-Length body skipped, pipelined requests served
// in order, "Connection: close" honoured.

#include <string>
#include <string_view>

#include "http_headers.hpp"
#include "serve_until_signal.hpp"

namespace {

constexpr std::string_view keep_alive_reply =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
constexpr std::string_view closing_reply =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: close\r\n\r\nHello, World!";
constexpr std::string_view bad_request = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

void serve(grove::socket conn, grove::address) {
  std::string in;
  std::string out;
  char buf[16384];
  for (;;) {
    // Answer every complete request in the buffer, then send the answers at once.
    bool close_after = false;
    for (;;) {
      const std::size_t end = in.find("\r\n\r\n");
      if (end == std::string::npos) break;
      const std::string_view head(in.data(), end);
      const std::size_t line_end = head.find("\r\n");
      const std::string_view request_line = head.substr(0, line_end);
      if (request_line.find(" HTTP/1.") == std::string_view::npos) {
        conn.send_all(bad_request);
        return;
      }
      const std::string_view headers = line_end == std::string_view::npos ? "" : head.substr(line_end + 2);
      std::size_t body = 0;
      if (const auto length = grove_examples::header_value(headers, "Content-Length"); !length.empty()) {
        body = std::stoul(std::string(length));
      }
      if (in.size() < end + 4 + body) break;  // the body is still coming
      close_after = grove_examples::wants_close(request_line, headers);
      out += close_after ? closing_reply : keep_alive_reply;
      in.erase(0, end + 4 + body);
      if (close_after) break;
    }
    if (!out.empty()) {
      conn.send_all(out);
      out.clear();
    }
    if (close_after) return;
    const std::size_t n = conn.recv(buf, sizeof buf);
    if (n == 0) return;
    in.append(buf, n);
  }
}

}  // namespace

int main(int argc, char** argv) {
  return examples::serve_until_signal("http_hello", argc, argv, serve, /*multi_hub=*/true);
}
