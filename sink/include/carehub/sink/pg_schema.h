#pragma once
// The sink's tables, created and migrated by the sink itself (docs/postgres-sink.md "Schema").
// Migrations are numbered; `<schema>.schema_migrations` records each one applied (version,
// description, when). Migrate() applies the missing ones in order, each in its own transaction
// under a transaction-scoped advisory lock, so two sinks starting together cannot both apply one.
// A database whose schema is newer than this binary knows is refused ("schema_too_new"): an older
// sink must not write into tables whose meaning it does not know.
//
// Errors: "bad_config" for a schema name that is not a plain lower-case SQL identifier,
// "schema_too_new", or the connection's errors. Not thread-safe (uses the caller's connection).

#include <string>

#include "carehub/core/status.h"
#include "carehub/sink/pg_connection.h"

namespace carehub::sink {

// The newest schema version this binary knows.
int LatestSchemaVersion();

// "bad_config" unless `schema` matches [a-z_][a-z0-9_]{0,62}.
Status CheckSchemaName(const std::string& schema);

// Brings `schema` (created if missing) to LatestSchemaVersion().
Status Migrate(PgConnection& conn, const std::string& schema);

}  // namespace carehub::sink
