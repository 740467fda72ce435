#include "carehub/policy/load.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "policy_test_util.h"

namespace carehub::policy {
namespace {

using testing::BasePolicyYaml;
using ::testing::HasSubstr;
using testing::TempDir;
using testing::TestNhsNumber;
using testing::WriteStandardFiles;

// The base policy with one piece of text replaced (which must occur exactly once).
std::string Edited(const std::string& from, const std::string& to) {
  std::string yaml = BasePolicyYaml();
  const auto pos = yaml.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  EXPECT_EQ(yaml.find(from, pos + 1), std::string::npos) << "ambiguous edit: " << from;
  if (pos != std::string::npos) {
    yaml.replace(pos, from.size(), to);
  }
  return yaml;
}

TEST(LoadPolicyTest, LoadsBasePolicy) {
  TempDir dir;
  WriteStandardFiles(dir, {TestNhsNumber(1), TestNhsNumber(2)});
  auto loaded = LoadPolicyFromString(BasePolicyYaml(), dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const PolicySet& policy = *loaded.value();
  ASSERT_EQ(policy.agreements().size(), 2u);
  // Sorted by id whatever the file order.
  EXPECT_EQ(policy.agreements()[0].id, "DSA-DC-1");
  EXPECT_EQ(policy.agreements()[1].id, "DSA-SEC-1");
  EXPECT_EQ(policy.opt_out_count(), 2u);
  EXPECT_TRUE(policy.IsOptedOut(TestNhsNumber(1)));
  EXPECT_FALSE(policy.IsOptedOut(TestNhsNumber(3)));
  EXPECT_FALSE(policy.IsOptedOut("not-a-number"));

  const SubscriptionRef* feed = policy.FindSubscription("ics-feed");
  ASSERT_NE(feed, nullptr);
  EXPECT_EQ(feed->subscriber, "ics");
  EXPECT_EQ(feed->purpose, Purpose::kSecondaryUse);
  EXPECT_EQ(policy.FindSubscription("nope"), nullptr);
  const Subscriber* lth = policy.FindSubscriber("lth");
  ASSERT_NE(lth, nullptr);
  EXPECT_EQ(lth->name, "Leeds Teaching Hospitals");
  EXPECT_EQ(lth->subscriptions, std::vector<std::string>{"lth-care"});

  auto for_feed = policy.AgreementsFor(*feed);
  ASSERT_EQ(for_feed.size(), 1u);
  EXPECT_EQ(for_feed[0]->id, "DSA-SEC-1");
  // ics has a direct-care subscription but no direct-care agreement.
  EXPECT_TRUE(policy.AgreementsFor(*policy.FindSubscription("ics-care")).empty());

  const std::string described = policy.Describe();
  EXPECT_THAT(described, HasSubstr("2 agreements"));
  EXPECT_THAT(described, HasSubstr("agreement DSA-DC-1 subscriber=lth purpose=direct_care"));
  EXPECT_THAT(described, HasSubstr("effective_sources=[M85001, M85002, RXK]"));
  EXPECT_THAT(described, HasSubstr("2 opted-out NHS numbers"));
  EXPECT_EQ(described.find(TestNhsNumber(1)), std::string::npos);
  EXPECT_EQ(described.find(std::string(testing::kTestSecretHex)), std::string::npos);
  EXPECT_EQ(policy.secret_fingerprint().size(), 16u);
}

TEST(LoadPolicyTest, LoadPolicyResolvesFilesNextToTheYaml) {
  TempDir dir;
  WriteStandardFiles(dir, {TestNhsNumber(5)});
  dir.Write("agreements.yaml", BasePolicyYaml());
  auto loaded = LoadPolicy(dir.path() / "agreements.yaml");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded.value()->source(), dir.path() / "agreements.yaml");
  EXPECT_TRUE(loaded.value()->IsOptedOut(TestNhsNumber(5)));
}

TEST(LoadPolicyTest, MissingYamlFileIsUnreadable) {
  TempDir dir;
  auto loaded = LoadPolicy(dir.path() / "absent.yaml");
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), kErrorPolicyUnreadable);
  EXPECT_THAT(loaded.status().message(), HasSubstr("absent.yaml"));
}

