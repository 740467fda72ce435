// FhirListener over real HTTP (cpp-httplib client on loopback, ephemeral port). The EventSink is
// the seam: a recording sink that can be told to fail.

#include "carehub/adapters/fhir/fhir_listener.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "carehub/core/event_types.h"

namespace carehub::adapters::fhir {
namespace {

using nlohmann::json;

constexpr char kNhs[] = "9434765919";
constexpr char kBadNhs[] = "9434765918";  // fails the Modulus 11 check
constexpr char kNhsSystem[] = "https://fhir.nhs.uk/Id/nhs-number";
constexpr char kOdsSystem[] = "https://fhir.nhs.uk/Id/ods-organization-code";
constexpr char kUbrnSystem[] = "https://fhir.nhs.uk/Id/UBRN";

class RecordingSink : public EventSink {
 public:
  Status Publish(const std::vector<v1::Event>& events) override {
    std::lock_guard<std::mutex> lock(mutex_);
    ++calls_;
    if (fail_) {
      return Status::Error("unavailable", "test sink refuses");
    }
    events_.insert(events_.end(), events.begin(), events.end());
    return Status::Ok();
  }
  void set_fail(bool fail) {
    std::lock_guard<std::mutex> lock(mutex_);
    fail_ = fail;
  }
  std::vector<v1::Event> events() {
    std::lock_guard<std::mutex> lock(mutex_);
    return events_;
  }

 private:
  std::mutex mutex_;
  bool fail_ = false;
  int calls_ = 0;
  std::vector<v1::Event> events_;
};

json Patient(const std::string& nhs, const std::string& id = "pat") {
  return {
      {"resourceType", "Patient"},
      {"id", id},
      {"identifier", {{{"system", kNhsSystem}, {"value", nhs}}}},
      {"birthDate", "1970-04-01"},
      {"gender", "female"},
      {"address", {{{"postalCode", "LS1 4AP"}}}},
      {"generalPractitioner", {{{"identifier", {{"system", kOdsSystem}, {"value", "M85001"}}}}}}};
}

// An emergency admission with a contained Patient and Condition.
json Encounter(const std::string& id, const std::string& nhs = kNhs) {
  return {
      {"resourceType", "Encounter"},
      {"id", id},
      {"contained",
       {Patient(nhs),
        {{"resourceType", "Condition"},
         {"id", "dx"},
         {"code",
          {{"coding",
            {{{"system", "http://snomed.info/sct"},
              {"code", "22298006"},
              {"display", "Myocardial infarction"}}}}}}}}},
      {"status", "in-progress"},
      {"class", {{"system", "http://terminology.hl7.org/CodeSystem/v3-ActCode"}, {"code", "IMP"}}},
      {"priority", {{"coding", {{{"code", "EM"}}}}}},
      {"serviceType",
       {{"coding",
         {{{"system",
            "https://fhir.nhs.uk/CodeSystem/NHSDataModelAndDictionary-treatment-function"},
           {"code", "300"}}}}}},
      {"subject", {{"reference", "#pat"}}},
      {"serviceProvider", {{"identifier", {{"system", kOdsSystem}, {"value", "RXK"}}}}},
      {"period", {{"start", "2024-03-01T09:30:00Z"}}},
      {"hospitalization", {{"admitSource", {{"coding", {{{"code", "19"}}}}}}}},
      {"diagnosis", {{{"condition", {{"reference", "#dx"}}}}}},
      {"location", {{{"location", {{"display", "Ward 7"}}}}}},
      {"basedOn", {{{"identifier", {{"system", kUbrnSystem}, {"value", "000012345678"}}}}}}};
}

json ServiceRequest(const std::string& id, const std::string& subject_ref) {
  return {{"resourceType", "ServiceRequest"},
          {"id", id},
          {"identifier", {{{"system", kUbrnSystem}, {"value", "000011112222"}}}},
          {"status", "active"},
          {"intent", "order"},
          {"priority", "asap"},
          {"subject", {{"reference", subject_ref}}},
          {"requester", {{"identifier", {{"system", kOdsSystem}, {"value", "M85001"}}}}},
          {"performer", {{{"identifier", {{"system", kOdsSystem}, {"value", "RXK"}}}}}},
          {"performerType", {{"coding", {{{"code", "100"}}}}}},
          {"reasonCode",
           {{{"coding", {{{"system", "http://snomed.info/sct"}, {"code", "162864005"}}}}}}},
          {"authoredOn", "2024-02-20T14:00:00+00:00"}};
}

class FhirListenerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FhirListenerOptions options;
    options.publisher_ods = "RXK";
    options.allowed_ods = {"M85001"};
    listener_ = std::make_unique<FhirListener>(options, &sink_);
    ASSERT_TRUE(listener_->Start().ok());
    ASSERT_GT(listener_->port(), 0);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", listener_->port());
    client_->set_read_timeout(30, 0);
    client_->set_write_timeout(30, 0);
  }
  void TearDown() override { listener_->Stop(); }

