#include "policy_test_util.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "carehub/policy/load.h"

namespace carehub::policy::testing {

std::string WithCheckDigit(std::string_view nine) {
  int sum = 0;
  for (int i = 0; i < 9; ++i) {
    sum += (nine[i] - '0') * (10 - i);
  }
  int check = 11 - (sum % 11);
  if (check == 11) {
    check = 0;
  }
  if (check == 10) {
    return {};
  }
  return std::string(nine) + static_cast<char>('0' + check);
}

std::string TestNhsNumber(int n) {
  // Steps of 11 leave room to skip the few nine-digit stems that have no check digit.
  for (int k = n * 11;; ++k) {
    char nine[16];
    std::snprintf(nine, sizeof(nine), "999%06d", k % 1000000);
    std::string full = WithCheckDigit(nine);
    if (!full.empty()) {
      return full;
    }
  }
}

Clock::TimePoint At(std::string_view rfc3339) {
  std::tm tm{};
  std::istringstream in{std::string(rfc3339)};
  in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%S");
  EXPECT_FALSE(in.fail()) << rfc3339;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

TempDir::TempDir() {
  static std::atomic<int> counter{0};
  path_ = std::filesystem::temp_directory_path() /
          ("carehub-policy-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

void TempDir::Write(const std::string& name, std::string_view content) const {
  std::ofstream out(path_ / name, std::ios::binary | std::ios::trunc);
  out << content;
  ASSERT_TRUE(out.good()) << name;
}

std::string BasePolicyYaml() {
  return R"(organisation_groups:
  leeds-pcn-1: [M85001, M85002]
  leeds-pcn-2: [M85003]
subscribers:
  - id: lth
    name: Leeds Teaching Hospitals
    subscriptions:
      - {id: lth-care, purpose: direct_care}
  - id: ics
    subscriptions:
      - {id: ics-feed, purpose: secondary_use}
      - {id: ics-care, purpose: direct_care}
agreements:
  - id: DSA-SEC-1
    subscriber: ics
    purpose: secondary_use
    legal_basis: "UK GDPR 6(1)(e), 9(2)(h); COPI"
    valid_from: 2026-01-01
    valid_until: 2026-12-31
    sources: ["*"]
    event_types: ["*"]
    patient_fields: pseudonymised
  - id: DSA-DC-1
    subscriber: lth
    purpose: direct_care
    legal_basis: "UK GDPR 6(1)(e), 9(2)(h); direct care"
    valid_from: 2026-01-01
    valid_until: 2026-12-31
    sources: [RXK, "group:leeds-pcn-1"]
    event_types: ["activity.*", "referral.accepted"]
    patient_fields: identifiable
pseudonymisation:
  secret_file: pseudonym.key
opt_out:
  file: opt-out.txt
)";
}

void WriteStandardFiles(const TempDir& dir, const std::vector<std::string>& opted_out) {
  dir.Write("pseudonym.key", "# test secret\n" + std::string(kTestSecretHex) + "\n");
  std::string list = "# national data opt-out (test)\n";
  for (const std::string& nhs : opted_out) {
    list += nhs + "\n";
  }
  dir.Write("opt-out.txt", list);
}

std::shared_ptr<const PolicySet> MustLoad(std::string_view yaml, const TempDir& dir) {
  auto loaded = LoadPolicyFromString(yaml, dir.path());
  EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();
  return loaded.ok() ? loaded.value() : nullptr;
}

}  // namespace carehub::policy::testing
