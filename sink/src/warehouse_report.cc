#include "carehub/sink/warehouse_report.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <vector>

#include "carehub/analytics/html.h"
#include "carehub/analytics/indicators.h"
#include "carehub/analytics/nhs_charts.h"
#include "carehub/sink/pg_connection.h"
#include "carehub/sink/pg_schema.h"

namespace carehub::sink {
namespace {

namespace analytics = carehub::analytics;

// Replaces every "{s}" in `sql` with the quoted schema name.
std::string WithSchema(std::string sql, const std::string& schema) {
  const std::string quoted = QuoteIdent(schema);
  for (size_t at = sql.find("{s}"); at != std::string::npos; at = sql.find("{s}", at)) {
    sql.replace(at, 3, quoted);
    at += quoted.size();
  }
  return sql;
}

// $1 and $2 are the period's first day and the day after its last (dates, UTC: the session's
// time zone is UTC, so occurred_at::date is the UTC day).
constexpr const char* kInPeriod = "occurred_at >= $1::date AND occurred_at < $2::date";

// Counts per practice: practice -> {numerator, denominator}.
using PracticeCounts = std::map<std::string, std::pair<int64_t, int64_t>>;

Result<PracticeCounts> CountByPractice(PgConnection& conn, const std::string& sql,
                                       const std::vector<std::string>& period) {
  auto rows = conn.Query(sql, period);
  if (!rows.ok()) {
    return rows.status();
  }
  PracticeCounts counts;
  for (const auto& row : rows.value()) {
    if (row.size() == 3 && row[0] && row[1] && row[2]) {
      counts[*row[0]] = {std::stoll(*row[1]), std::stoll(*row[2])};
    }
  }
  return counts;
}

Status WriteAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc | std::ios::binary);
    out << text;
    if (!out.flush()) {
      return Status::Error("write_failed", "cannot write " + tmp);
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    return Status::Error("write_failed", "cannot write " + path + ": " + ec.message());
  }
  return Status::Ok();
}

// The practices of the list as funnel units, numerators and denominators from `counts` (or the
// list size as the denominator when `list_denominator`).
std::vector<analytics::FunnelUnit> Units(const analytics::PracticeList& practices,
                                         const PracticeCounts& counts, bool list_denominator) {
  std::vector<analytics::FunnelUnit> units;
  for (const auto& [practice, size] : practices.sizes) {
    auto it = counts.find(practice);
    analytics::FunnelUnit unit;
    unit.name = practice;
    unit.numerator = it == counts.end() ? 0 : it->second.first;
    unit.denominator = list_denominator ? size : (it == counts.end() ? 0 : it->second.second);
    units.push_back(unit);
  }
  return units;
}

}  // namespace

