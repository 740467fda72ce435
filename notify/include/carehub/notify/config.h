#pragma once
// The YAML config of one `carehub-fhir-notify` process (docs/fhir-notify.md, "Configuration").
//
// Parsing is strict, like the adapters': an unknown key, a value of the wrong type or a missing
// required value refuses the whole file with one line naming the key, because a typo must never
// fall back to a default (a notification endpoint in the wrong place, a secondary-use feed read as
// direct care). Endpoint rules are checked here too: https:// anywhere, http:// only to a numeric
// loopback host; a bearer token file and client certificate files must be readable at start-up.
// Pure apart from reading the files it names; thread-safe.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "carehub/client/curve.h"
#include "carehub/core/status.h"

namespace carehub::notify {

// What each notification carries for each event (Backport IG "payload content").
enum class Payload { kEmpty, kIdOnly, kFullResource };
// "empty", "id-only", "full-resource".
const char* PayloadName(Payload payload);
bool ParsePayload(const std::string& text, Payload* out);

enum class Purpose { kDirectCare, kSecondaryUse };

struct EndpointConfig {
  // https://HOST[:PORT]/PATH, or http:// to 127.0.0.0/8 or [::1] only.
  std::string url;
  // Sent as "Authorization: Bearer <token>"; read from bearer_token_file at start-up.
  std::string bearer_token;
  // Mutual TLS: our client certificate and key (PEM). Both or neither.
  std::filesystem::path client_cert_file;
  std::filesystem::path client_key_file;
  // CA bundle the endpoint's certificate must chain to; empty: the system's default bundle.
  std::filesystem::path ca_file;
  std::chrono::milliseconds timeout{10'000};
};

struct RetryConfig {
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{30'000};
  // Consecutive failed attempts after which the subscription's status becomes "error".
  uint32_t error_after_failures = 5;
};

struct SubscriptionConfig {
  // The carehub subscription (agreements file) this service holds.
  std::string id;
  // The FHIR Subscription id ([A-Za-z0-9-.]{1,64}); default: id.
  std::string fhir_id;
  // Must match the agreement's purpose: secondary_use turns on defence-in-depth stripping of
  // direct identifiers and turns off the NHS number routing fact.
  Purpose purpose = Purpose::kDirectCare;
  Payload payload = Payload::kIdOnly;
  // Canonical URL of the SubscriptionTopic named in every notification.
  std::string topic = "https://carehub.nhs.uk/SubscriptionTopic/carehub-events";
  // NEMS-style routing facts as extensions on each notification-event.
  bool routing_facts = false;
  std::chrono::milliseconds heartbeat_period{60'000};
  // Events batched into one notification bundle at most.
  uint32_t max_events_per_notification = 200;
  // Largest event-number range one $events call may ask for.
  uint32_t max_replay_events = 5000;
  EndpointConfig endpoint;
  RetryConfig retry;
};

struct NotifyConfig {
  // One subscribe endpoint, or a primary and its standby separated by commas (docs/replication.md).
  std::string hub_endpoint = "tcp://127.0.0.1:7401";
  std::optional<client::CurveClientKeys> curve;
  // Holds each subscription's event-number file (<fhir_id>.events).
  std::filesystem::path state_dir;
  // The FHIR base of this service as receivers reach it: Subscription references and $status
  // URLs in notifications are <public_base_url>/Subscription/<fhir_id>.
  std::string public_base_url = "http://127.0.0.1/fhir";
  // The admin and FHIR operations HTTP server (/healthz, /metrics, $status, $events).
  std::string admin_listen = "127.0.0.1:0";
  std::string admin_token;
  std::string log_level = "info";
  std::string log_format = "text";
  std::vector<SubscriptionConfig> subscriptions;
};

// Parses YAML text; `base_dir` resolves relative file names. Error code "bad_config".
Result<NotifyConfig> ParseNotifyConfig(const std::string& yaml_text,
                                       const std::filesystem::path& base_dir);
// Reads and parses a file.
Result<NotifyConfig> LoadNotifyConfig(const std::filesystem::path& path);

}  // namespace carehub::notify
