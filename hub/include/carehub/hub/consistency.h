#pragma once
// Offline consistency check of a stopped hub's store: what a crash, a restart or retention must
// never break. Used by the crash/restart and soak tests and by `carehubctl verify`.
//
// The rules, with the two things that legitimately remove records:
//   - Retention deletes a prefix of the log: every event and route with hub_seq < FirstSeq() (the
//     "retention cut"). It leaves dedup keys in place, so a resend of a deleted event is still
//     answered DUPLICATE. Retention never deletes the newest event, so LastSeq() never goes back.
//   - Dedup keys expire during compaction once older than the dedup window (DedupEntry::day).
//
//   events   every value parses as a v1::Event whose envelope.hub_seq equals its key.
//   dedup    every event's key (publisher_ods, event_id) is stored, points back to that hub_seq and
//            carries the hash of the event's content; a missing key, or one taken over by a later
//            copy, is allowed only when the event was received more than dedup_window_days before
//            `now` (the key may have expired and a resend been stored again). Every
//            dedup key points to a stored event whose own key it is, or below the retention cut.
//            Two events with the same key are reported (stored twice).
//   route    every event is filed exactly once under its route (publisher, site, type); every
//            hub_seq a route entry files names a stored event with that route, or is below the
//            retention cut; a route's entries do not overlap; every route prefix is among the
//            known routes (meta), or subscriptions never plan it.
//   cursors  every subscription cursor <= LastSeq().
//   audit    every delivery record (kind "delivery" or "delivery_not_sent") has
//            1 <= from_seq <= to_seq <= LastSeq() and delivered <= to_seq - from_seq + 1.
//
// Memory: a few bytes per hub_seq in [FirstSeq, LastSeq] plus the known routes; fine for test and
// operator use on a stopped hub, not meant to run inside the hub.

#include <cstdint>
#include <string>
#include <vector>

#include "carehub/core/status.h"
#include "carehub/hub/store.h"

namespace carehub::hub {

struct ConsistencyOptions {
  // The hub's dedup.window_days: decides which missing dedup keys may have expired.
  uint32_t dedup_window_days = 400;
  // "Now" for the expiry rule, in Unix ms; 0: the wall clock.
  int64_t now_unix_ms = 0;
  // How many problems are kept in the report (all are counted).
  size_t max_problems = 20;
};

struct ConsistencyReport {
  uint64_t first_seq = 0;  // 0 when the log is empty
  uint64_t last_seq = 0;
  uint64_t events = 0;
  uint64_t dedup_keys = 0;
  uint64_t dedup_keys_below_cut = 0;  // keys of events retention deleted
  uint64_t dedup_keys_expired = 0;    // events whose key may have expired (allowed)
  uint64_t routes = 0;                // hub_seqs filed in the route index (an entry files several)
  uint64_t routes_below_cut = 0;      // of them, below the retention cut
  uint64_t known_routes = 0;
  uint64_t cursors = 0;
  uint64_t audit_records = 0;
  uint64_t audit_delivery_records = 0;
  uint64_t disclosure_entries = 0;
  uint64_t problem_count = 0;
  std::vector<std::string> problems;  // the first max_problems, each one line

  bool consistent() const { return problem_count == 0; }
  // One line: "consistent: ..." or "INCONSISTENT: N problems; ..." with the counts.
  std::string Summary() const;
};

// Reads the whole store (the hub must not be running). Errors only when the store cannot be read;
// inconsistencies are in the report.
Result<ConsistencyReport> CheckConsistency(Store& store, const ConsistencyOptions& options = {});

}  // namespace carehub::hub
