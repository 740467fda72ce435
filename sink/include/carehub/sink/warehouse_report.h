#pragma once
// `carehub-sink report`: the ICS report in the NHS's own conventions, computed from the tables
// carehub-sink postgres keeps (docs/postgres-sink.md, "Funnel plots and SPC charts"). SQL over the
// current state (`activity_current`: after UPDATE and CANCEL) gives the counts; the practice list
// (the published registered-list sizes, the same CSV carehub-analytics reads) gives the
// denominators of per-1,000 rates; analytics/spc.h gives the limits and special-cause flags;
// analytics/nhs_charts.h draws them. One self-contained HTML page, written atomically:
//
//   funnel plots  emergency admissions per 1,000 registered patients (Poisson), discharges
//                 followed up within 7 days (binomial), GP appointments not attended (binomial),
//                 one point per practice, 95% and 99.8% limits, outliers named;
//   XmR charts    emergency admissions per day, A&E attendances per day, GP did-not-attend rate
//                 per whole week (Monday to Sunday), Making Data Count's rules.
//
// Every query runs in one REPEATABLE READ READ ONLY transaction, so a sink loading at the same
// time cannot make two charts disagree. Times are bucketed in UTC. No patient-level value leaves
// the database: the page holds counts per practice and per period only.
//
// Errors (Status codes): "bad_config" (unreadable practice list, malformed or empty date range,
// bad schema name, the schema has no sink tables), "postgres_unavailable" / "postgres_error"
// (pg_connection.h), "write_failed". Thread-compatible: one call at a time per options object.

#include <string>

#include "carehub/core/status.h"

namespace carehub::sink {

struct WarehouseReportOptions {
  std::string dsn;
  std::string schema = "carehub";
  int connect_timeout_s = 5;
  std::string practices_path;  // CSV practice_ods,pcn,registered_patients
  std::string out_path;        // the HTML page
  // The period, [from, to) as YYYY-MM-DD (UTC); empty: from the first to the day after the last
  // activity in the tables.
  std::string from;
  std::string to;
};

// Queries, renders and writes `out_path` (via a temporary file and rename). On success, `summary`
// (when not null) gets one line: the period and how many charts and outliers the page shows.
Status WriteWarehouseReport(const WarehouseReportOptions& options, std::string* summary);

}  // namespace carehub::sink
