#include "log_reader.h"

#include <memory>
#include <queue>

namespace carehub::hub {
namespace {

// The routes' seqs merged in ascending order, read from each route only as far as they are used
// (a round that fills its batch early reads a few entries past it, not a block of every route).
Result<uint64_t> ReadByRouteIndex(const ReadPlan& plan, const Store& store, uint64_t from,
                                  uint64_t head, uint32_t max_examined,
                                  const std::function<bool(uint64_t, std::string_view)>& consider) {
  std::vector<std::unique_ptr<RouteIndex::Cursor>> cursors;
  // The positioned cursors, lowest seq on top (a narrow plan may hold hundreds of routes).
  auto later = [](const RouteIndex::Cursor* a, const RouteIndex::Cursor* b) {
    return a->seq() > b->seq();
  };
  std::priority_queue<RouteIndex::Cursor*, std::vector<RouteIndex::Cursor*>, decltype(later)>
      positioned(later);
  // A cursor that has ended joins no queue; one that failed fails the read.
  auto requeue = [&](RouteIndex::Cursor* c) {
    if (c->Valid()) {
      positioned.push(c);
      return Status::Ok();
    }
    return c->status();
  };
  cursors.reserve(plan.routes.size());
  for (const auto& route : plan.routes) {
    cursors.push_back(store.routes().Open(route, from, head));
    CAREHUB_RETURN_IF_ERROR(requeue(cursors.back().get()));
  }
  // Events are fetched a chunk at a time: one MultiGet sorts and batches the block reads.
  constexpr size_t kChunk = 256;
  std::vector<uint64_t> chunk;
  uint64_t read_to = from - 1;
  uint64_t examined = 0;
  while (!positioned.empty() && examined < max_examined) {
    chunk.clear();
    while (!positioned.empty() && chunk.size() < kChunk && examined + chunk.size() < max_examined) {
      RouteIndex::Cursor* c = positioned.top();
      positioned.pop();
      chunk.push_back(c->seq());
      c->Next();
      CAREHUB_RETURN_IF_ERROR(requeue(c));
    }
    auto values = store.events().MultiGet(chunk);
    if (!values.ok()) {
      return values.status();
    }
    for (size_t j = 0; j < chunk.size(); ++j) {
      // An empty value: retention removed the event since the index was read. Nothing to send.
      if (!(*values)[j].empty() && !consider(chunk[j], (*values)[j])) {
        return chunk[j];
      }
    }
    examined += chunk.size();
    read_to = chunk.back();
  }
  // Every route read to head: nothing the plan covers is left below it.
  return positioned.empty() ? head : read_to;
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
                         uint32_t max_examined,
                         const std::function<bool(uint64_t, std::string_view)>& consider) {
  if (plan.use_route_index) {
    return ReadByRouteIndex(plan, store, from, head, max_examined, consider);
  }
  return ScanLog(store, from, head, max_examined, consider);
}

}  // namespace carehub::hub
