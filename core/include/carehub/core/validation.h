#pragma once
// Validation of events as publishers send them (DESIGN §2). Pure functions: no I/O, thread-safe.
// Every failure is a Status whose code is a stable reason (listed below, documented in
// docs/protocol.md) and whose message names the offending field for a human.

#include <chrono>
#include <cstddef>
#include <string_view>

#include "carehub/core/clock.h"
#include "carehub/core/event_view.h"
#include "carehub/core/status.h"
#include "carehub/v1/event.pb.h"

namespace carehub {

// Stable reason codes, and what each covers:
//   missing_field       a required field is empty or unset: envelope, event_id, publisher_ods,
//                       lifecycle, occurred_at, patient, the patient's identity (an NHS number,
//                       or else a local_mrn with its mrn_assigning_ods: unidentified patients are
//                       real activity), the body, activity.encounter_id, referral.referral_id,
//                       the code of a diagnosis/procedure/reason, or a data_quality flag's field
//                       or problem.
//   invalid_nhs_number  an NHS number that is not 10 digits or fails the Modulus 11 check.
//   invalid_ods_code    publisher_ods, site_ods, mrn_assigning_ods, registered_gp_ods,
//                       requester_ods or performer_ods set but not an ODS code shape.
//   invalid_timestamp   outside google.protobuf.Timestamp's range, before limits.min_year, or
//                       activity.period_end before activity.period_start.
//   future_timestamp    occurred_at or recorded_at more than limits.max_future_skew after `now`.
//   invalid_lifecycle   UPDATE/CANCEL without supersedes_event_id or superseding itself, NEW with
//                       one, or an unknown lifecycle value.
//   invalid_event_type  activity.kind or referral.status unset or unknown (the event has no type).
//   invalid_field       a badly formed value: event_id over 128 bytes or not printable ASCII,
//                       birth_date not YYYY-MM-DD / before min_year / in the future, postcode not
//                       a UK postcode shape, ubrn not 12 digits, unknown sex or priority value, a
//                       string over max_string_bytes or not well-formed UTF-8 (proto3 strings
//                       must be: the hub could not decode the event), more than max_codes codes
//                       in a list, an nhs_number_status that is not 01-08 (or says a number
//                       is present when there is none).
//   event_too_large     serialized size over limits.max_event_bytes (checked first).
// Messages name the field, never its value, so they carry no patient identifiers.
inline constexpr std::string_view kReasonMissingField = "missing_field";
inline constexpr std::string_view kReasonInvalidNhsNumber = "invalid_nhs_number";
inline constexpr std::string_view kReasonInvalidOdsCode = "invalid_ods_code";
inline constexpr std::string_view kReasonInvalidTimestamp = "invalid_timestamp";
inline constexpr std::string_view kReasonFutureTimestamp = "future_timestamp";
inline constexpr std::string_view kReasonInvalidLifecycle = "invalid_lifecycle";
inline constexpr std::string_view kReasonInvalidEventType = "invalid_event_type";
inline constexpr std::string_view kReasonInvalidField = "invalid_field";
inline constexpr std::string_view kReasonEventTooLarge = "event_too_large";

struct ValidationLimits {
  // Serialized size of one event.
  size_t max_event_bytes = 64 * 1024;
  // How far in the future occurred_at / recorded_at may be (clock skew between systems).
  std::chrono::seconds max_future_skew{15 * 60};
  // Anything before this is a data error (e.g. a 1900 default date).
  int min_year = 1900;
  // Repeated fields (diagnoses, procedures, reasons) per event.
  int max_codes = 100;
  // Any single string field.
  size_t max_string_bytes = 4096;
};

// 10 digits; the 10th is the Modulus 11 check digit of the first nine (weights 10..2; 11 -> 0;
// 10 -> invalid). Spaces are not accepted here: adapters normalise "943 476 5919" first.
bool IsValidNhsNumber(std::string_view nhs_number);

// Computes the check digit for nine digits; returns -1 when none exists (remainder 10).
int NhsNumberCheckDigit(std::string_view first_nine_digits);

// ODS organisation code shape: 3 to 6 upper-case letters/digits starting with a letter or digit
// (trusts "RXK", sites "RXK01", practices "M85001", LAs "E08000025" also allowed up to 9 chars).
bool IsValidOdsCode(std::string_view ods);

// UK postcode shape ("LS1 4AP", "LS14AP", "ls1 4ap"): outward code A9, A99, AA9, AA99, A9A or AA9A,
// an optional single space, inward code 9AA. Shape only: not checked against the postcode file.
bool IsValidUkPostcode(std::string_view postcode);

// NHS Number Status Indicator Code: "01" to "08" (NHS Data Dictionary).
bool IsNhsNumberStatusCode(std::string_view code);
// "01": number present and verified (traced against the Personal Demographics Service).
bool IsVerifiedNhsNumberStatus(std::string_view code);

// Validates one event as received (hub fields hub_seq/received_at are ignored).
// `serialized_bytes` is the size of the event's encoding as received.
Status ValidateEvent(const v1::Event& event, size_t serialized_bytes,
                     const ValidationLimits& limits, Clock::TimePoint now);
// The same rules over a view of the event (event_view.h): the hub's ingest path, which reads events
// in place.
Status ValidateEvent(const EventView& event, size_t serialized_bytes,
                     const ValidationLimits& limits, Clock::TimePoint now);

}  // namespace carehub
