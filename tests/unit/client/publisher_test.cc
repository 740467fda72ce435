// The publisher client (client/publisher.h) against a fake hub: a real ZeroMQ ROUTER socket bound
// to 127.0.0.1 port 0 that reads the publisher's frames and answers them as a test says. The
// outbox is a real RocksDB in a fresh temp dir. Every wait is bounded.

#include "carehub/client/publisher.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "carehub/v1/wire.pb.h"

namespace carehub::client {
namespace {

using std::chrono::milliseconds;

constexpr auto kWait = std::chrono::seconds(10);

v1::Event MakeEvent(const std::string& id) {
  v1::Event e;
  e.mutable_envelope()->set_event_id(id);
  e.mutable_envelope()->set_publisher_ods("RXK");
  return e;
}

// A hub that only does what the test tells it to.
class FakeHub {
 public:
  FakeHub() : socket_(context_, zmq::socket_type::router) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.bind("tcp://127.0.0.1:0");
    endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
  }
  const std::string& endpoint() const { return endpoint_; }

  // The next Publish frame (heartbeats are skipped), or nullopt after `timeout`.
  std::optional<v1::Publish> NextPublish(std::chrono::milliseconds timeout = kWait) {
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
      peer_ = identity.to_string();
      v1::Frame frame;
      EXPECT_TRUE(frame.ParseFromArray(payload.data(), static_cast<int>(payload.size())));
      if (frame.has_heartbeat()) {
        continue;
      }
      EXPECT_EQ(frame.version(), v1::PROTOCOL_VERSION_1);
      EXPECT_TRUE(frame.has_publish()) << frame.DebugString();
      return frame.publish();
    }
    return std::nullopt;
  }

  // Answers every event of `publish` with `status` (and `reason` for refusals).
  void Answer(const v1::Publish& publish, v1::EventResult::Status status,
              const std::string& reason = "") {
    v1::Frame frame;
    frame.set_version(v1::PROTOCOL_VERSION_1);
    auto* result = frame.mutable_publish_result();
    result->set_batch_id(publish.batch_id());
    for (const auto& event : publish.events()) {
      auto* r = result->add_results();
      r->set_status(status);
      r->set_event_id(event.envelope().event_id());
      r->set_reason(reason);
      r->set_message(reason.empty() ? "" : "refused by the test");
    }
    const std::string bytes = frame.SerializeAsString();
    EXPECT_TRUE(socket_.send(zmq::buffer(peer_), zmq::send_flags::sndmore).has_value());
    EXPECT_TRUE(socket_.send(zmq::buffer(bytes), zmq::send_flags::none).has_value());
  }

 private:
  zmq::context_t context_{1};
  zmq::socket_t socket_;
  std::string endpoint_;
  std::string peer_;
};

std::vector<std::string> Ids(const v1::Publish& publish) {
  std::vector<std::string> ids;
  for (const auto& e : publish.events()) {
    ids.push_back(e.envelope().event_id());
  }
  return ids;
}

// Each test gets a fresh outbox dir and a fake hub; Start() opens the publisher on both.
class PublisherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("carehub_publisher_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override {
    if (publisher_ != nullptr) {
      publisher_->Close();
    }
    std::filesystem::remove_all(dir_);
  }

  // Opens publisher_ on the outbox dir, connected to `hub` (hub_ when null).
  void Start(size_t max_batch = 1000, FakeHub* hub = nullptr) {
    PublisherOptions options;
    options.endpoint = (hub != nullptr ? hub : &hub_)->endpoint();
    options.outbox_dir = dir_ / "outbox";
    options.max_batch_events = max_batch;
    options.resend_after = milliseconds(30'000);  // no timeout resends unless a test wants one
    options.heartbeat_interval = milliseconds(100);
    options.sync_outbox = false;
    auto publisher = Publisher::Open(options);
    ASSERT_TRUE(publisher.ok()) << publisher.status().ToString();
    publisher_ = std::move(publisher).value();
  }

  // Enqueues events with `ids` and returns the first Publish the hub receives (nullopt, and a
  // failure, when none comes).
  std::optional<v1::Publish> EnqueueAndReceive(const std::vector<std::string>& ids) {
    std::vector<v1::Event> events;
    for (const auto& id : ids) {
      events.push_back(MakeEvent(id));
    }
    Status enqueued = publisher_->Enqueue(events);
    EXPECT_TRUE(enqueued.ok()) << enqueued.ToString();
    std::optional<v1::Publish> publish = hub_.NextPublish();
    EXPECT_TRUE(publish.has_value()) << "no Publish reached the hub";
    return publish;
  }

  std::filesystem::path dir_;
  FakeHub hub_;
  std::unique_ptr<Publisher> publisher_;
};

TEST(PublisherOpenTest, RefusesAnEmptyOutboxDir) {
  PublisherOptions options;
  auto publisher = Publisher::Open(options);
  ASSERT_FALSE(publisher.ok());
  EXPECT_EQ(publisher.status().code(), "bad_options");
}

