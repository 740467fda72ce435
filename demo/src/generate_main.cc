// carehub-ics-generate: writes the synthetic integrated care system of `make demo` (docs/demo.md).
//
//   carehub-ics-generate --out DIR [--seed N] [--patients N] [--volume X] [--quarter 2026Q3]
//
// Prints what it wrote as JSON on stdout. Exit codes: 0 done, 1 cannot write, 2 bad usage.

#include <chrono>
#include <cstdio>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "carehub/demo/ics_generator.h"

int main(int argc, char** argv) {
  CLI::App app{"carehub-ics-generate: a synthetic ICS quarter in HL7 v2, FHIR R4 and CSV"};
  std::string out;
  std::string quarter;
  carehub::demo::IcsOptions options;
  app.add_option("--out", out, "output folder")->required();
  app.add_option("--seed", options.seed, "random seed (same seed, same files)");
  app.add_option("--patients", options.patients, "registered patients (up to 900000)");
  app.add_option("--volume", options.volume, "activity volume relative to the default sampling");
  app.add_option("--quarter", quarter, "calendar quarter YYYYQn (default: the last complete one)");
  CLI11_PARSE(app, argc, argv);
  if (quarter.empty()) {
    const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    options.quarter_start = carehub::demo::LastCompleteQuarterStart(now, &options.quarter_days);
  } else {
    auto start = carehub::demo::ParseQuarter(quarter, &options.quarter_days);
    if (!start.ok()) {
      std::fprintf(stderr, "carehub-ics-generate: --quarter: %s\n", start.status().message().c_str());
      return 2;
    }
    options.quarter_start = start.value();
  }
  auto summary = carehub::demo::GenerateIcs(options, out);
  if (!summary.ok()) {
    std::fprintf(stderr, "carehub-ics-generate: %s\n", summary.status().ToString().c_str());
    return 1;
  }
  const carehub::demo::IcsSummary& s = summary.value();
  nlohmann::json j = {{"events", s.events},
                      {"resends", s.resends},
                      {"invalid", s.invalid},
                      {"opted_out_patients", s.opted_out_patients},
                      {"withheld_events", s.withheld_events},
                      {"records_by_output", s.records_by_output}};
  std::printf("%s\n", j.dump().c_str());
  return 0;
}
