#include "carehub/adapters/hl7/ack.h"

#include <optional>
#include <vector>

#include "carehub/adapters/hl7/datetime.h"

namespace carehub::adapters::hl7 {
namespace {

const Separators kStandard;  // |^~\&

// HL7 table 0357 (message error condition codes) texts for the codes we send.
std::string_view TableText(std::string_view code) {
  if (code == "100") {
    return "Segment sequence error";
  }
  if (code == "101") {
    return "Required field missing";
  }
  if (code == "102") {
    return "Data type error";
  }
  if (code == "103") {
    return "Table value not found";
  }
  if (code == "200") {
    return "Unsupported message type";
  }
  if (code == "201") {
    return "Unsupported event code";
  }
  if (code == "202") {
    return "Unsupported processing id";
  }
  if (code == "203") {
    return "Unsupported version id";
  }
  return "Application internal error";
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

std::string Build(const AckHeader& h, const AckDetails& d, const AckIdentity& identity,
                  std::string_view control_id, Clock::TimePoint now) {
  const std::string version = h.version.empty() ? "2.5" : h.version;
  const std::string processing_id = h.processing_id.empty() ? "P" : h.processing_id;
  // MSH-3/4 of the answer mirror what the sender addressed (its MSH-5/6); ours when it left them
  // empty. MSH-5/6 are the sender's MSH-3/4.
  const std::string our_app =
      h.receiving_app.empty() ? Escape(identity.application, kStandard) : h.receiving_app;
  const std::string our_facility =
      h.receiving_facility.empty() ? Escape(identity.facility, kStandard) : h.receiving_facility;
  const bool pre25 = IsPre25(version);
  const AckMode mode = ModeOf(h);
  std::string type = "ACK";
  if (!h.trigger.empty()) {
    type += "^" + h.trigger;
    // The message structure component exists from 2.3.1.
    if (!(version == "2.3" || version.rfind("2.1", 0) == 0 || version.rfind("2.2", 0) == 0)) {
      type += "^ACK";
    }
  }
  std::string out = "MSH|^~\\&|" + our_app + "|" + our_facility + "|" + h.sending_app + "|" +
                    h.sending_facility + "|" + FormatDateTime(now) + "||" + type + "|" +
                    Escape(control_id, kStandard) + "|" + processing_id + "|" + version + "\r";
  const std::string_view code = mode.enhanced ? CommitCodeName(d.code) : AckCodeName(d.code);
  out += "MSA|" + std::string(code) + "|" + h.control_id;
  if (d.code != AckCode::kAccept && pre25) {
    out += "|" + Escape(d.text, kStandard);
  }
  out += "\r";
  if (d.code == AckCode::kAccept) {
    return out;
  }
  const std::string hl7_code =
      d.hl7_error_code.empty() ? std::string(ErrorCodeFor(d.reason)) : d.hl7_error_code;
  const std::string hl7_text(TableText(hl7_code));
  std::string location;
  if (!d.location.segment.empty()) {
    location = Escape(d.location.segment, kStandard) + "^" +
               std::to_string(d.location.sequence > 0 ? d.location.sequence : 1);
    if (d.location.field > 0) {
      location += "^" + std::to_string(d.location.field);
      if (d.location.component > 0) {
        // ERL-4 is the field repetition: the first (1) is the one our mapper reads.
        location += "^1^" + std::to_string(d.location.component);
      }
    }
  }
  if (pre25) {
    // ERR-1 (ELD, v2.3/2.4): segment^sequence^field^code&text&table; no component position.
    std::string eld;
    if (d.location.segment.empty()) {
      eld = "^^";
    } else {
      eld = Escape(d.location.segment, kStandard) + "^" +
            std::to_string(d.location.sequence > 0 ? d.location.sequence : 1) + "^" +
            (d.location.field > 0 ? std::to_string(d.location.field) : "");
    }
    out += "ERR|" + eld + "^" + hl7_code + "&" + hl7_text + "&HL70357\r";
    return out;
  }
  // ERR-2 location, ERR-3 HL7 code, ERR-4 severity, ERR-5 our reason code, ERR-8 user message.
  out += "ERR||" + location + "|" + hl7_code + "^" + hl7_text + "^HL70357|E|" +
         Escape(d.reason, kStandard) + "^^L|||" + Escape(d.text, kStandard) + "\r";
  return out;
}

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') {
      c = static_cast<char>(c - 'a' + 'A');
    }
  }
  return out;
}

std::string TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return std::string(s);
}

// Splits on `sep`; always at least one piece.
std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t next = s.find(sep, start);
    out.push_back(
        s.substr(start, next == std::string_view::npos ? std::string_view::npos : next - start));
    if (next == std::string_view::npos) {
      return out;
    }
    start = next + 1;
  }
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

std::string_view ErrorCodeFor(std::string_view reason) {
  if (reason == kReasonMalformedMessage) {
    // Structure problems default to "segment sequence error"; the processor passes 102 where the
    // header's separators (a data type problem) are what is wrong.
    return "100";
  }
  if (reason == kReasonMissingField) {
    return "101";
  }
  if (reason == kReasonUnknownFacility || reason == "unsupported_charset") {
    return "103";
  }
  if (reason == kReasonUnsupportedMessageType) {
    return "200";
  }
  if (reason == kReasonUnsupportedTrigger) {
    return "201";
  }
  if (reason == kReasonUnsupportedVersion) {
    return "203";
  }
  if (reason.rfind("invalid_", 0) == 0 || reason == kReasonFutureTimestamp) {
    return "102";
  }
  return "207";
}

