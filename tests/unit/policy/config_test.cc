// The shipped demo policy (config/agreements.yaml) loads and means what its comments say.

#include <gtest/gtest.h>

#include <string>

#include "carehub/core/synthetic.h"
#include "carehub/policy/load.h"
#include "policy_test_util.h"

namespace carehub::policy {
namespace {

using testing::At;

class DemoConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loaded = LoadPolicy(std::filesystem::path(CAREHUB_SOURCE_DIR) / "config/agreements.yaml");
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    policy_ = loaded.value();
  }

  v1::Event Activity(const std::string& publisher, v1::ActivityKind kind, uint32_t patient) {
    v1::Event event;
    event.mutable_envelope()->set_publisher_ods(publisher);
    event.mutable_envelope()->set_site_ods(publisher);
    event.mutable_envelope()->mutable_patient()->set_nhs_number(SyntheticNhsNumber(patient));
    event.mutable_activity()->set_kind(kind);
    return event;
  }

  std::shared_ptr<const PolicySet> policy_;
  const Clock::TimePoint now_ = At("2026-06-15T12:00:00Z");
};

TEST_F(DemoConfigTest, LoadsWithItsOptOutList) {
  EXPECT_EQ(policy_->agreements().size(), 3u);
  EXPECT_GE(policy_->opt_out_count(), 100u);
  EXPECT_FALSE(policy_->secret_fingerprint().empty());
}

TEST_F(DemoConfigTest, HospitalReceivesGpAndCommunityActivityForDirectCare) {
  const SubscriptionRef* lth = policy_->FindSubscription("lth-direct-care");
  ASSERT_NE(lth, nullptr);
  EXPECT_EQ(lth->purpose, Purpose::kDirectCare);
  Decision gp =
      policy_->Decide(*lth, Activity("M85001", v1::ACTIVITY_KIND_GP_CONSULTATION, 1), now_);
  EXPECT_EQ(gp.verdict, Verdict::kDeliver);
  EXPECT_EQ(gp.agreement->id, "DSA-2026-LTH-001");
  EXPECT_EQ(
      policy_->Decide(*lth, Activity("RY6", v1::ACTIVITY_KIND_COMMUNITY_CONTACT, 1), now_).verdict,
      Verdict::kDeliver);
  // Its own events and other trusts' are not part of this agreement.
  EXPECT_EQ(policy_->Decide(*lth, Activity("RAE", v1::ACTIVITY_KIND_DISCHARGE, 1), now_).verdict,
            Verdict::kNotCovered);
}

TEST_F(DemoConfigTest, AnalyticsReceivesEverythingPseudonymisedExceptOptedOut) {
  const SubscriptionRef* ics = policy_->FindSubscription("ics-analytics-feed");
  ASSERT_NE(ics, nullptr);
  EXPECT_EQ(ics->purpose, Purpose::kSecondaryUse);
  uint32_t opted_out = 0;
  uint32_t delivered = 0;
  for (uint32_t patient = 0; patient < 10'000; ++patient) {
    v1::Event event = Activity("RR8", v1::ACTIVITY_KIND_EMERGENCY_ADMISSION, patient);
    Decision d = policy_->Decide(*ics, event, now_);
    if (d.verdict == Verdict::kWithheld) {
      EXPECT_EQ(d.withheld_reason, kWithheldOptOut);
      ++opted_out;
      continue;
    }
    ASSERT_EQ(d.verdict, Verdict::kDeliver);
    ++delivered;
    policy_->Redact(*d.agreement, &event);
    ASSERT_TRUE(event.envelope().patient().nhs_number().empty());
    ASSERT_EQ(event.envelope().patient().pseudonym().size(), 64u);
  }
  // Every number on the demo list is a patient of the default synthetic population.
  EXPECT_EQ(opted_out, policy_->opt_out_count());
  EXPECT_EQ(delivered + opted_out, 10'000u);
}

TEST_F(DemoConfigTest, ExpiredPilotIsExplained) {
  const SubscriptionRef* pilot = policy_->FindSubscription("lch-virtual-ward");
  ASSERT_NE(pilot, nullptr);
  Validity validity = policy_->ValidityNow(*pilot, now_);
  EXPECT_FALSE(validity.valid);
  EXPECT_EQ(validity.code, kValidityExpired);
  EXPECT_EQ(validity.message, "agreement DSA-2024-LCH-001 expired on 2025-03-31");
  Decision d = policy_->Decide(*pilot, Activity("RR8", v1::ACTIVITY_KIND_DISCHARGE, 1), now_);
  EXPECT_EQ(d.verdict, Verdict::kWithheld);
  EXPECT_EQ(d.withheld_reason, kWithheldNoValidAgreement);
  EXPECT_EQ(policy_
                ->Decide(*pilot, Activity("RR8", v1::ACTIVITY_KIND_DISCHARGE, 1),
                         At("2025-03-31T23:00:00Z"))
                .verdict,
            Verdict::kDeliver);
}

}  // namespace
}  // namespace carehub::policy
