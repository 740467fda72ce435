#include <gtest/gtest.h>
#include <sodium.h>

#include <string>

#include "carehub/policy/load.h"
#include "carehub/policy/policy_set.h"
#include "policy_test_util.h"

namespace carehub::policy {
namespace {

using testing::TempDir;
using testing::TestNhsNumber;

// The documented formula, computed here independently of the library:
// hex(HMAC-SHA256(HMAC-SHA256(secret, "carehub-pseudonym-v1:" + agreement_id), nhs_number)).
std::string ExpectedPseudonym(const std::string& agreement_id, const std::string& nhs) {
  unsigned char secret[64];
  size_t secret_len = 0;
  const std::string hex(testing::kTestSecretHex);
  EXPECT_EQ(
      sodium_hex2bin(secret, sizeof(secret), hex.data(), hex.size(), nullptr, &secret_len, nullptr),
      0);
  const std::string context = "carehub-pseudonym-v1:" + agreement_id;
  unsigned char key[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_state state;
  crypto_auth_hmacsha256_init(&state, secret, secret_len);
  crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(context.data()),
                                context.size());
  crypto_auth_hmacsha256_final(&state, key);
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256(mac, reinterpret_cast<const unsigned char*>(nhs.data()), nhs.size(), key);
  char out[2 * sizeof(mac) + 1];
  sodium_bin2hex(out, sizeof(out), mac, sizeof(mac));
  return out;
}

v1::Patient FullPatient(const std::string& nhs) {
  v1::Patient p;
  p.set_nhs_number(nhs);
  p.set_local_mrn("MRN0012345");
  p.set_mrn_assigning_ods("RXK");
  p.set_birth_date("1970-05-17");
  p.set_sex(v1::SEX_FEMALE);
  p.set_postcode("LS1 4AP");
  p.set_registered_gp_ods("M85001");
  p.set_given_name("Ada");
  p.set_family_name("Lovelace");
  p.set_address("1 Park Row, Leeds");
  return p;
}

v1::Event FullActivity() {
  v1::Event event;
  v1::Envelope* env = event.mutable_envelope();
  env->set_event_id("MSG0001");
  env->set_publisher_ods("RXK");
  env->set_site_ods("RXK01");
  env->set_source_system("PAS");
  *env->mutable_patient() = FullPatient(TestNhsNumber(30));
  v1::ActivityEvent* activity = event.mutable_activity();
  activity->set_kind(v1::ACTIVITY_KIND_PATIENT_MERGE);
  activity->set_encounter_id("ENC1");
  activity->set_treatment_function("300");
  activity->set_note("Lives with daughter, Mary Lovelace, phone 0113 000 0000");
  v1::CodedValue* diagnosis = activity->add_diagnoses();
  diagnosis->set_system("ICD-10");
  diagnosis->set_code("I21.9");
  diagnosis->set_display("Acute myocardial infarction, unspecified");
  *activity->mutable_merged_patient() = FullPatient(TestNhsNumber(31));
  activity->mutable_merged_patient()->set_postcode("ls14ap");
  return event;
}

class RedactTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::WriteStandardFiles(dir_);
    policy_ = testing::MustLoad(testing::BasePolicyYaml(), dir_);
    ASSERT_NE(policy_, nullptr);
    secondary_ = &policy_->agreements()[1];
    direct_ = &policy_->agreements()[0];
    ASSERT_EQ(secondary_->id, "DSA-SEC-1");
  }

  TempDir dir_;
  std::shared_ptr<const PolicySet> policy_;
  const Agreement* secondary_ = nullptr;
  const Agreement* direct_ = nullptr;
};

TEST_F(RedactTest, DirectCareLeavesTheEventUnchanged) {
  const v1::Event original = FullActivity();
  v1::Event event = original;
  policy_->Redact(*direct_, &event);
  EXPECT_EQ(event.SerializeAsString(), original.SerializeAsString());
}

