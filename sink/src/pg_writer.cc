#include "carehub/sink/pg_writer.h"

#include <algorithm>
#include <chrono>

#include "carehub/core/crash_points.h"
#include "carehub/core/log.h"
#include "carehub/sink/pg_schema.h"

namespace carehub::sink {

PgWriter::PgWriter(std::unique_ptr<PgConnection> conn, PgWriterOptions options)
    : conn_(std::move(conn)), options_(std::move(options)), s_(QuoteIdent(options_.schema)) {}

Result<std::unique_ptr<PgWriter>> PgWriter::Open(const PgWriterOptions& options) {
  CAREHUB_RETURN_IF_ERROR(CheckSchemaName(options.schema));
  auto conn = PgConnection::Connect(options.dsn, options.connect_timeout_s);
  if (!conn.ok()) {
    return conn.status();
  }
  CAREHUB_RETURN_IF_ERROR(Migrate(*conn.value(), options.schema));
  std::unique_ptr<PgWriter> writer(new PgWriter(std::move(conn).value(), options));
  const std::string& s = writer->s_;
  CAREHUB_RETURN_IF_ERROR(writer->conn_
                              ->Query("INSERT INTO " + s +
                                          ".sink_position (subscription) VALUES ($1) "
                                          "ON CONFLICT (subscription) DO NOTHING",
                                      {options.subscription})
                              .status());
  auto others =
      writer->conn_->Query("SELECT subscription FROM " + s +
                               ".sink_position WHERE subscription <> $1 AND hub_seq > 0 LIMIT 1",
                           {options.subscription});
  if (!others.ok()) {
    return others.status();
  }
  if (!others.value().empty()) {
    return Status::Error("bad_config",
                         "schema " + options.schema + " already holds subscription '" +
                             others.value()[0][0].value_or("") +
                             "'; give each subscription its own schema (postgres.schema)");
  }
  return writer;
}

Result<uint64_t> PgWriter::Position() {
  auto rows = conn_->Query("SELECT hub_seq FROM " + s_ + ".sink_position WHERE subscription = $1",
                           {options_.subscription});
  if (!rows.ok()) {
    return rows.status();
  }
  if (rows.value().empty()) {
    return Status::Error("postgres_error", "the position row of '" + options_.subscription +
                                               "' is missing from " + options_.schema +
                                               ".sink_position");
  }
  return static_cast<uint64_t>(std::stoull(rows.value()[0][0].value_or("0")));
}

Result<WriteOutcome> PgWriter::Write(const std::vector<v1::DeliveredEvent>& events,
                                     uint64_t scanned_to_seq) {
  CAREHUB_RETURN_IF_ERROR(conn_->Exec("BEGIN"));
  auto outcome = WriteInTransaction(events, scanned_to_seq);
  if (!outcome.ok()) {
    if (conn_->Healthy()) {
      (void)conn_->Exec("ROLLBACK");
    }
    return outcome;
  }
  CAREHUB_CRASH_POINT("sink.before_commit");
  Status committed = conn_->Exec("COMMIT");
  if (!committed.ok()) {
    // A COMMIT whose answer was lost may or may not have happened: the next writer's position
    // read tells, and redelivered events at or below it are skipped.
    return committed;
  }
  return outcome;
}

Result<WriteOutcome> PgWriter::WriteInTransaction(const std::vector<v1::DeliveredEvent>& events,
                                                  uint64_t scanned_to_seq) {
  auto locked = conn_->Query(
      "SELECT hub_seq FROM " + s_ + ".sink_position WHERE subscription = $1 FOR UPDATE",
      {options_.subscription});
  if (!locked.ok()) {
    return locked.status();
  }
  if (locked.value().empty()) {
    return Status::Error("postgres_error", "the position row of '" + options_.subscription +
                                               "' is missing from " + options_.schema +
                                               ".sink_position");
  }
  const uint64_t position = std::stoull(locked.value()[0][0].value_or("0"));
  const auto t_start = std::chrono::steady_clock::now();
  WriteOutcome outcome;
  buffers_.Clear();
  uint64_t high = position;
  for (const v1::DeliveredEvent& d : events) {
    const uint64_t seq = d.event().envelope().hub_seq();
    if (seq <= high) {
      // At or below the stored position, or out of order within the batch: already handled.
      ++outcome.skipped;
      continue;
    }
    high = seq;
    AppendRows(d, &buffers_);
  }
  const auto t_rows = std::chrono::steady_clock::now();
  outcome.written = buffers_.event_rows;
  outcome.repaired_values = buffers_.repaired_values;
  if (buffers_.event_rows > 0) {
    CAREHUB_RETURN_IF_ERROR(
        conn_->CopyIn("COPY " + s_ + ".event (" + kEventColumns + ") FROM STDIN", buffers_.events));
    if (buffers_.activity_rows > 0) {
      CAREHUB_RETURN_IF_ERROR(conn_->CopyIn(
          "COPY " + s_ + ".activity (" + kActivityColumns + ") FROM STDIN", buffers_.activities));
    }
    if (buffers_.referral_rows > 0) {
      CAREHUB_RETURN_IF_ERROR(conn_->CopyIn(
          "COPY " + s_ + ".referral (" + kReferralColumns + ") FROM STDIN", buffers_.referrals));
    }
    CAREHUB_CRASH_POINT("sink.after_copy");
    const auto t_copy = std::chrono::steady_clock::now();
    auto ms = [](auto a, auto b) {
      return std::chrono::duration<double, std::milli>(b - a).count();
    };
    Logger("sink")->debug("transaction of {} events: rows {:.1f} ms, COPY {:.1f} ms",
                          outcome.written, ms(t_start, t_rows), ms(t_rows, t_copy));
  }
  outcome.position = std::max(high, std::max(position, scanned_to_seq));
  if (outcome.position != position) {
    CAREHUB_RETURN_IF_ERROR(
        conn_
            ->Query("UPDATE " + s_ +
                        ".sink_position SET hub_seq = $2, events_loaded = events_loaded + $3, "
                        "updated_at = now() WHERE subscription = $1",
                    {options_.subscription, std::to_string(outcome.position),
                     std::to_string(outcome.written)})
            .status());
  }
  return outcome;
}

}  // namespace carehub::sink