TEST(LoadPolicyTest, ErrorsNameTheFileLineAgreementAndField) {
  TempDir dir;
  WriteStandardFiles(dir);
  dir.Write("agreements.yaml", Edited("valid_until: 2026-12-31\n    sources: [RXK",
                                      "valid_until: 2025-12-31\n    sources: [RXK"));
  auto loaded = LoadPolicy(dir.path() / "agreements.yaml");
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), kErrorInvalidPolicy);
  const std::string expected = (dir.path() / "agreements.yaml").string() +
                               ":28: agreement 'DSA-DC-1': valid_until 2025-12-31 is before "
                               "valid_from 2026-01-01";
  EXPECT_EQ(loaded.status().message(), expected);
  EXPECT_EQ(loaded.status().message().find('\n'), std::string::npos);
}

struct BadPolicyCase {
  const char* name;
  std::string from;
  std::string to;
  std::vector<std::string> expected;  // substrings of the one-line message
};

class BadPolicyTest : public ::testing::TestWithParam<BadPolicyCase> {};

TEST_P(BadPolicyTest, IsRefusedWithAClearMessage) {
  const BadPolicyCase& c = GetParam();
  TempDir dir;
  WriteStandardFiles(dir);
  auto loaded = LoadPolicyFromString(Edited(c.from, c.to), dir.path());
  ASSERT_FALSE(loaded.ok()) << c.name;
  EXPECT_EQ(loaded.status().code(), kErrorInvalidPolicy);
  EXPECT_THAT(loaded.status().message(), HasSubstr("<string>:"));
  for (const std::string& part : c.expected) {
    EXPECT_THAT(loaded.status().message(), HasSubstr(part));
  }
  EXPECT_EQ(loaded.status().message().find('\n'), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    Loader, BadPolicyTest,
    ::testing::Values(
        BadPolicyCase{"UnknownSubscriber",
                      "subscriber: lth\n",
                      "subscriber: lht\n",
                      {"agreement 'DSA-DC-1'", "unknown subscriber 'lht'"}},
        BadPolicyCase{"UnknownGroup",
                      "group:leeds-pcn-1\"]",
                      "group:leeds-pcn-9\"]",
                      {"agreement 'DSA-DC-1'", "sources", "unknown organisation group"}},
        BadPolicyCase{"BadOdsSource",
                      "sources: [RXK,",
                      "sources: [rx k,",
                      {"agreement 'DSA-DC-1'", "sources", "'rx k' is not an ODS code"}},
        BadPolicyCase{"DuplicateAgreementId",
                      "id: DSA-DC-1",
                      "id: DSA-SEC-1",
                      {"agreement 'DSA-SEC-1'", "duplicate agreement id"}},
        BadPolicyCase{"DuplicateSubscriberId",
                      "- id: ics\n",
                      "- id: lth\n",
                      {"subscriber 'lth'", "duplicate subscriber id"}},
        BadPolicyCase{"DuplicateSubscriptionId",
                      "{id: ics-care,",
                      "{id: lth-care,",
                      {"subscription 'lth-care'", "duplicate subscription id"}},
        BadPolicyCase{
            "DuplicateGroup", "  leeds-pcn-2: [M85003]", "  leeds-pcn-1: [M85003]", {"duplicate"}},
        BadPolicyCase{"BadDate",
                      "valid_from: 2026-01-01\n    valid_until: 2026-12-31\n    "
                      "sources: [\"*\"]",
                      "valid_from: 2026-02-30\n    valid_until: 2026-12-31\n    "
                      "sources: [\"*\"]",
                      {"agreement 'DSA-SEC-1'", "valid_from", "'2026-02-30' is not a date"}},
        BadPolicyCase{"BadTime",
                      "valid_until: 2026-12-31\n    sources: [\"*\"]",
                      "valid_until: 2026-12-31T25:00:00Z\n    sources: [\"*\"]",
                      {"agreement 'DSA-SEC-1'", "valid_until"}},
        BadPolicyCase{"TimeWithoutZone",
                      "valid_until: 2026-12-31\n    sources: [\"*\"]",
                      "valid_until: 2026-12-31T10:00:00\n    sources: [\"*\"]",
                      {"agreement 'DSA-SEC-1'", "valid_until"}},
        // Found by fuzz_agreements_yaml: a far-future date overflowed the clock's range.
        BadPolicyCase{"YearBeyondClockRange",
                      "valid_until: 2026-12-31\n    sources: [\"*\"]",
                      "valid_until: 9999-12-31\n    sources: [\"*\"]",
                      {"agreement 'DSA-SEC-1'", "valid_until", "years 1900-2200"}},
        BadPolicyCase{"UntilBeforeFrom",
                      "valid_until: 2026-12-31\n    sources: [\"*\"]",
                      "valid_until: 2025-12-31\n    sources: [\"*\"]",
                      {"agreement 'DSA-SEC-1'", "valid_until 2025-12-31 is before valid_from"}},
        BadPolicyCase{"SecondaryUseIdentifiable",
                      "event_types: [\"*\"]\n    patient_fields: pseudonymised",
                      "event_types: [\"*\"]\n    patient_fields: identifiable",
                      {"agreement 'DSA-SEC-1'", "secondary_use must be pseudonymised"}},
        BadPolicyCase{"BadFieldLevel",
                      "event_types: [\"*\"]\n    patient_fields: pseudonymised",
                      "event_types: [\"*\"]\n    patient_fields: anonymous",
                      {"agreement 'DSA-SEC-1'", "patient_fields"}},
        BadPolicyCase{"BadTypePattern",
                      "\"referral.accepted\"",
                      "\"referral.acepted\"",
                      {"agreement 'DSA-DC-1'", "event_types", "'referral.acepted'"}},
        BadPolicyCase{"MidWildcardPattern",
                      "\"activity.*\"",
                      "\"activity.gp*\"",
                      {"agreement 'DSA-DC-1'", "event_types"}},
        BadPolicyCase{
            "UppercaseTypeName", "\"referral.accepted\"", "\"referral.ACCEPTED\"", {"event_types"}},
        BadPolicyCase{"UnspecifiedTypeName",
                      "\"referral.accepted\"",
                      "\"referral.unspecified\"",
                      {"event_types"}},
        BadPolicyCase{"MissingLegalBasis",
                      "    legal_basis: \"UK GDPR 6(1)(e), 9(2)(h); COPI\"\n",
                      "",
                      {"agreement 'DSA-SEC-1'", "missing 'legal_basis'"}},
        BadPolicyCase{"EmptyLegalBasis",
                      "legal_basis: \"UK GDPR 6(1)(e), 9(2)(h); COPI\"",
                      "legal_basis: \"  \"",
                      {"agreement 'DSA-SEC-1'", "'legal_basis' is empty"}},
        BadPolicyCase{"UnknownAgreementKey",
                      "    patient_fields: identifiable\n",
                      "    patient_fields: identifiable\n    event_type: [\"*\"]\n",
                      {"agreement", "unknown key 'event_type'"}},
        BadPolicyCase{
            "UnknownTopLevelKey", "opt_out:\n", "opt_outs:\n", {"unknown key 'opt_outs'"}},
        BadPolicyCase{"UnknownSubscriptionKey",
                      "{id: lth-care, purpose: direct_care}",
                      "{id: lth-care, purpose: direct_care, filter: RXK}",
                      {"unknown key 'filter'"}},
        BadPolicyCase{"DuplicateKey",
                      "    patient_fields: identifiable\n",
                      "    patient_fields: identifiable\n    sources: [\"*\"]\n",
                      {"duplicate key 'sources'"}},
        BadPolicyCase{"BadPurpose",
                      "{id: lth-care, purpose: direct_care}",
                      "{id: lth-care, purpose: research}",
                      {"subscription 'lth-care'", "purpose"}},
        BadPolicyCase{"AgreementWithoutSubscription",
                      "subscriber: lth\n    purpose: direct_care",
                      "subscriber: lth\n    purpose: secondary_use",
                      {"agreement 'DSA-DC-1'", "has no secondary_use subscription"}},
        BadPolicyCase{"EmptySources",
                      "sources: [RXK, \"group:leeds-pcn-1\"]",
                      "sources: []",
                      {"agreement 'DSA-DC-1'", "'sources' must be a non-empty list"}},
        BadPolicyCase{"SourcesNotAList",
                      "sources: [RXK, \"group:leeds-pcn-1\"]",
                      "sources: RXK",
                      {"agreement 'DSA-DC-1'", "'sources' must be"}},
        BadPolicyCase{"MissingSecretWithPseudonymised",
                      "pseudonymisation:\n  secret_file: pseudonym.key\n",
                      "",
                      {"pseudonymisation: missing"}},
        BadPolicyCase{"MissingOptOutWithSecondaryUse",
                      "opt_out:\n  file: opt-out.txt\n",
                      "",
                      {"opt_out: missing"}},
        BadPolicyCase{"YamlSyntax", "sources: [\"*\"]", "sources: [\"*\"", {"YAML syntax error"}},
        BadPolicyCase{"GroupMemberNotOds",
                      "leeds-pcn-2: [M85003]",
                      "leeds-pcn-2: [\"M8 5003\"]",
                      {"organisation group 'leeds-pcn-2'", "not an ODS code"}}),
    [](const ::testing::TestParamInfo<BadPolicyCase>& info) { return info.param.name; });

TEST(LoadPolicyTest, UnreadableSecretFile) {
  TempDir dir;
  WriteStandardFiles(dir);
  auto loaded = LoadPolicyFromString(
      Edited("secret_file: pseudonym.key", "secret_file: missing.key"), dir.path());
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), kErrorPolicyUnreadable);
  EXPECT_THAT(loaded.status().message(), HasSubstr("missing.key"));
  EXPECT_THAT(loaded.status().message(), HasSubstr("secret_file"));
}

