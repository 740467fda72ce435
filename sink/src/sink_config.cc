#include "carehub/sink/sink_config.h"

#include <yaml-cpp/yaml.h>

#include <set>

#include "carehub/core/address.h"
#include "carehub/sink/pg_connection.h"
#include "carehub/sink/pg_schema.h"

namespace carehub::sink {
namespace {

Status Bad(const std::string& where, const std::string& what) {
  return Status::Error("bad_config", where + ": " + what);
}

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

// A positive integer up to `max` (yaml-cpp would read "-1" into an unsigned as a huge value).
Status ReadCount(const YAML::Node& parent, const char* key, const std::string& where, uint32_t max,
                 uint32_t* out) {
  const YAML::Node node = parent[key];
  if (!node) {
    return Status::Ok();
  }
  int64_t value = 0;
  try {
    if (!node.IsScalar()) {
      throw YAML::Exception(YAML::Mark(), "");
    }
    value = node.as<int64_t>();
  } catch (const YAML::Exception&) {
    return Bad(where + "." + key, "must be an integer");
  }
  if (value <= 0 || value > static_cast<int64_t>(max)) {
    return Bad(where + "." + key, "must be between 1 and " + std::to_string(max));
  }
  *out = static_cast<uint32_t>(value);
  return Status::Ok();
}

std::string Resolve(const std::filesystem::path& base, const std::string& p) {
  if (p.empty() || std::filesystem::path(p).is_absolute()) {
    return p;
  }
  return (base / p).string();
}

Status Parse(const YAML::Node& root, const std::filesystem::path& base, SinkConfig* c) {
  CAREHUB_RETURN_IF_ERROR(CheckKeys(
      root, "config",
      {"subscription", "hub", "postgres", "batch", "reconnect", "admin", "logging", "progress"}));
  CAREHUB_RETURN_IF_ERROR(ReadString(root, "subscription", "config", &c->subscription));
  if (const YAML::Node n = root["hub"]) {
    CAREHUB_RETURN_IF_ERROR(
        CheckKeys(n, "hub", {"endpoint", "client_key_file", "server_public_key_file", "window"}));
    CAREHUB_RETURN_IF_ERROR(ReadString(n, "endpoint", "hub", &c->hub_endpoint));
    CAREHUB_RETURN_IF_ERROR(ReadString(n, "client_key_file", "hub", &c->client_key_file));
    CAREHUB_RETURN_IF_ERROR(
        ReadString(n, "server_public_key_file", "hub", &c->server_public_key_file));
    CAREHUB_RETURN_IF_ERROR(ReadCount(n, "window", "hub", 1'000'000, &c->window));
    c->client_key_file = Resolve(base, c->client_key_file);
    c->server_public_key_file = Resolve(base, c->server_public_key_file);
  }
  if (const YAML::Node n = root["postgres"]) {
    CAREHUB_RETURN_IF_ERROR(CheckKeys(n, "postgres", {"dsn", "schema", "connect_timeout_s"}));
    CAREHUB_RETURN_IF_ERROR(ReadString(n, "dsn", "postgres", &c->dsn));
    CAREHUB_RETURN_IF_ERROR(ReadString(n, "schema", "postgres", &c->schema));
    CAREHUB_RETURN_IF_ERROR(
        ReadCount(n, "connect_timeout_s", "postgres", 3600, &c->connect_timeout_s));
  }
  if (const YAML::Node n = root["batch"]) {
    CAREHUB_RETURN_IF_ERROR(CheckKeys(n, "batch", {"max_events", "max_delay_ms"}));
    CAREHUB_RETURN_IF_ERROR(ReadCount(n, "max_events", "batch", 1'000'000, &c->batch_max_events));
    CAREHUB_RETURN_IF_ERROR(ReadCount(n, "max_delay_ms", "batch", 600'000, &c->batch_max_delay_ms));
  }
  if (const YAML::Node n = root["reconnect"]) {
    CAREHUB_RETURN_IF_ERROR(CheckKeys(n, "reconnect", {"initial_ms", "max_ms"}));
    CAREHUB_RETURN_IF_ERROR(
        ReadCount(n, "initial_ms", "reconnect", 600'000, &c->reconnect_initial_ms));
    CAREHUB_RETURN_IF_ERROR(ReadCount(n, "max_ms", "reconnect", 600'000, &c->reconnect_max_ms));
  }
  if (const YAML::Node n = root["admin"]) {
    CAREHUB_RETURN_IF_ERROR(CheckKeys(n, "admin", {"listen", "bearer_token", "endpoints_file"}));
    CAREHUB_RETURN_IF_ERROR(ReadString(n, "listen", "admin", &c->admin_listen));
    CAREHUB_RETURN_IF_ERROR(ReadString(n, "bearer_token", "admin", &c->admin_bearer_token));
    CAREHUB_RETURN_IF_ERROR(ReadString(n, "endpoints_file", "admin", &c->admin_endpoints_file));
    c->admin_endpoints_file = Resolve(base, c->admin_endpoints_file);
  }
  if (const YAML::Node n = root["logging"]) {
    CAREHUB_RETURN_IF_ERROR(CheckKeys(n, "logging", {"level"}));
    CAREHUB_RETURN_IF_ERROR(ReadString(n, "level", "logging", &c->log_level));
  }
  if (const YAML::Node n = root["progress"]) {
    CAREHUB_RETURN_IF_ERROR(CheckKeys(n, "progress", {"interval_s"}));
    CAREHUB_RETURN_IF_ERROR(ReadCount(n, "interval_s", "progress", 3600, &c->progress_interval_s));
  }
  return Status::Ok();
}

}  // namespace

Result<SinkConfig> LoadSinkConfigFile(const std::filesystem::path& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path.string());
  } catch (const YAML::BadFile&) {
    return Status::Error("bad_config", "cannot read " + path.string());
  } catch (const YAML::Exception& e) {
    return Status::Error("bad_config", path.string() + ": " + e.what());
  }
  SinkConfig config;
  Status s;
  try {
    s = Parse(root, path.parent_path(), &config);
  } catch (const YAML::Exception& e) {
    s = Status::Error("bad_config", e.what());
  }
  if (!s.ok()) {
    return Status::Error("bad_config", path.string() + ": " + s.message());
  }
  return config;
}

Status ValidateSinkConfig(const SinkConfig& c) {
  if (c.subscription.empty()) {
    return Bad("subscription", "is required (--subscription or `subscription:` in the config)");
  }
  CAREHUB_RETURN_IF_ERROR(CheckDsn(c.dsn));
  CAREHUB_RETURN_IF_ERROR(CheckSchemaName(c.schema));
  if (c.hub_endpoint.rfind("tcp://", 0) == 0) {
    auto endpoint = ParseTcpEndpoint(c.hub_endpoint);
    if (!endpoint.ok()) {
      return Bad("hub.endpoint", endpoint.status().message());
    }
    if (!IsLoopbackHost(endpoint->host) && c.client_key_file.empty()) {
      return Bad("hub.endpoint", c.hub_endpoint +
                                     " is not loopback: CURVE keys are required "
                                     "(hub.client_key_file, hub.server_public_key_file)");
    }
  } else if (c.hub_endpoint.rfind("ipc://", 0) != 0) {
    return Bad("hub.endpoint", "'" + c.hub_endpoint + "' must be tcp://HOST:PORT or ipc://PATH");
  }
  if (c.client_key_file.empty() != c.server_public_key_file.empty()) {
    return Bad("hub", "client_key_file and server_public_key_file go together");
  }
  auto admin = ParseHostPort(c.admin_listen);
  if (!admin.ok()) {
    return Bad("admin.listen", admin.status().message());
  }
  if (!IsLoopbackHost(admin->host) && c.admin_bearer_token.empty()) {
    return Bad("admin.listen", c.admin_listen + " is not loopback: admin.bearer_token is required");
  }
  static const std::set<std::string> kLevels = {"trace", "debug",    "info", "warn",
                                                "error", "critical", "off"};
  if (!kLevels.count(c.log_level)) {
    return Bad("logging.level", "'" + c.log_level + "' is not trace, debug, info, warn or error");
  }
  if (c.reconnect_initial_ms > c.reconnect_max_ms) {
    return Bad("reconnect", "initial_ms is above max_ms");
  }
  if (c.exit_when_idle_s < 0) {
    return Bad("exit_when_idle", "must not be negative");
  }
  return Status::Ok();
}

}  // namespace carehub::sink
