#pragma once
// The sink's main loop: follows one subscription with the subscriber client library and stores
// it in PostgreSQL through PgWriter, exactly once in effect (docs/postgres-sink.md).
//
//   connect PostgreSQL (migrate, claim the position row)  ─┐ backoff on failure, for ever
//   subscribe from the stored position + 1                 ─┘ (a refusal by the hub is fatal)
//   gather deliveries until batch.max_events or batch.max_delay_ms
//   one transaction: rows + position (PgWriter::Write)   → then Ack(position) to the hub
//
// The position in PostgreSQL is the truth: the hub's cursor is only acknowledged after a commit
// and is never read back. Any PostgreSQL error drops both the connection and the subscription,
// discards what was gathered but not committed, and starts over from the stored position after a
// backoff, so a PostgreSQL restart costs a short wait and a re-read, never a gap or a double.
//
// Run() is called from one thread; UnhealthyReason() and StatusJson() may be called from any
// thread (the admin server's) while it runs.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "carehub/core/mutex.h"
#include "carehub/core/status.h"
#include "carehub/metrics/registry.h"
#include "carehub/sink/sink_config.h"

namespace carehub::sink {

class PostgresSink {
 public:
  // `registry` is not owned and must outlive the sink.
  PostgresSink(SinkConfig config, metrics::Registry* registry);
  PostgresSink(const PostgresSink&) = delete;
  PostgresSink& operator=(const PostgresSink&) = delete;

  // Runs until `stop` becomes true (the open batch is committed first, then the process may
  // exit 0), until idle as configured, or until a fatal error: the hub refused the subscription,
  // the schema is newer than this binary, or the schema belongs to another subscription. A fatal
  // error is returned with its reason; everything else is retried.
  Status Run(const std::atomic<bool>& stop);

  // "" when PostgreSQL and the hub are both connected; otherwise why not.
  std::string UnhealthyReason() const;
  std::string StatusJson() const;

 private:
  struct Metrics;
  void SetProblem(std::string problem);
  void SleepBackoff(const std::atomic<bool>& stop, std::chrono::milliseconds* backoff);

  const SinkConfig config_;
  std::shared_ptr<Metrics> metrics_;
  std::atomic<uint64_t> position_{0};
  std::atomic<uint64_t> head_{0};
  std::atomic<uint64_t> loaded_{0};
  std::atomic<double> rate_{0};
  mutable Mutex mu_;
  std::string problem_ CAREHUB_GUARDED_BY(mu_) = "starting";
};

}  // namespace carehub::sink