TEST_F(PublisherTest, SendsEventsInOrderAndForgetsThemOnceAccepted) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto publish = EnqueueAndReceive({"e1", "e2", "e3"});
  ASSERT_TRUE(publish.has_value());
  EXPECT_EQ(publisher_->Stats().enqueued, 3u);
  EXPECT_EQ(Ids(*publish), (std::vector<std::string>{"e1", "e2", "e3"}));
  EXPECT_NE(publish->batch_id(), 0u);
  EXPECT_EQ(publisher_->Stats().outbox_depth, 3u) << "nothing is forgotten before an answer";

  hub_.Answer(*publish, v1::EventResult::ACCEPTED);
  ASSERT_TRUE(publisher_->Drain(kWait));
  const PublisherStats stats = publisher_->Stats();
  EXPECT_EQ(stats.accepted, 3u);
  EXPECT_EQ(stats.outbox_depth, 0u);
  EXPECT_TRUE(stats.connected);
}

TEST_F(PublisherTest, SplitsBatchesAtMaxBatchEvents) {
  ASSERT_NO_FATAL_FAILURE(Start(/*max_batch=*/2));
  auto publish = EnqueueAndReceive({"a", "b", "c", "d", "e"});
  std::vector<std::string> seen;
  std::vector<uint64_t> batch_ids;
  while (publish.has_value()) {
    EXPECT_LE(publish->events_size(), 2);
    batch_ids.push_back(publish->batch_id());
    for (const auto& id : Ids(*publish)) {
      seen.push_back(id);
    }
    hub_.Answer(*publish, v1::EventResult::ACCEPTED);
    publish = seen.size() < 5 ? hub_.NextPublish() : std::nullopt;
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(batch_ids.size(), 3u);
  for (size_t i = 1; i < batch_ids.size(); ++i) {
    EXPECT_NE(batch_ids[i], batch_ids[i - 1]) << "batch ids must be unique while unanswered";
  }
  EXPECT_TRUE(publisher_->Drain(kWait));
}

TEST_F(PublisherTest, RefusedEventsGoToTheErrorStoreWithTheReason) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto publish = EnqueueAndReceive({"bad-1"});
  ASSERT_TRUE(publish.has_value());
  hub_.Answer(*publish, v1::EventResult::REJECTED, "invalid_nhs_number");
  ASSERT_TRUE(publisher_->Drain(kWait)) << "a refused event leaves the outbox";

  const PublisherStats stats = publisher_->Stats();
  EXPECT_EQ(stats.rejected, 1u);
  EXPECT_EQ(stats.errors_stored, 1u);
  EXPECT_EQ(stats.rejected_by_reason.at("invalid_nhs_number"), 1u);
  const std::vector<FailedEvent> failures = publisher_->Failures();
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].event_id, "bad-1");
  EXPECT_EQ(failures[0].publisher_ods, "RXK");
  EXPECT_EQ(failures[0].status, "REJECTED");
  EXPECT_EQ(failures[0].reason, "invalid_nhs_number");
}

TEST_F(PublisherTest, RetryAnswerSendsTheEventAgain) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto first = EnqueueAndReceive({"r1"});
  ASSERT_TRUE(first.has_value());
  hub_.Answer(*first, v1::EventResult::RETRY);

  auto again = hub_.NextPublish();
  ASSERT_TRUE(again.has_value()) << "a RETRY answer must be resent";
  EXPECT_EQ(Ids(*again), std::vector<std::string>{"r1"});
  EXPECT_NE(again->batch_id(), first->batch_id());
  EXPECT_EQ(publisher_->Stats().outbox_depth, 1u);
  hub_.Answer(*again, v1::EventResult::DUPLICATE);
  ASSERT_TRUE(publisher_->Drain(kWait));
  const PublisherStats stats = publisher_->Stats();
  EXPECT_GE(stats.retried, 1u);
  EXPECT_EQ(stats.duplicate, 1u);
  EXPECT_EQ(stats.accepted, 0u);
}

// The outbox is the durability promise: what the hub never answered is still there after Close
// and is sent by the next Open.
TEST_F(PublisherTest, UnansweredEventsSurviveCloseAndAreSentByTheNextOpen) {
  {
    FakeHub silent;
    ASSERT_NO_FATAL_FAILURE(Start(1000, &silent));
    ASSERT_TRUE(publisher_->Enqueue({MakeEvent("k1"), MakeEvent("k2")}).ok());
    ASSERT_TRUE(silent.NextPublish().has_value());  // sent, never answered
    EXPECT_FALSE(publisher_->Drain(milliseconds(200)));
    publisher_->Close();
    publisher_.reset();
  }
  ASSERT_NO_FATAL_FAILURE(Start());
  EXPECT_EQ(publisher_->Stats().outbox_depth, 2u);
  EXPECT_EQ(publisher_->Stats().enqueued, 0u) << "counters are per run; the outbox is not";
  auto publish = hub_.NextPublish();
  ASSERT_TRUE(publish.has_value());
  EXPECT_EQ(Ids(*publish), (std::vector<std::string>{"k1", "k2"}));
  hub_.Answer(*publish, v1::EventResult::ACCEPTED);
  EXPECT_TRUE(publisher_->Drain(kWait));
}

TEST_F(PublisherTest, AnswersToUnknownBatchesAreIgnored) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto publish = EnqueueAndReceive({"u1"});
  ASSERT_TRUE(publish.has_value());
  v1::Publish stranger = *publish;
  stranger.set_batch_id(publish->batch_id() + 1000);
  hub_.Answer(stranger, v1::EventResult::ACCEPTED);
  EXPECT_FALSE(publisher_->Drain(milliseconds(300)));
  EXPECT_EQ(publisher_->Stats().accepted, 0u);
  hub_.Answer(*publish, v1::EventResult::ACCEPTED);
  EXPECT_TRUE(publisher_->Drain(kWait));
}

}  // namespace
}  // namespace carehub::client
