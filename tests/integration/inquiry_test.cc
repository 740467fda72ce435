// The operators' and information-governance questions (docs/operations.md, "Questions about events
// and patients"), against a real hub, real subscribers and carehubctl:
//  - trace: an event through each outcome (delivered to A, withheld from B by the opt-out, not yet
//    reached by C, not covered; rejected; conflicting resend), by id and by hub_seq;
//  - disclosures: for every patient, the report equals exactly the deliveries the test computes
//    from what the subscribers themselves received (a replayed feed counts twice), in JSON, CSV and
//    HTML; asking is audited, and the audit record names no NHS number;
//  - browse: pages by publisher and type equal the test's own list, masked, with no NHS number in
//    any answer until an audited reveal.

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "carehub/core/event_types.h"
#include "carehub/core/synthetic.h"
#include "harness/raw_publisher.h"
#include "harness/workload.h"
#include "ops_common.h"
#include "subscribe_support.h"

namespace carehub::itest {
namespace {

using std::chrono::seconds;

constexpr const char* kAgreements = R"(subscribers:
  - id: trust-rxk
    name: "Example Hospitals NHS Trust"
    subscriptions:
      - {id: rxk-direct, purpose: direct_care}
  - id: analytics-b
    name: "ICS analytics B"
    subscriptions:
      - {id: analytics-b-feed, purpose: secondary_use}
  - id: analytics-c
    subscriptions:
      - {id: analytics-c-feed, purpose: secondary_use}
agreements:
  - id: DSA-RXK-DC
    subscriber: trust-rxk
    purpose: direct_care
    legal_basis: "test: direct care"
    valid_from: 2020-01-01
    valid_until: 2099-12-31
    sources: [RXK, M85001]
    event_types: ["activity.*"]
    patient_fields: identifiable
  - id: DSA-B-SU
    subscriber: analytics-b
    purpose: secondary_use
    legal_basis: "test: secondary use B"
    valid_from: 2020-01-01
    valid_until: 2099-12-31
    sources: ["*"]
    event_types: ["*"]
    patient_fields: pseudonymised
  - id: DSA-C-SU
    subscriber: analytics-c
    purpose: secondary_use
    legal_basis: "test: secondary use C"
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

constexpr uint32_t kPopulation = 60;

// The NHS numbers an event concerns, read from the event as published: its patient and an A40
// merge's merged patient.
std::set<std::string> NhsNumbersOf(const v1::Event& e) {
  std::set<std::string> out;
  if (!e.envelope().patient().nhs_number().empty()) {
    out.insert(e.envelope().patient().nhs_number());
  }
  if (e.has_activity() && !e.activity().merged_patient().nhs_number().empty()) {
    out.insert(e.activity().merged_patient().nhs_number());
  }
  return out;
}

class InquiryTest : public ::testing::Test {
 protected:
  // Generates the events, puts the first RXK activity's patient on the opt-out list, starts the hub
  // and publishes them all.
  void StartAndPublish(const std::string& tag, size_t count, uint64_t seed) {
    SyntheticOptions options = FixedSyntheticOptions(seed, tag + "-");
    options.population = kPopulation;
    SyntheticGenerator gen(options);
    for (size_t i = 0; i < count; ++i) {
      events_.push_back(gen.Next());
    }
    for (const auto& e : events_) {
      if (e.envelope().publisher_ods() == "RXK" && e.has_activity() &&
          !e.envelope().patient().nhs_number().empty() && !e.activity().has_merged_patient()) {
        opted_out_ = e.envelope().patient().nhs_number();
        break;
      }
    }
    ASSERT_FALSE(opted_out_.empty());
    auto agreements = WritePolicyFiles(files_.path(), kAgreements, {opted_out_});
    ASSERT_TRUE(agreements.ok()) << agreements.status().ToString();
    auto hub = HubProcess::Start(HubWithAgreements(tag, agreements.value()));
    ASSERT_TRUE(hub.ok()) << hub.status().ToString();
    hub_ = std::move(hub).value();
    auto seqs = PublishAccepted(hub_->ingest_endpoint(), events_);
    ASSERT_TRUE(seqs.ok()) << seqs.status().ToString();
    for (size_t i = 0; i < events_.size(); ++i) {
      by_seq_[seqs.value()[i]] = i;
    }
    last_seq_ = *std::max_element(seqs->begin(), seqs->end());
  }