TEST_F(RedactTest, SecondaryUsePatientFieldByField) {
  v1::Event event = FullActivity();
  policy_->Redact(*secondary_, &event);
  const v1::Patient& p = event.envelope().patient();
  EXPECT_EQ(p.pseudonym(), ExpectedPseudonym("DSA-SEC-1", TestNhsNumber(30)));
  EXPECT_EQ(p.pseudonym().size(), 64u);
  EXPECT_EQ(p.nhs_number(), "");
  EXPECT_EQ(p.local_mrn(), "");
  EXPECT_EQ(p.mrn_assigning_ods(), "");
  EXPECT_EQ(p.given_name(), "");
  EXPECT_EQ(p.family_name(), "");
  EXPECT_EQ(p.address(), "");
  EXPECT_EQ(p.birth_date(), "1970-05");
  EXPECT_EQ(p.postcode(), "LS1");
  // Kept: not identifying on their own and needed for analysis.
  EXPECT_EQ(p.sex(), v1::SEX_FEMALE);
  EXPECT_EQ(p.registered_gp_ods(), "M85001");
}

TEST_F(RedactTest, SecondaryUseMergedPatientGetsItsOwnPseudonym) {
  v1::Event event = FullActivity();
  policy_->Redact(*secondary_, &event);
  const v1::Patient& merged = event.activity().merged_patient();
  EXPECT_EQ(merged.pseudonym(), ExpectedPseudonym("DSA-SEC-1", TestNhsNumber(31)));
  EXPECT_NE(merged.pseudonym(), event.envelope().patient().pseudonym());
  EXPECT_EQ(merged.nhs_number(), "");
  EXPECT_EQ(merged.given_name(), "");
  EXPECT_EQ(merged.local_mrn(), "");
  EXPECT_EQ(merged.birth_date(), "1970-05");
  EXPECT_EQ(merged.postcode(), "LS1");
}

TEST_F(RedactTest, SecondaryUseClearsFreeTextButKeepsCodesAndEnvelope) {
  v1::Event event = FullActivity();
  policy_->Redact(*secondary_, &event);
  EXPECT_EQ(event.activity().note(), "");
  ASSERT_EQ(event.activity().diagnoses_size(), 1);
  EXPECT_EQ(event.activity().diagnoses(0).code(), "I21.9");
  EXPECT_EQ(event.activity().diagnoses(0).display(), "Acute myocardial infarction, unspecified");
  EXPECT_EQ(event.activity().encounter_id(), "ENC1");
  EXPECT_EQ(event.envelope().event_id(), "MSG0001");
  EXPECT_EQ(event.envelope().publisher_ods(), "RXK");

  v1::Event referral;
  referral.mutable_envelope()->mutable_patient()->set_nhs_number(TestNhsNumber(30));
  referral.mutable_referral()->set_note("Patient anxious, husband is a GP");
  referral.mutable_referral()->set_specialty("cardiology");
  policy_->Redact(*secondary_, &referral);
  EXPECT_EQ(referral.referral().note(), "");
  EXPECT_EQ(referral.referral().specialty(), "cardiology");
}

TEST_F(RedactTest, SerializedRedactedEventHoldsNoIdentifier) {
  v1::Event event = FullActivity();
  policy_->Redact(*secondary_, &event);
  const std::string bytes = event.SerializeAsString();
  for (const std::string& forbidden :
       {TestNhsNumber(30), TestNhsNumber(31), std::string("MRN0012345"), std::string("Ada"),
        std::string("Lovelace"), std::string("Park Row"), std::string("1970-05-17"),
        std::string("LS1 4AP"), std::string("LS14AP"), std::string("ls14ap"),
        std::string("daughter")}) {
    EXPECT_EQ(bytes.find(forbidden), std::string::npos) << forbidden;
  }
}

TEST_F(RedactTest, PostcodeAndBirthDateShapes) {
  struct Case {
    const char* postcode;
    const char* district;
  };
  for (const Case& c :
       {Case{"LS1 4AP", "LS1"}, Case{"LS14AP", "LS1"}, Case{"ls14ap", "LS1"},
        Case{"SW1A 1AA", "SW1A"}, Case{"M1 1AE", "M1"}, Case{"B33 8TH", "B33"}, Case{"LS1", "LS1"},
        Case{"unknown", ""}, Case{"12345", ""}, Case{"LS1 4AP X", ""}}) {
    v1::Event event;
    event.mutable_envelope()->mutable_patient()->set_nhs_number(TestNhsNumber(1));
    event.mutable_envelope()->mutable_patient()->set_postcode(c.postcode);
    policy_->Redact(*secondary_, &event);
    EXPECT_EQ(event.envelope().patient().postcode(), c.district) << c.postcode;
  }
  struct DateCase {
    const char* in;
    const char* out;
  };
  for (const DateCase& c : {DateCase{"1970-05-17", "1970-05"}, DateCase{"1970-05", "1970-05"},
                            DateCase{"17/05/1970", ""}, DateCase{"19700517", ""}}) {
    v1::Event event;
    event.mutable_envelope()->mutable_patient()->set_nhs_number(TestNhsNumber(30));
    event.mutable_envelope()->mutable_patient()->set_birth_date(c.in);
    policy_->Redact(*secondary_, &event);
    EXPECT_EQ(event.envelope().patient().birth_date(), c.out) << c.in;
  }
}

