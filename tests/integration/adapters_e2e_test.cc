// The `carehub-adapter` binary end to end, driven as a real client would drive it, against the
// real `carehub` daemon: a TCP MLLP client sends every supported ADT trigger and malformed
// messages and checks each ACK; HTTP clients POST and PUT FHIR JSON; CSV files are dropped into a
// watched folder. The events are then read back through a direct-care subscription
// (carehub::client::Subscriber) and compared field by field with what was sent.

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "adapters_support.h"

namespace carehub::itest {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Key = std::pair<std::string, std::string>;

// A hub with the direct-care subscription, and a temp dir for adapters beside it.
class AdapterE2eTest : public ::testing::Test {
 protected:
  void StartHub(const std::string& tag) {
    dir_ = std::make_unique<TempDir>(tag + "-adapters");
    auto yaml = DirectCareHubYaml(dir_->path());
    ASSERT_TRUE(yaml.ok()) << yaml.status().ToString();
    auto hub = HubProcess::Start(HubOptions(tag, yaml.value()));
    ASSERT_TRUE(hub.ok()) << hub.status().ToString();
    hub_ = std::move(hub).value();
  }

  std::unique_ptr<AdapterProcess> StartAdapter(const std::string& name, const std::string& kind,
                                               const std::string& target, const std::string& ods,
                                               const std::vector<std::string>& sites,
                                               const std::string& extra = "") {
    auto adapter = AdapterProcess::Start(
        dir_->path(), name, kind, target,
        AdapterYaml(ods, sites, hub_->ingest_endpoint(), dir_->path() / name / "outbox", extra));
    EXPECT_TRUE(adapter.ok()) << adapter.status().ToString();
    return adapter.ok() ? std::move(adapter).value() : nullptr;
  }