  // Reads `subscription` from the start until the head, acknowledging.
  std::vector<v1::DeliveredEvent> ReadAll(const std::string& subscription) {
    ReadFeedOptions ro;
    ro.start = v1::Subscribe::START_EARLIEST;
    ro.until_seq = last_seq_;
    auto read = ReadFeed(hub_->subscribe_endpoint(), subscription, ro);
    EXPECT_TRUE(read.ok()) << read.status().ToString();
    return read.ok() ? read->events : std::vector<v1::DeliveredEvent>{};
  }

  nlohmann::json Trace(const std::string& query) {
    auto r = AdminGet(hub_->admin_address(), "/api/v1/trace?" + query);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, 200) << r->body.dump();
    return r.ok() ? r->body : nlohmann::json();
  }

  static nlohmann::json SubscriptionIn(const nlohmann::json& trace, const std::string& id) {
    for (const auto& s : trace["subscriptions"]) {
      if (s["subscription"] == id) {
        return s;
      }
    }
    return nullptr;
  }

  // Every published NHS number, to look for in answers that must not show any.
  std::set<std::string> AllNhsNumbers() const {
    std::set<std::string> all;
    for (const auto& e : events_) {
      for (const auto& n : NhsNumbersOf(e)) {
        all.insert(n);
      }
    }
    return all;
  }

