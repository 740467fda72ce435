#pragma once
// The compiled form of a policy: what the loader builds and the hot path reads. Private to the
// policy library.

#include <sodium.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "carehub/policy/agreement.h"
#include "carehub/v1/event.pb.h"

namespace carehub::policy::internal {

// Every event falls into one type slot: one per ActivityKind value, one for activity kinds this
// build does not know, the same for ReferralStatus, and one for events without a body. Agreements
// compile their event_types patterns into a bitmask over slots, so matching a type is one AND.
inline constexpr int kActivityBase = 0;
inline constexpr int kActivityOther = kActivityBase + v1::ActivityKind_MAX + 1;
inline constexpr int kReferralBase = kActivityOther + 1;
inline constexpr int kReferralOther = kReferralBase + v1::ReferralStatus_MAX + 1;
inline constexpr int kUnknownSlot = kReferralOther + 1;
inline constexpr int kTypeSlots = kUnknownSlot + 1;
static_assert(kTypeSlots <= 64, "type slots must fit the 64-bit mask");

int TypeSlotOf(const v1::Event& event);
// The name EventTypeName gives events of this slot ("activity." for an unknown kind).
std::string TypeSlotName(int slot);
// Bitmask of the slots whose names `pattern` matches (carehub::EventTypeMatches).
uint64_t TypeMaskFor(std::string_view pattern);

struct TransparentHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using StringIndex = std::unordered_map<std::string, uint32_t, TransparentHash, std::equal_to<>>;

// Parses a 10-digit NHS number into an integer key; false for anything else.
bool NhsKey(std::string_view nhs_number, uint64_t* key);

struct CompiledAgreement {
  bool all_sources = false;
  // Bit i is set when the ODS code with id i (Compiled::ods_index) is covered.
  std::vector<uint64_t> ods_bits;
  uint64_t type_mask = 0;
  // Sources with groups expanded, sorted: what the agreement really covers (Describe, diff).
  std::vector<std::string> effective_sources;
  // HMAC-SHA256 state already keyed with this agreement's pseudonym key; copied per pseudonym so
  // the key schedule is not recomputed for every event.
  crypto_auth_hmacsha256_state keyed_hmac{};
  bool has_key = false;

  bool CoversOds(int64_t ods_id) const {
    if (ods_id < 0) {
      return false;
    }
    const auto word = static_cast<size_t>(ods_id) / 64;
    return word < ods_bits.size() && ((ods_bits[word] >> (ods_id % 64)) & 1U) != 0;
  }
};

struct Compiled {
  Compiled() = default;
  Compiled(const Compiled&) = delete;
  Compiled& operator=(const Compiled&) = delete;
  ~Compiled();  // wipes key material

  std::filesystem::path source;
  std::map<std::string, std::vector<std::string>> groups;
  std::vector<Subscriber> subscribers;  // sorted by id
  StringIndex subscriber_index;
  std::vector<SubscriptionRef> subscriptions;  // sorted by id; index == position
  StringIndex subscription_index;
  // Per subscription: indices into `agreements` (same subscriber and purpose), ascending id.
  std::vector<std::vector<uint32_t>> subscription_agreements;
  // Per subscription: the index of the first subscription with its subscriber and purpose (its
  // view, PolicySet::ViewOf).
  std::vector<uint32_t> subscription_view;
  std::vector<Agreement> agreements;                   // sorted by id
  std::vector<CompiledAgreement> compiled_agreements;  // parallel to `agreements`
  StringIndex ods_index;   // every ODS code any agreement names, directly or via a group
  StringIndex type_index;  // slot name -> slot
  std::unordered_set<uint64_t> opt_out;
  std::string secret_fingerprint;  // empty when no secret is configured

  int64_t OdsId(std::string_view ods) const {
    if (ods.empty()) {
      return -1;
    }
    auto it = ods_index.find(ods);
    return it == ods_index.end() ? -1 : static_cast<int64_t>(it->second);
  }
};

}  // namespace carehub::policy::internal
