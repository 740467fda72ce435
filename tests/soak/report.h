#pragma once
// The soak's report: what ran, what was injected, what the final consistency check found, and the
// hub's RSS and open file descriptors over time. Printed as text and written as report.json and
// report.md under the output directory.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "carehub/core/status.h"
#include "feeds.h"
#include "traffic.h"

namespace carehub::soak {

// One look at the hub (every few seconds).
struct Sample {
  double at_seconds = 0;
  bool hub_up = false;
  uint64_t rss_bytes = 0;
  uint64_t open_fds = 0;
  uint64_t enqueued = 0;       // events the publishers enqueued so far
  uint64_t acknowledged = 0;   // answered ACCEPTED or DUPLICATE
  uint64_t deliveries = 0;     // events received by all subscribers, duplicates included
};

struct FeedSummary {
  std::string subscription;
  std::string purpose;
  FeedCounters counters;
};

struct SoakReport {
  std::string command;
  uint64_t seed = 0;
  double minutes = 0;
  double rate = 0;
  double seconds = 0;
  // Traffic, summed over the publishers.
  TrafficCounters traffic;
  uint64_t stored = 0;
  uint64_t stored_twice = 0;
  uint64_t lost = 0;              // valid events sent but not stored
  uint64_t invalid_stored = 0;
  uint64_t quarantined = 0;
  uint64_t outbox_left = 0;
  // Faults injected.
  uint64_t restarts_graceful = 0;
  uint64_t restarts_kill9 = 0;
  uint64_t reloads_narrow = 0;
  uint64_t reloads_widen = 0;
  uint64_t reloads_refused = 0;
  std::vector<std::string> timeline;  // "+12.3 s kill -9" ...
  std::vector<FeedSummary> feeds;
  std::vector<Sample> samples;
  std::string store_check;            // one line from the store's own consistency check
  uint64_t findings = 0;
  std::vector<std::string> first_findings;

  uint64_t FaultsInjected() const;
  uint64_t SubscriberChurn() const;
  bool ok() const { return findings == 0 && lost == 0; }
};

std::string ReportText(const SoakReport& r);
std::string ReportMarkdown(const SoakReport& r);
std::string ReportJson(const SoakReport& r);
// Writes report.json and report.md into `dir` (created if needed).
Status WriteReport(const SoakReport& r, const std::filesystem::path& dir);

}  // namespace carehub::soak