  TempDir files_{"inquiry-files"};
  std::unique_ptr<HubProcess> hub_;
  std::vector<v1::Event> events_;
  std::map<uint64_t, size_t> by_seq_;  // hub_seq -> index in events_
  uint64_t last_seq_ = 0;
  std::string opted_out_;
};

TEST_F(InquiryTest, TraceShowsEachOutcome) {
  StartAndPublish("inq-trace", 400, 9101);
  ASSERT_FALSE(ReadAll("rxk-direct").empty());
  ASSERT_FALSE(ReadAll("analytics-b-feed").empty());
  // analytics-c-feed never reads.

  // The opted-out patient's RXK activity: delivered to the trust (direct care ignores the opt-out),
  // withheld from B by the opt-out, not yet reached by C.
  size_t opt_index = 0;
  for (size_t i = 0; i < events_.size(); ++i) {
    if (events_[i].envelope().publisher_ods() == "RXK" && events_[i].has_activity() &&
        events_[i].envelope().patient().nhs_number() == opted_out_) {
      opt_index = i;
      break;
    }
  }
  const v1::Event& opt_event = events_[opt_index];
  const std::string by_id = "publisher=RXK&event_id=" + opt_event.envelope().event_id();
  nlohmann::json t;
  // The subscribers' acks reach the hub's cursor table just after their reads end.
  ASSERT_TRUE(WaitFor(
      [&] {
        t = Trace(by_id);
        return SubscriptionIn(t, "rxk-direct").value("acknowledged", false);
      },
      seconds(10)))
      << t.dump(2);
  EXPECT_TRUE(t["found"].get<bool>());
  EXPECT_EQ(t["ingest"]["outcome"], "accepted");
  const nlohmann::json a = SubscriptionIn(t, "rxk-direct");
  EXPECT_EQ(a["status"], "delivered") << a.dump();
  ASSERT_EQ(a["deliveries"].size(), 1u) << a.dump();
  EXPECT_EQ(a["deliveries"][0]["agreement"], "DSA-RXK-DC");
  EXPECT_EQ(a["deliveries"][0]["field_level"], "identifiable");
  const nlohmann::json b = SubscriptionIn(t, "analytics-b-feed");
  EXPECT_EQ(b["status"], "withheld") << b.dump();
  EXPECT_EQ(b["rule"], "national_data_opt_out");
  const nlohmann::json c = SubscriptionIn(t, "analytics-c-feed");
  EXPECT_EQ(c["status"], "not_yet_reached") << c.dump();
  // The trace shows the event with its identifiers masked.
  EXPECT_EQ(t.dump().find(opted_out_), std::string::npos) << "the trace shows an NHS number";

  // By hub_seq: the same event.
  const uint64_t opt_seq = t["ingest"]["hub_seq"].get<uint64_t>();
  EXPECT_EQ(by_seq_[opt_seq], opt_index);
  const nlohmann::json t2 = Trace("hub_seq=" + std::to_string(opt_seq));
  EXPECT_EQ(t2["query"]["event_id"], opt_event.envelope().event_id());

  // An RR8 event: not covered by the trust's agreement, delivered pseudonymised to B.
  const auto rr8 = std::find_if(events_.begin(), events_.end(), [&](const v1::Event& e) {
    return e.envelope().publisher_ods() == "RR8" &&
           e.envelope().patient().nhs_number() != opted_out_ &&
           (!e.has_activity() || e.activity().merged_patient().nhs_number() != opted_out_);
  });
  ASSERT_NE(rr8, events_.end());
  const nlohmann::json t3 = Trace("publisher=RR8&event_id=" + rr8->envelope().event_id());
  EXPECT_EQ(SubscriptionIn(t3, "rxk-direct")["status"], "not_covered") << t3.dump(2);
  EXPECT_EQ(SubscriptionIn(t3, "analytics-b-feed")["status"], "delivered") << t3.dump(2);
  EXPECT_EQ(SubscriptionIn(t3, "analytics-b-feed")["deliveries"][0]["field_level"],
            "pseudonymised");

  // Refused: an event with a bad NHS check digit, quarantined; the trace says so.
  SyntheticGenerator gen(FixedSyntheticOptions(9102, "inq-bad-"));
  v1::Event bad = gen.Next();
  const std::string reason = gen.MakeInvalid(&bad, InvalidKind::kBadNhsCheckDigit);
  // And a conflicting resend of the RR8 event: same id, other content.
  v1::Event conflicting = *rr8;
  conflicting.mutable_envelope()->set_source_system("changed-by-test");
  auto pub = RawPublisher::Connect(hub_->ingest_endpoint());
  ASSERT_TRUE(pub.ok()) << pub.status().ToString();
  std::vector<v1::Event> batch = {bad, conflicting, opt_event};
  auto answered = pub.value()->Publish(batch, seconds(30));
  ASSERT_TRUE(answered.ok()) << answered.status().ToString();
  ASSERT_EQ(answered->results(0).status(), v1::EventResult::REJECTED);
  ASSERT_EQ(answered->results(1).status(), v1::EventResult::CONFLICT);
  ASSERT_EQ(answered->results(2).status(), v1::EventResult::DUPLICATE);
  // Resent once more: the trace counts both DUPLICATE answers.
  auto again = pub.value()->Publish(std::vector<v1::Event>{opt_event}, seconds(30));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  ASSERT_EQ(again->results(0).status(), v1::EventResult::DUPLICATE);
  const nlohmann::json t7 = Trace(by_id);
  EXPECT_EQ(t7["ingest"]["duplicate_answers"]["count"].get<uint64_t>(), 2u) << t7.dump(2);
  EXPECT_GT(t7["ingest"]["duplicate_answers"]["last_unix_ms"].get<int64_t>(), 0);
  EXPECT_EQ(t["ingest"]["duplicate_answers"]["count"].get<uint64_t>(), 0u);

  const nlohmann::json t4 = Trace("publisher=" + bad.envelope().publisher_ods() +
                                  "&event_id=" + bad.envelope().event_id());
  EXPECT_FALSE(t4["found"].get<bool>());
  EXPECT_EQ(t4["ingest"]["outcome"], "refused");
  ASSERT_EQ(t4["quarantine"].size(), 1u) << t4.dump(2);
  EXPECT_EQ(t4["quarantine"][0]["reason"], reason);
  const nlohmann::json t5 = Trace("publisher=RR8&event_id=" + rr8->envelope().event_id());
  EXPECT_TRUE(t5["found"].get<bool>());
  ASSERT_EQ(t5["quarantine"].size(), 1u) << t5.dump(2);
  EXPECT_EQ(t5["quarantine"][0]["reason"], "conflict");
  // Nothing of the kind: neither stored nor refused.
  const nlohmann::json t6 = Trace("publisher=RXK&event_id=never-sent");
  EXPECT_FALSE(t6["found"].get<bool>());
  EXPECT_EQ(t6["ingest"]["outcome"], "unknown");
  auto no_event = AdminGet(hub_->admin_address(), "/api/v1/trace?publisher=RXK");
  ASSERT_TRUE(no_event.ok());
  EXPECT_EQ(no_event->status, 400);

  // carehubctl trace prints the same, one line per subscription.
  auto ctl = ops::RunTool("carehubctl",
                          {"--admin", hub_->admin_address(), "trace", "--publisher", "RXK",
                           "--event-id", opt_event.envelope().event_id()},
                          files_.path());
  ASSERT_TRUE(ctl.ok()) << ctl.status().ToString();
  EXPECT_TRUE(ctl->status.Exited(0)) << ctl->err;
  EXPECT_NE(ctl->out.find("national_data_opt_out"), std::string::npos) << ctl->out;
  EXPECT_NE(ctl->out.find("not_yet_reached"), std::string::npos) << ctl->out;
  EXPECT_NE(ctl->out.find("DSA-RXK-DC"), std::string::npos) << ctl->out;
  EXPECT_NE(ctl->out.find("sent again 2 time(s)"), std::string::npos) << ctl->out;
}

TEST_F(InquiryTest, DisclosureReportEqualsWhatSubscribersReceived) {
  StartAndPublish("inq-disc", 1500, 9201);
  // What each subscriber received, computed from the feeds: (subscription, hub_seq) per patient,
  // once per delivery. B reads twice (a replay from the start is a second disclosure).
  std::map<std::string, std::multiset<std::pair<std::string, uint64_t>>> expected;
  auto note = [&](const std::string& subscription, const std::vector<v1::DeliveredEvent>& got) {
    for (const auto& d : got) {
      const uint64_t seq = d.event().envelope().hub_seq();
      ASSERT_TRUE(by_seq_.count(seq)) << seq;
      for (const auto& nhs : NhsNumbersOf(events_[by_seq_[seq]])) {
        expected[nhs].insert({subscription, seq});
      }
    }
  };
  note("rxk-direct", ReadAll("rxk-direct"));
  note("analytics-b-feed", ReadAll("analytics-b-feed"));
  note("analytics-b-feed", ReadAll("analytics-b-feed"));
  ASSERT_FALSE(expected.empty());
  // The opted-out patient reached only the direct-care trust.
  for (const auto& [sub, seq] : expected[opted_out_]) {
    EXPECT_EQ(sub, "rxk-direct") << seq;
  }

  const std::set<std::string> everyone = AllNhsNumbers();
  size_t asked = 0;
  for (const auto& nhs : everyone) {
    const nlohmann::json body = {
        {"nhs_number", nhs}, {"by", "ig-lead@test"}, {"reason", "SAR-2026-0042"}};
    auto r = AdminPostText(hub_->admin_address(), "/api/v1/disclosures", body.dump());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->status, 200) << r->text;
    ++asked;
    const auto report = nlohmann::json::parse(r->text);
    std::multiset<std::pair<std::string, uint64_t>> got;
    for (const auto& row : report["rows"]) {
      got.insert({row["subscription"].get<std::string>(), row["hub_seq"].get<uint64_t>()});
      const bool direct = row["subscription"] == "rxk-direct";
      EXPECT_EQ(row["field_level"], direct ? "identifiable" : "pseudonymised");
      EXPECT_EQ(row["purpose"], direct ? "direct_care" : "secondary_use");
      EXPECT_EQ(row["agreement"], direct ? "DSA-RXK-DC" : "DSA-B-SU");
      EXPECT_EQ(row["event_type"], EventTypeName(events_[by_seq_[row["hub_seq"].get<uint64_t>()]]));
    }
    EXPECT_EQ(got, expected[nhs]) << "patient " << nhs;
  }