Status WriteWarehouseReport(const WarehouseReportOptions& options, std::string* summary) {
  CAREHUB_RETURN_IF_ERROR(CheckSchemaName(options.schema));
  CAREHUB_RETURN_IF_ERROR(CheckDsn(options.dsn));
  static const std::regex kDate("[0-9]{4}-[0-9]{2}-[0-9]{2}");
  for (const std::string* date : {&options.from, &options.to}) {
    if (!date->empty() && !std::regex_match(*date, kDate)) {
      return Status::Error("bad_config", "a date must be YYYY-MM-DD, not '" + *date + "'");
    }
  }
  if (options.from.empty() != options.to.empty()) {
    return Status::Error("bad_config", "give both --from and --to, or neither");
  }
  std::string error;
  std::optional<analytics::PracticeList> practices =
      analytics::ReadPracticeList(options.practices_path, &error);
  if (!practices) {
    return Status::Error("bad_config", error);
  }

  auto connected = PgConnection::Connect(options.dsn, options.connect_timeout_s);
  if (!connected.ok()) {
    return connected.status();
  }
  PgConnection& conn = *connected.value();
  CAREHUB_RETURN_IF_ERROR(
      conn.Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL TIME ZONE 'UTC'"));
  auto tables = conn.Query("SELECT to_regclass($1) IS NOT NULL",
                           {QuoteIdent(options.schema) + ".activity_current"});
  if (!tables.ok()) {
    return tables.status();
  }
  if (tables->empty() || !(*tables)[0][0] || *(*tables)[0][0] != "t") {
    return Status::Error("bad_config", "schema " + options.schema +
                                           " has no carehub-sink tables (run carehub-sink "
                                           "postgres on it first)");
  }

  std::vector<std::string> period = {options.from, options.to};
  if (options.from.empty()) {
    auto span = conn.Query(
        WithSchema("SELECT to_char(min(occurred_at)::date, 'YYYY-MM-DD'), "
                   "to_char(max(occurred_at)::date + 1, 'YYYY-MM-DD') FROM {s}.activity_current",
                   options.schema));
    if (!span.ok()) {
      return span.status();
    }
    if (span->empty() || !(*span)[0][0] || !(*span)[0][1]) {
      return Status::Error("bad_config", "no activity in schema " + options.schema +
                                             ": give --from and --to for an empty report");
    }
    period = {*(*span)[0][0], *(*span)[0][1]};
  }
  auto ordered = conn.Query("SELECT $1::date < $2::date", period);
  if (!ordered.ok()) {
    return ordered.status().code() == "postgres_error"
               ? Status::Error("bad_config", "not a date range: " + ordered.status().message())
               : ordered.status();
  }
  if (ordered->empty() || !(*ordered)[0][0] || *(*ordered)[0][0] != "t") {
    return Status::Error("bad_config", "the period is empty: --from " + period[0] +
                                           " is not before --to " + period[1]);
  }
  const std::string in_period = kInPeriod;

  // Funnels: one point per practice of the list.
  auto admissions =
      CountByPractice(conn,
                      WithSchema("SELECT registered_gp_ods, count(*), 0 FROM {s}.activity_current "
                                 "WHERE event_type = 'activity.emergency_admission' AND " +
                                     in_period + " AND registered_gp_ods IS NOT NULL GROUP BY 1",
                                 options.schema),
                      period);
  if (!admissions.ok()) {
    return admissions.status();
  }
  auto follow_up = CountByPractice(
      conn,
      WithSchema(
          // A discharge is followed up when the same patient has a GP or community contact in
          // the 7 days after it. Written as an equality join on the patient (a hash join: each
          // view is read once) rather than a correlated EXISTS, which re-read the whole
          // activity_current view for every discharge (4 minutes on the demo's quarter).
          "WITH d AS MATERIALIZED ("
          "  SELECT row_number() OVER () AS id, registered_gp_ods,"
          "         coalesce(pseudonym, nhs_number) AS patient, occurred_at"
          "  FROM {s}.activity_current WHERE event_type = 'activity.discharge'"
          "  AND occurred_at >= $1::date AND occurred_at < $2::date"
          "  AND registered_gp_ods IS NOT NULL), "
          "c AS MATERIALIZED ("
          "  SELECT coalesce(pseudonym, nhs_number) AS patient, occurred_at"
          "  FROM {s}.activity_current"
          "  WHERE event_type IN ('activity.gp_consultation', 'activity.community_contact')), "
          "followed AS (SELECT DISTINCT d.id FROM d JOIN c ON c.patient = d.patient"
          "  AND c.occurred_at > d.occurred_at"
          "  AND c.occurred_at <= d.occurred_at + interval '7 days') "
          "SELECT d.registered_gp_ods, count(f.id), count(*) "
          "FROM d LEFT JOIN followed f ON f.id = d.id GROUP BY 1",
          options.schema),
      period);
  if (!follow_up.ok()) {
    return follow_up.status();
  }
  auto dna = CountByPractice(
      conn,
      WithSchema("SELECT site_ods, count(*) FILTER (WHERE event_type = 'activity.did_not_attend'),"
                 " count(*) FROM {s}.activity_current WHERE event_type IN "
                 "('activity.did_not_attend', 'activity.gp_consultation') AND " +
                     in_period + " AND site_ods IS NOT NULL GROUP BY 1",
                 options.schema),
      period);
  if (!dna.ok()) {
    return dna.status();
  }

  // Series: every day (or whole week) of the period, zero where nothing happened.
  const std::string daily =
      "WITH c AS (SELECT occurred_at::date AS day, count(*) AS n FROM {s}.activity_current "
      "WHERE event_type = $3 AND " +
      in_period +
      " GROUP BY 1) "
      "SELECT to_char(g, 'YYYY-MM-DD'), coalesce(c.n, 0) FROM generate_series($1::date::timestamp,"
      " $2::date::timestamp - interval '1 day', interval '1 day') AS g "
      "LEFT JOIN c ON c.day = g::date ORDER BY g";
  std::vector<std::string> admissions_params = {period[0], period[1],
                                                "activity.emergency_admission"};
  auto admissions_daily = conn.Query(WithSchema(daily, options.schema), admissions_params);
  if (!admissions_daily.ok()) {
    return admissions_daily.status();
  }
  auto ae_daily = conn.Query(WithSchema(daily, options.schema),
                             {period[0], period[1], "activity.ae_attendance"});
  if (!ae_daily.ok()) {
    return ae_daily.status();
  }
  // Whole weeks only (Monday to Sunday inside the period): a part week would be a smaller sample
  // drawn as if it were like the others.
  auto dna_weekly = conn.Query(
      WithSchema("WITH c AS (SELECT date_trunc('week', occurred_at)::date AS week,"
                 " count(*) FILTER (WHERE event_type = 'activity.did_not_attend') AS dna,"
                 " count(*) AS n FROM {s}.activity_current WHERE event_type IN "
                 "('activity.did_not_attend', 'activity.gp_consultation') AND " +
                     in_period +
                     " AND site_ods ~ '^[A-Z][0-9]{5}$' GROUP BY 1) "
                     "SELECT to_char(g, 'YYYY-MM-DD'), coalesce(c.dna, 0), coalesce(c.n, 0) "
                     "FROM generate_series(date_trunc('week', $1::date + 6)::date::timestamp,"
                     " $2::date::timestamp - interval '7 days', interval '7 days') AS g "
                     "LEFT JOIN c ON c.week = g::date ORDER BY g",
                 options.schema),
      period);
  if (!dna_weekly.ok()) {
    return dna_weekly.status();
  }
  CAREHUB_RETURN_IF_ERROR(conn.Exec("COMMIT"));

  auto labels_values = [](const PgRows& rows, std::vector<std::string>* labels,
                          std::vector<double>* values) {
    for (const auto& row : rows) {
      labels->push_back(row[0].value_or(""));
      values->push_back(std::stod(row[1].value_or("0")));
    }
  };
  std::ostringstream html;
  html << R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>carehub ICS report: funnel plots and SPC charts</title>
<style>
body{font-family:Arial,Helvetica,sans-serif;margin:24px;color:#212b32;max-width:1000px}
h1{color:#005eb8}h2{border-bottom:2px solid #005eb8;padding-bottom:4px;margin-top:36px}
svg.chart text{font-size:11px;fill:#212b32}
table{border-collapse:collapse;font-size:12px;margin:8px 0}td,th{border:1px solid #d8dde0;padding:3px 8px;text-align:right}
th{background:#f0f4f5}td:first-child,th:first-child{text-align:left}.note{color:#425563;font-size:13px}
.outliers{font-weight:bold}
</style></head><body>
<h1>Integrated care system: practice comparisons and trends</h1>
)";
  html << "<p class=\"note\">Built by <code>carehub-sink report</code> from the PostgreSQL tables "
          "of schema <code>"
       << analytics::HtmlEscape(options.schema) << "</code> (the current state: after UPDATE "
       << "and CANCEL), period <b>" << period[0] << "</b> to the day before <b>" << period[1]
       << "</b> (UTC). Practice comparisons are funnel plots (95% and 99.8% control limits "
          "around the overall value; a practice beyond 99.8% is named as an outlier); time "
          "series are XmR charts with NHS England's Making Data Count rules (a point outside "
          "the process limits; a run of 7 or more on one side of the mean; 6 or more points "
          "each rising or falling; 2 of 3 points beyond 2 sigma on one side). Counts and rates "
          "only: no patient is identifiable from this page.</p>\n";

  const analytics::FunnelSpec admissions_spec{
      .id = "emergency-admissions",
      .title = "Emergency admissions per 1,000 registered patients, by practice",
      .note =
          "Emergency admissions of each practice's registered patients in the period against "
          "its published list size.",
      .numerator_label = "Emergency admissions",
      .denominator_label = "Registered patients",
      .statistic = analytics::FunnelStatistic::kRate,
      .multiplier = 1000,
      .value_unit = "per 1,000",
      .decimals = 2};
  html << analytics::RenderFunnelSection(admissions_spec,
                                         Units(*practices, admissions.value(), true));
  const analytics::FunnelSpec follow_spec{
      .id = "discharge-follow-up",
      .title = "Discharges followed by a GP or community contact within 7 days",
      .note =
          "Hospital discharges in the period of each practice's patients, and how many were "
          "followed within 7 days by a GP consultation or community contact of the same "
          "patient.",
      .numerator_label = "Followed up",
      .denominator_label = "Discharges",
      .statistic = analytics::FunnelStatistic::kProportion,
      .multiplier = 100,
      .value_unit = "%",
      .decimals = 1};
  html << analytics::RenderFunnelSection(follow_spec, Units(*practices, follow_up.value(), false));
  const analytics::FunnelSpec dna_spec{
      .id = "gp-dna",
      .title = "GP appointments not attended, by practice",
      .note =
          "Did-not-attend events at each practice as a share of its booked appointments (did "
          "not attend + GP consultations).",
      .numerator_label = "Did not attend",
      .denominator_label = "Appointments",
      .statistic = analytics::FunnelStatistic::kProportion,
      .multiplier = 100,
      .value_unit = "%",
      .decimals = 1};
  html << analytics::RenderFunnelSection(dna_spec, Units(*practices, dna.value(), false));

  std::vector<std::string> labels;
  std::vector<double> values;
  labels_values(admissions_daily.value(), &labels, &values);
  html << analytics::RenderXmrSection({.id = "emergency-admissions-daily",
                                       .title = "Emergency admissions per day (all practices)",
                                       .value_label = "Emergency admissions",
                                       .polarity = analytics::Polarity::kLowerIsBetter},
                                      labels, values);
  labels.clear();
  values.clear();
  labels_values(ae_daily.value(), &labels, &values);
  html << analytics::RenderXmrSection({.id = "ae-attendances-daily",
                                       .title = "A&E attendances per day",
                                       .value_label = "A&E attendances",
                                       .polarity = analytics::Polarity::kNeither},
                                      labels, values);
  labels.clear();
  values.clear();
  for (const auto& row : dna_weekly.value()) {
    const int64_t n = std::stoll(row[2].value_or("0"));
    if (n > 0) {  // a week without appointments has no rate
      labels.push_back(row[0].value_or(""));
      values.push_back(100.0 * std::stod(row[1].value_or("0")) / static_cast<double>(n));
    }
  }
  html << analytics::RenderXmrSection({.id = "gp-dna-weekly",
                                       .title = "GP appointments not attended, % by week",
                                       .note = "Weeks from Monday; only whole weeks inside the "
                                               "period.",
                                       .period_label = "Week from",
                                       .value_label = "Did not attend (%)",
                                       .polarity = analytics::Polarity::kLowerIsBetter,
                                       .decimals = 1},
                                      labels, values);
  html << "</body></html>\n";

  CAREHUB_RETURN_IF_ERROR(WriteAtomically(options.out_path, html.str()));
  if (summary != nullptr) {
    *summary = "report " + options.out_path + ": " + period[0] + " to " + period[1] +
               " (exclusive), 3 funnel plots, 3 XmR charts";
  }
  return Status::Ok();
}

}  // namespace carehub::sink
