// A stalled subscriber costs ingest and other subscribers nothing (DESIGN §6): one subscriber
// opens its feed with a small window and then never grants credit or acknowledges while 200,000
// events are ingested; ingest completes at about its usual rate, a second subscriber connected
// at the same time receives everything as it arrives, and the stalled one, resuming afterwards,
// catches up on everything from the store.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <thread>
#include <zmq.hpp>

#include "carehub/core/synthetic.h"
#include "harness/raw_publisher.h"
#include "harness/workload.h"
#include "subscribe_support.h"

namespace carehub::itest {
namespace {

using Steady = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kAgreements = R"(subscribers:
  - id: live-reader
    subscriptions:
      - {id: live-feed, purpose: direct_care}
  - id: stalled-reader
    subscriptions:
      - {id: stalled-feed, purpose: direct_care}
agreements:
  - id: DSA-T-LIVE
    subscriber: live-reader
    purpose: direct_care
    legal_basis: "test"
    valid_from: 2020-01-01
    valid_until: 2099-12-31
    sources: ["*"]
    event_types: ["*"]
    patient_fields: identifiable
  - id: DSA-T-STALLED
    subscriber: stalled-reader
    purpose: direct_care
    legal_basis: "test"
    valid_from: 2020-01-01
    valid_until: 2099-12-31
    sources: ["*"]
    event_types: ["*"]
    patient_fields: identifiable
)";

// What a reader saw: every event in order with no gap or repeat means count == last seq.
struct Tally {
  std::atomic<uint64_t> count{0};
  std::atomic<uint64_t> last_seq{0};
  std::atomic<uint64_t> out_of_order{0};
  std::string error;
};

// Reads `subscription` until it has examined `target` (which may grow while reading; 0 means not
// known yet) or `deadline`; acknowledges every batch.
void ReadAll(const std::string& endpoint, const std::string& subscription,
             v1::Subscribe::Start start, const std::atomic<uint64_t>& target,
             Steady::time_point deadline, Tally* tally) {
  client::SubscriberOptions so;
  so.endpoint = endpoint;
  so.subscription = subscription;
  so.start = start;
  auto sub = client::Subscriber::Open(so);
  if (!sub.ok()) {
    tally->error = sub.status().ToString();
    return;
  }
  uint64_t scanned = 0;
  while (target.load() == 0 || scanned < target.load()) {
    if (Steady::now() >= deadline) {
      tally->error = subscription + ": timed out at hub_seq " + std::to_string(scanned);
      return;
    }
    auto batch = sub.value()->Next(milliseconds(200));
    if (!batch.ok()) {
      tally->error = batch.status().ToString();
      return;
    }
    if (!batch.value()) {
      continue;
    }
    for (const auto& d : batch.value()->events) {
      uint64_t seq = d.event().envelope().hub_seq();
      if (seq != tally->last_seq.load() + 1) {
        tally->out_of_order.fetch_add(1);
      }
      tally->last_seq.store(seq);
      tally->count.fetch_add(1);
    }
    scanned = batch.value()->scanned_to_seq;
    (void)sub.value()->Ack(scanned);
  }
}

// A subscriber that asks for 50 events and then does nothing but say it is alive: no Credit, no
// Ack, and it never reads its socket. Runs until `stop`.
void Stall(const std::string& endpoint, const std::atomic<bool>& stop, std::atomic<bool>* opened,
           std::string* error) {
  zmq::context_t context(1);
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::linger, 0);
  socket.connect(endpoint);
  v1::Frame frame;
  frame.set_version(v1::PROTOCOL_VERSION_1);
  frame.mutable_subscribe()->set_subscription("stalled-feed");
  frame.mutable_subscribe()->set_start(v1::Subscribe::START_EARLIEST);
  frame.mutable_subscribe()->set_initial_credit(50);
  (void)socket.send(zmq::buffer(frame.SerializeAsString()), zmq::send_flags::none);
  zmq::message_t reply;
  socket.set(zmq::sockopt::rcvtimeo, 5000);
  v1::Frame answer;
  if (!socket.recv(reply) || !answer.ParseFromArray(reply.data(), static_cast<int>(reply.size())) ||
      !answer.has_subscribed()) {
    *error = "the stalled subscriber was not subscribed: " + answer.ShortDebugString();
    opened->store(true);
    return;
  }
  opened->store(true);
  v1::Frame hb;
  hb.set_version(v1::PROTOCOL_VERSION_1);
  hb.mutable_heartbeat();
  const std::string hb_bytes = hb.SerializeAsString();
  while (!stop.load()) {
    (void)socket.send(zmq::buffer(hb_bytes), zmq::send_flags::dontwait);
    for (int i = 0; i < 10 && !stop.load(); ++i) {
      std::this_thread::sleep_for(milliseconds(100));
    }
  }
}

// Runs `fn` when the scope ends, so a failed ASSERT never leaves a reader thread joinable.
class Finally {
 public:
  explicit Finally(std::function<void()> fn) : fn_(std::move(fn)) {}
  ~Finally() { fn_(); }
  Finally(const Finally&) = delete;
  Finally& operator=(const Finally&) = delete;

 private:
  std::function<void()> fn_;
};