  // A patient with the most disclosures, as CSV and as a printable page.
  const auto busiest = std::max_element(expected.begin(), expected.end(), [](auto& x, auto& y) {
    return x.second.size() < y.second.size();
  });
  const nlohmann::json ask = {{"nhs_number", busiest->first},
                              {"by", "ig-lead@test"},
                              {"reason", "SAR-2026-0043"},
                              {"format", "csv"}};
  auto csv = AdminPostText(hub_->admin_address(), "/api/v1/disclosures", ask.dump());
  ASSERT_TRUE(csv.ok());
  ASSERT_EQ(csv->status, 200) << csv->text;
  EXPECT_NE(csv->content_type.find("text/csv"), std::string::npos);
  EXPECT_EQ(static_cast<size_t>(std::count(csv->text.begin(), csv->text.end(), '\n')),
            busiest->second.size() + 1);  // a header line, then a line per disclosure
  nlohmann::json ask_html = ask;
  ask_html["format"] = "html";
  auto html = AdminPostText(hub_->admin_address(), "/api/v1/disclosures", ask_html.dump());
  ASSERT_TRUE(html.ok());
  ASSERT_EQ(html->status, 200) << html->text;
  size_t rows = 0;
  for (size_t at = html->text.find("<tr><td>"); at != std::string::npos;
       at = html->text.find("<tr><td>", at + 1)) {
    ++rows;
  }
  std::set<std::string> organisations;
  for (const auto& [sub, seq] : busiest->second) {
    organisations.insert(sub == "rxk-direct" ? "trust-rxk" : "analytics-b");
  }
  EXPECT_EQ(rows, busiest->second.size() + organisations.size()) << "delivery rows + org rows";
  EXPECT_NE(html->text.find("Example Hospitals NHS Trust"), std::string::npos);

