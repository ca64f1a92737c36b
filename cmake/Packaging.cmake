# Install rules and Debian packages (cpack -G DEB in the build directory):
#   edgepair-e      edge-e, /etc/edgepair/edge-e.yaml, edgepair-e.service, edge-e(8)
#   edgepair-c      edge-c, /etc/edgepair/edge-c.yaml, edgepair-c.service, edge-c(8)
#   edgepair-tools  edge-load, edge-load(1)
# One package per box: the DMZ box must not carry edge-c (nor edge-c the DMZ listeners), and the load
# generator belongs on neither appliance.
include(GNUInstallDirs)

# `cmake --install` and cpack package what is built instead of building everything first (tests and
# benchmarks included): tests/integration/test_packages.py runs cpack on the binaries ctest runs.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

set(EP_PKG_DIR ${CMAKE_SOURCE_DIR}/packaging)
set(EP_PKG_OUT ${CMAKE_BINARY_DIR}/packaging)
file(MAKE_DIRECTORY ${EP_PKG_OUT}/man)
# Debian's own paths, whatever CMAKE_INSTALL_PREFIX a developer uses for `cmake --install`: the units name
# /usr/bin and the configuration lives in /etc.
set(EP_UNIT_DIR /lib/systemd/system)
set(EP_CONF_DIR /etc/edgepair)

# The demo configurations point at the test PKI and the demo run/ folder relative to conf/; the packaged
# examples point where the package and the units put things.
function(ep_packaged_config name)
  set(src ${CMAKE_SOURCE_DIR}/conf/${name})
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${src})
  file(READ ${src} text)
  string(REPLACE "../certs/out/" "${EP_CONF_DIR}/tls/" text "${text}")
  string(REPLACE "../run/" "/var/lib/edgepair-c/" text "${text}")
  file(WRITE ${EP_PKG_OUT}/${name}
       "# Installed by the edgepair packages as an example: edit it (see the man page and docs/CONFIG.md), put\n"
       "# the certificates and keys in ${EP_CONF_DIR}/tls/ (readable by group edgepair), then\n"
       "# `systemctl enable --now` the unit. Relative paths are relative to this file's directory.\n"
       "${text}")
endfunction()
ep_packaged_config(edge-e.yaml)
ep_packaged_config(edge-c.yaml)

# Man pages are roff in packaging/man; Debian installs them gzipped (gzip -n: no name or time stamp, so the
# package is reproducible).
function(ep_man page section)
  set(src ${EP_PKG_DIR}/man/${page}.${section})
  set(out ${EP_PKG_OUT}/man/${page}.${section}.gz)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${src})
  execute_process(COMMAND gzip -9 -n -c ${src} OUTPUT_FILE ${out} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "gzip of ${src} failed: ${rc}")
  endif()
  set(EP_MAN_${page} ${out} PARENT_SCOPE)
endfunction()
ep_man(edge-e 8)
ep_man(edge-c 8)
ep_man(edge-load 1)

foreach(box e c)
  install(TARGETS edge-${box} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT ${box})
  install(FILES ${EP_PKG_OUT}/edge-${box}.yaml DESTINATION ${EP_CONF_DIR} COMPONENT ${box}
          PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)
  install(FILES ${EP_PKG_DIR}/systemd/edgepair-${box}.service DESTINATION ${EP_UNIT_DIR} COMPONENT ${box})
  install(FILES ${EP_MAN_edge-${box}} DESTINATION ${CMAKE_INSTALL_MANDIR}/man8 COMPONENT ${box})
  install(FILES ${CMAKE_SOURCE_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/edgepair-${box}
          RENAME copyright COMPONENT ${box})
endforeach()
# edge-e's link user database: the header only. The demo's user line (a published password) must never be
# what a fresh install accepts, so the administrator adds users with `edge-e --hash-password`.
install(FILES ${EP_PKG_DIR}/debian/link-users.txt DESTINATION ${EP_CONF_DIR} COMPONENT e
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)
if(TARGET edge-load)
  install(TARGETS edge-load RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT tools)
  install(FILES ${EP_MAN_edge-load} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT tools)
  install(FILES ${CMAKE_SOURCE_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/edgepair-tools
          RENAME copyright COMPONENT tools)
endif()

# Maintainer scripts: one template, the unit name filled in per package.
foreach(box e c)
  set(EP_UNIT edgepair-${box}.service)
  set(EP_STATE_DIR "")
  if(box STREQUAL "c")
    set(EP_STATE_DIR /var/lib/edgepair-c)
  endif()
  foreach(script postinst prerm postrm)
    configure_file(${EP_PKG_DIR}/debian/${script}.in ${EP_PKG_OUT}/${box}/${script} @ONLY
                   FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ
                                    WORLD_EXECUTE)
  endforeach()
endforeach()
file(WRITE ${EP_PKG_OUT}/e/conffiles "${EP_CONF_DIR}/edge-e.yaml\n${EP_CONF_DIR}/link-users.txt\n")
file(WRITE ${EP_PKG_OUT}/c/conffiles "${EP_CONF_DIR}/edge-c.yaml\n")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME edgepair)
set(CPACK_PACKAGE_VENDOR "edgepair")
set(CPACK_PACKAGE_CONTACT "edgepair maintainers <edgepair@localhost>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL e c)
if(TARGET edge-load)
  list(APPEND CPACK_COMPONENTS_ALL tools)
endif()
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library dependencies come from the binaries themselves (dpkg-shlibdeps), so a package built on a newer
# point release asks for the library versions it was linked against.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS OFF)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# Binaries are installed as built (RelWithDebInfo keeps symbols for a backtrace from the field); strip here.
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_E_PACKAGE_NAME edgepair-e)
set(CPACK_DEBIAN_E_PACKAGE_DEPENDS "adduser")
set(CPACK_COMPONENT_E_DESCRIPTION
    "edgepair external edge (DMZ)\nedge-e terminates client TLS for Cisco Mobile and Remote Access (HTTPS 8443,\nSIP/TLS 5061, XMPP 5222), enforces the HTTP allow list and relays media; it never opens a\nconnection into the enterprise. edge-c (package edgepair-c) dials in to it.")
set(CPACK_DEBIAN_E_PACKAGE_CONTROL_EXTRA
    "${EP_PKG_OUT}/e/conffiles;${EP_PKG_OUT}/e/postinst;${EP_PKG_OUT}/e/prerm;${EP_PKG_OUT}/e/postrm")

set(CPACK_DEBIAN_C_PACKAGE_NAME edgepair-c)
set(CPACK_DEBIAN_C_PACKAGE_DEPENDS "adduser")
set(CPACK_COMPONENT_C_DESCRIPTION
    "edgepair internal edge\nedge-c discovers Unified CM, IM&P and Unity Connection over AXL, checks client\ncredentials, and dials out to edge-e (package edgepair-e) over a mutually authenticated\nTLS traversal link that carries every client request, SIP flow and XMPP stream.")
set(CPACK_DEBIAN_C_PACKAGE_CONTROL_EXTRA
    "${EP_PKG_OUT}/c/conffiles;${EP_PKG_OUT}/c/postinst;${EP_PKG_OUT}/c/prerm;${EP_PKG_OUT}/c/postrm")

set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME edgepair-tools)
set(CPACK_COMPONENT_TOOLS_DESCRIPTION
    "edgepair load generator\nedge-load drives TLS handshakes, HTTP, get_edge_config, SIP REGISTER, XMPP and MRA\nsign-in load against an edgepair pair (loopback targets only).")

include(CPack)
