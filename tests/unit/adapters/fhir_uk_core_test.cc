// Issue 21: FHIR as NHS systems send it, over real HTTP (cpp-httplib client on loopback,
// ephemeral port): UK Core extensions where UK Core puts them, NHS number verification status,
// Location ods-site-code, unidentified patients, BaRS 111 -> ED message Bundles with supporting
// resources carehub does not model, and application/fhir+xml. Bodies are written out as senders
// write them; expected values are read off the bodies by hand.

#include <gtest/gtest.h>
#include <httplib.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "carehub/adapters/fhir/fhir_listener.h"
#include "carehub/core/event_types.h"

namespace carehub::adapters::fhir {
namespace {

using nlohmann::json;

class RecordingSink : public EventSink {
 public:
  Status Publish(const std::vector<v1::Event>& events) override {
    std::lock_guard<std::mutex> lock(mutex_);
    events_.insert(events_.end(), events.begin(), events.end());
    return Status::Ok();
  }
  std::vector<v1::Event> events() {
    std::lock_guard<std::mutex> lock(mutex_);
    return events_;
  }

 private:
  std::mutex mutex_;
  std::vector<v1::Event> events_;
};

class FhirUkCoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FhirListenerOptions options;
    options.publisher_ods = "RXK";
    options.allowed_ods = {"RXK01"};
    listener_ = std::make_unique<FhirListener>(options, &sink_);
    ASSERT_TRUE(listener_->Start().ok());
    client_ = std::make_unique<httplib::Client>("127.0.0.1", listener_->port());
    client_->set_read_timeout(30, 0);
  }
  void TearDown() override { listener_->Stop(); }

  httplib::Result Post(const std::string& path, const std::string& body,
                       const char* type = "application/fhir+json") {
    return client_->Post(path.c_str(), body, type);
  }

  RecordingSink sink_;
  std::unique_ptr<FhirListener> listener_;
  std::unique_ptr<httplib::Client> client_;
};

// A UK Core emergency admission: admission method 21 on Encounter.hospitalization (where UK Core
// puts it), the NHS number verified (01), the ward a Location with its ODS site code.
constexpr char kUkCoreAdmission[] = R"({
  "resourceType": "Encounter",
  "id": "uk-enc-1",
  "meta": {"versionId": "1", "lastUpdated": "2024-03-01T09:40:00+00:00",
           "profile": ["https://fhir.hl7.org.uk/StructureDefinition/UKCore-Encounter"]},
  "contained": [
    {"resourceType": "Patient", "id": "pat",
     "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919",
       "extension": [{"url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus",
         "valueCodeableConcept": {"coding": [{"system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland",
           "code": "01", "display": "Number present and verified"}]}}]}],
     "gender": "female", "birthDate": "1958-07-14",
     "address": [{"postalCode": "LS1 4AP"}]},
    {"resourceType": "Location", "id": "ward",
     "identifier": [{"system": "https://fhir.nhs.uk/Id/ods-site-code", "value": "RXK01"}],
     "name": "Ward 12"}
  ],
  "status": "in-progress",
  "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
  "subject": {"reference": "#pat"},
  "serviceProvider": {"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "RXK"}},
  "period": {"start": "2024-03-01T09:30:00+00:00"},
  "hospitalization": {
    "extension": [
      {"url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-AdmissionMethod",
       "valueCodeableConcept": {"coding": [{"system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-AdmissionMethodEngland",
         "code": "21", "display": "Emergency Admission: Emergency Care Department"}]}},
      {"url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-SourceOfReferral",
       "valueCodeableConcept": {"coding": [{"code": "19"}]}}
    ],
    "admitSource": {"coding": [{"code": "19"}]}
  },
  "location": [{"location": {"reference": "#ward"}}]
})";

void ExpectUkCoreAdmission(const v1::Event& e) {
  EXPECT_EQ(EventTypeName(e), "activity.emergency_admission");
  EXPECT_EQ(e.activity().admission_method(), "21");
  EXPECT_EQ(e.activity().referral_source(), "19");
  EXPECT_EQ(e.activity().admission_source(), "19");
  EXPECT_EQ(e.activity().location(), "RXK01");
  EXPECT_EQ(e.envelope().patient().nhs_number(), "9434765919");
  EXPECT_EQ(e.envelope().patient().nhs_number_status(), "01");
  EXPECT_EQ(e.envelope().patient().birth_date(), "1958-07-14");
  EXPECT_EQ(e.envelope().occurred_at().seconds(), 1709285400);  // 2024-03-01T09:30:00Z
  EXPECT_EQ(e.envelope().data_quality_size(), 0);
}