  // A window before any delivery: nothing.
  auto none = AdminPostText(hub_->admin_address(), "/api/v1/disclosures",
                            nlohmann::json{{"nhs_number", busiest->first},
                                           {"by", "ig-lead@test"},
                                           {"reason", "SAR-2026-0046"},
                                           {"until", "2020-01-01"}}
                                .dump());
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(nlohmann::json::parse(none->text)["rows"].size(), 0u) << none->text;

  // Malformed questions: a bad check digit, no reason.
  auto bad = AdminPostText(hub_->admin_address(), "/api/v1/disclosures",
                           R"({"nhs_number":"9434765918","by":"x","reason":"y"})");
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->status, 400) << bad->text;
  auto no_reason =
      AdminPostText(hub_->admin_address(), "/api/v1/disclosures",
                    nlohmann::json{{"nhs_number", busiest->first}, {"by", "x"}}.dump());
  ASSERT_TRUE(no_reason.ok());
  EXPECT_EQ(no_reason->status, 400) << no_reason->text;

  // Every report was audited, with who and why, and no audit record holds an NHS number.
  auto audit = AuditRecords(hub_->admin_address());
  ASSERT_TRUE(audit.ok()) << audit.status().ToString();
  size_t reports = 0;
  for (const auto& rec : audit.value()) {
    if (rec["kind"] == "disclosure_report") {
      ++reports;
      EXPECT_EQ(rec["by"].get<std::string>().empty(), false);
      EXPECT_NE(rec["detail"].get<std::string>().find("SAR-2026-00"), std::string::npos);
    }
    for (const auto& nhs : everyone) {
      EXPECT_EQ(rec.dump().find(nhs), std::string::npos) << "audit record names " << nhs;
    }
  }
  EXPECT_EQ(reports, asked + 3);  // every patient, the CSV, the HTML, the empty window

  // carehubctl disclosures: a table, and the HTML written to a file.
  auto ctl = ops::RunTool(
      "carehubctl",
      {"--admin", hub_->admin_address(), "disclosures", "--nhs-number", busiest->first, "--reason",
       "SAR-2026-0044", "--format", "html", "--out", (files_.path() / "sar.html").string()},
      files_.path());
  ASSERT_TRUE(ctl.ok()) << ctl.status().ToString();
  EXPECT_TRUE(ctl->status.Exited(0)) << ctl->err;
  EXPECT_TRUE(std::filesystem::exists(files_.path() / "sar.html"));
  auto table = ops::RunTool("carehubctl",
                            {"--admin", hub_->admin_address(), "disclosures", "--nhs-number",
                             busiest->first, "--reason", "SAR-2026-0045"},
                            files_.path());
  ASSERT_TRUE(table.ok());
  EXPECT_TRUE(table->status.Exited(0)) << table->err;
  EXPECT_NE(table->out.find(std::to_string(busiest->second.size()) + " disclosure(s)"),
            std::string::npos)
      << table->out;
}

