#include <gtest/gtest.h>

#include <string>

#include "carehub/policy/load.h"
#include "carehub/policy/policy_set.h"
#include "policy_test_util.h"

namespace carehub::policy {
namespace {

using testing::At;
using testing::TempDir;
using testing::TestNhsNumber;

v1::Event Activity(const std::string& publisher, v1::ActivityKind kind,
                   const std::string& nhs = TestNhsNumber(10), const std::string& site = "") {
  v1::Event event;
  event.mutable_envelope()->set_event_id("e1");
  event.mutable_envelope()->set_publisher_ods(publisher);
  event.mutable_envelope()->set_site_ods(site);
  event.mutable_envelope()->mutable_patient()->set_nhs_number(nhs);
  event.mutable_activity()->set_kind(kind);
  return event;
}

v1::Event Referral(const std::string& publisher, v1::ReferralStatus status) {
  v1::Event event;
  event.mutable_envelope()->set_publisher_ods(publisher);
  event.mutable_envelope()->mutable_patient()->set_nhs_number(TestNhsNumber(10));
  event.mutable_referral()->set_status(status);
  return event;
}

class DecideTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::WriteStandardFiles(dir_, {TestNhsNumber(20)});
    policy_ = testing::MustLoad(testing::BasePolicyYaml(), dir_);
    ASSERT_NE(policy_, nullptr);
    care_ = policy_->FindSubscription("lth-care");
    feed_ = policy_->FindSubscription("ics-feed");
    ics_care_ = policy_->FindSubscription("ics-care");
    ASSERT_NE(care_, nullptr);
    ASSERT_NE(feed_, nullptr);
    ASSERT_NE(ics_care_, nullptr);
  }

  TempDir dir_;
  std::shared_ptr<const PolicySet> policy_;
  const SubscriptionRef* care_ = nullptr;
  const SubscriptionRef* feed_ = nullptr;
  const SubscriptionRef* ics_care_ = nullptr;
  const Clock::TimePoint mid_ = At("2026-06-15T12:00:00Z");
};

TEST_F(DecideTest, DirectOdsMatch) {
  Decision d = policy_->Decide(*care_, Activity("RXK", v1::ACTIVITY_KIND_DISCHARGE), mid_);
  EXPECT_EQ(d.verdict, Verdict::kDeliver);
  ASSERT_NE(d.agreement, nullptr);
  EXPECT_EQ(d.agreement->id, "DSA-DC-1");
  EXPECT_TRUE(d.withheld_reason.empty());
}

TEST_F(DecideTest, GroupMemberMatchesAndNonMemberDoesNot) {
  EXPECT_EQ(
      policy_->Decide(*care_, Activity("M85002", v1::ACTIVITY_KIND_GP_CONSULTATION), mid_).verdict,
      Verdict::kDeliver);
  // M85003 is in leeds-pcn-2, which this agreement does not name.
  Decision d = policy_->Decide(*care_, Activity("M85003", v1::ACTIVITY_KIND_GP_CONSULTATION), mid_);
  EXPECT_EQ(d.verdict, Verdict::kNotCovered);
  EXPECT_EQ(d.agreement, nullptr);
}

TEST_F(DecideTest, SiteOdsAlsoCounts) {
  EXPECT_EQ(
      policy_
          ->Decide(*care_, Activity("RAE", v1::ACTIVITY_KIND_DISCHARGE, TestNhsNumber(1), "RXK"),
                   mid_)
          .verdict,
      Verdict::kDeliver);
  EXPECT_EQ(
      policy_
          ->Decide(*care_, Activity("RAE", v1::ACTIVITY_KIND_DISCHARGE, TestNhsNumber(1), "RAE01"),
                   mid_)
          .verdict,
      Verdict::kNotCovered);
}

TEST_F(DecideTest, TypePatterns) {
  EXPECT_EQ(policy_->Decide(*care_, Referral("RXK", v1::REFERRAL_STATUS_ACCEPTED), mid_).verdict,
            Verdict::kDeliver);
  EXPECT_EQ(policy_->Decide(*care_, Referral("RXK", v1::REFERRAL_STATUS_REJECTED), mid_).verdict,
            Verdict::kNotCovered);
  // "activity.*" covers kinds this build does not know yet too, as EventTypeMatches does.
  EXPECT_EQ(
      policy_->Decide(*care_, Activity("RXK", static_cast<v1::ActivityKind>(99)), mid_).verdict,
      Verdict::kDeliver);
  v1::Event no_body;
  no_body.mutable_envelope()->set_publisher_ods("RXK");
  EXPECT_EQ(policy_->Decide(*care_, no_body, mid_).verdict, Verdict::kNotCovered);
  // "*" covers everything, including an event without a body.
  EXPECT_EQ(policy_->Decide(*feed_, no_body, mid_).verdict, Verdict::kDeliver);
}