// Issue 21: an unidentified patient (no NHS number, NHS Number Status 03) is counted but
// unlinkable under secondary use: no identifier and no pseudonym of any kind, birth year only.
TEST_F(RedactTest, PatientWithoutNhsNumberIsCountedButUnlinkable) {
  v1::Event a = FullActivity();
  v1::Patient* p = a.mutable_envelope()->mutable_patient();
  p->clear_nhs_number();
  p->set_nhs_number_status("03");
  p->set_local_mrn("RXKU0042");
  v1::DataQualityFlag* flag = a.mutable_envelope()->add_data_quality();
  flag->set_field("patient.postcode");
  flag->set_problem("not_uk_postcode");
  flag->set_raw_value("75002");
  policy_->Redact(*secondary_, &a);
  const v1::Patient& out = a.envelope().patient();
  EXPECT_EQ(out.pseudonym(), "");
  EXPECT_EQ(out.nhs_number(), "");
  EXPECT_EQ(out.local_mrn(), "");
  EXPECT_EQ(out.mrn_assigning_ods(), "");
  EXPECT_EQ(out.given_name(), "");
  EXPECT_EQ(out.family_name(), "");
  EXPECT_EQ(out.address(), "");
  EXPECT_EQ(out.birth_date(), "1970");
  EXPECT_EQ(out.postcode(), "LS1");
  EXPECT_EQ(out.nhs_number_status(), "03");  // kept: it is what makes the event countable
  ASSERT_EQ(a.envelope().data_quality_size(), 1);
  EXPECT_EQ(a.envelope().data_quality(0).field(), "patient.postcode");
  EXPECT_EQ(a.envelope().data_quality(0).raw_value(), "");

  // Direct care receives the local identifier with its assigning organisation, and the raw value.
  v1::Event direct = FullActivity();
  direct.mutable_envelope()->mutable_patient()->clear_nhs_number();
  direct.mutable_envelope()->add_data_quality()->set_raw_value("75002");
  policy_->Redact(*direct_, &direct);
  EXPECT_EQ(direct.envelope().patient().local_mrn(), "MRN0012345");
  EXPECT_EQ(direct.envelope().patient().mrn_assigning_ods(), "RXK");
  EXPECT_EQ(direct.envelope().data_quality(0).raw_value(), "75002");

  v1::Event anonymous;
  anonymous.mutable_envelope()->mutable_patient()->set_pseudonym("forged-by-publisher");
  policy_->Redact(*secondary_, &anonymous);
  EXPECT_EQ(anonymous.envelope().patient().pseudonym(), "");
}

TEST_F(RedactTest, AgreementFromElsewhereIsStrippedWithoutPseudonym) {
  Agreement copy = *secondary_;  // not inside the PolicySet: no key
  v1::Event event = FullActivity();
  policy_->Redact(copy, &event);
  EXPECT_EQ(event.envelope().patient().nhs_number(), "");
  EXPECT_EQ(event.envelope().patient().pseudonym(), "");
  EXPECT_EQ(event.envelope().patient().given_name(), "");
  EXPECT_EQ(event.activity().note(), "");
}

TEST_F(RedactTest, SameSecretSamePseudonymAcrossReloads) {
  auto reloaded = testing::MustLoad(testing::BasePolicyYaml(), dir_);
  ASSERT_NE(reloaded, nullptr);
  v1::Event first = FullActivity();
  v1::Event second = FullActivity();
  policy_->Redact(*secondary_, &first);
  reloaded->Redact(reloaded->agreements()[1], &second);
  EXPECT_EQ(first.envelope().patient().pseudonym(), second.envelope().patient().pseudonym());
}

}  // namespace
}  // namespace carehub::policy
