#pragma once
// HL7 v2 date/time values (DT, DTM and the older TS) to and from protobuf timestamps.
// Pure functions, thread-safe.

#include <google/protobuf/timestamp.pb.h>

#include <string>
#include <string_view>

#include "carehub/core/clock.h"
#include "carehub/core/status.h"

namespace carehub::adapters::hl7 {

// Parses "YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]" (a TS's degree-of-precision component
// must already be stripped). Missing parts default to their start (January, the 1st, 00:00:00).
// A value without an offset is civil time in the UK (GMT in winter, BST in summer), which is what
// NHS systems send; a time in the repeated autumn hour resolves to its first (BST) occurrence.
// Failure: Status code carehub::kReasonInvalidTimestamp.
Result<google::protobuf::Timestamp> ParseDateTime(std::string_view value);

// "YYYY-MM-DD" from a DT/DTM value with at least day precision (any time part is ignored).
// Failure: Status code carehub::kReasonInvalidField.
Result<std::string> ParseBirthDate(std::string_view value);

// "YYYYMMDDHHMMSS+0000": UTC with an explicit offset, so receivers never guess the zone.
std::string FormatDateTime(Clock::TimePoint time);

}  // namespace carehub::adapters::hl7
