#include "carehub/adapters/data_quality.h"

#include <string>

#include "carehub/core/validation.h"

namespace carehub::adapters {
namespace {

bool AllDigits(std::string_view s) {
  for (char c : s) {
    if (c < '0' || c > '9') {
      return false;
    }
  }
  return !s.empty();
}

// "1980" and "1980-05" are real dates known only to the year or month (HL7 DTM allows them; FHIR
// `date` too). They are reported apart from nonsense so a feed can tell "we send what we know"
// from "we send garbage".
bool IsPartialDate(std::string_view date) {
  if (date.size() == 4) {
    return AllDigits(date);
  }
  return date.size() == 7 && date[4] == '-' && AllDigits(date.substr(0, 4)) &&
         AllDigits(date.substr(5, 2));
}

// The core validator decides what a full date is (shape, calendar, range); an event with just
// this patient field set tells us without copying its rules.
bool BirthDateAccepted(const std::string& birth_date, Clock::TimePoint now) {
  v1::Event probe;
  v1::Envelope* env = probe.mutable_envelope();
  env->set_event_id("probe");
  env->set_publisher_ods("AAA");
  env->set_lifecycle(v1::LIFECYCLE_NEW);
  env->mutable_occurred_at()->set_seconds(946684800);  // 2000-01-01: valid whatever `now` is
  env->mutable_patient()->set_nhs_number("9434765919");
  env->mutable_patient()->set_birth_date(birth_date);
  probe.mutable_activity()->set_kind(v1::ACTIVITY_KIND_AE_ATTENDANCE);
  probe.mutable_activity()->set_encounter_id("probe");
  return ValidateEvent(probe, 0, ValidationLimits{}, now).ok();
}

}  // namespace

void FlagField(v1::Envelope* envelope, std::string_view field, std::string_view problem,
               std::string_view raw_value) {
  v1::DataQualityFlag* flag = envelope->add_data_quality();
  flag->set_field(std::string(field));
  flag->set_problem(std::string(problem));
  flag->set_raw_value(std::string(raw_value));
}

void ScreenDemographics(v1::Envelope* envelope, v1::Patient* patient, std::string_view prefix,
                        Clock::TimePoint now) {
  const std::string p(prefix);
  if (!patient->postcode().empty() && !IsValidUkPostcode(patient->postcode())) {
    FlagField(envelope, p + ".postcode", kDqNotUkPostcode, patient->postcode());
    patient->clear_postcode();
  }
  if (!patient->registered_gp_ods().empty() && !IsValidOdsCode(patient->registered_gp_ods())) {
    FlagField(envelope, p + ".registered_gp_ods", kDqNotOdsCode, patient->registered_gp_ods());
    patient->clear_registered_gp_ods();
  }
  if (!patient->birth_date().empty() && !BirthDateAccepted(patient->birth_date(), now)) {
    FlagField(envelope, p + ".birth_date",
              IsPartialDate(patient->birth_date()) ? kDqImpreciseDate : kDqInvalidDate,
              patient->birth_date());
    patient->clear_birth_date();
  }
  if (!patient->nhs_number_status().empty() &&
      !IsNhsNumberStatusCode(patient->nhs_number_status())) {
    FlagField(envelope, p + ".nhs_number_status", kDqUnknownCode, patient->nhs_number_status());
    patient->clear_nhs_number_status();
  }
  if (patient->nhs_number().empty() && IsVerifiedNhsNumberStatus(patient->nhs_number_status())) {
    // "Verified" without a number contradicts itself; keep the event, not the claim.
    FlagField(envelope, p + ".nhs_number_status", kDqUnknownCode, patient->nhs_number_status());
    patient->clear_nhs_number_status();
  }
}

void ScreenEvent(v1::Event* event, Clock::TimePoint now) {
  v1::Envelope* env = event->mutable_envelope();
  if (env->has_patient()) {
    ScreenDemographics(env, env->mutable_patient(), "patient", now);
  }
  if (event->has_activity() && event->activity().has_merged_patient()) {
    ScreenDemographics(env, event->mutable_activity()->mutable_merged_patient(),
                       "activity.merged_patient", now);
  }
}

}  // namespace carehub::adapters
