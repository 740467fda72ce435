# carehub-sink postgres (issue 19, docs/postgres-sink.md) against a real PostgreSQL 15 server each
# test starts on a temp dir (pg_cluster.h), the real hub and the subscriber client library.
# Included from tests/integration/CMakeLists.txt.

add_library(carehub_pg_itest_support STATIC ${CMAKE_CURRENT_SOURCE_DIR}/pg_cluster.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/html_table.cc)
target_include_directories(carehub_pg_itest_support PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(carehub_pg_itest_support PUBLIC carehub_itest_harness
  PRIVATE carehub_warnings)

# The PostgreSQL cluster beside a hub, for the tests below that run the sink against both.
add_library(carehub_sink_itest_support STATIC ${CMAKE_CURRENT_SOURCE_DIR}/sink_support.cc)
target_link_libraries(carehub_sink_itest_support
  PUBLIC carehub_pg_itest_support carehub_subscribe_itest_support
  PRIVATE GTest::gtest carehub_warnings)

carehub_add_test(carehub_sink_postgres_itest
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/sink_postgres_test.cc
  LIBS carehub_sink_itest_support carehub_synth)
add_dependencies(carehub_sink_postgres_itest carehub carehub-sink)

# carehub-sink report: funnel plots and XmR charts from the tables, on a month built by hand.
carehub_add_test(carehub_sink_charts_itest
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/sink_charts_test.cc
  LIBS carehub_sink_itest_support carehub_synth)
add_dependencies(carehub_sink_charts_itest carehub carehub-sink)

# The demo's report checked by SQL over the demo's own PostgreSQL (scripts/demo.sh, DEMO_PG_KEEP).
if(CAREHUB_WITH_ADAPTERS)
  carehub_add_test(carehub_sink_report_itest
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/sink_report_test.cc
    LIBS carehub_pg_itest_support nlohmann_json::nlohmann_json)
  add_dependencies(carehub_sink_report_itest carehub carehub-adapter carehub-subscribe
    carehub-analytics carehub-ics-generate carehub-ics-feed carehub-sink)
endif()
