#pragma once
// A parsed HL7 v2 message (ER7 "pipe and hat" encoding).
//
// Parsing is lenient where real feeds vary (CR, LF or CRLF segment endings; trailing empty fields;
// unknown and Z segments are kept but callers may ignore them) and strict where guessing would be
// unsafe (the message must start with a well-formed MSH whose separators are distinct). Parse never
// throws and never crashes on arbitrary bytes: malformed input is a Status.
//
// Values are returned decoded: escape sequences (\F\ \S\ \T\ \R\ \E\, \Xhh..\ hex, \.br\ line
// break) are resolved after splitting, so an escaped separator never splits a value.
//
// Positions follow HL7 numbering where HL7 has one: field, component and subcomponent are 1-based
// (PID-3.4 is Get("PID", 3, 0, 4)); the repetition is a 0-based index. Out-of-range positions read
// as empty strings. For MSH, field 1 is the field separator and field 2 the encoding characters,
// both returned verbatim.
//
// A Message is an immutable value; const methods are safe to call from several threads.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "carehub/core/status.h"

namespace carehub::adapters::hl7 {

// Reason codes of Parse failures (Status::code()).
inline constexpr std::string_view kReasonMalformedMessage = "malformed_message";

struct Separators {
  char field = '|';
  char component = '^';
  char repetition = '~';
  char escape = '\\';
  char subcomponent = '&';
};

class Message;

// A non-owning view of one segment; valid while its Message lives.
class Segment {
 public:
  Segment(const Message* message, size_t index) : message_(message), index_(index) {}

  std::string_view name() const;
  // Highest field number present (0 when the segment has only its name).
  int FieldCount() const;
  // Number of repetitions of a field (0 when the field is absent or empty).
  int RepetitionCount(int field) const;
  // Decoded value; empty when absent.
  std::string Get(int field, int repetition = 0, int component = 1, int subcomponent = 1) const;
  // The field as sent (all repetitions, escapes unresolved).
  std::string_view RawField(int field) const;

 private:
  const Message* message_;
  size_t index_;
};

class Message {
 public:
  static Result<Message> Parse(std::string_view raw);

  const Separators& separators() const { return separators_; }
  size_t SegmentCount() const { return segments_.size(); }
  Segment segment(size_t index) const { return Segment(this, index); }
  // All segments named `name`, in message order.
  std::vector<Segment> FindAll(std::string_view name) const;
  bool Has(std::string_view name) const;

  // Reads from the first segment named `segment`; empty when there is none.
  std::string Get(std::string_view segment, int field, int repetition = 0, int component = 1,
                  int subcomponent = 1) const;

  // Header shortcuts: MSH-9.1, MSH-9.2 (falling back to EVN-1), MSH-10, MSH-12.1.
  std::string MessageType() const { return Get("MSH", 9, 0, 1); }
  std::string TriggerEvent() const;
  std::string ControlId() const { return Get("MSH", 10); }
  std::string Version() const { return Get("MSH", 12); }

 private:
  friend class Segment;
  struct Span {
    uint32_t pos = 0;
    uint32_t len = 0;
  };
  struct SegmentData {
    Span name;
    std::vector<Span> fields;  // fields[0] is field 1
  };

  std::string_view View(Span span) const {
    return std::string_view(raw_).substr(span.pos, span.len);
  }
  std::string Decode(std::string_view value) const;
  std::string_view FieldSpan(size_t segment, int field) const;

  std::string raw_;
  Separators separators_;
  std::vector<SegmentData> segments_;
};

// Escapes a value for an ER7 message using `separators` (the inverse of decoding).
std::string Escape(std::string_view value, const Separators& separators);

}  // namespace carehub::adapters::hl7