  httplib::Result Post(const std::string& path, const json& body) {
    return client_->Post(path.c_str(), body.dump(), "application/fhir+json");
  }
  httplib::Result Put(const std::string& path, const json& body) {
    return client_->Put(path.c_str(), body.dump(), "application/fhir+json");
  }

  RecordingSink sink_;
  std::unique_ptr<FhirListener> listener_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(FhirListenerTest, HealthzAnswersOk) {
  auto res = client_->Get("/healthz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST_F(FhirListenerTest, EncounterBecomesActivityEvent) {
  auto res = Post("/fhir/Encounter", Encounter("enc-1"));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 201) << res->body;
  json body = json::parse(res->body);
  ASSERT_EQ(body["event_ids"].size(), 1u);

  std::vector<v1::Event> events = sink_.events();
  ASSERT_EQ(events.size(), 1u);
  const v1::Event& event = events[0];
  EXPECT_EQ(body["event_ids"][0], event.envelope().event_id());
  EXPECT_EQ(event.envelope().event_id().rfind("Encounter/enc-1/_history/h", 0), 0u);
  EXPECT_EQ(event.envelope().publisher_ods(), "RXK");
  EXPECT_EQ(event.envelope().site_ods(), "RXK");
  EXPECT_EQ(event.envelope().lifecycle(), v1::LIFECYCLE_NEW);
  EXPECT_EQ(event.envelope().patient().nhs_number(), kNhs);
  EXPECT_EQ(event.envelope().patient().postcode(), "LS1 4AP");
  EXPECT_EQ(event.envelope().patient().registered_gp_ods(), "M85001");
  EXPECT_EQ(event.envelope().patient().sex(), v1::SEX_FEMALE);
  EXPECT_EQ(EventTypeName(event), "activity.emergency_admission");
  EXPECT_EQ(event.activity().encounter_class(), "IMP");
  EXPECT_EQ(event.activity().treatment_function(), "300");
  EXPECT_EQ(event.activity().admission_source(), "19");
  EXPECT_EQ(event.activity().location(), "Ward 7");
  EXPECT_EQ(event.activity().referral_id(), "000012345678");
  ASSERT_EQ(event.activity().diagnoses_size(), 1);
  EXPECT_EQ(event.activity().diagnoses(0).code(), "22298006");
  EXPECT_EQ(event.envelope().occurred_at().seconds(), 1709285400);
  EXPECT_EQ(listener_->Stats().events_published, 1u);
}

TEST_F(FhirListenerTest, ResendGivesIdenticalEvent) {
  ASSERT_EQ(Post("/fhir/Encounter", Encounter("enc-r"))->status, 201);
  ASSERT_EQ(Post("/fhir/Encounter", Encounter("enc-r"))->status, 201);
  std::vector<v1::Event> events = sink_.events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].SerializeAsString(), events[1].SerializeAsString());
}

