#pragma once
// The hub as a library: opens the store, loads policy, binds the endpoints and runs the ingest,
// subscribe and admin servers on their own threads. `carehub` (hub/main.cc) is a thin wrapper;
// tests and benchmarks link this directly or run the binary.

#include <atomic>
#include <memory>
#include <string>

#include "carehub/core/status.h"
#include "carehub/hub/config.h"
#include "reload_report.h"

namespace carehub::hub {

class Hub {
 public:
  static Result<std::unique_ptr<Hub>> Start(const HubConfig& config);
  virtual ~Hub() = default;

  // Bound endpoints (ports resolved when the config asked for port 0).
  virtual std::string ingest_endpoint() const = 0;
  virtual std::string subscribe_endpoint() const = 0;
  virtual std::string admin_address() const = 0;

  // Re-reads agreements (and, in CURVE mode, identities), each file on its own; a file that is
  // invalid is refused and its old set stays in force. The report says, per file, what changed or
  // why it was refused. Thread-safe: reloads are serialised.
  virtual ReloadReport Reload() = 0;

  // Graceful stop: stop reading, commit and answer in-flight batches, flush, join threads.
  virtual void Stop() = 0;
};

// Sets up spdlog named loggers ("hub", "ingest", "store", "subscribe", "policy", "admin") at
// `level`, as text or one JSON object per line.
void SetUpLogging(const std::string& level, const std::string& format);

}  // namespace carehub::hub
