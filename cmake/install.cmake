# Install rules and the Debian package (issue 17). Included at the end of the top-level
# CMakeLists.txt, so every target below is already defined.
#
#   cmake --build build && cmake --build build --target package    (or: cd build && cpack -G DEB)
#   apt install ./build/carehub_<version>_amd64.deb
#
# Layout (the one deploy/systemd/*.service names, so the prefix is /usr):
#   /usr/bin/carehub, carehubctl, carehub-adapter, carehub-publish, carehub-subscribe,
#     carehub-analytics, carehub-sink            the daemons and the operator tools
#   /lib/systemd/system/*.service                 deploy/systemd/
#   /etc/carehub/*.yaml                           deploy/config/ examples, as conffiles
#   /usr/share/doc/carehub/                       README.md, docs/*.md, copyright, changelog.gz
# deploy/debian/ holds the maintainer scripts (postinst creates the users carehub,
# carehub-adapter and carehub-sink and sets /etc/carehub to 0750 root:carehub) and the conffiles list.
# tests/packaging/check_package.sh builds the package and checks all of this (ctest -L packaging).
#
# lintian (Debian 12, 2.116) reports no errors. The one warning left, and why:
#   no-manual-page (7x, one per /usr/bin program)  no man pages yet: every program has --help and
#     docs/*.md (in /usr/share/doc/carehub) covers them; writing seven is a task of its own.
# Fixed instead: copyright notice, description lines under 80 characters, conffiles shipped 0644
# (postinst makes them 0640 root:carehub), stripped binaries, gzip -9n changelog.

# The units run /usr/bin/... and read /etc/carehub: that is the layout for prefix /usr, so it is the
# default here (an explicit -DCMAKE_INSTALL_PREFIX still wins, for `cmake --install` into a scratch
# tree). Must come before GNUInstallDirs, which derives the FULL_ paths from it. A build tree
# configured before this file existed holds CMake's default /usr/local: moved to /usr once too.
if(CMAKE_INSTALL_PREFIX_INITIALIZED_TO_DEFAULT
   OR (NOT DEFINED CACHE{CAREHUB_INSTALL_RULES_SEEN} AND CMAKE_INSTALL_PREFIX STREQUAL "/usr/local"))
  set(CMAKE_INSTALL_PREFIX /usr CACHE PATH "Install prefix; the package and the systemd units assume /usr" FORCE)
endif()
set(CAREHUB_INSTALL_RULES_SEEN ON CACHE INTERNAL "cmake/install.cmake has set the default prefix")
include(GNUInstallDirs)

# The binaries an operator runs; bench, demo and test executables are not installed.
set(CAREHUB_INSTALLED_PROGRAMS carehub carehubctl carehub-publish carehub-subscribe)
foreach(optional_program carehub-adapter carehub-analytics carehub-sink)
  if(TARGET ${optional_program})  # adapters/ can be switched off (CAREHUB_WITH_ADAPTERS)
    list(APPEND CAREHUB_INSTALLED_PROGRAMS ${optional_program})
  endif()
