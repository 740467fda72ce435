#pragma once
// Internal: the two CSV layouts (docs/adapters_fhir_csv.md), detection from the header, and the
// mapping of one row to an event. Pure functions; no I/O.

#include <map>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "carehub/core/status.h"
#include "carehub/v1/event.pb.h"

namespace carehub::adapters::csv::internal {

enum class Layout { kActivity, kReferral };

std::string LayoutName(Layout layout);

struct Header {
  Layout layout = Layout::kActivity;
  // Normalised column name -> field index.
  std::map<std::string, size_t> columns;
  std::vector<std::string> names;
};

// Detects the layout; errors say which required columns are missing or which are duplicated.
Result<Header> DetectLayout(const std::vector<std::string>& header_fields);

struct RowContext {
  std::string publisher_ods;
  std::set<std::string> allowed_ods;  // includes publisher_ods
  std::string source_system;
  std::string file_name;
};

// A problem with one row: the column it is about and why. Never holds the cell's value.
struct RowError {
  std::string column;
  std::string reason;
};

// Maps one row (fields.size() == header.names.size()) to an event with lifecycle set.
std::variant<v1::Event, RowError> MapRow(const Header& header,
                                         const std::vector<std::string>& fields,
                                         const RowContext& context);

// Parses a CSV date-time: ISO 8601 with or without offset, "YYYY-MM-DD HH:MM[:SS]",
// "DD/MM/YYYY[ HH:MM[:SS]]" or a date alone. Without an offset the time is UK local time
// (Europe/London: GMT, or BST from the last Sunday of March to the last Sunday of October).
bool ParseCsvDateTime(const std::string& text, google::protobuf::Timestamp* out);

}  // namespace carehub::adapters::csv::internal
