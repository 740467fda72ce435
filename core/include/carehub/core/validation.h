#pragma once
// Validation of events as publishers send them (DESIGN §2). Pure functions: no I/O, thread-safe.
// Every failure is a Status whose code is a stable reason (listed below, documented in
// docs/protocol.md) and whose message names the offending field for a human.

#include <chrono>
#include <cstddef>
#include <string_view>

#include "carehub/core/clock.h"
#include "carehub/core/status.h"
#include "carehub/v1/event.pb.h"

namespace carehub {

// Stable reason codes.
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

// Validates one event as received (hub fields hub_seq/received_at are ignored).
// `serialized_bytes` is the size of the event's encoding as received.
Status ValidateEvent(const v1::Event& event, size_t serialized_bytes, const ValidationLimits& limits,
                     Clock::TimePoint now);

}  // namespace carehub
