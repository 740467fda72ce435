#pragma once
// Decoding of the frames clients send to the hub's two ROUTER endpoints (DESIGN §3, §6), and the
// subscription arithmetic driven by them. Pure functions: no sockets, store, metrics or logging,
// so the servers and the fuzzers (tests/fuzz) run exactly the same code. Thread-safe.

#include <google/protobuf/arena.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "carehub/core/event_view.h"
#include "carehub/v1/wire.pb.h"

namespace carehub::hub {

// A Publish frame read in place (ReadPublishInPlace): views of each event and its bytes inside the
// payload, valid while the payload is. Owned by the caller and reused from frame to frame: the
// views keep their buffers (EventView::Clear). Not thread-safe.
struct PublishInPlace {
  uint64_t batch_id = 0;
  size_t size = 0;                      // events in the frame
  std::vector<EventView> events;        // [0, size): this frame's events
  std::vector<std::string_view> bytes;  // [0, size): each event as its publisher encoded it
  std::span<const EventView> event_views() const { return std::span(events).first(size); }
  std::span<const std::string_view> event_bytes() const { return std::span(bytes).first(size); }
};

// What the ingest endpoint does with one frame from a publisher.
struct IngestFrameDecision {
  enum class Action {
    kPublish,      // run `publish` through the IngestPipeline
    kHeartbeat,    // answer with the hub's own heartbeat
    kQuarantine,   // answer Error{reason}, quarantine the raw frame
    kRefuseBatch,  // answer Error{reason, batch_id}; counted, not quarantined
  };
  Action action = Action::kQuarantine;
  // kPublish: exactly one of the two. `in_place` (the caller's PublishInPlace, filled) for a plain
  // frame; else `publish`, parsed on the arena given to DecodeIngestFrame.
  const PublishInPlace* in_place = nullptr;
  v1::Publish* publish = nullptr;
  // With `publish`: each of its events as its publisher encoded it, views of the payload
  // (ReceivedEventBytes); empty when they could not be told apart.
  std::vector<std::string_view> event_bytes;
  std::string reason;     // stable error code, for kQuarantine and kRefuseBatch
  std::string message;    // for a human
  uint64_t batch_id = 0;  // kRefuseBatch
};

// Frames over `max_frame_bytes` are refused unparsed; so are undecodable frames, other protocol
// versions, frames of no or another kind, and batches over `max_events_per_batch` events. A plain
// Publish frame is read into `in_place` when it is given (ReadPublishInPlace); any other frame is
// parsed with protobuf on `arena`: `publish` is valid until the arena is reset. Both readings of
// a plain frame give the same decision and the same events (tests/fuzz/fuzz_ingest_frame.cc).
IngestFrameDecision DecodeIngestFrame(std::string_view payload, size_t max_frame_bytes,
                                      size_t max_events_per_batch, google::protobuf::Arena* arena,
                                      PublishInPlace* in_place = nullptr);

// Reads a Frame{version 1, publish} of at most `max_events` events in place and returns true when
// every part of it is plain: the frame and Publish hold only their own fields (version and one
// publish; batch_id and events) and every event is plain (event_view.h, ReadEventView). Anything
// else returns false, `out` unspecified, and is for protobuf to decode. Reading in place costs a
// fraction of protobuf's parse into a message tree, which was ~40% of the ingest thread.
bool ReadPublishInPlace(std::string_view payload, size_t max_events, PublishInPlace* out);

// Views of the encoded Publish.events elements inside `payload`, a Frame that parsed with a Publish
// of `event_count` events, in order: element i is the exact bytes event i was parsed from. Empty
// when the payload does not split into exactly `event_count` of them (e.g. a Publish, then another
// oneof member, then a Publish again: protobuf keeps only the last); the caller then re-encodes.
std::vector<std::string_view> ReceivedEventBytes(std::string_view payload, size_t event_count);

// What the subscribe endpoint does with one frame from a subscriber.
struct SubscribeFrameDecision {
  enum class Action { kSubscribe, kCredit, kAck, kHeartbeat, kMalformed, kUnexpectedKind };
  Action action = Action::kMalformed;
  v1::Frame frame;  // the decoded frame (empty when kMalformed)
};

SubscribeFrameDecision DecodeSubscribeFrame(std::string_view payload);

// A session's credit never exceeds this, whatever subscribers grant.
inline constexpr uint64_t kMaxSubscribeCredit = 1'000'000;

// Credit after a grant of `events` more, capped at kMaxSubscribeCredit.
uint64_t AddCredit(uint64_t credit, uint64_t events);

// The store's state a Subscribe's start mode is resolved against.
struct SubscribeStartInputs {
  std::optional<uint64_t> stored_cursor;
  uint64_t first_seq = 1;  // the store's first hub_seq, at least 1
  uint64_t head_seq = 0;   // committed head
};

// The first hub_seq a new session examines, always >= 1; nullopt for an unknown start mode.
// `seq_at_time` (the store's SeqAtTime) is called only for START_AT_TIME.
std::optional<uint64_t> ResolveSubscribeStart(const v1::Subscribe& request,
                                              const SubscribeStartInputs& in,
                                              const std::function<uint64_t(int64_t)>& seq_at_time);

// The cursor after an Ack of `up_to_seq` by a session that will next examine `next_seq` (>= 1) and
// has `cursor` stored; nullopt when the ack moves nothing. Never beyond what the session has
// examined: an ack cannot skip unseen events.
std::optional<uint64_t> AdvanceCursor(uint64_t up_to_seq, uint64_t next_seq, uint64_t cursor);

}  // namespace carehub::hub
