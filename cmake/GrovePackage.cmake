# Debian packages with CPack: `cpack -G DEB` (or `cmake --build . --target package`)
# in a build configured with -DCMAKE_INSTALL_PREFIX=/usr, so that GNUInstallDirs
# puts the libraries in lib/<multiarch> (lib/x86_64-linux-gnu) as Debian wants;
# grove-run finds its preload library there (../${CMAKE_INSTALL_LIBDIR}/grove).
# tests/package/check.sh builds the packages, runs lintian on them and uses them.
#
# One package per install component of GroveInstall.cmake:
#   libgrove0     runtime  libgrove.so.0, libgrove-hooks.so.0 (Section libs)
#   libgrove-dev  dev      headers, .so links, static libraries, CMake and
#                          pkg-config files (Section libdevel)
#   grove-run     run      grove-run, libgrove-preload.so, grove-run(1) (Section utils)
# Each package takes whatever its component installs. This file adds to the
# components what a Debian package needs: /usr/share/doc/PACKAGE/copyright and
# changelog.Debian.gz in each, grove-run(1) in run.
if(GROVE_SANITIZE)
  return()  # as GroveInstall: sanitizer builds install nothing
endif()

set(GROVE_PACKAGE_MAINTAINER "grove developers <grove@example.org>" CACHE STRING
  "Maintainer of grove's Debian packages (\"Name <address>\")")
set(GROVE_PACKAGE_HOMEPAGE "https://example.org/grove" CACHE STRING "Homepage field of grove's Debian packages")
set(GROVE_PACKAGE_RELEASE 1 CACHE STRING "Debian revision of grove's packages (VERSION-RELEASE)")
set(GROVE_PACKAGE_COMPRESSION xz CACHE STRING "Compression of the packages' contents: xz, gzip or none")
set_property(CACHE GROVE_PACKAGE_COMPRESSION PROPERTY STRINGS xz gzip none)
# The date of the packaging's changelog entry (RFC 5322, as `date -R`).
set(grove_changelog_date "Sat, 05 Dec 2026 12:00:00 +0000")

set(grove_deb_version "${PROJECT_VERSION}-${GROVE_PACKAGE_RELEASE}")
set(grove_components runtime dev run)
set(grove_package_runtime libgrove${PROJECT_VERSION_MAJOR})
set(grove_package_dev libgrove-dev)
set(grove_package_run grove-run)

# --- copyright, changelog and man page, generated into the build tree --------
find_program(GROVE_GZIP gzip REQUIRED)
set(grove_pkg_dir ${CMAKE_CURRENT_BINARY_DIR}/package)

