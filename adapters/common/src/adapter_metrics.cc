#include "carehub/adapters/adapter_metrics.h"

namespace carehub::adapters {

AdapterMetrics::AdapterMetrics(metrics::Registry* registry, AdapterKind kind,
                               const std::string& publisher_ods, const client::Publisher* publisher,
                               std::function<SourceCounts()> source)
    : registry_(registry), publisher_(publisher), source_(std::move(source)) {
  registry_
      ->GetGauge("carehub_adapter_info", "This adapter's kind and publisher identity",
                 {{"kind", std::string(AdapterKindName(kind))}, {"publisher_ods", publisher_ods}})
      .Set(1);
  // Registered up front so every family is present (at 0) from the first scrape.
  for (const char* outcome : {"accepted", "rejected", "error"}) {
    registry_->GetCounter("carehub_adapter_messages_total",
                          "Source messages by outcome (accepted, rejected, error)",
                          {{"outcome", outcome}});
  }
  for (const char* result : {"accepted", "duplicate", "rejected", "conflict"}) {
    registry_->GetCounter("carehub_adapter_hub_events_total",
                          "Events answered by the hub, by result", {{"result", result}});
  }
  registry_->AddRefresher([this] { Refresh(); });
}

void AdapterMetrics::Sync(metrics::Counter& counter, uint64_t total) {
  const uint64_t current = counter.Value();
  if (total > current) {
    counter.Inc(total - current);
  }
}

void AdapterMetrics::Refresh() {
  MutexLock lock(mu_);
  const client::PublisherStats pub = publisher_->Stats();
  const SourceCounts src = source_ ? source_() : SourceCounts{};
  auto& r = *registry_;
  const std::string messages_help = "Source messages by outcome (accepted, rejected, error)";
  Sync(r.GetCounter("carehub_adapter_messages_total", messages_help, {{"outcome", "accepted"}}),
       src.accepted);
  Sync(r.GetCounter("carehub_adapter_messages_total", messages_help, {{"outcome", "rejected"}}),
       src.rejected);
  Sync(r.GetCounter("carehub_adapter_messages_total", messages_help, {{"outcome", "error"}}),
       src.errors);
  for (const auto& [reason, count] : src.rejected_by_reason) {
    Sync(r.GetCounter("carehub_adapter_rejected_total", "Rejected source messages by reason",
                      {{"reason", reason}}),
         count);
  }
  Sync(
      r.GetCounter("carehub_adapter_events_enqueued_total", "Events durably written to the outbox"),
      pub.enqueued);
  r.GetGauge("carehub_adapter_outbox_depth", "Events in the outbox not yet answered by the hub")
      .Set(static_cast<double>(pub.outbox_depth));
  r.GetGauge("carehub_adapter_outbox_oldest_age_seconds",
             "Age of the oldest event in the outbox not yet answered by the hub")
      .Set(pub.oldest_unsent_age_seconds);
  const std::string hub_help = "Events answered by the hub, by result";
  Sync(r.GetCounter("carehub_adapter_hub_events_total", hub_help, {{"result", "accepted"}}),
       pub.accepted);
  Sync(r.GetCounter("carehub_adapter_hub_events_total", hub_help, {{"result", "duplicate"}}),
       pub.duplicate);
  Sync(r.GetCounter("carehub_adapter_hub_events_total", hub_help, {{"result", "rejected"}}),
       pub.rejected);
  Sync(r.GetCounter("carehub_adapter_hub_events_total", hub_help, {{"result", "conflict"}}),
       pub.conflict);
  for (const auto& [reason, count] : pub.rejected_by_reason) {
    Sync(r.GetCounter("carehub_adapter_hub_rejected_total",
                      "Events the hub refused (REJECTED or CONFLICT), by reason",
                      {{"reason", reason}}),
         count);
  }
  Sync(r.GetCounter("carehub_adapter_hub_retries_total", "Events resent to the hub"), pub.retried);
  r.GetGauge("carehub_adapter_hub_connected", "1 while the hub answers heartbeats or batches")
      .Set(pub.connected ? 1 : 0);
  for (const auto& [name, value] : src.extras) {
    const std::string full = "carehub_adapter_source_" + name;
    if (name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0) {
      Sync(r.GetCounter(full, "Source-specific counter (docs/adapters.md)"),
           static_cast<uint64_t>(value));
    } else {
      r.GetGauge(full, "Source-specific gauge (docs/adapters.md)").Set(value);
    }
  }
}

}  // namespace carehub::adapters
