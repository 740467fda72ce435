// The delivery path's own encoders (hub/src/subscribe): the Delivery frame written as wire bytes
// must be what protobuf itself would build, and the decode cache may only answer with the event
// whose bytes it was given.

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <chrono>

#include "carehub/core/synthetic.h"
#include "carehub/hub/store/event_codec.h"
#include "carehub/v1/wire.pb.h"
#include "subscribe/decode_cache.h"
#include "subscribe/delivery_frame.h"

namespace carehub::hub {
namespace {

using google::protobuf::util::MessageDifferencer;

// An event as the store holds it: canonical bytes + the hub's fields.
std::string StoredBytes(const v1::Event& event, uint64_t seq) {
  std::string bytes = CanonicalBytes(event);
  AppendHubFields(&bytes, seq,
                  std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000)));
  return bytes;
}

TEST(DeliveryFrameTest, ParsesAsTheFrameProtobufWouldBuild) {
  SyntheticGenerator events(SyntheticOptions{});
  const v1::Event first = events.Next();
  const v1::Event second = events.Next();
  const std::string first_stored = StoredBytes(first, 300);

  DeliveryFrameWriter writer;
  writer.AddEvent(first_stored, "DSA-001");
  writer.AddEvent(second.SerializeAsString(), "DSA-002");
  EXPECT_EQ(writer.events(), 2u);

  v1::Frame expected;
  expected.set_version(v1::PROTOCOL_VERSION_1);
  auto* delivery = expected.mutable_delivery();
  auto* d1 = delivery->add_events();
  ASSERT_TRUE(d1->mutable_event()->ParseFromString(first_stored));
  EXPECT_EQ(d1->event().envelope().hub_seq(), 300u);
  d1->set_agreement_id("DSA-001");
  auto* d2 = delivery->add_events();
  *d2->mutable_event() = second;
  d2->set_agreement_id("DSA-002");
  delivery->set_scanned_to_seq(301);
  delivery->set_head_seq(70'000);
  delivery->set_epoch(12);

  v1::Frame parsed;
  ASSERT_TRUE(parsed.ParseFromString(writer.Finish(301, 70'000, 12)));
  EXPECT_TRUE(MessageDifferencer::Equals(parsed, expected)) << parsed.DebugString();

  // Events given as protobuf's serialization, zero fields left out as proto3 does: the bytes are
  // protobuf's own. (A stored record is not byte-identical to a re-serialization, only equal once
  // parsed: its hub fields come after the canonical bytes.)
  DeliveryFrameWriter plain;
  plain.AddEvent(second.SerializeAsString(), "DSA-002");
  v1::Frame plain_expected;
  plain_expected.set_version(v1::PROTOCOL_VERSION_1);
  auto* only = plain_expected.mutable_delivery()->add_events();
  *only->mutable_event() = second;
  only->set_agreement_id("DSA-002");
  plain_expected.mutable_delivery()->set_head_seq(9);
  EXPECT_EQ(plain.Finish(0, 9, 0), plain_expected.SerializeAsString());
}

TEST(DeliveryFrameTest, AnEmptyBatchIsADeliveryWithProgressOnly) {
  DeliveryFrameWriter writer;
  v1::Frame parsed;
  ASSERT_TRUE(parsed.ParseFromString(writer.Finish(5, 9, 0)));
  ASSERT_TRUE(parsed.has_delivery());
  EXPECT_EQ(parsed.delivery().events_size(), 0);
  EXPECT_EQ(parsed.delivery().scanned_to_seq(), 5u);
  EXPECT_EQ(parsed.delivery().head_seq(), 9u);
}

TEST(DecodeCacheTest, AnswersOnlyForTheSameSeqAndBytes) {
  SyntheticGenerator events(SyntheticOptions{});
  const v1::Event a = events.Next();
  const v1::Event b = events.Next();
  const std::string a_stored = StoredBytes(a, 7);
  const std::string b_stored = StoredBytes(b, 7);  // same seq, other bytes (e.g. another store)

  DecodeCache cache(4);
  const DecodedEvent* first = cache.Decode(7, a_stored);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->event().envelope().event_id(), a.envelope().event_id());
  EXPECT_EQ(first->stored(), a_stored);
  EXPECT_EQ(cache.parses(), 1u);

  EXPECT_EQ(cache.Decode(7, a_stored), first);
  EXPECT_EQ(cache.hits(), 1u);

  const DecodedEvent* other = cache.Decode(7, b_stored);
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(other->event().envelope().event_id(), b.envelope().event_id());
  EXPECT_EQ(cache.hits(), 1u);

  // 11 shares 7's slot (4 slots): it replaces it, and 7 is parsed again.
  ASSERT_NE(cache.Decode(11, a_stored), nullptr);
  const DecodedEvent* again = cache.Decode(7, b_stored);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->seq(), 7u);
  EXPECT_EQ(cache.parses(), 4u);
}

TEST(DecodeCacheTest, BytesThatAreNotAnEventAreRefusedEveryTime) {
  DecodeCache cache(4);
  const std::string junk("\xff\xff\xff\xff", 4);
  EXPECT_EQ(cache.Decode(3, junk), nullptr);
  EXPECT_EQ(cache.Decode(3, junk), nullptr);
  EXPECT_EQ(cache.hits(), 0u);
}

// The parsed event lives on an arena reset before each parse, whose first block is reused: each
// Decode must hold exactly its own event, whether it fits that block or not, and a failed parse
// must not leave the next one anything of it.
TEST(DecodedEventTest, EachDecodeHoldsExactlyItsOwnEventWhateverItsSize) {
  SyntheticGenerator events(SyntheticOptions{});
  const v1::Event small = events.Next();
  v1::Event large = events.Next();
  for (int i = 0; i < 400; ++i) {  // ~100 bytes each parsed: well past the arena's first block
    auto* d = large.mutable_activity()->add_diagnoses();
    d->set_system("http://snomed.info/sct");
    d->set_code(std::to_string(100000 + i));
    d->set_display("a diagnosis long enough to need its own buffer " + std::to_string(i));
  }
  const std::string small_stored = StoredBytes(small, 1);
  const std::string large_stored = StoredBytes(large, 2);
  ASSERT_GT(large_stored.size(), 16u << 10);
  const auto parsed = [](const std::string& bytes) {
    v1::Event e;
    EXPECT_TRUE(e.ParseFromString(bytes));
    return e;
  };

  DecodedEvent decoded;
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(decoded.Decode(2, large_stored));
    EXPECT_TRUE(MessageDifferencer::Equals(decoded.event(), parsed(large_stored)));
    EXPECT_EQ(decoded.event().activity().diagnoses_size(), 400);
    ASSERT_TRUE(decoded.Decode(1, small_stored));
    EXPECT_TRUE(MessageDifferencer::Equals(decoded.event(), parsed(small_stored)));
    EXPECT_EQ(decoded.event().activity().diagnoses_size(), small.activity().diagnoses_size());
    EXPECT_FALSE(decoded.Decode(3, large_stored.substr(0, large_stored.size() / 2)));
    EXPECT_EQ(decoded.seq(), 0u);
  }
  ASSERT_TRUE(decoded.Decode(1, small_stored));
  EXPECT_TRUE(MessageDifferencer::Equals(decoded.event(), parsed(small_stored)));
  EXPECT_EQ(decoded.stored(), small_stored);
}

TEST(DecodedEventTest, PatientKeysAreTheHashersAndComputedOnce) {
  SyntheticGenerator events(SyntheticOptions{});
  const v1::Event event = events.Next();
  ASSERT_FALSE(event.envelope().patient().nhs_number().empty());
  std::array<unsigned char, 32> secret{};
  secret[0] = 1;
  const PatientHasher hasher(secret);
  std::vector<std::string> expected;
  hasher.KeysOf(event, &expected);
  ASSERT_FALSE(expected.empty());

  DecodedEvent decoded;
  ASSERT_TRUE(decoded.Decode(1, StoredBytes(event, 1)));
  EXPECT_EQ(decoded.PatientKeys(hasher), expected);
  // Computed once: a second call does not hash again (another hasher would give other keys).
  std::array<unsigned char, 32> other_secret{};
  other_secret[0] = 2;
  const PatientHasher other(other_secret);
  ASSERT_NE(other.ForNhsNumber(event.envelope().patient().nhs_number()), expected[0]);
  EXPECT_EQ(decoded.PatientKeys(other), expected);
  EXPECT_EQ(decoded.PatientKeys(hasher)[0],
            hasher.ForNhsNumber(event.envelope().patient().nhs_number()));
}

}  // namespace
}  // namespace carehub::hub
