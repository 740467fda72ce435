# Integration tests of the `carehub-adapter` binary against the real hub; included from this
# folder's CMakeLists.txt. They reuse the hub harness and read events back through the subscriber
# client library.
add_library(carehub_adapter_itest_support STATIC ${CMAKE_CURRENT_LIST_DIR}/adapters_support.cc)
target_link_libraries(carehub_adapter_itest_support
  PUBLIC carehub_itest_harness carehub_client
  PRIVATE PkgConfig::HTTPLIB nlohmann_json::nlohmann_json carehub_warnings)
target_compile_definitions(carehub_adapter_itest_support PRIVATE
  CAREHUB_BIN_DIR="${CMAKE_BINARY_DIR}/bin")

foreach(suite config e2e outage hostile real_feeds)
  carehub_add_integration_test(carehub_adapters_${suite}_itest
    ${CMAKE_CURRENT_LIST_DIR}/adapters_${suite}_test.cc)
  target_link_libraries(carehub_adapters_${suite}_itest PRIVATE carehub_adapter_itest_support
    PkgConfig::HTTPLIB)
  add_dependencies(carehub_adapters_${suite}_itest carehub-adapter)
endforeach()
target_link_libraries(carehub_adapters_config_itest PRIVATE carehub_adapter_runtime)
# The adapter against a CURVE hub that refuses its key, then its events (issue 22): uses the
# security tests' CURVE helpers.
carehub_add_integration_test(carehub_adapters_hub_problems_itest
  ${CMAKE_CURRENT_LIST_DIR}/adapters_hub_problems_test.cc ${CMAKE_CURRENT_LIST_DIR}/security_support.cc)
target_link_libraries(carehub_adapters_hub_problems_itest PRIVATE carehub_adapter_itest_support
  PkgConfig::HTTPLIB cppzmq)
add_dependencies(carehub_adapters_hub_problems_itest carehub-adapter)