file(WRITE ${grove_pkg_dir}/copyright.new
"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: grove
Upstream-Contact: ${GROVE_PACKAGE_MAINTAINER}
Source: ${GROVE_PACKAGE_HOMEPAGE}

Files: *
Copyright: 2026 the grove developers
License: Expat

License: Expat
 Permission is hereby granted, free of charge, to any person obtaining a copy
 of this software and associated documentation files (the \"Software\"), to deal
 in the Software without restriction, including without limitation the rights
 to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
 copies of the Software, and to permit persons to whom the Software is
 furnished to do so, subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in
 all copies or substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
 IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
 FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
 AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
 LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
 OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN
 THE SOFTWARE.
")
file(WRITE ${grove_pkg_dir}/changelog.Debian.new
"grove (${grove_deb_version}) unstable; urgency=medium

  * Initial packaging: libgrove${PROJECT_VERSION_MAJOR}, libgrove-dev and grove-run, built with CPack.

 -- ${GROVE_PACKAGE_MAINTAINER}  ${grove_changelog_date}
")
# (copy_if_different: a reconfigure does not make them, and what depends on them, stale)
foreach(f copyright changelog.Debian)
  file(COPY_FILE ${grove_pkg_dir}/${f}.new ${grove_pkg_dir}/${f} ONLY_IF_DIFFERENT)
  file(REMOVE ${grove_pkg_dir}/${f}.new)
endforeach()

# gzip -9n (no name, no time stamp: reproducible, and what lintian asks for).
add_custom_command(OUTPUT ${grove_pkg_dir}/changelog.Debian.gz
  COMMAND ${GROVE_GZIP} -9nkf changelog.Debian
  DEPENDS ${grove_pkg_dir}/changelog.Debian
  WORKING_DIRECTORY ${grove_pkg_dir}
  COMMENT "Compressing the Debian changelog" VERBATIM)
add_custom_command(OUTPUT ${grove_pkg_dir}/grove-run.1.gz
  COMMAND ${CMAKE_COMMAND} -E copy ${CMAKE_CURRENT_SOURCE_DIR}/docs/grove-run.1 grove-run.1
  COMMAND ${GROVE_GZIP} -9nf grove-run.1
  DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/docs/grove-run.1
  WORKING_DIRECTORY ${grove_pkg_dir}
  COMMENT "Compressing grove-run(1)" VERBATIM)
add_custom_target(grove_package_docs ALL
  DEPENDS ${grove_pkg_dir}/changelog.Debian.gz ${grove_pkg_dir}/grove-run.1.gz)

# The Debian files go only into the packages (CPack installs each component by
# name); a plain `cmake --install` leaves them out, and installs the man page.
foreach(component IN LISTS grove_components)
  install(FILES ${grove_pkg_dir}/copyright ${grove_pkg_dir}/changelog.Debian.gz
    DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${grove_package_${component}} COMPONENT ${component}
    EXCLUDE_FROM_ALL)
endforeach()
install(FILES ${grove_pkg_dir}/grove-run.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT run)

# An ldconfig trigger for the package with libraries in ldconfig's directories,
# libgrove0 (lintian: lacks-ldconfig-trigger otherwise; grove-run's preload library
# is in a private directory).
file(WRITE ${grove_pkg_dir}/triggers "activate-noawait ldconfig\n")

# Before the packages are made, what dh_strip does beyond CPack's stripping (of
# executables and shared libraries only): static libraries lose their debug
# information, and every ELF file its .comment section (compiler versions).
file(WRITE ${grove_pkg_dir}/strip.cmake [[
file(GLOB_RECURSE files LIST_DIRECTORIES false "${CPACK_TEMPORARY_DIRECTORY}/*")
foreach(f IN LISTS files)
  if(IS_SYMLINK "${f}")
    continue()
  endif()
  if(f MATCHES "[.]a$")
    set(how --strip-debug --remove-section=.comment --enable-deterministic-archives)
  else()
    file(READ "${f}" magic LIMIT 4 HEX)
    if(NOT magic STREQUAL "7f454c46")
      continue()
    endif()
    set(how --remove-section=.comment)
  endif()
  execute_process(COMMAND "${CPACK_GROVE_OBJCOPY}" ${how} "${f}" RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "objcopy ${how} ${f} failed")
  endif()
endforeach()
]])

# CPack 3.25's -dbgsym packages need mending before Debian tools accept them: their
# md5sums name the files by their staging paths, the .debug files are executable,
# and they have no /usr/share/doc/PACKAGE; dh_strip makes that a link to the
# stripped package's own, which the -dbgsym package depends on (= version).
# Each .ddeb is unpacked, mended and rebuilt with dpkg-deb.
file(WRITE ${grove_pkg_dir}/mend-dbgsym.cmake [[
foreach(ddeb IN LISTS CPACK_PACKAGE_FILES)
  if(NOT ddeb MATCHES "/([^/_]+)-dbgsym_[^/]*[.]ddeb$")
    continue()
  endif()
  set(package ${CMAKE_MATCH_1})
  set(tree "${ddeb}.tree")
  file(REMOVE_RECURSE "${tree}")
  execute_process(COMMAND dpkg-deb -R "${ddeb}" "${tree}" COMMAND_ERROR_IS_FATAL ANY)
  file(GLOB_RECURSE debug_files LIST_DIRECTORIES false RELATIVE "${tree}" "${tree}/usr/*")
  set(md5sums "")
  foreach(f IN LISTS debug_files)
    file(CHMOD "${tree}/${f}" FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
    file(MD5 "${tree}/${f}" sum)
    string(APPEND md5sums "${sum}  ${f}\n")
  endforeach()
  file(WRITE "${tree}/DEBIAN/md5sums" "${md5sums}")
  file(MAKE_DIRECTORY "${tree}/usr/share/doc")
  file(CREATE_LINK ${package} "${tree}/usr/share/doc/${package}-dbgsym" SYMBOLIC)
  execute_process(COMMAND dpkg-deb --root-owner-group -Z${CPACK_DEBIAN_COMPRESSION_TYPE} --build "${tree}" "${ddeb}"
    OUTPUT_QUIET COMMAND_ERROR_IS_FATAL ANY)
  file(REMOVE_RECURSE "${tree}")
endforeach()
]])

# At cpack time: warn when the libraries would not land in Debian's multiarch
# directory. And quiet CPackDeb's author warning that libgrove-preload.so (no
# version: it is preloaded by path, never linked) cannot go in a shlibs file.
file(WRITE ${grove_pkg_dir}/project-config.cmake [[
if(CPACK_GENERATOR STREQUAL "DEB")
  if(NOT CPACK_GROVE_INSTALL_PREFIX STREQUAL "/usr")
    message(WARNING "grove: this build was configured with CMAKE_INSTALL_PREFIX=${CPACK_GROVE_INSTALL_PREFIX}, "
      "so the packages put the libraries in /usr/${CPACK_GROVE_INSTALL_LIBDIR}; configure with "
      "-DCMAKE_INSTALL_PREFIX=/usr for Debian's multiarch directory.")
  endif()
  set(CMAKE_SUPPRESS_DEVELOPER_WARNINGS ON CACHE INTERNAL "")
endif()
]])

# --- CPack --------------------------------------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME grove)
set(CPACK_PACKAGE_VENDOR "the grove developers")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${GROVE_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_HOMEPAGE_URL "${GROVE_PACKAGE_HOMEPAGE}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# Binaries are stripped either way. With GROVE_PACKAGE_DBGSYM (the default) their
# debug information goes to -dbgsym packages (.ddeb: /usr/lib/debug/.build-id),
# as Debian's own packages do: the gdb extension reads grove's data structures
# through it. Without, CPack strips it away (CPACK_STRIP_FILES).
option(GROVE_PACKAGE_DBGSYM "Make -dbgsym packages of the debug information (else CPACK_STRIP_FILES)" ON)
if(GROVE_PACKAGE_DBGSYM)
  set(CPACK_STRIP_FILES OFF)
  set(CPACK_DEBIAN_DEBUGINFO_PACKAGE ON)
  set(CPACK_POST_BUILD_SCRIPTS ${grove_pkg_dir}/mend-dbgsym.cmake)
else()
  set(CPACK_STRIP_FILES ON)
endif()
set(CPACK_GROVE_OBJCOPY "${CMAKE_OBJCOPY}")
set(CPACK_GROVE_INSTALL_PREFIX "${CMAKE_INSTALL_PREFIX}")
set(CPACK_GROVE_INSTALL_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
set(CPACK_PRE_BUILD_SCRIPTS ${grove_pkg_dir}/strip.cmake)
set(CPACK_PROJECT_CONFIG_FILE ${grove_pkg_dir}/project-config.cmake)
set(CPACK_COMPONENTS_ALL ${grove_components})
set(CPACK_DEB_COMPONENT_INSTALL ON)
# `make package_source` (not Debian's): the sources without build trees or git.
set(CPACK_SOURCE_GENERATOR TXZ)
set(CPACK_SOURCE_IGNORE_FILES "/[.]git/" "/build/" "/[.]cache/")

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_COMPRESSION_TYPE ${GROVE_PACKAGE_COMPRESSION})
set(CPACK_THREADS 0)  # xz on every core
set(CPACK_DEBIAN_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_DEBIAN_PACKAGE_RELEASE ${GROVE_PACKAGE_RELEASE})
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${GROVE_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "${GROVE_PACKAGE_HOMEPAGE}")
set(CPACK_DEBIAN_PACKAGE_SOURCE grove)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)

set(grove_about
"grove gives C++ green threads: greenlets (stackful coroutines on
Boost.Context) that you switch between by hand, and a per-thread libev hub
that runs tasks with gevent's semantics: timeouts, cooperative
synchronisation, sockets and servers. Its hooks make libc's blocking calls
(sleeps, sockets, pipes, poll, DNS, pthread waits) cooperative, linked into
a program or preloaded into an unmodified one.")

set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME ${grove_package_runtime})
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)  # (per package: CMake 3.25 has no per-component form; only libgrove0 has versioned sonames)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA ${grove_pkg_dir}/triggers)
set(CPACK_DEBIAN_RUNTIME_DESCRIPTION "green threads and a gevent-style hub for C++ (shared libraries)
${grove_about}

This package contains the shared libraries libgrove.so.${PROJECT_VERSION_MAJOR} and
libgrove-hooks.so.${PROJECT_VERSION_MAJOR}.")

# Backtraces (dump_tasks with GROVE_BACKTRACES, the blocking monitor) open
# libdw.so.1 when first asked for; without it they say so, and all else works.
set(CPACK_DEBIAN_RUNTIME_PACKAGE_RECOMMENDS libdw1)

set(CPACK_DEBIAN_DEV_PACKAGE_NAME ${grove_package_dev})
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
# What find_package(grove) and the pkg-config files need: Boost.Context, libev,
# c-ares (libgrove-hooks.a), and pkg-config itself (groveConfig.cmake finds
# c-ares with it).
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
  "${grove_package_runtime} (= ${grove_deb_version}), libboost-context-dev (>= 1.74), libev-dev, libc-ares-dev, liburing-dev, pkgconf | pkg-config")
set(CPACK_DEBIAN_DEV_DESCRIPTION "green threads and a gevent-style hub for C++ (development files)
${grove_about}

This package contains the headers, the static libraries, the CMake package
(find_package(grove): grove::grove, grove::hooks and their static forms) and
the pkg-config files grove and grove-hooks.")

set(CPACK_DEBIAN_RUN_PACKAGE_NAME ${grove_package_run})
set(CPACK_DEBIAN_RUN_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_RUN_PACKAGE_RECOMMENDS libdw1)
set(CPACK_DEBIAN_RUN_DESCRIPTION "run unmodified programs with cooperative green threads
${grove_about}

This package contains grove-run, which runs a dynamically linked program with
grove preloaded: its pthreads become green threads on one OS thread, and its
blocking calls wait cooperatively on a grove hub.")

include(CPack)
