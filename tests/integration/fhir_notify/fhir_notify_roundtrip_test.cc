// The round trip of issue 18: FHIR in through the real FHIR adapter (`carehub-adapter fhir`), to
// the real hub, out through carehub-fhir-notify to a real HTTPS receiver; the resources received
// are mapped back with the adapter's own intake mapping (MapRequest, then ScreenEvent as the
// listener does) and must give the event the hub stored, field by field: every field the event
// model carries survives, apart from what the adapter derives per request (event id, lifecycle).
// The expected events are the hub's (read through an oracle subscription), not this service's.

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <fstream>

#include "adapters_support.h"
#include "carehub/adapters/data_quality.h"
#include "fhir_mapping.h"
#include "fhir_notify_support.h"
#include "subscribe_support.h"

namespace carehub::itest {
namespace {

using google::protobuf::util::MessageDifferencer;
using nlohmann::json;
using std::chrono::seconds;

constexpr const char* kAgreements = R"(subscribers:
  - id: gp-practice
    subscriptions:
      - {id: fhir-direct, purpose: direct_care}
      - {id: oracle-direct, purpose: direct_care}
agreements:
  - id: DSA-RT-DC
    subscriber: gp-practice
    purpose: direct_care
    legal_basis: "test: direct care"
    valid_from: 2020-01-01
    valid_until: 2099-12-31
    sources: ["*"]
    event_types: ["*"]
    patient_fields: identifiable
)";

constexpr char kNhs[] = "https://fhir.nhs.uk/Id/nhs-number";
constexpr char kOds[] = "https://fhir.nhs.uk/Id/ods-organization-code";
constexpr char kUkCore[] = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-";

json Coded(const std::string& system, const std::string& code, const std::string& display = "") {
  json c{{"system", system}, {"code", code}};
  if (!display.empty()) {
    c["display"] = display;
  }
  return json{{"coding", json::array({c})}};
}

json PatientResource(const std::string& id, const std::string& nhs, const std::string& status) {
  return {
      {"resourceType", "Patient"},
      {"id", id},
      {"identifier",
       {{{"system", kNhs},
         {"value", nhs},
         {"extension",
          {{{"url", std::string(kUkCore) + "NHSNumberVerificationStatus"},
            {"valueCodeableConcept",
             Coded("https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland",
                   status)}}}}},
        {{"system", "https://fhir.example-trust.nhs.uk/Id/mrn"},
         {"value", "M85-4471"},
         {"assigner", {{"identifier", {{"system", kOds}, {"value", "M85001"}}}}}}}},
      {"name", {{{"family", "Okafor"}, {"given", {"Adaeze", "Grace"}}}}},
      {"gender", "female"},
      {"birthDate", "1961-07-14"},
      {"address", {{{"line", {"1 Test Street"}}, {"postalCode", "LS6 2QB"}}}},
      {"generalPractitioner", {{{"identifier", {{"system", kOds}, {"value", "M85001"}}}}}}};
}

// A GP practice's transaction: an admission it reports, its discharge, a booked referral (with
// its Task) and a new one without a Task.
json InputBundle() {
  json admission{
      {"resourceType", "Encounter"},
      {"id", "adm-1"},
      {"meta", {{"versionId", "3"}, {"lastUpdated", "2025-11-03T09:30:00Z"}}},
      {"identifier", {{{"system", "https://fhir.example.nhs.uk/Id/visit"}, {"value", "V-9001"}}}},
      {"status", "in-progress"},
      {"class", {{"system", "http://terminology.hl7.org/CodeSystem/v3-ActCode"}, {"code", "IMP"}}},
      {"priority", Coded("http://terminology.hl7.org/CodeSystem/v3-ActPriority", "EM")},
      {"serviceType", Coded("https://fhir.nhs.uk/CodeSystem/treatment-function", "300")},
      {"subject", {{"reference", "Patient/p1"}}},
      {"basedOn", {{{"identifier", {{"value", "REF-77"}}}}}},
      {"period", {{"start", "2025-11-03T08:15:00Z"}}},
      {"diagnosis",
       {{{"condition", {{"reference", "#c1"}}}}, {{"condition", {{"reference", "#c2"}}}}}},
      {"contained",
       {{{"resourceType", "Condition"},
         {"id", "c1"},
         {"code", Coded("http://snomed.info/sct", "22298006", "Myocardial infarction")},
         {"subject", {{"reference", "Patient/p1"}}}},
        {{"resourceType", "Condition"},
         {"id", "c2"},
         {"code", Coded("http://hl7.org/fhir/sid/icd-10", "I21.9")},
         {"subject", {{"reference", "Patient/p1"}}}}}},
      {"hospitalization",
       {{"admitSource",
         Coded("https://fhir.hl7.org.uk/CodeSystem/UKCore-SourceOfAdmissionEngland", "19")},
        {"extension",
         {{{"url", std::string(kUkCore) + "AdmissionMethod"},
           {"valueCodeableConcept",
            Coded("https://fhir.hl7.org.uk/CodeSystem/UKCore-AdmissionMethodEngland", "21")}}}}}},
      {"location", {{{"location", {{"display", "Ward 12"}}}}}},
      {"serviceProvider", {{"identifier", {{"system", kOds}, {"value", "M85001"}}}}}};
  json discharge = admission;
  discharge["id"] = "dis-1";
  discharge["meta"] = {{"versionId", "1"}, {"lastUpdated", "2025-11-09T16:00:00Z"}};
  discharge["identifier"][0]["value"] = "V-9002";
  discharge["status"] = "finished";
  discharge["period"] = {{"start", "2025-11-03T08:15:00Z"}, {"end", "2025-11-09T15:45:00Z"}};
  discharge["hospitalization"]["dischargeDisposition"] =
      Coded("https://fhir.hl7.org.uk/CodeSystem/UKCore-DischargeDestinationEngland", "19");
  discharge["hospitalization"]["extension"].push_back(
      {{"url", std::string(kUkCore) + "DischargeMethod"},
       {"valueCodeableConcept",
        Coded("https://fhir.hl7.org.uk/CodeSystem/UKCore-DischargeMethodEngland", "1")}});
  json booked{
      {"resourceType", "ServiceRequest"},
      {"id", "sr-1"},
      {"meta", {{"versionId", "2"}}},
      {"identifier", {{{"system", "https://fhir.nhs.uk/Id/UBRN"}, {"value", "000011112222"}}}},
      {"status", "active"},
      {"intent", "order"},
      {"priority", "asap"},
      {"subject", {{"reference", "Patient/p1"}}},
      {"requester", {{"identifier", {{"system", kOds}, {"value", "M85001"}}}}},
      {"performer", {{{"identifier", {{"system", kOds}, {"value", "RR8"}}}}}},
      {"performerType", Coded("https://fhir.nhs.uk/CodeSystem/specialty", "110")},
      {"reasonCode", {Coded("http://snomed.info/sct", "363346000", "Malignant disease")}},
      {"extension",
       {{{"url", std::string(kUkCore) + "SourceOfServiceRequest"},
         {"valueCodeableConcept",
          Coded("https://fhir.hl7.org.uk/CodeSystem/UKCore-SourceOfReferralEngland", "03")}}}},
      {"authoredOn", "2025-11-10T11:00:00Z"}};
  json task{{"resourceType", "Task"},
            {"id", "t-1"},
            {"meta", {{"versionId", "4"}}},
            {"status", "accepted"},
            {"intent", "order"},
            {"businessStatus", Coded("https://example.org/status", "booked")},
            {"focus", {{"reference", "ServiceRequest/sr-1"}}},
            {"for", {{"reference", "Patient/p1"}}},
            {"lastModified", "2025-11-12T14:20:00Z"},
            {"executionPeriod", {{"start", "2025-11-20T09:40:00Z"}}}};
  json created{
      {"resourceType", "ServiceRequest"},
      {"id", "sr-2"},
      {"meta", {{"versionId", "1"}}},
      {"identifier", {{{"system", "https://fhir.example.nhs.uk/Id/ref"}, {"value", "REF-88"}}}},
      {"status", "draft"},
      {"intent", "order"},
      {"priority", "routine"},
      {"subject", {{"reference", "Patient/p1"}}},
      {"requester", {{"identifier", {{"system", kOds}, {"value", "M85001"}}}}},
      {"performer", {{{"identifier", {{"system", kOds}, {"value", "RXK"}}}}}},
      {"authoredOn", "2025-11-11T10:05:00Z"}};
  json entries = json::array();
  for (const json& r :
       {PatientResource("p1", "9434765919", "01"), admission, discharge, booked, task, created}) {
    entries.push_back(
        {{"fullUrl", "urn:uuid:" + r["id"].get<std::string>()},
         {"resource", r},
         {"request",
          {{"method", "PUT"},
           {"url", r["resourceType"].get<std::string>() + "/" + r["id"].get<std::string>()}}}});
  }
  return {{"resourceType", "Bundle"}, {"type", "transaction"}, {"entry", entries}};
}

// The resources one received event names (focus and additional context), as the transaction
// Bundle the adapter takes.
json BundleFor(const ReceivedNotification& n, const ReceivedEvent& e) {
  std::vector<std::string> refs;
  for (const auto& p : n.bundle["entry"][0]["resource"]["parameter"]) {
    if (p["name"] != "notification-event") {
      continue;
    }
    bool ours = false;
    std::vector<std::string> these;
    for (const auto& part : p["part"]) {
      if (part["name"] == "event-number") {
        ours = std::stoull(part["valueString"].get<std::string>()) == e.number;
      } else if (part["name"] == "focus" || part["name"] == "additional-context") {
        these.push_back(part["valueReference"]["reference"]);
      }
    }
    if (ours) {
      refs = these;
    }
  }
  json entries = json::array();
  for (const std::string& ref : refs) {
    for (const auto& entry : n.bundle["entry"]) {
      if (entry.contains("resource") && entry["resource"].contains("meta") &&
          entry["resource"]["meta"].contains("versionId") &&
          entry["fullUrl"].get<std::string>() + "/_history/" +
                  entry["resource"]["meta"]["versionId"].get<std::string>() ==
              ref) {
        entries.push_back({{"fullUrl", entry["fullUrl"]},
                           {"resource", entry["resource"]},
                           {"request", entry["request"]}});
      }
    }
  }
  return {{"resourceType", "Bundle"}, {"type", "transaction"}, {"entry", entries}};
}

TEST(FhirNotifyRoundTrip, FhirInThroughTheAdapterAndOutAgainKeepsEveryField) {
  TempDir dir("fhir-roundtrip");
  auto policy = WritePolicyFiles(dir.path(), kAgreements);
  ASSERT_TRUE(policy.ok()) << policy.status().ToString();
  auto hub = HubProcess::Start(HubWithAgreements("fhir-roundtrip-hub", policy.value()));
  ASSERT_TRUE(hub.ok()) << hub.status().ToString();
  auto adapter = AdapterProcess::Start(
      dir.path(), "gp", "fhir", "127.0.0.1:0",
      AdapterYaml("M85001", {}, hub.value()->ingest_endpoint(), dir.path() / "gp" / "outbox"));
  ASSERT_TRUE(adapter.ok()) << adapter.status().ToString();
  const auto& ep = adapter.value()->endpoints();
  auto posted = HttpSend("POST", ep.listen_host, ep.listen_port, "/fhir", InputBundle().dump(),
                         "application/fhir+json");
  ASSERT_TRUE(posted.ok()) << posted.status().ToString();
  ASSERT_TRUE(posted->first == 200 || posted->first == 201) << posted->second;

  // What the hub stored, as it delivers it under the agreement.
  ReadFeedOptions o;
  o.until_seq = 4;
  o.timeout = Scaled(seconds(60));
  auto oracle = ReadFeed(hub.value()->subscribe_endpoint(), "oracle-direct", o);
  ASSERT_TRUE(oracle.ok()) << oracle.status().ToString();
  ASSERT_EQ(oracle->events.size(), 4u);

  auto receiver = FhirReceiver::Start(dir.path(), {"rt-token", {}});
  ASSERT_TRUE(receiver.ok()) << receiver.status().ToString();
  std::ofstream(dir.path() / "token") << "rt-token\n";
  const std::string config =
      "hub:\n  endpoint: " + hub.value()->subscribe_endpoint() +
      "\nstate_dir: " + (dir.path() / "state").string() +
      "\npublic_base_url: https://notify.test/fhir\nsubscriptions:\n  - id: fhir-direct\n"
      "    purpose: direct_care\n    payload: full-resource\n    endpoint:\n      url: " +
      receiver.value()->url() + "\n      ca_file: " + receiver.value()->cert().cert.string() +
      "\n      bearer_token_file: " + (dir.path() / "token").string() + "\n";
  auto notify = NotifyProcess::Start(dir.path(), config, dir.path() / "state");
  ASSERT_TRUE(notify.ok()) << notify.status().ToString();
  std::vector<ReceivedNotification> ns;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto parsed = ParseNotifications(receiver.value()->Bodies());
        if (!parsed.ok()) {
          return false;
        }
        ns = std::move(parsed).value();
        return AllEvents(ns).size() >= 4;
      },
      Scaled(seconds(60))));

  adapters::fhir::internal::MappingConfig mc;
  mc.publisher_ods = "M85001";
  mc.allowed_ods = {"M85001"};
  mc.source_system = "fhir";
  size_t compared = 0;
  for (const auto& n : ns) {
    for (const auto& e : n.events) {
      ASSERT_LE(e.number, oracle->events.size());
      const v1::Event& want = oracle->events[e.number - 1].event();
      const json in = BundleFor(n, e);
      auto mapped = adapters::fhir::internal::MapRequest(in, mc, "");
      ASSERT_TRUE(mapped.request_issues.empty()) << in.dump();
      const adapters::fhir::internal::EntryResult* result = nullptr;
      for (const auto& entry : mapped.entries) {
        if (entry.event || !entry.issues.empty()) {
          ASSERT_TRUE(entry.issues.empty())
              << entry.issues[0].diagnostics << " at " << entry.issues[0].expression;
          result = &entry;
        }
      }
      ASSERT_NE(result, nullptr) << in.dump();
      v1::Event got = result->event->event;
      adapters::ScreenEvent(&got, std::chrono::system_clock::now());
      // What the adapter derives per request, not from the resource's content.
      v1::Event expected = want;
      for (v1::Event* ev : {&got, &expected}) {
        v1::Envelope* env = ev->mutable_envelope();
        env->clear_event_id();
        env->clear_lifecycle();
        env->clear_supersedes_event_id();
        env->clear_hub_seq();
        env->clear_received_at();
      }
      std::string diff;
      MessageDifferencer differ;
      differ.ReportDifferencesToString(&diff);
      EXPECT_TRUE(differ.Compare(expected, got))
          << "event number " << e.number << " (" << want.envelope().event_id() << "):\n"
          << diff;
      // The fields cleared above still reach the receiver, in the carehub event extension.
      EXPECT_EQ(CarehubEventPart(e.focus_resource, "eventId"), want.envelope().event_id());
      EXPECT_EQ(CarehubEventPart(e.focus_resource, "hubSeq"),
                std::to_string(want.envelope().hub_seq()));
      ++compared;
    }
  }
  EXPECT_EQ(compared, 4u);
  Status valid = ValidateAgainstFhirSchema(receiver.value()->Bodies(), dir.path() / "bodies");
  EXPECT_TRUE(valid.ok()) << valid.ToString();
}

}  // namespace
}  // namespace carehub::itest
