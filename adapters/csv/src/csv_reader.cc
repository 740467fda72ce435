#include "carehub/adapters/csv/csv_reader.h"

namespace carehub::adapters::csv {
namespace {

constexpr int kEof = -1;

}  // namespace

CsvReader::CsvReader(std::istream* in, CsvLimits limits) : in_(in), limits_(limits) {}

int CsvReader::Get() {
  if (!pending_.empty()) {
    int c = pending_.back();
    pending_.pop_back();
    return c;
  }
  int c = in_->rdbuf()->sbumpc();
  if (c == std::char_traits<char>::eof()) {
    return kEof;
  }
  ++bytes_read_;
  return c;
}

bool CsvReader::Next(CsvRecord* record) {
  if (at_start_) {
    at_start_ = false;
    // Skip a UTF-8 byte order mark (Excel writes one).
    int c0 = Get();
    int c1 = c0 == 0xEF ? Get() : kEof;
    int c2 = c1 == 0xBB ? Get() : kEof;
    if (!(c0 == 0xEF && c1 == 0xBB && c2 == 0xBF)) {
      for (int c : {c2, c1, c0}) {
        if (c != kEof) {
          pending_.push_back(c);
        }
      }
    }
  }

  enum class State { kFieldStart, kUnquoted, kQuoted, kQuoteInQuoted };
  while (true) {
    record->fields.clear();
    record->error.clear();
    record->error_field = -1;
    record->line = line_;
    std::string field;
    size_t row_bytes = 0;
    bool discard = false;  // over a limit: keep parsing to the record's end, store nothing
    bool any_content = false;
    State state = State::kFieldStart;
    auto fail = [&](std::string why, int field_index) {
      if (record->error.empty()) {
        record->error = std::move(why);
        record->error_field = field_index;
      }
    };
    auto end_field = [&] {
      if (!discard) {
        if (record->fields.size() >= limits_.max_columns) {
          fail("more than " + std::to_string(limits_.max_columns) + " columns", -1);
          discard = true;
          record->fields.clear();
        } else {
          record->fields.push_back(std::move(field));
        }
      }
      field.clear();
    };
    auto append = [&](int c) {
      ++row_bytes;
      if (discard) {
        return;
      }
      if (row_bytes > limits_.max_row_bytes) {
        fail("row longer than " + std::to_string(limits_.max_row_bytes) + " bytes", -1);
        discard = true;
        record->fields.clear();
        field.clear();
        return;
      }
      if (c == 0) {
        fail("NUL byte (binary data?)", static_cast<int>(record->fields.size()));
      }
      field.push_back(static_cast<char>(c));
    };
    // Consumes the LF of a CRLF pair.
    auto end_line = [&](int c) {
      if (c == '\r') {
        int next = Get();
        if (next != '\n' && next != kEof) {
          pending_.push_back(next);
        }
      }
      ++line_;
    };

    bool end_of_input = false;
    while (true) {
      int c = Get();
      if (c == kEof) {
        end_of_input = true;
        if (state == State::kQuoted) {
          fail("unterminated quoted field (opened on line " + std::to_string(record->line) + ")",
               static_cast<int>(record->fields.size()));
        }
        if (any_content) {
          end_field();
        }
        break;
      }
      if (state == State::kQuoted) {
        any_content = true;
        if (c == '"') {
          state = State::kQuoteInQuoted;
        } else {
          if (c == '\n' || (c == '\r')) {
            if (c == '\r') {
              int next = Get();
              append('\r');
              if (next == '\n') {
                append('\n');
              } else if (next != kEof) {
                pending_.push_back(next);
              }
            } else {
              append(c);
            }
            ++line_;
            continue;
          }
          append(c);
        }
        continue;
      }
      if (c == ',') {
        any_content = true;
        end_field();
        state = State::kFieldStart;
        continue;
      }
      if (c == '\n' || c == '\r') {
        end_line(c);
        if (any_content) {
          end_field();
        }
        break;
      }
      any_content = true;
      switch (state) {
        case State::kFieldStart:
          if (c == '"') {
            state = State::kQuoted;
          } else {
            append(c);
            state = State::kUnquoted;
          }
          break;
        case State::kUnquoted:
          if (c == '"') {
            fail("quote inside an unquoted field", static_cast<int>(record->fields.size()));
          }
          append(c);
          break;
        case State::kQuoteInQuoted:
          if (c == '"') {
            append('"');
            state = State::kQuoted;
          } else {
            fail("unexpected character after a closing quote",
                 static_cast<int>(record->fields.size()));
            append(c);
            state = State::kUnquoted;
          }
          break;
        case State::kQuoted:
          break;
      }
    }
    if (!any_content) {
      if (end_of_input) {
        return false;
      }
      continue;  // blank line
    }
    if (record->error.empty()) {
      for (size_t i = 0; i < record->fields.size(); ++i) {
        if (!IsCleanUtf8(record->fields[i])) {
          fail("invalid UTF-8 or NUL byte (binary data?)", static_cast<int>(i));
          break;
        }
      }
    }
    return true;
  }
}

bool IsCleanUtf8(const std::string& text) {
  size_t i = 0;
  while (i < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == 0) {
      return false;
    }
    size_t extra;
    if (c < 0x80) {
      extra = 0;
    } else if (c >= 0xC2 && c <= 0xDF) {
      extra = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      extra = 2;
    } else if (c >= 0xF0 && c <= 0xF4) {
      extra = 3;
    } else {
      return false;
    }
    if (i + extra >= text.size()) {
      return false;
    }
    for (size_t k = 1; k <= extra; ++k) {
      unsigned char follow = static_cast<unsigned char>(text[i + k]);
      if ((follow & 0xC0) != 0x80) {
        return false;
      }
    }
    // Overlong three-byte forms and surrogates.
    if (extra == 2) {
      unsigned char second = static_cast<unsigned char>(text[i + 1]);
      if ((c == 0xE0 && second < 0xA0) || (c == 0xED && second > 0x9F)) {
        return false;
      }
    }
    if (extra == 3) {
      unsigned char second = static_cast<unsigned char>(text[i + 1]);
      if ((c == 0xF0 && second < 0x90) || (c == 0xF4 && second > 0x8F)) {
        return false;
      }
    }
    i += extra + 1;
  }
  return true;
}

}  // namespace carehub::adapters::csv
