#include "carehub/policy/agreement.h"

namespace carehub::policy {

std::string_view PurposeName(Purpose purpose) {
  switch (purpose) {
    case Purpose::kDirectCare:
      return "direct_care";
    case Purpose::kSecondaryUse:
      return "secondary_use";
  }
  return "unknown";
}

std::string_view FieldLevelName(FieldLevel level) {
  switch (level) {
    case FieldLevel::kIdentifiable:
      return "identifiable";
    case FieldLevel::kPseudonymised:
      return "pseudonymised";
  }
  return "unknown";
}

bool ParsePurpose(std::string_view name, Purpose* out) {
  if (name == "direct_care") {
    *out = Purpose::kDirectCare;
    return true;
  }
  if (name == "secondary_use") {
    *out = Purpose::kSecondaryUse;
    return true;
  }
  return false;
}

bool ParseFieldLevel(std::string_view name, FieldLevel* out) {
  if (name == "identifiable") {
    *out = FieldLevel::kIdentifiable;
    return true;
  }
  if (name == "pseudonymised") {
    *out = FieldLevel::kPseudonymised;
    return true;
  }
  return false;
}

}  // namespace carehub::policy
