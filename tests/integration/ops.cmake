# Operations integration tests (metrics, alert rules, full disk, status page, carehubctl): the real
# hub, carehub-publish, carehub-subscribe and carehubctl binaries, plus promtool and headless
# chromium from Debian (scripts/install-deps.sh). Included from this folder's CMakeLists.txt.

add_library(carehub_ops_itest_common STATIC ops_common.cc)
target_link_libraries(carehub_ops_itest_common
  PUBLIC carehub_itest_harness nlohmann_json::nlohmann_json
  PRIVATE PkgConfig::HTTPLIB carehub_warnings)
target_compile_definitions(carehub_ops_itest_common PRIVATE
  CAREHUB_SOURCE_DIR="${CMAKE_SOURCE_DIR}")

function(carehub_add_ops_test name)
  carehub_add_test(${name} SOURCES ${ARGN}
    LIBS carehub_ops_itest_common carehub_itest_harness nlohmann_json::nlohmann_json)
  add_dependencies(${name} carehub carehub-publish carehub-subscribe carehubctl)
endfunction()

carehub_add_ops_test(carehub_ops_metrics_itest ops_metrics_test.cc)
target_link_libraries(carehub_ops_metrics_itest PRIVATE yaml-cpp)
# Whether the hub is built on jemalloc (not in sanitizer builds): the allocator test's expectation.
target_compile_definitions(carehub_ops_metrics_itest PRIVATE
  CAREHUB_LINKS_JEMALLOC=${CAREHUB_LINKS_JEMALLOC})
carehub_add_ops_test(carehub_ops_store_full_itest ops_store_full_test.cc)
carehub_add_ops_test(carehub_ops_status_page_itest ops_status_page_test.cc)
carehub_add_ops_test(carehub_ops_ctl_itest ops_ctl_test.cc ${PROJECT_SOURCE_DIR}/tools/ctl_format.cc)
target_include_directories(carehub_ops_ctl_itest PRIVATE ${PROJECT_SOURCE_DIR}/tools)
target_link_libraries(carehub_ops_ctl_itest PRIVATE carehub_client)
# Operator experience (issue 22): reload reports, JSON logs, secret file modes, client diagnoses of
# a silent CURVE hub. Uses the security tests' CURVE helpers.
carehub_add_ops_test(carehub_ops_experience_itest ops_experience_test.cc security_support.cc)
target_link_libraries(carehub_ops_experience_itest PRIVATE carehub_client PkgConfig::HTTPLIB cppzmq)
# The first-deployment walkthrough of docs/operations.md, extracted and run as written; it starts
# the HL7 adapter, which -DCAREHUB_WITH_ADAPTERS=OFF leaves out.
if(CAREHUB_WITH_ADAPTERS)
  carehub_add_ops_test(carehub_ops_walkthrough_itest ops_walkthrough_test.cc)
  add_dependencies(carehub_ops_walkthrough_itest carehub-adapter)
endif()
# Trace, disclosures, browse and reveal (issue 20): the admin API and carehubctl against a real hub
# and real subscribers.
carehub_add_ops_test(carehub_inquiry_itest inquiry_test.cc)
target_link_libraries(carehub_inquiry_itest PRIVATE carehub_subscribe_itest_support carehub_synth)
