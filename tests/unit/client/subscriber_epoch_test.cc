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

namespace carehub::client {
namespace {

using std::chrono::milliseconds;

class ScriptedHub {
 public:
  ScriptedHub() : socket_(context_, zmq::socket_type::router) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.bind("tcp://127.0.0.1:0");
    endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
  }
  const std::string& endpoint() const { return endpoint_; }

  // Waits for the next Subscribe (skipping heartbeats, credit and acks) and answers Subscribed;
  // returns the Subscribe.
  std::optional<v1::Subscribe> AnswerSubscribe(milliseconds timeout = milliseconds(10'000)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, milliseconds(50));
      if (!(item.revents & ZMQ_POLLIN)) {
        continue;
      }
      zmq::message_t identity;
      zmq::message_t payload;
      if (!socket_.recv(identity) || !socket_.recv(payload)) {
        continue;
      }
      v1::Frame frame;
      if (!frame.ParseFromArray(payload.data(), static_cast<int>(payload.size())) ||
          !frame.has_subscribe()) {
        continue;
      }
      peer_ = identity.to_string();
      v1::Frame reply;
      reply.set_version(v1::PROTOCOL_VERSION_1);
      reply.mutable_subscribed()->set_subscription(frame.subscribe().subscription());
      Send(reply);
      return frame.subscribe();
    }
    return std::nullopt;
  }

  void Deliver(uint64_t epoch, uint64_t hub_seq) {
    v1::Frame frame;
    frame.set_version(v1::PROTOCOL_VERSION_1);
    auto* d = frame.mutable_delivery();
    d->set_epoch(epoch);
    d->set_scanned_to_seq(hub_seq);
    d->set_head_seq(hub_seq);
    auto* e = d->add_events()->mutable_event()->mutable_envelope();
    e->set_hub_seq(hub_seq);
    e->set_event_id("ev-" + std::to_string(hub_seq));
    Send(frame);
  }

 private:
  void Send(const v1::Frame& frame) {
    const std::string bytes = frame.SerializeAsString();
    socket_.send(zmq::buffer(peer_), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(bytes), zmq::send_flags::none);
  }

  zmq::context_t context_{1};
  zmq::socket_t socket_;
  std::string endpoint_;
  std::string peer_;
};

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
