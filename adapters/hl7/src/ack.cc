#include "carehub/adapters/hl7/ack.h"

#include <vector>

#include "carehub/adapters/hl7/datetime.h"

namespace carehub::adapters::hl7 {
namespace {

const Separators kStandard;  // |^~\&

struct CodeText {
  std::string_view code;
  std::string_view text;
};

CodeText TableEntry(std::string_view reason) {
  if (reason == kReasonMalformedMessage) {
    return {"100", "Segment sequence error"};
  }
  if (reason == kReasonMissingField) {
    return {"101", "Required field missing"};
  }
  if (reason == kReasonUnknownFacility) {
    return {"103", "Table value not found"};
  }
  if (reason == kReasonUnsupportedMessageType) {
    return {"200", "Unsupported message type"};
  }
  if (reason == kReasonUnsupportedTrigger) {
    return {"201", "Unsupported event code"};
  }
  if (reason == kReasonUnsupportedVersion) {
    return {"203", "Unsupported version id"};
  }
  if (reason.rfind("invalid_", 0) == 0 || reason == kReasonFutureTimestamp) {
    return {"102", "Data type error"};
  }
  return {"207", "Application internal error"};
}

// Joins already-escaped components, dropping trailing empty ones.
std::string Components(std::vector<std::string> parts) {
  while (!parts.empty() && parts.back().empty()) {
    parts.pop_back();
  }
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) {
      out.push_back(kStandard.component);
    }
    out += parts[i];
  }
  return out;
}

// An HD field (namespace^universal id^type) re-encoded with the standard separators.
std::string CopyHd(const Message& msg, int field) {
  std::vector<std::string> parts;
  for (int comp = 1; comp <= 3; ++comp) {
    parts.push_back(Escape(msg.Get("MSH", field, 0, comp), kStandard));
  }
  return Components(std::move(parts));
}

// True for versions before 2.5, which have ERR-1 (ELD) and MSA-3 instead of ERR-2..8.
bool IsPre25(std::string_view version) {
  return version.rfind("2.1", 0) == 0 || version.rfind("2.2", 0) == 0 ||
         version.rfind("2.3", 0) == 0 || version.rfind("2.4", 0) == 0;
}

struct Header {
  std::string sending_app;
  std::string sending_facility;
  std::string receiving_app;
  std::string receiving_facility;
  std::string trigger;
  std::string processing_id;
  std::string version;
  std::string original_control_id;
};

std::string Build(const Header& h, const AckDetails& d, std::string_view control_id,
                  Clock::TimePoint now) {
  const bool pre25 = IsPre25(h.version);
  std::string type = "ACK";
  if (!h.trigger.empty()) {
    type += "^" + h.trigger;
    // The message structure component exists from 2.3.1.
    if (!(h.version == "2.3" || h.version.rfind("2.1", 0) == 0 || h.version.rfind("2.2", 0) == 0)) {
      type += "^ACK";
    }
  }
  std::string out = "MSH|^~\\&|" + h.sending_app + "|" + h.sending_facility + "|" +
                    h.receiving_app + "|" + h.receiving_facility + "|" + FormatDateTime(now) +
                    "||" + type + "|" + Escape(control_id, kStandard) + "|" + h.processing_id +
                    "|" + h.version + "\r";
  out += "MSA|" + std::string(AckCodeName(d.code)) + "|" + h.original_control_id;
  if (d.code != AckCode::kAccept && pre25) {
    out += "|" + Escape(d.text, kStandard);
  }
  out += "\r";
  if (d.code == AckCode::kAccept) {
    return out;
  }
  const CodeText entry = TableEntry(d.reason);
  const std::string table = std::string(entry.code) + "^" + std::string(entry.text) + "^HL70357";
  std::string location;
  if (!d.location.segment.empty()) {
    location = Escape(d.location.segment, kStandard) + "^1";
    if (d.location.field > 0) {
      location += "^" + std::to_string(d.location.field);
    }
  }
  if (pre25) {
    // ERR-1 (ELD): segment^sequence^field^code&text&table.
    std::string eld = location.empty() ? "^^" : location + (d.location.field > 0 ? "" : "^");
    std::string coded = std::string(entry.code) + "&" + std::string(entry.text) + "&HL70357";
    out += "ERR|" + eld + "^" + coded + "\r";
    return out;
  }
  // ERR-2 location, ERR-3 HL7 code, ERR-4 severity, ERR-5 our reason code, ERR-8 user message.
  out += "ERR||" + location + "|" + table + "|E|" + Escape(d.reason, kStandard) + "^^L|||" +
         Escape(d.text, kStandard) + "\r";
  return out;
}

}  // namespace

std::string_view AckCodeName(AckCode code) {
  switch (code) {
    case AckCode::kAccept:
      return "AA";
    case AckCode::kError:
      return "AE";
    case AckCode::kReject:
      return "AR";
  }
  return "AR";
}

std::string_view ErrorCodeFor(std::string_view reason) { return TableEntry(reason).code; }

std::string BuildAck(const Message& original, const AckDetails& details,
                     const AckIdentity& identity, std::string_view control_id,
                     Clock::TimePoint now) {
  Header h;
  h.sending_app = CopyHd(original, 5);
  if (h.sending_app.empty()) {
    h.sending_app = Escape(identity.application, kStandard);
  }
  h.sending_facility = CopyHd(original, 6);
  if (h.sending_facility.empty()) {
    h.sending_facility = Escape(identity.facility, kStandard);
  }
  h.receiving_app = CopyHd(original, 3);
  h.receiving_facility = CopyHd(original, 4);
  h.trigger = Escape(original.TriggerEvent(), kStandard);
  h.processing_id = Escape(original.Get("MSH", 11), kStandard);
  if (h.processing_id.empty()) {
    h.processing_id = "P";
  }
  h.version = Escape(original.Version(), kStandard);
  if (h.version.empty()) {
    h.version = "2.5";
  }
  h.original_control_id = Escape(original.ControlId(), kStandard);
  return Build(h, details, control_id, now);
}

std::string BuildAckWithoutHeader(const AckDetails& details, const AckIdentity& identity,
                                  std::string_view control_id, Clock::TimePoint now) {
  Header h;
  h.sending_app = Escape(identity.application, kStandard);
  h.sending_facility = Escape(identity.facility, kStandard);
  h.processing_id = "P";
  h.version = "2.5";
  return Build(h, details, control_id, now);
}

}  // namespace carehub::adapters::hl7
