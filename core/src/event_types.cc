#include "carehub/core/event_types.h"

#include <algorithm>
#include <cctype>

namespace carehub {
namespace {

// Strips the enum's prefix and lower-cases the rest: ACTIVITY_KIND_AE_ATTENDANCE -> ae_attendance.
std::string ShortName(const std::string& full, std::string_view prefix) {
  std::string name = full.substr(std::min(full.size(), prefix.size()));
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return name;
}

std::string LongName(std::string_view prefix, std::string_view short_name) {
  std::string name(prefix);
  for (char c : short_name) {
    name.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  return name;
}

}  // namespace

std::string ActivityKindName(v1::ActivityKind kind) {
  return ShortName(v1::ActivityKind_Name(kind), "ACTIVITY_KIND_");
}

std::string ReferralStatusName(v1::ReferralStatus status) {
  return ShortName(v1::ReferralStatus_Name(status), "REFERRAL_STATUS_");
}

bool ParseActivityKind(std::string_view name, v1::ActivityKind* out) {
  return v1::ActivityKind_Parse(LongName("ACTIVITY_KIND_", name), out);
}

bool ParseReferralStatus(std::string_view name, v1::ReferralStatus* out) {
  return v1::ReferralStatus_Parse(LongName("REFERRAL_STATUS_", name), out);
}

std::string EventTypeName(const v1::Event& event) {
  switch (event.body_case()) {
    case v1::Event::kActivity:
      return "activity." + ActivityKindName(event.activity().kind());
    case v1::Event::kReferral:
      return "referral." + ReferralStatusName(event.referral().status());
    default:
      return "unknown";
  }
}

bool EventTypeMatches(std::string_view pattern, std::string_view type) {
  if (pattern == "*") {
    return true;
  }
  if (!pattern.empty() && pattern.back() == '*') {
    pattern.remove_suffix(1);
    return type.substr(0, pattern.size()) == pattern;
  }
  return pattern == type;
}

}  // namespace carehub
