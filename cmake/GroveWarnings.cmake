# Warnings are errors for grove's own code (the library, tests, examples, benches).
add_library(grove_warnings INTERFACE)
target_compile_options(grove_warnings INTERFACE -Wall -Wextra -Werror -Wshadow -Wnon-virtual-dtor)
