#include "report.hpp"

#include <cstdio>

#include <grove/error.hpp>

namespace grove::detail {

void report(const std::string& message) noexcept {
  std::fprintf(stderr, "grove: %s\n", message.c_str());
  std::fflush(stderr);
}

std::string describe_exception(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (const greenlet_exit& x) {
    return x.what();
  } catch (...) {
    return "an exception of unknown type";
  }
}

bool is_greenlet_exit(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const greenlet_exit&) {
    return true;
  } catch (...) {
    return false;
  }
}

}  // namespace grove::detail
