#pragma once
// RFC 4180 CSV records from a stream: quoted fields with embedded commas, quotes ("") and line
// breaks; CRLF, LF or CR line ends; a UTF-8 byte order mark at the start is skipped; blank lines
// are skipped. Untrusted input is bounded: a record with more than max_columns fields or more than
// max_row_bytes bytes is reported as bad (its fields dropped) and reading carries on with the next
// record, so one bad row never stops a file. Not thread-safe; one reader per stream.

#include <cstddef>
#include <istream>
#include <string>
#include <vector>

namespace carehub::adapters::csv {

struct CsvLimits {
  size_t max_columns = 256;
  size_t max_row_bytes = 1024 * 1024;
};

struct CsvRecord {
  std::vector<std::string> fields;
  // Physical line (1-based) where the record starts.
  size_t line = 0;
  // Empty for a good record; else why the record is bad (fields may then be incomplete).
  std::string error;
  // 0-based field index the error is about, or -1 when it is about the whole record.
  int error_field = -1;
};

class CsvReader {
 public:
  // `in` is not owned and must outlive the reader.
  CsvReader(std::istream* in, CsvLimits limits);

  // Reads the next record; false at end of input (record untouched).
  bool Next(CsvRecord* record);

  // Bytes consumed so far.
  size_t bytes_read() const { return bytes_read_; }

 private:
  int Get();

  std::istream* in_;
  CsvLimits limits_;
  size_t line_ = 1;
  size_t bytes_read_ = 0;
  bool at_start_ = true;
  std::vector<int> pending_;  // characters pushed back, last out first
};

// True when `text` is well-formed UTF-8 without NUL bytes.
bool IsCleanUtf8(const std::string& text);

}  // namespace carehub::adapters::csv