TEST_F(FhirListenerTest, VersionIdMakesTheEventId) {
  json encounter = Encounter("enc-v");
  encounter["meta"] = {{"versionId", "3"}, {"lastUpdated", "2024-03-01T10:00:00Z"}};
  ASSERT_EQ(Post("/fhir/Encounter", encounter)->status, 201);
  ASSERT_EQ(sink_.events().size(), 1u);
  EXPECT_EQ(sink_.events()[0].envelope().event_id(), "Encounter/enc-v/_history/3");
  EXPECT_EQ(sink_.events()[0].envelope().recorded_at().seconds(), 1709287200);
}

TEST_F(FhirListenerTest, PutOfKnownIdIsUpdateAndEnteredInErrorCancels) {
  ASSERT_EQ(Post("/fhir/Encounter", Encounter("enc-2"))->status, 201);
  json corrected = Encounter("enc-2");
  corrected["location"] = {{{"location", {{"display", "Ward 9"}}}}};
  auto res = Put("/fhir/Encounter/enc-2", corrected);
  ASSERT_EQ(res->status, 201) << res->body;
  json withdrawn = corrected;
  withdrawn["status"] = "entered-in-error";
  ASSERT_EQ(Put("/fhir/Encounter/enc-2", withdrawn)->status, 201);

  std::vector<v1::Event> events = sink_.events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[1].envelope().lifecycle(), v1::LIFECYCLE_UPDATE);
  EXPECT_EQ(events[1].envelope().supersedes_event_id(), events[0].envelope().event_id());
  EXPECT_NE(events[1].envelope().event_id(), events[0].envelope().event_id());
  EXPECT_EQ(events[2].envelope().lifecycle(), v1::LIFECYCLE_CANCEL);
  EXPECT_EQ(events[2].envelope().supersedes_event_id(), events[1].envelope().event_id());
}

TEST_F(FhirListenerTest, CancelledWithoutEarlierEventIsNew) {
  json encounter = Encounter("enc-unknown");
  encounter["status"] = "cancelled";
  ASSERT_EQ(Post("/fhir/Encounter", encounter)->status, 201);
  EXPECT_EQ(sink_.events()[0].envelope().lifecycle(), v1::LIFECYCLE_NEW);
}

TEST_F(FhirListenerTest, DischargeAfterAdmissionIsANewEvent) {
  ASSERT_EQ(Post("/fhir/Encounter", Encounter("enc-3"))->status, 201);
  json discharged = Encounter("enc-3");
  discharged["status"] = "finished";
  discharged["period"]["end"] = "2024-03-04T11:00:00Z";
  discharged["hospitalization"]["dischargeDisposition"] = {{"coding", {{{"code", "19"}}}}};
  ASSERT_EQ(Put("/fhir/Encounter/enc-3", discharged)->status, 201);
  std::vector<v1::Event> events = sink_.events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(EventTypeName(events[1]), "activity.discharge");
  EXPECT_EQ(events[1].envelope().lifecycle(), v1::LIFECYCLE_NEW);
  EXPECT_EQ(events[1].activity().discharge_destination(), "19");
  EXPECT_EQ(events[1].envelope().occurred_at().seconds(), 1709550000);
}

TEST_F(FhirListenerTest, AmbulatoryEncounterAtGpPracticeIsGpConsultation) {
  json encounter = Encounter("enc-gp");
  encounter["class"] = {{"code", "AMB"}};
  encounter.erase("priority");
  encounter["serviceProvider"] = {{"identifier", {{"system", kOdsSystem}, {"value", "M85001"}}}};
  auto res = Post("/fhir/Encounter", encounter);
  ASSERT_EQ(res->status, 201) << res->body;
  EXPECT_EQ(EventTypeName(sink_.events()[0]), "activity.gp_consultation");
  EXPECT_EQ(sink_.events()[0].envelope().site_ods(), "M85001");
}

