// Event -> FHIR resources for what the adapter round trip cannot reach (the FHIR adapter never
// produces procedures, merges or notes), and the secondary-use strip that must hold even when a
// misconfigured agreement lets identifiers through. Expected values are written out here.

#include "carehub/notify/fhir_resources.h"

#include <gtest/gtest.h>

namespace carehub::notify {
namespace {

v1::DeliveredEvent Activity() {
  v1::DeliveredEvent d;
  d.set_agreement_id("DSA-X");
  v1::Envelope* env = d.mutable_event()->mutable_envelope();
  env->set_event_id("e-1");
  env->set_publisher_ods("RXK");
  env->set_site_ods("RXK01");
  env->set_hub_seq(42);
  env->mutable_occurred_at()->set_seconds(1'760'000'000);
  v1::Patient* p = env->mutable_patient();
  p->set_nhs_number("9434765919");
  p->set_given_name("Ann Marie");
  p->set_family_name("Jones");
  p->set_birth_date("1950-03-04");
  p->set_postcode("LS1 4AP");
  p->set_address("1 High Street, Leeds");
  p->set_local_mrn("RXK123");
  p->set_mrn_assigning_ods("RXK");
  v1::ActivityEvent* a = d.mutable_event()->mutable_activity();
  a->set_kind(v1::ACTIVITY_KIND_PATIENT_MERGE);
  a->set_encounter_id("V1");
  a->set_status("finished");
  a->set_encounter_class("IMP");
  a->set_note("patient anxious");
  v1::CodedValue* px = a->add_procedures();
  px->set_system("OPCS-4");
  px->set_code("K40.1");
  a->mutable_merged_patient()->set_nhs_number("9999999484");
  return d;
}

TEST(FhirResourcesTest, ProceduresMergesAndNotesHaveTheirPlace) {
  MappedEvent m = MapEvent(Activity(), Purpose::kDirectCare, true);
  ASSERT_EQ(m.resources.size(), 3u);
  EXPECT_EQ(m.resources[0].type, "Encounter");
  EXPECT_EQ(m.resources[1].type, "Patient");
  EXPECT_EQ(m.resources[2].type, "Patient");
  const auto& enc = m.resources[0].resource;
  EXPECT_EQ(enc["meta"]["versionId"], "42");
  ASSERT_EQ(enc["contained"].size(), 1u);
  EXPECT_EQ(enc["contained"][0]["resourceType"], "Procedure");
  EXPECT_EQ(enc["contained"][0]["code"]["coding"][0]["system"],
            "https://fhir.nhs.uk/CodeSystem/OPCS-4");
  EXPECT_EQ(enc["contained"][0]["code"]["coding"][0]["code"], "K40.1");
  EXPECT_EQ(enc["contained"][0]["encounter"]["reference"], "#");
  EXPECT_NE(enc.dump().find("patient anxious"), std::string::npos);
  const auto& survivor = m.resources[1].resource;
  const auto& merged = m.resources[2].resource;
  EXPECT_EQ(merged["active"], false);
  EXPECT_EQ(merged["link"][0]["type"], "replaced-by");
  EXPECT_EQ(merged["link"][0]["other"]["reference"], "Patient/" + m.resources[1].id);
  EXPECT_EQ(survivor["link"][0]["type"], "replaces");
  EXPECT_EQ(survivor["name"][0]["given"], nlohmann::json::array({"Ann", "Marie"}));
  // Ids never carry the identifier itself.
  for (const auto& r : m.resources) {
    EXPECT_EQ(r.id.find("9434765919"), std::string::npos);
    EXPECT_EQ(r.id.find("V1"), std::string::npos);
  }
}

TEST(FhirResourcesTest, SecondaryUseStripsIdentifiersEvenIfTheHubLetThemThrough) {
  v1::DeliveredEvent d = Activity();
  d.mutable_event()->mutable_envelope()->mutable_patient()->set_pseudonym("ab12");
  MappedEvent m = MapEvent(d, Purpose::kSecondaryUse, true);
  std::string all;
  for (const auto& r : m.resources) {
    all += r.resource.dump();
  }
  for (const char* identifying : {"9434765919", "9999999484", "Jones", "Ann", "1950-03-04",
                                  "LS1 4AP", "High Street", "RXK123", "patient anxious"}) {
    EXPECT_EQ(all.find(identifying), std::string::npos) << identifying;
  }
  EXPECT_NE(all.find("\"1950-03\""), std::string::npos);
  EXPECT_NE(all.find("\"LS1\""), std::string::npos);
  EXPECT_NE(all.find("\"ab12\""), std::string::npos);
}

TEST(FhirResourcesTest, ReferralStatusesShapeServiceRequestAndTask) {
  v1::DeliveredEvent d;
  v1::Envelope* env = d.mutable_event()->mutable_envelope();
  env->set_publisher_ods("M85001");
  env->set_hub_seq(7);
  v1::ReferralEvent* r = d.mutable_event()->mutable_referral();
  r->set_referral_id("R1");
  r->set_status(v1::REFERRAL_STATUS_CREATED);
  MappedEvent created = MapEvent(d, Purpose::kDirectCare, true);
  ASSERT_EQ(created.resources.size(), 2u);  // no Task says "created"
  EXPECT_EQ(created.resources[0].resource["status"], "draft");
  r->set_status(v1::REFERRAL_STATUS_BOOKED);
  r->mutable_appointment_at()->set_seconds(1'760'000'000);
  MappedEvent booked = MapEvent(d, Purpose::kDirectCare, true);
  ASSERT_EQ(booked.resources.size(), 3u);
  EXPECT_EQ(booked.resources[1].type, "Task");
  EXPECT_EQ(booked.resources[1].resource["status"], "accepted");
  EXPECT_EQ(booked.resources[1].resource["businessStatus"]["coding"][0]["code"], "booked");
  EXPECT_EQ(booked.resources[1].resource["executionPeriod"]["start"], "2025-10-09T08:53:20Z");
  EXPECT_EQ(booked.resources[1].resource["focus"]["reference"],
            "ServiceRequest/" + booked.resources[0].id);
  r->set_status(v1::REFERRAL_STATUS_CANCELLED);
  env->set_lifecycle(v1::LIFECYCLE_CANCEL);
  MappedEvent cancelled = MapEvent(d, Purpose::kDirectCare, true);
  EXPECT_TRUE(cancelled.cancel);
  EXPECT_EQ(cancelled.resources[0].resource["status"], "entered-in-error");
  EXPECT_EQ(cancelled.resources[1].resource["status"], "cancelled");
  // The same referral keeps its ids across its steps.
  EXPECT_EQ(created.resources[0].id, cancelled.resources[0].id);
  // id-only builds no JSON.
  EXPECT_TRUE(MapEvent(d, Purpose::kDirectCare, false).resources[0].resource.is_null());
}

}  // namespace
}  // namespace carehub::notify
