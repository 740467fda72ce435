#pragma once
// Maps an HL7 v2 ADT message to carehub events (DESIGN §2). Pure: no I/O, thread-safe.
//
// Identity and linkage (documented in docs/adapters.md, "HL7 v2 over MLLP"):
// - event_id is MSH-10, so a resend of the same message is a hub DUPLICATE, never a new event.
// - UPDATE and CANCEL events name what they supersede by a visit key "<PV1-19>:<trigger>", the
//   trigger being the one that opened what is superseded: A11 -> "<visit>:A01" (or A04/A05 by
//   patient class), A13 -> "<visit>:A03", A08 -> the visit's opening trigger inferred from PV1-2.
//   The key is deterministic without adapter state; subscribers correlate on it and encounter_id.

#include <string>
#include <string_view>
#include <vector>

#include "carehub/adapters/hl7/message.h"
#include "carehub/core/status.h"
#include "carehub/core/validation.h"
#include "carehub/v1/event.pb.h"

namespace carehub::adapters::hl7 {

// Reasons (Status::code()) beyond the core validation reasons and kReasonMalformedMessage.
inline constexpr std::string_view kReasonUnsupportedMessageType = "unsupported_message_type";
inline constexpr std::string_view kReasonUnsupportedTrigger = "unsupported_trigger";
inline constexpr std::string_view kReasonUnsupportedVersion = "unsupported_version";
inline constexpr std::string_view kReasonUnknownFacility = "unknown_facility";

struct MapperOptions {
  // ODS code of this adapter's publisher identity (envelope.publisher_ods).
  std::string publisher_ods;
  // MSH-4 values (sending facility, HD-1) accepted as site_ods. Empty means publisher_ods only.
  std::vector<std::string> allowed_facilities;
};

// Where in the message a rejection points (for ERR-2 / ERR-1); empty segment when not known.
// ERR-2 (ERL): segment^sequence^field^field repetition^component; 0 = not stated.
struct ErrorLocation {
  std::string segment;
  int field = 0;
  int sequence = 1;  // which occurrence of the segment (1-based)
  int component = 0;
};

// The supported triggers, in the order the docs list them.
const std::vector<std::string>& SupportedTriggers();

// Maps one ADT message to its events: one, except an A40 with several PID/MRG groups (one event
// per group; event_id MSH-10, then "MSH-10#2", ...). Does not run carehub::ValidateEvent: the
// caller does, because it owns the clock and limits. On failure `where` (if given) says what was
// wrong.
Result<std::vector<v1::Event>> MapAdt(const Message& message, const MapperOptions& options,
                                      ErrorLocation* where = nullptr);

}  // namespace carehub::adapters::hl7
