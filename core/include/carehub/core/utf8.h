#pragma once
// UTF-8 well-formedness: for writers that must never emit a broken sequence (the JSON log,
// core/log.cc; the PostgreSQL COPY rows, sink/src/copy_rows.cc) and for readers of proto3 strings
// (the validator, the ingest reader). Pure, thread-safe.

#include <cstddef>
#include <string_view>

namespace carehub {

// Length (1 to 4) of the well-formed UTF-8 sequence that starts at text[i], or 0 when there is
// none: a stray continuation byte, a truncated or overlong sequence, a surrogate, a code point
// beyond U+10FFFF. `i` must be < text.size().
size_t Utf8SequenceLength(std::string_view text, size_t i);

// True when all of `text` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates,
// nothing above U+10FFFF). proto3 `string` fields must hold it: protobuf refuses to parse an event
// with other bytes, so the validator (validation.h) and the ingest reader (event_view.h) check it.
// Pure ASCII, the common case, is checked eight bytes at a time.
bool IsValidUtf8(std::string_view text);

}  // namespace carehub
