#pragma once
// MSH-18 character sets (HL7 table 0211) to UTF-8, which every carehub string holds. Many PAS
// interfaces still send ISO 8859-1 or Windows-1252; their messages are transcoded with glibc's
// iconv rather than refused. Pure, thread-safe (each call opens its own iconv descriptor).

#include <optional>
#include <string>
#include <string_view>

#include "carehub/core/status.h"

namespace carehub::adapters::hl7 {

// AR reason for an MSH-18 value outside the supported list.
inline constexpr std::string_view kReasonUnsupportedCharset = "unsupported_charset";

// The iconv name for an MSH-18 value: "" (not declared), ASCII / ISO IR6 and UNICODE UTF-8 /
// UTF-8 -> "UTF-8" (no transcoding: ASCII is a subset and the validator checks UTF-8);
// 8859/1 / ISO IR100 / ISO-8859-1 / LATIN1 -> "ISO-8859-1"; 8859/15 -> "ISO-8859-15";
// WINDOWS-1252 / CP1252 (not in table 0211, but sent by Windows-based systems) ->
// "WINDOWS-1252". Case and surrounding spaces are ignored. nullopt: not supported.
std::optional<std::string> IconvNameForCharset(std::string_view msh18);

// `bytes` in `iconv_name` converted to UTF-8. "UTF-8" returns the bytes unchanged. A byte the
// charset does not define (e.g. 0x81 in Windows-1252) is an error with reason invalid_field.
Result<std::string> TranscodeToUtf8(std::string_view bytes, const std::string& iconv_name);

}  // namespace carehub::adapters::hl7