endforeach()
install(TARGETS ${CAREHUB_INSTALLED_PROGRAMS} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# systemd units: /lib/systemd/system for prefix /usr (where Debian 12's packages put them), else
# <prefix>/lib/systemd/system (systemd also reads /usr/local/lib/systemd/system), though the units'
# ExecStart= still names /usr/bin.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(CAREHUB_SYSTEMD_UNIT_DIR /lib/systemd/system)
else()
  set(CAREHUB_SYSTEMD_UNIT_DIR lib/systemd/system)
  message(STATUS "carehub: install prefix ${CMAKE_INSTALL_PREFIX}: the systemd units still run /usr/bin/...")
endif()
file(GLOB CAREHUB_SYSTEMD_UNITS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/deploy/systemd/*.service)
install(FILES ${CAREHUB_SYSTEMD_UNITS} DESTINATION ${CAREHUB_SYSTEMD_UNIT_DIR})

# Example configs: /etc/carehub for prefix /usr (GNUInstallDirs' FULL_SYSCONFDIR). Shipped 0644
# (they hold no secrets: keys and tokens are files the operator writes); postinst makes them and
# the folder readable by group carehub only. deploy/debian/conffiles lists each one (the packaging
# test checks the list against the package).
file(GLOB CAREHUB_EXAMPLE_CONFIGS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/deploy/config/*.yaml)
install(FILES ${CAREHUB_EXAMPLE_CONFIGS} DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/carehub)

# Documentation, with the copyright file and a Debian changelog (gzip -9n: lintian wants maximum
# compression and no timestamp, so the package is reproducible).
set(CAREHUB_DEBIAN_DIR ${PROJECT_SOURCE_DIR}/deploy/debian)
file(GLOB CAREHUB_DOCS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/*.md)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${CAREHUB_DOCS} ${CAREHUB_DEBIAN_DIR}/copyright
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${CAREHUB_DEBIAN_DIR}/changelog)
file(STRINGS ${CAREHUB_DEBIAN_DIR}/changelog CAREHUB_CHANGELOG_HEAD LIMIT_COUNT 1)
if(NOT CAREHUB_CHANGELOG_HEAD MATCHES "^carehub \\(${PROJECT_VERSION}\\) ")
  message(FATAL_ERROR "deploy/debian/changelog: the newest entry must be for version ${PROJECT_VERSION} "
                      "(project()), found: ${CAREHUB_CHANGELOG_HEAD}")
endif()
file(MAKE_DIRECTORY ${PROJECT_BINARY_DIR}/packaging)
execute_process(COMMAND gzip -9nc INPUT_FILE ${CAREHUB_DEBIAN_DIR}/changelog
                OUTPUT_FILE ${PROJECT_BINARY_DIR}/packaging/changelog.gz COMMAND_ERROR_IS_FATAL ANY)
install(FILES ${PROJECT_BINARY_DIR}/packaging/changelog.gz DESTINATION ${CMAKE_INSTALL_DOCDIR})

# ---- the Debian package ----
# cpack (and `make install`) run the `preinstall` target, which by default builds `all`: every test,
# bench and demo. Installing needs only the programs above, so it builds nothing; build them first
# (`make build` or `cmake --build build`); `package` and cpack then only install and pack them.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)
set(CAREHUB_PACKAGE_MAINTAINER "carehub maintainers <maintainers@users.noreply.h-seed-2dc66caa.example>"
    CACHE STRING "Maintainer: field of the Debian package")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME carehub)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${CAREHUB_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CAREHUB_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "health and care data-sharing hub")
set(CPACK_PACKAGE_DESCRIPTION  # lines under 80 characters (lintian)
    "Hospital trusts, GP practices, community and social care providers publish\n"
    "activity and referral events (HL7 v2, FHIR R4, CSV extracts); carehub\n"
    "authenticates, validates, deduplicates and durably stores them, and delivers\n"
    "to each subscriber exactly what its data sharing agreement allows, every\n"
    "disclosure audited.\n"
    "This package has the hub daemon, the provider adapters, the population-health\n"
    "analytics subscriber, the PostgreSQL sink, the carehubctl operator tool and\n"
    "the publish and subscribe clients, with systemd units and example\n"
    "configuration.")
string(REPLACE ";" "" CPACK_PACKAGE_DESCRIPTION "${CPACK_PACKAGE_DESCRIPTION}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # carehub_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)   # library Depends: from dpkg-shlibdeps (dpkg-dev)
# adduser: postinst creates the users; procps: /bin/kill, carehub.service's ExecReload=.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser, procps")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CAREHUB_DEBIAN_DIR}/conffiles ${CAREHUB_DEBIAN_DIR}/postinst
    ${CAREHUB_DEBIAN_DIR}/prerm ${CAREHUB_DEBIAN_DIR}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)  # 0755 scripts, 0644 conffiles
set(CPACK_STRIP_FILES TRUE)              # lintian: unstripped-binary-or-object
# The package must have the layout the units name; refuse to build one from another prefix.
set(CPACK_PROJECT_CONFIG_FILE ${PROJECT_BINARY_DIR}/packaging/CPackProjectConfig.cmake)
file(WRITE ${CPACK_PROJECT_CONFIG_FILE}
     "if(NOT \"${CMAKE_INSTALL_PREFIX}\" STREQUAL \"/usr\")\n"
     "  message(FATAL_ERROR \"carehub: the package needs CMAKE_INSTALL_PREFIX=/usr (this build has "
     "${CMAKE_INSTALL_PREFIX}): reconfigure with -DCMAKE_INSTALL_PREFIX=/usr\")\n"
     "endif()\n")
include(CPack)
