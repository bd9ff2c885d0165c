// settings.hpp — reading GROVE_* settings from the environment.
//
// A bad value is never replaced by a default silently: bad_setting prints what
// was wrong and what is accepted, then exits with status 2.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace grove::detail {

// bad_setting reports "grove: NAME=VALUE: WHY" on stderr and exits with status 2.
[[noreturn]] void bad_setting(std::string_view name, std::string_view value, std::string_view why);

// parse_size reads a byte count with an optional K, M or G suffix (powers of
// 1024, case-insensitive, an optional trailing B/iB): "262144", "256K", "1MiB".
std::optional<std::size_t> parse_size(std::string_view text);

// page_size is the system's page size.
std::size_t page_size() noexcept;

}  // namespace grove::detail