TEST_F(DecideTest, WildcardSourceCoversUnknownPublishers) {
  Decision d = policy_->Decide(*feed_, Activity("ZZZ99", v1::ACTIVITY_KIND_AE_ATTENDANCE), mid_);
  EXPECT_EQ(d.verdict, Verdict::kDeliver);
  EXPECT_EQ(d.agreement->id, "DSA-SEC-1");
}

TEST_F(DecideTest, PurposeSeparatesSubscriptionsOfOneSubscriber) {
  // ics has only a secondary-use agreement: its direct-care subscription receives nothing.
  EXPECT_EQ(policy_->Decide(*ics_care_, Activity("RXK", v1::ACTIVITY_KIND_DISCHARGE), mid_).verdict,
            Verdict::kNotCovered);
}

TEST_F(DecideTest, ValidityBoundariesAreInclusiveDays) {
  const v1::Event event = Activity("RXK", v1::ACTIVITY_KIND_DISCHARGE);
  const auto first = At("2026-01-01T00:00:00Z");
  const auto end = At("2027-01-01T00:00:00Z");  // valid_until 2026-12-31 includes the whole day
  EXPECT_EQ(policy_->Decide(*care_, event, first).verdict, Verdict::kDeliver);
  EXPECT_EQ(policy_->Decide(*care_, event, end - std::chrono::nanoseconds(1)).verdict,
            Verdict::kDeliver);
  Decision before = policy_->Decide(*care_, event, first - std::chrono::nanoseconds(1));
  EXPECT_EQ(before.verdict, Verdict::kWithheld);
  EXPECT_EQ(before.withheld_reason, kWithheldNoValidAgreement);
  EXPECT_EQ(before.agreement, nullptr);
  Decision after = policy_->Decide(*care_, event, end);
  EXPECT_EQ(after.verdict, Verdict::kWithheld);
  EXPECT_EQ(after.withheld_reason, kWithheldNoValidAgreement);
  // An event no agreement covers is not "withheld" just because time passed.
  EXPECT_EQ(policy_->Decide(*care_, Activity("RY6", v1::ACTIVITY_KIND_DISCHARGE), end).verdict,
            Verdict::kNotCovered);
}

// The hub resolves an event's sources once (SourcesOf) and decides it for every subscription with
// them: the same decisions as from the event alone, and sources of another PolicySet (a reload)
// are never taken for this one's.
TEST_F(DecideTest, ResolvedSourcesDecideAsTheEventAndOnlyForTheirOwnPolicySet) {
  v1::Event at_site = Activity("RY6", v1::ACTIVITY_KIND_DISCHARGE, TestNhsNumber(10), "RXK01");
  const std::vector<v1::Event> events = {
      Activity("RXK", v1::ACTIVITY_KIND_DISCHARGE), Activity("RY6", v1::ACTIVITY_KIND_DISCHARGE),
      Activity("RXK", v1::ACTIVITY_KIND_DISCHARGE, TestNhsNumber(20)), at_site,
      Referral("RXK", v1::REFERRAL_STATUS_SENT)};
  for (const auto* sub : {care_, feed_, ics_care_}) {
    for (const auto& event : events) {
      const Decision direct = policy_->Decide(*sub, event, mid_);
      const Decision resolved = policy_->Decide(*sub, event, policy_->SourcesOf(event), mid_);
      EXPECT_EQ(direct.verdict, resolved.verdict);
      EXPECT_EQ(direct.agreement, resolved.agreement);
      EXPECT_EQ(direct.withheld_reason, resolved.withheld_reason);
    }
  }
  const auto reloaded = testing::MustLoad(testing::BasePolicyYaml(), dir_);
  ASSERT_NE(reloaded, nullptr);
  ASSERT_NE(reloaded->id(), policy_->id());
  const v1::Event covered = Activity("RXK", v1::ACTIVITY_KIND_DISCHARGE);
  const v1::Event not_covered = Activity("RY6", v1::ACTIVITY_KIND_DISCHARGE);
  ASSERT_EQ(policy_->Decide(*care_, covered, mid_).verdict, Verdict::kDeliver);
  ASSERT_EQ(policy_->Decide(*care_, not_covered, mid_).verdict, Verdict::kNotCovered);
  // The reloaded policy's sources of a covered event, offered with another event: resolved again.
  EXPECT_EQ(policy_->Decide(*care_, not_covered, reloaded->SourcesOf(covered), mid_).verdict,
            Verdict::kNotCovered);
}

