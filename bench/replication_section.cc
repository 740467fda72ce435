// 8. Replication (issue 13, docs/replication.md): ingest through a synchronous pair beside a single
// hub in the same run (target: the pair at >= 70% of the single hub: the standby's fsync runs
// beside the primary's), and the standby's lag under a steady 20k events/s with async replication
// (with sync, the lag at an answer is zero by construction).

#include <nlohmann/json.hpp>
#include <thread>

#include "hub_runner.h"
#include "ingest_load.h"
#include "sections.h"

namespace carehub::bench {
namespace {

std::string ReplicationYaml(const std::string& role, const std::string& name,
                            const std::string& peer, const std::string& mode) {
  return "replication:\n  role: " + role + "\n  name: " + name +
         "\n  listen: tcp://127.0.0.1:0\n  peer: {replication: " + peer + "}\n  mode: " + mode +
         "\n  on_standby_loss: block\n";
}

struct PairRun {
  std::unique_ptr<HubRunner> primary;
  std::unique_ptr<HubRunner> standby;
};

nlohmann::json ReplicationStatus(const HubRunner& hub) {
  auto text = hub.Get("/api/v1/replication");
  auto j = nlohmann::json::parse(text, nullptr, false);
  return j.is_discarded() ? nlohmann::json::object() : j;
}

// Starts a primary and its standby and waits until the standby is in sync.
Result<PairRun> StartPair(BenchContext* ctx, const std::string& tag, const std::string& mode) {
  PairRun pair;
  HubRunOptions p;
  p.binary = ctx->options.carehub_binary;
  p.dir = ctx->NewDir(tag + "-primary");
  // The standby's endpoint is not known yet and the primary never connects to it.
  p.extra_yaml = ReplicationYaml("primary", "bench-a", "tcp://127.0.0.1:1", mode);
  auto primary = HubRunner::Start(p);
  if (!primary.ok()) {
    return primary.status();
  }
  pair.primary = std::move(primary).value();
  HubRunOptions s;
  s.binary = ctx->options.carehub_binary;
  s.dir = ctx->NewDir(tag + "-standby");
  s.extra_yaml = ReplicationYaml("standby", "bench-b", pair.primary->replication_endpoint(), mode);
  auto standby = HubRunner::Start(s);
  if (!standby.ok()) {
    return standby.status();
  }
  pair.standby = std::move(standby).value();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = ReplicationStatus(*pair.primary);
    if (r.contains("standby") && r["standby"].value("in_sync", false)) {
      return pair;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return Status::Error("bench_failed", tag + ": the standby did not get in sync");
}

Status Check(const std::string& what, const IngestLoadResult& r) {
  if (r.sent == 0 || r.other > 0) {
    std::string reasons;
    for (const auto& [reason, n] : r.other_by_reason) {
      reasons += (reasons.empty() ? " (" : ", ") + reason + ": " + std::to_string(n);
    }
    return Status::Error("bench_failed", what + ": " + std::to_string(r.sent) + " answered, " +
                                             std::to_string(r.other) + " not accepted" +
                                             (reasons.empty() ? "" : reasons + ")"));
  }
  return Status::Ok();
}

}  // namespace

Status RunReplicationSection(BenchContext* ctx) {
  const std::string sec = "replication";
  const uint64_t events = ctx->options.ingest_events;
  // The single hub, in this section's own run (the ingest section may not have run).
  double single = 0;
  {
    HubRunOptions ho;
    ho.binary = ctx->options.carehub_binary;
    ho.dir = ctx->NewDir("replication-single");
    auto hub = HubRunner::Start(ho);
    if (!hub.ok()) {
      return hub.status();
    }
    std::fprintf(stderr, "[%s] single hub, fsync: %lu events ...\n", sec.c_str(), events);
    auto r = RunIngestLoad(LoadOptions(*ctx, (*hub)->ingest_endpoint(), events));
    CAREHUB_RETURN_IF_ERROR(Check("single hub", r));
    single = r.accepted_per_second();
    CAREHUB_RETURN_IF_ERROR((*hub)->Stop());
  }
  double pair_rate = 0;
  {
    auto pair = StartPair(ctx, "replication-sync", "sync");
    if (!pair.ok()) {
      return pair.status();
    }
    std::fprintf(stderr, "[%s] sync pair, fsync on both: %lu events ...\n", sec.c_str(), events);
    auto r = RunIngestLoad(LoadOptions(*ctx, pair->primary->ingest_endpoint(), events));
    CAREHUB_RETURN_IF_ERROR(Check("sync pair", r));
    pair_rate = r.accepted_per_second();
    ctx->report.Add(sec, "pair_ack_p99_ms", "sync pair batch ack latency p99", r.ack_p99_ms, "ms");
    auto status = ReplicationStatus(*pair->primary);
    ctx->report.Set(sec, "pair_bytes_shipped", status["standby"].value("bytes_shipped", 0ull));
    CAREHUB_RETURN_IF_ERROR(pair->primary->Stop());
    CAREHUB_RETURN_IF_ERROR(pair->standby->Stop());
  }
  ctx->report.Add(sec, "single_accepted_per_s", "single hub accepted events/s (fsync)", single,
                  "/s");
  ctx->report.Add(sec, "pair_accepted_per_s", "sync pair accepted events/s (fsync both)", pair_rate,
                  "/s");
  const double ratio = single > 0 ? pair_rate / single : 0;
  ctx->report.Add(sec, "pair_vs_single", "sync pair / single hub", ratio, "x", ">= 0.70",
                  ratio >= 0.70);

  // Lag of an async standby under a steady load.
  auto pair = StartPair(ctx, "replication-async", "async");
  if (!pair.ok()) {
    return pair.status();
  }
  auto lo =
      LoadOptions(*ctx, pair->primary->ingest_endpoint(),
                  static_cast<uint64_t>(ctx->options.latency_rate * ctx->options.latency_seconds));
  lo.rate = ctx->options.latency_rate;
  lo.batch_events = ctx->options.latency_batch;
  lo.resend_ratio = 0;
  std::fprintf(stderr, "[%s] async pair at %.0f events/s for %.0f s ...\n", sec.c_str(), lo.rate,
               ctx->options.latency_seconds);
  std::atomic<bool> done{false};
  IngestLoadResult steady;
  std::thread load([&] {
    steady = RunIngestLoad(lo);
    done.store(true);
  });
  std::vector<double> lag_ms;
  std::vector<double> lag_changes;
  while (!done.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto r = ReplicationStatus(*pair->primary);
    if (r.contains("standby")) {
      lag_ms.push_back(r["standby"].value("lag_ms", 0.0));
      lag_changes.push_back(static_cast<double>(r["standby"].value("lag_changes", 0ull)));
    }
  }
  load.join();
  CAREHUB_RETURN_IF_ERROR(Check("async pair", steady));
  ctx->report.Add(sec, "async_rate", "async pair steady load, accepted events/s",
                  steady.accepted_per_second(), "/s");
  ctx->report.Add(sec, "async_lag_p50_ms", "async standby lag p50", Percentile(&lag_ms, 0.5), "ms");
  ctx->report.Add(sec, "async_lag_p99_ms", "async standby lag p99", Percentile(&lag_ms, 0.99),
                  "ms");
  ctx->report.Add(sec, "async_lag_max_ms", "async standby lag max", Percentile(&lag_ms, 1.0), "ms");
  ctx->report.Add(sec, "async_lag_p99_records", "async standby lag p99 (store records)",
                  Percentile(&lag_changes, 0.99), "");
  CAREHUB_RETURN_IF_ERROR(pair->primary->Stop());
  return pair->standby->Stop();
}

}  // namespace carehub::bench
