// report.hpp — how the runtime says something on stderr, and names exceptions.
#pragma once

#include <exception>
#include <string>

namespace grove::detail {

// report writes "grove: <message>" on stderr, at once.
void report(const std::string& message) noexcept;
// describe_exception is e's what(), or a description when it has none.
std::string describe_exception(const std::exception_ptr& e);
// is_greenlet_exit: e holds a grove::greenlet_exit.
bool is_greenlet_exit(const std::exception_ptr& e);

}  // namespace grove::detail