TEST_F(FhirListenerTest, ServiceRequestBecomesReferralEvent) {
  json request = ServiceRequest("sr-1", "#p");
  request["contained"] = {Patient(kNhs, "p")};
  auto res = Post("/fhir/ServiceRequest", request);
  ASSERT_EQ(res->status, 201) << res->body;
  ASSERT_EQ(sink_.events().size(), 1u);
  const v1::Event event = sink_.events()[0];
  EXPECT_EQ(EventTypeName(event), "referral.sent");
  EXPECT_EQ(event.referral().referral_id(), "000011112222");
  EXPECT_EQ(event.referral().ubrn(), "000011112222");
  EXPECT_EQ(event.referral().priority(), v1::REFERRAL_PRIORITY_TWO_WEEK_WAIT);
  EXPECT_EQ(event.referral().requester_ods(), "M85001");
  EXPECT_EQ(event.referral().performer_ods(), "RXK");
  EXPECT_EQ(event.referral().specialty(), "100");
  ASSERT_EQ(event.referral().reasons_size(), 1);
  EXPECT_EQ(event.referral().authored_at().seconds(), 1708437600);
  EXPECT_EQ(event.envelope().site_ods(), "M85001");
}

TEST_F(FhirListenerTest, TransactionBundleResolvesFullUrlsAndTasks) {
  const std::string patient_url = "urn:uuid:7d3c9d4e-0f5a-4a63-9d36-1d1f8f1f0001";
  const std::string request_url = "urn:uuid:7d3c9d4e-0f5a-4a63-9d36-1d1f8f1f0002";
  json request = ServiceRequest("", patient_url);
  request.erase("id");
  json task = {{"resourceType", "Task"},
               {"status", "in-progress"},
               {"intent", "order"},
               {"businessStatus", {{"coding", {{{"code", "booked"}}}}}},
               {"focus", {{"reference", request_url}}},
               {"lastModified", "2024-02-22T08:00:00Z"},
               {"executionPeriod", {{"start", "2024-03-05T10:15:00Z"}}}};
  json encounter = Encounter("enc-4");
  encounter.erase("contained");
  encounter.erase("diagnosis");
  encounter["subject"] = {{"reference", patient_url}};
  encounter["basedOn"] = {{{"reference", request_url}}};
  json bundle = {
      {"resourceType", "Bundle"},
      {"type", "transaction"},
      {"entry",
       {{{"fullUrl", patient_url},
         {"resource", Patient(kNhs, "p1")},
         {"request", {{"method", "POST"}, {"url", "Patient"}}}},
        {{"fullUrl", request_url},
         {"resource", request},
         {"request", {{"method", "POST"}, {"url", "ServiceRequest"}}}},
        {{"resource", task}, {"request", {{"method", "POST"}, {"url", "Task"}}}},
        {{"resource", encounter}, {"request", {{"method", "PUT"}, {"url", "Encounter/enc-4"}}}}}}};
  auto res = Post("/fhir", bundle);
  ASSERT_EQ(res->status, 201) << res->body;
  EXPECT_EQ(json::parse(res->body)["event_ids"].size(), 2u);
  std::vector<v1::Event> events = sink_.events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(EventTypeName(events[0]), "referral.booked");
  EXPECT_EQ(events[0].referral().appointment_at().seconds(), 1709633700);
  EXPECT_EQ(events[0].envelope().occurred_at().seconds(), 1708588800);
  EXPECT_EQ(events[0].envelope().patient().nhs_number(), kNhs);
  EXPECT_EQ(events[1].activity().referral_id(), "000011112222");
  EXPECT_EQ(events[1].envelope().patient().nhs_number(), kNhs);
  EXPECT_LE(events[0].envelope().event_id().size(), 128u);
}

