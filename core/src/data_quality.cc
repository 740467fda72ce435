#include "carehub/core/data_quality.h"

#include <string>

#include "carehub/core/validation.h"

namespace carehub {
namespace {

bool NationalCodeSystem(std::string_view system) {
  return system == "http://snomed.info/sct" || system == "ICD-10" || system == "OPCS-4";
}

template <typename Codes>
bool AllNational(const Codes& codes) {
  for (const auto& code : codes) {
    if (!NationalCodeSystem(code.system())) {
      return false;
    }
  }
  return true;
}

// One definition for both representations of an event (event_view.h).
template <typename Event>
DataQualityMeasures Measure(const Event& event) {
  const auto& env = event.envelope();
  const auto& p = env.patient();
  DataQualityMeasures m;
  const bool has_number = !p.nhs_number().empty() || !p.pseudonym().empty();
  m.verified_nhs_number = has_number && (p.nhs_number_status().empty() ||
                                         IsVerifiedNhsNumberStatus(p.nhs_number_status()));
  m.valid_postcode = !p.postcode().empty();
  const std::string_view gp = p.registered_gp_ods();
  m.valid_practice = IsValidOdsCode(gp) && gp != "V81997" && gp != "V81998" && gp != "V81999";
  m.valid_codes = true;
  for (const auto& flag : env.data_quality()) {
    if (flag.problem() == "unknown_code") {
      m.valid_codes = false;
    }
  }
  if (event.has_activity()) {
    m.valid_codes = m.valid_codes && AllNational(event.activity().diagnoses()) &&
                    AllNational(event.activity().procedures());
  } else if (event.has_referral()) {
    m.valid_codes = m.valid_codes && AllNational(event.referral().reasons());
  }
  return m;
}

}  // namespace

DataQualityMeasures MeasureDataQuality(const v1::Event& event) { return Measure(event); }

DataQualityMeasures MeasureDataQuality(const EventView& event) { return Measure(event); }

std::optional<int64_t> TimelinessSeconds(const v1::Event& event) {
  const v1::Envelope& env = event.envelope();
  if (!env.has_received_at() || !env.has_occurred_at()) {
    return std::nullopt;
  }
  return env.received_at().seconds() - env.occurred_at().seconds();
}

}  // namespace carehub
