# Warnings for grove's own code (the library, tests, examples, benches); with
# GROVE_WERROR (on in test.sh and CI, off by default so that people who build
# grove as a dependency never fail on a compiler's new warning) they are errors.
add_library(grove_warnings INTERFACE)
target_compile_options(grove_warnings INTERFACE -Wall -Wextra -Wshadow -Wnon-virtual-dtor
  $<$<BOOL:${GROVE_WERROR}>:-Werror>)
# The same for plain C programs (tests/programs, bench/threads).
set(grove_c_warnings -Wall -Wextra $<$<BOOL:${GROVE_WERROR}>:-Werror>)
