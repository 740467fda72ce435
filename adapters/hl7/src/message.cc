#include "carehub/adapters/hl7/message.h"

#include <cctype>
#include <limits>

namespace carehub::adapters::hl7 {
namespace {

bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// A separator must not be a letter or digit (they start segment names and values) nor a line end.
bool IsUsableSeparator(char c) { return !IsAlnum(c) && c != '\r' && c != '\n' && c != '\0'; }

bool IsSegmentName(std::string_view name) {
  if (name.size() != 3) {
    return false;
  }
  for (char c : name) {
    if (!(std::isupper(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)))) {
      return false;
    }
  }
  return std::isupper(static_cast<unsigned char>(name[0])) != 0;
}

Status Malformed(std::string message) {
  return Status::Error(std::string(kReasonMalformedMessage), std::move(message));
}

// The n-th (0-based) piece of `value` split on `sep`; empty when there are fewer pieces.
std::string_view Piece(std::string_view value, char sep, int n) {
  if (n < 0) {
    return {};
  }
  size_t start = 0;
  for (int i = 0; i < n; ++i) {
    size_t next = value.find(sep, start);
    if (next == std::string_view::npos) {
      return {};
    }
    start = next + 1;
  }
  size_t end = value.find(sep, start);
  return value.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

}  // namespace

Result<Message> Message::Parse(std::string_view raw) {
  // Tolerate blank lines or spaces some senders put before the header.
  size_t begin = 0;
  while (begin < raw.size() &&
         (raw[begin] == '\r' || raw[begin] == '\n' || raw[begin] == ' ' || raw[begin] == '\t')) {
    ++begin;
  }
  raw.remove_prefix(begin);
  if (raw.size() > std::numeric_limits<uint32_t>::max()) {
    return Malformed("message too large to parse");
  }
  if (raw.size() < 8 || raw.substr(0, 3) != "MSH") {
    return Malformed("message does not start with an MSH segment");
  }

  Message msg;
  msg.raw_ = std::string(raw);
  const std::string& text = msg.raw_;
  Separators& sep = msg.separators_;
  sep.field = text[3];
  if (!IsUsableSeparator(sep.field)) {
    return Malformed("MSH-1 field separator is not usable");
  }
  size_t enc_end = text.find(sep.field, 4);
  size_t line_end = text.find_first_of("\r\n", 4);
  if (enc_end == std::string::npos || (line_end != std::string::npos && line_end < enc_end)) {
    enc_end = line_end == std::string::npos ? text.size() : line_end;
  }
  std::string_view encoding = std::string_view(text).substr(4, enc_end - 4);
  // Four characters; v2.7+ may add a fifth, the truncation character, which we never emit.
  if (encoding.size() < 4 || encoding.size() > 5) {
    return Malformed("MSH-2 encoding characters must be 4 or 5 characters");
  }
  sep.component = encoding[0];
  sep.repetition = encoding[1];
  sep.escape = encoding[2];
  sep.subcomponent = encoding[3];
  const char all[] = {sep.field, sep.component, sep.repetition, sep.escape, sep.subcomponent};
  for (size_t i = 0; i < 5; ++i) {
    if (!IsUsableSeparator(all[i])) {
      return Malformed("MSH-2 encoding characters are not usable separators");
    }
    for (size_t j = i + 1; j < 5; ++j) {
      if (all[i] == all[j]) {
        return Malformed("MSH-1/MSH-2 separators are not distinct");
      }
    }
  }
  if (encoding.size() == 5) {
    const char truncation = encoding[4];
    bool distinct = true;
    for (char c : all) {
      distinct = distinct && c != truncation;
    }
    if (!distinct || !IsUsableSeparator(truncation)) {
      return Malformed("MSH-2 truncation character is not usable");
    }
  }

  // The standard ends segments with CR; LF-only and CRLF feeds are common. When the message has any
  // CR, CR ends segments (and a following LF is dropped), so a stray LF inside a value stays data.
  const bool cr_mode = text.find('\r') != std::string::npos;
  const char terminator = cr_mode ? '\r' : '\n';
  size_t pos = 0;
  while (pos < text.size()) {
    if (cr_mode && text[pos] == '\n') {
      ++pos;
      continue;
    }
    size_t end = text.find(terminator, pos);
    if (end == std::string::npos) {
      end = text.size();
    }
    std::string_view line = std::string_view(text).substr(pos, end - pos);
    const size_t line_pos = pos;
    pos = end + 1;
    // Skip blank lines (trailing terminators, a final LF) rather than reject the message.
    if (line.find_first_not_of(" \t\n") == std::string_view::npos) {
      continue;
    }
    SegmentData seg;
    size_t name_end = line.find(sep.field);
    std::string_view name = line.substr(0, name_end);
    if (!IsSegmentName(name)) {
      return Malformed("segment " + std::to_string(msg.segments_.size() + 1) +
                       " has no valid segment name");
    }
    seg.name = Span{static_cast<uint32_t>(line_pos), 3};
    const bool is_header = msg.segments_.empty();
    if (is_header != (name == "MSH")) {
      return Malformed(is_header ? "first segment is not MSH" : "MSH segment repeated");
    }
    if (name_end != std::string_view::npos) {
      size_t field_start = name_end + 1;
      if (is_header) {
        // MSH-1 is the separator itself and MSH-2 the encoding characters: neither is split.
        seg.fields.push_back(Span{static_cast<uint32_t>(line_pos + 3), 1});
        size_t enc_len = line.find(sep.field, field_start);
        enc_len = (enc_len == std::string_view::npos ? line.size() : enc_len) - field_start;
        seg.fields.push_back(
            Span{static_cast<uint32_t>(line_pos + field_start), static_cast<uint32_t>(enc_len)});
        field_start += enc_len + 1;
        if (field_start > line.size()) {
          msg.segments_.push_back(std::move(seg));
          continue;
        }
      }
      while (true) {
        size_t next = line.find(sep.field, field_start);
        size_t stop = next == std::string_view::npos ? line.size() : next;
        seg.fields.push_back(Span{static_cast<uint32_t>(line_pos + field_start),
                                  static_cast<uint32_t>(stop - field_start)});
        if (next == std::string_view::npos) {
          break;
        }
        field_start = next + 1;
      }
    }
    msg.segments_.push_back(std::move(seg));
  }
  if (msg.segments_.empty()) {
    return Malformed("message has no segments");
  }
  return msg;
}

std::vector<Segment> Message::FindAll(std::string_view name) const {
  std::vector<Segment> out;
  for (size_t i = 0; i < segments_.size(); ++i) {
    if (View(segments_[i].name) == name) {
      out.emplace_back(this, i);
    }
  }
  return out;
}

bool Message::Has(std::string_view name) const {
  for (const SegmentData& seg : segments_) {
    if (View(seg.name) == name) {
      return true;
    }
  }
  return false;
}

std::string Message::Get(std::string_view segment, int field, int repetition, int component,
                         int subcomponent) const {
  for (size_t i = 0; i < segments_.size(); ++i) {
    if (View(segments_[i].name) == segment) {
      return Segment(this, i).Get(field, repetition, component, subcomponent);
    }
  }
  return {};
}

std::string Message::TriggerEvent() const {
  std::string trigger = Get("MSH", 9, 0, 2);
  if (trigger.empty()) {
    // Some v2.3 senders put only "ADT" in MSH-9 and the trigger in EVN-1.
    trigger = Get("EVN", 1);
  }
  return trigger;
}

std::string_view Message::FieldSpan(size_t segment, int field) const {
  if (segment >= segments_.size() || field < 1) {
    return {};
  }
  const SegmentData& seg = segments_[segment];
  if (static_cast<size_t>(field) > seg.fields.size()) {
    return {};
  }
  return View(seg.fields[static_cast<size_t>(field) - 1]);
}

std::string Message::Decode(std::string_view value) const {
  const Separators& sep = separators_;
  std::string out;
  out.reserve(value.size());
  size_t i = 0;
  while (i < value.size()) {
    char c = value[i];
    if (c != sep.escape) {
      out.push_back(c);
      ++i;
      continue;
    }
    size_t close = value.find(sep.escape, i + 1);
    if (close == std::string_view::npos) {
      // An unterminated escape is data, not a sequence.
      out.append(value.substr(i));
      break;
    }
    std::string_view seq = value.substr(i + 1, close - i - 1);
    i = close + 1;
    if (seq == "F") {
      out.push_back(sep.field);
    } else if (seq == "S") {
      out.push_back(sep.component);
    } else if (seq == "T") {
      out.push_back(sep.subcomponent);
    } else if (seq == "R") {
      out.push_back(sep.repetition);
    } else if (seq == "E") {
      out.push_back(sep.escape);
    } else if (seq == ".br") {
      out.push_back('\n');
    } else if (!seq.empty() && seq[0] == 'X' && seq.size() % 2 == 1) {
      std::string bytes;
      bool valid = true;
      for (size_t k = 1; k + 1 < seq.size(); k += 2) {
        int hi = HexValue(seq[k]);
        int lo = HexValue(seq[k + 1]);
        if (hi < 0 || lo < 0) {
          valid = false;
          break;
        }
        bytes.push_back(static_cast<char>(hi * 16 + lo));
      }
      if (valid) {
        out.append(bytes);
      }
    }
    // Other sequences (highlighting \H\ \N\, character sets \C..\ \M..\, formatting \.sp\ ...)
    // carry presentation only and are dropped.
  }
  return out;
}

std::string_view Segment::name() const { return message_->View(message_->segments_[index_].name); }

int Segment::FieldCount() const {
  return static_cast<int>(message_->segments_[index_].fields.size());
}

int Segment::RepetitionCount(int field) const {
  std::string_view value = message_->FieldSpan(index_, field);
  if (value.empty()) {
    return 0;
  }
  if (index_ == 0 && field <= 2) {
    return 1;
  }
  int count = 1;
  for (char c : value) {
    if (c == message_->separators_.repetition) {
      ++count;
    }
  }
  return count;
}

std::string_view Segment::RawField(int field) const { return message_->FieldSpan(index_, field); }

std::string Segment::Get(int field, int repetition, int component, int subcomponent) const {
  std::string_view value = message_->FieldSpan(index_, field);
  if (index_ == 0 && field <= 2) {
    // MSH-1 and MSH-2 are the separators themselves.
    return repetition == 0 && component == 1 && subcomponent == 1 ? std::string(value)
                                                                  : std::string();
  }
  const Separators& sep = message_->separators_;
  value = Piece(value, sep.repetition, repetition);
  value = Piece(value, sep.component, component - 1);
  value = Piece(value, sep.subcomponent, subcomponent - 1);
  return message_->Decode(value);
}

std::string Escape(std::string_view value, const Separators& separators) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    const char esc = separators.escape;
    if (c == separators.field) {
      out += {esc, 'F', esc};
    } else if (c == separators.component) {
      out += {esc, 'S', esc};
    } else if (c == separators.subcomponent) {
      out += {esc, 'T', esc};
    } else if (c == separators.repetition) {
      out += {esc, 'R', esc};
    } else if (c == esc) {
      out += {esc, 'E', esc};
    } else if (c == '\r' || c == '\n') {
      out += {esc, '.', 'b', 'r', esc};
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace carehub::adapters::hl7
