// Subscriptions under data-sharing agreements, end to end (DESIGN §6): what each subscriber
// receives is re-derived here with plain rules written out in the test (not the policy library),
// and compared event by event with what the real hub delivered: nothing outside an agreement,
// everything inside it, secondary use pseudonymised with the national data opt-out applied, and
// every delivery accounted for in the audit log. Agreements outside their validity dates deliver
// nothing and say why.

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <thread>

#include "carehub/core/event_types.h"
#include "carehub/core/synthetic.h"
#include "harness/workload.h"
#include "subscribe_support.h"

namespace carehub::itest {
namespace {

using google::protobuf::util::MessageDifferencer;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kAgreements = R"(organisation_groups:
  test-practices: [M85001, M85002]
subscribers:
  - id: test-trust
    subscriptions:
      - {id: trust-direct, purpose: direct_care}
  - id: analytics-a
    subscriptions:
      - {id: analytics-a-feed, purpose: secondary_use}
  - id: analytics-b
    subscriptions:
      - {id: analytics-b-feed, purpose: secondary_use}
agreements:
  - id: DSA-T-DC
    subscriber: test-trust
    purpose: direct_care
    legal_basis: "test: direct care"
    valid_from: 2020-01-01
    valid_until: 2099-12-31
    sources: ["group:test-practices", RY6]
    event_types: ["activity.*"]
    patient_fields: identifiable
  - id: DSA-T-SUA
    subscriber: analytics-a
    purpose: secondary_use
    legal_basis: "test: secondary use A"
    valid_from: 2020-01-01
    valid_until: 2099-12-31
    sources: [RXK, RR8, M85001]
    event_types: ["activity.*", "referral.accepted", "referral.completed"]
    patient_fields: pseudonymised
  - id: DSA-T-SUB
    subscriber: analytics-b
    purpose: secondary_use
    legal_basis: "test: secondary use B"
    valid_from: 2020-01-01
    valid_until: 2099-12-31
    sources: ["*"]
    event_types: ["*"]
    patient_fields: pseudonymised
pseudonymisation:
  secret_file: pseudonym.key
opt_out:
  file: national-opt-out.txt
)";

// The rules of docs/agreements.md for these three agreements, written out plainly.
struct PlainRule {
  std::string subscription;
  std::string agreement;
  bool secondary_use = false;
  std::set<std::string> sources;   // empty: every source
  std::vector<std::string> types;  // "x.*" prefix or exact; empty: every type
};

bool Covers(const PlainRule& rule, const v1::Event& e) {
  const auto& env = e.envelope();
  bool source = rule.sources.empty() || rule.sources.count(env.publisher_ods()) > 0 ||
                rule.sources.count(env.site_ods()) > 0;
  if (!source) {
    return false;
  }
  if (rule.types.empty()) {
    return true;
  }
  const std::string type = EventTypeName(e);
  for (const auto& t : rule.types) {
    if (t.size() > 2 && t.substr(t.size() - 2) == ".*") {
      if (type.rfind(t.substr(0, t.size() - 1), 0) == 0) {
        return true;
      }
    } else if (t == type) {
      return true;
    }
  }
  return false;
}

std::vector<PlainRule> Rules() {
  return {
      {"trust-direct", "DSA-T-DC", false, {"M85001", "M85002", "RY6"}, {"activity.*"}},
      {"analytics-a-feed",
       "DSA-T-SUA",
       true,
       {"RXK", "RR8", "M85001"},
       {"activity.*", "referral.accepted", "referral.completed"}},
      {"analytics-b-feed", "DSA-T-SUB", true, {}, {}},
  };
}

bool IsHex64(const std::string& s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

class Findings {
 public:
  void Add(const std::string& what) {
    if (count_++ < 10) {
      first_ += "  " + what + "\n";
    }
  }
  size_t count() const { return count_; }
  std::string Report() const { return std::to_string(count_) + " findings; first:\n" + first_; }

 private:
  size_t count_ = 0;
  std::string first_;
};

// Checks a secondary-use patient against the publisher's original: only what docs/agreements.md
// lets out, and nothing identifying anywhere in the delivered bytes.
void CheckPseudonymised(const v1::Patient& out, const v1::Patient& in, const std::string& where,
                        Findings* f) {
  if (!out.nhs_number().empty()) {
    f->Add(where + "carries an NHS number");
  }
  if (!out.given_name().empty() || !out.family_name().empty() || !out.address().empty()) {
    f->Add(where + "carries a name or address");
  }
  if (!out.local_mrn().empty() || !out.mrn_assigning_ods().empty()) {
    f->Add(where + "carries a local MRN");
  }
  if (out.birth_date() != in.birth_date().substr(0, 7) || out.birth_date().size() != 7) {
    f->Add(where + "birth date '" + out.birth_date() + "' is not the year and month of " +
           in.birth_date().substr(0, 4) + "-..");
  }
  const std::string district = in.postcode().substr(0, in.postcode().find(' '));
  if (out.postcode() != district) {
    f->Add(where + "postcode '" + out.postcode() + "' is not the district '" + district + "'");
  }
  if (!IsHex64(out.pseudonym())) {
    f->Add(where + "pseudonym '" + out.pseudonym() + "' is not 64 hex digits");
  }
  if (out.sex() != in.sex() || out.registered_gp_ods() != in.registered_gp_ods()) {
    f->Add(where + "sex or registered practice changed");
  }
}

TEST(SubscribePolicyTest, EachFeedGetsExactlyWhatItsAgreementAllowsRedactedAndAudited) {
  TempDir policy_dir("sub-policy-files");
  constexpr uint32_t kPopulation = 2000;
  // Every ninth synthetic patient has opted out; with this population most appear in the events.
  std::vector<std::string> opt_out;
  std::set<std::string> opted_out;
  for (uint32_t n = 0; n < kPopulation; n += 9) {
    opt_out.push_back(SyntheticNhsNumber(n));
    opted_out.insert(opt_out.back());
  }
  auto agreements = WritePolicyFiles(policy_dir.path(), kAgreements, opt_out);
  ASSERT_TRUE(agreements.ok()) << agreements.status().ToString();

  auto synth = FixedSyntheticOptions(20'260'301, "pol-");
  synth.population = kPopulation;
  SyntheticGenerator gen(synth);
  std::vector<v1::Event> events;
  for (int i = 0; i < 6000; ++i) {
    events.push_back(gen.Next());
  }

  auto hub = HubProcess::Start(HubWithAgreements("sub-policy", agreements.value()));
  ASSERT_TRUE(hub.ok()) << hub.status().ToString();
  auto& h = *hub.value();
  auto seqs = PublishAccepted(h.ingest_endpoint(), events);
  ASSERT_TRUE(seqs.ok()) << seqs.status().ToString();
  const uint64_t last_seq = seqs->back();

  std::map<std::string, size_t> by_id;  // event_id -> index (prefix makes ids unique)
  for (size_t i = 0; i < events.size(); ++i) {
    by_id[events[i].envelope().event_id()] = i;
  }

  std::map<std::string, std::map<std::string, std::string>> pseudonyms;  // agreement -> nhs -> p
  std::map<std::string, size_t> received;
  std::map<std::string, size_t> expected_withheld;
  for (const auto& rule : Rules()) {
    SCOPED_TRACE(rule.subscription);
    std::set<std::string> expected;
    size_t withheld = 0;
    for (const auto& e : events) {
      if (!Covers(rule, e)) {
        continue;
      }
      if (rule.secondary_use && opted_out.count(e.envelope().patient().nhs_number())) {
        ++withheld;
        continue;
      }
      expected.insert(e.envelope().event_id());
    }
    expected_withheld[rule.subscription] = withheld;
    ASSERT_GT(expected.size(), 100u) << "the workload must exercise this agreement";
    if (rule.secondary_use) {
      ASSERT_GT(withheld, 20u) << "the workload must include opted-out patients";
    }

    ReadFeedOptions ro;
    ro.until_seq = last_seq;
    auto feed = ReadFeed(h.subscribe_endpoint(), rule.subscription, ro);
    ASSERT_TRUE(feed.ok()) << feed.status().ToString();
    received[rule.subscription] = feed->events.size();

    Findings f;
    std::set<std::string> delivered;
    uint64_t prev_seq = 0;
    for (const auto& d : feed->events) {
      const auto& env = d.event().envelope();
      const std::string where = rule.subscription + " " + env.event_id() + ": ";
      if (env.hub_seq() <= prev_seq) {
        f.Add(where + "hub_seq " + std::to_string(env.hub_seq()) + " out of order");
      }
      prev_seq = env.hub_seq();
      auto it = by_id.find(env.event_id());
      if (it == by_id.end()) {
        f.Add(where + "not an event the test published");
        continue;
      }
      const v1::Event& original = events[it->second];
      delivered.insert(env.event_id());
      if (env.hub_seq() != (*seqs)[it->second]) {
        f.Add(where + "hub_seq differs from the one ingest gave");
      }
      if (!Covers(rule, original)) {
        f.Add(where + "outside the agreement's sources or types (" + EventTypeName(original) +
              " from " + original.envelope().publisher_ods() + ")");
      }
      if (d.agreement_id() != rule.agreement) {
        f.Add(where + "delivered under '" + d.agreement_id() + "'");
      }
      if (!rule.secondary_use) {
        if (!MessageDifferencer::Equals(WithoutHubFields(d.event()), original)) {
          f.Add(where + "direct care event differs from what the publisher sent");
        }
        continue;
      }
      const auto& nhs = original.envelope().patient().nhs_number();
      if (opted_out.count(nhs)) {
        f.Add(where + "patient on the opt-out list delivered for secondary use");
      }
      CheckPseudonymised(env.patient(), original.envelope().patient(), where, &f);
      if (d.event().activity().has_merged_patient()) {
        CheckPseudonymised(d.event().activity().merged_patient(),
                           original.activity().merged_patient(), where + "merged: ", &f);
      }
      if (!d.event().activity().note().empty() || !d.event().referral().note().empty()) {
        f.Add(where + "free-text note left the hub");
      }
      // Nothing identifying anywhere in the bytes, whatever field it might hide in.
      const std::string bytes = d.SerializeAsString();
      const auto& p = original.envelope().patient();
      const std::vector<std::string> identifiers = {p.nhs_number(), p.given_name(), p.family_name(),
                                                    p.address(),    p.local_mrn(),  p.birth_date(),
                                                    p.postcode()};
      for (const auto& secret : identifiers) {
        if (!secret.empty() && secret.size() >= 4 && bytes.find(secret) != std::string::npos) {
          f.Add(where + "identifier '" + secret.substr(0, 3) + "...' found in the delivered bytes");
        }
      }
      auto [pit, inserted] = pseudonyms[rule.agreement].emplace(nhs, env.patient().pseudonym());
      if (!inserted && pit->second != env.patient().pseudonym()) {
        f.Add(where + "pseudonym of one patient changed within agreement " + rule.agreement);
      }
    }
    EXPECT_EQ(f.count(), 0u) << f.Report();
    std::vector<std::string> missing;
    std::set_difference(expected.begin(), expected.end(), delivered.begin(), delivered.end(),
                        std::back_inserter(missing));
    EXPECT_TRUE(missing.empty()) << missing.size() << " allowed events not delivered, e.g. "
                                 << missing.front();
    EXPECT_EQ(delivered.size(), feed->events.size()) << "an event was delivered twice";
    EXPECT_EQ(delivered.size(), expected.size());
  }

  // Two secondary-use agreements cannot link their data on the pseudonym.
  const auto& pa = pseudonyms["DSA-T-SUA"];
  const auto& pb = pseudonyms["DSA-T-SUB"];
  ASSERT_FALSE(pa.empty());
  ASSERT_FALSE(pb.empty());
  size_t shared_patients = 0;
  std::set<std::string> values_a;
  for (const auto& [nhs, p] : pa) {
    values_a.insert(p);
    auto it = pb.find(nhs);
    if (it != pb.end()) {
      ++shared_patients;
      EXPECT_NE(it->second, p) << "same pseudonym under DSA-T-SUA and DSA-T-SUB";
    }
  }
  EXPECT_GT(shared_patients, 100u);
  for (const auto& [nhs, p] : pb) {
    EXPECT_EQ(values_a.count(p), 0u) << "a DSA-T-SUB pseudonym also occurs under DSA-T-SUA";
  }
  // One patient, one pseudonym; different patients, different pseudonyms.
  std::set<std::string> values_b;
  for (const auto& [nhs, p] : pb) {
    values_b.insert(p);
  }
  EXPECT_EQ(values_a.size(), pa.size());
  EXPECT_EQ(values_b.size(), pb.size());

  // The audit accounts for every delivery and every withheld event, with its reason. The hub
  // writes a delivery's record just after sending it, so wait (bounded) for the last one.
  auto delivered_in_audit = [&](const std::vector<nlohmann::json>& items) {
    uint64_t n = 0;
    for (const auto& a : items) {
      n += a.value("kind", "") == "delivery" ? a.value("delivered", 0u) : 0u;
    }
    return n;
  };
  const uint64_t received_total =
      received["trust-direct"] + received["analytics-a-feed"] + received["analytics-b-feed"];
  Result<std::vector<nlohmann::json>> audit = Status::Error("not_read", "");
  WaitFor(
      [&] {
        audit = AuditRecords(h.admin_address());
        return audit.ok() && delivered_in_audit(audit.value()) >= received_total;
      },
      seconds(5));
  ASSERT_TRUE(audit.ok()) << audit.status().ToString();
  for (const auto& rule : Rules()) {
    SCOPED_TRACE(rule.subscription);
    uint64_t delivered = 0;
    std::map<std::string, uint64_t> withheld;
    uint64_t records = 0;
    for (const auto& a : audit.value()) {
      if (a.value("kind", "") != "delivery" || a.value("subscription", "") != rule.subscription) {
        continue;
      }
      ++records;
      delivered += a.value("delivered", 0u);
      EXPECT_EQ(a.value("subscriber", ""), rule.subscription == "trust-direct" ? "test-trust"
                                           : rule.subscription == "analytics-a-feed"
                                               ? "analytics-a"
                                               : "analytics-b");
      if (a.value("delivered", 0u) > 0) {
        EXPECT_EQ(a.value("agreement", ""), rule.agreement);
      }
      EXPECT_LE(a.value("from_seq", 0u), a.value("to_seq", 0u));
      for (const auto& [reason, n] : a["withheld_by_reason"].items()) {
        withheld[reason] += n.get<uint64_t>();
      }
    }
    EXPECT_GT(records, 0u);
    EXPECT_EQ(delivered, received[rule.subscription]);
    if (rule.secondary_use) {
      EXPECT_EQ(withheld["national_data_opt_out"], expected_withheld[rule.subscription]);
      EXPECT_EQ(withheld.size(), 1u);
    } else {
      EXPECT_TRUE(withheld.empty()) << "direct care is not subject to the opt-out";
    }
  }
}

constexpr const char* kOutOfDateAgreements = R"(subscribers:
  - id: ended-pilot
    subscriptions:
      - {id: expired-feed, purpose: direct_care}
  - id: future-service
    subscriptions:
      - {id: future-feed, purpose: direct_care}
agreements:
  - id: DSA-T-OLD
    subscriber: ended-pilot
    purpose: direct_care
    legal_basis: "test: ended"
    valid_from: 2020-01-01
    valid_until: 2021-12-31
    sources: ["*"]
    event_types: ["*"]
    patient_fields: identifiable
  - id: DSA-T-NEXT
    subscriber: future-service
    purpose: direct_care
    legal_basis: "test: not started"
    valid_from: 2099-01-01
    valid_until: 2099-12-31
    sources: ["*"]
    event_types: ["*"]
    patient_fields: identifiable
)";

TEST(SubscribePolicyTest, ExpiredAndNotYetValidAgreementsDeliverNothingAndSayWhy) {
  TempDir policy_dir("sub-validity-files");
  auto agreements = WritePolicyFiles(policy_dir.path(), kOutOfDateAgreements);
  ASSERT_TRUE(agreements.ok()) << agreements.status().ToString();
  auto hub = HubProcess::Start(HubWithAgreements("sub-validity", agreements.value()));
  ASSERT_TRUE(hub.ok()) << hub.status().ToString();
  auto& h = *hub.value();
  WorkloadOptions wo;
  wo.seed = 77;
  wo.id_prefix = "val-";
  wo.events = 300;
  auto seqs = PublishAccepted(h.ingest_endpoint(), MakeWorkload(wo).events);
  ASSERT_TRUE(seqs.ok()) << seqs.status().ToString();

  struct Case {
    std::string subscription;
    std::string code;
    std::string says;
  };
  for (const Case& c :
       {Case{"expired-feed", "agreement_expired", "expired on 2021-12-31"},
        Case{"future-feed", "agreement_not_yet_valid", "not valid until 2099-01-01"}}) {
    SCOPED_TRACE(c.subscription);
    // The command-line tool: nothing written, the reason on stderr, a clean exit.
    auto out = policy_dir.path() / (c.subscription + ".ndjson");
    auto run = RunSubscribeTool(h.subscribe_endpoint(),
                                {"--subscription", c.subscription, "--from", "earliest",
                                 "--until-idle", "1.5", "--out", out.string()},
                                policy_dir.path(), seconds(20));
    ASSERT_TRUE(run.ok()) << run.status().ToString();
    EXPECT_TRUE(run->status.Exited(0)) << run->status.ToString() << "\n" << run->err;
    EXPECT_NE(run->err.find("notice " + c.code), std::string::npos) << run->err;
    EXPECT_NE(run->err.find(c.says), std::string::npos) << run->err;
    EXPECT_NE(run->err.find("\"written\":0"), std::string::npos) << run->err;
    EXPECT_EQ(ReadFileText(out), "");

    // The client library: no events, and notice() tells why.
    client::SubscriberOptions so;
    so.endpoint = h.subscribe_endpoint();
    so.subscription = c.subscription;
    so.start = v1::Subscribe::START_EARLIEST;
    auto sub = client::Subscriber::Open(so);
    ASSERT_TRUE(sub.ok()) << sub.status().ToString();
    // Read until the hub's notice arrives (its explicit word that nothing will be delivered); the
    // bound only ends a run where it never does. The audit check below is the hub-side proof.
    size_t events = 0;
    auto until = std::chrono::steady_clock::now() + seconds(10);
    while (!sub.value()->notice().has_value() && std::chrono::steady_clock::now() < until) {
      auto batch = sub.value()->Next(milliseconds(100));
      ASSERT_TRUE(batch.ok()) << batch.status().ToString();
      if (batch.value()) {
        events += batch.value()->events.size();
      }
    }
    EXPECT_EQ(events, 0u);
    ASSERT_TRUE(sub.value()->notice().has_value()) << "no notice within 10 s";
    EXPECT_EQ(sub.value()->notice()->code(), c.code);
    EXPECT_NE(sub.value()->notice()->message().find(c.says), std::string::npos)
        << sub.value()->notice()->message();
  }
  auto audit = AuditRecords(h.admin_address());
  ASSERT_TRUE(audit.ok()) << audit.status().ToString();
  for (const auto& a : audit.value()) {
    EXPECT_FALSE(a.value("kind", "") == "delivery" && a.value("delivered", 0u) > 0)
        << "a delivery was audited: " << a.dump();
  }
}

}  // namespace
}  // namespace carehub::itest
