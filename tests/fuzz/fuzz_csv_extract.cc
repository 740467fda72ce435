// CSV drop-folder extracts (adapters/csv): the file's bytes through CsvReader, layout detection
// from the header, row mapping and validation, as DropFolderWatcher processes a file.
//
// Invariants: reading never fails on any bytes and always ends; line numbers never go back; no
// record exceeds the column limit; a row that maps and validates re-encodes.

#include <sstream>

#include "carehub/adapters/csv/csv_reader.h"
#include "carehub/core/validation.h"
#include "csv_layout.h"
#include "fuzz_support.h"

namespace csv = carehub::adapters::csv;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  carehub::fuzz::QuietLoggers();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  carehub::fuzz::Bytes in(data, size);
  csv::CsvLimits limits;
  limits.max_columns = 4 + in.Byte() % 64;
  limits.max_row_bytes = 16 + in.Byte() * 16;
  std::istringstream stream{std::string(in.rest())};
  const size_t total = in.rest().size();
  csv::CsvReader reader(&stream, limits);

  csv::CsvRecord header_record;
  if (!reader.Next(&header_record)) {
    return 0;
  }
  (void)csv::IsCleanUtf8(std::string(in.rest()));
  carehub::Result<csv::internal::Header> header =
      header_record.error.empty() ? csv::internal::DetectLayout(header_record.fields)
                                  : carehub::Result<csv::internal::Header>(carehub::Status::Error(
                                        "bad_header", header_record.error));
  static const csv::internal::RowContext context = [] {
    csv::internal::RowContext c;
    c.publisher_ods = "M85001";
    c.allowed_ods = {"M85001", "M85002"};
    c.source_system = "fuzz";
    c.file_name = "extract.csv";
    return c;
  }();
  static carehub::fuzz::FixedClock clock;
  carehub::ValidationLimits validation;
  size_t last_line = header_record.line;
  csv::CsvRecord record;
  size_t rows = 0;
  while (reader.Next(&record)) {
    CAREHUB_FUZZ_CHECK(++rows <= total + 1, "more records than bytes");
    CAREHUB_FUZZ_CHECK(record.line >= last_line, "line numbers went back");
    last_line = record.line;
    CAREHUB_FUZZ_CHECK(record.fields.size() <= limits.max_columns || !record.error.empty(),
                       "record over the column limit without an error");
    CAREHUB_FUZZ_CHECK(reader.bytes_read() <= total, "read more than the file");
    if (!header.ok() || !record.error.empty() ||
        record.fields.size() != header->names.size()) {
      continue;
    }
    auto mapped = csv::internal::MapRow(*header, record.fields, context);
    if (auto* error = std::get_if<csv::internal::RowError>(&mapped)) {
      CAREHUB_FUZZ_CHECK(!error->reason.empty(), "row refused without a reason");
      continue;
    }
    carehub::v1::Event& event = std::get<carehub::v1::Event>(mapped);
    carehub::Status valid =
        carehub::ValidateEvent(event, event.ByteSizeLong(), validation, clock.Now());
    if (valid.ok()) {
      carehub::fuzz::CheckReencodes(event);
    }
  }
  return 0;
}
