#pragma once
// Where an adapter hands the events it has read. In production this is the publisher client's
// durable outbox (carehub::client::Publisher::Enqueue); Publish returns OK only once the events are
// persisted, so the adapter may then acknowledge its source (HL7 AA, HTTP 201, CSV file to done/).
// Implementations are thread-safe.

#include <vector>

#include "carehub/core/status.h"
#include "carehub/v1/event.pb.h"

namespace carehub::adapters {

class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual Status Publish(const std::vector<v1::Event>& events) = 0;
};

}  // namespace carehub::adapters
