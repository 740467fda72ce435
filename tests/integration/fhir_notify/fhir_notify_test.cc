// carehub-fhir-notify end to end (issue 18): the real hub, the real carehub-fhir-notify binary and
// a real HTTPS receiver started here (cpp-httplib SSLServer, certificate made by `openssl req`).
// What each test expects comes from the hub itself (an independent "oracle" subscription under the
// same agreement, read with the client library) or from the events the test published, never from
// carehub-fhir-notify's own code; every received body is checked against HL7's FHIR R4 JSON
// schema by validate_fhir.py.
//
// Deadlines derive from the retry settings the tests configure (kRetryYaml): the service turns
// "error" after error_after_failures attempts, each at most timeout_ms plus max_backoff_ms apart.

#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include "carehub/core/event_types.h"
#include "fhir_notify_support.h"
#include "harness/workload.h"
#include "subscribe_support.h"

namespace carehub::itest {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kAgreements = R"(subscribers:
  - id: gp-practice
    subscriptions:
      - {id: fhir-direct, purpose: direct_care}
      - {id: oracle-direct, purpose: direct_care}
  - id: ics-analytics
    subscriptions:
      - {id: fhir-secondary, purpose: secondary_use}
      - {id: oracle-secondary, purpose: secondary_use}
agreements:
  - id: DSA-FN-DC
    subscriber: gp-practice
    purpose: direct_care
    legal_basis: "test: direct care"
    valid_from: 2020-01-01
    valid_until: 2099-12-31
    sources: ["*"]
    event_types: ["*"]
    patient_fields: identifiable
  - id: DSA-FN-SU
    subscriber: ics-analytics
    purpose: secondary_use
    legal_basis: "test: secondary use"
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

// Retry settings of every test subscription, and the deadline they imply for "error".
constexpr int kTimeoutMs = 2000;
constexpr int kMaxBackoffMs = 400;
constexpr int kErrorAfter = 3;
const std::string kRetryYaml =
    "    retry: {initial_backoff_ms: 50, max_backoff_ms: " + std::to_string(kMaxBackoffMs) +
    ", error_after_failures: " + std::to_string(kErrorAfter) + "}\n";
milliseconds ErrorDeadline() {
  return Scaled(milliseconds(kErrorAfter * (kTimeoutMs + kMaxBackoffMs)) + seconds(10));
}

std::vector<v1::Event> Events(uint64_t seed, const std::string& prefix, size_t n) {
  WorkloadOptions wo;
  wo.seed = seed;
  wo.id_prefix = prefix;
  wo.events = n;
  return MakeWorkload(wo).events;
}

struct SubOptions {
  std::string id = "fhir-direct";
  std::string purpose = "direct_care";
  std::string payload = "full-resource";
  int heartbeat_ms = 60'000;
  int max_events = 50;
  bool mtls = false;
};

class FhirNotifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<TempDir>("fhir-notify");
    auto policy = WritePolicyFiles(dir_->path(), kAgreements);
    ASSERT_TRUE(policy.ok()) << policy.status().ToString();
    auto hub = HubProcess::Start(HubWithAgreements("fhir-notify-hub", policy.value()));
    ASSERT_TRUE(hub.ok()) << hub.status().ToString();
    hub_ = std::move(hub).value();
    std::ofstream(dir_->path() / "token") << "test-token-7f3a\n";
  }

  // Publishes n events; remembers them and returns the highest hub_seq.
  uint64_t Publish(uint64_t seed, const std::string& prefix, size_t n) {
    auto events = Events(seed, prefix, n);
    auto seqs = PublishAccepted(hub_->ingest_endpoint(), events);
    EXPECT_TRUE(seqs.ok()) << seqs.status().ToString();
    published_.insert(published_.end(), events.begin(), events.end());
    return seqs.ok() && !seqs->empty() ? seqs->back() : 0;
  }

  // What the hub delivers under the same agreement, read through another subscription.
  std::vector<v1::DeliveredEvent> Oracle(const std::string& subscription, uint64_t until_seq) {
    ReadFeedOptions o;
    o.until_seq = until_seq;
    o.timeout = Scaled(seconds(60));
    auto read = ReadFeed(hub_->subscribe_endpoint(), subscription, o);
    EXPECT_TRUE(read.ok()) << read.status().ToString();
    return read.ok() ? read->events : std::vector<v1::DeliveredEvent>{};
  }

  void StartReceiver(bool mtls = false) {
    ReceiverOptions ro;
    if (mtls) {
      auto client = MakeTestCert(dir_->path(), "client");
      ASSERT_TRUE(client.ok()) << client.status().ToString();
      client_cert_ = client.value();
      ro.client_ca = client_cert_.cert;
    } else {
      ro.bearer_token = "test-token-7f3a";
    }
    auto r = FhirReceiver::Start(dir_->path(), ro);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    receiver_ = std::move(r).value();
  }

  std::string Config(const SubOptions& s) const {
    std::string auth = s.mtls
                           ? "      client_cert_file: " + client_cert_.cert.string() +
                                 "\n      client_key_file: " + client_cert_.key.string() + "\n"
                           : "      bearer_token_file: " + (dir_->path() / "token").string() + "\n";
    return "hub:\n  endpoint: " + hub_->subscribe_endpoint() +
           "\nstate_dir: " + (dir_->path() / "state").string() +
           "\npublic_base_url: https://notify.test/fhir\nadmin: {listen: \"127.0.0.1:0\"}\n"
           "subscriptions:\n  - id: " +
           s.id + "\n    purpose: " + s.purpose + "\n    payload: " + s.payload +
           "\n    routing_facts: true\n    heartbeat_period_ms: " + std::to_string(s.heartbeat_ms) +
           "\n    max_events_per_notification: " + std::to_string(s.max_events) +
           "\n    endpoint:\n      url: " + receiver_->url() +
           "\n      ca_file: " + receiver_->cert().cert.string() + "\n" + auth +
           "      timeout_ms: " + std::to_string(kTimeoutMs) + "\n" + kRetryYaml;
  }

  void StartNotify(const SubOptions& s) {
    auto n = NotifyProcess::Start(dir_->path(), Config(s), dir_->path() / "state");
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    notify_ = std::move(n).value();
  }

  // Parses what arrived since the last call (bodies are parsed once each: the waits poll often).
  const std::vector<ReceivedNotification>& Received() {
    const auto bodies = receiver_->Bodies();
    if (bodies.size() > received_.size()) {
      std::vector<std::string> fresh(bodies.begin() + static_cast<long>(received_.size()),
                                     bodies.end());
      auto parsed = ParseNotifications(fresh, received_.size());
      if (!parsed.ok()) {
        ADD_FAILURE() << parsed.status().ToString();
        received_.resize(bodies.size());  // do not report the same body again
      } else {
        for (auto& n : parsed.value()) {
          received_.push_back(std::move(n));
        }
      }
    }
    return received_;
  }

  // Parsed notifications once `pred` holds over them (or the deadline passed).
  std::vector<ReceivedNotification> WaitNotifications(
      const std::function<bool(const std::vector<ReceivedNotification>&)>& pred,
      milliseconds timeout) {
    WaitFor([&] { return pred(Received()); }, timeout);
    return Received();
  }

  // Waits until every number 1..count has arrived.
  std::vector<ReceivedNotification> WaitNumbers(uint64_t count, milliseconds timeout) {
    return WaitNotifications(
        [count](const std::vector<ReceivedNotification>& ns) {
          std::set<uint64_t> numbers;
          for (const auto& e : AllEvents(ns)) {
            numbers.insert(e.number);
          }
          return numbers.size() >= count && *numbers.rbegin() >= count;
        },
        timeout);
  }

  void CheckSchema() {
    Status s = ValidateAgainstFhirSchema(receiver_->Bodies(), dir_->path() / "bodies");
    EXPECT_TRUE(s.ok()) << s.ToString();
  }

  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<HubProcess> hub_;
  std::unique_ptr<FhirReceiver> receiver_;
  std::unique_ptr<NotifyProcess> notify_;
  TestCert client_cert_;
  std::vector<v1::Event> published_;
  std::vector<ReceivedNotification> received_;
};

