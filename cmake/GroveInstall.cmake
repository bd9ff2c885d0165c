# cmake --install: headers; libgrove and libgrove-hooks, shared (libgrove.so.0)
# and static; a CMake package (find_package(grove) -> grove::grove, grove::hooks
# and their static forms grove::grove_static, grove::hooks_static); pkg-config
# files grove and grove-hooks; grove-run with its preload library; grove-run(1);
# the gdb extension. Sanitizer builds install nothing: an install is never
# instrumented.
#
# Components (the Debian packages, cmake/GrovePackage.cmake):
#   runtime   libgrove.so.0, libgrove-hooks.so.0
#   dev       headers, .so links, static libraries, CMake and pkg-config files
#   run       grove-run, libgrove-preload.so, grove-run(1)
#   (the gdb extension goes with runtime: it serves every program using grove)
if(GROVE_SANITIZE)
  return()
endif()
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS grove_shared grove_hooks_shared EXPORT groveTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT dev)
install(TARGETS grove grove_hooks_archive grove_hooks_static EXPORT groveTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
install(DIRECTORY runtime/include/grove DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/hooks/hooked.dynlist
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/grove COMPONENT dev)
install(EXPORT groveTargets NAMESPACE grove:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/grove COMPONENT dev)

configure_package_config_file(cmake/groveConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/groveConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/grove)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/groveConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${CMAKE_CURRENT_BINARY_DIR}/groveConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/groveConfigVersion.cmake
  cmake/FindLibev.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/grove COMPONENT dev)

# The .pc files find their prefix relative to themselves, so an install can be moved.
file(RELATIVE_PATH GROVE_PC_TO_PREFIX "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
foreach(pc grove grove-hooks)
  configure_file(cmake/${pc}.pc.in ${CMAKE_CURRENT_BINARY_DIR}/${pc}.pc @ONLY)
  install(FILES ${CMAKE_CURRENT_BINARY_DIR}/${pc}.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)
endforeach()

# The gdb extension, as the auto-load script of libgrove.so.0 (its real file)
# and of the preload library, where gdb looks for them when grove is installed
# in gdb's own prefix (/usr, as Debian's package is); and once more in
# share/grove for programs linking libgrove.a to `source` by hand.
set(grove_gdb_auto_load ${CMAKE_INSTALL_DATADIR}/gdb/auto-load${CMAKE_INSTALL_FULL_LIBDIR})
install(FILES runtime/gdb/grove_gdb.py DESTINATION ${grove_gdb_auto_load}
  RENAME libgrove.so.${PROJECT_VERSION}-gdb.py COMPONENT runtime)
install(FILES runtime/gdb/grove_gdb.py DESTINATION ${grove_gdb_auto_load}/grove
  RENAME libgrove-preload.so-gdb.py COMPONENT run)
install(FILES runtime/gdb/grove_gdb.py DESTINATION ${CMAKE_INSTALL_DATADIR}/grove COMPONENT dev)

# grove-run and the preload library it finds in ../${CMAKE_INSTALL_LIBDIR}/grove: a
# private directory, since nothing links it (it has no SONAME version) and it
# is not for ldconfig's cache.
install(TARGETS grove_preload LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/grove COMPONENT run NAMELINK_SKIP)
install(TARGETS grove_run RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT run)
