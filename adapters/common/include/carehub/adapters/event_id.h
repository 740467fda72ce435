#pragma once
// Pieces of the event ids the FHIR and CSV adapters derive from what a source sends. An event id
// must be stable across resends and re-reads, because the hub deduplicates on (publisher_ods,
// event_id): changing what these functions return for a given input changes the ids of events
// publishers have already sent, and the hub would then store a second copy of each. Their output
// is therefore frozen; the unit tests pin it with known answers.
//
// Pure functions, thread-safe.

#include <cstddef>
#include <string>
#include <string_view>

namespace carehub::adapters {

// FNV-1a 64 of `bytes` as 16 lower-case hex digits: a stable content fingerprint (not a security
// measure: anyone can make collisions). One quirk, frozen for the reason above: the offset basis is
// 1469598103934665603 (0x14650fb0739d0383), FNV's 14695981039346656037 short of its last digit, as
// both adapters' copies have always had it. So Fingerprint("") is "14650fb0739d0383" and the
// published FNV-1a test vectors do not apply.
std::string Fingerprint(std::string_view bytes);

// `text` itself when it is printable ASCII without spaces (0x21 to 0x7e) and at most `max_length`
// bytes, else "k" + Fingerprint(text). The limit differs per adapter (FHIR 40, CSV 64) and stays
// as it is for the reason above.
std::string EventIdPart(std::string_view text, size_t max_length);

}  // namespace carehub::adapters