const char* FocusType(const v1::Event& e) {
  return e.has_activity() ? "Encounter" : "ServiceRequest";
}

// Each number 1..oracle.size() names the oracle's event at that position, whatever else arrived.
void ExpectNumbersNameOracleEvents(const std::vector<ReceivedEvent>& events,
                                   const std::vector<v1::DeliveredEvent>& oracle) {
  for (const auto& e : events) {
    ASSERT_GE(e.number, 1u);
    ASSERT_LE(e.number, oracle.size()) << "a number beyond the events the hub delivers";
    const v1::Event& want = oracle[e.number - 1].event();
    EXPECT_EQ(e.event_id, want.envelope().event_id()) << "event number " << e.number;
    EXPECT_NE(e.focus.find(std::string("/") + FocusType(want) + "/"), std::string::npos)
        << "event number " << e.number << " focus " << e.focus;
    EXPECT_EQ(e.event_type, EventTypeName(want)) << "event number " << e.number;
  }
}

TEST_F(FhirNotifyTest, EveryEventArrivesOnceAndInOrderAsValidNotifications) {
  StartReceiver();
  const uint64_t last = Publish(11, "once-", 400);
  const auto oracle = Oracle("oracle-direct", last);
  ASSERT_EQ(oracle.size(), 400u);
  SubOptions s;
  s.heartbeat_ms = 700;
  StartNotify(s);
  auto ns = WaitNumbers(oracle.size(), Scaled(seconds(60)));
  // A heartbeat follows when nothing more happens for heartbeat_period.
  ns = WaitNotifications(
      [](const std::vector<ReceivedNotification>& n) {
        return !n.empty() && n.back().type == "heartbeat";
      },
      Scaled(milliseconds(3 * 700) + seconds(5)));
  ASSERT_FALSE(ns.empty());
  EXPECT_EQ(ns.front().type, "handshake");
  EXPECT_EQ(ns.front().events_since_start, 0u);
  EXPECT_EQ(ns.back().type, "heartbeat") << "no heartbeat within 3 heartbeat periods";
  EXPECT_EQ(ns.back().events_since_start, oracle.size());
  const auto events = AllEvents(ns);
  ASSERT_EQ(events.size(), oracle.size()) << "every event once";
  for (size_t i = 0; i < events.size(); ++i) {
    ASSERT_EQ(events[i].number, i + 1) << "numbers contiguous and in order";
  }
  ExpectNumbersNameOracleEvents(events, oracle);
  size_t event_bundles = 0;
  for (const auto& n : ns) {
    event_bundles += n.type == "event-notification";
    // "requested" until the handshake is answered (Backport IG), "active" from then on.
    EXPECT_EQ(n.status, n.type == "handshake" ? "requested" : "active");
  }
  EXPECT_LE(event_bundles * 2, events.size()) << "batching: several events per notification";
  // Direct care: the NHS number routing fact is the event's.
  const json& first = ns[1].bundle["entry"][0]["resource"]["parameter"];
  bool saw_nhs = false;
  for (const auto& p : first) {
    if (p.value("name", "") != "notification-event") {
      continue;
    }
    for (const auto& ext : p["extension"]) {
      if (ext.value("url", "").ends_with("RoutingNhsNumber")) {
        saw_nhs = true;
        EXPECT_EQ(ext["valueIdentifier"]["value"],
                  oracle[0].event().envelope().patient().nhs_number());
      }
    }
    break;
  }
  EXPECT_TRUE(saw_nhs);
  EXPECT_EQ(receiver_->unauthorised(), 0u);
  // The operator's view, like the adapters': /healthz and the project's metrics registry.
  auto health = notify_->Get("/healthz");
  ASSERT_TRUE(health.ok()) << health.status().ToString();
  EXPECT_EQ(health->first, 200);
  httplib::Client admin("http://" + notify_->admin());
  auto metrics = admin.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(
      metrics->body.find("carehub_fhir_notify_events_total{subscription=\"fhir-direct\"} 400"),
      std::string::npos)
      << metrics->body;
  EXPECT_NE(
      metrics->body.find("carehub_fhir_notify_event_number{subscription=\"fhir-direct\"} 400"),
      std::string::npos);
  EXPECT_NE(metrics->body.find("carehub_fhir_notify_in_error{subscription=\"fhir-direct\"} 0"),
            std::string::npos);
  CheckSchema();
  auto stopped = notify_->Stop();
  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  EXPECT_TRUE(stopped->Exited(0)) << stopped->ToString();
}

