#pragma once
// HL7 v2 acknowledgements: MSH + MSA, plus ERR on an error or rejection. Pure, thread-safe.
//
// A sender must always be able to match our answer to its message (issue 21): MSA-2 is its MSH-10
// whenever MSH-10 can be read at all, also from a header Message::Parse refused (unusable MSH-2:
// ReadHeaderLeniently falls back to the default separators); MSH-5/6 mirror its MSH-3/4 and its
// version is echoed. Original mode (AA/AE/AR) unless MSH-15 or MSH-16 asks for enhanced mode
// (AckMode, docs/adapters.md "Acknowledgements").
//
// The ACK never carries patient identifiers: callers pass reason text that names fields, not
// values (AdtProcessor redacts any identifier values it finds before calling).

#include <optional>
#include <string>
#include <string_view>

#include "carehub/adapters/hl7/adt_mapper.h"
#include "carehub/adapters/hl7/message.h"
#include "carehub/core/clock.h"

namespace carehub::adapters::hl7 {

enum class AckCode {
  kAccept,  // AA: every event of the message is durably persisted
  kError,   // AE: not persisted this time; the sender should retry (e.g. outbox unavailable)
  kReject,  // AR: the message is invalid; resending it unchanged will fail again
};

std::string_view AckCodeName(AckCode code);     // "AA", "AE", "AR"
std::string_view CommitCodeName(AckCode code);  // enhanced mode: "CA", "CE", "CR"

struct AckDetails {
  AckCode code = AckCode::kAccept;
  // Stable reason code (Status::code()), empty for AA. Sent in ERR-5 (v2.5+) and mapped to an
  // HL7 table 0357 code in ERR-3 / ERR-1.
  std::string reason;
  // Human-readable; ERR-8 (v2.5+) or MSA-3 (older).
  std::string text;
  ErrorLocation location;
  // HL7 table 0357 code for ERR-3 / ERR-1 when the reason alone does not decide it (a malformed
  // MSH-2 is 102 "data type error", a segment out of order 100); empty: ErrorCodeFor(reason).
  std::string hl7_error_code;
};

// The header fields an ACK needs, already re-escaped for the standard separators |^~\&.
struct AckHeader {
  std::string sending_app;           // their MSH-3 (HD components)
  std::string sending_facility;      // their MSH-4
  std::string receiving_app;         // their MSH-5
  std::string receiving_facility;    // their MSH-6
  std::string trigger;               // their MSH-9.2
  std::string processing_id;         // their MSH-11
  std::string version;               // their MSH-12
  std::string control_id;            // their MSH-10
  std::string accept_ack_type;       // their MSH-15 (AL, NE, ER, SU), upper case
  std::string application_ack_type;  // their MSH-16
};

// From a parsed message.
AckHeader HeaderOf(const Message& message);

// From input Message::Parse refused: the first line starting "MSH", split on MSH-1 when it is a
// usable separator and on '|' otherwise, components on '^'. nullopt when there is no MSH line.
std::optional<AckHeader> ReadHeaderLeniently(std::string_view raw);

// How to answer, from MSH-15/16 (HL7 v2.5 §2.9): both empty -> original mode (AA/AE/AR).
// MSH-15 set -> enhanced mode, a commit ACK (CA/CE/CR) sent according to MSH-15: AL always, NE
// never, ER only on error/reject, SU only on success. MSH-16 set without MSH-15 -> an application
// ACK (AA/AE/AR) sent according to MSH-16. The adapter's application processing is the durable
// write to its outbox, done before it answers, so one answer covers both levels; no separate
// application ACK message is initiated (it would need the sender to accept inbound messages).
struct AckMode {
  bool enhanced = false;  // CA/CE/CR instead of AA/AE/AR
  std::string condition;  // AL, NE, ER, SU ("" = AL)
};
AckMode ModeOf(const AckHeader& header);
// False when the mode's condition says this outcome gets no answer.
bool ShouldAnswer(const AckMode& mode, AckCode code);

// Who we are when the sender left MSH-5/MSH-6 empty, or when there is no readable header.
struct AckIdentity {
  std::string application = "CAREHUB";
  std::string facility;
};

// The ACK for `original`: sending/receiving application and facility swapped, a new control id,
// the same version and processing id, MSA-2 = the original MSH-10. Segments end with CR; no MLLP
// framing.
std::string BuildAck(const Message& original, const AckDetails& details,
                     const AckIdentity& identity, std::string_view control_id,
                     Clock::TimePoint now);

// The same from a header (parsed or read leniently).
std::string BuildAck(const AckHeader& header, const AckDetails& details,
                     const AckIdentity& identity, std::string_view control_id,
                     Clock::TimePoint now);

// An AR for input with no MSH line at all: version 2.5, empty MSA-2 (nothing to echo).
std::string BuildAckWithoutHeader(const AckDetails& details, const AckIdentity& identity,
                                  std::string_view control_id, Clock::TimePoint now);

// HL7 table 0357 code for a reason: 100 segment sequence error, 101 required field missing, 102
// data type error, 103 table value not found, 200 unsupported message type, 201 unsupported event
// code, 203 unsupported version id, 207 application internal error.
std::string_view ErrorCodeFor(std::string_view reason);

}  // namespace carehub::adapters::hl7