TEST_F(FhirUkCoreTest, AdmissionMethodOnHospitalizationMakesAnEmergencyAdmission) {
  auto res = Post("/fhir/Encounter", kUkCoreAdmission);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 201);
  EXPECT_EQ(json::parse(res->body),
            json::parse(R"({"event_ids":["Encounter/uk-enc-1/_history/1"]})"));
  ASSERT_EQ(sink_.events().size(), 1u);
  ExpectUkCoreAdmission(sink_.events()[0]);
}

// The same admission as application/fhir+xml (https://hl7.org/fhir/R4/xml.html).
constexpr char kUkCoreAdmissionXml[] = R"(<?xml version="1.0" encoding="UTF-8"?>
<Encounter xmlns="http://hl7.org/fhir">
  <id value="uk-enc-2"/>
  <meta><versionId value="1"/><lastUpdated value="2024-03-01T09:40:00+00:00"/>
    <profile value="https://fhir.hl7.org.uk/StructureDefinition/UKCore-Encounter"/></meta>
  <text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml">Emergency admission</div></text>
  <contained>
    <Patient>
      <id value="pat"/>
      <identifier>
        <extension url="https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus">
          <valueCodeableConcept><coding>
            <system value="https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland"/>
            <code value="01"/></coding></valueCodeableConcept>
        </extension>
        <system value="https://fhir.nhs.uk/Id/nhs-number"/>
        <value value="9434765919"/>
      </identifier>
      <gender value="female"/>
      <birthDate value="1958-07-14"/>
      <address><postalCode value="LS1 4AP"/></address>
    </Patient>
  </contained>
  <contained>
    <Location>
      <id value="ward"/>
      <identifier><system value="https://fhir.nhs.uk/Id/ods-site-code"/><value value="RXK01"/></identifier>
      <name value="Ward 12"/>
    </Location>
  </contained>
  <status value="in-progress"/>
  <class><system value="http://terminology.hl7.org/CodeSystem/v3-ActCode"/><code value="IMP"/></class>
  <subject><reference value="#pat"/></subject>
  <period><start value="2024-03-01T09:30:00+00:00"/></period>
  <hospitalization>
    <extension url="https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-AdmissionMethod">
      <valueCodeableConcept><coding><code value="21"/></coding></valueCodeableConcept>
    </extension>
    <extension url="https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-SourceOfReferral">
      <valueCodeableConcept><coding><code value="19"/></coding></valueCodeableConcept>
    </extension>
    <admitSource><coding><code value="19"/></coding></admitSource>
  </hospitalization>
  <location><location><reference value="#ward"/></location></location>
  <serviceProvider><identifier><system value="https://fhir.nhs.uk/Id/ods-organization-code"/><value value="RXK"/></identifier></serviceProvider>
</Encounter>)";

TEST_F(FhirUkCoreTest, XmlAdmissionGivesTheSameEventAsJson) {
  auto res = Post("/fhir/Encounter", kUkCoreAdmissionXml, "application/fhir+xml");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 201) << res->body;
  EXPECT_EQ(json::parse(res->body),
            json::parse(R"({"event_ids":["Encounter/uk-enc-2/_history/1"]})"));
  ASSERT_EQ(sink_.events().size(), 1u);
  ExpectUkCoreAdmission(sink_.events()[0]);
}

TEST_F(FhirUkCoreTest, BrokenXmlGives400) {
  auto res = Post("/fhir/Encounter", "<Encounter xmlns=\"http://hl7.org/fhir\"><id value=\"x\">",
                  "application/fhir+xml");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_NE(res->body.find("not well-formed XML"), std::string::npos);
  auto wrong_ns =
      Post("/fhir/Encounter", "<Encounter><id value=\"x\"/></Encounter>", "application/fhir+xml");
  EXPECT_EQ(wrong_ns->status, 400);
  EXPECT_NE(wrong_ns->body.find("FHIR namespace"), std::string::npos);
  // An external entity is never fetched or expanded.
  auto xxe = Post("/fhir/Encounter",
                  "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>"
                  "<Encounter xmlns=\"http://hl7.org/fhir\"><id value=\"&e;\"/></Encounter>",
                  "application/fhir+xml");
  ASSERT_TRUE(xxe);
  EXPECT_EQ(xxe->body.find("root:"), std::string::npos);
  // Found by fuzz_fhir_xml: a name first as a primitive, then as a repeating element.
  auto mixed = Post("/fhir/Encounter",
                    "<Encounter xmlns=\"http://hl7.org/fhir\"><name value=\"x\"/>"
                    "<name><given value=\"y\"/></name></Encounter>",
                    "application/fhir+xml");
  ASSERT_TRUE(mixed);
  EXPECT_EQ(mixed->status, 400);
  EXPECT_NE(mixed->body.find("mixes forms"), std::string::npos);
  EXPECT_TRUE(sink_.events().empty());
}

