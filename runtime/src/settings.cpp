#include "settings.hpp"

#include <grove/settings.hpp>
#include <grove/stack.hpp>
#include <grove/thread_pool.hpp>

#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>

namespace grove::detail {

void bad_setting(std::string_view name, std::string_view value, std::string_view why) {
  std::fprintf(stderr, "grove: %.*s=\"%.*s\": %.*s\n", static_cast<int>(name.size()), name.data(),
               static_cast<int>(value.size()), value.data(), static_cast<int>(why.size()), why.data());
  std::fflush(stderr);
  std::_Exit(2);
}

std::optional<std::size_t> parse_size(std::string_view text) {
  std::size_t i = 0;
  std::size_t value = 0;
  constexpr std::size_t max = std::numeric_limits<std::size_t>::max();
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    const auto digit = static_cast<std::size_t>(text[i] - '0');
    if (value > (max - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
    ++i;
  }
  if (i == 0) return std::nullopt;
  std::string suffix;
  for (; i < text.size(); ++i) suffix += static_cast<char>(std::tolower(static_cast<unsigned char>(text[i])));
  std::size_t scale = 1;
  if (suffix.empty() || suffix == "b") {
    scale = 1;
  } else if (suffix == "k" || suffix == "kb" || suffix == "kib") {
    scale = std::size_t{1} << 10;
  } else if (suffix == "m" || suffix == "mb" || suffix == "mib") {
    scale = std::size_t{1} << 20;
  } else if (suffix == "g" || suffix == "gb" || suffix == "gib") {
    scale = std::size_t{1} << 30;
  } else {
    return std::nullopt;
  }
  if (value > max / scale) return std::nullopt;
  return value * scale;
}

std::size_t page_size() noexcept {
  static const std::size_t size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

}  // namespace grove::detail

namespace grove {

void check_settings() {
  (void)default_stack_size();
  (void)default_stack_mode();
  (void)thread_pool_size();  // creates the hub, which reads the diagnostics settings
}

}  // namespace grove
