#pragma once
// "Keep the event, flag the field" (issue 21, docs/adapters.md "Acceptance rules"): an invalid or
// foreign *optional* demographic must never cost the whole event. Every adapter maps what the
// source sent, then calls ScreenDemographics, which moves each optional patient field that the
// hub's validation would refuse out of the patient and into an envelope.data_quality flag
// naming the field and the problem (the raw value kept in the flag for direct care; removed for
// secondary use by the policy). The event then validates and is shared and counted.
//
// What is screened (and so never refused): postcode, registered_gp_ods, birth_date, nhs_number
// _status. What is not: the NHS number itself (a value failing Modulus 11 stays a rejection, see
// docs/adapters.md), the event id, publisher, times and type.
//
// Pure functions on the caller's event, no I/O, thread-safe.

#include <string_view>

#include "carehub/core/clock.h"
#include "carehub/v1/event.pb.h"

namespace carehub::adapters {

// Stable problem codes carried in DataQualityFlag.problem.
inline constexpr std::string_view kDqNotUkPostcode = "not_uk_postcode";
inline constexpr std::string_view kDqNotOdsCode = "not_ods_code";
inline constexpr std::string_view kDqImpreciseDate = "imprecise_date";
inline constexpr std::string_view kDqInvalidDate = "invalid_date";
inline constexpr std::string_view kDqUnknownCode = "unknown_code";

// Appends a flag to `envelope` (the adapter found something it could not use in `field`).
void FlagField(v1::Envelope* envelope, std::string_view field, std::string_view problem,
               std::string_view raw_value);

// Screens `envelope->patient()` as described above; `prefix` names the patient in flags
// ("patient", or "activity.merged_patient" for the A40 prior record, whose flags also go on
// `envelope`). `now` is the validation clock (a birth date after it is invalid).
void ScreenDemographics(v1::Envelope* envelope, v1::Patient* patient, std::string_view prefix,
                        Clock::TimePoint now);

// Screens the envelope patient and an A40 merged patient of `event`.
void ScreenEvent(v1::Event* event, Clock::TimePoint now);

}  // namespace carehub::adapters
