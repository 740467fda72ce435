#pragma once
// Writes deliveries of one subscription into PostgreSQL, exactly once in effect.
//
// Open() connects, migrates the schema (pg_schema.h) and claims the subscription's row in
// `sink_position`. Write() then does, in ONE transaction:
//   1. lock the position row (SELECT ... FOR UPDATE) and read it: the truth about what is stored;
//   2. drop every event with hub_seq <= that position (a redelivery after a crash, a resubscribe
//      or a hub failover), so a row is never written twice whatever the hub resends;
//   3. COPY the rest into `event`, `activity` and `referral`;
//   4. move the position to max(position, scanned_to_seq) and COMMIT.
// The current state after UPDATE and CANCEL is a view over `event` (pg_schema.cc), so it is
// consistent with the rows in every committed state and costs the load nothing.
// The caller acknowledges the hub's cursor only after Write() returned OK, and on any restart
// subscribes from position() + 1: a crash anywhere leaves either all of a batch or none of it.
// Only one schema per subscription (hub_seq is the key); a schema that holds another
// subscription's position is refused ("bad_config").
//
// Errors are the connection's (pg_connection.h): after any error the transaction is rolled back
// (when the connection still works) and the caller should drop this writer and open a new one.
// Owns its connection; not thread-safe; not copyable.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "carehub/core/status.h"
#include "carehub/sink/copy_rows.h"
#include "carehub/sink/pg_connection.h"
#include "carehub/v1/wire.pb.h"

namespace carehub::sink {

struct PgWriterOptions {
  std::string dsn;
  std::string schema = "carehub";
  std::string subscription;
  int connect_timeout_s = 5;
};

struct WriteOutcome {
  uint64_t position = 0;  // the stored position after the commit
  size_t written = 0;     // events stored by this transaction
  size_t skipped = 0;     // events at or below the stored position (redeliveries)
  size_t repaired_values = 0;
};

class PgWriter {
 public:
  static Result<std::unique_ptr<PgWriter>> Open(const PgWriterOptions& options);

  // The stored position: every hub_seq <= it is in the tables (or was not for this feed).
  Result<uint64_t> Position();

  // Stores `events` (in hub_seq order) and moves the position to cover `scanned_to_seq`.
  Result<WriteOutcome> Write(const std::vector<v1::DeliveredEvent>& events,
                             uint64_t scanned_to_seq);

 private:
  PgWriter(std::unique_ptr<PgConnection> conn, PgWriterOptions options);
  Result<WriteOutcome> WriteInTransaction(const std::vector<v1::DeliveredEvent>& events,
                                          uint64_t scanned_to_seq);

  std::unique_ptr<PgConnection> conn_;
  PgWriterOptions options_;
  std::string s_;  // quoted schema
  CopyBuffers buffers_;
};

}  // namespace carehub::sink
