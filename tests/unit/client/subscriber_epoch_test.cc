// The subscriber library's fencing rule (docs/replication.md, "Fencing by epoch"): a delivery from
// an older epoch than one already received comes from a superseded primary and is refused; the
// library resubscribes from its own last ack. The hub side cannot send such a delivery any more
// (its lease gate holds it), so the rule is checked here against a scripted hub: a real ZeroMQ
// ROUTER on loopback that speaks the wire protocol.
#include <gtest/gtest.h>

#include <chrono>
#include <zmq.hpp>

#include "carehub/client/subscriber.h"
#include "carehub/v1/wire.pb.h"
#include "scripted_hub.h"

namespace carehub::client {
namespace {

using std::chrono::milliseconds;

// The next batch with events, within `timeout`.
std::optional<DeliveryBatch> NextBatch(Subscriber& sub, milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto batch = sub.Next(milliseconds(100));
    EXPECT_TRUE(batch.ok()) << batch.status().ToString();
    if (batch.ok() && batch.value() && !batch.value()->events.empty()) {
      return std::move(batch).value();
    }
  }
  return std::nullopt;
}

TEST(SubscriberEpochTest, DeliveryFromAnOlderEpochIsRefusedAndTheFeedResumesFromTheAck) {
  ScriptedHub hub;
  SubscriberOptions options;
  options.endpoint = hub.endpoint();
  options.subscription = "feed";
  options.start = v1::Subscribe::START_EARLIEST;
  options.connect_timeout = milliseconds(10'000);
  Result<std::unique_ptr<Subscriber>> opened = Status::Error("pending", "");
  std::thread opener([&] { opened = Subscriber::Open(options); });
  ASSERT_TRUE(hub.AnswerSubscribe().has_value());
  opener.join();
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto& sub = *opened.value();

  hub.Deliver(/*epoch=*/7, /*hub_seq=*/1);
  auto first = NextBatch(sub, milliseconds(5000));
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->epoch, 7u);
  ASSERT_TRUE(sub.Ack(first->scanned_to_seq).ok());

  // A superseded primary (epoch 3) sends hub_seq 2: never handed to the caller.
  hub.Deliver(/*epoch=*/3, /*hub_seq=*/2);
  std::optional<v1::Subscribe> again;
  std::thread answer([&] { again = hub.AnswerSubscribe(); });
  EXPECT_FALSE(NextBatch(sub, milliseconds(1500)).has_value());
  answer.join();
  EXPECT_EQ(sub.stale_deliveries_refused(), 1u);
  ASSERT_TRUE(again.has_value()) << "the library did not resubscribe";
  EXPECT_EQ(again->start(), v1::Subscribe::START_AT_SEQ);
  EXPECT_EQ(again->seq(), 2u) << "resumes after its own last ack";

  // The current primary's delivery (same or newer epoch) is taken.
  hub.Deliver(/*epoch=*/9, /*hub_seq=*/2);
  auto second = NextBatch(sub, milliseconds(5000));
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->epoch, 9u);
  EXPECT_EQ(second->events.front().event().envelope().hub_seq(), 2u);
}

}  // namespace
}  // namespace carehub::client
