#pragma once
// Differences between two policies, for the audit record written when agreements are reloaded
// (DESIGN §6: "agreement changes are audited too"). Pure function; thread-safe.

#include <string>
#include <vector>

#include "carehub/policy/policy_set.h"

namespace carehub::policy {

struct PolicyChange {
  enum class Kind { kAdded, kRemoved, kChanged };
  Kind kind = Kind::kChanged;
  // "agreement", "subscription", "organisation_group", "opt_out" or "pseudonym_secret".
  std::string what;
  std::string id;
  // For kChanged: "valid_until 2026-12-31 -> 2027-12-31; sources [RXK] -> [RXK, RR8]".
  std::string detail;

  // One line: "changed agreement DSA-1: valid_until 2026-12-31 -> 2027-12-31".
  std::string ToString() const;
};

// Changes that turn `before` into `after`, agreements first, each list sorted by id. An agreement
// whose group membership changed shows as changed (its effective sources differ). Never contains
// NHS numbers or secret material (the opt-out list is summarised by counts).
std::vector<PolicyChange> DiffPolicies(const PolicySet& before, const PolicySet& after);

}  // namespace carehub::policy