TEST_F(FhirNotifyTest, ReceiverDownLosesNothingKeepsOrderAndGoesErrorThenActive) {
  StartReceiver();
  uint64_t last = Publish(21, "down-a-", 150);
  StartNotify({});
  WaitNumbers(150, Scaled(seconds(60)));
  ASSERT_EQ(notify_->SubscriptionStatus("fhir-direct"), "active");
  receiver_->Down();
  last = Publish(22, "down-b-", 150);
  const auto oracle = Oracle("oracle-direct", last);
  ASSERT_EQ(oracle.size(), 300u);
  EXPECT_TRUE(WaitFor([&] { return notify_->SubscriptionStatus("fhir-direct") == "error"; },
                      ErrorDeadline()))
      << "status did not become error";
  auto st = notify_->Get("/fhir/Subscription/fhir-direct/$status");
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  ASSERT_EQ(st->first, 200);
  std::string fhir_status;
  for (const auto& p : st->second["entry"][0]["resource"]["parameter"]) {
    if (p["name"] == "status") {
      fhir_status = p["valueCode"];
    }
  }
  EXPECT_EQ(fhir_status, "error");
  // Still numbering while in error: events-since-subscription-start counts all 300.
  EXPECT_TRUE(WaitFor(
      [&] {
        auto r = notify_->Get("/api/v1/status");
        return r.ok() && r->second["subscriptions"][0]["events_since_subscription_start"] == 300;
      },
      Scaled(seconds(20))));
  ASSERT_TRUE(receiver_->Resume().ok());
  auto ns = WaitNumbers(300, Scaled(seconds(60)));
  EXPECT_TRUE(WaitFor([&] { return notify_->SubscriptionStatus("fhir-direct") == "active"; },
                      Scaled(seconds(20))));
  const auto events = AllEvents(ns);
  ASSERT_EQ(events.size(), oracle.size()) << "each event once, none lost";
  for (size_t i = 0; i < events.size(); ++i) {
    ASSERT_EQ(events[i].number, i + 1) << "order kept across the outage";
  }
  ExpectNumbersNameOracleEvents(events, oracle);
  // The first notification after the outage says "error" (it was sent while in error); a later
  // one "active" again.
  size_t first_error = ns.size();
  for (size_t i = 0; i < ns.size(); ++i) {
    if (ns[i].status == "error") {
      first_error = std::min(first_error, i);
    }
  }
  ASSERT_LT(first_error, ns.size()) << "no notification reported status error";
  const bool active_after = std::any_of(ns.begin() + static_cast<long>(first_error), ns.end(),
                                        [](const auto& n) { return n.status == "active"; });
  if (!active_after) {
    // All events came in the first bundle after the outage: the next heartbeat says active.
    EXPECT_EQ(notify_->SubscriptionStatus("fhir-direct"), "active");
  }
  CheckSchema();
}

