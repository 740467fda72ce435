#pragma once
// FHIR R4 Subscriptions Backport notification bundles (hl7.fhir.uv.subscriptions-backport,
// profiles backport-subscription-notification-r4 and backport-subscription-status-r4):
// a Bundle of type history whose first entry is the Parameters-based SubscriptionStatus
// (subscription, topic, status, type, events-since-subscription-start, notification-event with
// event-number, timestamp, focus and additional-context), followed, per the payload, by an entry
// per resource: full-resource carries the resource, id-only only its fullUrl, empty nothing.
// docs/fhir-notify.md shows each kind.
//
// Pure functions over their arguments (the bundle id is random); thread-safe.

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "carehub/notify/config.h"
#include "carehub/v1/wire.pb.h"

namespace carehub::notify {

enum class NotificationType {
  kHandshake,
  kHeartbeat,
  kEventNotification,
  kQueryStatus,
  kQueryEvent
};
const char* NotificationTypeCode(NotificationType type);

// What the notifications of one subscription say about it.
struct SubscriptionFacts {
  std::string fhir_id;
  std::string base_url;  // the service's public FHIR base, no trailing slash
  std::string topic;
  Purpose purpose = Purpose::kDirectCare;
  Payload payload = Payload::kIdOnly;
  bool routing_facts = false;
};

// The status part: "requested", "active", "error" or "off"; the count of events so far; the
// error text when status is "error".
struct StatusFacts {
  std::string status = "active";
  uint64_t events_since_start = 0;
  std::string error;
};

// One numbered event. `event` empty: the number was given to an event the hub no longer
// delivers under the agreement (withheld after the number was given); it is sent without focus.
struct NumberedEvent {
  uint64_t number = 0;
  std::optional<v1::DeliveredEvent> event;
};

// <base_url>/Subscription/<fhir_id>
std::string SubscriptionUrl(const SubscriptionFacts& sub);

// The Bundle for `type`, with `events` (none for handshake, heartbeat and query-status).
// `payload` overrides the subscription's (a $events call may ask for another content).
// The same as JSON text, as it is sent; `resource_entries` (optional) receives the number of
// entries after the status entry.
std::string BuildNotificationText(const SubscriptionFacts& sub, NotificationType type,
                                  const StatusFacts& status,
                                  const std::vector<NumberedEvent>& events, Payload payload,
                                  size_t* resource_entries);
nlohmann::json BuildNotification(const SubscriptionFacts& sub, NotificationType type,
                                 const StatusFacts& status,
                                 const std::vector<NumberedEvent>& events, Payload payload);

// A random RFC 4122 version 4 UUID.
std::string RandomUuid();

}  // namespace carehub::notify
