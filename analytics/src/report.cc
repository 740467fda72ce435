#include "carehub/analytics/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "carehub/analytics/html.h"

namespace carehub::analytics {
namespace {

constexpr const char* kPalette[] = {"#005eb8", "#41b6e6", "#ffb81c", "#009639",
                                    "#ed8b00", "#7c2855", "#768692"};

std::string Escape(const std::string& text) { return HtmlEscape(text); }
std::string Fixed(double value, int decimals) { return FormatFixed(value, decimals); }

struct Series {
  std::string name;
  std::vector<double> values;  // one per label
};

// Horizontal grouped bars: one row per label, one bar per series.
std::string HBars(const std::string& id, const std::vector<std::string>& labels,
                  const std::vector<Series>& series, const std::string& unit, int decimals) {
  double max_value = 0;
  for (const Series& s : series) {
    for (double v : s.values) {
      max_value = std::max(max_value, v);
    }
  }
  if (max_value <= 0) {
    max_value = 1;
  }
  const int bar = 10;
  const int row = static_cast<int>(series.size()) * bar + 8;
  const int left = 150;
  const int width = 520;
  const int legend = series.size() > 1 ? 22 : 0;
  const int height = static_cast<int>(labels.size()) * row + 10 + legend;
  std::ostringstream svg;
  svg << "<svg class=\"chart\" id=\"" << id
      << "\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\" "
      << "width=\"" << left + width + 80 << "\" height=\"" << height << "\">\n";
  if (series.size() > 1) {
    for (size_t s = 0; s < series.size(); ++s) {
      svg << "<rect x=\"" << left + s * 110 << "\" y=\"4\" width=\"10\" height=\"10\" fill=\""
          << kPalette[s % 7] << "\"/><text x=\"" << left + s * 110 + 14 << "\" y=\"13\">"
          << Escape(series[s].name) << "</text>\n";
    }
  }
  for (size_t i = 0; i < labels.size(); ++i) {
    const int y0 = legend + static_cast<int>(i) * row + 4;
    svg << "<text x=\"" << left - 6 << "\" y=\"" << y0 + row / 2 + 2 << "\" text-anchor=\"end\">"
        << Escape(labels[i]) << "</text>\n";
    for (size_t s = 0; s < series.size(); ++s) {
      const double v = series[s].values[i];
      const int w = static_cast<int>(std::lround(v / max_value * width));
      const int y = y0 + static_cast<int>(s) * bar;
      svg << "<rect x=\"" << left << "\" y=\"" << y << "\" width=\"" << w << "\" height=\""
          << bar - 1 << "\" fill=\"" << kPalette[s % 7] << "\"><title>" << Escape(labels[i]) << " "
          << Escape(series[s].name) << ": " << Fixed(v, decimals) << unit << "</title></rect>";
      svg << "<text class=\"v\" x=\"" << left + w + 4 << "\" y=\"" << y + bar - 2 << "\">"
          << Fixed(v, decimals) << unit << "</text>\n";
    }
  }
  svg << "</svg>\n";
  return svg.str();
}

// Vertical bars for a single series.
std::string VBars(const std::string& id, const std::vector<std::string>& labels,
                  const std::vector<double>& values) {
  double max_value = 1;
  for (double v : values) {
    max_value = std::max(max_value, v);
  }
  const int col = 70;
  const int plot = 200;
  const int width = static_cast<int>(labels.size()) * col + 20;
  std::ostringstream svg;
  svg << "<svg class=\"chart\" id=\"" << id
      << "\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\" "
      << "width=\"" << width << "\" height=\"" << plot + 50 << "\">\n";
  for (size_t i = 0; i < labels.size(); ++i) {
    const int h = static_cast<int>(std::lround(values[i] / max_value * plot));
    const int x = 10 + static_cast<int>(i) * col;
    svg << "<rect x=\"" << x + 8 << "\" y=\"" << plot + 20 - h << "\" width=\"" << col - 16
        << "\" height=\"" << h << "\" fill=\"" << kPalette[0] << "\"><title>" << Escape(labels[i])
        << ": " << Fixed(values[i], 0) << "</title></rect>"
        << "<text class=\"v\" x=\"" << x + col / 2 << "\" y=\"" << plot + 16 - h
        << "\" text-anchor=\"middle\">" << Fixed(values[i], 0) << "</text>"
        << "<text x=\"" << x + col / 2 << "\" y=\"" << plot + 38 << "\" text-anchor=\"middle\">"
        << Escape(labels[i]) << "</text>\n";
  }
  svg << "</svg>\n";
  return svg.str();
}

// Rows: one per performer; each a 100% stacked bar over the bands.
std::string StackedShares(const std::string& id, const std::vector<std::string>& rows,
                          const std::vector<std::string>& bands,
                          const std::map<std::string, std::map<std::string, int64_t>>& counts) {
  const int left = 150;
  const int width = 520;
  const int row = 22;
  const int height = static_cast<int>(rows.size()) * row + 34;
  std::ostringstream svg;
  svg << "<svg class=\"chart\" id=\"" << id
      << "\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\" "
      << "width=\"" << left + width + 20 << "\" height=\"" << height << "\">\n";
  for (size_t b = 0; b < bands.size(); ++b) {
    svg << "<rect x=\"" << left + b * 86 << "\" y=\"4\" width=\"10\" height=\"10\" fill=\""
        << kPalette[b % 7] << "\"/><text x=\"" << left + b * 86 + 14 << "\" y=\"13\">"
        << Escape(bands[b]) << " d</text>\n";
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    const int y = 26 + static_cast<int>(i) * row;
    svg << "<text x=\"" << left - 6 << "\" y=\"" << y + 13 << "\" text-anchor=\"end\">"
        << Escape(rows[i]) << "</text>";
    auto it = counts.find(rows[i]);
    int64_t total = 0;
    if (it != counts.end()) {
      for (const auto& [band, n] : it->second) {
        total += n;
      }
    }
    double x = left;
    for (size_t b = 0; b < bands.size() && total > 0; ++b) {
      auto n_it = it->second.find(bands[b]);
      const int64_t n = n_it == it->second.end() ? 0 : n_it->second;
      const double w = static_cast<double>(n) / static_cast<double>(total) * width;
      svg << "<rect x=\"" << Fixed(x, 1) << "\" y=\"" << y << "\" width=\"" << Fixed(w, 1)
          << "\" height=\"16\" fill=\"" << kPalette[b % 7] << "\"><title>" << Escape(rows[i]) << " "
          << Escape(bands[b]) << " days: " << n << "</title></rect>";
      x += w;
    }
    svg << "\n";
  }
  svg << "</svg>\n";
  return svg.str();
}

int64_t Get(const std::map<std::string, int64_t>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? 0 : it->second;
}

double Share(int64_t part, int64_t whole) {
  return whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}

}  // namespace

std::string RenderReportHtml(const Indicators& ind, const PracticeList& practices) {
  std::ostringstream html;
  html << R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>carehub ICS analytics report</title>
<style>
body{font-family:Arial,Helvetica,sans-serif;margin:24px;color:#212b32;max-width:1000px}
h1{color:#005eb8}h2{border-bottom:2px solid #005eb8;padding-bottom:4px;margin-top:36px}
svg.chart text{font-size:11px;fill:#212b32}svg.chart text.v{fill:#425563}
table{border-collapse:collapse;font-size:12px;margin:8px 0}td,th{border:1px solid #d8dde0;padding:3px 8px;text-align:right}
th{background:#f0f4f5}td:first-child,th:first-child{text-align:left}.note{color:#425563;font-size:13px}
</style></head><body>
<h1>Integrated care system: population health report</h1>
<p class="note">Built by <code>carehub-analytics</code> from the <code>ics-analytics-feed</code>
subscription (secondary use: pseudonymised, national data opt-out applied). Counts and rates only:
no patient is identifiable from this page. Patients on the opt-out list are absent from every
numerator; denominators are the published registered-list sizes.</p>
)";
  html << "<p class=\"note\">Computed from " << ind.facts << " events.</p>\n";

  // Months present, in order.
  std::set<std::string> month_set;
  for (const auto& [practice, months] : ind.emergency_admissions) {
    for (const auto& [month, n] : months) {
      month_set.insert(month);
    }
  }
  const std::vector<std::string> months(month_set.begin(), month_set.end());
  std::vector<std::string> practice_labels;
  std::vector<Series> rate_series;
  for (const std::string& m : months) {
    rate_series.push_back({m, {}});
  }
  html << "<h2>Emergency admissions per 1,000 registered patients, by practice and month</h2>\n";
  std::ostringstream table;
  table << "<table><tr><th>Practice</th><th>PCN</th><th>Registered</th>";
  for (const std::string& m : months) {
    table << "<th>" << m << "</th>";
  }
  table << "<th>Quarter</th></tr>\n";
  for (const auto& [practice, size] : practices.sizes) {
    practice_labels.push_back(practice);
    auto it = ind.emergency_admissions.find(practice);
    int64_t total = 0;
    table << "<tr><td>" << Escape(practice) << "</td><td>"
          << Escape(practices.pcn_of.count(practice) ? practices.pcn_of.at(practice) : "")
          << "</td><td>" << size << "</td>";
    for (size_t m = 0; m < months.size(); ++m) {
      int64_t n = 0;
      if (it != ind.emergency_admissions.end()) {
        n = Get(it->second, months[m]);
      }
      total += n;
      const double rate =
          size > 0 ? 1000.0 * static_cast<double>(n) / static_cast<double>(size) : 0;
      rate_series[m].values.push_back(rate);
      table << "<td>" << Fixed(rate, 2) << "</td>";
    }
    table << "<td>"
          << Fixed(size > 0 ? 1000.0 * static_cast<double>(total) / static_cast<double>(size) : 0,
                   2)
          << "</td></tr>\n";
  }
  table << "</table>\n";
  html << HBars("emergency-admissions", practice_labels, rate_series, "", 2) << table.str();

  html << "<h2>A&amp;E attendances by age band</h2>\n";
  std::vector<std::string> bands = AgeBands();
  std::vector<double> ae;
  for (const std::string& b : bands) {
    ae.push_back(static_cast<double>(Get(ind.ae_by_age_band, b)));
  }
  if (Get(ind.ae_by_age_band, "unknown") > 0) {
    bands.push_back("unknown");
    ae.push_back(static_cast<double>(Get(ind.ae_by_age_band, "unknown")));
  }
  html << VBars("ae-age-bands", bands, ae);

  html << "<h2>Referral flows between organisations</h2>\n";
  // Requesters grouped by PCN, so thirty practices read as a handful of rows.
  std::map<std::string, std::map<std::string, int64_t>> matrix;
  std::set<std::string> performers;
  for (const auto& [flow, n] : ind.referral_flows) {
    const size_t gt = flow.find('>');
    std::string requester = flow.substr(0, gt);
    const std::string performer = flow.substr(gt + 1);
    auto pcn = practices.pcn_of.find(requester);
    if (pcn != practices.pcn_of.end()) {
      requester = pcn->second + " practices";
    }
    matrix[requester][performer] += n;
    performers.insert(performer);
  }
  html << "<table><tr><th>Referred by \\ to</th>";
  for (const std::string& p : performers) {
    html << "<th>" << Escape(p) << "</th>";
  }
  html << "<th>Total</th></tr>\n";
  std::vector<std::string> requesters;
  std::vector<double> requester_totals;
  for (const auto& [requester, row] : matrix) {
    int64_t total = 0;
    html << "<tr><td>" << Escape(requester) << "</td>";
    for (const std::string& p : performers) {
      html << "<td>" << Get(row, p) << "</td>";
      total += Get(row, p);
    }
    html << "<td>" << total << "</td></tr>\n";
    requesters.push_back(requester);
    requester_totals.push_back(static_cast<double>(total));
  }
  html << "</table>\n"
       << HBars("referral-volumes", requesters, {{"referrals", requester_totals}}, "", 0);

  html << "<h3>Acceptance rate by provider</h3>\n";
  std::vector<std::string> performer_list(performers.begin(), performers.end());
  std::vector<double> acceptance;
  html << "<table><tr><th>Provider</th><th>Accepted</th><th>Rejected</th><th>Acceptance</th>"
          "<th>Median days to first appointment</th></tr>\n";
  for (const std::string& p : performer_list) {
    const int64_t a = Get(ind.referrals_accepted, p);
    const int64_t r = Get(ind.referrals_rejected, p);
    acceptance.push_back(Share(a, a + r));
    html << "<tr><td>" << Escape(p) << "</td><td>" << a << "</td><td>" << r << "</td><td>"
         << Fixed(Share(a, a + r), 1) << "%</td><td>";
    if (ind.median_wait_days.count(p) != 0) {
      html << ind.median_wait_days.at(p);
    }
    html << "</td></tr>\n";
  }
  html << "</table>\n" << HBars("acceptance", performer_list, {{"accepted", acceptance}}, "%", 1);
  html << "<h3>Days from referral to first appointment, by provider</h3>\n"
       << StackedShares("referral-waits", performer_list, WaitBands(), ind.wait_days);

  html << "<h2>Did-not-attend rates</h2>\n";
  std::set<std::string> settings;
  for (const auto& [s, n] : ind.attended) {
    settings.insert(s);
  }
  for (const auto& [s, n] : ind.did_not_attend) {
    settings.insert(s);
  }
  std::vector<std::string> setting_list(settings.begin(), settings.end());
  std::vector<double> dna_rates;
  html << "<table><tr><th>Setting</th><th>Attended</th><th>Did not attend</th><th>DNA "
          "rate</th></tr>\n";
  for (const std::string& s : setting_list) {
    const int64_t att = Get(ind.attended, s);
    const int64_t dna = Get(ind.did_not_attend, s);
    dna_rates.push_back(Share(dna, att + dna));
    html << "<tr><td>" << Escape(s) << "</td><td>" << att << "</td><td>" << dna << "</td><td>"
         << Fixed(Share(dna, att + dna), 1) << "%</td></tr>\n";
  }
  html << "</table>\n" << HBars("dna-rates", setting_list, {{"DNA rate", dna_rates}}, "%", 1);

  html << "<h2>Hospital discharges followed by a GP or community contact within 7 days</h2>\n";
  std::vector<std::string> discharge_practices;
  std::vector<double> followed;
  for (const auto& [practice, n] : ind.discharges) {
    discharge_practices.push_back(practice);
    followed.push_back(Share(Get(ind.discharges_followed_up, practice), n));
  }
  html << HBars("discharge-follow-up", discharge_practices, {{"followed up", followed}}, "%", 1);
  html << "<table><tr><th>Practice</th><th>Discharges</th><th>Followed up in 7 days</th></tr>\n";
  for (const auto& [practice, n] : ind.discharges) {
    html << "<tr><td>" << Escape(practice) << "</td><td>" << n << "</td><td>"
         << Get(ind.discharges_followed_up, practice) << "</td></tr>\n";
  }
  html << "</table>\n";

  // Issue 21: which feed to fix. Shares of each publisher's events meeting each measure
  // (carehub/core/data_quality.h), and how late events arrive.
  html << "<h2>Data quality by publisher</h2>\n";
  html << "<p class=\"note\">Share of each publisher's events with a verified NHS number, a valid "
          "UK postcode, a valid registered GP practice and national codes, and the median time "
          "from the event to its arrival at the hub. Events of patients not yet identified are "
          "counted here without any identifier.</p>\n";
  html << "<table><tr><th>Publisher</th><th>Events</th><th>Verified NHS number</th>"
          "<th>Valid postcode</th><th>Valid practice</th><th>Valid codes</th>"
          "<th>Median delay (min)</th></tr>\n";
  std::vector<std::string> dq_publishers;
  std::vector<double> verified_shares;
  for (const auto& [publisher, q] : ind.data_quality) {
    dq_publishers.push_back(publisher);
    verified_shares.push_back(Share(q.verified_nhs_number, q.events));
    auto delay = ind.median_delay_minutes.find(publisher);
    html << "<tr><td>" << Escape(publisher) << "</td><td>" << q.events << "</td><td>"
         << Fixed(Share(q.verified_nhs_number, q.events), 1) << "%</td><td>"
         << Fixed(Share(q.valid_postcode, q.events), 1) << "%</td><td>"
         << Fixed(Share(q.valid_practice, q.events), 1) << "%</td><td>"
         << Fixed(Share(q.valid_codes, q.events), 1) << "%</td><td>"
         << (delay == ind.median_delay_minutes.end() ? std::string("-")
                                                     : std::to_string(delay->second))
         << "</td></tr>\n";
  }
  html << "</table>\n"
       << HBars("data-quality", dq_publishers, {{"verified NHS number", verified_shares}}, "%", 1);
  html << "</body></html>\n";
  return html.str();
}

}  // namespace carehub::analytics
