# A synchronous standby (issue 13, docs/replication.md): two real hub processes on loopback,
# killed, promoted, demoted and wiped, with carehubctl. Included from this folder's
# CMakeLists.txt after ops.cmake and subscribe.cmake (it uses their support libraries).

carehub_add_test(carehub_replication_itest
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/replication_test.cc
          ${CMAKE_CURRENT_SOURCE_DIR}/security_support.cc
  LIBS carehub_ops_itest_common carehub_subscribe_itest_support carehub_client carehub_synth
       carehub_hub PkgConfig::HTTPLIB cppzmq)
add_dependencies(carehub_replication_itest carehub carehubctl)
