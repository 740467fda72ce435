// TraceEvent: an event's path through the hub — received, accepted or refused, and for every
// subscription delivered, withheld, not covered or not yet reached.

#include <map>
#include <set>

#include "carehub/core/event_types.h"
#include "carehub/core/strings.h"
#include "inquiry.h"

namespace carehub::hub::inquiry {
namespace {

// Quarantine records of this publisher's event id (rejected or conflicting sends). The quarantine
// is bounded by its byte budget, so reading it whole is a bounded cost.
Result<json> QuarantineOf(const Store& store, const std::string& publisher,
                          const std::string& event_id) {
  json out = json::array();
  uint64_t after = 0;
  for (;;) {
    auto page = store.quarantine().List(after, 1000);
    if (!page.ok()) {
      return page.status();
    }
    for (const auto& q : page.value()) {
      after = q.id();
      if (q.publisher_ods() == publisher && q.event_id() == event_id) {
        out.push_back({{"id", q.id()},
                       {"at_unix_ms", q.at_unix_ms()},
                       {"sender", q.sender()},
                       {"reason", q.reason()},
                       {"message", q.message()},
                       {"state", QuarantineTable::IsOpen(q) ? std::string("open") : q.state()},
                       {"replay_outcome", q.replay_outcome()}});
      }
    }
    if (page.value().size() < 1000) {
      return out;
    }
  }
}

struct Delivery {
  int64_t at_unix_ms = 0;
  std::string audit_ref;
  std::string agreement;
  std::string field_level;
  std::string subscriber;
};

// subscription -> its audited deliveries of `seq`, from the disclosure index (filed under the
// event's patients) and the audit records the entries name.
Result<std::map<std::string, std::vector<Delivery>>> DeliveriesOf(const Store& store,
                                                                  const v1::Event& event,
                                                                  uint64_t seq) {
  std::map<std::string, std::vector<Delivery>> out;
  auto hasher = store.disclosures().Hasher();
  if (!hasher.ok()) {
    if (hasher.status().code() == "no_index_key") {
      return out;  // nothing was ever delivered from this store
    }
    return hasher.status();
  }
  std::vector<std::string> patients;
  hasher.value().KeysOf(event, &patients);
  std::vector<FoundDisclosure> found;
  std::set<std::string> seen;  // an A40 merge is filed under both patients: count it once
  for (const auto& patient : patients) {
    auto entries = store.disclosures().ForPatient(patient, 0, INT64_MAX, 100000, seq);
    if (!entries.ok()) {
      return entries.status();
    }
    for (auto& f : entries.value()) {
      if (seen.insert(f.audit_key).second) {
        found.push_back(std::move(f));
      }
    }
  }
  std::vector<std::string> keys;
  for (const auto& f : found) {
    keys.push_back(f.audit_key);
  }
  auto records = store.audit().Get(keys);
  if (!records.ok()) {
    return records.status();
  }
  for (size_t i = 0; i < found.size(); ++i) {
    const auto& record = records.value()[i];
    if (!record) {
      return Status::Error("store_corrupt", "a disclosure index entry names an audit record (" +
                                                HexEncode(found[i].audit_key) +
                                                ") that is missing");
    }
    out[record->subscription()].push_back({found[i].at_unix_ms, HexEncode(found[i].audit_key),
                                           found[i].entry.agreement(), found[i].entry.field_level(),
                                           record->subscriber()});
  }
  return out;
}

json DecisionJson(const policy::PolicySet& policy, const policy::SubscriptionRef& sub,
                  const v1::Event& event, Clock::TimePoint now) {
  const auto decision = policy.Decide(sub, event, now);
  switch (decision.verdict) {
    case policy::Verdict::kDeliver:
      return {{"verdict", "deliver"},
              {"agreement", decision.agreement->id},
              {"field_level", policy::FieldLevelName(decision.agreement->patient_fields)}};
    case policy::Verdict::kWithheld:
      return {{"verdict", "withhold"},
              {"rule", decision.withheld_reason},
              {"agreement", decision.agreement ? decision.agreement->id : ""}};
    case policy::Verdict::kNotCovered:
      break;
  }
  const auto& e = event.envelope();
  std::string why = "no agreement of this subscription (purpose " +
                    std::string(policy::PurposeName(sub.purpose)) + ") covers publisher " +
                    e.publisher_ods() + " or site " + e.site_ods() + " with type " +
                    EventTypeName(event);
  if (policy.AgreementsFor(sub).empty()) {
    why = "the subscriber has no agreement for this subscription's purpose (" +
          std::string(policy::PurposeName(sub.purpose)) + ")";
  }
  return {{"verdict", "not_covered"}, {"rule", "source_or_type"}, {"why", why}};
}

}  // namespace

Result<json> TraceEvent(const Store& store, const policy::PolicySet& policy,
                        const TraceQuery& query, Clock::TimePoint now) {
  json out = {{"found", false}};
  std::optional<uint64_t> seq = query.hub_seq;
  std::string publisher = query.publisher_ods;
  std::string event_id = query.event_id;
  if (!seq) {
    if (publisher.empty() || event_id.empty()) {
      return Status::Error("bad_request", "name the event: publisher and event id, or hub_seq");
    }
    auto entries = store.dedup().Lookup({DedupKey(publisher, event_id)});
    if (!entries.ok()) {
      return entries.status();
    }
    if (const auto& entry = entries.value()[0]) {
      seq = entry->hub_seq;
    }
  }
  std::optional<v1::Event> event;
  if (seq) {
    auto got = store.events().Get(*seq);
    if (!got.ok()) {
      return got.status();
    }
    event = std::move(got).value();
    if (event) {
      publisher = event->envelope().publisher_ods();
      event_id = event->envelope().event_id();
    }
  }
  out["query"] = {{"publisher_ods", publisher}, {"event_id", event_id}};
  if (seq) {
    out["query"]["hub_seq"] = *seq;
  }
  if (!publisher.empty() && !event_id.empty()) {
    auto quarantine = QuarantineOf(store, publisher, event_id);
    if (!quarantine.ok()) {
      return quarantine.status();
    }
    out["quarantine"] = std::move(quarantine).value();
  } else {
    out["quarantine"] = json::array();
  }
  if (!event) {
    out["ingest"] = {{"outcome", out["quarantine"].empty() ? "unknown" : "refused"},
                     {"explanation",
                      out["quarantine"].empty()
                          ? (seq ? "no event is stored at this hub_seq (never, or cut by retention)"
                                 : "no stored event has this publisher and event id within the "
                                   "dedup window, and "
                                   "the quarantine holds no refusal of it")
                          : "every send of this event id was refused; see the quarantine records"}};
    return out;
  }
  out["found"] = true;
  const auto& env = event->envelope();
  out["event"] = EventJson(*event, /*masked=*/true);
  out["ingest"] = {{"outcome", "accepted"},
                   {"hub_seq", env.hub_seq()},
                   {"received_at_unix_ms",
                    env.received_at().seconds() * 1000 + env.received_at().nanos() / 1000000},
                   {"event_type", EventTypeName(*event)},
                   {"site_ods", env.site_ods()},
                   {"lifecycle", v1::Lifecycle_Name(env.lifecycle())},
                   {"supersedes_event_id", env.supersedes_event_id()},
                   {"refused_sends", out["quarantine"].size()}};
  auto resends = store.resends().Get(DedupKey(publisher, event_id));
  if (!resends.ok()) {
    return resends.status();
  }
  const Resends r = resends.value().value_or(Resends{});
  out["ingest"]["duplicate_answers"] = {
      {"count", r.count}, {"first_unix_ms", r.first_unix_ms}, {"last_unix_ms", r.last_unix_ms}};

  auto deliveries = DeliveriesOf(store, *event, env.hub_seq());
  if (!deliveries.ok()) {
    return deliveries.status();
  }
  json subs = json::array();
  std::set<std::string> listed;
  auto describe = [&](const std::string& subscription, const std::string& subscriber,
                      const policy::SubscriptionRef* ref) -> Result<json> {
    listed.insert(subscription);
    auto cursor = store.cursors().Get(subscription);
    if (!cursor.ok()) {
      return cursor.status();
    }
    const uint64_t acked = cursor.value().value_or(0);
    json s = {{"subscription", subscription},
              {"subscriber", subscriber},
              {"acknowledged_through", acked}};
    if (ref) {
      s["purpose"] = policy::PurposeName(ref->purpose);
      s["decision_now"] = DecisionJson(policy, *ref, *event, now);
    }
    auto found = deliveries.value().find(subscription);
    if (found != deliveries.value().end()) {
      json list = json::array();
      for (const auto& d : found->second) {
        list.push_back({{"at_unix_ms", d.at_unix_ms},
                        {"audit_ref", d.audit_ref},
                        {"agreement", d.agreement},
                        {"field_level", d.field_level}});
      }
      s["status"] = "delivered";
      s["deliveries"] = std::move(list);
      s["acknowledged"] = acked >= env.hub_seq();
      return s;
    }
    if (acked < env.hub_seq()) {
      s["status"] = "not_yet_reached";
      s["why"] = "the subscription has acknowledged through hub_seq " + std::to_string(acked);
      return s;
    }
    const std::string verdict = ref ? s["decision_now"]["verdict"].get<std::string>() : "";
    if (verdict == "withhold") {
      s["status"] = "withheld";
      s["rule"] = s["decision_now"]["rule"];
    } else if (verdict == "not_covered" || !ref) {
      s["status"] = "not_covered";
    } else {
      s["status"] = "not_delivered";
      s["why"] =
          "the cursor passed this event and no delivery of it is filed, though the agreements in "
          "force now would deliver it: it was withheld or not covered under the agreements of the "
          "time (see the audit trail's agreements_changed records), or delivered before this hub "
          "filed disclosures";
    }
    return s;
  };
  for (const auto& subscriber : policy.subscribers()) {
    for (const auto& id : subscriber.subscriptions) {
      const auto* ref = policy.FindSubscription(id);
      auto s = describe(id, subscriber.id, ref);
      if (!s.ok()) {
        return s.status();
      }
      subs.push_back(std::move(s).value());
    }
  }
  // Subscriptions that received it but are no longer in the policy.
  for (const auto& [subscription, list] : deliveries.value()) {
    if (!listed.count(subscription)) {
      auto s = describe(subscription, list.front().subscriber, nullptr);
      if (!s.ok()) {
        return s.status();
      }
      subs.push_back(std::move(s).value());
    }
  }
  out["subscriptions"] = std::move(subs);
  return out;
}

}  // namespace carehub::hub::inquiry
