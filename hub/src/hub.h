#pragma once
// The hub as a library: opens the store, loads policy, binds the endpoints and runs the ingest,
// subscribe and admin servers on their own threads. `carehub` (hub/main.cc) is a thin wrapper;
// tests and benchmarks link this directly or run the binary.

#include <atomic>
#include <memory>
#include <string>

#include "carehub/core/status.h"
#include "carehub/hub/config.h"

namespace carehub::hub {

class Hub {
 public:
  static Result<std::unique_ptr<Hub>> Start(const HubConfig& config);
  virtual ~Hub() = default;

  // Bound endpoints (ports resolved when the config asked for port 0).
  virtual std::string ingest_endpoint() const = 0;
  virtual std::string subscribe_endpoint() const = 0;
  virtual std::string admin_address() const = 0;

  // Re-reads agreements (and identities); the old set stays in force when the new one is invalid.
  virtual Status Reload() = 0;

  // Graceful stop: stop reading, commit and answer in-flight batches, flush, join threads.
  virtual void Stop() = 0;
};

// Sets up spdlog named loggers ("hub", "ingest", "store", "subscribe", "policy", "admin") at
// `level`, as text or one JSON object per line.
void SetUpLogging(const std::string& level, const std::string& format);

}  // namespace carehub::hub