TEST_F(FhirNotifyTest, KillDashNineMidStreamContinuesNumbersWithoutGapOrRenumbering) {
  StartReceiver();
  uint64_t last = Publish(31, "kill-a-", 800);
  SubOptions s;
  s.max_events = 10;  // many small notifications, so the kill lands mid-stream
  StartNotify(s);
  WaitNotifications([](const auto& ns) { return AllEvents(ns).size() >= 100; },
                    Scaled(seconds(60)));
  notify_->Kill();
  const size_t before_restart = AllEvents(Received()).size();
  ASSERT_TRUE(notify_->Restart().ok()) << notify_->ReadLog();
  last = Publish(32, "kill-b-", 100);
  const auto oracle = Oracle("oracle-direct", last);
  ASSERT_EQ(oracle.size(), 900u);
  auto ns = WaitNumbers(900, Scaled(seconds(90)));
  const auto events = AllEvents(ns);
  ExpectNumbersNameOracleEvents(events, oracle);
  std::map<uint64_t, std::string> first_id;
  uint64_t highest = 0;
  size_t repeats = 0;
  for (const auto& e : events) {
    auto [it, fresh] = first_id.emplace(e.number, e.event_id);
    if (!fresh) {
      ++repeats;
      EXPECT_EQ(it->second, e.event_id) << "number " << e.number << " renumbered";
    } else {
      EXPECT_EQ(e.number, highest + 1) << "a gap before " << e.number;
      highest = e.number;
    }
  }
  EXPECT_EQ(first_id.size(), 900u);
  EXPECT_EQ(highest, 900u);
  // At-least-once: what was in flight at the kill may come again, under the same numbers.
  RecordProperty("received_before_kill", static_cast<int>(before_restart));
  RecordProperty("repeated_after_restart", static_cast<int>(repeats));
  EXPECT_EQ(ns.back().events_since_start, 900u);
  CheckSchema();
}