TEST(LoadPolicyTest, ShortOrNonHexSecretIsRefused) {
  TempDir dir;
  WriteStandardFiles(dir);
  dir.Write("pseudonym.key", "00112233445566778899aabbccddeeff\n");  // 16 bytes
  auto short_secret = LoadPolicyFromString(BasePolicyYaml(), dir.path());
  ASSERT_FALSE(short_secret.ok());
  EXPECT_THAT(short_secret.status().message(), HasSubstr("at least 32 bytes"));

  dir.Write("pseudonym.key", std::string(testing::kTestSecretHex) + "zz\n");
  auto not_hex = LoadPolicyFromString(BasePolicyYaml(), dir.path());
  ASSERT_FALSE(not_hex.ok());
  EXPECT_THAT(not_hex.status().message(), HasSubstr("as hex"));
}

TEST(LoadPolicyTest, UnreadableOptOutFile) {
  TempDir dir;
  WriteStandardFiles(dir);
  auto loaded = LoadPolicyFromString(Edited("file: opt-out.txt", "file: absent.txt"), dir.path());
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), kErrorPolicyUnreadable);
  EXPECT_THAT(loaded.status().message(), HasSubstr("absent.txt"));
}

TEST(LoadPolicyTest, InvalidNhsNumberInOptOutReportsLineWithoutEchoingIt) {
  TempDir dir;
  WriteStandardFiles(dir);
  std::string bad = TestNhsNumber(7);
  bad.back() = static_cast<char>('0' + (bad.back() - '0' + 1) % 10);  // wrong check digit
  dir.Write("opt-out.txt", "# header\n" + TestNhsNumber(1) + "\n\n" + TestNhsNumber(2) +
                               "  # inline comment\n" + bad + "\n");
  auto loaded = LoadPolicyFromString(BasePolicyYaml(), dir.path());
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), kErrorInvalidPolicy);
  EXPECT_THAT(loaded.status().message(), HasSubstr("opt-out.txt:5: not a valid NHS number"));
  EXPECT_EQ(loaded.status().message().find(bad), std::string::npos);
}

