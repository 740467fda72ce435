#include "carehub/analytics/nhs_charts.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <utility>

#include "carehub/analytics/html.h"

namespace carehub::analytics {
namespace {

// NHS identity colours; Making Data Count's meaning for the three signal colours.
constexpr const char* kCommonCause = "#768692";  // grey
constexpr const char* kImprovement = "#41b6e6";  // light blue
constexpr const char* kConcern = "#ed8b00";      // orange
constexpr const char* kNeitherWay = "#7c2855";   // purple
constexpr const char* kCentre = "#425563";
constexpr const char* kLimit95 = "#41b6e6";
constexpr const char* kLimit998 = "#005eb8";

constexpr int kWidth = 720;
constexpr int kHeight = 320;
constexpr int kLeft = 64;
constexpr int kRight = 24;
constexpr int kTop = 16;
constexpr int kBottom = 44;

// Maps data coordinates onto the plot area of a kWidth × kHeight SVG.
struct Frame {
  double x_min, x_max, y_min, y_max;
  double X(double x) const {
    return kLeft + (x - x_min) / (x_max - x_min) * (kWidth - kLeft - kRight);
  }
  double Y(double y) const {
    const double clipped = std::clamp(y, y_min, y_max);
    return kHeight - kBottom - (clipped - y_min) / (y_max - y_min) * (kHeight - kTop - kBottom);
  }
};

std::string SvgOpen(const std::string& id, const std::string& title) {
  return "<svg class=\"chart\" id=\"" + id +
         "\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(kWidth) +
         "\" height=\"" + std::to_string(kHeight) + "\"><title>" + HtmlEscape(title) + "</title>\n";
}

std::string Line(double x1, double y1, double x2, double y2, const char* colour,
                 const char* dash = nullptr) {
  std::string out = "<line x1=\"" + FormatFixed(x1, 1) + "\" y1=\"" + FormatFixed(y1, 1) +
                    "\" x2=\"" + FormatFixed(x2, 1) + "\" y2=\"" + FormatFixed(y2, 1) +
                    "\" stroke=\"" + colour + "\"";
  if (dash != nullptr) {
    out += std::string(" stroke-dasharray=\"") + dash + "\"";
  }
  return out + "/>\n";
}

// Tick positions for [lo, hi]: multiples of a round step (1, 2 or 5 × 10^k) giving about five
// ticks, with the decimals that step needs, so a label always names the height it stands at.
struct Ticks {
  std::vector<double> at;
  int decimals = 0;
};
Ticks RoundTicks(double lo, double hi) {
  Ticks t;
  const double raw = (hi - lo) / 4;
  if (!(raw > 0)) {
    t.at.push_back(lo);
    return t;
  }
  const double magnitude = std::pow(10, std::floor(std::log10(raw)));
  double step = 10 * magnitude;
  for (double m : {1.0, 2.0, 5.0}) {
    if (m * magnitude >= raw) {
      step = m * magnitude;
      break;
    }
  }
  t.decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    t.at.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
  }
  return t;
}

// Axes with round ticks; x ticks only when `x_ticks` (the XmR chart labels periods instead).
std::string Axes(const Frame& f, bool x_ticks, const std::string& x_title,
                 const std::string& y_title) {
  std::ostringstream svg;
  svg << Line(kLeft, kTop, kLeft, kHeight - kBottom, kCentre)
      << Line(kLeft, kHeight - kBottom, kWidth - kRight, kHeight - kBottom, kCentre);
  const Ticks y_ticks = RoundTicks(f.y_min, f.y_max);
  for (double y : y_ticks.at) {
    svg << "<text x=\"" << kLeft - 4 << "\" y=\"" << FormatFixed(f.Y(y) + 4, 1)
        << "\" text-anchor=\"end\">" << FormatFixed(y, y_ticks.decimals) << "</text>\n";
  }
  if (x_ticks) {
    const Ticks ticks = RoundTicks(f.x_min, f.x_max);
    for (double x : ticks.at) {
      svg << "<text x=\"" << FormatFixed(f.X(x), 1) << "\" y=\"" << kHeight - kBottom + 14
          << "\" text-anchor=\"middle\">" << FormatFixed(x, ticks.decimals) << "</text>\n";
    }
  }
  svg << "<text x=\"" << (kLeft + kWidth - kRight) / 2 << "\" y=\"" << kHeight - 6
      << "\" text-anchor=\"middle\">" << HtmlEscape(x_title) << "</text>\n"
      << "<text x=\"12\" y=\"" << (kTop + kHeight - kBottom) / 2
      << "\" text-anchor=\"middle\" transform=\"rotate(-90 12 " << (kTop + kHeight - kBottom) / 2
      << ")\">" << HtmlEscape(y_title) << "</text>\n";
  return svg.str();
}

std::string Polyline(const std::vector<std::pair<double, double>>& points, const Frame& f,
                     const char* colour, const char* dash) {
  std::string out = "<polyline fill=\"none\" stroke=\"" + std::string(colour) + "\"";
  if (dash != nullptr) {
    out += std::string(" stroke-dasharray=\"") + dash + "\"";
  }
  out += " points=\"";
  for (const auto& [x, y] : points) {
    out += FormatFixed(f.X(x), 1) + "," + FormatFixed(f.Y(y), 1) + " ";
  }
  return out + "\"/>\n";
}

std::string Cell(const std::string& text) { return "<td>" + text + "</td>"; }

}  // namespace

