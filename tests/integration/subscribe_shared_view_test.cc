// Subscriptions of one view (the same subscriber and purpose, hence the same agreements) reading
// live at the head: the hub decides, redacts and encodes each batch once and sends it to each of
// them by reference (issue 15: "share one encoded batch between subscriptions that see the same
// bytes; send without copying"). What must still hold, checked against plain rules written out
// here and the publisher's own events: each twin receives every event its agreement allows, the
// same bytes as the other, and has its own audit records; a subscription of another view at the
// same position never receives the twins' batch: a direct-care feed of the same subscriber, over
// the same sources and types, gets every event identifiable as published; the twins get theirs
// pseudonymised, nothing identifying in the bytes, the opted-out patients withheld.

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <vector>

#include "carehub/core/event_types.h"
#include "carehub/core/synthetic.h"
#include "harness/workload.h"
#include "ops_common.h"
#include "subscribe_support.h"

namespace carehub::itest {
namespace {

using google::protobuf::util::MessageDifferencer;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kAgreements = R"(subscribers:
  - id: ics
    subscriptions:
      - {id: ics-feed, purpose: secondary_use}
      - {id: ics-feed-standby, purpose: secondary_use}
      - {id: ics-care, purpose: direct_care}
agreements:
  - id: DSA-ICS-SU
    subscriber: ics
    purpose: secondary_use
    legal_basis: "test: secondary use"
    valid_from: 2020-01-01
    valid_until: 2099-12-31
    sources: ["*"]
    event_types: ["*"]
    patient_fields: pseudonymised
  - id: DSA-ICS-DC
    subscriber: ics
    purpose: direct_care
    legal_basis: "test: direct care"
    valid_from: 2020-01-01
    valid_until: 2099-12-31
    sources: ["*"]
    event_types: ["*"]
    patient_fields: identifiable
pseudonymisation:
  secret_file: pseudonym.key
opt_out:
  file: national-opt-out.txt
)";

TEST(SubscribeSharedViewTest, TwinsShareEachBatchAndAnotherViewNeverGetsIt) {
  TempDir policy_dir("sub-shared-files");
  constexpr uint32_t kPopulation = 1000;
  std::vector<std::string> opt_out;
  std::set<std::string> opted_out;
  for (uint32_t n = 0; n < kPopulation; n += 7) {
    opt_out.push_back(SyntheticNhsNumber(n));
    opted_out.insert(opt_out.back());
  }
  auto agreements = WritePolicyFiles(policy_dir.path(), kAgreements, opt_out);
  ASSERT_TRUE(agreements.ok()) << agreements.status().ToString();
  auto hub = HubProcess::Start(HubWithAgreements("sub-shared", agreements.value()));
  ASSERT_TRUE(hub.ok()) << hub.status().ToString();
  auto& h = *hub.value();

  // All three at the head of the empty log before anything is published: every round finds the
  // twins at the same position.
  const std::vector<std::string> ids = {"ics-feed", "ics-feed-standby", "ics-care"};
  ReadFeedOptions ro;
  ro.start = v1::Subscribe::START_EARLIEST;
  ro.window = 50'000;
  std::map<std::string, std::unique_ptr<client::Subscriber>> subs;
  for (const auto& id : ids) {
    auto sub = OpenFeed(h.subscribe_endpoint(), id, ro);
    ASSERT_TRUE(sub.ok()) << id << ": " << sub.status().ToString();
    subs[id] = std::move(sub).value();
  }

  auto synth = FixedSyntheticOptions(20'261'207, "twin-");
  synth.population = kPopulation;
  SyntheticGenerator gen(synth);
  std::vector<v1::Event> events;
  for (int i = 0; i < 4000; ++i) {
    events.push_back(gen.Next());
  }
  auto seqs = PublishAccepted(h.ingest_endpoint(), events);
  ASSERT_TRUE(seqs.ok()) << seqs.status().ToString();
  std::map<uint64_t, const v1::Event*> by_seq;
  for (size_t i = 0; i < events.size(); ++i) {
    by_seq[(*seqs)[i]] = &events[i];
  }

  std::map<std::string, FeedRead> feeds;
  ro.until_seq = seqs->back();
  for (const auto& id : ids) {
    auto feed = ReadOpenFeed(*subs[id], id, ro, std::chrono::steady_clock::now());
    ASSERT_TRUE(feed.ok()) << id << ": " << feed.status().ToString();
    feeds[id] = std::move(feed).value();
  }

  // The twins: every event but the opted-out patients', pseudonymised, the same bytes for both.
  std::vector<uint64_t> expected_twin, expected_care;
  for (const auto& [seq, e] : by_seq) {
    if (opted_out.count(e->envelope().patient().nhs_number()) == 0) {
      expected_twin.push_back(seq);
    }
    expected_care.push_back(seq);
  }
  ASSERT_LT(expected_twin.size(), events.size()) << "the workload must include opted-out patients";
  EXPECT_EQ(Seqs(feeds["ics-feed"].events), expected_twin);
  // Each delivered event as sent.
  const auto bytes = [](const FeedRead& feed) {
    std::vector<std::string> out;
    for (const auto& d : feed.events) {
      out.push_back(d.SerializeAsString());
    }
    return out;
  };
  EXPECT_EQ(bytes(feeds["ics-feed"]), bytes(feeds["ics-feed-standby"]));
  for (const auto& d : feeds["ics-feed-standby"].events) {
    const v1::Event& original = *by_seq.at(d.event().envelope().hub_seq());
    const auto& p = original.envelope().patient();
    ASSERT_EQ(d.agreement_id(), "DSA-ICS-SU");
    ASSERT_TRUE(d.event().envelope().patient().nhs_number().empty());
    ASSERT_EQ(d.event().envelope().patient().pseudonym().size(), 64u);
    const std::string bytes = d.SerializeAsString();
    for (const auto& secret : {p.nhs_number(), p.family_name(), p.local_mrn()}) {
      ASSERT_TRUE(secret.size() < 4 || bytes.find(secret) == std::string::npos)
          << "an identifier of hub_seq " << d.event().envelope().hub_seq() << " left the hub";
    }
  }
  // The other view: the same events, identifiable, as published.
  EXPECT_EQ(Seqs(feeds["ics-care"].events), expected_care);
  for (const auto& d : feeds["ics-care"].events) {
    ASSERT_EQ(d.agreement_id(), "DSA-ICS-DC");
    ASSERT_TRUE(MessageDifferencer::Equals(WithoutHubFields(d.event()),
                                           *by_seq.at(d.event().envelope().hub_seq())));
  }

  // Shared: the hub counted the batches one twin took by reference from the other's read.
  const auto samples = ops::ParseSamples(ops::HttpGet(h.admin_address(), "/metrics").body);
  EXPECT_GE(ops::SumSamples(samples, "carehub_delivery_batches_shared_total"), 1.0);

  // Each twin is audited as its own disclosure: records naming it, adding up to what it received,
  // with the opted-out patients withheld. The record follows the send: wait (bounded) for it.
  auto audited = [&](const std::vector<nlohmann::json>& items, const std::string& subscription,
                     const std::string& counter) {
    uint64_t n = 0;
    for (const auto& a : items) {
      if (a.value("kind", "") == "delivery" && a.value("subscription", "") == subscription) {
        n += counter == "delivered" ? a.value("delivered", 0u)
                                    : a["withheld_by_reason"].value(counter, 0u);
      }
    }
    return n;
  };
  Result<std::vector<nlohmann::json>> audit = Status::Error("not_read", "");
  WaitFor(
      [&] {
        audit = AuditRecords(h.admin_address());
        return audit.ok() &&
               audited(*audit, "ics-feed-standby", "delivered") >= expected_twin.size() &&
               audited(*audit, "ics-feed", "delivered") >= expected_twin.size();
      },
      seconds(10));
  ASSERT_TRUE(audit.ok()) << audit.status().ToString();
  for (const std::string twin : {"ics-feed", "ics-feed-standby"}) {
    SCOPED_TRACE(twin);
    EXPECT_EQ(audited(*audit, twin, "delivered"), expected_twin.size());
    EXPECT_EQ(audited(*audit, twin, "national_data_opt_out"), events.size() - expected_twin.size());
  }
  EXPECT_EQ(audited(*audit, "ics-care", "delivered"), expected_care.size());
}

}  // namespace
}  // namespace carehub::itest
