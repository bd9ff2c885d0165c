// http_headers.hpp — the little HTTP/1.1 header parsing the example servers
// share (http_hello, bug_service): enough for curl, wget and wrk.
#pragma once

#include <strings.h>

#include <string_view>

namespace grove_examples {

// iequals compares two tokens, ignoring case.
inline bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// header_value finds a header (case-insensitive) in the header block.
inline std::string_view header_value(std::string_view headers, std::string_view name) {
  std::size_t pos = 0;
  while (pos < headers.size()) {
    const std::size_t eol = headers.find("\r\n", pos);
    const std::string_view line = headers.substr(pos, eol == std::string_view::npos ? eol : eol - pos);
    if (line.size() > name.size() && line[name.size()] == ':' && iequals(line.substr(0, name.size()), name)) {
      std::string_view v = line.substr(name.size() + 1);
      while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      return v;
    }
    if (eol == std::string_view::npos) break;
    pos = eol + 2;
  }
  return {};
}

// wants_close tells whether a request asks for its connection to be closed
// after the reply: "Connection: close", or HTTP/1.0 without keep-alive.
inline bool wants_close(std::string_view request_line, std::string_view headers) {
  const std::string_view connection = header_value(headers, "Connection");
  return iequals(connection, "close") || (request_line.ends_with("HTTP/1.0") && !iequals(connection, "keep-alive"));
}

}  // namespace grove_examples