// An unidentified overseas visitor in ED: no NHS number, status 03 (trace required), a local
// number assigned by the trust, a French postcode.
constexpr char kUnidentifiedAttendance[] = R"({
  "resourceType": "Encounter", "id": "ed-77",
  "contained": [{"resourceType": "Patient", "id": "p",
    "identifier": [
      {"system": "https://fhir.nhs.uk/Id/nhs-number",
       "extension": [{"url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus",
         "valueCodeableConcept": {"coding": [{"code": "03"}]}}]},
      {"system": "https://fhir.rxk.nhs.uk/Id/local-patient-number", "value": "RXKU0099",
       "assigner": {"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "RXK"}}}],
    "address": [{"city": "Lyon", "postalCode": "69002", "country": "FR"}]}],
  "status": "arrived",
  "class": {"code": "EMER"},
  "subject": {"reference": "#p"},
  "period": {"start": "2024-03-02T23:10:00Z"}
})";

TEST_F(FhirUkCoreTest, UnidentifiedOverseasPatientIsAcceptedAndFlagged) {
  auto res = Post("/fhir/Encounter", kUnidentifiedAttendance);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 201) << res->body;
  ASSERT_EQ(sink_.events().size(), 1u);
  const v1::Event e = sink_.events()[0];
  EXPECT_EQ(EventTypeName(e), "activity.ae_attendance");
  const v1::Patient& p = e.envelope().patient();
  EXPECT_EQ(p.nhs_number(), "");
  EXPECT_EQ(p.nhs_number_status(), "03");
  EXPECT_EQ(p.local_mrn(), "RXKU0099");
  EXPECT_EQ(p.mrn_assigning_ods(), "RXK");
  EXPECT_EQ(p.postcode(), "");
  ASSERT_EQ(e.envelope().data_quality_size(), 1);
  EXPECT_EQ(e.envelope().data_quality(0).field(), "patient.postcode");
  EXPECT_EQ(e.envelope().data_quality(0).problem(), "not_uk_postcode");
  EXPECT_EQ(e.envelope().data_quality(0).raw_value(), "69002");
}

