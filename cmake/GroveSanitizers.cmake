# GROVE_SANITIZE instruments everything built in this tree.
#  address,undefined: ASan + UBSan; grove annotates every switch for ASan's fiber API.
#  thread: TSan; grove annotates every switch for TSan's fiber API.
if(GROVE_SANITIZE)
  if(NOT GROVE_SANITIZE MATCHES "^(address,undefined|undefined,address|address|undefined|thread)$")
    message(FATAL_ERROR "GROVE_SANITIZE='${GROVE_SANITIZE}': use address,undefined or thread")
  endif()
  add_compile_options(-fsanitize=${GROVE_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${GROVE_SANITIZE})
endif()