  // Waits until the adapter's outbox is empty (every event answered by the hub).
  static void ExpectDrained(AdapterProcess& adapter) {
    const auto deadline = std::chrono::steady_clock::now() + seconds(20);
    std::optional<double> depth;
    while (std::chrono::steady_clock::now() < deadline) {
      depth = adapter.Metric("carehub_adapter_outbox_depth");
      if (depth && *depth == 0) {
        return;
      }
      std::this_thread::sleep_for(milliseconds(50));
    }
    ADD_FAILURE() << "outbox not drained: depth " << (depth ? *depth : -1);
  }

  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<HubProcess> hub_;
};

struct TriggerCase {
  std::string trigger;
  std::string patient_class;
  v1::ActivityKind kind;
  v1::Lifecycle lifecycle;
  std::string supersedes;
  std::string status;
};

TEST_F(AdapterE2eTest, Hl7EveryTriggerIsAcknowledgedAndArrivesFieldByField) {
  ASSERT_NO_FATAL_FAILURE(StartHub("e2e-hl7"));
  auto adapter = StartAdapter("rxk", "hl7", "127.0.0.1:0", "RXK", {"RXK01", "RXK02"});
  ASSERT_NE(adapter, nullptr);
  const AdapterEndpoints ep = adapter->endpoints();
  ASSERT_GT(ep.listen_port, 0);
  auto health = adapter->AdminGet("/healthz");
  ASSERT_TRUE(health.ok()) << health.status().ToString();
  EXPECT_EQ(health->first, 200);

  auto client = MllpClient::Connect(ep.listen_host, ep.listen_port);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  MllpClient& pas = *client.value();

  const std::vector<TriggerCase> cases = {
      {"A01", "I", v1::ACTIVITY_KIND_EMERGENCY_ADMISSION, v1::LIFECYCLE_NEW, "", "in-progress"},
      {"A02", "I", v1::ACTIVITY_KIND_TRANSFER, v1::LIFECYCLE_NEW, "", "in-progress"},
      {"A03", "I", v1::ACTIVITY_KIND_DISCHARGE, v1::LIFECYCLE_NEW, "", "finished"},
      {"A04", "O", v1::ACTIVITY_KIND_OUTPATIENT_ATTENDANCE, v1::LIFECYCLE_NEW, "", "arrived"},
      {"A05", "P", v1::ACTIVITY_KIND_PRE_ADMISSION, v1::LIFECYCLE_NEW, "", "planned"},
      {"A08", "I", v1::ACTIVITY_KIND_EMERGENCY_ADMISSION, v1::LIFECYCLE_UPDATE, "V1:A01",
       "in-progress"},
      {"A11", "I", v1::ACTIVITY_KIND_EMERGENCY_ADMISSION, v1::LIFECYCLE_CANCEL, "V1:A01",
       "cancelled"},
      {"A13", "I", v1::ACTIVITY_KIND_DISCHARGE, v1::LIFECYCLE_CANCEL, "V1:A03", "in-progress"},
      {"A40", "I", v1::ACTIVITY_KIND_PATIENT_MERGE, v1::LIFECYCLE_NEW, "", ""},
  };
  for (const TriggerCase& c : cases) {
    const std::string id = "E2E-" + c.trigger;
    auto ack = pas.Send(AdtMessage(c.trigger, id, "RXK01", "V1", c.patient_class), seconds(10));
    ASSERT_TRUE(ack.ok()) << c.trigger << ": " << ack.status().ToString();
    const ParsedAck parsed = ParseAck(ack.value());
    EXPECT_EQ(parsed.code, "AA") << c.trigger << ": " << parsed.text;
    EXPECT_EQ(parsed.control_id, id);
  }

  // Malformed and invalid messages: each gets an AR naming the reason; none reaches the hub.
  struct BadCase {
    std::string name;
    std::string message;
    std::string control_id;  // expected MSA-2
    std::string reason;      // our reason code, or for a pre-2.3 sender the ERR-1 table 0357 code
  };
  const std::vector<BadCase> bad = {
      {"no MSH", "this is not HL7\rPID|1\r", "", "malformed_message"},
      {"bad NHS number", AdtMessage("A01", "BAD-NHS", "RXK01", "V2", "I", kBadNhsNumber), "BAD-NHS",
       "invalid_nhs_number"},
      {"unknown facility", AdtMessage("A01", "BAD-FAC", "RYY99"), "BAD-FAC", "unknown_facility"},
      {"unsupported trigger", AdtMessage("A99", "BAD-TRG"), "BAD-TRG", "unsupported_trigger"},
      {"unsupported version", AdtMessage("A01", "BAD-VER", "RXK01", "V1", "I", kNhsNumber, "2.1"),
       "BAD-VER", "^12^203&"},
      {"A08 without visit", AdtMessage("A08", "BAD-VIS", "RXK01", ""), "BAD-VIS", "missing_field"},
  };
  for (const BadCase& b : bad) {
    auto ack = pas.Send(b.message, seconds(10));
    ASSERT_TRUE(ack.ok()) << b.name << ": " << ack.status().ToString();
    const ParsedAck parsed = ParseAck(ack.value());
    EXPECT_EQ(parsed.code, "AR") << b.name << ": " << parsed.text;
    EXPECT_EQ(parsed.control_id, b.control_id) << b.name;
    EXPECT_NE(parsed.text.find(b.reason), std::string::npos) << b.name << ": " << parsed.text;
    // No ACK echoes a patient identifier.
    EXPECT_EQ(parsed.text.find(kBadNhsNumber), std::string::npos) << b.name;
  }

  auto events = ReadEvents(hub_->subscribe_endpoint(), cases.size(), seconds(20));
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  ASSERT_EQ(events->size(), cases.size());
  for (const TriggerCase& c : cases) {
    SCOPED_TRACE(c.trigger);
    auto it = events->find(Key{"RXK", "E2E-" + c.trigger});
    ASSERT_NE(it, events->end());
    const v1::Event& e = it->second;
    const v1::Envelope& env = e.envelope();
    EXPECT_EQ(env.site_ods(), "RXK01");
    EXPECT_EQ(env.source_system(), "PAS");
    EXPECT_EQ(env.lifecycle(), c.lifecycle);
    EXPECT_EQ(env.supersedes_event_id(), c.supersedes);
    // EVN-6 20240315102500 is UK civil time: GMT in March.
    EXPECT_EQ(Seconds(env.occurred_at()), UtcSeconds(2024, 3, 15, 10, 25, 0));
    EXPECT_EQ(Seconds(env.recorded_at()), UtcSeconds(2024, 3, 15, 10, 30, 0));
    EXPECT_GT(env.hub_seq(), 0u);
    EXPECT_EQ(env.patient().nhs_number(), kNhsNumber);
    EXPECT_EQ(env.patient().local_mrn(), "RXK1234567");
    EXPECT_EQ(env.patient().mrn_assigning_ods(), "RXK");
    EXPECT_EQ(env.patient().birth_date(), "1980-01-01");
    EXPECT_EQ(env.patient().sex(), v1::SEX_MALE);
    EXPECT_EQ(env.patient().postcode(), "LS1 4AP");
    EXPECT_EQ(env.patient().registered_gp_ods(), "B86001");
    EXPECT_EQ(env.patient().family_name(), "SMITH");
    ASSERT_TRUE(e.has_activity());
    EXPECT_EQ(e.activity().kind(), c.kind);
    EXPECT_EQ(e.activity().status(), c.status);
    if (c.trigger == "A40") {
      EXPECT_EQ(e.activity().merged_patient().nhs_number(), kOtherNhsNumber);
      continue;
    }
    EXPECT_EQ(e.activity().encounter_id(), "V1");
    EXPECT_EQ(e.activity().treatment_function(), "300");
    EXPECT_EQ(Seconds(e.activity().period_start()), UtcSeconds(2024, 3, 15, 9, 0, 0));
    ASSERT_EQ(e.activity().diagnoses_size(), 1);
    EXPECT_EQ(e.activity().diagnoses(0).system(), "ICD-10");
    EXPECT_EQ(e.activity().diagnoses(0).code(), "I21.9");
    if (c.trigger == "A03") {
      EXPECT_EQ(Seconds(e.activity().period_end()), UtcSeconds(2024, 3, 18, 14, 0, 0));
      EXPECT_EQ(e.activity().discharge_destination(), "19");
    }
  }

  ExpectDrained(*adapter);
  EXPECT_EQ(adapter->Metric("carehub_adapter_messages_total{outcome=\"accepted\"}"),
            static_cast<double>(cases.size()));
  EXPECT_EQ(adapter->Metric("carehub_adapter_messages_total{outcome=\"rejected\"}"),
            static_cast<double>(bad.size()));
  EXPECT_EQ(adapter->Metric("carehub_adapter_hub_events_total{result=\"accepted\"}"),
            static_cast<double>(cases.size()));
  EXPECT_EQ(adapter->Metric("carehub_adapter_hub_connected"), 1.0);
  EXPECT_EQ(adapter->Metric("carehub_adapter_outbox_oldest_age_seconds"), 0.0);

  // A resend of an acknowledged message is AA again and a hub DUPLICATE, not a second event.
  auto again = pas.Send(AdtMessage("A01", "E2E-A01"), seconds(10));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(ParseAck(again.value()).code, "AA");
  ExpectDrained(*adapter);
  EXPECT_EQ(adapter->Metric("carehub_adapter_hub_events_total{result=\"duplicate\"}"), 1.0);

  auto stopped = adapter->Stop();
  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  EXPECT_TRUE(stopped->Exited(0)) << stopped->ToString();
  // Nothing at info or above names the patient.
  const std::string log = adapter->ReadLog();
  EXPECT_EQ(log.find(kNhsNumber), std::string::npos);
  EXPECT_EQ(log.find("SMITH"), std::string::npos);
  EXPECT_EQ(log.find("RXK1234567"), std::string::npos);
}

constexpr char kNhsSystem[] = "https://fhir.nhs.uk/Id/nhs-number";
constexpr char kOdsSystem[] = "https://fhir.nhs.uk/Id/ods-organization-code";

nlohmann::json CommunityEncounter(const std::string& version, const std::string& status,
                                  const std::string& end) {
  nlohmann::json period = {{"start", "2024-06-03T10:00:00+01:00"}};
  if (!end.empty()) {
    period["end"] = end;
  }
  return {
      {"resourceType", "Encounter"},
      {"id", "cc-100"},
      {"meta", {{"versionId", version}, {"lastUpdated", "2024-06-03T12:00:00Z"}}},
      {"contained",
       {{{"resourceType", "Patient"},
         {"id", "pat"},
         {"identifier", {{{"system", kNhsSystem}, {"value", kNhsNumber}}}},
         {"birthDate", "1970-04-01"},
         {"gender", "female"},
         {"address", {{{"postalCode", "LS6 2QB"}}}},
         {"generalPractitioner",
          {{{"identifier", {{"system", kOdsSystem}, {"value", "M85001"}}}}}}}}},
      {"status", status},
      {"class", {{"system", "http://terminology.hl7.org/CodeSystem/v3-ActCode"}, {"code", "HH"}}},
      {"subject", {{"reference", "#pat"}}},
      {"serviceProvider", {{"identifier", {{"system", kOdsSystem}, {"value", "RY6"}}}}},
      {"period", period}};
}

nlohmann::json Referral() {
  return {{"resourceType", "ServiceRequest"},
          {"id", "sr-7"},
          {"meta", {{"versionId", "1"}}},
          {"identifier", {{{"system", "https://fhir.nhs.uk/Id/UBRN"}, {"value", "000011112222"}}}},
          {"status", "active"},
          {"intent", "order"},
          {"priority", "urgent"},
          {"subject", {{"identifier", {{"system", kNhsSystem}, {"value", kOtherNhsNumber}}}}},
          {"requester", {{"identifier", {{"system", kOdsSystem}, {"value", "RY6"}}}}},
          {"performer", {{{"identifier", {{"system", kOdsSystem}, {"value", "RR8"}}}}}},
          {"authoredOn", "2024-06-04T09:15:00Z"}};
}

TEST_F(AdapterE2eTest, FhirPostsAndPutsArriveFieldByField) {
  ASSERT_NO_FATAL_FAILURE(StartHub("e2e-fhir"));
  auto adapter = StartAdapter("ry6", "fhir", "127.0.0.1:0", "RY6", {});
  ASSERT_NE(adapter, nullptr);
  const AdapterEndpoints ep = adapter->endpoints();
  const std::string json_type = "application/fhir+json";

  auto created = HttpSend("POST", ep.listen_host, ep.listen_port, "/fhir/Encounter",
                          CommunityEncounter("1", "in-progress", "").dump(), json_type);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(created->first, 201) << created->second;
  auto ids = nlohmann::json::parse(created->second, nullptr, false);
  ASSERT_FALSE(ids.is_discarded());
  EXPECT_EQ(ids["event_ids"], nlohmann::json::array({"Encounter/cc-100/_history/1"}));

  auto updated =
      HttpSend("PUT", ep.listen_host, ep.listen_port, "/fhir/Encounter/cc-100",
               CommunityEncounter("2", "finished", "2024-06-03T10:45:00+01:00").dump(), json_type);
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_EQ(updated->first, 201) << updated->second;

  auto referral = HttpSend("POST", ep.listen_host, ep.listen_port, "/fhir/ServiceRequest",
                           Referral().dump(), json_type);
  ASSERT_TRUE(referral.ok()) << referral.status().ToString();
  EXPECT_EQ(referral->first, 201) << referral->second;

  // Refused requests get a clear answer and publish nothing.
  auto not_json = HttpSend("POST", ep.listen_host, ep.listen_port, "/fhir", "{not json", json_type);
  ASSERT_TRUE(not_json.ok());
  EXPECT_EQ(not_json->first, 400);
  EXPECT_NE(not_json->second.find("OperationOutcome"), std::string::npos);
  nlohmann::json bad_nhs = CommunityEncounter("1", "in-progress", "");
  bad_nhs["id"] = "cc-bad";
  bad_nhs["contained"][0]["identifier"][0]["value"] = kBadNhsNumber;
  auto invalid = HttpSend("POST", ep.listen_host, ep.listen_port, "/fhir/Encounter", bad_nhs.dump(),
                          json_type);
  ASSERT_TRUE(invalid.ok());
  EXPECT_EQ(invalid->first, 422);
  EXPECT_NE(invalid->second.find("invalid_nhs_number"), std::string::npos) << invalid->second;

  auto events = ReadEvents(hub_->subscribe_endpoint(), 3, seconds(20));
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  ASSERT_EQ(events->size(), 3u);

  const auto first = events->find(Key{"RY6", "Encounter/cc-100/_history/1"});
  ASSERT_NE(first, events->end());
  const v1::Event& e1 = first->second;
  EXPECT_EQ(e1.envelope().site_ods(), "RY6");
  EXPECT_EQ(e1.envelope().source_system(), "fhir");
  EXPECT_EQ(e1.envelope().lifecycle(), v1::LIFECYCLE_NEW);
  EXPECT_EQ(Seconds(e1.envelope().occurred_at()), UtcSeconds(2024, 6, 3, 9, 0, 0));
  EXPECT_EQ(Seconds(e1.envelope().recorded_at()), UtcSeconds(2024, 6, 3, 12, 0, 0));
  EXPECT_EQ(e1.envelope().patient().nhs_number(), kNhsNumber);
  EXPECT_EQ(e1.envelope().patient().birth_date(), "1970-04-01");
  EXPECT_EQ(e1.envelope().patient().sex(), v1::SEX_FEMALE);
  EXPECT_EQ(e1.envelope().patient().postcode(), "LS6 2QB");
  EXPECT_EQ(e1.envelope().patient().registered_gp_ods(), "M85001");
  ASSERT_TRUE(e1.has_activity());
  EXPECT_EQ(e1.activity().kind(), v1::ACTIVITY_KIND_COMMUNITY_CONTACT);
  EXPECT_EQ(e1.activity().encounter_class(), "HH");
  EXPECT_EQ(e1.activity().status(), "in-progress");
  EXPECT_EQ(e1.activity().encounter_id(), "cc-100");

  const auto second = events->find(Key{"RY6", "Encounter/cc-100/_history/2"});
  ASSERT_NE(second, events->end());
  const v1::Event& e2 = second->second;
  EXPECT_EQ(e2.envelope().lifecycle(), v1::LIFECYCLE_UPDATE);
  EXPECT_EQ(e2.envelope().supersedes_event_id(), "Encounter/cc-100/_history/1");
  EXPECT_EQ(e2.activity().status(), "finished");
  EXPECT_EQ(Seconds(e2.activity().period_end()), UtcSeconds(2024, 6, 3, 9, 45, 0));
  EXPECT_GT(e2.envelope().hub_seq(), e1.envelope().hub_seq());

  const auto third = events->find(Key{"RY6", "ServiceRequest/sr-7/_history/1"});
  ASSERT_NE(third, events->end());
  const v1::Event& r = third->second;
  ASSERT_TRUE(r.has_referral());
  EXPECT_EQ(r.envelope().patient().nhs_number(), kOtherNhsNumber);
  EXPECT_EQ(r.envelope().site_ods(), "RY6");
  EXPECT_EQ(r.referral().ubrn(), "000011112222");
  EXPECT_EQ(r.referral().status(), v1::REFERRAL_STATUS_SENT);
  EXPECT_EQ(r.referral().priority(), v1::REFERRAL_PRIORITY_URGENT);
  EXPECT_EQ(r.referral().requester_ods(), "RY6");
  EXPECT_EQ(r.referral().performer_ods(), "RR8");
  EXPECT_EQ(Seconds(r.referral().authored_at()), UtcSeconds(2024, 6, 4, 9, 15, 0));

  ExpectDrained(*adapter);
  EXPECT_EQ(adapter->Metric("carehub_adapter_messages_total{outcome=\"accepted\"}"), 3.0);
  EXPECT_EQ(adapter->Metric("carehub_adapter_messages_total{outcome=\"rejected\"}"), 2.0);
  auto stopped = adapter->Stop();
  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  EXPECT_TRUE(stopped->Exited(0)) << stopped->ToString();
}

// Writes a file under a temporary name and renames it in, as senders are told to.
void DropFile(const std::filesystem::path& dir, const std::string& name,
              const std::string& content) {
  const std::filesystem::path tmp = dir / (name + ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary);
    out << content;
  }
  std::filesystem::rename(tmp, dir / name);
}

