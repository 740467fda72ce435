#pragma once
// Delivered events as rows in PostgreSQL's COPY text format, for the three tables the sink loads
// (docs/postgres-sink.md "Schema"): `event` (every event), `activity` and `referral` (the typed
// body, keyed by the same hub_seq). Column order here is the column list PgWriter names in its
// COPY statements (kEventColumns ...), so the two cannot drift apart.
//
// Text is made safe for PostgreSQL: NUL bytes are dropped and invalid UTF-8 is replaced by U+FFFD
// (the server would refuse the whole COPY otherwise, and the batch would be stuck for ever); the
// number of values changed is counted in CopyBuffers::repaired_values.
//
// Pure functions over values; thread-safe.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "carehub/v1/wire.pb.h"

namespace carehub::sink {

inline constexpr const char* kEventColumns =
    "hub_seq, event_id, publisher_ods, site_ods, source_system, event_type, lifecycle, "
    "supersedes_event_id, occurred_at, recorded_at, received_at, agreement_id, nhs_number, "
    "pseudonym, nhs_number_status, local_mrn, mrn_assigning_ods, birth_date, sex, postcode, "
    "registered_gp_ods";
inline constexpr const char* kActivityColumns =
    "hub_seq, kind, encounter_id, encounter_class, status, period_start, period_end, "
    "treatment_function, location, admission_source, admission_method, discharge_destination, "
    "discharge_method, referral_source, referral_id, diagnoses, procedures";
inline constexpr const char* kReferralColumns =
    "hub_seq, referral_id, ubrn, status, priority, requester_ods, performer_ods, specialty, "
    "source_of_referral, reasons, authored_at, appointment_at";

struct CopyBuffers {
  std::string events;
  std::string activities;
  std::string referrals;
  size_t event_rows = 0;
  size_t activity_rows = 0;
  size_t referral_rows = 0;
  size_t repaired_values = 0;
  void Clear() { *this = CopyBuffers(); }
};

// Appends the event's row and, when it has one, its body's row.
void AppendRows(const v1::DeliveredEvent& delivered, CopyBuffers* out);

// Building blocks, exposed for the unit tests. Each appends one field without a separator.
// An empty string is written as NULL (\N): the proto cannot tell empty from absent either.
void AppendText(std::string_view value, std::string* out, size_t* repaired);
// A timestamp as "YYYY-MM-DD HH:MM:SS.ffffff+00"; NULL when unset (seconds and nanos both 0).
void AppendTimestamp(int64_t seconds, int32_t nanos, std::string* out);
// A text[] literal {"a","b"} (then COPY-escaped); NULL when `values` is empty.
void AppendTextArray(const std::vector<std::string>& values, std::string* out, size_t* repaired);

// `value` with NULs removed and invalid UTF-8 sequences replaced by U+FFFD; true if it changed.
bool RepairUtf8(std::string_view value, std::string* out);

}  // namespace carehub::sink
