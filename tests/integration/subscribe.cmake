# Subscription integration tests (DESIGN §6): the real hub, `carehub-subscribe` processes and the
# subscriber client library over real sockets, with agreement files each test writes itself.
# Included from tests/integration/CMakeLists.txt.

add_library(carehub_subscribe_itest_support STATIC
  ${CMAKE_CURRENT_SOURCE_DIR}/subscribe_support.cc)
target_include_directories(carehub_subscribe_itest_support PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(carehub_subscribe_itest_support
  PUBLIC carehub_itest_harness carehub_client nlohmann_json::nlohmann_json
  PRIVATE PkgConfig::HTTPLIB carehub_warnings)

# carehub_add_subscribe_itest(NAME SOURCE): builds the daemons and tools the test runs.
function(carehub_add_subscribe_itest name source)
  carehub_add_test(${name} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/${source}
    LIBS carehub_subscribe_itest_support carehub_synth)
  add_dependencies(${name} carehub carehub-publish carehub-subscribe)
endfunction()

carehub_add_subscribe_itest(carehub_subscribe_policy_itest subscribe_policy_test.cc)
carehub_add_subscribe_itest(carehub_subscribe_resume_itest subscribe_resume_test.cc)
carehub_add_subscribe_itest(carehub_subscribe_stall_itest subscribe_stall_test.cc)
carehub_add_subscribe_itest(carehub_subscribe_reload_itest subscribe_reload_test.cc)
carehub_add_subscribe_itest(carehub_subscribe_route_itest subscribe_route_test.cc)
# Subscriptions of one view sharing each batch (issue 15).
carehub_add_subscribe_itest(carehub_subscribe_shared_view_itest subscribe_shared_view_test.cc)
target_link_libraries(carehub_subscribe_shared_view_itest PRIVATE carehub_ops_itest_common)
# docs/protocol.md's table of reason and error codes, checked against the hub (issue 16).
carehub_add_subscribe_itest(carehub_protocol_doc_itest protocol_doc_test.cc)