TEST_F(DecideTest, OptOutWithholdsSecondaryUseOnly) {
  const v1::Event event = Activity("RXK", v1::ACTIVITY_KIND_DISCHARGE, TestNhsNumber(20));
  Decision secondary = policy_->Decide(*feed_, event, mid_);
  EXPECT_EQ(secondary.verdict, Verdict::kWithheld);
  EXPECT_EQ(secondary.withheld_reason, kWithheldOptOut);
  ASSERT_NE(secondary.agreement, nullptr);
  EXPECT_EQ(secondary.agreement->id, "DSA-SEC-1");
  EXPECT_EQ(policy_->Decide(*care_, event, mid_).verdict, Verdict::kDeliver);
}

TEST_F(DecideTest, OptOutOfMergedPatientWithholds) {
  v1::Event merge = Activity("RXK", v1::ACTIVITY_KIND_PATIENT_MERGE, TestNhsNumber(21));
  merge.mutable_activity()->mutable_merged_patient()->set_nhs_number(TestNhsNumber(20));
  Decision d = policy_->Decide(*feed_, merge, mid_);
  EXPECT_EQ(d.verdict, Verdict::kWithheld);
  EXPECT_EQ(d.withheld_reason, kWithheldOptOut);
}

// Issue 21 (docs/agreements.md "Patients without an NHS number"): opt-out cannot be checked for
// an unidentified patient, so secondary use receives the event, and Redact makes it unlinkable.
TEST_F(DecideTest, UnidentifiedPatientIsDeliveredToBothPurposes) {
  v1::Event event = Activity("RXK", v1::ACTIVITY_KIND_AE_ATTENDANCE, "");
  event.mutable_envelope()->mutable_patient()->set_local_mrn("RXKU0042");
  event.mutable_envelope()->mutable_patient()->set_mrn_assigning_ods("RXK");
  event.mutable_envelope()->mutable_patient()->set_nhs_number_status("03");
  EXPECT_EQ(policy_->Decide(*feed_, event, mid_).verdict, Verdict::kDeliver);
  EXPECT_EQ(policy_->Decide(*care_, event, mid_).verdict, Verdict::kDeliver);
}

TEST_F(DecideTest, LowestIdWinsAmongValidAgreements) {
  // Two overlapping agreements for lth; the lower id wins while valid, then the other takes over.
  std::string text = testing::BasePolicyYaml();
  const std::string extra = R"(  - id: DSA-DC-0
    subscriber: lth
    purpose: direct_care
    legal_basis: "direct care"
    valid_from: 2026-01-01
    valid_until: 2026-03-31
    sources: [RXK]
    event_types: ["*"]
    patient_fields: identifiable
  - id: DSA-DC-2
    subscriber: lth
    purpose: direct_care
    legal_basis: "direct care"
    valid_from: 2026-01-01
    valid_until: 2026-12-31
    sources: [RXK]
    event_types: ["*"]
    patient_fields: identifiable
)";
  text.insert(text.find("pseudonymisation:"), extra);
  auto policy = testing::MustLoad(text, dir_);
  ASSERT_NE(policy, nullptr);
  const SubscriptionRef* care = policy->FindSubscription("lth-care");
  const v1::Event event = Activity("RXK", v1::ACTIVITY_KIND_DISCHARGE);
  EXPECT_EQ(policy->Decide(*care, event, At("2026-02-01T00:00:00Z")).agreement->id, "DSA-DC-0");
  EXPECT_EQ(policy->Decide(*care, event, At("2026-06-01T00:00:00Z")).agreement->id, "DSA-DC-1");
  // referral.rejected: only DSA-DC-2 covers it.
  EXPECT_EQ(
      policy
          ->Decide(*care, Referral("RXK", v1::REFERRAL_STATUS_REJECTED), At("2026-06-01T00:00:00Z"))
          .agreement->id,
      "DSA-DC-2");
}

TEST_F(DecideTest, MayReceiveIsATimeIndependentHint) {
  EXPECT_TRUE(policy_->MayReceive(*care_, "RXK", "activity.discharge"));
  EXPECT_TRUE(policy_->MayReceive(*care_, "M85001", "referral.accepted"));
  EXPECT_FALSE(policy_->MayReceive(*care_, "M85001", "referral.rejected"));
  EXPECT_FALSE(policy_->MayReceive(*care_, "RY6", "activity.discharge"));
  EXPECT_TRUE(policy_->MayReceive(*care_, "RY6", "activity.discharge", "RXK"));
  EXPECT_FALSE(policy_->MayReceive(*ics_care_, "RXK", "activity.discharge"));
  EXPECT_TRUE(policy_->MayReceive(*feed_, "ANY", "something.new"));
  EXPECT_FALSE(policy_->MayReceive(*care_, "RXK", "something.new"));
}