// Publishes `total` generated events in chunks of 10,000 and returns the median of the chunks'
// rates (events per second): a burst of other work on a shared machine then skews one chunk,
// not the whole measurement.
Result<double> TimedIngest(const std::string& endpoint, uint64_t seed, const std::string& prefix,
                           size_t total) {
  constexpr size_t kChunk = 10'000;
  auto pub = RawPublisher::Connect(endpoint);
  if (!pub.ok()) {
    return pub.status();
  }
  SyntheticGenerator gen(FixedSyntheticOptions(seed, prefix));
  auto make = [&](size_t n) {
    std::vector<v1::Event> out;
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      out.push_back(gen.Next());
    }
    return out;
  };
  std::vector<double> rates;
  for (size_t done = 0; done < total; done += kChunk) {
    const size_t n = std::min(kChunk, total - done);
    auto started = Steady::now();
    auto counts = PublishGenerated(*pub.value(), n, 1000, 8, make, seconds(60));
    if (!counts.ok()) {
      return counts.status();
    }
    if (counts->accepted != n) {
      return Status::Error("not_accepted", std::to_string(counts->accepted) + " of " +
                                               std::to_string(n) + " accepted");
    }
    rates.push_back(static_cast<double>(n) /
                    std::chrono::duration<double>(Steady::now() - started).count());
  }
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

TEST(SubscribeStallTest, StalledSubscriberSlowsNeitherIngestNorOthersAndCatchesUp) {
  TempDir dir("sub-stall-files");
  auto agreements = WritePolicyFiles(dir.path(), kAgreements);
  ASSERT_TRUE(agreements.ok()) << agreements.status().ToString();
  auto hub = HubProcess::Start(HubWithAgreements("sub-stall", agreements.value()));
  ASSERT_TRUE(hub.ok()) << hub.status().ToString();
  auto& h = *hub.value();
  constexpr size_t kBaseline = 100'000;
  constexpr size_t kStalled = 200'000;
  constexpr uint64_t kTotal = kBaseline + kStalled;
  const auto deadline = Steady::now() + seconds(150);

  // The live subscriber reads throughout both phases, so both ingest measurements share its cost.
  std::atomic<uint64_t> live_target{0};
  Tally live;
  std::thread live_reader([&] {
    ReadAll(h.subscribe_endpoint(), "live-feed", v1::Subscribe::START_EARLIEST, live_target,
            deadline, &live);
  });
  Finally join_live([&] {
    if (live_target.load() == 0) {
      live_target.store(1);  // a failed phase: let the reader stop at once
    }
    if (live_reader.joinable()) {
      live_reader.join();
    }
  });

  auto baseline = TimedIngest(h.ingest_endpoint(), 11, "base-", kBaseline);
  ASSERT_TRUE(baseline.ok()) << baseline.status().ToString();
  // Progress lines, flushed, so a run cut short by a timeout shows how far it got.
  std::cout << "baseline ingest done; live subscriber at hub_seq " << live.last_seq.load()
            << std::endl;

  std::atomic<bool> stop_stall{false};
  std::atomic<bool> stall_opened{false};
  std::string stall_error;
  std::thread staller(
      [&] { Stall(h.subscribe_endpoint(), stop_stall, &stall_opened, &stall_error); });
  Finally join_staller([&] {
    stop_stall.store(true);
    if (staller.joinable()) {
      staller.join();
    }
  });
  ASSERT_TRUE(WaitFor([&] { return stall_opened.load(); }, seconds(10)));
  ASSERT_TRUE(stall_error.empty()) << stall_error;

  auto stalled = TimedIngest(h.ingest_endpoint(), 12, "stall-", kStalled);
  ASSERT_TRUE(stalled.ok()) << stalled.status().ToString();
  std::cout << "ingest with a stalled subscriber done; live subscriber at hub_seq "
            << live.last_seq.load() << std::endl;
  std::cout << "ingest rate (median of 10,000-event chunks) without a stalled subscriber: "
            << static_cast<uint64_t>(*baseline)
            << " events/s; with one: " << static_cast<uint64_t>(*stalled) << " events/s\n";
  // A generous bound for a shared 2-core machine: this checks the stall does not throttle ingest.
  // The precise comparison belongs to the benchmark (bench/), not to a pass/fail test.
  EXPECT_GE(*stalled, 0.65 * *baseline);

  live_target.store(kTotal);
  live_reader.join();
  EXPECT_TRUE(live.error.empty()) << live.error;
  EXPECT_EQ(live.count.load(), kTotal);
  EXPECT_EQ(live.last_seq.load(), kTotal);
  EXPECT_EQ(live.out_of_order.load(), 0u);

  // Still stalled at the end of ingest: nothing acknowledged.
  auto status = AdminGet(h.admin_address(), "/api/v1/status");
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  for (const auto& s : status->body["subscriptions"]) {
    if (s.value("id", "") == "stalled-feed") {
      EXPECT_EQ(s.value("cursor", 1u), 0u);
    }
  }
  stop_stall.store(true);
  staller.join();

  // Resuming (it never acknowledged anything, so from the earliest event) it gets everything.
  std::atomic<uint64_t> all{kTotal};
  Tally resumed;
  auto started = Steady::now();
  ReadAll(h.subscribe_endpoint(), "stalled-feed", v1::Subscribe::START_RESUME, all, deadline,
          &resumed);
  std::cout << "stalled subscriber caught up on " << resumed.count.load() << " events in "
            << std::chrono::duration<double>(Steady::now() - started).count() << " s\n";
  EXPECT_TRUE(resumed.error.empty()) << resumed.error;
  EXPECT_EQ(resumed.count.load(), kTotal);
  EXPECT_EQ(resumed.last_seq.load(), kTotal);
  EXPECT_EQ(resumed.out_of_order.load(), 0u);
}

}  // namespace
}  // namespace carehub::itest
