// The summary of carehub-bench: one verdict per target of the performance issue (15), for the
// targets whose figures the sections that ran have measured.
#include <cstdio>
#include <string>
#include <tuple>
#include <vector>

#include "sections.h"

namespace carehub::bench {
namespace {

std::string Fmt(const char* format, double a, double b = 0, double c = 0) {
  char buf[160];
  std::snprintf(buf, sizeof buf, format, a, b, c);
  return buf;
}

}  // namespace

void AddTargetSummary(BenchContext* ctx) {
  const auto& f = ctx->figures;
  auto& r = ctx->report;
  if (f.ingest_fsync_per_s) {
    const double v = *f.ingest_fsync_per_s;
    r.AddSummary("ingest (fsync) >= 300k accepted events/s", Fmt("%.0fk/s", v / 1e3), v >= 3e5);
    if (f.nats_publish_per_s && *f.nats_publish_per_s > 0) {
      const double x = v / *f.nats_publish_per_s;
      r.AddSummary("ingest (fsync) >= 3.5x NATS JetStream publish",
                   Fmt("%.2fx (%.0fk/s vs %.0fk/s)", x, v / 1e3, *f.nats_publish_per_s / 1e3),
                   x >= 3.5);
    }
    if (f.rocksdb_sync_batch_per_s && *f.rocksdb_sync_batch_per_s > 0) {
      const double x = v / *f.rocksdb_sync_batch_per_s;
      r.AddSummary("ingest (fsync) >= 70% of raw RocksDB fsync'd WriteBatch(1000)",
                   Fmt("%.1f%% (raw %.0fk/s)", x * 100, *f.rocksdb_sync_batch_per_s / 1e3),
                   x >= 0.7);
    }
  }
  if (f.growth_ratio && f.growth_events) {
    const double millions = static_cast<double>(*f.growth_events) / 1e6;
    // Judged on the ingest load (new events and the load's resends of its own recent ones); a
    // replay of old events is shown on the same line, not judged.
    r.AddSummary("ingest on a filled hub >= 0.80x the empty hub",
                 Fmt("%.2fx at %.1fM stored events", *f.growth_ratio, millions) +
                     (f.growth_replay_ratio ? Fmt(" (resending %.0f%% old events: %.2fx)",
                                                  ctx->options.growth_stored_resend_ratio * 100,
                                                  *f.growth_replay_ratio)
                                            : ""),
                 *f.growth_ratio >= 0.8);
    if (f.growth_rss_bytes) {
      const double mib = static_cast<double>(*f.growth_rss_bytes) / (1 << 20);
      r.AddSummary("hub RSS < 1 GiB at 50M events",
                   Fmt("%.0f MiB at %.1fM stored events", mib, millions) +
                       (*f.growth_events < 50'000'000 ? " (fewer than 50M: indicative)" : ""),
                   mib < 1024);
    }
  }
  if (f.fanout_per_s) {
    const double v = *f.fanout_per_s;
    // Said on the line: ten subscriptions of one view are the easy case, one encoded batch each
    // round for all of them.
    const std::string views = f.fanout_one_view ? ", 10 subscriptions of one view" : "";
    r.AddSummary("fan-out >= 1M deliveries/s to 10 subscriptions", Fmt("%.0fk/s", v / 1e3) + views,
                 v >= 1e6);
    if (f.nats_ten_consumers_per_s && *f.nats_ten_consumers_per_s > 0) {
      const double x = v / *f.nats_ten_consumers_per_s;
      r.AddSummary("fan-out >= 4x NATS JetStream with 10 equivalent consumers",
                   Fmt("%.2fx (NATS %.0fk/s)", x, *f.nats_ten_consumers_per_s / 1e3) + views,
                   x >= 4);
    }
  }
  const double rate = ctx->options.latency_rate;
  for (const auto& [what, p99s, target_ms] :
       {std::tuple{"latency p99 < 10 ms at 20k/s, fsync, in 5 of 5 runs", &f.latency_p99_ms_fsync,
                   10.0},
        std::tuple{"latency p99 < 3 ms at 20k/s, os, in 5 of 5 runs", &f.latency_p99_ms_os, 3.0}}) {
    if (p99s->empty()) {
      continue;
    }
    // "3 of 5 runs below (p99 4.1, 12.0, 8.2, 9.9, 15.3 ms) at 20000/s offered"
    size_t below = 0;
    std::string list;
    for (double p99 : *p99s) {
      below += p99 < target_ms;
      list += (list.empty() ? "" : ", ") + Fmt("%.1f", p99);
    }
    const size_t runs = p99s->size();
    r.AddSummary(what,
                 std::to_string(below) + " of " + std::to_string(runs) + " runs below (p99 " +
                     list + Fmt(" ms) at %.0f/s offered", rate) +
                     (runs < 5 ? " (fewer than 5 runs: indicative)" : ""),
                 below == runs && runs >= 5);
  }
  if (f.catchup_speedup) {
    r.AddSummary("narrow catch-up >= 50x faster than a full scan", Fmt("%.0fx", *f.catchup_speedup),
                 *f.catchup_speedup >= 50);
  }
  if (f.curve_over_plain) {
    r.AddSummary("CURVE ingest >= 85% of plain", Fmt("%.0f%%", *f.curve_over_plain * 100),
                 *f.curve_over_plain >= 0.85);
  }
}

}  // namespace carehub::bench