TEST_F(DecideTest, SubscriptionsShareAViewOnlyWithTheSameSubscriberAndPurpose) {
  // A second direct-care feed of lth, and one of ics: only the first decides as lth-care does.
  std::string text = testing::BasePolicyYaml();
  const std::string lth_subs = "      - {id: lth-care, purpose: direct_care}\n";
  text.insert(text.find(lth_subs) + lth_subs.size(),
              "      - {id: lth-care-standby, purpose: direct_care}\n"
              "      - {id: lth-research, purpose: secondary_use}\n");
  auto policy = testing::MustLoad(text, dir_);
  ASSERT_NE(policy, nullptr);
  const SubscriptionRef* care = policy->FindSubscription("lth-care");
  const SubscriptionRef* standby = policy->FindSubscription("lth-care-standby");
  const SubscriptionRef* research = policy->FindSubscription("lth-research");
  const SubscriptionRef* ics_care = policy->FindSubscription("ics-care");
  const SubscriptionRef* ics_feed = policy->FindSubscription("ics-feed");
  ASSERT_TRUE(care && standby && research && ics_care && ics_feed);
  ASSERT_TRUE(policy->ViewOf(*care).has_value());
  EXPECT_EQ(policy->ViewOf(*care), policy->ViewOf(*standby));
  EXPECT_NE(policy->ViewOf(*care), policy->ViewOf(*research));  // same subscriber, other purpose
  EXPECT_NE(policy->ViewOf(*care), policy->ViewOf(*ics_care));  // same purpose, other subscriber
  EXPECT_NE(policy->ViewOf(*ics_care), policy->ViewOf(*ics_feed));
  // A subscription kept from an older PolicySet is looked up by id; an unknown one has no view.
  EXPECT_EQ(policy->ViewOf(*care_), policy->ViewOf(*care));
  SubscriptionRef gone{"no-such-feed", "lth", Purpose::kDirectCare, 0};
  EXPECT_FALSE(policy->ViewOf(gone).has_value());
}

TEST_F(DecideTest, ValidityNowExplainsWhy) {
  Validity ok = policy_->ValidityNow(*care_, mid_);
  EXPECT_TRUE(ok.valid);
  EXPECT_TRUE(ok.code.empty());

  Validity expired = policy_->ValidityNow(*care_, At("2027-01-01T00:00:00Z"));
  EXPECT_FALSE(expired.valid);
  EXPECT_EQ(expired.code, kValidityExpired);
  EXPECT_EQ(expired.message, "agreement DSA-DC-1 expired on 2026-12-31");

  Validity early = policy_->ValidityNow(*care_, At("2025-12-31T23:59:59Z"));
  EXPECT_FALSE(early.valid);
  EXPECT_EQ(early.code, kValidityNotYetValid);
  EXPECT_EQ(early.message, "agreement DSA-DC-1 is not valid until 2026-01-01");

  Validity none = policy_->ValidityNow(*ics_care_, mid_);
  EXPECT_FALSE(none.valid);
  EXPECT_EQ(none.code, kValidityNoAgreement);
}

TEST_F(DecideTest, SubscriptionRefFromAnOlderPolicyIsResolvedById) {
  // The hub may hold a ref across a reload; the new policy must not read it by position.
  TempDir other_dir;
  testing::WriteStandardFiles(other_dir);
  std::string text = testing::BasePolicyYaml();
  text.replace(text.find("- id: lth\n"), 10,
               "- id: aaa\n    subscriptions: [{id: aaa-1, purpose: "
               "direct_care}]\n  - id: lth\n");
  auto reloaded = testing::MustLoad(text, other_dir);
  ASSERT_NE(reloaded, nullptr);
  const v1::Event event = Activity("RXK", v1::ACTIVITY_KIND_DISCHARGE);
  Decision d = reloaded->Decide(*care_, event, mid_);
  EXPECT_EQ(d.verdict, Verdict::kDeliver);
  EXPECT_EQ(d.agreement->id, "DSA-DC-1");
  EXPECT_GE(d.agreement, reloaded->agreements().data());
  EXPECT_LT(d.agreement, reloaded->agreements().data() + reloaded->agreements().size());

  SubscriptionRef unknown;
  unknown.id = "not-there";
  EXPECT_EQ(reloaded->Decide(unknown, event, mid_).verdict, Verdict::kNotCovered);
  EXPECT_FALSE(reloaded->MayReceive(unknown, "RXK", "activity.discharge"));
}

}  // namespace
}  // namespace carehub::policy
