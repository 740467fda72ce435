# `make demo` end to end (docs/demo.md): scripts/demo.sh on a small synthetic ICS through the real
# hub, adapters and subscribers; the report against the generator's ground truth, a SIGKILLed
# carehub-analytics, and the report in headless chromium.
carehub_add_test(carehub_demo_itest SOURCES demo_report_test.cc
  LIBS carehub_itest_harness carehub_analytics nlohmann_json::nlohmann_json)
add_dependencies(carehub_demo_itest carehub carehub-adapter carehub-subscribe carehub-analytics
  carehub-ics-generate carehub-ics-feed carehub-sink)