TEST_F(InquiryTest, BrowsePagesAreMaskedAndRevealIsAudited) {
  StartAndPublish("inq-browse", 600, 9301);
  const std::set<std::string> everyone = AllNhsNumbers();
  auto no_nhs = [&](const std::string& text) {
    for (const auto& n : everyone) {
      if (text.find(n) != std::string::npos) {
        return false;
      }
    }
    return true;
  };
  // Every RXK event, newest first, in pages of 7; and every referral.
  for (const auto& [filter, keep] :
       std::vector<std::pair<std::string, std::function<bool(const v1::Event&)>>>{
           {"publisher=RXK",
            [](const v1::Event& e) { return e.envelope().publisher_ods() == "RXK"; }},
           {"type=referral.*", [](const v1::Event& e) { return e.has_referral(); }},
           {"", [](const v1::Event&) { return true; }}}) {
    std::vector<uint64_t> want;
    for (const auto& [seq, i] : by_seq_) {
      if (keep(events_[i])) {
        want.push_back(seq);
      }
    }
    std::sort(want.rbegin(), want.rend());
    std::vector<uint64_t> got;
    std::string page = "/api/v1/events?limit=7&" + filter;
    for (int pages = 0; pages < 1000; ++pages) {
      auto r = AdminGet(hub_->admin_address(), page);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      ASSERT_EQ(r->status, 200) << r->body.dump();
      EXPECT_TRUE(no_nhs(r->body.dump())) << "a browse page shows an NHS number";
      for (const auto& item : r->body["items"]) {
        got.push_back(item["hub_seq"].get<uint64_t>());
      }
      if (r->body["next_before_seq"].is_null()) {
        break;
      }
      page = "/api/v1/events?limit=7&" + filter +
             "&before_seq=" + std::to_string(r->body["next_before_seq"].get<uint64_t>());
    }
    EXPECT_EQ(got, want) << filter;
  }
  // A time window before anything arrived: empty.
  auto old = AdminGet(hub_->admin_address(), "/api/v1/events?until=2020-01-01");
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->body["items"].size(), 0u);

  // One event: masked; revealed only with who and why, and that is audited.
  const uint64_t seq = by_seq_.begin()->first;
  const v1::Event& e = events_[by_seq_.begin()->second];
  auto masked = AdminGet(hub_->admin_address(), "/api/v1/events/" + std::to_string(seq));
  ASSERT_TRUE(masked.ok());
  ASSERT_EQ(masked->status, 200);
  EXPECT_TRUE(no_nhs(masked->body.dump()));
  EXPECT_EQ(masked->body["event"]["envelope"]["event_id"], e.envelope().event_id());
  auto refused = AdminPostText(hub_->admin_address(),
                               "/api/v1/events/" + std::to_string(seq) + "/reveal", "{}");
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->status, 400);
  auto revealed =
      AdminPostText(hub_->admin_address(), "/api/v1/events/" + std::to_string(seq) + "/reveal",
                    R"({"by":"ops-alice","reason":"INC-77: wrong patient matched"})");
  ASSERT_TRUE(revealed.ok());
  ASSERT_EQ(revealed->status, 200) << revealed->text;
  EXPECT_NE(revealed->text.find(e.envelope().patient().nhs_number()), std::string::npos);
  auto audit = AuditRecords(hub_->admin_address());
  ASSERT_TRUE(audit.ok());
  size_t reveals = 0;
  for (const auto& rec : audit.value()) {
    if (rec["kind"] == "identifiers_revealed") {
      ++reveals;
      EXPECT_EQ(rec["by"], "ops-alice");
      EXPECT_EQ(rec["from_seq"].get<uint64_t>(), seq);
      EXPECT_NE(rec["detail"].get<std::string>().find("INC-77"), std::string::npos);
    }
  }
  EXPECT_EQ(reveals, 1u);

  // carehubctl events: the newest RXK events as a table, without identifiers.
  auto ctl = ops::RunTool(
      "carehubctl",
      {"--admin", hub_->admin_address(), "events", "--publisher", "RXK", "--limit", "5"},
      files_.path());
  ASSERT_TRUE(ctl.ok());
  EXPECT_TRUE(ctl->status.Exited(0)) << ctl->err;
  EXPECT_TRUE(no_nhs(ctl->out));
  EXPECT_NE(ctl->out.find("more: --before-seq"), std::string::npos) << ctl->out;
}