// A BaRS 111 -> ED referral (Booking and Referral Standard, servicerequest-request): the
// ServiceRequest has no authoredOn, and the Bundle carries HealthcareService, CarePlan,
// Observation, Flag and Consent, which carehub does not model.
constexpr char kBars111ToEd[] = R"({
  "resourceType": "Bundle", "id": "bars-1", "type": "message",
  "timestamp": "2024-03-03T08:05:00+00:00",
  "entry": [
    {"fullUrl": "urn:uuid:0a1b", "resource": {"resourceType": "MessageHeader", "id": "0a1b",
      "eventCoding": {"system": "https://fhir.nhs.uk/CodeSystem/message-events-bars", "code": "servicerequest-request"},
      "source": {"endpoint": "https://111.example.nhs.uk/bars"},
      "focus": [{"reference": "urn:uuid:sr-1"}]}},
    {"fullUrl": "urn:uuid:sr-1", "resource": {"resourceType": "ServiceRequest", "id": "sr-1",
      "meta": {"lastUpdated": "2024-03-03T08:01:00+00:00"},
      "identifier": [{"system": "https://111.example.nhs.uk/Id/case", "value": "111-CASE-4455"}],
      "extension": [{"url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-SourceOfServiceRequest",
        "valueCodeableConcept": {"coding": [{"code": "NHS111"}]}}],
      "status": "active", "intent": "plan", "priority": "urgent",
      "subject": {"reference": "urn:uuid:pat-1"},
      "requester": {"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "NLO"}},
      "performer": [{"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "RXK"}}],
      "reasonCode": [{"coding": [{"system": "http://snomed.info/sct", "code": "29857009", "display": "Chest pain"}]}],
      "encounter": {"reference": "urn:uuid:enc-111"},
      "supportingInfo": [{"reference": "urn:uuid:cp-1"}]}},
    {"fullUrl": "urn:uuid:enc-111", "resource": {"resourceType": "Encounter", "id": "enc-111",
      "status": "finished", "class": {"code": "VR"},
      "serviceProvider": {"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "NLO"}}}},
    {"fullUrl": "urn:uuid:pat-1", "resource": {"resourceType": "Patient", "id": "pat-1",
      "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"}],
      "birthDate": "1958-07-14", "address": [{"postalCode": "LS1 4AP"}]}},
    {"fullUrl": "urn:uuid:hs-1", "resource": {"resourceType": "HealthcareService", "id": "hs-1", "name": "RXK Emergency Department"}},
    {"fullUrl": "urn:uuid:cp-1", "resource": {"resourceType": "CarePlan", "id": "cp-1", "status": "active", "intent": "plan"}},
    {"fullUrl": "urn:uuid:obs-1", "resource": {"resourceType": "Observation", "id": "obs-1", "status": "final"}},
    {"fullUrl": "urn:uuid:flag-1", "resource": {"resourceType": "Flag", "id": "flag-1", "status": "active"}},
    {"fullUrl": "urn:uuid:con-1", "resource": {"resourceType": "Consent", "id": "con-1", "status": "active"}}
  ]
})";

TEST_F(FhirUkCoreTest, Bars111ToEdIsAcceptedAndTheRestIgnoredWithANote) {
  auto res = Post("/fhir/$process-message", kBars111ToEd);
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 201) << res->body;
  json body = json::parse(res->body);
  ASSERT_EQ(body["event_ids"].size(), 1u);
  const json& issues = body["notes"]["issue"];
  ASSERT_EQ(issues.size(), 6u) << res->body;
  // The 111 call's Encounter (entry 2) is the referral's context, not activity of this publisher.
  EXPECT_EQ(issues[0]["severity"], "information");
  EXPECT_EQ(issues[0]["diagnostics"],
            "Encounter is the referral's context (ServiceRequest.encounter) and was not mapped");
  EXPECT_EQ(issues[0]["expression"][0], "Bundle.entry[2].resource");
  const char* ignored[] = {"HealthcareService", "CarePlan", "Observation", "Flag", "Consent"};
  for (size_t i = 0; i < 5; ++i) {
    const json& issue = issues[i + 1];
    EXPECT_EQ(issue["severity"], "information");
    EXPECT_EQ(issue["code"], "informational");
    EXPECT_EQ(issue["diagnostics"],
              std::string(ignored[i]) + " is not mapped by carehub and was ignored");
    EXPECT_EQ(issue["expression"][0], "Bundle.entry[" + std::to_string(i + 4) + "].resource");
  }
  ASSERT_EQ(sink_.events().size(), 1u);
  const v1::Event e = sink_.events()[0];
  EXPECT_EQ(EventTypeName(e), "referral.created");  // intent plan
  EXPECT_EQ(e.referral().referral_id(), "111-CASE-4455");
  EXPECT_EQ(e.referral().requester_ods(), "NLO");
  EXPECT_EQ(e.referral().performer_ods(), "RXK");
  EXPECT_EQ(e.referral().priority(), v1::REFERRAL_PRIORITY_URGENT);
  EXPECT_EQ(e.referral().source_of_referral(), "NHS111");
  EXPECT_EQ(e.referral().authored_at().seconds(), 1709452860);  // meta.lastUpdated 08:01Z
  EXPECT_EQ(e.envelope().occurred_at().seconds(), 1709452860);
  EXPECT_EQ(e.envelope().site_ods(), "RXK");
}

TEST_F(FhirUkCoreTest, BarsWithoutLastUpdatedTakesTheBundleTimestamp) {
  json bundle = json::parse(kBars111ToEd);
  bundle["entry"][1]["resource"].erase("meta");
  bundle["entry"][1]["resource"]["id"] = "sr-2";
  auto res = Post("/fhir/$process-message", bundle.dump());
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 201) << res->body;
  ASSERT_EQ(sink_.events().size(), 1u);
  EXPECT_EQ(sink_.events()[0].referral().authored_at().seconds(), 1709453100);  // 08:05Z
}

TEST_F(FhirUkCoreTest, UnmodelledResourceAloneIsStillRefused) {
  auto res = Post("/fhir", R"({"resourceType": "CarePlan", "id": "cp"})");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 422);
}

}  // namespace
}  // namespace carehub::adapters::fhir
