#pragma once
// A loaded, validated data-sharing policy (DESIGN §6): which subscription receives which event,
// under which agreement, and what of the patient block it may see.
//
// Thread-safety: a PolicySet is immutable after loading and is shared as
// std::shared_ptr<const PolicySet>. Every method is const and safe to call from many threads at
// once without synchronisation. A reload builds a new PolicySet; holders of the old one keep using
// it until they drop their pointer, so one delivery is always decided under one consistent policy.
//
// The hot-path methods (MayReceive, Decide, Redact, IsOptedOut) do no YAML work, no allocation on
// the common path and no string-keyed map walks: everything is compiled into indices and bitsets at
// load.

#include <cstddef>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "carehub/core/clock.h"
#include "carehub/policy/agreement.h"
#include "carehub/v1/event.pb.h"

namespace carehub::policy {

// Stable withheld reason codes (metrics labels, audit records).
inline constexpr std::string_view kWithheldOptOut = "national_data_opt_out";
inline constexpr std::string_view kWithheldNoValidAgreement = "no_valid_agreement";

// Stable codes for Validity::code (the hub sends them to subscribers in a Notice).
inline constexpr std::string_view kValidityNoAgreement = "no_agreement";
inline constexpr std::string_view kValidityExpired = "agreement_expired";
inline constexpr std::string_view kValidityNotYetValid = "agreement_not_yet_valid";

enum class Verdict {
  kDeliver,     // send it, redacted with `agreement`
  kNotCovered,  // no agreement of the subscription covers this source and type: skip silently
  kWithheld,    // covered, but must not go out; counted and audited under `withheld_reason`
};

struct Decision {
  Verdict verdict = Verdict::kNotCovered;
  // kDeliver: the agreement to deliver (and redact) under. kWithheld for opt-out: the agreement
  // that would have applied. Otherwise null. Points into the PolicySet that decided.
  const Agreement* agreement = nullptr;
  // kWithheld only: kWithheldOptOut or kWithheldNoValidAgreement.
  std::string_view withheld_reason;
};

// Whether a subscription has any agreement in force, and if not, why (for a subscriber Notice).
struct Validity {
  bool valid = false;
  std::string code;     // empty when valid; otherwise one of the kValidity* codes
  std::string message;  // "agreement DSA-1 expired on 2025-12-31"
};

// An event's publisher, site and type as one PolicySet's decisions look them up, resolved once per
// event rather than once per subscription it is decided for (PolicySet::SourcesOf). Tied to the
// PolicySet that resolved it (`policy_id`): another PolicySet resolves the event again.
struct EventSources {
  uint64_t policy_id = 0;  // PolicySet::id() of the resolver; 0: not resolved
  int64_t publisher = -1;  // compiled ODS code ids; -1: a code no agreement names
  int64_t site = -1;
  uint64_t type_bit = 0;
};

namespace internal {
struct Compiled;
}  // namespace internal

class PolicySet {
 public:
  // Built only by the loader (load.h).
  explicit PolicySet(std::unique_ptr<internal::Compiled> compiled);
  ~PolicySet();
  PolicySet(const PolicySet&) = delete;
  PolicySet& operator=(const PolicySet&) = delete;

  // Unique among the PolicySets of this process (a reload's new one never has an old one's id,
  // even at the same address): what EventSources are tied to.
  uint64_t id() const { return id_; }

  // The subscription with this id, or null when no subscriber lists it.
  const SubscriptionRef* FindSubscription(std::string_view id) const;
  // The subscriber with this id, or null.
  const Subscriber* FindSubscriber(std::string_view id) const;
  // Agreements of the subscription's subscriber with the subscription's purpose, sorted by id,
  // whatever their validity dates.
  std::vector<const Agreement*> AgreementsFor(const SubscriptionRef& subscription) const;

  // The subscription's view: equal for two subscriptions exactly when every Decide and Redact of
  // this PolicySet treats them alike (the same subscriber and purpose, hence the same agreements),
  // so the hub may decide and encode a batch once for both (hub/src/subscribe_server.cc). Empty
  // for a subscription this PolicySet does not list.
  std::optional<uint32_t> ViewOf(const SubscriptionRef& subscription) const;

  // Cheap, time-independent routing hint: false when no agreement of the subscription can ever
  // cover an event of this publisher and type, so the hub may skip it without decoding further.
  // Exact (never false for an event Decide would deliver) when `site_ods` is passed too.
  bool MayReceive(const SubscriptionRef& subscription, std::string_view publisher_ods,
                  std::string_view event_type, std::string_view site_ods = {}) const;

  // The decision for one event and one subscription at `now`. An event is covered when an agreement
  // of the subscription covers its publisher_ods or site_ods (directly, via a group or "*") and its
  // type; among covering agreements valid at `now` the lowest id wins. Secondary use withholds
  // patients (or merged patients) on the national data opt-out list.
  Decision Decide(const SubscriptionRef& subscription, const v1::Event& event,
                  Clock::TimePoint now) const;
  // The same, with the event's sources resolved beforehand by SourcesOf: the hub decides each
  // event for every live subscription, and the ODS codes' lookups were ~6% of its delivery thread
  // done once per subscription (docs/performance.md). Sources resolved by another PolicySet are
  // resolved again, never used.
  EventSources SourcesOf(const v1::Event& event) const;
  Decision Decide(const SubscriptionRef& subscription, const v1::Event& event,
                  const EventSources& sources, Clock::TimePoint now) const;

  // Applies the agreement's field level to `event` in place. Identifiable: unchanged.
  // Pseudonymised: the NHS number becomes a per-agreement keyed pseudonym (hex HMAC-SHA256); names,
  // address, local MRN and free-text notes are cleared; birth date is cut to YYYY-MM and postcode
  // to its district; an A40 merged_patient is treated the same way. `agreement` must come from this
  // PolicySet.
  void Redact(const Agreement& agreement, v1::Event* event) const;
  // Whether Redact changes anything under `agreement`: false for an identifiable view, which the
  // hub then delivers as the bytes it stored.
  bool Redacts(const Agreement& agreement) const {
    return agreement.patient_fields != FieldLevel::kIdentifiable;
  }

  // True when the NHS number is on the national data opt-out list.
  bool IsOptedOut(std::string_view nhs_number) const;

  // Whether any agreement of the subscription is valid at `now`, and why not.
  Validity ValidityNow(const SubscriptionRef& subscription, Clock::TimePoint now) const;

  const std::vector<Agreement>& agreements() const;  // sorted by id
  const std::vector<Subscriber>& subscribers() const;
  const std::map<std::string, std::vector<std::string>>& organisation_groups() const;
  size_t opt_out_count() const;
  const std::filesystem::path& source() const;  // the YAML file, or empty for LoadPolicyFromString
  // Identifies the pseudonymisation secret without revealing it (first bytes of a BLAKE2b hash),
  // so an audit record can show that pseudonyms changed across a reload.
  const std::string& secret_fingerprint() const;

  // Multi-line summary for the audit log and `carehubctl`: counts, then one line per agreement.
  // Contains no secret material and no NHS numbers.
  std::string Describe() const;

  // Internal compiled form, for the policy library's own implementation files.
  const internal::Compiled& compiled() const { return *compiled_; }

 private:
  std::unique_ptr<internal::Compiled> compiled_;
  uint64_t id_;
};

}  // namespace carehub::policy
