// carehub::MeasureDataQuality: the measures of issue 21, on events as published and as delivered
// under a pseudonymised agreement.

#include "carehub/core/data_quality.h"

#include <gtest/gtest.h>

namespace carehub {
namespace {

v1::Event GoodAdmission() {
  v1::Event e;
  v1::Envelope* env = e.mutable_envelope();
  env->mutable_occurred_at()->set_seconds(1710496800);
  v1::Patient* p = env->mutable_patient();
  p->set_nhs_number("9434765919");
  p->set_postcode("LS1 4AP");
  p->set_registered_gp_ods("B86001");
  v1::CodedValue* dx = e.mutable_activity()->add_diagnoses();
  dx->set_system("ICD-10");
  dx->set_code("I21.9");
  return e;
}

TEST(DataQualityTest, AGoodEventMeetsEveryMeasure) {
  const DataQualityMeasures m = MeasureDataQuality(GoodAdmission());
  EXPECT_TRUE(m.verified_nhs_number);
  EXPECT_TRUE(m.valid_postcode);
  EXPECT_TRUE(m.valid_practice);
  EXPECT_TRUE(m.valid_codes);
}

TEST(DataQualityTest, EachProblemFailsItsOwnMeasureOnly) {
  v1::Event untraced = GoodAdmission();
  untraced.mutable_envelope()->mutable_patient()->set_nhs_number_status("02");
  EXPECT_FALSE(MeasureDataQuality(untraced).verified_nhs_number);
  EXPECT_TRUE(MeasureDataQuality(untraced).valid_postcode);

  v1::Event unidentified = GoodAdmission();
  unidentified.mutable_envelope()->mutable_patient()->clear_nhs_number();
  EXPECT_FALSE(MeasureDataQuality(unidentified).verified_nhs_number);

  v1::Event overseas = GoodAdmission();
  overseas.mutable_envelope()->mutable_patient()->clear_postcode();
  EXPECT_FALSE(MeasureDataQuality(overseas).valid_postcode);
  EXPECT_TRUE(MeasureDataQuality(overseas).valid_practice);

  v1::Event no_practice = GoodAdmission();
  no_practice.mutable_envelope()->mutable_patient()->set_registered_gp_ods("V81999");
  EXPECT_FALSE(MeasureDataQuality(no_practice).valid_practice);

  v1::Event local_code = GoodAdmission();
  local_code.mutable_activity()->mutable_diagnoses(0)->set_system("LOCAL-PAS");
  EXPECT_FALSE(MeasureDataQuality(local_code).valid_codes);
  v1::Event flagged = GoodAdmission();
  v1::DataQualityFlag* flag = flagged.mutable_envelope()->add_data_quality();
  flag->set_field("patient.sex");
  flag->set_problem("unknown_code");
  EXPECT_FALSE(MeasureDataQuality(flagged).valid_codes);
  EXPECT_TRUE(MeasureDataQuality(flagged).verified_nhs_number);
}

TEST(DataQualityTest, PseudonymisedEventsAreMeasuredToo) {
  v1::Event delivered = GoodAdmission();
  v1::Patient* p = delivered.mutable_envelope()->mutable_patient();
  p->clear_nhs_number();
  p->set_pseudonym(std::string(64, 'a'));
  p->set_postcode("LS1");
  const DataQualityMeasures m = MeasureDataQuality(delivered);
  EXPECT_TRUE(m.verified_nhs_number);
  EXPECT_TRUE(m.valid_postcode);
}

TEST(DataQualityTest, TimelinessNeedsBothTimes) {
  v1::Event e = GoodAdmission();
  EXPECT_FALSE(TimelinessSeconds(e).has_value());
  e.mutable_envelope()->mutable_received_at()->set_seconds(1710496800 + 5400);
  EXPECT_EQ(TimelinessSeconds(e), 5400);
}

}  // namespace
}  // namespace carehub
