#pragma once
// One libpq connection to PostgreSQL, owned (RAII: closed by the destructor), with errors as
// values. libpq is C and reports errors as results and strings; this is the edge where they
// become Status values:
//   "postgres_unavailable"  the server cannot be reached or the connection broke (SQLSTATE class
//                           08, admin shutdown 57P01..57P03, or libpq's connection status is bad):
//                           the caller drops this connection and connects again later;
//   "postgres_error"        the server refused a statement (the message carries the SQLSTATE).
// A DSN libpq cannot parse is "bad_config" (CheckDsn), found before any connection attempt.
//
// Not thread-safe: one thread uses a connection. Move-only.

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "carehub/core/status.h"

struct pg_conn;

namespace carehub::sink {

// "bad_config" with libpq's reason when `dsn` is not a valid connection string or URI.
Status CheckDsn(const std::string& dsn);

// Rows of text values; std::nullopt is SQL NULL.
using PgRows = std::vector<std::vector<std::optional<std::string>>>;

class PgConnection {
 public:
  // Connects (blocking, bounded by the DSN's connect_timeout or `connect_timeout_s`), sets
  // client_encoding UTF8 and the session's application_name.
  static Result<std::unique_ptr<PgConnection>> Connect(const std::string& dsn,
                                                       int connect_timeout_s);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Runs one or more statements without parameters (DDL, BEGIN, COMMIT).
  Status Exec(const std::string& sql);
  // Runs one statement with text parameters and returns its rows (empty for a command).
  Result<PgRows> Query(const std::string& sql, const std::vector<std::string>& params = {});
  // COPY ... FROM STDIN with `data` in COPY text format (rows ended by '\n').
  Status CopyIn(const std::string& copy_sql, std::string_view data);

  // False once libpq says the connection is gone.
  bool Healthy() const;

 private:
  explicit PgConnection(pg_conn* conn) : conn_(conn) {}
  pg_conn* conn_;
};

// The SQL identifier `name` quoted ("a""b"); callers validate schema names before they get here.
std::string QuoteIdent(std::string_view name);

}  // namespace carehub::sink
