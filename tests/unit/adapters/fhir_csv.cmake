# FHIR and CSV adapter tests; included from this folder's CMakeLists.txt.
carehub_add_test(fhir_listener_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/fhir_listener_test.cc
  LIBS carehub_adapter_fhir PkgConfig::HTTPLIB nlohmann_json::nlohmann_json Threads::Threads)
carehub_add_test(fhir_uk_core_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/fhir_uk_core_test.cc
  LIBS carehub_adapter_fhir PkgConfig::HTTPLIB nlohmann_json::nlohmann_json Threads::Threads)
carehub_add_test(csv_adapter_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/csv_reader_test.cc ${CMAKE_CURRENT_LIST_DIR}/csv_watcher_test.cc
  LIBS carehub_adapter_csv nlohmann_json::nlohmann_json Threads::Threads)
