#include "carehub/notify/config.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "carehub/client/endpoints.h"
#include "carehub/core/address.h"

namespace carehub::notify {
namespace {

Status Bad(const std::string& where, const std::string& what) {
  return Status::Error("bad_config", where + ": " + what);
}

// Rejects keys we do not know: a typo must not silently fall back to a default.
Status CheckKeys(const YAML::Node& node, const std::string& where,
                 const std::set<std::string>& allowed) {
  if (!node.IsMap()) {
    return Bad(where, "must be a mapping");
  }
  for (const auto& kv : node) {
    const auto key = kv.first.as<std::string>();
    if (!allowed.count(key)) {
      return Bad(where, "unknown key '" + key + "'");
    }
  }
  return Status::Ok();
}

Status ReadString(const YAML::Node& parent, const char* key, const std::string& where,
                  std::string* out) {
  const YAML::Node node = parent[key];
  if (!node) {
    return Status::Ok();
  }
  if (!node.IsScalar()) {
    return Bad(where + "." + key, "must be a single value");
  }
  *out = node.as<std::string>();
  return Status::Ok();
}

Status ReadBool(const YAML::Node& parent, const char* key, const std::string& where, bool* out) {
  const YAML::Node node = parent[key];
  if (!node) {
    return Status::Ok();
  }
  try {
    *out = node.as<bool>();
  } catch (const YAML::Exception&) {
    return Bad(where + "." + key, "must be true or false");
  }
  return Status::Ok();
}

// A positive integer no larger than `max` (yaml-cpp would read "-1" into an unsigned as huge).
Status ReadPositive(const YAML::Node& parent, const char* key, const std::string& where,
                    int64_t max, int64_t* out) {
  const YAML::Node node = parent[key];
  if (!node) {
    return Status::Ok();
  }
  int64_t value = 0;
  try {
    value = node.as<int64_t>();
  } catch (const YAML::Exception&) {
    return Bad(where + "." + key, "must be a whole number");
  }
  if (value <= 0 || value > max) {
    return Bad(where + "." + key, "must be between 1 and " + std::to_string(max));
  }
  *out = value;
  return Status::Ok();
}

Status ReadMillis(const YAML::Node& parent, const char* key, const std::string& where,
                  std::chrono::milliseconds* out) {
  int64_t ms = out->count();
  CAREHUB_RETURN_IF_ERROR(ReadPositive(parent, key, where, 7LL * 24 * 3600 * 1000, &ms));
  *out = std::chrono::milliseconds(ms);
  return Status::Ok();
}

std::filesystem::path Resolve(const std::filesystem::path& base, const std::string& name) {
  std::filesystem::path p(name);
  return p.is_absolute() || base.empty() ? p : base / p;
}

Result<std::string> ReadWholeFile(const std::filesystem::path& path, const std::string& where) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Bad(where, "cannot read " + path.string());
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// https://HOST[:PORT][/PATH] or http:// to a numeric loopback host.
Status CheckEndpointUrl(const std::string& url, const std::string& where) {
  static const std::regex kUrl(
      R"(^(https?)://(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?(/[^\s]*)?$)");
  std::smatch m;
  if (!std::regex_match(url, m, kUrl)) {
    return Bad(where, "'" + url + "' is not an http(s)://HOST[:PORT]/PATH URL");
  }
  if (m[1] == "http") {
    std::string host = m[2].str();
    if (!host.empty() && host.front() == '[') {
      host = host.substr(1, host.size() - 2);
    }
    if (!IsLoopbackHost(host)) {
      return Bad(where,
                 "plain http:// is allowed only to a loopback address (127.0.0.0/8, [::1]); "
                 "use https://");
    }
  }
  return Status::Ok();
}

Status ParseEndpoint(const YAML::Node& node, const std::string& where,
                     const std::filesystem::path& base, EndpointConfig* out) {
  CAREHUB_RETURN_IF_ERROR(CheckKeys(node, where,
                                    {"url", "bearer_token_file", "client_cert_file",
                                     "client_key_file", "ca_file", "timeout_ms"}));
  CAREHUB_RETURN_IF_ERROR(ReadString(node, "url", where, &out->url));
  if (out->url.empty()) {
    return Bad(where + ".url", "is required");
  }
  CAREHUB_RETURN_IF_ERROR(CheckEndpointUrl(out->url, where + ".url"));
  std::string token_file, cert, key, ca;
  CAREHUB_RETURN_IF_ERROR(ReadString(node, "bearer_token_file", where, &token_file));
  CAREHUB_RETURN_IF_ERROR(ReadString(node, "client_cert_file", where, &cert));
  CAREHUB_RETURN_IF_ERROR(ReadString(node, "client_key_file", where, &key));
  CAREHUB_RETURN_IF_ERROR(ReadString(node, "ca_file", where, &ca));
  CAREHUB_RETURN_IF_ERROR(ReadMillis(node, "timeout_ms", where, &out->timeout));
  if (!token_file.empty()) {
    auto token = ReadWholeFile(Resolve(base, token_file), where + ".bearer_token_file");
    if (!token.ok()) {
      return token.status();
    }
    std::string t = token.value();
    while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) {
      t.pop_back();
    }
    if (t.empty() || t.find_first_of(" \t\r\n") != std::string::npos) {
      return Bad(where + ".bearer_token_file", "must hold one token without spaces");
    }
    out->bearer_token = t;
  }
  if (cert.empty() != key.empty()) {
    return Bad(where, "client_cert_file and client_key_file go together");
  }
  for (auto [name, value, field] : {std::tuple{"client_cert_file", cert, &out->client_cert_file},
                                    std::tuple{"client_key_file", key, &out->client_key_file},
                                    std::tuple{"ca_file", ca, &out->ca_file}}) {
    if (value.empty()) {
      continue;
    }
    *field = Resolve(base, value);
    auto readable = ReadWholeFile(*field, where + "." + name);
    if (!readable.ok()) {
      return readable.status();
    }
  }
  if ((!out->client_cert_file.empty() || !out->ca_file.empty()) &&
      out->url.rfind("https", 0) != 0) {
    return Bad(where, "client certificates and ca_file need an https:// url");
  }
  return Status::Ok();
}

Status ParseSubscription(const YAML::Node& node, const std::string& where,
                         const std::filesystem::path& base, SubscriptionConfig* out) {
  CAREHUB_RETURN_IF_ERROR(CheckKeys(
      node, where,
      {"id", "fhir_id", "purpose", "payload", "topic", "routing_facts", "heartbeat_period_ms",
       "max_events_per_notification", "max_replay_events", "endpoint", "retry"}));
  CAREHUB_RETURN_IF_ERROR(ReadString(node, "id", where, &out->id));
  if (out->id.empty()) {
    return Bad(where + ".id", "is required");
  }
  out->fhir_id = out->id;
  CAREHUB_RETURN_IF_ERROR(ReadString(node, "fhir_id", where, &out->fhir_id));
  static const std::regex kFhirId(R"(^[A-Za-z0-9.-]{1,64}$)");
  if (!std::regex_match(out->fhir_id, kFhirId)) {
    return Bad(where + ".fhir_id",
               "'" + out->fhir_id + "' is not a FHIR id ([A-Za-z0-9-.], 1 to 64); set fhir_id");
  }
  std::string purpose;
  CAREHUB_RETURN_IF_ERROR(ReadString(node, "purpose", where, &purpose));
  if (purpose == "direct_care") {
    out->purpose = Purpose::kDirectCare;
  } else if (purpose == "secondary_use") {
    out->purpose = Purpose::kSecondaryUse;
  } else {
    return Bad(where + ".purpose", "must be direct_care or secondary_use (required)");
  }
  std::string payload = PayloadName(out->payload);
  CAREHUB_RETURN_IF_ERROR(ReadString(node, "payload", where, &payload));
  if (!ParsePayload(payload, &out->payload)) {
    return Bad(where + ".payload", "must be empty, id-only or full-resource");
  }
  CAREHUB_RETURN_IF_ERROR(ReadString(node, "topic", where, &out->topic));
  CAREHUB_RETURN_IF_ERROR(ReadBool(node, "routing_facts", where, &out->routing_facts));
  CAREHUB_RETURN_IF_ERROR(ReadMillis(node, "heartbeat_period_ms", where, &out->heartbeat_period));
  int64_t n = out->max_events_per_notification;
  CAREHUB_RETURN_IF_ERROR(ReadPositive(node, "max_events_per_notification", where, 10'000, &n));
  out->max_events_per_notification = static_cast<uint32_t>(n);
  n = out->max_replay_events;
  CAREHUB_RETURN_IF_ERROR(ReadPositive(node, "max_replay_events", where, 100'000, &n));
  out->max_replay_events = static_cast<uint32_t>(n);
  if (!node["endpoint"]) {
    return Bad(where + ".endpoint", "is required");
  }
  CAREHUB_RETURN_IF_ERROR(
      ParseEndpoint(node["endpoint"], where + ".endpoint", base, &out->endpoint));
  if (const YAML::Node retry = node["retry"]) {
    const std::string w = where + ".retry";
    CAREHUB_RETURN_IF_ERROR(
        CheckKeys(retry, w, {"initial_backoff_ms", "max_backoff_ms", "error_after_failures"}));
    CAREHUB_RETURN_IF_ERROR(
        ReadMillis(retry, "initial_backoff_ms", w, &out->retry.initial_backoff));
    CAREHUB_RETURN_IF_ERROR(ReadMillis(retry, "max_backoff_ms", w, &out->retry.max_backoff));
    n = out->retry.error_after_failures;
    CAREHUB_RETURN_IF_ERROR(ReadPositive(retry, "error_after_failures", w, 1'000'000, &n));
    out->retry.error_after_failures = static_cast<uint32_t>(n);
    if (out->retry.max_backoff < out->retry.initial_backoff) {
      return Bad(w, "max_backoff_ms is below initial_backoff_ms");
    }
  }
  return Status::Ok();
}

}  // namespace

const char* PayloadName(Payload payload) {
  switch (payload) {
    case Payload::kEmpty:
      return "empty";
    case Payload::kIdOnly:
      return "id-only";
    case Payload::kFullResource:
      return "full-resource";
  }
  return "id-only";
}

bool ParsePayload(const std::string& text, Payload* out) {
  if (text == "empty") {
    *out = Payload::kEmpty;
  } else if (text == "id-only") {
    *out = Payload::kIdOnly;
  } else if (text == "full-resource") {
    *out = Payload::kFullResource;
  } else {
    return false;
  }
  return true;
}

Result<NotifyConfig> ParseNotifyConfig(const std::string& yaml_text,
                                       const std::filesystem::path& base_dir) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return Bad("config", std::string("not YAML: ") + e.what());
  }
  NotifyConfig config;
  CAREHUB_RETURN_IF_ERROR(
      CheckKeys(root, "config",
                {"hub", "state_dir", "public_base_url", "admin", "logging", "subscriptions"}));
  if (const YAML::Node hub = root["hub"]) {
    CAREHUB_RETURN_IF_ERROR(CheckKeys(hub, "hub", {"endpoint", "key_file", "server_key_file"}));
    CAREHUB_RETURN_IF_ERROR(ReadString(hub, "endpoint", "hub", &config.hub_endpoint));
    std::string key_file, server_key_file;
    CAREHUB_RETURN_IF_ERROR(ReadString(hub, "key_file", "hub", &key_file));
    CAREHUB_RETURN_IF_ERROR(ReadString(hub, "server_key_file", "hub", &server_key_file));
    if (key_file.empty() != server_key_file.empty()) {
      return Bad("hub", "key_file and server_key_file go together");
    }
    if (!key_file.empty()) {
      auto keys = client::ReadKeyFile(Resolve(base_dir, key_file));
      if (!keys.ok()) {
        return Bad("hub.key_file", keys.status().message());
      }
      auto server = client::ReadPublicKeyFile(Resolve(base_dir, server_key_file));
      if (!server.ok()) {
        return Bad("hub.server_key_file", server.status().message());
      }
      config.curve = client::CurveClientKeys{keys->public_key, keys->secret_key, server.value()};
    }
  }
  if (!config.curve) {
    // Plain ZeroMQ only where nobody else can listen (DESIGN §7). A primary and its standby are
    // given as "tcp://a:7401, tcp://b:7401" (docs/replication.md): each must qualify.
    for (const std::string& one : client::SplitEndpoints(config.hub_endpoint)) {
      auto endpoint = ParseTcpEndpoint(one);
      const bool ipc = one.rfind("ipc://", 0) == 0;
      if (!ipc && (!endpoint.ok() || !IsLoopbackHost(endpoint->host))) {
        return Bad("hub.endpoint", "'" + one +
                                       "' needs CURVE keys (key_file, server_key_file) unless it "
                                       "is ipc:// or a numeric loopback tcp:// address");
      }
    }
  }
  std::string state_dir;
  CAREHUB_RETURN_IF_ERROR(ReadString(root, "state_dir", "config", &state_dir));
  if (state_dir.empty()) {
    return Bad("config.state_dir", "is required (the durable event-number files live there)");
  }
  config.state_dir = Resolve(base_dir, state_dir);
  CAREHUB_RETURN_IF_ERROR(ReadString(root, "public_base_url", "config", &config.public_base_url));
  static const std::regex kBase(R"(^https?://[^\s/]+(/[^\s]*)?$)");
  if (!std::regex_match(config.public_base_url, kBase)) {
    return Bad("config.public_base_url", "must be an http(s):// URL");
  }
  while (!config.public_base_url.empty() && config.public_base_url.back() == '/') {
    config.public_base_url.pop_back();
  }
  if (const YAML::Node admin = root["admin"]) {
    CAREHUB_RETURN_IF_ERROR(CheckKeys(admin, "admin", {"listen", "token_file"}));
    CAREHUB_RETURN_IF_ERROR(ReadString(admin, "listen", "admin", &config.admin_listen));
    std::string token_file;
    CAREHUB_RETURN_IF_ERROR(ReadString(admin, "token_file", "admin", &token_file));
    if (!token_file.empty()) {
      auto token = ReadWholeFile(Resolve(base_dir, token_file), "admin.token_file");
      if (!token.ok()) {
        return token.status();
      }
      config.admin_token = token.value();
      while (!config.admin_token.empty() &&
             (config.admin_token.back() == '\n' || config.admin_token.back() == '\r')) {
        config.admin_token.pop_back();
      }
    }
  }
  auto listen = ParseHostPort(config.admin_listen);
  if (!listen.ok()) {
    return Bad("admin.listen", listen.status().message());
  }
  if (!IsLoopbackHost(listen->host) && config.admin_token.empty()) {
    return Bad("admin", "a listen address other than loopback needs token_file");
  }
  if (const YAML::Node logging = root["logging"]) {
    CAREHUB_RETURN_IF_ERROR(CheckKeys(logging, "logging", {"level", "format"}));
    CAREHUB_RETURN_IF_ERROR(ReadString(logging, "level", "logging", &config.log_level));
    CAREHUB_RETURN_IF_ERROR(ReadString(logging, "format", "logging", &config.log_format));
    static const std::set<std::string> kLevels = {"trace", "debug",    "info", "warn",
                                                  "error", "critical", "off"};
    if (!kLevels.count(config.log_level)) {
      return Bad("logging.level", "must be trace, debug, info, warn, error, critical or off");
    }
    if (config.log_format != "text" && config.log_format != "json") {
      return Bad("logging.format", "must be text or json");
    }
  }
  const YAML::Node subs = root["subscriptions"];
  if (!subs || !subs.IsSequence() || subs.size() == 0) {
    return Bad("config.subscriptions", "must list at least one subscription");
  }
  std::set<std::string> ids, fhir_ids;
  for (size_t i = 0; i < subs.size(); ++i) {
    SubscriptionConfig sub;
    const std::string where = "subscriptions[" + std::to_string(i) + "]";
    CAREHUB_RETURN_IF_ERROR(ParseSubscription(subs[i], where, base_dir, &sub));
    if (!ids.insert(sub.id).second || !fhir_ids.insert(sub.fhir_id).second) {
      return Bad(where, "subscription '" + sub.id + "' is listed twice");
    }
    config.subscriptions.push_back(std::move(sub));
  }
  return config;
}

Result<NotifyConfig> LoadNotifyConfig(const std::filesystem::path& path) {
  auto text = ReadWholeFile(path, "config");
  if (!text.ok()) {
    return text.status();
  }
  return ParseNotifyConfig(text.value(), path.parent_path());
}

}  // namespace carehub::notify
