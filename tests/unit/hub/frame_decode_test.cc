// Where each event of a Publish frame lies in the bytes its publisher sent (ReceivedEventBytes):
// the ingest path stores those bytes, so they must be exactly each event's, or nothing. And the
// frame read in place (ReadPublishInPlace): only when protobuf would read it the same way.
#include "carehub/hub/frame_decode.h"

#include <gtest/gtest.h>

#include "carehub/hub/store/event_codec.h"

namespace carehub::hub {
namespace {

v1::Event MakeEvent(const std::string& id) {
  v1::Event event;
  event.mutable_envelope()->set_event_id(id);
  event.mutable_envelope()->set_publisher_ods("RXK");
  event.mutable_activity()->set_kind(v1::ACTIVITY_KIND_DISCHARGE);
  return event;
}

// Appends a Frame.publish field {batch_id, events...} with each event's bytes given as they are.
void AppendPublish(std::string* frame, const std::vector<std::string>& events) {
  std::string publish;
  AppendVarintField(&publish, v1::Publish::kBatchIdFieldNumber, 42);
  for (const auto& e : events) {
    AppendLengthDelimited(&publish, v1::Publish::kEventsFieldNumber, e);
  }
  AppendLengthDelimited(frame, v1::Frame::kPublishFieldNumber, publish);
}

// Frame{version, publish{batch_id, events...}}.
std::string PublishFrame(const std::vector<std::string>& events) {
  std::string frame;
  AppendVarintField(&frame, v1::Frame::kVersionFieldNumber, v1::PROTOCOL_VERSION_1);
  AppendPublish(&frame, events);
  return frame;
}

std::vector<std::string> Strings(const std::vector<std::string_view>& views) {
  return {views.begin(), views.end()};
}

TEST(ReceivedEventBytes, AreEachEventsBytesAsSentInOrder) {
  // The second event is encoded with its envelope last, as another encoder might.
  v1::Event envelope_only;
  *envelope_only.mutable_envelope() = MakeEvent("B").envelope();
  v1::Event rest = MakeEvent("B");
  rest.clear_envelope();
  const std::vector<std::string> sent = {
      MakeEvent("A").SerializeAsString(),
      rest.SerializeAsString() + envelope_only.SerializeAsString(),
      MakeEvent("C").SerializeAsString()};
  const std::string payload = PublishFrame(sent);
  google::protobuf::Arena arena;
  auto d = DecodeIngestFrame(payload, 1 << 20, 1000, &arena);
  ASSERT_EQ(d.action, IngestFrameDecision::Action::kPublish);
  ASSERT_EQ(d.publish->events_size(), 3);
  EXPECT_EQ(Strings(d.event_bytes), sent);
  EXPECT_EQ(d.publish->events(1).envelope().event_id(), "B");
}

TEST(ReceivedEventBytes, FollowProtobufAcrossRepeatedPublishFields) {
  // Two Frame.publish fields merge: the events of both, in order.
  std::string payload = PublishFrame({MakeEvent("A").SerializeAsString()});
  AppendPublish(&payload, {MakeEvent("B").SerializeAsString()});
  google::protobuf::Arena arena;
  auto d = DecodeIngestFrame(payload, 1 << 20, 1000, &arena);
  ASSERT_EQ(d.action, IngestFrameDecision::Action::kPublish);
  ASSERT_EQ(d.publish->events_size(), 2);
  EXPECT_EQ(Strings(d.event_bytes), (std::vector<std::string>{MakeEvent("A").SerializeAsString(),
                                                              MakeEvent("B").SerializeAsString()}));
}

TEST(ReceivedEventBytes, AreNoneWhenProtobufDroppedSomeOfThem) {
  // publish{A}, heartbeat, publish{B}: the oneof keeps only the last publish, so the walk (A, B)
  // does not match the parsed batch (B) and the caller must re-encode.
  std::string payload = PublishFrame({MakeEvent("A").SerializeAsString()});
  AppendLengthDelimited(&payload, v1::Frame::kHeartbeatFieldNumber, "");
  AppendPublish(&payload, {MakeEvent("B").SerializeAsString()});
  google::protobuf::Arena arena;
  auto d = DecodeIngestFrame(payload, 1 << 20, 1000, &arena);
  ASSERT_EQ(d.action, IngestFrameDecision::Action::kPublish);
  ASSERT_EQ(d.publish->events_size(), 1);
  EXPECT_EQ(d.publish->events(0).envelope().event_id(), "B");
  EXPECT_TRUE(d.event_bytes.empty());
  // Asked for a count the payload does not hold: nothing.
  EXPECT_TRUE(ReceivedEventBytes(PublishFrame({"", ""}), 3).empty());
  EXPECT_EQ(ReceivedEventBytes(PublishFrame({"", ""}), 2).size(), 2u);
}

// DecodeIngestFrame as the hub calls it, and by protobuf alone: a plain frame is read in place
// into exactly what protobuf parses; anything else is protobuf's to decide.
struct BothReadings {
  google::protobuf::Arena arena;
  PublishInPlace in_place;
  IngestFrameDecision hub;
  IngestFrameDecision parsed;
  BothReadings(std::string_view payload, size_t max_events) {
    hub = DecodeIngestFrame(payload, 1 << 20, max_events, &arena, &in_place);
    parsed = DecodeIngestFrame(payload, 1 << 20, max_events, &arena);
  }
};

TEST(ReadPublishInPlace, APlainFrameIsReadAsProtobufParsesIt) {
  const std::vector<std::string> sent = {MakeEvent("A").SerializeAsString(),
                                         MakeEvent("B").SerializeAsString()};
  const std::string payload = PublishFrame(sent);
  BothReadings r(payload, 1000);
  ASSERT_EQ(r.hub.action, IngestFrameDecision::Action::kPublish);
  ASSERT_NE(r.hub.in_place, nullptr);
  EXPECT_EQ(r.hub.publish, nullptr);
  EXPECT_EQ(r.in_place.batch_id, 42u);
  ASSERT_EQ(r.in_place.size, 2u);
  for (int i = 0; i < 2; ++i) {
    EventView expected;
    MakeEventView(r.parsed.publish->events(i), &expected);
    EXPECT_EQ(r.in_place.events[i], expected);
    EXPECT_EQ(r.in_place.bytes[i], sent[i]);
  }
  // Reused for a smaller frame: only its own events count.
  BothReadings one(PublishFrame({MakeEvent("C").SerializeAsString()}), 1000);
  ASSERT_NE(one.hub.in_place, nullptr);
  EXPECT_EQ(one.in_place.event_views().size(), 1u);
  EXPECT_EQ(one.in_place.event_views()[0].envelope().event_id(), "C");
}

TEST(ReadPublishInPlace, AnythingElseIsDecodedByProtobufAsBefore) {
  const std::string a = MakeEvent("A").SerializeAsString();
  v1::Event with_hub_seq = MakeEvent("H");
  with_hub_seq.mutable_envelope()->set_hub_seq(9);
  std::string unknown_in_frame = PublishFrame({a});
  AppendVarintField(&unknown_in_frame, 99, 1);
  std::string second_publish = PublishFrame({a});
  AppendPublish(&second_publish, {a});
  std::string no_version;
  AppendPublish(&no_version, {a});
  std::string version_two;
  AppendVarintField(&version_two, v1::Frame::kVersionFieldNumber, 2);
  AppendPublish(&version_two, {a});
  std::string heartbeat;
  AppendVarintField(&heartbeat, v1::Frame::kVersionFieldNumber, v1::PROTOCOL_VERSION_1);
  AppendLengthDelimited(&heartbeat, v1::Frame::kHeartbeatFieldNumber, "");
  v1::Event bad_utf8 = MakeEvent("U");
  bad_utf8.mutable_envelope()->set_source_system("\xff");
  std::string bad_utf8_bytes;
  (void)bad_utf8.AppendPartialToString(&bad_utf8_bytes);  // serialize would log the bad string

  struct Case {
    const char* what;
    std::string payload;
    IngestFrameDecision::Action action;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"hub fields set", PublishFrame({a, with_hub_seq.SerializeAsString()}),
       IngestFrameDecision::Action::kPublish, ""},
      {"an unknown frame field", unknown_in_frame, IngestFrameDecision::Action::kPublish, ""},
      {"two publish fields (merged)", second_publish, IngestFrameDecision::Action::kPublish, ""},
      {"no version", no_version, IngestFrameDecision::Action::kQuarantine, "unsupported_version"},
      {"version 2", version_two, IngestFrameDecision::Action::kQuarantine, "unsupported_version"},
      {"a heartbeat", heartbeat, IngestFrameDecision::Action::kHeartbeat, ""},
      {"over the batch limit", PublishFrame({a, a, a}), IngestFrameDecision::Action::kRefuseBatch,
       "batch_too_large"},
      {"an event that is not UTF-8", PublishFrame({a, bad_utf8_bytes}),
       IngestFrameDecision::Action::kQuarantine, "malformed_frame"},
      // A tag cut short after the publish: protobuf refuses the frame (found by the fuzzer).
      {"a broken tag at the end", PublishFrame({a}) + "\x85",
       IngestFrameDecision::Action::kQuarantine, "malformed_frame"},
  };
  for (const auto& c : cases) {
    BothReadings r(c.payload, 2);
    EXPECT_EQ(r.hub.in_place, nullptr) << c.what;
    EXPECT_EQ(r.hub.action, c.action) << c.what;
    EXPECT_EQ(r.hub.reason, c.reason) << c.what;
    EXPECT_EQ(r.parsed.action, c.action) << c.what;
    EXPECT_FALSE(ReadPublishInPlace(c.payload, 2, &r.in_place)) << c.what;
  }
}

}  // namespace
}  // namespace carehub::hub
