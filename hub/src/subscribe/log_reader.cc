#include "log_reader.h"

#include <algorithm>

namespace carehub::hub {
namespace {

Result<uint64_t> ReadByRouteIndex(const ReadPlan& plan, const Store& store, uint64_t from,
                                  uint64_t head, const ReadLimits& limits,
                                  const std::function<bool(uint64_t, std::string_view)>& consider) {
  // Each route yields at most max_per_route seqs: the merged list is complete only up to the
  // lowest last seq of a route that hit the limit.
  uint64_t covered_to = head;
  std::vector<uint64_t> seqs;
  for (const auto& route : plan.routes) {
    auto found = store.routes().Scan(route, from, head, limits.max_per_route);
    if (!found.ok()) {
      return found.status();
    }
    if (found->size() == limits.max_per_route) {
      covered_to = std::min(covered_to, found->back());
    }
    seqs.insert(seqs.end(), found->begin(), found->end());
  }
  std::sort(seqs.begin(), seqs.end());
  seqs.erase(std::upper_bound(seqs.begin(), seqs.end(), covered_to), seqs.end());
  uint64_t read_to = from - 1;
  constexpr size_t kChunk = 256;
  for (size_t i = 0; i < seqs.size(); i += kChunk) {
    std::vector<uint64_t> chunk(seqs.begin() + i, seqs.begin() + std::min(seqs.size(), i + kChunk));
    auto values = store.events().MultiGet(chunk);
    if (!values.ok()) {
      return values.status();
    }
    for (size_t j = 0; j < chunk.size(); ++j) {
      read_to = chunk[j];
      // An empty value: retention removed the event since the index was read. Nothing to send.
      if (!(*values)[j].empty() && !consider(chunk[j], (*values)[j])) {
        return read_to;
      }
    }
  }
  return covered_to;
}

}  // namespace

void UpdateReadPlan(ReadPlan* plan, const policy::PolicySet& policy,
                    const policy::SubscriptionRef& subscription, const RouteIndex& routes) {
  if (plan->planned_for == &policy && plan->planned_route_count == routes.KnownCount()) {
    return;
  }
  const auto known = routes.Known();
  plan->routes.clear();
  for (const auto& r : known) {
    if (policy.MayReceive(subscription, r.publisher_ods, r.event_type, r.site_ods)) {
      plan->routes.push_back(r);
    }
  }
  // Reading through the index pays a seek per route; worth it only for a narrow feed.
  plan->use_route_index = plan->routes.size() * 4 < known.size();
  plan->planned_for = &policy;
  plan->planned_route_count = known.size();
}

Result<uint64_t> ScanLog(const Store& store, uint64_t from, uint64_t head, uint32_t max_examined,
                         const std::function<bool(uint64_t, std::string_view)>& consider) {
  uint64_t read_to = from - 1;
  uint64_t examined = 0;
  bool stopped = false;
  Status s = store.events().Scan(from, head, [&](uint64_t seq, std::string_view bytes) {
    ++examined;
    read_to = seq;
    if (!consider(seq, bytes) || examined >= max_examined) {
      stopped = true;
      return false;
    }
    return true;
  });
  if (!s.ok()) {
    return s;
  }
  // A scan that reached the end has read everything up to head (seqs can have gaps).
  return stopped ? read_to : head;
}

Result<uint64_t> ReadLog(const ReadPlan& plan, const Store& store, uint64_t from, uint64_t head,
                         const ReadLimits& limits,
                         const std::function<bool(uint64_t, std::string_view)>& consider) {
  if (plan.use_route_index) {
    return ReadByRouteIndex(plan, store, from, head, limits, consider);
  }
  return ScanLog(store, from, head, limits.max_scan_per_round, consider);
}

}  // namespace carehub::hub
