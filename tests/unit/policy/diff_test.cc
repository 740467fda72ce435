#include "carehub/policy/diff.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "policy_test_util.h"

namespace carehub::policy {
namespace {

using testing::TempDir;
using testing::TestNhsNumber;

std::vector<std::string> Lines(const std::vector<PolicyChange>& changes) {
  std::vector<std::string> lines;
  for (const PolicyChange& change : changes) {
    lines.push_back(change.ToString());
  }
  return lines;
}

void Replace(std::string* text, const std::string& from, const std::string& to) {
  const auto pos = text->find(from);
  ASSERT_NE(pos, std::string::npos) << from;
  text->replace(pos, from.size(), to);
}

TEST(DiffPoliciesTest, IdenticalPoliciesHaveNoChanges) {
  TempDir dir;
  testing::WriteStandardFiles(dir, {TestNhsNumber(1)});
  auto a = testing::MustLoad(testing::BasePolicyYaml(), dir);
  auto b = testing::MustLoad(testing::BasePolicyYaml(), dir);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_TRUE(DiffPolicies(*a, *b).empty());
}

TEST(DiffPoliciesTest, ReportsAddedRemovedAndChanged) {
  TempDir before_dir;
  testing::WriteStandardFiles(before_dir, {TestNhsNumber(1), TestNhsNumber(2)});
  auto before = testing::MustLoad(testing::BasePolicyYaml(), before_dir);

  TempDir after_dir;
  testing::WriteStandardFiles(after_dir, {TestNhsNumber(2), TestNhsNumber(3), TestNhsNumber(4)});
  after_dir.Write("pseudonym.key", std::string(64, 'a'));
  std::string text = testing::BasePolicyYaml();
  Replace(&text, "id: DSA-SEC-1", "id: DSA-SEC-2");
  Replace(&text, "valid_until: 2026-12-31\n    sources: [RXK",
          "valid_until: 2027-12-31\n"
          "    sources: [RXK");
  Replace(&text, "leeds-pcn-1: [M85001, M85002]", "leeds-pcn-1: [M85001, M85002, M85004]");
  auto after = testing::MustLoad(text, after_dir);
  ASSERT_NE(before, nullptr);
  ASSERT_NE(after, nullptr);

  const std::vector<std::string> lines = Lines(DiffPolicies(*before, *after));
  const std::vector<std::string> expected = {
      "changed agreement DSA-DC-1: valid_until 2026-12-31 -> 2027-12-31; effective_sources "
      "[M85001, M85002, RXK] -> [M85001, M85002, M85004, RXK]",
      "removed agreement DSA-SEC-1",
      "added agreement DSA-SEC-2",
      "changed organisation_group leeds-pcn-1: members [M85001, M85002] -> [M85001, M85002, "
      "M85004]",
      "changed opt_out national_data_opt_out: 2 -> 3 NHS numbers (+2 -1)",
      "changed pseudonym_secret secret_file: fingerprint " + before->secret_fingerprint() + " -> " +
          after->secret_fingerprint() + "; every pseudonym changes",
  };
  EXPECT_EQ(lines, expected);
  for (const std::string& line : lines) {
    EXPECT_EQ(line.find("999"), std::string::npos) << "NHS number leaked: " << line;
  }
}

TEST(DiffPoliciesTest, SecretChangeMarksPseudonymisedAgreements) {
  TempDir before_dir;
  testing::WriteStandardFiles(before_dir);
  TempDir after_dir;
  testing::WriteStandardFiles(after_dir);
  after_dir.Write("pseudonym.key", std::string(64, 'b'));
  auto before = testing::MustLoad(testing::BasePolicyYaml(), before_dir);
  auto after = testing::MustLoad(testing::BasePolicyYaml(), after_dir);
  ASSERT_NE(before, nullptr);
  ASSERT_NE(after, nullptr);
  const std::vector<std::string> lines = Lines(DiffPolicies(*before, *after));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "changed agreement DSA-SEC-1: pseudonym key changed");
  EXPECT_EQ(lines[1].rfind("changed pseudonym_secret", 0), 0u);
}

}  // namespace
}  // namespace carehub::policy