TEST_F(FhirNotifyTest, EventsReplayOfARangeEqualsWhatWasDeliveredWithAFreshAudit) {
  StartReceiver();
  const uint64_t last = Publish(41, "replay-", 200);
  StartNotify({});
  auto ns = WaitNumbers(200, Scaled(seconds(60)));
  const auto delivered = AllEvents(ns);
  ASSERT_EQ(delivered.size(), 200u);
  auto audit_before = AuditRecords(hub_->admin_address());
  ASSERT_TRUE(audit_before.ok()) << audit_before.status().ToString();
  auto r = notify_->Get(
      "/fhir/Subscription/fhir-direct/$events?eventsSinceNumber=20&eventsUntilNumber=120"
      "&content=full-resource");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->first, 200) << r->second.dump();
  auto replay = ParseNotifications({r->second.dump()});
  ASSERT_TRUE(replay.ok()) << replay.status().ToString();
  ASSERT_EQ(replay->size(), 1u);
  EXPECT_EQ(replay->front().type, "query-event");
  const auto& got = replay->front().events;
  ASSERT_EQ(got.size(), 101u);
  for (size_t i = 0; i < got.size(); ++i) {
    const ReceivedEvent& want = delivered[19 + i];
    ASSERT_EQ(got[i].number, want.number);
    EXPECT_EQ(got[i].focus, want.focus);
    EXPECT_EQ(got[i].focus_resource, want.focus_resource) << "event number " << want.number;
  }
  // The same resources, every one, not only the focus.
  std::map<std::string, json> delivered_resources;
  for (const auto& n : ns) {
    for (const auto& e : n.bundle["entry"]) {
      if (e.contains("resource") && e["resource"]["resourceType"] != "Parameters") {
        delivered_resources[e["fullUrl"].get<std::string>() + "@" +
                            e["resource"]["meta"]["versionId"].get<std::string>()] = e["resource"];
      }
    }
  }
  size_t compared = 0;
  for (const auto& e : r->second["entry"]) {
    if (e.contains("resource") && e["resource"]["resourceType"] != "Parameters") {
      const std::string key = e["fullUrl"].get<std::string>() + "@" +
                              e["resource"]["meta"]["versionId"].get<std::string>();
      ASSERT_TRUE(delivered_resources.count(key)) << key;
      EXPECT_EQ(delivered_resources[key], e["resource"]) << key;
      ++compared;
    }
  }
  EXPECT_GE(compared, 202u);  // a focus and a Patient at least per event
  // The replay was a delivery for the hub: audited afresh.
  auto audit_after = AuditRecords(hub_->admin_address());
  ASSERT_TRUE(audit_after.ok());
  bool fresh = false;
  for (size_t i = audit_before->size(); i < audit_after->size(); ++i) {
    const json& a = (*audit_after)[i];
    fresh = fresh ||
            (a.value("kind", "") == "delivery" && a.value("subscription", "") == "fhir-direct");
  }
  EXPECT_TRUE(fresh) << "no new delivery audit record for the replay";
  // Bad requests are answered, not crashed on.
  auto bad = notify_->Get(
      "/fhir/Subscription/fhir-direct/$events?eventsSinceNumber=150&eventsUntilNumber=999");
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->first, 400);
  EXPECT_EQ(bad->second["resourceType"], "OperationOutcome");
  bad = notify_->Get("/fhir/Subscription/fhir-direct/$events?eventsSinceNumber=x");
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->first, 400);
  bad = notify_->Get("/fhir/Subscription/nobody/$status");
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->first, 404);
  // Delivery goes on after a replay (the live session was closed for it and opened again).
  const uint64_t more = Publish(42, "replay-b-", 20);
  ASSERT_GT(more, last);
  WaitNumbers(220, Scaled(seconds(60)));
  EXPECT_EQ(AllEvents(Received()).size(), 220u);
  Status s = ValidateAgainstFhirSchema({r->second.dump()}, dir_->path() / "replay");
  EXPECT_TRUE(s.ok()) << s.ToString();
  CheckSchema();
}

