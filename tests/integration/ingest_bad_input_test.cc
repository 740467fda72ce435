// Hostile and broken frames on the ingest endpoint: each is answered with an Error frame carrying
// the documented code (hub/src/ingest_server.cc), quarantined where there is something to keep,
// and never stops the hub from answering a well-behaved publisher on another connection.

#include <gtest/gtest.h>

#include <random>

#include "harness/hub_process.h"
#include "harness/raw_publisher.h"
#include "harness/workload.h"

namespace carehub::itest {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr size_t kMaxFrameBytes = 64 * 1024;
constexpr size_t kMaxEventsPerBatch = 100;

class IngestBadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto hub = HubProcess::Start(HubOptions(
        "bad-input", "ingest:\n  max_frame_bytes: " + std::to_string(kMaxFrameBytes) +
                         "\n  max_events_per_batch: " + std::to_string(kMaxEventsPerBatch) + "\n"));
    ASSERT_TRUE(hub.ok()) << hub.status().ToString();
    hub_ = std::move(hub).value();
    auto bad = RawPublisher::Connect(hub_->ingest_endpoint());
    ASSERT_TRUE(bad.ok()) << bad.status().ToString();
    bad_ = std::move(bad).value();
    auto good = RawPublisher::Connect(hub_->ingest_endpoint());
    ASSERT_TRUE(good.ok()) << good.status().ToString();
    good_ = std::move(good).value();
  }

  // The well-behaved publisher's next batch (20 events, ~6 KB: well under the frame limit) is
  // answered in full.
  void ExpectGoodPublisherServed() {
    std::vector<v1::Event> batch;
    for (int i = 0; i < 20; ++i) {
      batch.push_back(gen_.Next());
    }
    auto r = good_->Publish(batch, seconds(10));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    auto counts = CountResults(r.value());
    EXPECT_EQ(counts.accepted, batch.size());
    good_accepted_ += counts.accepted;
  }

  // Sends `bytes` on the bad connection and returns the Error the hub answers with.
  v1::Error ExpectError(const std::string& bytes) {
    EXPECT_TRUE(bad_->SendBytes(bytes).ok());
    auto error = bad_->WaitForError(seconds(10));
    EXPECT_TRUE(error.ok()) << error.status().ToString();
    if (!error.ok() || !error.value()) {
      ADD_FAILURE() << "no Error frame within 10 s";
      return {};
    }
    return *error.value();
  }

  static v1::Frame PublishFrame(const std::vector<v1::Event>& events, uint64_t batch_id) {
    v1::Frame f;
    f.set_version(v1::PROTOCOL_VERSION_1);
    f.mutable_publish()->set_batch_id(batch_id);
    for (const auto& e : events) {
      *f.mutable_publish()->add_events() = e;
    }
    return f;
  }

  std::unique_ptr<HubProcess> hub_;
  std::unique_ptr<RawPublisher> bad_;
  std::unique_ptr<RawPublisher> good_;
  SyntheticGenerator gen_{FixedSyntheticOptions(99, "good-")};
  SyntheticGenerator bad_gen_{FixedSyntheticOptions(98, "bad-")};
  size_t good_accepted_ = 0;
};

