# carehub-fhir-notify integration tests (issue 18): the real hub and notify binaries and a real
# HTTPS receiver started by the test. Notifications are checked against HL7's FHIR R4 JSON schema
# (vendored, gzipped, in tests/data/fhir-r4/: HL7's file, CC0; scripts/fetch-fhir-schema.sh is how
# it was fetched and checks its SHA-256) with Debian's python3-jsonschema. No network at test time.
# Included from tests/integration/CMakeLists.txt.
set(CAREHUB_FHIR_SCHEMA "${CMAKE_SOURCE_DIR}/tests/data/fhir-r4/fhir.schema.json.gz")

find_package(OpenSSL REQUIRED)
add_library(carehub_fhir_notify_itest_support STATIC
  ${CMAKE_CURRENT_LIST_DIR}/fhir_notify/fhir_notify_support.cc)
target_include_directories(carehub_fhir_notify_itest_support PUBLIC ${CMAKE_CURRENT_LIST_DIR}/fhir_notify)
target_link_libraries(carehub_fhir_notify_itest_support
  PUBLIC carehub_itest_harness nlohmann_json::nlohmann_json
  PRIVATE PkgConfig::HTTPLIB OpenSSL::SSL OpenSSL::Crypto carehub_warnings)
target_compile_definitions(carehub_fhir_notify_itest_support PRIVATE
  CAREHUB_FHIR_SCHEMA="${CAREHUB_FHIR_SCHEMA}" CAREHUB_SOURCE_DIR="${CMAKE_SOURCE_DIR}")

carehub_add_test(carehub_fhir_notify_itest
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/fhir_notify/fhir_notify_test.cc
  LIBS carehub_fhir_notify_itest_support carehub_subscribe_itest_support carehub_synth
       PkgConfig::HTTPLIB OpenSSL::SSL OpenSSL::Crypto)
add_dependencies(carehub_fhir_notify_itest carehub carehub-fhir-notify)

# The round trip through the FHIR adapter: needs the adapters (-DCAREHUB_WITH_ADAPTERS=OFF leaves
# it out with them). It maps received resources back with the adapter's own intake mapping.
if(CAREHUB_WITH_ADAPTERS)
  carehub_add_test(carehub_fhir_notify_roundtrip_itest
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/fhir_notify/fhir_notify_roundtrip_test.cc
    LIBS carehub_fhir_notify_itest_support carehub_subscribe_itest_support
         carehub_adapter_itest_support carehub_adapter_fhir carehub_adapter_common)
  target_include_directories(carehub_fhir_notify_roundtrip_itest PRIVATE
    ${CMAKE_SOURCE_DIR}/adapters/fhir/src ${CMAKE_CURRENT_LIST_DIR})
  add_dependencies(carehub_fhir_notify_roundtrip_itest carehub carehub-adapter carehub-fhir-notify)
endif()

# Throughput to a loopback HTTPS receiver (docs/fhir-notify.md, "Throughput"): built on demand.
add_executable(carehub-fhir-notify-bench EXCLUDE_FROM_ALL
  ${CMAKE_CURRENT_LIST_DIR}/fhir_notify/fhir_notify_bench.cc)
target_link_libraries(carehub-fhir-notify-bench PRIVATE carehub_fhir_notify_itest_support
  carehub_subscribe_itest_support carehub_synth carehub_warnings)
target_compile_definitions(carehub-fhir-notify-bench PRIVATE CAREHUB_BIN_DIR="${CMAKE_BINARY_DIR}/bin")
add_dependencies(carehub-fhir-notify-bench carehub carehub-fhir-notify)
