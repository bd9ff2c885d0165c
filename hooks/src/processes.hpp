// processes.hpp — what other hooks need from the child-process hooks (processes.cpp).
#pragma once

#include <cstdio>

namespace grove::hooks {

// close_stream is glibc's fclose of f; for a stream popen opened it first
// waits for the child cooperatively, as pclose does. The fclose hook
// (stdio.cpp) ends with it, after its own flush and bookkeeping.
int close_stream(FILE* f);

}  // namespace grove::hooks
