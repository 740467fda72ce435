#pragma once
// Event type names used by agreements and metrics (DESIGN §2): "activity.<kind>", "referral.<status>".

#include <string>
#include <string_view>

#include "carehub/v1/event.pb.h"

namespace carehub {

// "activity.emergency_admission", "referral.accepted"; "unknown" when the event has no body.
std::string EventTypeName(const v1::Event& event);
std::string ActivityKindName(v1::ActivityKind kind);    // "emergency_admission"
std::string ReferralStatusName(v1::ReferralStatus s);   // "accepted"

// Parses the short names back; false when unknown.
bool ParseActivityKind(std::string_view name, v1::ActivityKind* out);
bool ParseReferralStatus(std::string_view name, v1::ReferralStatus* out);

// True when `pattern` matches `type`: exact, "*", or a prefix wildcard such as "activity.*".
bool EventTypeMatches(std::string_view pattern, std::string_view type);

}  // namespace carehub