TEST(LoadPolicyTest, OptOutAcceptsCommentsAndBlankLines) {
  TempDir dir;
  WriteStandardFiles(dir);
  dir.Write("opt-out.txt",
            "# header\n\n  " + TestNhsNumber(1) + "  \n" + TestNhsNumber(2) + " # inline\r\n");
  auto policy = testing::MustLoad(BasePolicyYaml(), dir);
  ASSERT_NE(policy, nullptr);
  EXPECT_EQ(policy->opt_out_count(), 2u);
  EXPECT_TRUE(policy->IsOptedOut(TestNhsNumber(2)));
}

TEST(LoadPolicyTest, DirectCareOnlyPolicyNeedsNoSecretOrOptOut) {
  TempDir dir;
  const std::string yaml = R"(subscribers:
  - id: lth
    subscriptions: [{id: lth-care, purpose: direct_care}]
agreements:
  - id: DC
    subscriber: lth
    purpose: direct_care
    legal_basis: direct care
    valid_from: 2026-01-01T00:00:00Z
    valid_until: 2026-06-30T23:59:59.5+01:00
    sources: [RXK]
    event_types: ["*"]
    patient_fields: identifiable
)";
  auto policy = testing::MustLoad(yaml, dir);
  ASSERT_NE(policy, nullptr);
  EXPECT_TRUE(policy->secret_fingerprint().empty());
  const Agreement& a = policy->agreements()[0];
  EXPECT_EQ(a.starts_at, testing::At("2026-01-01T00:00:00Z"));
  // 23:59:59.5 at +01:00 is 22:59:59.5 UTC; that instant itself is still valid.
  const auto last = testing::At("2026-06-30T22:59:59Z") + std::chrono::milliseconds(500);
  EXPECT_TRUE(a.ValidAt(last));
  EXPECT_FALSE(a.ValidAt(last + std::chrono::microseconds(1)));
}

}  // namespace
}  // namespace carehub::policy
