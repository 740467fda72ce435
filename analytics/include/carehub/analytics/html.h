#pragma once
// Small text helpers shared by the HTML reports (report.h, nhs_charts.h). Pure, thread-safe.

#include <string>

namespace carehub::analytics {

// `text` with <, >, & and " replaced by their HTML entities (safe in text and attribute values).
std::string HtmlEscape(const std::string& text);

// `value` with exactly `decimals` digits after the point ("%.*f").
std::string FormatFixed(double value, int decimals);

}  // namespace carehub::analytics
