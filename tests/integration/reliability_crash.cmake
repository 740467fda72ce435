# Crash and restart tests (issue 9): the real hub killed at seeded crash points (CAREHUB_CRASH_AT,
# core/crash_points.h) and by kill -9, then checked with the offline consistency check. Included
# from this folder's CMakeLists.txt after subscribe.cmake (it uses the subscription test support).

if(NOT TARGET carehub_subscribe_itest_support)
  message(FATAL_ERROR "reliability_crash.cmake needs the support library of subscribe.cmake")
endif()
carehub_add_test(carehub_reliability_crash_itest
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/reliability_crash_test.cc
  LIBS carehub_subscribe_itest_support carehub_synth)
add_dependencies(carehub_reliability_crash_itest carehub carehubctl)

# Power cut (issue 16): the real hub loses every unsynced write at a seeded log append
# (CAREHUB_POWER_CUT_AT, hub/store/power_cut.h).
carehub_add_test(carehub_reliability_power_cut_itest
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/reliability_power_cut_test.cc
  LIBS carehub_subscribe_itest_support carehub_synth)
add_dependencies(carehub_reliability_power_cut_itest carehub)