TEST_F(FhirNotifyTest, SecondaryUseOverMutualTlsCarriesNoIdentifier) {
  StartReceiver(/*mtls=*/true);
  const uint64_t last = Publish(51, "su-", 300);
  const auto oracle = Oracle("oracle-secondary", last);
  ASSERT_EQ(oracle.size(), 300u);
  SubOptions s;
  s.id = "fhir-secondary";
  s.purpose = "secondary_use";
  s.mtls = true;
  StartNotify(s);
  auto ns = WaitNumbers(300, Scaled(seconds(60)));
  ASSERT_EQ(AllEvents(ns).size(), 300u);
  // $events replays under the same redaction: its answer is searched with the notifications.
  auto replay = notify_->Get(
      "/fhir/Subscription/fhir-secondary/$events?eventsSinceNumber=1&eventsUntilNumber=300"
      "&content=full-resource");
  ASSERT_TRUE(replay.ok()) << replay.status().ToString();
  ASSERT_EQ(replay->first, 200) << replay->second.dump();
  auto replayed = ParseNotifications({replay->second.dump()});
  ASSERT_TRUE(replayed.ok()) << replayed.status().ToString();
  ASSERT_EQ(replayed->front().events.size(), 300u);
  std::vector<std::string> bodies = receiver_->Bodies();
  bodies.push_back(replay->second.dump());
  std::string all;
  for (const auto& b : bodies) {
    all += b;
    all += "\n";
  }
  size_t checked = 0;
  for (const v1::Event& e : published_) {
    const v1::Patient& p = e.envelope().patient();
    ASSERT_FALSE(p.nhs_number().empty());
    EXPECT_EQ(all.find(p.nhs_number()), std::string::npos) << "NHS number disclosed";
    for (const std::string& name : {p.given_name(), p.family_name()}) {
      if (!name.empty()) {
        EXPECT_EQ(all.find("\"" + name + "\""), std::string::npos) << "name disclosed: " << name;
        ++checked;
      }
    }
    if (!p.given_name().empty() && !p.family_name().empty()) {
      EXPECT_EQ(all.find(p.given_name() + " " + p.family_name()), std::string::npos);
    }
    if (!p.postcode().empty()) {
      EXPECT_EQ(all.find(p.postcode()), std::string::npos) << "full postcode disclosed";
    }
    if (!p.address().empty()) {
      EXPECT_EQ(all.find(p.address()), std::string::npos) << "address disclosed";
    }
    // A full date of birth; a newborn's could equal an event date, which is not a disclosure.
    if (p.birth_date().size() == 10 && p.birth_date() < "2025-01-01") {
      EXPECT_EQ(all.find(p.birth_date()), std::string::npos) << "full date of birth disclosed";
    }
    if (!p.local_mrn().empty()) {
      EXPECT_EQ(all.find("\"" + p.local_mrn() + "\""), std::string::npos) << "local number";
    }
  }
  EXPECT_GT(checked, 0u);
  EXPECT_EQ(all.find("nhs-number"), std::string::npos) << "an NHS number identifier or fact";
  EXPECT_EQ(all.find("RoutingNhsNumber"), std::string::npos);
  // Pseudonymised references are there: the hub's pseudonym, per agreement.
  EXPECT_NE(all.find(oracle[0].event().envelope().patient().pseudonym()), std::string::npos);
  std::vector<json> searched;
  for (const auto& n : ns) {
    searched.push_back(n.bundle);
  }
  searched.push_back(replay->second);
  for (const auto& b : searched) {
    for (const auto& e : b["entry"]) {
      if (e.contains("resource") && e["resource"]["resourceType"] == "Patient" &&
          e["resource"].contains("birthDate")) {
        EXPECT_LE(e["resource"]["birthDate"].get<std::string>().size(), 7u);
      }
    }
  }
  CheckSchema();
  Status valid = ValidateAgainstFhirSchema({replay->second.dump()}, dir_->path() / "replay");
  EXPECT_TRUE(valid.ok()) << valid.ToString();
}