TEST_F(IngestBadInputTest, EachBrokenFrameGetsItsErrorAndIsQuarantinedWhileOthersAreServed) {
  ExpectGoodPublisherServed();

  // Expected quarantine, in order: (reason, raw bytes).
  std::vector<std::pair<std::string, std::string>> expected_quarantine;

  // 1. Random bytes. The first byte is tag 0x07 (field 0, wire type 7: both invalid), so the
  // bytes cannot happen to decode whatever the rest holds.
  std::mt19937_64 rng(4242);
  std::string garbage(512, '\0');
  for (auto& c : garbage) {
    c = static_cast<char>(rng() & 0xff);
  }
  garbage[0] = 0x07;
  auto e1 = ExpectError(garbage);
  EXPECT_EQ(e1.code(), "malformed_frame");
  expected_quarantine.emplace_back("malformed_frame", garbage);
  ExpectGoodPublisherServed();

  // 2. A valid Publish cut in half: the length prefix promises more than there is.
  std::vector<v1::Event> ten;
  for (int i = 0; i < 10; ++i) {
    ten.push_back(bad_gen_.Next());
  }
  std::string whole = PublishFrame(ten, 7).SerializeAsString();
  std::string truncated = whole.substr(0, whole.size() / 2);
  auto e2 = ExpectError(truncated);
  EXPECT_EQ(e2.code(), "malformed_frame");
  expected_quarantine.emplace_back("malformed_frame", truncated);
  ExpectGoodPublisherServed();

  // 3. Over max_frame_bytes (but under the 4x limit where ZeroMQ drops the connection).
  std::vector<v1::Event> many;
  std::string big;
  while (big.size() <= kMaxFrameBytes + 10'000) {
    many.push_back(bad_gen_.Next());
    big = PublishFrame(many, 8).SerializeAsString();
  }
  ASSERT_LT(big.size(), 4 * kMaxFrameBytes);
  auto e3 = ExpectError(big);
  EXPECT_EQ(e3.code(), "frame_too_large");
  expected_quarantine.emplace_back("frame_too_large", big);
  ExpectGoodPublisherServed();

  // 4. A protocol version this hub does not speak.
  v1::Frame v2 = PublishFrame({bad_gen_.Next()}, 9);
  v2.set_version(static_cast<v1::ProtocolVersion>(2));
  std::string v2_bytes = v2.SerializeAsString();
  auto e4 = ExpectError(v2_bytes);
  EXPECT_EQ(e4.code(), "unsupported_version");
  expected_quarantine.emplace_back("unsupported_version", v2_bytes);
  ExpectGoodPublisherServed();

  // 5. A frame with a version and no kind.
  v1::Frame empty;
  empty.set_version(v1::PROTOCOL_VERSION_1);
  std::string empty_bytes = empty.SerializeAsString();
  auto e5 = ExpectError(empty_bytes);
  EXPECT_EQ(e5.code(), "unknown_kind");
  expected_quarantine.emplace_back("unknown_kind", empty_bytes);
  ExpectGoodPublisherServed();

  // 6. A subscriber's frame on the ingest endpoint.
  v1::Frame sub;
  sub.set_version(v1::PROTOCOL_VERSION_1);
  sub.mutable_subscribe()->set_subscription("ics-analytics");
  sub.mutable_subscribe()->set_start(v1::Subscribe::START_EARLIEST);
  std::string sub_bytes = sub.SerializeAsString();
  auto e6 = ExpectError(sub_bytes);
  EXPECT_EQ(e6.code(), "unexpected_kind");
  expected_quarantine.emplace_back("unexpected_kind", sub_bytes);
  ExpectGoodPublisherServed();

  // 7. More events than max_events_per_batch: refused whole, with the batch id, nothing stored
  // and nothing quarantined (the publisher can split and resend it).
  std::vector<v1::Event> too_many;
  for (size_t i = 0; i <= kMaxEventsPerBatch; ++i) {
    too_many.push_back(bad_gen_.Next());
  }
  std::string too_many_bytes = PublishFrame(too_many, 4711).SerializeAsString();
  ASSERT_LT(too_many_bytes.size(), kMaxFrameBytes);
  auto e7 = ExpectError(too_many_bytes);
  EXPECT_EQ(e7.code(), "batch_too_large");
  EXPECT_EQ(e7.batch_id(), 4711u);
  ExpectGoodPublisherServed();

  // 8. Far over the limit: ZeroMQ drops that connection before buffering it; no answer, no
  // quarantine, and the hub carries on.
  {
    auto hostile = RawPublisher::Connect(hub_->ingest_endpoint());
    ASSERT_TRUE(hostile.ok());
    ASSERT_TRUE(hostile.value()->SendBytes(std::string(8 * kMaxFrameBytes, 'x')).ok());
    auto answer = hostile.value()->Receive(milliseconds(500));
    ASSERT_TRUE(answer.ok());
    EXPECT_FALSE(answer.value().has_value());
  }
  ExpectGoodPublisherServed();

  // The bad connection still works for a proper batch after all that.
  auto ok = bad_->Publish(std::vector<v1::Event>{bad_gen_.Next()}, seconds(10));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->results(0).status(), v1::EventResult::ACCEPTED);

  auto stopped = hub_->Stop();
  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  EXPECT_TRUE(stopped.value().Exited(0)) << stopped.value().ToString();
  auto store = hub_->OpenStore();
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto quarantine = ReadAllQuarantine(*store.value());
  ASSERT_EQ(quarantine.size(), expected_quarantine.size());
  for (size_t i = 0; i < quarantine.size(); ++i) {
    EXPECT_EQ(quarantine[i].reason(), expected_quarantine[i].first) << "record " << i;
    EXPECT_EQ(quarantine[i].raw_kind(), "frame") << "record " << i;
    EXPECT_EQ(quarantine[i].raw(), expected_quarantine[i].second) << "record " << i;
    EXPECT_FALSE(quarantine[i].message().empty()) << "record " << i;
  }
  // Only the good publisher's events and the last proper batch were stored.
  EXPECT_EQ(ReadAllEvents(*store.value()).size(), good_accepted_ + 1);
}

}  // namespace
}  // namespace carehub::itest
