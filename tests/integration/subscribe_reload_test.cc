// Reloading agreements while a subscriber is connected (DESIGN §6): a reload that narrows a feed
// applies to the next delivery, so events published after it that fall outside the new agreement
// never reach the subscriber; an invalid file is refused (SIGHUP or POST reload) and the set in
// force stays, deliveries continuing under it; every change and refusal is in the audit log.

#include <gtest/gtest.h>
#include <signal.h>

#include <set>

#include "harness/workload.h"
#include "subscribe_support.h"

namespace carehub::itest {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::string Agreements(const std::string& sources_line) {
  return R"(subscribers:
  - id: reload-reader
    subscriptions:
      - {id: reload-feed, purpose: direct_care}
agreements:
  - id: DSA-T-RELOAD
    subscriber: reload-reader
    purpose: direct_care
    legal_basis: "test"
    valid_from: 2020-01-01
    valid_until: 2099-12-31
)" + sources_line +
         R"(
    event_types: ["*"]
    patient_fields: identifiable
)";
}

const std::string kWide = Agreements(R"(    sources: ["*"])");
const std::string kNarrow = Agreements(R"(    sources: [RXK])");
// A misspelt key: must refuse the whole file rather than silently widen or narrow the feed.
const std::string kInvalid = Agreements(R"(    sourcs: [RR8])");

class Feed {
 public:
  static Result<Feed> Open(const std::string& endpoint) {
    client::SubscriberOptions so;
    so.endpoint = endpoint;
    so.subscription = "reload-feed";
    so.start = v1::Subscribe::START_EARLIEST;
    auto sub = client::Subscriber::Open(so);
    if (!sub.ok()) {
      return sub.status();
    }
    return Feed(std::move(sub).value());
  }

  // Everything delivered until the hub has examined `seq`, as event ids.
  Result<std::set<std::string>> ReadUntil(uint64_t seq) {
    std::set<std::string> ids;
    auto deadline = std::chrono::steady_clock::now() + seconds(30);
    while (scanned_ < seq) {
      if (std::chrono::steady_clock::now() >= deadline) {
        return Status::Error("timeout", "feed examined only up to " + std::to_string(scanned_));
      }
      auto batch = sub_->Next(milliseconds(200));
      if (!batch.ok()) {
        return batch.status();
      }
      if (!batch.value()) {
        continue;
      }
      for (const auto& d : batch.value()->events) {
        if (!ids.insert(d.event().envelope().event_id()).second) {
          return Status::Error("duplicate", "delivered twice: " + d.event().envelope().event_id());
        }
      }
      scanned_ = batch.value()->scanned_to_seq;
      (void)sub_->Ack(scanned_);
    }
    return ids;
  }

 private:
  explicit Feed(std::unique_ptr<client::Subscriber> sub) : sub_(std::move(sub)) {}
  std::unique_ptr<client::Subscriber> sub_;
  uint64_t scanned_ = 0;
};

struct Published {
  std::set<std::string> all;
  std::set<std::string> from_rxk;
  uint64_t last_seq = 0;
};

Result<Published> Publish(const std::string& endpoint, uint64_t seed, const std::string& prefix) {
  WorkloadOptions wo;
  wo.seed = seed;
  wo.id_prefix = prefix;
  wo.events = 600;
  auto events = MakeWorkload(wo).events;
  auto seqs = PublishAccepted(endpoint, events);
  if (!seqs.ok()) {
    return seqs.status();
  }
  Published p;
  p.last_seq = seqs->back();
  for (const auto& e : events) {
    p.all.insert(e.envelope().event_id());
    if (e.envelope().publisher_ods() == "RXK" || e.envelope().site_ods() == "RXK") {
      p.from_rxk.insert(e.envelope().event_id());
    }
  }
  return p;
}

size_t CountAudit(const std::string& admin, const std::string& kind) {
  auto audit = AuditRecords(admin);
  if (!audit.ok()) {
    return 0;
  }
  size_t n = 0;
  for (const auto& a : audit.value()) {
    n += a.value("kind", "") == kind ? 1 : 0;
  }
  return n;
}

