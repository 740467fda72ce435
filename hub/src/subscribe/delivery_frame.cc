#include "delivery_frame.h"

#include "carehub/hub/store/event_codec.h"
#include "carehub/v1/wire.pb.h"

namespace carehub::hub {
namespace {

// wire.proto's field numbers.
constexpr uint32_t kFrameVersion = v1::Frame::kVersionFieldNumber;
constexpr uint32_t kFrameDelivery = v1::Frame::kDeliveryFieldNumber;
constexpr uint32_t kDeliveryEvents = v1::Delivery::kEventsFieldNumber;
constexpr uint32_t kDeliveryScannedTo = v1::Delivery::kScannedToSeqFieldNumber;
constexpr uint32_t kDeliveryHead = v1::Delivery::kHeadSeqFieldNumber;
constexpr uint32_t kDeliveryEpoch = v1::Delivery::kEpochFieldNumber;
constexpr uint32_t kDeliveredEvent = v1::DeliveredEvent::kEventFieldNumber;
constexpr uint32_t kDeliveredAgreement = v1::DeliveredEvent::kAgreementIdFieldNumber;

}  // namespace

void DeliveryFrameWriter::AddEvent(std::string_view event_bytes, std::string_view agreement_id) {
  // The DeliveredEvent is written in place, its length computed first: no copy of the event's
  // bytes but the one into the frame.
  AppendLengthDelimitedHeader(&events_bytes_, kDeliveryEvents,
                              LengthDelimitedSize(kDeliveredEvent, event_bytes.size()) +
                                  LengthDelimitedSize(kDeliveredAgreement, agreement_id.size()));
  AppendLengthDelimited(&events_bytes_, kDeliveredEvent, event_bytes);
  AppendLengthDelimited(&events_bytes_, kDeliveredAgreement, agreement_id);
  ++events_;
}

std::string DeliveryFrameWriter::Finish(uint64_t scanned_to, uint64_t head, uint64_t epoch) const {
  // proto3 leaves zero scalars out; the reader cannot tell the difference either way, but the
  // bytes then match protobuf's own serialization.
  std::string progress;
  for (auto [field, value] : {std::pair{kDeliveryScannedTo, scanned_to},
                              {kDeliveryHead, head},
                              {kDeliveryEpoch, epoch}}) {
    if (value != 0) {
      AppendVarintField(&progress, field, value);
    }
  }
  const size_t delivery_size = events_bytes_.size() + progress.size();
  std::string frame;
  frame.reserve(delivery_size + 16);
  AppendVarintField(&frame, kFrameVersion, v1::PROTOCOL_VERSION_1);
  AppendLengthDelimitedHeader(&frame, kFrameDelivery, delivery_size);
  frame.append(events_bytes_);
  frame.append(progress);
  return frame;
}

}  // namespace carehub::hub