std::string RenderFunnelSection(const FunnelSpec& spec, const std::vector<FunnelUnit>& units) {
  std::ostringstream html;
  html << "<h2 id=\"" << spec.id << "\">" << HtmlEscape(spec.title) << "</h2>\n";
  if (!spec.note.empty()) {
    html << "<p class=\"note\">" << spec.note << "</p>\n";
  }
  int64_t numerators = 0, denominators = 0;
  double max_denominator = 0, min_denominator = 0;
  for (const FunnelUnit& u : units) {
    if (u.denominator <= 0) {
      continue;
    }
    numerators += u.numerator;
    denominators += u.denominator;
    max_denominator = std::max(max_denominator, static_cast<double>(u.denominator));
    min_denominator = min_denominator == 0
                          ? static_cast<double>(u.denominator)
                          : std::min(min_denominator, static_cast<double>(u.denominator));
  }
  if (denominators == 0) {
    html << "<p class=\"note\">Nothing to plot: no " << HtmlEscape(spec.denominator_label)
         << " in the period.</p>\n";
    return html.str();
  }
  const double target = static_cast<double>(numerators) / static_cast<double>(denominators);
  const double m = spec.multiplier;
  html << "<p class=\"note\">Overall (the funnel's centre line): "
       << FormatFixed(target * m, spec.decimals) << " " << HtmlEscape(spec.value_unit) << " ("
       << numerators << " of " << denominators << "). Control limits at 95% and 99.8% ("
       << (spec.statistic == FunnelStatistic::kProportion
               ? "binomial: Wilson score, as PHE Fingertips"
               : "Poisson: Byar's method, as PHE Fingertips")
       << ").</p>\n";

  // The funnel: limits along ~80 denominators from a little below the smallest unit.
  const double x_max = max_denominator * 1.05;
  const double x_min = 0;
  // From a little below the smallest unit: further left the limits only widen off the chart.
  const double curve_from = std::max(1.0, min_denominator * 0.9);
  std::vector<std::pair<double, double>> lo95, hi95, lo998, hi998;
  double y_max = target * m * 1.5;
  for (int i = 0; i <= 80; ++i) {
    const double n = curve_from + (x_max - curve_from) * i / 80;
    const FunnelLimits l = ComputeFunnelLimits(spec.statistic, target, n);
    lo95.emplace_back(n, l.lower_95 * m);
    hi95.emplace_back(n, l.upper_95 * m);
    lo998.emplace_back(n, l.lower_998 * m);
    hi998.emplace_back(n, l.upper_998 * m);
  }
  const FunnelLimits widest = ComputeFunnelLimits(spec.statistic, target, curve_from);
  y_max = std::max(y_max, widest.upper_998 * m * 1.05);
  for (const FunnelUnit& u : units) {
    if (u.denominator > 0) {
      y_max = std::max(
          y_max, static_cast<double>(u.numerator) / static_cast<double>(u.denominator) * m * 1.1);
    }
  }
  const Frame f{x_min, x_max, 0, y_max};
  html << SvgOpen("chart-" + spec.id, spec.title)
       << Axes(f, true, spec.denominator_label, spec.numerator_label + " (" + spec.value_unit + ")")
       << Line(f.X(x_min), f.Y(target * m), f.X(x_max), f.Y(target * m), kCentre)
       << Polyline(lo95, f, kLimit95, "5,3") << Polyline(hi95, f, kLimit95, "5,3")
       << Polyline(lo998, f, kLimit998, nullptr) << Polyline(hi998, f, kLimit998, nullptr);

  std::ostringstream table;
  std::vector<std::string> above, below, above95, below95;
  table << "<table id=\"funnel-" << spec.id << "\"><tr><th>" << HtmlEscape(spec.unit_label)
        << "</th><th>" << HtmlEscape(spec.denominator_label) << "</th><th>"
        << HtmlEscape(spec.numerator_label) << "</th><th>Value (" << HtmlEscape(spec.value_unit)
        << ")</th><th>99.8% lower</th><th>95% lower</th><th>95% upper</th><th>99.8% upper</th>"
           "<th>Position</th></tr>\n";
  for (const FunnelUnit& u : units) {
    if (u.denominator <= 0) {
      table << "<tr>" << Cell(HtmlEscape(u.name)) << Cell("0") << Cell(std::to_string(u.numerator))
            << "<td></td><td></td><td></td><td></td><td></td><td>not plotted</td></tr>\n";
      continue;
    }
    const double value = static_cast<double>(u.numerator) / static_cast<double>(u.denominator);
    const FunnelLimits l =
        ComputeFunnelLimits(spec.statistic, target, static_cast<double>(u.denominator));
    const FunnelPosition position = ClassifyFunnel(l, value);
    const char* colour = kCommonCause;
    switch (position) {
      case FunnelPosition::kAbove998:
        above.push_back(u.name);
        colour = kConcern;
        break;
      case FunnelPosition::kAbove95:
        above95.push_back(u.name);
        colour = kConcern;
        break;
      case FunnelPosition::kBelow998:
        below.push_back(u.name);
        colour = kImprovement;
        break;
      case FunnelPosition::kBelow95:
        below95.push_back(u.name);
        colour = kImprovement;
        break;
      case FunnelPosition::kWithin:
        break;
    }
    const bool strong =
        position == FunnelPosition::kAbove998 || position == FunnelPosition::kBelow998;
    html << "<circle cx=\"" << FormatFixed(f.X(static_cast<double>(u.denominator)), 1) << "\" cy=\""
         << FormatFixed(f.Y(value * m), 1) << "\" r=\"4\" fill=\""
         << (position == FunnelPosition::kWithin ? kCommonCause : colour) << "\""
         << (strong || position == FunnelPosition::kWithin ? "" : " fill-opacity=\"0.5\"")
         << "><title>" << HtmlEscape(u.name) << ": " << FormatFixed(value * m, spec.decimals) << " "
         << HtmlEscape(spec.value_unit) << " (" << u.numerator << " / " << u.denominator << "), "
         << DescribeFunnelPosition(position) << "</title></circle>\n";
    if (strong) {
      html << "<text x=\"" << FormatFixed(f.X(static_cast<double>(u.denominator)) + 6, 1)
           << "\" y=\"" << FormatFixed(f.Y(value * m) - 4, 1) << "\">" << HtmlEscape(u.name)
           << "</text>\n";
    }
    table << "<tr>" << Cell(HtmlEscape(u.name)) << Cell(std::to_string(u.denominator))
          << Cell(std::to_string(u.numerator)) << Cell(FormatFixed(value * m, spec.decimals))
          << Cell(FormatFixed(l.lower_998 * m, spec.decimals + 1))
          << Cell(FormatFixed(l.lower_95 * m, spec.decimals + 1))
          << Cell(FormatFixed(l.upper_95 * m, spec.decimals + 1))
          << Cell(FormatFixed(l.upper_998 * m, spec.decimals + 1))
          << Cell(DescribeFunnelPosition(position)) << "</tr>\n";
  }
  table << "</table>\n";
  html << "</svg>\n";

  auto names = [](const std::vector<std::string>& list) {
    std::string out;
    for (const std::string& n : list) {
      out += (out.empty() ? "" : ", ") + HtmlEscape(n);
    }
    return out.empty() ? std::string("none") : out;
  };
  html << "<p class=\"outliers\" id=\"outliers-" << spec.id
       << "\">Outliers beyond the 99.8% limits: above: " << names(above)
       << "; below: " << names(below) << ". Beyond the 95% limits only: above: " << names(above95)
       << "; below: " << names(below95) << ".</p>\n"
       << table.str();
  return html.str();
}

