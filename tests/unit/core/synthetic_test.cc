#include "carehub/core/synthetic.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <tuple>

#include "carehub/core/event_types.h"
#include "carehub/core/validation.h"

namespace carehub {
namespace {

// 2025-03-01T12:00:00Z: a fixed `now` keeps every run identical.
const Clock::TimePoint kNow{std::chrono::seconds(1'740'830'400)};

SyntheticOptions Options(uint64_t seed = 42) {
  SyntheticOptions options;
  options.seed = seed;
  options.now = kNow;
  return options;
}

TEST(SyntheticNhsNumberTest, ValidDistinctAndIncreasingAcrossTheRange) {
  std::string previous;
  for (uint32_t n = 0; n < 900'000; ++n) {
    const std::string number = SyntheticNhsNumber(n);
    ASSERT_TRUE(IsValidNhsNumber(number)) << n << " -> " << number;
    ASSERT_EQ(number.compare(0, 3, "999"), 0) << number;
    ASSERT_LT(previous, number) << n;
    previous = number;
  }
}

TEST(SyntheticNhsNumberTest, SkipsStemsWithoutACheckDigit) {
  // Stems 999000000 and 999000014 have remainder 10 and must be skipped.
  EXPECT_EQ(NhsNumberCheckDigit("999000000"), -1);
  EXPECT_EQ(NhsNumberCheckDigit("999000014"), -1);
  EXPECT_EQ(SyntheticNhsNumber(0), "9990000018");
  EXPECT_EQ(SyntheticNhsNumber(1), "9990000026");
  EXPECT_EQ(SyntheticNhsNumber(8), "9990000093");
  // The second run of ten stems starts at 999000010.
  EXPECT_EQ(SyntheticNhsNumber(9), "9990000107");
  EXPECT_EQ(SyntheticNhsNumber(12), "9990000131");
  EXPECT_EQ(SyntheticNhsNumber(13), "9990000158");
}

TEST(SyntheticNhsNumberTest, WrapsBeyondTheRange) {
  EXPECT_EQ(SyntheticNhsNumber(900'000), SyntheticNhsNumber(0));
  EXPECT_TRUE(IsValidNhsNumber(SyntheticNhsNumber(UINT32_MAX)));
}

TEST(SyntheticGeneratorTest, HundredThousandEventsAllValidateAtRealisticSize) {
  SyntheticGenerator generator(Options());
  const ValidationLimits limits;
  size_t total_bytes = 0;
  size_t min_bytes = SIZE_MAX;
  size_t max_bytes = 0;
  constexpr int kEvents = 100'000;
  for (int i = 0; i < kEvents; ++i) {
    const v1::Event event = generator.Next();
    const size_t bytes = event.ByteSizeLong();
    const Status status = ValidateEvent(event, bytes, limits, kNow);
    ASSERT_TRUE(status.ok()) << i << ": " << status.ToString() << "\n" << event.DebugString();
    total_bytes += bytes;
    min_bytes = std::min(min_bytes, bytes);
    max_bytes = std::max(max_bytes, bytes);
  }
  const double mean = static_cast<double>(total_bytes) / kEvents;
  RecordProperty("mean_encoded_bytes", std::to_string(mean));
  EXPECT_GE(mean, 250.0);
  EXPECT_LE(mean, 350.0);
  EXPECT_GE(min_bytes, 150u);
  EXPECT_LE(max_bytes, 450u);
  EXPECT_EQ(generator.generated(), static_cast<uint64_t>(kEvents));
}

TEST(SyntheticGeneratorTest, EventIdsArePrefixPlusCounter) {
  SyntheticOptions options = Options();
  options.id_prefix = "load-a-";
  SyntheticGenerator generator(options);
  EXPECT_EQ(generator.Next().envelope().event_id(), "load-a-1");
  EXPECT_EQ(generator.Next().envelope().event_id(), "load-a-2");
  EXPECT_EQ(generator.generated(), 2u);
}

TEST(SyntheticGeneratorTest, SameSeedSameEventsDifferentSeedDifferentEvents) {
  SyntheticGenerator a(Options(7));
  SyntheticGenerator b(Options(7));
  SyntheticGenerator c(Options(8));
  int differing = 0;
  for (int i = 0; i < 2000; ++i) {
    const std::string ea = a.Next().SerializeAsString();
    ASSERT_EQ(ea, b.Next().SerializeAsString()) << i;
    if (ea != c.Next().SerializeAsString()) {
      ++differing;
    }
  }
  EXPECT_GT(differing, 1900);
}

TEST(SyntheticGeneratorTest, PatientsAreStableAcrossEvents) {
  SyntheticOptions options = Options();
  options.population = 200;
  SyntheticGenerator generator(options);
  std::map<std::string, std::tuple<std::string, int, std::string, std::string>> seen;
  std::map<std::pair<std::string, std::string>, std::string> mrns;
  for (int i = 0; i < 5000; ++i) {
    const v1::Event event = generator.Next();
    const v1::Patient& p = event.envelope().patient();
    const auto attributes = std::make_tuple(p.birth_date(), static_cast<int>(p.sex()), p.postcode(),
                                            p.registered_gp_ods());
    auto [it, inserted] = seen.emplace(p.nhs_number(), attributes);
    EXPECT_EQ(it->second, attributes) << p.nhs_number();
    auto [mrn, fresh] =
        mrns.emplace(std::make_pair(p.nhs_number(), p.mrn_assigning_ods()), p.local_mrn());
    EXPECT_EQ(mrn->second, p.local_mrn());
    EXPECT_EQ(p.mrn_assigning_ods(), event.envelope().publisher_ods());
  }
  EXPECT_LE(seen.size(), 200u);
  EXPECT_GT(seen.size(), 150u);
}

TEST(SyntheticGeneratorTest, MixLooksLikeAnIntegratedCareSystem) {
  SyntheticGenerator generator(Options());
  std::map<std::string, int> types;
  std::map<std::string, int> publishers;
  std::map<v1::Lifecycle, int> lifecycles;
  int referrals = 0;
  int ubrns = 0;
  constexpr int kEvents = 20'000;
  for (int i = 0; i < kEvents; ++i) {
    const v1::Event event = generator.Next();
    const v1::Envelope& env = event.envelope();
    ++types[EventTypeName(event)];
    ++publishers[env.publisher_ods()];
    ++lifecycles[env.lifecycle()];
    if (env.publisher_ods().size() == 3) {
      EXPECT_EQ(env.site_ods(), env.publisher_ods() + "01");
    } else {
      EXPECT_EQ(env.site_ods(), env.publisher_ods());
    }
    if (env.publisher_ods().size() == 6 && event.has_activity()) {
      EXPECT_EQ(env.patient().registered_gp_ods(), env.publisher_ods())
          << "a practice records activity for its own patients";
    }
    if (event.has_referral()) {
      ++referrals;
      const v1::ReferralEvent& r = event.referral();
      EXPECT_EQ(r.performer_ods().size(), 3u) << "performer is a trust";
      EXPECT_EQ(r.requester_ods().size(), 6u) << "requester is a practice";
      if (!r.ubrn().empty()) {
        ++ubrns;
        EXPECT_EQ(r.ubrn().size(), 12u);
      }
    }
  }
  EXPECT_EQ(publishers.size(), 5u);
  EXPECT_NEAR(static_cast<double>(referrals) / kEvents, 0.3, 0.03);
  EXPECT_GT(ubrns, referrals / 2);
  EXPECT_GT(lifecycles[v1::LIFECYCLE_UPDATE], kEvents / 100);
  EXPECT_GT(lifecycles[v1::LIFECYCLE_CANCEL], kEvents / 500);
  EXPECT_GT(lifecycles[v1::LIFECYCLE_NEW], kEvents * 9 / 10);

  std::string top_activity;
  int top = 0;
  for (const auto& [type, count] : types) {
    if (type.rfind("activity.", 0) == 0 && count > top) {
      top = count;
      top_activity = type;
    }
  }
  EXPECT_EQ(top_activity, "activity.gp_consultation");
  for (const char* type :
       {"activity.ae_attendance", "activity.emergency_admission", "activity.discharge",
        "activity.outpatient_attendance", "activity.did_not_attend", "activity.community_contact",
        "activity.social_care_assessment", "referral.sent", "referral.accepted",
        "referral.booked"}) {
    EXPECT_GT(types[type], 0) << type;
  }
}

TEST(SyntheticGeneratorTest, UpdatesSupersedeAnEarlierEventOfTheSamePublisher) {
  SyntheticGenerator generator(Options());
  std::map<std::string, std::string> publisher_of;
  int corrections = 0;
  for (int i = 0; i < 5000; ++i) {
    const v1::Event event = generator.Next();
    const v1::Envelope& env = event.envelope();
    if (env.lifecycle() != v1::LIFECYCLE_NEW) {
      ++corrections;
      auto it = publisher_of.find(env.supersedes_event_id());
      ASSERT_NE(it, publisher_of.end()) << "supersedes an event never generated";
      EXPECT_EQ(it->second, env.publisher_ods());
    }
    publisher_of[env.event_id()] = env.publisher_ods();
  }
  EXPECT_GT(corrections, 0);
}

TEST(SyntheticGeneratorTest, LocalAuthorityPublishesSocialCare) {
  SyntheticOptions options = Options();
  options.publishers = {"E08000035"};
  options.referral_share = 0.0;
  SyntheticGenerator generator(options);
  for (int i = 0; i < 200; ++i) {
    const v1::Event event = generator.Next();
    EXPECT_EQ(EventTypeName(event), "activity.social_care_assessment");
    EXPECT_TRUE(ValidateEvent(event, event.ByteSizeLong(), ValidationLimits(), kNow).ok());
  }
}

TEST(SyntheticGeneratorTest, TinyPopulationStillWorks) {
  SyntheticOptions options = Options();
  options.population = 1;
  SyntheticGenerator generator(options);
  for (int i = 0; i < 100; ++i) {
    const v1::Event event = generator.Next();
    EXPECT_EQ(event.envelope().patient().nhs_number(), SyntheticNhsNumber(0));
    EXPECT_TRUE(ValidateEvent(event, event.ByteSizeLong(), ValidationLimits(), kNow).ok());
  }
}

TEST(MakeInvalidTest, EveryKindGivesTheReasonValidationReturns) {
  SyntheticGenerator generator(Options());
  const ValidationLimits limits;
  for (int i = 0; i < 300; ++i) {
    const v1::Event valid = generator.Next();
    for (int k = 0; k < kInvalidKindCount; ++k) {
      v1::Event event = valid;
      const std::string reason = generator.MakeInvalid(&event, static_cast<InvalidKind>(k));
      const Status status = ValidateEvent(event, event.ByteSizeLong(), limits, kNow);
      EXPECT_EQ(status.code(), reason) << "kind " << k << ": " << status.ToString();
    }
  }
}

TEST(MakeInvalidTest, RandomBreakageMatchesValidationAndCoversSixReasons) {
  SyntheticGenerator generator(Options(99));
  const ValidationLimits limits;
  std::set<std::string> reasons;
  for (int i = 0; i < 10'000; ++i) {
    v1::Event event = generator.Next();
    const std::string reason = generator.MakeInvalid(&event);
    const size_t bytes = event.ByteSizeLong();
    EXPECT_LT(bytes, 1024u) << "random breakage never makes oversized events";
    const Status status = ValidateEvent(event, bytes, limits, kNow);
    ASSERT_EQ(status.code(), reason) << status.ToString();
    reasons.insert(reason);
  }
  EXPECT_GE(reasons.size(), 6u);
}

}  // namespace
}  // namespace carehub