TEST_F(FhirListenerTest, TransactionIsAllOrNothing) {
  json bundle = {
      {"resourceType", "Bundle"},
      {"type", "transaction"},
      {"entry",
       {{{"resource", Encounter("enc-ok")}}, {{"resource", Encounter("enc-bad", kBadNhs)}}}}};
  auto res = Post("/fhir", bundle);
  ASSERT_EQ(res->status, 422) << res->body;
  json outcome = json::parse(res->body);
  EXPECT_EQ(outcome["resourceType"], "OperationOutcome");
  ASSERT_EQ(outcome["issue"].size(), 1u);
  EXPECT_NE(outcome["issue"][0]["diagnostics"].get<std::string>().find("invalid_nhs_number"),
            std::string::npos);
  EXPECT_EQ(outcome["issue"][0]["expression"][0], "Bundle.entry[1].resource.subject");
  EXPECT_TRUE(sink_.events().empty());
}

TEST_F(FhirListenerTest, BatchIsPerEntry) {
  json bundle = {
      {"resourceType", "Bundle"},
      {"type", "batch"},
      {"entry",
       {{{"resource", Encounter("enc-b1")}}, {{"resource", Encounter("enc-b2", kBadNhs)}}}}};
  auto res = Post("/fhir", bundle);
  ASSERT_EQ(res->status, 200) << res->body;
  json response = json::parse(res->body);
  EXPECT_EQ(response["type"], "batch-response");
  ASSERT_EQ(response["entry"].size(), 2u);
  EXPECT_EQ(response["entry"][0]["response"]["status"], "201 Created");
  EXPECT_EQ(response["entry"][1]["response"]["status"], "422 Unprocessable Entity");
  EXPECT_EQ(response["entry"][1]["response"]["outcome"]["resourceType"], "OperationOutcome");
  ASSERT_EQ(sink_.events().size(), 1u);
  EXPECT_EQ(response["entry"][0]["response"]["location"], sink_.events()[0].envelope().event_id());
}

TEST_F(FhirListenerTest, MessageBundleIsProcessed) {
  json header = {{"resourceType", "MessageHeader"},
                 {"eventCoding", {{"code", "encounter-notification"}}}};
  json bundle = {{"resourceType", "Bundle"},
                 {"type", "message"},
                 {"entry", {{{"resource", header}}, {{"resource", Encounter("enc-m")}}}}};
  auto res = Post("/fhir/$process-message", bundle);
  ASSERT_EQ(res->status, 201) << res->body;
  EXPECT_EQ(sink_.events().size(), 1u);
}

TEST_F(FhirListenerTest, InvalidNhsNumberGives422WithOperationOutcome) {
  json encounter = Encounter("enc-x");
  encounter.erase("contained");
  encounter.erase("diagnosis");
  encounter["subject"] = {{"identifier", {{"system", kNhsSystem}, {"value", kBadNhs}}}};
  auto res = Post("/fhir/Encounter", encounter);
  ASSERT_EQ(res->status, 422);
  json outcome = json::parse(res->body);
  EXPECT_EQ(outcome["issue"][0]["severity"], "error");
  EXPECT_EQ(outcome["issue"][0]["expression"][0], "Encounter.subject");
  EXPECT_TRUE(sink_.events().empty());
  EXPECT_EQ(listener_->Stats().responses_422, 1u);
}

TEST_F(FhirListenerTest, ProblemsAreNamedOneIssueEach) {
  json encounter = Encounter("enc-y");
  encounter.erase("class");
  encounter["period"] = {{"start", "not a date"}};
  encounter["subject"] = {{"reference", "Patient/missing"}};
  auto res = Post("/fhir/Encounter", encounter);
  ASSERT_EQ(res->status, 422);
  std::string body = res->body;
  EXPECT_NE(body.find("Encounter.class"), std::string::npos) << body;
  EXPECT_NE(body.find("Encounter.period.start"), std::string::npos) << body;
  EXPECT_NE(body.find("Encounter.subject"), std::string::npos) << body;
}

