#pragma once
// Shared helpers for the policy tests: a temporary folder holding the secret and opt-out files a
// policy names, a base policy text, and NHS number helpers written independently of core.

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "carehub/core/clock.h"
#include "carehub/core/status.h"
#include "carehub/policy/policy_set.h"

namespace carehub::policy::testing {

// 64 hex chars = 32 bytes: the minimum secret size.
inline constexpr std::string_view kTestSecretHex =
    "00112233445566778899aabbccddeeff0123456789abcdef0123456789abcdef";

// Nine digits -> ten with the Modulus 11 check digit, or "" when none exists.
std::string WithCheckDigit(std::string_view nine);
// The n-th number of the synthetic 999 range that has a valid check digit.
std::string TestNhsNumber(int n);

// "2026-06-15T12:00:00Z" -> time point. Aborts the test on malformed input.
Clock::TimePoint At(std::string_view rfc3339);

// A temporary folder, removed on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  void Write(const std::string& name, std::string_view content) const;

 private:
  std::filesystem::path path_;
};

// Two subscribers over three subscriptions, a group, a secondary-use and a direct-care agreement.
// Names the files pseudonym.key and opt-out.txt (see WriteStandardFiles).
std::string BasePolicyYaml();
void WriteStandardFiles(const TempDir& dir, const std::vector<std::string>& opted_out = {});

// Loads `yaml` against `dir`, failing the test on error.
std::shared_ptr<const PolicySet> MustLoad(std::string_view yaml, const TempDir& dir);

}  // namespace carehub::policy::testing
