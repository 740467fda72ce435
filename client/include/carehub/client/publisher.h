#pragma once
// The publisher client library every adapter uses (DESIGN §3).
//
// Enqueue() writes events to a durable outbox (RocksDB in `outbox_dir`, fsync'd) and returns only
// once they are on disk: after it returns OK an adapter may acknowledge its source (HL7 AA, HTTP
// 201, a CSV file moved to done/). A background thread batches outbox events to the hub over a
// ZeroMQ DEALER socket, keeps unanswered batches, resends them after a timeout or reconnect, and
// removes an event from the outbox only when the hub answered ACCEPTED or DUPLICATE. REJECTED and
// CONFLICT move the event to the outbox's error store with the hub's reason. RETRY (hub could not
// store) keeps it for a later resend.
//
// Thread-safe: Enqueue and the accessors may be called from any thread.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "carehub/client/curve.h"
#include "carehub/core/status.h"
#include "carehub/v1/event.pb.h"

namespace carehub::client {

struct PublisherOptions {
  std::string endpoint = "tcp://127.0.0.1:7400";
  std::filesystem::path outbox_dir;
  // Optional CURVE credentials; plain when unset.
  std::optional<CurveClientKeys> curve;
  size_t max_batch_events = 1000;
  // Unanswered batches in flight at once.
  size_t max_inflight_batches = 8;
  // A batch unanswered this long is sent again.
  std::chrono::milliseconds resend_after{5000};
  std::chrono::milliseconds heartbeat_interval{2000};
  // fsync the outbox on every Enqueue (the default; false only for load tests).
  bool sync_outbox = true;
};

struct PublisherStats {
  uint64_t outbox_depth = 0;         // events not yet answered ACCEPTED/DUPLICATE/REJECTED/CONFLICT
  double oldest_unsent_age_seconds = 0;
  uint64_t enqueued = 0;
  uint64_t accepted = 0;
  uint64_t duplicate = 0;
  uint64_t rejected = 0;
  uint64_t conflict = 0;
  uint64_t retried = 0;              // events the hub asked to resend, or resent after a timeout
  uint64_t errors_stored = 0;        // events in the error store
  bool connected = false;            // a heartbeat or answer came from the hub recently
  std::map<std::string, uint64_t> rejected_by_reason;  // REJECTED and CONFLICT, by reason
  // Empty while the hub answers; else why it does not, as the socket saw it (client
  // ConnectionWatch: nothing listening, key refused, wrong server key ...). Also logged at warn.
  std::string hub_problem;
};

// An event the hub refused for good, kept in the outbox's error store.
struct FailedEvent {
  std::string event_id;
  std::string publisher_ods;
  std::string status;   // "REJECTED" or "CONFLICT"
  std::string reason;
  std::string message;
};

class Publisher {
 public:
  static Result<std::unique_ptr<Publisher>> Open(PublisherOptions options);
  virtual ~Publisher() = default;
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  // Durably stores the events in the outbox. OK means they will reach the hub eventually.
  virtual Status Enqueue(const std::vector<v1::Event>& events) = 0;

  // Waits until the outbox is empty (every event answered) or the timeout passes; true if empty.
  virtual bool Drain(std::chrono::milliseconds timeout) = 0;

  virtual PublisherStats Stats() const = 0;
  virtual std::vector<FailedEvent> Failures(size_t max = 1000) const = 0;

  // Stops the sender thread; unanswered events stay in the outbox for the next Open.
  virtual void Close() = 0;

 protected:
  Publisher() = default;
};

}  // namespace carehub::client
