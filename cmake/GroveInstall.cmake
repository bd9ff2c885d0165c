# cmake --install: headers, libgrove, a CMake package (find_package(grove) -> grove::grove)
# and a pkg-config file (pkg-config --cflags --libs grove).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS grove EXPORT groveTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY runtime/include/grove DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT groveTargets NAMESPACE grove:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/grove)

configure_package_config_file(cmake/groveConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/groveConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/grove)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/groveConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${CMAKE_CURRENT_BINARY_DIR}/groveConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/groveConfigVersion.cmake
  cmake/FindLibev.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/grove)

# The .pc file finds its prefix relative to itself, so an install can be moved.
file(RELATIVE_PATH GROVE_PC_TO_PREFIX "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
configure_file(cmake/grove.pc.in ${CMAKE_CURRENT_BINARY_DIR}/grove.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/grove.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# grove-run and the preload library it finds in ../lib (or ../${CMAKE_INSTALL_LIBDIR}).
install(TARGETS grove_preload LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS grove_run RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
