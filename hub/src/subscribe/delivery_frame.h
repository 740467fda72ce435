#pragma once
// The Delivery frame of one batch, written as protobuf wire bytes (private to hub/src).
//
// Each event goes in as bytes: as stored when its agreement's view is identifiable (the store's
// record is itself a serialized v1::Event, store/event_codec.h), or as its redacted serialization.
// Building a v1::Frame instead copied every event into the message and serialized the batch again:
// a tenth of the delivery thread's time (perf, fan-out bench). On the wire a message field is the
// bytes of the message, so what Finish returns parses as the v1::Frame
//   { version: 1, delivery: { events: [{event, agreement_id}...], scanned_to_seq, head_seq, epoch }
//   }
// (wire.proto's field numbers; delivery_test checks it against protobuf's parse).
//
// Thread-safety: one writer per batch. Not thread-safe.

#include <cstdint>
#include <string>
#include <string_view>

namespace carehub::hub {

class DeliveryFrameWriter {
 public:
  // Adds one DeliveredEvent: `event_bytes` a serialized v1::Event, delivered under `agreement_id`.
  void AddEvent(std::string_view event_bytes, std::string_view agreement_id);
  uint64_t events() const { return events_; }

  // The whole serialized v1::Frame, reporting the log read up to `scanned_to` of `head`.
  std::string Finish(uint64_t scanned_to, uint64_t head, uint64_t epoch) const;

 private:
  std::string events_bytes_;  // the Delivery's repeated `events` field so far
  uint64_t events_ = 0;
};

}  // namespace carehub::hub
