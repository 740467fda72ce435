#pragma once
// Small text helpers shared by the HTML reports (report.h, nhs_charts.h). Pure, thread-safe.

#include <string>

#include "carehub/core/strings.h"

namespace carehub::analytics {

// core/strings.h's, shared with the hub's printable reports.
using carehub::HtmlEscape;

// `value` with exactly `decimals` digits after the point ("%.*f").
std::string FormatFixed(double value, int decimals);

}  // namespace carehub::analytics
