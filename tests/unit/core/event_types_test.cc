#include "carehub/core/event_types.h"

#include <gtest/gtest.h>

namespace carehub {
namespace {

TEST(EventTypeNameTest, ActivityUsesLowerCaseKind) {
  v1::Event event;
  event.mutable_activity()->set_kind(v1::ACTIVITY_KIND_EMERGENCY_ADMISSION);
  EXPECT_EQ(EventTypeName(event), "activity.emergency_admission");
  event.mutable_activity()->set_kind(v1::ACTIVITY_KIND_AE_ATTENDANCE);
  EXPECT_EQ(EventTypeName(event), "activity.ae_attendance");
}

TEST(EventTypeNameTest, ReferralUsesLowerCaseStatus) {
  v1::Event event;
  event.mutable_referral()->set_status(v1::REFERRAL_STATUS_ACCEPTED);
  EXPECT_EQ(EventTypeName(event), "referral.accepted");
}

TEST(EventTypeNameTest, NoBodyIsUnknown) { EXPECT_EQ(EventTypeName(v1::Event()), "unknown"); }

TEST(EventTypeNameTest, NamesRoundTripThroughParse) {
  for (int i = v1::ActivityKind_MIN; i <= v1::ActivityKind_MAX; ++i) {
    const auto kind = static_cast<v1::ActivityKind>(i);
    v1::ActivityKind parsed = v1::ACTIVITY_KIND_UNSPECIFIED;
    ASSERT_TRUE(ParseActivityKind(ActivityKindName(kind), &parsed)) << ActivityKindName(kind);
    EXPECT_EQ(parsed, kind);
  }
  for (int i = v1::ReferralStatus_MIN; i <= v1::ReferralStatus_MAX; ++i) {
    const auto status = static_cast<v1::ReferralStatus>(i);
    v1::ReferralStatus parsed = v1::REFERRAL_STATUS_UNSPECIFIED;
    ASSERT_TRUE(ParseReferralStatus(ReferralStatusName(status), &parsed));
    EXPECT_EQ(parsed, status);
  }
  v1::ActivityKind kind;
  EXPECT_FALSE(ParseActivityKind("not_a_kind", &kind));
  v1::ReferralStatus status;
  EXPECT_FALSE(ParseReferralStatus("lost", &status));
}

TEST(EventTypeMatchesTest, ExactWildcardAndPrefix) {
  EXPECT_TRUE(EventTypeMatches("activity.discharge", "activity.discharge"));
  EXPECT_FALSE(EventTypeMatches("activity.discharge", "activity.discharges"));
  EXPECT_TRUE(EventTypeMatches("*", "referral.seen"));
  EXPECT_TRUE(EventTypeMatches("activity.*", "activity.gp_consultation"));
  EXPECT_FALSE(EventTypeMatches("activity.*", "referral.sent"));
  EXPECT_TRUE(EventTypeMatches("referral.*", "referral.two"));
  EXPECT_FALSE(EventTypeMatches("referral.*", "referral"));
  EXPECT_FALSE(EventTypeMatches("", "activity.discharge"));
}

}  // namespace
}  // namespace carehub
