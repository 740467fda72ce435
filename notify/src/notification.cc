#include "carehub/notify/notification.h"

#include <google/protobuf/util/time_util.h>
#include <sodium.h>

#include "carehub/core/event_types.h"
#include "carehub/notify/fhir_resources.h"

namespace carehub::notify {
namespace {

using nlohmann::json;

constexpr char kNotificationProfile[] =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
    "backport-subscription-notification-r4";
constexpr char kStatusProfile[] =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
    "backport-subscription-status-r4";
constexpr char kSubscriptionErrorSystem[] =
    "http://terminology.hl7.org/CodeSystem/subscription-error";

std::string NowInstant() {
  return google::protobuf::util::TimeUtil::ToString(
      google::protobuf::util::TimeUtil::GetCurrentTime());
}

// When the event happened as far as the topic is concerned: the hub accepted it.
std::string EventTimestamp(const v1::DeliveredEvent& d) {
  std::string t = Instant(d.event().envelope().received_at());
  return t.empty() ? Instant(d.event().envelope().occurred_at()) : t;
}

// NEMS-style routing facts (docs/fhir-notify.md, "Routing facts").
json RoutingFacts(const SubscriptionFacts& sub, const v1::DeliveredEvent& d) {
  const v1::Envelope& env = d.event().envelope();
  json ext = json::array();
  ext.push_back({{"url", std::string(kExtensionBase) + "Extension-RoutingEventType"},
                 {"valueCode", EventTypeName(d.event())}});
  if (!env.publisher_ods().empty()) {
    ext.push_back({{"url", std::string(kExtensionBase) + "Extension-RoutingPublisher"},
                   {"valueIdentifier",
                    {{"system", "https://fhir.nhs.uk/Id/ods-organization-code"},
                     {"value", env.publisher_ods()}}}});
  }
  // Never for secondary use, whatever the event holds.
  if (sub.purpose == Purpose::kDirectCare && !env.patient().nhs_number().empty()) {
    ext.push_back({{"url", std::string(kExtensionBase) + "Extension-RoutingNhsNumber"},
                   {"valueIdentifier",
                    {{"system", "https://fhir.nhs.uk/Id/nhs-number"},
                     {"value", env.patient().nhs_number()}}}});
  }
  return ext;
}

}  // namespace

const char* NotificationTypeCode(NotificationType type) {
  switch (type) {
    case NotificationType::kHandshake:
      return "handshake";
    case NotificationType::kHeartbeat:
      return "heartbeat";
    case NotificationType::kEventNotification:
      return "event-notification";
    case NotificationType::kQueryStatus:
      return "query-status";
    case NotificationType::kQueryEvent:
      return "query-event";
  }
  return "event-notification";
}

std::string SubscriptionUrl(const SubscriptionFacts& sub) {
  return sub.base_url + "/Subscription/" + sub.fhir_id;
}

std::string RandomUuid() {
  unsigned char b[16];
  randombytes_buf(b, sizeof(b));
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) {
      out.push_back('-');
    }
    out.push_back(kHex[b[i] >> 4]);
    out.push_back(kHex[b[i] & 15]);
  }
  return out;
}

