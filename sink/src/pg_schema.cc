#include "carehub/sink/pg_schema.h"

#include <regex>
#include <vector>

namespace carehub::sink {
namespace {

struct Migration {
  int version;
  const char* description;
  // `{s}` stands for the quoted schema name.
  const char* sql;
};

// Never edit a migration that has shipped: add the next one. Columns are nullable unless the sink
// itself guarantees them (hub_seq): a value the wire left empty is stored as NULL, and a NOT NULL
// column would make one odd event block the feed for ever. No foreign keys: the three tables are
// written together in one transaction by one writer, and checking them would halve the load rate.
const std::vector<Migration>& Migrations() {
  static const std::vector<Migration> kMigrations = {
      {1, "event, activity, referral, sink_position and the history and current-state views",
       R"SQL(
CREATE TABLE {s}.sink_position (
  subscription  text PRIMARY KEY,
  hub_seq       bigint NOT NULL DEFAULT 0,
  events_loaded bigint NOT NULL DEFAULT 0,
  updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE {s}.event (
  hub_seq             bigint PRIMARY KEY,
  event_id            text,
  publisher_ods       text,
  site_ods            text,
  source_system       text,
  event_type          text,
  lifecycle           text NOT NULL CHECK (lifecycle IN ('NEW', 'UPDATE', 'CANCEL', 'UNSPECIFIED')),
  supersedes_event_id text,
  occurred_at         timestamptz,
  recorded_at         timestamptz,
  received_at         timestamptz,
  agreement_id        text,
  nhs_number          text,
  pseudonym           text,
  nhs_number_status   text,
  local_mrn           text,
  mrn_assigning_ods   text,
  birth_date          text,
  sex                 text,
  postcode            text,
  registered_gp_ods   text
);
CREATE INDEX event_supersedes ON {s}.event (publisher_ods, supersedes_event_id)
  WHERE supersedes_event_id IS NOT NULL;
CREATE TABLE {s}.activity (
  hub_seq               bigint PRIMARY KEY,
  kind                  text,
  encounter_id          text,
  encounter_class       text,
  status                text,
  period_start          timestamptz,
  period_end            timestamptz,
  treatment_function    text,
  location              text,
  admission_source      text,
  admission_method      text,
  discharge_destination text,
  discharge_method      text,
  referral_source       text,
  referral_id           text,
  diagnoses             text[],
  procedures            text[]
);
CREATE TABLE {s}.referral (
  hub_seq            bigint PRIMARY KEY,
  referral_id        text,
  ubrn               text,
  status             text,
  priority           text,
  requester_ods      text,
  performer_ods      text,
  specialty          text,
  source_of_referral text,
  reasons            text[],
  authored_at        timestamptz,
  appointment_at     timestamptz
);
-- The current versions: not a CANCEL, superseded by no stored event. A view, not a table kept
-- up to date on every load: the rule does not depend on arrival order, PostgreSQL answers it
-- with one hash anti-join over the partial index above, and maintaining it per event cost a
-- third of each load transaction.
CREATE VIEW {s}.current_record AS
  SELECT e.publisher_ods, e.event_id, e.hub_seq FROM {s}.event e
  WHERE e.lifecycle <> 'CANCEL' AND e.event_id IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM {s}.event n
    WHERE n.supersedes_event_id = e.event_id AND n.publisher_ods = e.publisher_ods);
CREATE VIEW {s}.activity_history AS
  SELECT * FROM {s}.event JOIN {s}.activity USING (hub_seq);
CREATE VIEW {s}.referral_history AS
  SELECT * FROM {s}.event JOIN {s}.referral USING (hub_seq);
CREATE VIEW {s}.activity_current AS
  SELECT h.* FROM {s}.activity_history h JOIN {s}.current_record c USING (hub_seq);
CREATE VIEW {s}.referral_current AS
  SELECT h.* FROM {s}.referral_history h JOIN {s}.current_record c USING (hub_seq);
CREATE VIEW {s}.referral_state AS
  SELECT DISTINCT ON (referral_id) * FROM {s}.referral_current
  WHERE referral_id IS NOT NULL
  ORDER BY referral_id, occurred_at DESC NULLS LAST, hub_seq DESC;
CREATE VIEW {s}.encounter_state AS
  SELECT DISTINCT ON (publisher_ods, encounter_id) * FROM {s}.activity_current
  WHERE encounter_id IS NOT NULL
  ORDER BY publisher_ods, encounter_id, occurred_at DESC NULLS LAST, hub_seq DESC;
)SQL"},
  };
  return kMigrations;
}

std::string Expand(const std::string& sql, const std::string& quoted_schema) {
  std::string out;
  out.reserve(sql.size() + 256);
  for (size_t i = 0; i < sql.size(); ++i) {
    if (sql.compare(i, 3, "{s}") == 0) {
      out += quoted_schema;
      i += 2;
    } else {
      out.push_back(sql[i]);
    }
  }
  return out;
}

// One transaction: lock, read the version, apply `m` if still missing, record it.
Status ApplyOne(PgConnection& conn, const std::string& schema, const Migration& m) {
  const std::string s = QuoteIdent(schema);
  CAREHUB_RETURN_IF_ERROR(conn.Exec("BEGIN"));
  auto body = [&]() -> Status {
    CAREHUB_RETURN_IF_ERROR(
        conn.Query("SELECT pg_advisory_xact_lock(hashtext($1))", {"carehub-sink:" + schema})
            .status());
    auto current = conn.Query("SELECT COALESCE(MAX(version), 0) FROM " + s + ".schema_migrations");
    CAREHUB_RETURN_IF_ERROR(current.status());
    const int version = std::stoi(current.value()[0][0].value_or("0"));
    if (version >= m.version) {
      return Status::Ok();
    }
    CAREHUB_RETURN_IF_ERROR(conn.Exec(Expand(m.sql, s)));
    return conn
        .Query("INSERT INTO " + s + ".schema_migrations (version, description) VALUES ($1, $2)",
               {std::to_string(m.version), m.description})
        .status();
  };
  Status st = body();
  if (!st.ok()) {
    (void)conn.Exec("ROLLBACK");
    return st;
  }
  return conn.Exec("COMMIT");
}

}  // namespace

int LatestSchemaVersion() { return Migrations().back().version; }

Status CheckSchemaName(const std::string& schema) {
  static const std::regex kName("[a-z_][a-z0-9_]{0,62}");
  if (!std::regex_match(schema, kName)) {
    return Status::Error(
        "bad_config",
        "postgres.schema '" + schema + "' must be a lower-case SQL identifier ([a-z_][a-z0-9_]*)");
  }
  return Status::Ok();
}

Status Migrate(PgConnection& conn, const std::string& schema) {
  CAREHUB_RETURN_IF_ERROR(CheckSchemaName(schema));
  const std::string s = QuoteIdent(schema);
  // Both statements are idempotent; concurrent first starts may race on CREATE SCHEMA, which the
  // advisory lock then serialises (a lost race is an error the caller retries).
  CAREHUB_RETURN_IF_ERROR(
      conn.Exec("BEGIN; SELECT pg_advisory_xact_lock(hashtext('carehub-sink:" + schema +
                "')); CREATE SCHEMA IF NOT EXISTS " + s + "; CREATE TABLE IF NOT EXISTS " + s +
                ".schema_migrations (version int PRIMARY KEY, description "
                "text NOT NULL, applied_at timestamptz NOT NULL DEFAULT "
                "now()); COMMIT"));
  auto current = conn.Query("SELECT COALESCE(MAX(version), 0) FROM " + s + ".schema_migrations");
  CAREHUB_RETURN_IF_ERROR(current.status());
  const int version = std::stoi(current.value()[0][0].value_or("0"));
  if (version > LatestSchemaVersion()) {
    return Status::Error("schema_too_new",
                         "schema " + schema + " is at version " + std::to_string(version) +
                             ", newer than this carehub-sink knows (" +
                             std::to_string(LatestSchemaVersion()) + "): upgrade the sink");
  }
  for (const Migration& m : Migrations()) {
    if (m.version > version) {
      CAREHUB_RETURN_IF_ERROR(ApplyOne(conn, schema, m));
    }
  }
  return Status::Ok();
}

}  // namespace carehub::sink
