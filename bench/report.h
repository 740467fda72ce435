#pragma once
// The benchmark's results: one row per figure for the printed table, and the same figures as JSON.

#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace carehub::bench {

struct ReportRow {
  std::string section;
  std::string metric;
  std::string value;
  std::string target;  // empty when the issue sets none
  std::optional<bool> met;
};

class Report {
 public:
  // Records `value` under json[section][key] and adds a table row.
  void Add(const std::string& section, const std::string& key, const std::string& metric,
           double value, const std::string& unit, const std::string& target = "",
           std::optional<bool> met = std::nullopt);
  // A JSON-only value (no row).
  void Set(const std::string& section, const std::string& key, nlohmann::json value) {
    json_["results"][section][key] = std::move(value);
  }
  // A target's verdict for the summary printed after the table (and json["summary"]).
  void AddSummary(const std::string& target, const std::string& measured, bool met);
  nlohmann::json& json() { return json_; }
  const std::vector<ReportRow>& rows() const { return rows_; }
  void Print(std::FILE* out) const;

 private:
  nlohmann::json json_;
  std::vector<ReportRow> rows_;
  struct SummaryLine {
    std::string target, measured;
    bool met;
  };
  std::vector<SummaryLine> summary_;
};

// "1.23M", "456k", "12.3" ...
std::string Human(double value);

}  // namespace carehub::bench