std::string BuildNotificationText(const SubscriptionFacts& sub, NotificationType type,
                                  const StatusFacts& status,
                                  const std::vector<NumberedEvent>& events, Payload payload,
                                  size_t* resource_entries) {
  const std::string sub_url = SubscriptionUrl(sub);
  json params = json::array();
  params.push_back({{"name", "subscription"}, {"valueReference", {{"reference", sub_url}}}});
  params.push_back({{"name", "topic"}, {"valueCanonical", sub.topic}});
  params.push_back({{"name", "status"}, {"valueCode", status.status}});
  params.push_back({{"name", "type"}, {"valueCode", NotificationTypeCode(type)}});
  params.push_back({{"name", "events-since-subscription-start"},
                    {"valueString", std::to_string(status.events_since_start)}});

  // The resource entries are serialised one by one as they are built: a full-resource bundle of
  // a few hundred events never exists as one JSON tree (building, copying and freeing such a tree
  // was most of the CPU of a full-resource feed).
  std::string entries;
  size_t entry_count = 0;
  for (const NumberedEvent& ne : events) {
    json parts = json::array();
    parts.push_back({{"name", "event-number"}, {"valueString", std::to_string(ne.number)}});
    json part_holder = {{"name", "notification-event"}};
    if (ne.event) {
      const std::string ts = EventTimestamp(*ne.event);
      if (!ts.empty()) {
        parts.push_back({{"name", "timestamp"}, {"valueInstant", ts}});
      }
      if (payload != Payload::kEmpty) {
        MappedEvent mapped = MapEvent(*ne.event, sub.purpose, payload == Payload::kFullResource);
        for (size_t i = 0; i < mapped.resources.size(); ++i) {
          MappedResource& r = mapped.resources[i];
          const std::string full_url = sub.base_url + "/" + r.Reference();
          // Version-specific: one bundle may carry two versions of the same resource (two
          // events about one encounter), told apart by meta.versionId, the event's hub_seq.
          parts.push_back(
              {{"name", i == 0 ? "focus" : "additional-context"},
               {"valueReference",
                {{"reference", full_url + "/_history/" +
                                   std::to_string(ne.event->event().envelope().hub_seq())}}}});
          json entry{{"fullUrl", full_url}};
          if (payload == Payload::kFullResource) {
            entry["resource"] = std::move(r.resource);
          }
          entry["request"] = {{"method", "PUT"}, {"url", r.Reference()}};
          const bool created =
              i == 0 && ne.event->event().envelope().lifecycle() == v1::LIFECYCLE_NEW;
          entry["response"] = {{"status", created ? "201" : "200"}};
          entries += ',';
          entries += entry.dump();
          ++entry_count;
        }
      }
      if (sub.routing_facts) {
        part_holder["extension"] = RoutingFacts(sub, *ne.event);
      }
    }
    part_holder["part"] = std::move(parts);
    params.push_back(std::move(part_holder));
  }
  if (status.status == "error" && !status.error.empty()) {
    params.push_back({{"name", "error"},
                      {"valueCodeableConcept",
                       {{"coding", json::array({{{"system", kSubscriptionErrorSystem},
                                                 {"code", "no-response"}}})},
                        {"text", status.error}}}});
  }

  const std::string status_id = RandomUuid();
  json status_entry{{"fullUrl", "urn:uuid:" + status_id},
                    {"resource",
                     {{"resourceType", "Parameters"},
                      {"id", status_id},
                      {"meta", {{"profile", json::array({kStatusProfile})}}},
                      {"parameter", std::move(params)}}},
                    {"request", {{"method", "GET"}, {"url", sub_url + "/$status"}}},
                    {"response", {{"status", "200"}}}};
  json bundle{{"resourceType", "Bundle"},
              {"id", RandomUuid()},
              {"meta", {{"profile", json::array({kNotificationProfile})}}},
              {"type", type == NotificationType::kQueryStatus ? "searchset" : "history"},
              {"timestamp", NowInstant()}};
  if (type == NotificationType::kQueryStatus) {
    // $status answers a search: the status resource is a match and carries no request/response.
    status_entry.erase("request");
    status_entry.erase("response");
    status_entry["search"] = {{"mode", "match"}};
    bundle.erase("meta");
    bundle["total"] = 1;
  }
  if (resource_entries != nullptr) {
    *resource_entries = entry_count;
  }
  std::string text = bundle.dump();
  text.pop_back();  // the closing brace: the entries follow
  text.reserve(text.size() + entries.size() + 4096);
  text += ",\"entry\":[";
  text += status_entry.dump();
  text += entries;
  text += "]}";
  return text;
}

json BuildNotification(const SubscriptionFacts& sub, NotificationType type,
                       const StatusFacts& status, const std::vector<NumberedEvent>& events,
                       Payload payload) {
  return json::parse(BuildNotificationText(sub, type, status, events, payload, nullptr));
}

}  // namespace carehub::notify
