#pragma once
// HL7 v2 acknowledgements (original mode): MSH + MSA, plus ERR on AE/AR. Pure, thread-safe.
//
// The ACK never carries patient identifiers: callers pass reason text that names fields, not
// values (AdtProcessor redacts any identifier values it finds before calling).

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

std::string_view AckCodeName(AckCode code);  // "AA", "AE", "AR"

struct AckDetails {
  AckCode code = AckCode::kAccept;
  // Stable reason code (Status::code()), empty for AA. Sent in ERR-5 (v2.5+) and mapped to an
  // HL7 table 0357 code in ERR-3 / ERR-1.
  std::string reason;
  // Human-readable; ERR-8 (v2.5+) or MSA-3 (older).
  std::string text;
  ErrorLocation location;
};

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

// An AR for input with no readable MSH: version 2.5, empty MSA-2 (nothing to echo).
std::string BuildAckWithoutHeader(const AckDetails& details, const AckIdentity& identity,
                                  std::string_view control_id, Clock::TimePoint now);

// HL7 table 0357 code for a reason: 100 segment sequence, 101 required field missing, 102 data
// type error, 103 table value not found, 200 message type, 201 event code, 203 version, 207
// application internal error.
std::string_view ErrorCodeFor(std::string_view reason);

}  // namespace carehub::adapters::hl7
