#pragma once
// The plain data of a loaded policy (DESIGN §6): agreements, subscribers and their subscriptions.
// Instances are created only by the loader and owned by a PolicySet; they are immutable once
// loaded, so references into a PolicySet are safe to read from any thread for as long as the
// PolicySet lives.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "carehub/core/clock.h"

namespace carehub::policy {

// Why a subscriber receives data. Decides whether the national data opt-out applies.
enum class Purpose {
  kDirectCare,    // "direct_care": identifiable, opt-out does not apply
  kSecondaryUse,  // "secondary_use": pseudonymised, opted-out patients withheld
};

// How much of the patient block leaves the hub.
enum class FieldLevel {
  kIdentifiable,   // "identifiable": the event as published
  kPseudonymised,  // "pseudonymised": see PolicySet::Redact
};

std::string_view PurposeName(Purpose purpose);           // "direct_care" / "secondary_use"
std::string_view FieldLevelName(FieldLevel level);       // "identifiable" / "pseudonymised"
bool ParsePurpose(std::string_view name, Purpose* out);  // false when unknown
bool ParseFieldLevel(std::string_view name, FieldLevel* out);

struct Agreement {
  std::string id;
  std::string subscriber;
  Purpose purpose = Purpose::kDirectCare;
  std::string legal_basis;
  std::string description;  // optional, for people
  // Valid for starts_at <= t < ends_at. A date-only valid_until ends at the following midnight UTC
  // (the whole named day is included); an RFC 3339 valid_until is itself the last valid instant.
  Clock::TimePoint starts_at;
  Clock::TimePoint ends_at;
  // valid_from / valid_until exactly as written, for messages and audit.
  std::string valid_from_text;
  std::string valid_until_text;
  // As written: ODS codes, "group:<name>" or "*".
  std::vector<std::string> sources;
  // As written: "*", "activity.*", "referral.*" or an exact type name.
  std::vector<std::string> event_types;
  FieldLevel patient_fields = FieldLevel::kIdentifiable;

  bool ValidAt(Clock::TimePoint t) const { return starts_at <= t && t < ends_at; }
};

// A subscription a subscriber may open, with the one purpose it serves. Obtained from
// PolicySet::FindSubscription; it lives as long as that PolicySet, so keep the shared_ptr while using
// it. Passed to a newer PolicySet (after a reload), it is looked up again by id.
struct SubscriptionRef {
  std::string id;
  std::string subscriber;
  Purpose purpose = Purpose::kDirectCare;
  // Position inside the owning PolicySet; lets the hot path avoid string lookups.
  uint32_t index = 0;
};

struct Subscriber {
  std::string id;
  std::string name;  // optional, for people
  std::vector<std::string> subscriptions;
};

}  // namespace carehub::policy
