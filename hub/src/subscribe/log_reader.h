#pragma once
// Which part of the event log a subscription reads, and reading it (private to hub/src).
//
// A narrow subscription (its agreements cover few of the known routes) reads through the route
// index: one seek per route it may receive, then the events by seq. A broad one scans the log in
// order: a seek per route would cost more than reading what it skips. The plan is recomputed when
// the policy snapshot or the set of known routes changes.
//
// Errors: a failed read of the store is returned as an error and the caller must not move the
// session past anything; reading again from the same position is always safe.
//
// Thread-safety: a ReadPlan belongs to one session on the delivery thread; ReadLog only reads the
// store (thread-safe).

#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "carehub/core/status.h"
#include "carehub/hub/store.h"
#include "carehub/policy/policy_set.h"

namespace carehub::hub {

struct ReadPlan {
  const policy::PolicySet* planned_for = nullptr;
  size_t planned_route_count = 0;
  bool use_route_index = false;
  std::vector<RouteKey> routes;  // the known routes the subscription may receive
};

// Recomputes `plan` if `policy` or the number of known routes changed since it was made.
void UpdateReadPlan(ReadPlan* plan, const policy::PolicySet& policy,
                    const policy::SubscriptionRef& subscription, const RouteIndex& routes);

// Passes the events the plan covers with seq in [from, head] to `consider(seq, stored_bytes)`, in
// seq order, until it returns false or `max_examined` events have been read. Returns the seq up
// to which the log has been read: every event the plan covers up to it was passed to `consider`
// (from - 1 when none).
Result<uint64_t> ReadLog(const ReadPlan& plan, const Store& store, uint64_t from, uint64_t head,
                         uint32_t max_examined,
                         const std::function<bool(uint64_t, std::string_view)>& consider);

// The log scan alone, whatever the plan (ReadLog's broad case; shared_scan.h for several
// sessions): every stored event with seq in [from, head] to `consider`, in order, until it returns
// false or `max_examined` have been passed. Returns the seq up to which the log has been read.
Result<uint64_t> ScanLog(const Store& store, uint64_t from, uint64_t head, uint32_t max_examined,
                         const std::function<bool(uint64_t, std::string_view)>& consider);

}  // namespace carehub::hub
