#include "carehub/sink/pg_connection.h"

#include <libpq-fe.h>

#include <cstring>

namespace carehub::sink {
namespace {

// SQLSTATE classes after which the same connection cannot go on (docs: PostgreSQL Appendix A).
bool IsConnectionState(const char* sqlstate) {
  if (sqlstate == nullptr) {
    return false;
  }
  return std::strncmp(sqlstate, "08", 2) == 0 || std::strcmp(sqlstate, "57P01") == 0 ||
         std::strcmp(sqlstate, "57P02") == 0 || std::strcmp(sqlstate, "57P03") == 0;
}

// Connection failures no wait can cure: a malformed option, a wrong role, database or password.
// A server starting up, shutting down or unreachable is not among them.
bool IsPermanentConnectError(const std::string& message) {
  for (const char* needle :
       {"invalid connection option", "invalid integer value", "invalid value for parameter",
        "invalid sslmode value", "password authentication failed", "does not exist",
        "no pg_hba.conf entry"}) {
    if (message.find(needle) != std::string::npos) {
      return true;
    }
  }
  return false;
}

std::string OneLine(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
    text.pop_back();
  }
  for (char& c : text) {
    if (c == '\n') {
      c = ' ';
    }
  }
  return text;
}

// The Status for a failed result (or a null one: out of memory or a broken connection).
Status ResultError(pg_conn* conn, PGresult* res, const std::string& what) {
  const char* sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  std::string message = res ? PQresultErrorMessage(res) : "";
  if (message.empty()) {
    message = PQerrorMessage(conn);
  }
  const bool gone = PQstatus(conn) != CONNECTION_OK || IsConnectionState(sqlstate);
  message = what + ": " + OneLine(message);
  if (sqlstate != nullptr) {
    message += " (SQLSTATE " + std::string(sqlstate) + ")";
  }
  return Status::Error(gone ? "postgres_unavailable" : "postgres_error", message);
}

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

std::string Abbreviated(const std::string& sql) {
  std::string head = sql.substr(0, sql.find_first_of("\n("));
  return head.size() > 60 ? head.substr(0, 60) + "..." : head;
}

}  // namespace

Status CheckDsn(const std::string& dsn) {
  if (dsn.empty()) {
    return Status::Error("bad_config", "postgres.dsn is required (e.g. postgresql:///carehub)");
  }
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(dsn.c_str(), &error);
  if (options == nullptr) {
    std::string reason = error ? OneLine(error) : "cannot parse it";
    PQfreemem(error);
    return Status::Error("bad_config", "postgres.dsn: " + reason);
  }
  PQconninfoFree(options);
  return Status::Ok();
}

Result<std::unique_ptr<PgConnection>> PgConnection::Connect(const std::string& dsn,
                                                            int connect_timeout_s) {
  CAREHUB_RETURN_IF_ERROR(CheckDsn(dsn));
  // Keywords after the DSN (expand_dbname) give defaults the DSN itself may override.
  const std::string timeout = std::to_string(connect_timeout_s);
  const char* keys[] = {"dbname", "connect_timeout", "application_name", "client_encoding",
                        nullptr};
  const char* values[] = {dsn.c_str(), timeout.c_str(), "carehub-sink", "UTF8", nullptr};
  pg_conn* conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (conn == nullptr) {
    return Status::Error("postgres_unavailable", "libpq could not allocate a connection");
  }
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = OneLine(PQerrorMessage(conn));
    PQfinish(conn);
    return Status::Error(IsPermanentConnectError(message) ? "bad_config" : "postgres_unavailable",
                         "cannot connect: " + message);
  }
  return std::unique_ptr<PgConnection>(new PgConnection(conn));
}

PgConnection::~PgConnection() { PQfinish(conn_); }

bool PgConnection::Healthy() const { return PQstatus(conn_) == CONNECTION_OK; }

Status PgConnection::Exec(const std::string& sql) {
  ResultPtr res(PQexec(conn_, sql.c_str()));
  const ExecStatusType st = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    return ResultError(conn_, res.get(), Abbreviated(sql));
  }
  return Status::Ok();
}

Result<PgRows> PgConnection::Query(const std::string& sql, const std::vector<std::string>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const std::string& p : params) {
    values.push_back(p.c_str());
  }
  ResultPtr res(PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                             values.data(), nullptr, nullptr, /*resultFormat=*/0));
  const ExecStatusType st = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    return ResultError(conn_, res.get(), Abbreviated(sql));
  }
  PgRows rows;
  const int n = PQntuples(res.get());
  const int cols = PQnfields(res.get());
  rows.reserve(static_cast<size_t>(n));
  for (int r = 0; r < n; ++r) {
    std::vector<std::optional<std::string>> row;
    row.reserve(static_cast<size_t>(cols));
    for (int c = 0; c < cols; ++c) {
      if (PQgetisnull(res.get(), r, c)) {
        row.emplace_back(std::nullopt);
      } else {
        row.emplace_back(std::string(PQgetvalue(res.get(), r, c),
                                     static_cast<size_t>(PQgetlength(res.get(), r, c))));
      }
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

Status PgConnection::CopyIn(const std::string& copy_sql, std::string_view data) {
  ResultPtr start(PQexec(conn_, copy_sql.c_str()));
  if (!start || PQresultStatus(start.get()) != PGRES_COPY_IN) {
    return ResultError(conn_, start.get(), Abbreviated(copy_sql));
  }
  // libpq buffers; 1 MiB pieces keep its buffer from doubling up to the whole batch.
  constexpr size_t kPiece = 1 << 20;
  for (size_t off = 0; off < data.size(); off += kPiece) {
    const size_t n = std::min(kPiece, data.size() - off);
    if (PQputCopyData(conn_, data.data() + off, static_cast<int>(n)) != 1) {
      (void)PQputCopyEnd(conn_, "carehub-sink: send failed");
      break;
    }
  }
  if (PQputCopyEnd(conn_, nullptr) != 1) {
    return Status::Error("postgres_unavailable", "COPY end: " + OneLine(PQerrorMessage(conn_)));
  }
  Status status = Status::Ok();
  // Drain every result; the COPY's own is the first.
  while (PGresult* raw = PQgetResult(conn_)) {
    ResultPtr res(raw);
    if (status.ok() && PQresultStatus(raw) != PGRES_COMMAND_OK) {
      status = ResultError(conn_, raw, Abbreviated(copy_sql));
    }
  }
  if (status.ok() && !Healthy()) {
    return Status::Error("postgres_unavailable", "connection lost during COPY");
  }
  return status;
}

std::string QuoteIdent(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') {
      out += "\"\"";
    } else {
      out.push_back(c);
    }
  }
  return out + "\"";
}

}  // namespace carehub::sink
