#pragma once
// The subscriber client library (DESIGN §6). Opens one subscription on the hub's subscribe endpoint
// (ZeroMQ DEALER), grants credit as it consumes deliveries, and acknowledges only when the
// application says it has safely handled events: after a crash it resumes from the last
// acknowledgement without gaps (delivery is at-least-once, ordered by hub_seq).
//
// Not thread-safe: use a Subscriber from one thread.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "carehub/client/curve.h"
#include "carehub/core/status.h"
#include "carehub/v1/wire.pb.h"

namespace carehub::client {

struct SubscriberOptions {
  std::string endpoint = "tcp://127.0.0.1:7401";
  std::string subscription;
  v1::Subscribe::Start start = v1::Subscribe::START_RESUME;
  uint64_t start_seq = 0;        // for START_AT_SEQ
  int64_t start_time_unix_ms = 0;  // for START_AT_TIME
  // Events the hub may have outstanding towards us.
  uint32_t window = 10'000;
  std::optional<CurveClientKeys> curve;
  std::chrono::milliseconds heartbeat_interval{2000};
  // No word from the hub for this long: reconnect and resubscribe (resume).
  std::chrono::milliseconds hub_timeout{10'000};
  std::chrono::milliseconds connect_timeout{5000};
};

struct DeliveryBatch {
  std::vector<v1::DeliveredEvent> events;
  // Every hub_seq up to here was examined; after handling `events`, Ack(scanned_to_seq).
  uint64_t scanned_to_seq = 0;
  uint64_t head_seq = 0;
  uint64_t epoch = 0;  // of the primary that sent it
};

class Subscriber {
 public:
  // Connects and subscribes; fails with the hub's reason (unknown_subscription,
  // not_your_subscription ...) or "hub_unreachable" after connect_timeout.
  static Result<std::unique_ptr<Subscriber>> Open(SubscriberOptions options);
  virtual ~Subscriber() = default;

  // Waits up to `timeout` for the next delivery. An empty optional means nothing arrived. A batch
  // may hold no events but still advance scanned_to_seq (the hub examined events this
  // subscription does not receive).
  virtual Result<std::optional<DeliveryBatch>> Next(std::chrono::milliseconds timeout) = 0;

  // Stores the subscription's cursor at the hub: everything <= up_to_seq is handled.
  virtual Status Ack(uint64_t up_to_seq) = 0;

  virtual const v1::Subscribed& subscribed() const = 0;
  // The latest notice from the hub (e.g. agreement_expired), if any.
  virtual std::optional<v1::Notice> notice() const = 0;
  // Deliveries refused because they came from an older epoch than one already seen (a primary
  // superseded by a failover; docs/replication.md, fencing).
  virtual uint64_t stale_deliveries_refused() const = 0;
};

}  // namespace carehub::client