std::string_view CommitCodeName(AckCode code) {
  switch (code) {
    case AckCode::kAccept:
      return "CA";
    case AckCode::kError:
      return "CE";
    case AckCode::kReject:
      return "CR";
  }
  return "CR";
}

AckHeader HeaderOf(const Message& original) {
  AckHeader h;
  h.sending_app = CopyHd(original, 3);
  h.sending_facility = CopyHd(original, 4);
  h.receiving_app = CopyHd(original, 5);
  h.receiving_facility = CopyHd(original, 6);
  h.trigger = Escape(original.TriggerEvent(), kStandard);
  h.processing_id = Escape(original.Get("MSH", 11), kStandard);
  h.version = Escape(original.Version(), kStandard);
  h.control_id = Escape(original.ControlId(), kStandard);
  h.accept_ack_type = Upper(TrimSpaces(original.Get("MSH", 15)));
  h.application_ack_type = Upper(TrimSpaces(original.Get("MSH", 16)));
  return h;
}

std::optional<AckHeader> ReadHeaderLeniently(std::string_view raw) {
  size_t begin = raw.find("MSH");
  if (begin == std::string_view::npos || raw.size() < begin + 4) {
    return std::nullopt;
  }
  // Only junk (blank lines, spaces) may precede it, as Message::Parse allows.
  if (raw.substr(0, begin).find_first_not_of("\r\n \t") != std::string_view::npos) {
    return std::nullopt;
  }
  std::string_view line = raw.substr(begin);
  // Segments end as Message::Parse ends them: at CR when the input has any CR (a lone LF is then
  // data), else at LF.
  line = line.substr(0, line.find(raw.find('\r') != std::string_view::npos ? '\r' : '\n'));
  // The line may be "MSH" alone (a line break right after it): then there are no fields.
  const bool has_separator = line.size() > 3;
  const char declared = has_separator ? line[3] : '|';
  const bool usable = has_separator && !((declared >= '0' && declared <= '9') ||
                                         (declared >= 'A' && declared <= 'Z') ||
                                         (declared >= 'a' && declared <= 'z') || declared == '\0');
  const char field_sep = usable ? declared : '|';
  // After "MSH" and MSH-1, pieces[0] is MSH-2, so MSH-n is pieces[n - 2].
  const std::vector<std::string_view> pieces = Split(line.substr(usable ? 4 : 3), field_sep);
  auto field = [&pieces](int n) -> std::string_view {
    const size_t i = static_cast<size_t>(n - 2);
    return i < pieces.size() ? pieces[i] : std::string_view();
  };
  auto hd = [&field](int n) {
    std::vector<std::string> parts;
    for (std::string_view part : Split(field(n), '^')) {
      if (parts.size() == 3) {
        break;
      }
      parts.push_back(Escape(TrimSpaces(part), kStandard));
    }
    return Components(std::move(parts));
  };
  auto first = [&field](int n) { return TrimSpaces(Split(field(n), '^').front()); };
  AckHeader h;
  h.sending_app = hd(3);
  h.sending_facility = hd(4);
  h.receiving_app = hd(5);
  h.receiving_facility = hd(6);
  const std::vector<std::string_view> type = Split(field(9), '^');
  h.trigger = type.size() > 1 ? Escape(TrimSpaces(type[1]), kStandard) : std::string();
  h.control_id = Escape(TrimSpaces(field(10)), kStandard);
  h.processing_id = Escape(first(11), kStandard);
  h.version = Escape(first(12), kStandard);
  h.accept_ack_type = Upper(first(15));
  h.application_ack_type = Upper(first(16));
  return h;
}

AckMode ModeOf(const AckHeader& header) {
  AckMode mode;
  if (!header.accept_ack_type.empty()) {
    mode.enhanced = true;
    mode.condition = header.accept_ack_type;
  } else if (!header.application_ack_type.empty()) {
    mode.condition = header.application_ack_type;
  }
  return mode;
}

bool ShouldAnswer(const AckMode& mode, AckCode code) {
  if (mode.condition == "NE") {
    return false;
  }
  if (mode.condition == "ER") {
    return code != AckCode::kAccept;
  }
  if (mode.condition == "SU") {
    return code == AckCode::kAccept;
  }
  return true;  // AL, empty, or a value outside table 0155: answer, as original mode would
}

std::string BuildAck(const AckHeader& header, const AckDetails& details,
                     const AckIdentity& identity, std::string_view control_id,
                     Clock::TimePoint now) {
  return Build(header, details, identity, control_id, now);
}

std::string BuildAck(const Message& original, const AckDetails& details,
                     const AckIdentity& identity, std::string_view control_id,
                     Clock::TimePoint now) {
  return Build(HeaderOf(original), details, identity, control_id, now);
}

std::string BuildAckWithoutHeader(const AckDetails& details, const AckIdentity& identity,
                                  std::string_view control_id, Clock::TimePoint now) {
  return Build(AckHeader{}, details, identity, control_id, now);
}

}  // namespace carehub::adapters::hl7
