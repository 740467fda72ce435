#include "carehub/hub/frame_decode.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include <algorithm>

#include "carehub/core/wire_reader.h"

namespace carehub::hub {
namespace {

IngestFrameDecision Quarantine(std::string reason, std::string message) {
  IngestFrameDecision d;
  d.action = IngestFrameDecision::Action::kQuarantine;
  d.reason = std::move(reason);
  d.message = std::move(message);
  return d;
}

using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedInputStream;

// Calls `visit` with the value of each LEN field numbered `field` of the message encoded in
// `bytes`, skipping the other fields (of any wire type: this walks frames protobuf has accepted);
// false when `visit` does or the bytes do not walk as a message. ReadTag answers 0 both at the end
// and on a broken tag (having consumed it), so the walk loops on the position: a tag cut short is
// never taken for the end. A template, not a std::function: it runs for every frame.
template <typename Visit>
bool ForEachLengthDelimited(std::string_view bytes, int field, Visit&& visit) {
  CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                      static_cast<int>(bytes.size()));
  while (static_cast<size_t>(in.CurrentPosition()) < bytes.size()) {
    const uint32_t tag = in.ReadTag();
    if (tag == 0) {
      return false;
    }
    if (WireFormatLite::GetTagFieldNumber(tag) != field ||
        WireFormatLite::GetTagWireType(tag) != WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      if (!WireFormatLite::SkipField(&in, tag)) {
        return false;
      }
      continue;
    }
    uint32_t length = 0;
    if (!in.ReadVarint32(&length) || length > bytes.size() - in.CurrentPosition()) {
      return false;
    }
    if (!visit(bytes.substr(in.CurrentPosition(), length)) || !in.Skip(static_cast<int>(length))) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::vector<std::string_view> ReceivedEventBytes(std::string_view payload, size_t event_count) {
  std::vector<std::string_view> events;
  events.reserve(event_count);
  // Frame.publish (every occurrence: protobuf merges them), then each Publish.events inside.
  const bool walked = ForEachLengthDelimited(
      payload, v1::Frame::kPublishFieldNumber, [&](std::string_view publish) {
        return ForEachLengthDelimited(publish, v1::Publish::kEventsFieldNumber,
                                      [&](std::string_view event) {
                                        events.push_back(event);
                                        return true;
                                      });
      });
  if (!walked || events.size() != event_count) {
    return {};
  }
  return events;
}

bool ReadPublishInPlace(std::string_view payload, size_t max_events, PublishInPlace* out) {
  using wire::kLengthDelimited;
  using wire::kVarint;
  // The frame: version (last one wins, as in protobuf) and exactly one publish; anything else (a
  // second publish would be merged, another kind, an unknown field) is protobuf's to decode.
  uint64_t version = 0;
  std::optional<std::string_view> publish;
  const bool frame_plain = wire::ForEachField(payload, [&](const wire::Field& f) {
    if (f.Is(v1::Frame::kVersionFieldNumber, kVarint)) {
      version = f.varint;
      return true;
    }
    if (f.Is(v1::Frame::kPublishFieldNumber, kLengthDelimited) && !publish) {
      publish = f.bytes;
      return true;
    }
    return false;
  });
  if (!frame_plain || !publish || version != v1::PROTOCOL_VERSION_1) {
    return false;
  }
  // The Publish: batch_id and at most `max_events` plain events (a larger batch is for
  // protobuf's path to refuse).
  out->batch_id = 0;
  out->size = 0;
  return wire::ForEachField(*publish, [&](const wire::Field& f) {
    if (f.Is(v1::Publish::kBatchIdFieldNumber, kVarint)) {
      out->batch_id = f.varint;
      return true;
    }
    if (!f.Is(v1::Publish::kEventsFieldNumber, kLengthDelimited) || out->size == max_events) {
      return false;
    }
    if (out->size == out->events.size()) {
      out->events.emplace_back();
      out->bytes.emplace_back();
    }
    if (!ReadEventView(f.bytes, &out->events[out->size])) {
      return false;
    }
    out->bytes[out->size++] = f.bytes;
    return true;
  });
}

IngestFrameDecision DecodeIngestFrame(std::string_view payload, size_t max_frame_bytes,
                                      size_t max_events_per_batch, google::protobuf::Arena* arena,
                                      PublishInPlace* in_place) {
  if (payload.size() > max_frame_bytes) {
    return Quarantine("frame_too_large", "frame of " + std::to_string(payload.size()) +
                                             " bytes exceeds the limit of " +
                                             std::to_string(max_frame_bytes) + "; split the batch");
  }
  // An empty message parses as an empty Frame (version 0); it is no frame at all.
  if (payload.empty()) {
    return Quarantine("malformed_frame", "an empty message is not a carehub.v1.Frame");
  }
  if (in_place != nullptr && ReadPublishInPlace(payload, max_events_per_batch, in_place)) {
    IngestFrameDecision d;
    d.action = IngestFrameDecision::Action::kPublish;
    d.in_place = in_place;
    return d;
  }
  v1::Frame& frame = *google::protobuf::Arena::CreateMessage<v1::Frame>(arena);
  if (!frame.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return Quarantine("malformed_frame", "the frame is not a valid carehub.v1.Frame protobuf");
  }
  if (frame.version() != v1::PROTOCOL_VERSION_1) {
    return Quarantine("unsupported_version", "protocol version " + std::to_string(frame.version()) +
                                                 " is not supported; this hub speaks version 1");
  }
  IngestFrameDecision d;
  switch (frame.kind_case()) {
    case v1::Frame::kPublish: {
      v1::Publish* publish = frame.mutable_publish();
      if (static_cast<size_t>(publish->events_size()) > max_events_per_batch) {
        d.action = IngestFrameDecision::Action::kRefuseBatch;
        d.reason = "batch_too_large";
        d.message = "batch of " + std::to_string(publish->events_size()) +
                    " events exceeds the limit of " + std::to_string(max_events_per_batch);
        d.batch_id = publish->batch_id();
        return d;
      }
      d.action = IngestFrameDecision::Action::kPublish;
      d.publish = publish;
      d.event_bytes = ReceivedEventBytes(payload, static_cast<size_t>(publish->events_size()));
      return d;
    }
    case v1::Frame::kHeartbeat:
      d.action = IngestFrameDecision::Action::kHeartbeat;
      return d;
    case v1::Frame::KIND_NOT_SET:
      return Quarantine("unknown_kind", "the frame carries no message kind this hub knows");
    default:
      return Quarantine("unexpected_kind",
                        "the ingest endpoint accepts only Publish and Heartbeat frames");
  }
}

SubscribeFrameDecision DecodeSubscribeFrame(std::string_view payload) {
  SubscribeFrameDecision d;
  if (payload.empty() ||
      !d.frame.ParseFromArray(payload.data(), static_cast<int>(payload.size())) ||
      d.frame.version() != v1::PROTOCOL_VERSION_1) {
    d.frame.Clear();
    d.action = SubscribeFrameDecision::Action::kMalformed;
    return d;
  }
  switch (d.frame.kind_case()) {
    case v1::Frame::kSubscribe:
      d.action = SubscribeFrameDecision::Action::kSubscribe;
      break;
    case v1::Frame::kCredit:
      d.action = SubscribeFrameDecision::Action::kCredit;
      break;
    case v1::Frame::kAck:
      d.action = SubscribeFrameDecision::Action::kAck;
      break;
    case v1::Frame::kHeartbeat:
      d.action = SubscribeFrameDecision::Action::kHeartbeat;
      break;
    default:
      d.action = SubscribeFrameDecision::Action::kUnexpectedKind;
      break;
  }
  return d;
}

uint64_t AddCredit(uint64_t credit, uint64_t events) {
  // Both terms are capped first, so the sum cannot wrap.
  return std::min(std::min(credit, kMaxSubscribeCredit) + std::min(events, kMaxSubscribeCredit),
                  kMaxSubscribeCredit);
}

std::optional<uint64_t> ResolveSubscribeStart(const v1::Subscribe& request,
                                              const SubscribeStartInputs& in,
                                              const std::function<uint64_t(int64_t)>& seq_at_time) {
  switch (request.start()) {
    case v1::Subscribe::START_RESUME:
    case v1::Subscribe::START_UNSPECIFIED:
      return in.stored_cursor ? *in.stored_cursor + 1 : in.first_seq;
    case v1::Subscribe::START_EARLIEST:
      return in.first_seq;
    case v1::Subscribe::START_LATEST:
      return in.head_seq + 1;
    case v1::Subscribe::START_AT_SEQ:
      return std::max<uint64_t>(request.seq(), 1);
    case v1::Subscribe::START_AT_TIME:
      return seq_at_time(request.time_unix_ms());
    default:
      return std::nullopt;
  }
}

std::optional<uint64_t> AdvanceCursor(uint64_t up_to_seq, uint64_t next_seq, uint64_t cursor) {
  uint64_t up_to = std::min(up_to_seq, next_seq - 1);
  if (up_to > cursor) {
    return up_to;
  }
  return std::nullopt;
}

}  // namespace carehub::hub
