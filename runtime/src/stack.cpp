#include <atomic>
#include <cstdlib>
#include <string>
#include <string_view>

#include <grove/error.hpp>
#include <grove/stack.hpp>

#include "settings.hpp"

namespace grove {
namespace {

constexpr std::size_t builtin_stack_size = 256 * 1024;

std::size_t round_to_pages(std::size_t bytes) {
  const std::size_t page = detail::page_size();
  return (bytes + page - 1) / page * page;
}

// Read once, on first use, from the environment; changed later only by the setters.
struct stack_defaults {
  std::atomic<std::size_t> size{builtin_stack_size};
  std::atomic<stack_mode> mode{stack_mode::guarded};

  stack_defaults() {
    if (const char* v = std::getenv("GROVE_STACK_SIZE"); v != nullptr) {
      const auto bytes = detail::parse_size(v);
      if (!bytes) {
        detail::bad_setting("GROVE_STACK_SIZE", v,
                            "not a size; use a byte count with an optional K, M or G suffix, e.g. 256K");
      }
      if (*bytes < min_stack_size || *bytes > max_stack_size) {
        detail::bad_setting("GROVE_STACK_SIZE", v, "out of range; a stack is between 16K and 1G");
      }
      size.store(round_to_pages(*bytes));
    }
    if (const char* v = std::getenv("GROVE_STACK_MODE"); v != nullptr) {
      const std::string_view s(v);
      if (s == "guarded") {
        mode.store(stack_mode::guarded);
      } else if (s == "dense") {
        mode.store(stack_mode::dense);
      } else {
        detail::bad_setting("GROVE_STACK_MODE", v,
                            "unknown mode; use \"guarded\" (a guard page below every stack) or \"dense\" "
                            "(no guard pages, for millions of greenlets)");
      }
    }
  }
};

stack_defaults& defaults() {
  static stack_defaults d;
  return d;
}

}  // namespace

std::size_t default_stack_size() { return defaults().size.load(std::memory_order_relaxed); }

void set_default_stack_size(std::size_t bytes) {
  if (bytes < min_stack_size || bytes > max_stack_size) {
    throw error("grove::set_default_stack_size(" + std::to_string(bytes) +
                "): a stack must be between 16 KiB and 1 GiB");
  }
  defaults().size.store(round_to_pages(bytes), std::memory_order_relaxed);
}

stack_mode default_stack_mode() { return defaults().mode.load(std::memory_order_relaxed); }

void set_default_stack_mode(stack_mode mode) { defaults().mode.store(mode, std::memory_order_relaxed); }

namespace detail {

std::size_t checked_stack_size(std::size_t requested) {
  if (requested == 0) return default_stack_size();
  if (requested < min_stack_size || requested > max_stack_size) {
    throw error("grove::greenlet: a stack of " + std::to_string(requested) +
                " bytes is out of range; a stack is between 16 KiB and 1 GiB");
  }
  return round_to_pages(requested);
}

}  // namespace detail
}  // namespace grove
