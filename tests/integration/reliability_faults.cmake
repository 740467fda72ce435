# Reliability under network and storage faults (issue 9): the real hub against disconnecting,
# stampeding, non-reading and silent clients, and against a read-only data dir and a damaged
# write-ahead log. Included from this folder's CMakeLists.txt, after ops.cmake and subscribe.cmake
# (it uses their support libraries).

if(NOT TARGET carehub_ops_itest_common AND TARGET carehub_subscribe_itest_support)
  message(FATAL_ERROR "reliability_faults.cmake needs the support libraries of ops.cmake and subscribe.cmake")
endif()
function(carehub_add_reliability_itest name source)
  carehub_add_test(${name} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/${source}
    LIBS carehub_ops_itest_common carehub_subscribe_itest_support carehub_client carehub_synth)
  add_dependencies(${name} carehub carehub-publish)
endfunction()

carehub_add_reliability_itest(carehub_reliability_network_itest reliability_network_test.cc)
carehub_add_reliability_itest(carehub_reliability_storage_itest reliability_storage_test.cc)