TEST(SubscribeReloadTest, NarrowingAppliesToTheNextDeliveryAndInvalidFilesAreRefused) {
  TempDir dir("sub-reload-files");
  auto agreements = WritePolicyFiles(dir.path(), kWide);
  ASSERT_TRUE(agreements.ok()) << agreements.status().ToString();
  auto hub = HubProcess::Start(HubWithAgreements("sub-reload", agreements.value()));
  ASSERT_TRUE(hub.ok()) << hub.status().ToString();
  auto& h = *hub.value();
  auto feed = Feed::Open(h.subscribe_endpoint());
  ASSERT_TRUE(feed.ok()) << feed.status().ToString();

  // 1. Wide: everything.
  auto b1 = Publish(h.ingest_endpoint(), 101, "rl1-");
  ASSERT_TRUE(b1.ok()) << b1.status().ToString();
  ASSERT_GT(b1->from_rxk.size(), 50u);
  ASSERT_LT(b1->from_rxk.size(), b1->all.size() / 2);
  auto got1 = feed->ReadUntil(b1->last_seq);
  ASSERT_TRUE(got1.ok()) << got1.status().ToString();
  EXPECT_EQ(got1.value(), b1->all);

  // 2. Narrowed by SIGHUP: from the next delivery on, only RXK's events.
  ASSERT_TRUE(WriteFileAtomically(agreements.value(), kNarrow).ok());
  h.Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return CountAudit(h.admin_address(), "agreements_changed") == 1; },
                      seconds(10)))
      << "no agreements_changed audit record after SIGHUP; log:\n"
      << h.ReadLog();
  auto b2 = Publish(h.ingest_endpoint(), 102, "rl2-");
  ASSERT_TRUE(b2.ok()) << b2.status().ToString();
  auto got2 = feed->ReadUntil(b2->last_seq);
  ASSERT_TRUE(got2.ok()) << got2.status().ToString();
  EXPECT_EQ(got2.value(), b2->from_rxk);

  // 3. An invalid file, by the admin API and by SIGHUP: refused, the narrowed set stays in force.
  ASSERT_TRUE(WriteFileAtomically(agreements.value(), kInvalid).ok());
  auto refused = AdminPost(h.admin_address(), "/api/v1/agreements/reload");
  ASSERT_TRUE(refused.ok()) << refused.status().ToString();
  EXPECT_EQ(refused->status, 422) << refused->body.dump();
  EXPECT_EQ(refused->body.value("error", ""), "invalid_policy") << refused->body.dump();
  EXPECT_NE(refused->body.value("message", "").find("sourcs"), std::string::npos)
      << refused->body.dump();
  h.Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return CountAudit(h.admin_address(), "agreements_rejected") == 2; },
                      seconds(10)))
      << "expected two agreements_rejected audit records; log:\n"
      << h.ReadLog();
  ASSERT_TRUE(h.running());
  auto b3 = Publish(h.ingest_endpoint(), 103, "rl3-");
  ASSERT_TRUE(b3.ok()) << b3.status().ToString();
  auto got3 = feed->ReadUntil(b3->last_seq);
  ASSERT_TRUE(got3.ok()) << got3.status().ToString();
  EXPECT_EQ(got3.value(), b3->from_rxk) << "deliveries must continue under the set in force";

  // 4. Widened again through the admin API: everything from the next delivery on.
  ASSERT_TRUE(WriteFileAtomically(agreements.value(), kWide).ok());
  auto applied = AdminPost(h.admin_address(), "/api/v1/agreements/reload");
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ(applied->status, 200) << applied->body.dump();
  auto b4 = Publish(h.ingest_endpoint(), 104, "rl4-");
  ASSERT_TRUE(b4.ok()) << b4.status().ToString();
  auto got4 = feed->ReadUntil(b4->last_seq);
  ASSERT_TRUE(got4.ok()) << got4.status().ToString();
  EXPECT_EQ(got4.value(), b4->all);

  // The audit log tells the story: two changes naming the agreement, two refusals with the reason.
  auto audit = AuditRecords(h.admin_address());
  ASSERT_TRUE(audit.ok()) << audit.status().ToString();
  std::vector<nlohmann::json> changed;
  std::vector<nlohmann::json> rejected;
  for (const auto& a : audit.value()) {
    if (a.value("kind", "") == "agreements_changed") {
      changed.push_back(a);
    } else if (a.value("kind", "") == "agreements_rejected") {
      rejected.push_back(a);
    }
  }
  ASSERT_EQ(changed.size(), 2u);
  ASSERT_EQ(rejected.size(), 2u);
  for (const auto& c : changed) {
    EXPECT_NE(c.value("detail", "").find("DSA-T-RELOAD"), std::string::npos) << c.dump();
  }
  for (const auto& r : rejected) {
    EXPECT_NE(r.value("detail", "").find("sourcs"), std::string::npos) << r.dump();
  }
}

}  // namespace
}  // namespace carehub::itest
