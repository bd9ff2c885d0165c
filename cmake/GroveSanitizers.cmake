# GROVE_SANITIZE instruments grove and everything in this tree that links it,
# through the interface target grove_sanitize:
#  address,undefined: ASan + UBSan; grove annotates every switch for ASan's fiber API.
#  thread: TSan; grove annotates every switch for TSan's fiber API.
add_library(grove_sanitize INTERFACE)
if(GROVE_SANITIZE)
  if(NOT GROVE_SANITIZE MATCHES "^(address,undefined|undefined,address|address|undefined|thread)$")
    message(FATAL_ERROR "GROVE_SANITIZE='${GROVE_SANITIZE}': use address,undefined or thread")
  endif()
  target_compile_options(grove_sanitize INTERFACE
    -fsanitize=${GROVE_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(grove_sanitize INTERFACE -fsanitize=${GROVE_SANITIZE})
  if(GROVE_SANITIZE STREQUAL "thread" AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # TSan keeps a shadow call stack per fiber from function entry/exit hooks.
    # Boost's fiber::resume() is instrumented and, unless inlined, its entry is
    # recorded on one fiber and its exit on another, which corrupts TSan. Race
    # detection does not need these hooks; reports then show the racing
    # accesses' own lines rather than whole stacks.
    target_compile_options(grove_sanitize INTERFACE --param=tsan-instrument-func-entry-exit=0)
  endif()
endif()
