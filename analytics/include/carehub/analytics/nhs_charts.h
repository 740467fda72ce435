#pragma once
// HTML sections (heading, inline SVG chart, table of every plotted figure) for the report in the
// NHS's own conventions: funnel plots for comparing practices and XmR charts for time series,
// over the statistics of spc.h. The tables carry every number the chart draws (values, limits,
// flags), so a reader — or a test — can check the picture without measuring pixels.
//
// Table ids, for tools that read the page: `funnel-<id>` (one row per unit), `outliers-<id>`
// (a paragraph naming the units beyond the limits), `spc-<id>-summary` (mean, mean moving range,
// limits) and `spc-<id>` (one row per period). Pure functions; thread-safe; no errors (empty
// input gives a section that says there is nothing to plot).

#include <cstdint>
#include <string>
#include <vector>

#include "carehub/analytics/spc.h"

namespace carehub::analytics {

// Members all have defaults, so a spec can name only what it sets (designated initializers).
struct FunnelSpec {
  std::string id{};     // [a-z0-9-]+, unique in the page
  std::string title{};  // the heading
  std::string note{};   // a sentence on what is counted (HTML allowed; not escaped)
  std::string unit_label = "Practice";
  std::string numerator_label{};
  std::string denominator_label{};
  FunnelStatistic statistic = FunnelStatistic::kRate;
  double multiplier = 1000;              // value shown = numerator / denominator × multiplier
  std::string value_unit = "per 1,000";  // shown after values
  int decimals = 2;
};

struct FunnelUnit {
  std::string name;
  int64_t numerator = 0;
  int64_t denominator = 0;  // units with a denominator <= 0 are listed but not plotted
};

std::string RenderFunnelSection(const FunnelSpec& spec, const std::vector<FunnelUnit>& units);

// Which direction of change is good: decides the colour of special-cause points (Making Data
// Count: blue improvement, orange concern, purple where neither direction is better).
enum class Polarity { kHigherIsBetter, kLowerIsBetter, kNeither };

struct XmrSpec {
  std::string id{};
  std::string title{};
  std::string note{};  // HTML allowed; not escaped
  std::string period_label = "Day";
  std::string value_label{};
  Polarity polarity = Polarity::kNeither;
  int decimals = 0;  // of the values; the mean and limits get two more
};

// `labels[i]` names the period of `values[i]` (both in time order, same length).
std::string RenderXmrSection(const XmrSpec& spec, const std::vector<std::string>& labels,
                             const std::vector<double>& values);

}  // namespace carehub::analytics
