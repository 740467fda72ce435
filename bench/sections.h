#pragma once
// The sections of carehub-bench. Each starts what it needs (hubs on temp data dirs, a NATS server,
// raw RocksDB or ZeroMQ), records its figures in the Report and returns an error only when the
// measurement itself could not be made.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "carehub/core/status.h"
#include "report.h"

namespace carehub::bench {

class HubRunner;

struct BenchOptions {
  bool quick = false;
  std::filesystem::path carehub_binary;
  std::filesystem::path work_dir;  // temp data dirs live under here
  uint32_t connections = 4;
  uint32_t batch_events = 1000;
  uint32_t window_batches = 8;
  double resend_ratio = 0.1;
  uint64_t ingest_events = 2'000'000;
  uint64_t fanout_events = 1'000'000;
  // The fan-out section's ten subscriptions all of one view (one subscriber, purpose and
  // agreement: the hub decides and encodes each batch once for all of them) instead of ten
  // distinct ones; NATS's ten consumers then all filter "fan.>".
  bool fanout_one_view = false;
  uint64_t catchup_events = 5'000'000;
  double latency_rate = 20'000;
  double latency_seconds = 30;
  uint32_t latency_batch = 20;
  // The latency target holds in 5 of 5 runs: each run a fresh hub per durability, fsync and os
  // alternating.
  uint32_t latency_runs = 5;
  // When set, each latency run writes one line per publish batch to "<latency_trace>.<section>":
  // its due time (ms from the run's start), its answer's latency and its slowest event's
  // publisher-to-subscriber latency (ms). Shows whether a run's tail is spread or in bursts.
  std::string latency_trace;
  uint64_t footprint_events = 20'000'000;
  std::vector<uint64_t> dedup_keys = {1'000'000, 20'000'000};
  // --growth: the hub is filled to growth_events (random UUID ids unless sequential), then the
  // ingest load runs on it and on an empty hub (the target's pairs); then, when
  // growth_stored_resend_ratio > 0, pairs whose filled loads also resend that share of old stored
  // events (a replay: shown beside the target, not judged).
  uint64_t growth_events = 50'000'000;
  bool growth_random_ids = true;
  double growth_stored_resend_ratio = 0.02;
  // Back-to-back pairs (empty hub, filled hub) whose median ratio is the growth figure.
  uint32_t growth_pairs = 3;
  uint64_t limits_events = 2'000'000;
  uint64_t nats_events = 2'000'000;
  uint64_t sink_events = 200'000;
  uint32_t sink_window = 0;  // carehub-sink --window; 0: the sink's default
  std::string nats_server = "nats-server";
  uint64_t disclosure_events = 20'000'000;  // delivered events filed for the disclosure report
};

// Figures later sections compare against (ratios, targets), filled as sections run.
struct SharedFigures {
  std::optional<double> ingest_fsync_per_s;
  std::optional<double> full_delivery_per_s;  // full subscription reading a backlog
  std::optional<double> rocksdb_sync_batch_per_s;
  std::optional<double> nats_publish_per_s;
  std::optional<double> nats_consume_per_s;
  std::optional<double> nats_ten_consumers_per_s;  // deliveries/s, ten filtered consumers
  std::optional<double> fanout_per_s;
  bool fanout_one_view = false;              // measured with --fanout-views one
  std::vector<double> latency_p99_ms_fsync;  // one per latency run
  std::vector<double> latency_p99_ms_os;
  std::optional<double> catchup_speedup;
  std::optional<double> curve_over_plain;
  std::optional<double> growth_ratio;         // the ingest load, filled / empty
  std::optional<double> growth_replay_ratio;  // the same with old events resent
  std::optional<uint64_t> growth_events;
  std::optional<uint64_t> growth_rss_bytes;
};

struct BenchContext {
  BenchOptions options;
  Report report;
  SharedFigures figures;
  // A fresh directory under options.work_dir.
  std::filesystem::path NewDir(const std::string& tag);
};

Status RunIngestSection(BenchContext* ctx);
// The ingest load (fsync) over CURVE, beside the plain fsync figure of the ingest section.
Status RunCurveSection(BenchContext* ctx);
Status RunFanoutSection(BenchContext* ctx);
Status RunCatchupSection(BenchContext* ctx);
Status RunLatencySection(BenchContext* ctx);
Status RunFootprintSection(BenchContext* ctx);
// The ingest load on an empty hub and on one filled to growth_events: is the cost flat?
Status RunGrowthSection(BenchContext* ctx);
Status RunLimitsSection(BenchContext* ctx);
Status RunNatsSection(BenchContext* ctx);
// A synchronous pair beside a single hub; an async standby's lag at a steady rate.
Status RunReplicationSection(BenchContext* ctx);
// carehub-sink into PostgreSQL, beside the plain subscriber and raw COPY of the same rows.
Status RunSinkSection(BenchContext* ctx);
// One patient's disclosure report in a store of N delivered events (issue 20's goal: < 1 s at 20M).
Status RunDisclosureSection(BenchContext* ctx);
// Ratios between sections (carehub/NATS, carehub/raw RocksDB) once they have all run.
void AddComparisons(BenchContext* ctx);
// One line per target of the performance issue (15) whose figures this run measured: met or
// missed, in the table's "summary" section and the JSON's "summary" list.
void AddTargetSummary(BenchContext* ctx);

// The sections' ingest load against `endpoint`: the run's connections, batch, window and resend
// ratio.
struct IngestLoadOptions;
IngestLoadOptions LoadOptions(const BenchContext& ctx, const std::string& endpoint,
                              uint64_t events);

// A hub for a section on a fresh dir under the run's work dir, with the fan-out section's ten
// subscriptions (sub-all: everything, direct care) when `with_agreements`.
Result<std::unique_ptr<HubRunner>> StartHub(BenchContext* ctx, const std::string& tag,
                                            const std::string& durability, bool with_agreements);
// Reads `subscription` from the earliest event to the head: {seconds, events delivered}.
Result<std::pair<double, uint64_t>> CatchUp(const std::string& endpoint,
                                            const std::string& subscription);

// The fan-out section's 100 publishers (each ~1% of events) and, for the NATS section's equivalent
// consumers, each of its ten subscriptions as a JetStream subject filter over the subjects
// NatsSubject gives an event: "fan.<group>.<subgroup>.<publisher>.<event type>".
std::vector<std::string> BenchPublishers();
struct FanoutFilter {
  std::string subscription;
  std::string nats_filter;
  double expected_share;
};
std::vector<FanoutFilter> FanoutNatsFilters(bool one_view);
std::string NatsSubject(const std::string& publisher, const std::string& event_type);

// Percentile (0..1) of unsorted samples; sorts them.
double Percentile(std::vector<double>* samples, double q);

}  // namespace carehub::bench