TEST_F(FhirNotifyTest, BadConfigExitsNonZeroWithOneLine) {
  StartReceiver();
  const std::string good = Config({});
  const std::vector<std::pair<std::string, std::string>> cases = {
      {good + "bogus_key: 1\n", "unknown key 'bogus_key'"},
      {"state_dir: " + (dir_->path() / "s").string() +
           "\nsubscriptions:\n  - id: x\n    purpose: direct_care\n    endpoint: {url: "
           "\"http://192.0.2.1/n\"}\n",
       "plain http:// is allowed only to a loopback"},
      {"state_dir: " + (dir_->path() / "s").string() +
           "\nsubscriptions:\n  - id: x\n    purpose: care\n    endpoint: {url: "
           "\"https://127.0.0.1/n\"}\n",
       "purpose"},
      {"state_dir: " + (dir_->path() / "s").string() +
           "\nsubscriptions:\n  - id: x\n    purpose: direct_care\n    payload: everything\n"
           "    endpoint: {url: \"https://127.0.0.1/n\"}\n",
       "payload"},
      {"[not: yaml", "not YAML"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto path = dir_->path() / ("bad" + std::to_string(i) + ".yaml");
    std::ofstream(path) << cases[i].first;
    auto r = RunCommand({BinaryPath("carehub-fhir-notify").string(), "--config", path.string()},
                        dir_->path(), Scaled(seconds(20)));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->status.Exited(2)) << i << ": " << r->status.ToString() << " " << r->err;
    EXPECT_NE(r->err.find(cases[i].second), std::string::npos) << i << ": " << r->err;
    EXPECT_EQ(std::count(r->err.begin(), r->err.end(), '\n'), 1) << i << ": " << r->err;
  }
}

}  // namespace
}  // namespace carehub::itest
