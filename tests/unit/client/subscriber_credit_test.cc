// The subscriber library's credit (docs/protocol.md, "Credit"): it returns what it consumed in
// quarters of its window rather than after every batch, and a hub that sends only what it has
// credit for never waits on it. Checked against a scripted hub that keeps the protocol's rule
// itself: at most initial_credit + the sum of the Credit frames' events in flight.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <thread>

#include "carehub/client/subscriber.h"
#include "scripted_hub.h"

namespace carehub::client {
namespace {

TEST(SubscriberCreditTest, CreditComesBackInQuartersOfTheWindowAndTheFeedNeverStalls) {
  constexpr uint32_t kWindow = 100;
  constexpr uint64_t kEvents = 2000;
  constexpr uint64_t kBatch = 7;  // not a divisor of the window's quarter
  ScriptedHub hub;
  SubscriberOptions options;
  options.endpoint = hub.endpoint();
  options.subscription = "feed";
  options.start = v1::Subscribe::START_EARLIEST;
  options.window = kWindow;
  options.connect_timeout = milliseconds(10'000);
  Result<std::unique_ptr<Subscriber>> opened = Status::Error("pending", "");
  std::thread opener([&] { opened = Subscriber::Open(options); });
  const auto subscribe = hub.AnswerSubscribe();
  opener.join();
  ASSERT_TRUE(subscribe.has_value());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  ASSERT_EQ(subscribe->initial_credit(), kWindow);

  // The reader takes everything it is sent, on its own thread, as an application would.
  std::atomic<uint64_t> received{0};
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    while (!stop.load() && received.load() < kEvents) {
      auto batch = opened.value()->Next(milliseconds(50));
      ASSERT_TRUE(batch.ok()) << batch.status().ToString();
      if (batch.value()) {
        received += batch.value()->events.size();
      }
    }
  });

  // The hub sends while it has credit, and otherwise waits (bounded) for a Credit frame.
  uint64_t credit = kWindow;
  uint64_t sent = 0;
  uint64_t batches = 0;
  std::vector<uint32_t> credits;
  while (sent < kEvents) {
    if (credit > 0) {
      const uint64_t n = std::min({kBatch, credit, kEvents - sent});
      hub.DeliverEvents(/*epoch=*/1, sent + 1, n);
      sent += n;
      credit -= n;
      ++batches;
    }
    // Drain what the subscriber sent; with no credit left, wait for some (a stall fails here).
    const auto wait = credit > 0 ? milliseconds(0) : milliseconds(5000);
    while (auto frame = hub.Receive(wait)) {
      if (frame->has_credit()) {
        credits.push_back(frame->credit().events());
        credit += frame->credit().events();
        break;
      }
    }
    ASSERT_GT(credit + (sent == kEvents ? 1 : 0), 0u)
        << "stalled: " << sent << " events sent, no credit came back";
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (received.load() < kEvents && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  stop = true;
  reader.join();
  EXPECT_EQ(received.load(), kEvents);

  // A quarter of the window at a time, never more than was received: ~kEvents / 25 frames for
  // ~kEvents / 7 batches.
  ASSERT_FALSE(credits.empty());
  uint64_t returned = 0;
  for (uint32_t c : credits) {
    EXPECT_GE(c, kWindow / 4);
    returned += c;
  }
  EXPECT_LE(returned, kEvents);
  std::printf("%zu credit frames returning %llu events, for %llu deliveries\n", credits.size(),
              static_cast<unsigned long long>(returned), static_cast<unsigned long long>(batches));
  EXPECT_LT(credits.size(), batches / 3)
      << credits.size() << " credit frames for " << batches << " batches";
}

}  // namespace
}  // namespace carehub::client
