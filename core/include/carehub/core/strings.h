#pragma once
// Small ASCII string helpers shared by the parsers of configs, policy files and source feeds, so
// that each trims and folds case the same way. Pure functions, thread-safe. They work on bytes:
// nothing here knows about UTF-8, and no locale is consulted (a byte outside ASCII is left as is).

#include <string>
#include <string_view>

namespace carehub {

// Character sets for Trim. Callers name the set they mean, because they differ on purpose: a CSV
// cell or an HL7 component has had its line ending removed by its reader and trims only spaces and
// tabs, while a line of a policy file or a YAML scalar also drops a stray CR or LF.
inline constexpr std::string_view kSpaceTab = " \t";
inline constexpr std::string_view kSpaceTabCrLf = " \t\r\n";

// `text` without the leading and trailing bytes that are in `chars`. A view into `text`.
std::string_view Trim(std::string_view text, std::string_view chars);

// Lower-case hexadecimal of every byte (digests, binary ids in logs).
std::string HexEncode(std::string_view bytes);

// `text` with every byte that is in `chars` removed, wherever it stands (e.g. the spaces and
// dashes people type inside an NHS number: "943 476 5919", "943-476-5919").
std::string RemoveChars(std::string_view text, std::string_view chars);

// `text` with <, >, & and " replaced by their HTML entities (safe in text and attribute values).
std::string HtmlEscape(std::string_view text);

// ASCII case folding: A-Z to a-z and back; every other byte unchanged.
std::string AsciiLower(std::string text);
std::string AsciiUpper(std::string text);

}  // namespace carehub
