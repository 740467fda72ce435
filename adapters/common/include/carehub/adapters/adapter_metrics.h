#pragma once
// The Prometheus metrics every adapter exposes (docs/adapters.md, "Running the adapters"):
//
//   carehub_adapter_info{kind,publisher_ods}                 1
//   carehub_adapter_messages_total{outcome}                  source messages: accepted (HL7 AA,
//                                                            HTTP 2xx, CSV file done), rejected
//                                                            (AR, HTTP 4xx, file to error/), error
//                                                            (AE, HTTP 503, file retried)
//   carehub_adapter_rejected_total{reason}                   rejected source messages by reason
//   carehub_adapter_events_enqueued_total                    events durably in the outbox
//   carehub_adapter_outbox_depth                             events the hub has not answered yet
//   carehub_adapter_outbox_oldest_age_seconds                age of the oldest of them
//   carehub_adapter_hub_events_total{result}                 hub answers: accepted, duplicate,
//                                                            rejected, conflict
//   carehub_adapter_hub_rejected_total{reason}               hub REJECTED/CONFLICT by reason
//   carehub_adapter_hub_retries_total                        events resent to the hub
//   carehub_adapter_hub_connected                            1 while the hub answers
//   carehub_adapter_source_<name>                            source-specific extras (counters
//                                                            ending _total, else gauges)
//
// Values that live in the publisher and the source library are copied into the registry when it
// renders (a refresher), so the hot paths do no extra work. Thread-safe.

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "carehub/adapters/adapter_config.h"
#include "carehub/client/publisher.h"
#include "carehub/core/mutex.h"
#include "carehub/metrics/registry.h"

namespace carehub::adapters {

// A snapshot of the source side's counters since start.
struct SourceCounts {
  uint64_t accepted = 0;
  uint64_t rejected = 0;
  uint64_t errors = 0;
  std::map<std::string, uint64_t> rejected_by_reason;
  // Name (without the carehub_adapter_source_ prefix) -> value.
  std::map<std::string, double> extras;
};

class AdapterMetrics {
 public:
  // `registry` and `publisher` are not owned and must outlive this object; `source` is called at
  // render time from the metrics server's threads.
  AdapterMetrics(metrics::Registry* registry, AdapterKind kind, const std::string& publisher_ods,
                 const client::Publisher* publisher, std::function<SourceCounts()> source);
  AdapterMetrics(const AdapterMetrics&) = delete;
  AdapterMetrics& operator=(const AdapterMetrics&) = delete;

  // Copies the current values into the registry (also run before every render).
  void Refresh() CAREHUB_EXCLUDES(mu_);

 private:
  // Counters only go up: bring a registry counter level with a total kept elsewhere.
  static void Sync(metrics::Counter& counter, uint64_t total);

  metrics::Registry* registry_;
  const client::Publisher* publisher_;
  std::function<SourceCounts()> source_;
  Mutex mu_;  // one refresh at a time, so two scrapes never add the same delta twice
};

}  // namespace carehub::adapters