TEST_F(FhirListenerTest, SiteNotAllowedIsRefused) {
  json encounter = Encounter("enc-z");
  encounter["serviceProvider"] = {{"identifier", {{"system", kOdsSystem}, {"value", "RR8"}}}};
  auto res = Post("/fhir/Encounter", encounter);
  ASSERT_EQ(res->status, 422);
  EXPECT_NE(res->body.find("forbidden"), std::string::npos);
}

TEST_F(FhirListenerTest, BrokenJsonGives400) {
  auto res =
      client_->Post("/fhir/Encounter", "{\"resourceType\": \"Encounter\", ", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  auto not_fhir = client_->Post("/fhir", "{\"hello\": 1}", "application/json");
  EXPECT_EQ(not_fhir->status, 400);
  EXPECT_EQ(listener_->Stats().responses_400, 2u);
}

TEST_F(FhirListenerTest, UnsupportedResourceGives422) {
  auto res = Post("/fhir", {{"resourceType", "Observation"}, {"id", "o1"}});
  ASSERT_EQ(res->status, 422);
  EXPECT_NE(res->body.find("not-supported"), std::string::npos);
}

TEST_F(FhirListenerTest, PutIdMismatchGives400) {
  auto res = Put("/fhir/Encounter/other", Encounter("enc-5"));
  ASSERT_EQ(res->status, 400);
  json numeric_id = Encounter("enc-5");
  numeric_id["id"] = 5;
  EXPECT_EQ(Put("/fhir/Encounter/5", numeric_id)->status, 400);
}

TEST_F(FhirListenerTest, WrongJsonTypesAreProblemsNotCrashes) {
  json encounter = Encounter("enc-types");
  encounter["status"] = 7;
  encounter["period"] = "yesterday";
  encounter["diagnosis"] = {1, "x"};
  auto res = Post("/fhir/Encounter", encounter);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 422) << res->body;
  json bundle = {
      {"resourceType", "Bundle"}, {"type", "transaction"}, {"entry", {1, "two", nullptr}}};
  auto bundle_res = Post("/fhir", bundle);
  ASSERT_TRUE(bundle_res);
  EXPECT_EQ(bundle_res->status, 422) << bundle_res->body;
  EXPECT_TRUE(sink_.events().empty());
}

TEST_F(FhirListenerTest, FiftyMegabyteBodyGives413) {
  std::string huge(50 * 1024 * 1024, ' ');
  huge[0] = '{';
  huge[huge.size() - 1] = '}';
  auto res = client_->Post("/fhir", huge, "application/fhir+json");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 413);
  EXPECT_EQ(listener_->Stats().responses_413, 1u);
  EXPECT_TRUE(sink_.events().empty());
  // The listener keeps serving.
  EXPECT_EQ(Post("/fhir/Encounter", Encounter("enc-after"))->status, 201);
}

TEST_F(FhirListenerTest, FailingSinkGives503AndResendSucceeds) {
  sink_.set_fail(true);
  auto res = Post("/fhir/Encounter", Encounter("enc-6"));
  ASSERT_EQ(res->status, 503);
  EXPECT_EQ(listener_->Stats().responses_503, 1u);
  sink_.set_fail(false);
  auto retry = Post("/fhir/Encounter", Encounter("enc-6"));
  ASSERT_EQ(retry->status, 201);
  ASSERT_EQ(sink_.events().size(), 1u);
  // Nothing was remembered from the failed attempt: the resend is still NEW.
  EXPECT_EQ(sink_.events()[0].envelope().lifecycle(), v1::LIFECYCLE_NEW);
}

TEST(FhirListenerStartTest, RefusesMissingPublisher) {
  RecordingSink sink;
  FhirListener listener(FhirListenerOptions{}, &sink);
  EXPECT_EQ(listener.Start().code(), "invalid_options");
}

}  // namespace
}  // namespace carehub::adapters::fhir
