#pragma once
// Answers to the questions operators and information-governance leads ask (private to hub/src;
// served by the admin API and carehubctl; docs/operations.md, "Questions about events and
// patients"):
//
//   TraceEvent          did this event arrive, what became of it, and who received it?
//   PatientDisclosures  which organisations received data about this patient, when, and how?
//   BrowseEvents        what arrived recently from this publisher / site / of this type?
//   EventDetail         one event, its patient identifiers masked unless revealed
//
// Every answer is read from the store (log, dedup index, quarantine, cursors, audit trail and the
// disclosure index) and, for what a subscription would do with an event, the policy in force now.
// None of them writes: the callers audit the questions that disclose (disclosures, reveal).
//
// Errors: a failed store read fails the whole answer (never a partial one); "bad_request" for a
// malformed question (an NHS number that fails its check digit, a trace naming no event).
//
// Thread-safety: every function may be called from any thread (the store and policy are).

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "carehub/core/clock.h"
#include "carehub/core/status.h"
#include "carehub/hub/store.h"
#include "carehub/policy/policy_set.h"

namespace carehub::hub::inquiry {

using json = nlohmann::json;

struct TraceQuery {
  std::string publisher_ods;
  std::string event_id;
  std::optional<uint64_t> hub_seq;  // instead of publisher + event_id
};

// {"found", "event": {...}, "ingest": {...}, "quarantine": [...], "subscriptions": [...]}; the
// event's patient identifiers are masked. "ingest" says when it was accepted, as which hub_seq, and
// how often a resend was answered DUPLICATE ("duplicate_answers"); "quarantine" lists the refused
// sends of the same id (rejected, or CONFLICT: same id, other content). Subscription statuses: "delivered" (with each audited
// delivery and whether it is acknowledged), "withheld" (with the rule), "not_covered" (no agreement
// covers its source and type), "not_yet_reached" (the cursor is behind it), "not_delivered" (the
// cursor passed it with no delivery filed, though the agreements now would deliver it).
Result<json> TraceEvent(const Store& store, const policy::PolicySet& policy,
                        const TraceQuery& query, Clock::TimePoint now);

struct DisclosureQuery {
  std::string nhs_number;  // digits; spaces are removed
  int64_t since_unix_ms = 0;
  int64_t until_unix_ms = INT64_MAX;
  size_t limit = 100000;
};

struct DisclosureRow {
  int64_t at_unix_ms = 0;
  std::string subscriber;
  std::string subscriber_name;  // from the policy in force; empty when it no longer lists them
  std::string subscription;
  std::string purpose;
  std::string agreement;
  std::string field_level;  // identifiable / pseudonymised
  std::string event_type;
  std::string publisher_ods;
  std::string event_id;
  uint64_t hub_seq = 0;
  std::string audit_ref;  // hex of the delivery audit record's key
};

struct DisclosureReport {
  std::string nhs_number;   // as asked, digits only
  std::string patient_ref;  // hex of the patient key's first 8 bytes: what the audit record names
  std::vector<DisclosureRow> rows;  // oldest first
  bool truncated = false;           // more than `limit`
};

// Normalises and checks an NHS number (10 digits, modulus 11); "bad_request" when it fails.
Result<std::string> CheckNhsNumber(const std::string& text);

Result<DisclosureReport> PatientDisclosures(const Store& store, const policy::PolicySet* policy,
                                            const DisclosureQuery& query);
json ReportJson(const DisclosureReport& report);
std::string ReportCsv(const DisclosureReport& report);
// A printable page an IG lead can attach to a subject access response.
std::string ReportHtml(const DisclosureReport& report, int64_t generated_unix_ms,
                       const std::string& hub_name);

struct BrowseQuery {
  std::string publisher_ods;  // each empty = any
  std::string site_ods;
  std::string event_type;  // an exact type, or a family "activity.*" / "referral.*"
  int64_t since_unix_ms = 0;
  int64_t until_unix_ms = INT64_MAX;
  uint64_t before_seq = 0;  // paging: only events below it (0 = from the newest)
  size_t limit = 50;
};

// {"items": [masked summaries, newest first], "next_before_seq": N or null}. Filtered by
// publisher, site or type it reads the route index, otherwise the log from its end.
Result<json> BrowseEvents(const Store& store, const BrowseQuery& query);

// The event at `hub_seq` as JSON, with patient identifiers masked unless `reveal`; null when none.
Result<json> EventDetail(const Store& store, uint64_t hub_seq, bool reveal);

// An event as JSON (protobuf's JSON mapping); masked: NHS number, names, address, local MRN,
// birth date, postcode, pseudonym and data-quality raw values replaced by "masked".
json EventJson(const v1::Event& event, bool masked);

}  // namespace carehub::hub::inquiry
