#pragma once
// UTF-8 well-formedness, for writers that must never emit a broken sequence: the JSON log
// (core/log.cc) and the PostgreSQL COPY rows (sink/src/copy_rows.cc). Pure, thread-safe.

#include <cstddef>
#include <string_view>

namespace carehub {

// Length (1 to 4) of the well-formed UTF-8 sequence that starts at text[i], or 0 when there is
// none: a stray continuation byte, a truncated or overlong sequence, a surrogate, a code point
// beyond U+10FFFF. `i` must be < text.size().
size_t Utf8SequenceLength(std::string_view text, size_t i);

}  // namespace carehub
