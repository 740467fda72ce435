// A narrow subscription catching up on a large backlog (DESIGN §6): one publisher contributes
// about 1% of 100,000 stored events; a subscription covering only that publisher receives
// exactly its events, and reads them through the store's route index rather than examining the
// whole log.

#include <gtest/gtest.h>

#include <set>

#include "carehub/core/synthetic.h"
#include "harness/raw_publisher.h"
#include "harness/workload.h"
#include "subscribe_support.h"

namespace carehub::itest {
namespace {

using std::chrono::seconds;

constexpr const char* kAgreements = R"(subscribers:
  - id: york-trust
    subscriptions:
      - {id: york-feed, purpose: direct_care}
agreements:
  - id: DSA-T-YORK
    subscriber: york-trust
    purpose: direct_care
    legal_basis: "test"
    valid_from: 2020-01-01
    valid_until: 2099-12-31
    sources: [RCB]
    event_types: ["*"]
    patient_fields: identifiable
)";

TEST(SubscribeRouteTest, NarrowCatchUpGetsExactlyItsPublishersEventsThroughTheRouteIndex) {
  TempDir dir("sub-route-files");
  auto agreements = WritePolicyFiles(dir.path(), kAgreements);
  ASSERT_TRUE(agreements.ok()) << agreements.status().ToString();
  // Deliveries of up to 5,000 events, so the whole narrow backlog fits in one.
  auto hub = HubProcess::Start(HubWithAgreements("sub-route", agreements.value(),
                                                 "subscribe:\n  max_delivery_batch: 5000\n"));
  ASSERT_TRUE(hub.ok()) << hub.status().ToString();
  auto& h = *hub.value();

  constexpr size_t kBacklog = 100'000;
  SyntheticGenerator others(FixedSyntheticOptions(7001, "other-"));
  auto york_options = FixedSyntheticOptions(7002, "york-");
  york_options.publishers = {"RCB"};
  SyntheticGenerator york(york_options);
  std::set<std::string> york_ids;
  size_t made = 0;
  auto make = [&](size_t n) {
    std::vector<v1::Event> out;
    out.reserve(n);
    for (size_t i = 0; i < n; ++i, ++made) {
      if (made % 100 == 37) {
        out.push_back(york.Next());
        york_ids.insert(out.back().envelope().event_id());
      } else {
        out.push_back(others.Next());
      }
    }
    return out;
  };
  auto pub = RawPublisher::Connect(h.ingest_endpoint());
  ASSERT_TRUE(pub.ok()) << pub.status().ToString();
  auto counts = PublishGenerated(*pub.value(), kBacklog, 1000, 8, make, seconds(120));
  ASSERT_TRUE(counts.ok()) << counts.status().ToString();
  ASSERT_EQ(counts->accepted, kBacklog);
  ASSERT_EQ(york_ids.size(), kBacklog / 100);

  ReadFeedOptions ro;
  ro.until_seq = kBacklog;
  auto feed = ReadFeed(h.subscribe_endpoint(), "york-feed", ro);
  ASSERT_TRUE(feed.ok()) << feed.status().ToString();
  std::cout << "narrow catch-up: " << feed->events.size() << " of " << kBacklog
            << " stored events in " << feed->seconds << " s, " << feed->batches << " deliveries\n";

  std::set<std::string> got;
  uint64_t prev = 0;
  for (const auto& d : feed->events) {
    const auto& env = d.event().envelope();
    EXPECT_EQ(env.publisher_ods(), "RCB") << env.event_id();
    EXPECT_GT(env.hub_seq(), prev) << "out of hub_seq order at " << env.event_id();
    prev = env.hub_seq();
    got.insert(env.event_id());
  }
  EXPECT_EQ(got.size(), feed->events.size()) << "an event was delivered twice";
  EXPECT_EQ(got, york_ids);

  // The hub examines at most 20,000 events of the log per session and round
  // (SubscribeServerOptions::max_scan_per_round). Reading the whole 100,000-event backlog's
  // matching events in a single delivery that covers it to the end is only possible through the
  // route index, which reads just this publisher's routes.
  ASSERT_FALSE(feed->event_batches.empty());
  EXPECT_EQ(feed->event_batches.front().first, york_ids.size())
      << "the first delivery did not carry the whole narrow backlog";
  EXPECT_EQ(feed->event_batches.front().second, kBacklog)
      << "the first delivery did not cover the backlog to its end";
}

}  // namespace
}  // namespace carehub::itest