// The status page's browse, trace and event views in headless chromium: what an operator sees has
// no NHS number until they reveal one event's identifiers, and that reveal is audited.
TEST_F(InquiryTest, StatusPageBrowseAndTraceInChromiumMaskUntilAnAuditedReveal) {
  StartAndPublish("inq-page", 300, 9401);
  ASSERT_FALSE(ReadAll("rxk-direct").empty());
  ASSERT_FALSE(ReadAll("analytics-b-feed").empty());
  const std::set<std::string> everyone = AllNhsNumbers();
  auto shows_nhs = [&](const std::string& html) {
    for (const auto& n : everyone) {
      if (html.find(n) != std::string::npos) {
        return n;
      }
    }
    return std::string();
  };
  const std::string base = "http://" + hub_->admin_address() + "/";
  auto page = [&](const std::string& tag, const std::string& fragment) {
    auto run = ops::RunChromium(files_.path(), tag, {"--virtual-time-budget=4000", "--dump-dom"},
                                base + fragment);
    EXPECT_TRUE(run.ok()) << run.status().ToString();
    if (!run.ok()) {
      return std::string();
    }
    EXPECT_TRUE(run->status.Exited(0)) << run->err;
    EXPECT_TRUE(ops::ConsoleErrors(run->err).empty())
        << testing::PrintToString(ops::ConsoleErrors(run->err));
    EXPECT_NE(run->out.find("data-routed"), std::string::npos) << "the page never routed";
    EXPECT_EQ(ops::ElementText(run->out, "events-error"), "");
    EXPECT_EQ(ops::ElementText(run->out, "event-error"), "");
    return run->out;
  };

  // Browse RXK: the newest RXK event is listed, its patient masked.
  uint64_t newest_rxk = 0;
  for (const auto& [seq, i] : by_seq_) {
    if (events_[i].envelope().publisher_ods() == "RXK") {
      newest_rxk = std::max(newest_rxk, seq);
    }
  }
  const std::string browse = page("browse", "#browse&publisher=RXK");
  EXPECT_NE(browse.find(events_[by_seq_[newest_rxk]].envelope().event_id()), std::string::npos)
      << browse;
  EXPECT_NE(browse.find(">masked<"), std::string::npos);
  EXPECT_EQ(shows_nhs(browse), "") << "the browse view shows an NHS number";

  // The opted-out patient's RXK activity: its trace, masked.
  uint64_t opt_seq = 0;
  for (const auto& [seq, i] : by_seq_) {
    if (events_[i].envelope().publisher_ods() == "RXK" && events_[i].has_activity() &&
        events_[i].envelope().patient().nhs_number() == opted_out_) {
      opt_seq = seq;
      break;
    }
  }
  ASSERT_GT(opt_seq, 0u);
  const std::string event_page = page("event", "#event=" + std::to_string(opt_seq));
  EXPECT_NE(ops::ElementText(event_page, "event-title").find(std::to_string(opt_seq)),
            std::string::npos);
  for (const char* want : {">delivered<", ">withheld<", "rule national_data_opt_out",
                           ">not_yet_reached<", "DSA-RXK-DC"}) {
    EXPECT_NE(event_page.find(want), std::string::npos) << "event view lacks " << want;
  }
  EXPECT_EQ(shows_nhs(event_page), "") << "the event view shows an NHS number";

  // Trace by publisher and event id leads to the same event.
  const std::string traced = page(
      "trace", "#trace&publisher=RXK&event_id=" + events_[by_seq_[opt_seq]].envelope().event_id());
  EXPECT_NE(ops::ElementText(traced, "event-title").find(std::to_string(opt_seq)),
            std::string::npos)
      << ops::ElementText(traced, "event-title");

  // No reveal so far; then one, as the reveal form submits it.
  auto reveals = [&] {
    auto audit = AuditRecords(hub_->admin_address());
    EXPECT_TRUE(audit.ok()) << audit.status().ToString();
    std::vector<nlohmann::json> out;
    for (const auto& rec : audit.ok() ? audit.value() : std::vector<nlohmann::json>{}) {
      if (rec["kind"] == "identifiers_revealed") {
        out.push_back(rec);
      }
    }
    return out;
  };
  EXPECT_TRUE(reveals().empty());
  const std::string revealed = page("reveal", "#event=" + std::to_string(opt_seq) +
                                                  "&reveal=1&by=ops-bob&reason=INC-9%20misfiled");
  EXPECT_EQ(shows_nhs(revealed), opted_out_);
  const auto after = reveals();
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0]["by"], "ops-bob");
  EXPECT_NE(after[0]["detail"].get<std::string>().find("INC-9 misfiled"), std::string::npos);
}

}  // namespace
}  // namespace carehub::itest
