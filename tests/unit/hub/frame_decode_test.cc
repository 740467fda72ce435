// Where each event of a Publish frame lies in the bytes its publisher sent (ReceivedEventBytes):
// the ingest path stores those bytes, so they must be exactly each event's, or nothing.
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

}  // namespace
}  // namespace carehub::hub