bool WaitForFile(const std::filesystem::path& path, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (std::filesystem::exists(path)) {
      return true;
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
  return false;
}

TEST_F(AdapterE2eTest, CsvDroppedFilesArriveFieldByField) {
  ASSERT_NO_FATAL_FAILURE(StartHub("e2e-csv"));
  const std::filesystem::path drop = dir_->path() / "drop";
  auto adapter =
      StartAdapter("m85001", "csv", drop.string(), "M85001", {}, "csv:\n  poll_interval_ms: 100\n");
  ASSERT_NE(adapter, nullptr);

  DropFile(drop, "appointments-20240701.csv",
           "record_id,nhs_number,birth_date,sex,postcode,practice_ods,contact_type,"
           "appointment_start,appointment_end,clinician_role,snomed_code,status\r\n"
           "R1,9434765919,1970-04-01,F,LS1 4AP,M85001,gp_consultation,2024-07-01 09:30,"
           "2024-07-01 09:40,GP,185347001,finished\r\n"
           "R2,999 999 9484,01/02/1955,M,LS6 2QB,,did_not_attend,01/07/2024 11:00,,,,\r\n");
  DropFile(drop, "referrals-20240701.csv",
           "referral_id,ubrn,nhs_number,requester_ods,performer_ods,priority,status,authored_at\n"
           "REF-1,000011112222,9434765919,M85001,RR8,2ww,sent,2024-07-01T10:00:00Z\n");
  // A file with one bad row: the good row is published, the file goes to error/ with a report.
  DropFile(drop, "mixed.csv",
           "record_id,nhs_number,contact_type,appointment_start\n"
           "R3,9434765919,gp_consultation,2024-07-02 08:00\n"
           "R4,9434765918,gp_consultation,2024-07-02 08:10\n");

  ASSERT_TRUE(WaitForFile(drop / "done" / "appointments-20240701.csv", seconds(20)));
  ASSERT_TRUE(WaitForFile(drop / "done" / "referrals-20240701.csv", seconds(20)));
  ASSERT_TRUE(WaitForFile(drop / "error" / "mixed.csv.errors.json", seconds(20)));
  const std::string report = ReadFileText(drop / "error" / "mixed.csv.errors.json");
  EXPECT_NE(report.find("invalid_nhs_number"), std::string::npos) << report;
  EXPECT_EQ(report.find("9434765918"), std::string::npos) << "the report must not quote cells";

  auto events = ReadEvents(hub_->subscribe_endpoint(), 4, seconds(20));
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  ASSERT_EQ(events->size(), 4u);

  const auto r1 = events->find(Key{"M85001", "csv/activity/R1"});
  ASSERT_NE(r1, events->end());
  const v1::Event& e1 = r1->second;
  EXPECT_EQ(e1.envelope().site_ods(), "M85001");
  EXPECT_EQ(e1.envelope().source_system(), "csv");
  EXPECT_EQ(e1.envelope().lifecycle(), v1::LIFECYCLE_NEW);
  // 09:30 UK time on 1 July is BST: 08:30 UTC.
  EXPECT_EQ(Seconds(e1.envelope().occurred_at()), UtcSeconds(2024, 7, 1, 8, 30, 0));
  EXPECT_EQ(e1.envelope().patient().nhs_number(), kNhsNumber);
  EXPECT_EQ(e1.envelope().patient().birth_date(), "1970-04-01");
  EXPECT_EQ(e1.envelope().patient().sex(), v1::SEX_FEMALE);
  EXPECT_EQ(e1.envelope().patient().postcode(), "LS1 4AP");
  ASSERT_TRUE(e1.has_activity());
  EXPECT_EQ(e1.activity().kind(), v1::ACTIVITY_KIND_GP_CONSULTATION);
  EXPECT_EQ(e1.activity().status(), "finished");
  EXPECT_EQ(Seconds(e1.activity().period_end()), UtcSeconds(2024, 7, 1, 8, 40, 0));
  ASSERT_EQ(e1.activity().diagnoses_size(), 1);
  EXPECT_EQ(e1.activity().diagnoses(0).code(), "185347001");

  const auto r2 = events->find(Key{"M85001", "csv/activity/R2"});
  ASSERT_NE(r2, events->end());
  EXPECT_EQ(r2->second.envelope().patient().nhs_number(), kOtherNhsNumber);
  EXPECT_EQ(r2->second.envelope().patient().birth_date(), "1955-02-01");
  EXPECT_EQ(r2->second.activity().kind(), v1::ACTIVITY_KIND_DID_NOT_ATTEND);
  EXPECT_EQ(Seconds(r2->second.envelope().occurred_at()), UtcSeconds(2024, 7, 1, 10, 0, 0));

  const auto ref = events->find(Key{"M85001", "csv/referral/REF-1/sent"});
  ASSERT_NE(ref, events->end());
  ASSERT_TRUE(ref->second.has_referral());
  EXPECT_EQ(ref->second.referral().status(), v1::REFERRAL_STATUS_SENT);
  EXPECT_EQ(ref->second.referral().priority(), v1::REFERRAL_PRIORITY_TWO_WEEK_WAIT);
  EXPECT_EQ(ref->second.referral().performer_ods(), "RR8");
  EXPECT_EQ(ref->second.referral().ubrn(), "000011112222");

  EXPECT_NE(events->find(Key{"M85001", "csv/activity/R3"}), events->end());

  ExpectDrained(*adapter);
  EXPECT_EQ(adapter->Metric("carehub_adapter_messages_total{outcome=\"accepted\"}"), 2.0);
  EXPECT_EQ(adapter->Metric("carehub_adapter_messages_total{outcome=\"rejected\"}"), 1.0);
  EXPECT_EQ(adapter->Metric("carehub_adapter_source_csv_rows_published_total"), 4.0);
  auto stopped = adapter->Stop();
  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  EXPECT_TRUE(stopped->Exited(0)) << stopped->ToString();
}

}  // namespace
}  // namespace carehub::itest