std::string RenderXmrSection(const XmrSpec& spec, const std::vector<std::string>& labels,
                             const std::vector<double>& values) {
  std::ostringstream html;
  html << "<h2 id=\"" << spec.id << "\">" << HtmlEscape(spec.title) << "</h2>\n";
  if (!spec.note.empty()) {
    html << "<p class=\"note\">" << spec.note << "</p>\n";
  }
  if (values.empty()) {
    html << "<p class=\"note\">Nothing to plot: no periods.</p>\n";
    return html.str();
  }
  const XmrChart chart = ComputeXmr(values);
  const int d = spec.decimals + 2;
  if (values.size() < 15) {
    html << "<p class=\"note\">Only " << values.size()
         << " points: Making Data Count advises at least 15 (ideally 20) before the limits are "
            "relied on.</p>\n";
  }
  html << "<table id=\"spc-" << spec.id
       << "-summary\"><tr><th>Points</th><th>Mean</th><th>Mean moving range</th>"
          "<th>Lower process limit</th><th>Upper process limit</th></tr><tr>"
       << Cell(std::to_string(values.size())) << Cell(FormatFixed(chart.mean, d))
       << Cell(FormatFixed(chart.mean_moving_range, d))
       << Cell(FormatFixed(chart.lower_process_limit, d))
       << Cell(FormatFixed(chart.upper_process_limit, d)) << "</tr></table>\n";

  double y_min =
      std::min(chart.lower_process_limit, *std::min_element(values.begin(), values.end()));
  double y_max =
      std::max(chart.upper_process_limit, *std::max_element(values.begin(), values.end()));
  if (y_max - y_min < 1e-9) {
    y_max = y_min + 1;
  }
  const double pad = (y_max - y_min) * 0.05;
  const Frame f{0, std::max(1.0, static_cast<double>(values.size() - 1)), y_min - pad, y_max + pad};
  const double last = f.x_max;
  html << SvgOpen("chart-" + spec.id, spec.title)
       << Axes(f, false, spec.period_label, spec.value_label)
       << Line(f.X(0), f.Y(chart.mean), f.X(last), f.Y(chart.mean), kCentre)
       << Line(f.X(0), f.Y(chart.upper_process_limit), f.X(last), f.Y(chart.upper_process_limit),
               kCommonCause, "5,3")
       << Line(f.X(0), f.Y(chart.lower_process_limit), f.X(last), f.Y(chart.lower_process_limit),
               kCommonCause, "5,3");
  std::vector<std::pair<double, double>> path;
  for (size_t i = 0; i < values.size(); ++i) {
    path.emplace_back(static_cast<double>(i), values[i]);
  }
  html << Polyline(path, f, kCommonCause, nullptr);
  // About eight period labels along the x axis.
  const size_t step = std::max<size_t>(1, (labels.size() + 7) / 8);
  for (size_t i = 0; i < labels.size() && i < values.size(); i += step) {
    html << "<text x=\"" << FormatFixed(f.X(static_cast<double>(i)), 1) << "\" y=\""
         << kHeight - kBottom + 14 << "\" text-anchor=\"middle\">" << HtmlEscape(labels[i])
         << "</text>\n";
  }
  std::ostringstream table;
  table << "<table id=\"spc-" << spec.id << "\"><tr><th>" << HtmlEscape(spec.period_label)
        << "</th><th>" << HtmlEscape(spec.value_label)
        << "</th><th>Moving range</th><th>Special cause</th></tr>\n";
  for (size_t i = 0; i < chart.points.size(); ++i) {
    const XmrPoint& p = chart.points[i];
    const char* colour = kCommonCause;
    if (p.flags != 0) {
      if (spec.polarity == Polarity::kNeither) {
        colour = kNeitherWay;
      } else {
        const bool up_is_good = spec.polarity == Polarity::kHigherIsBetter;
        colour = (p.direction > 0) == up_is_good ? kImprovement : kConcern;
      }
    }
    const std::string label = i < labels.size() ? labels[i] : std::to_string(i + 1);
    const std::string flags = DescribeSpcFlags(p.flags);
    html << "<circle cx=\"" << FormatFixed(f.X(static_cast<double>(i)), 1) << "\" cy=\""
         << FormatFixed(f.Y(p.value), 1) << "\" r=\"3\" fill=\"" << colour << "\"><title>"
         << HtmlEscape(label) << ": " << FormatFixed(p.value, spec.decimals)
         << (flags.empty() ? "" : " (" + flags + ")") << "</title></circle>\n";
    table << "<tr>" << Cell(HtmlEscape(label)) << Cell(FormatFixed(p.value, spec.decimals))
          << Cell(i == 0 ? "" : FormatFixed(p.moving_range, spec.decimals))
          << Cell(flags.empty() ? "" : (p.direction > 0 ? "high: " : "low: ") + flags) << "</tr>\n";
  }
  html << "</svg>\n" << table.str() << "</table>\n";
  return html.str();
}

}  // namespace carehub::analytics
