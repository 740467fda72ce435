#pragma once
// Data-quality measures of one event, the way NHS England's Data Quality Maturity Index looks at a
// provider's feed (issue 21): did it carry a verified NHS number, a valid postcode, a valid
// registered practice, valid codes, and how late did it arrive. Adapters count them per publisher
// (metrics), carehub-analytics tabulates them per publisher in its report, and the demo's ground
// truth goes through the same definitions. They work on an event as published *or* as delivered
// under a pseudonymised agreement (a postcode district, a pseudonym instead of the number), so
// secondary use can measure quality without identifiers.
//
// Pure functions, thread-safe.

#include <cstdint>
#include <optional>
#include <string_view>

#include "carehub/core/event_view.h"
#include "carehub/v1/event.pb.h"

namespace carehub {

struct DataQualityMeasures {
  // An NHS number (or, after redaction, its pseudonym) whose status is 01 "present and verified"
  // or not stated (most PAS do not send PID-32; the number passed Modulus 11).
  bool verified_nhs_number = false;
  // A UK postcode (or its district after redaction); missing or foreign counts as not valid.
  bool valid_postcode = false;
  // A registered practice ODS code, other than the national "no/unknown practice" codes V81997,
  // V81998 and V81999.
  bool valid_practice = false;
  // No data-quality flag of problem unknown_code, and every diagnosis, procedure and reason in a
  // national code system (SNOMED CT, ICD-10, OPCS-4).
  bool valid_codes = false;
};

DataQualityMeasures MeasureDataQuality(const v1::Event& event);
DataQualityMeasures MeasureDataQuality(const EventView& event);

// received_at - occurred_at in seconds; nullopt when either is unset. May be negative (a
// planned event published ahead of time).
std::optional<int64_t> TimelinessSeconds(const v1::Event& event);

}  // namespace carehub
