#pragma once
// Loading agreements from YAML (format: docs/agreements.md). Validation is strict: any unknown key,
// dangling reference, bad date or bad pattern refuses the whole file, because a typo must never
// silently widen or narrow access. Errors are one line naming the file, the entry and the field,
// e.g.
//   config/agreements.yaml:23: agreement 'DSA-2026-ICS-001': valid_until 2025-01-01 is before
//   valid_from
// Status codes: "invalid_policy" for content, "policy_unreadable" when a file cannot be read.
//
// Thread-safe (no shared state); each call builds an independent PolicySet.

#include <filesystem>
#include <memory>
#include <string_view>

#include "carehub/core/status.h"
#include "carehub/policy/policy_set.h"

namespace carehub::policy {

inline constexpr std::string_view kErrorInvalidPolicy = "invalid_policy";
inline constexpr std::string_view kErrorPolicyUnreadable = "policy_unreadable";

// Reads `yaml`; the secret and opt-out files it names are resolved relative to its folder.
Result<std::shared_ptr<const PolicySet>> LoadPolicy(const std::filesystem::path& yaml);

// As LoadPolicy, from text; relative file names resolve against `base_dir`. Errors name "<string>".
Result<std::shared_ptr<const PolicySet>> LoadPolicyFromString(
    std::string_view yaml_text, const std::filesystem::path& base_dir);

}  // namespace carehub::policy
