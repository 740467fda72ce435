#include "carehub/adapters/adapter_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <set>
#include <sstream>

#include "carehub/client/endpoints.h"
#include "carehub/core/address.h"

namespace carehub::adapters {
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

template <typename T>
Status Read(const YAML::Node& parent, const char* key, const std::string& where, T* out) {
  const YAML::Node node = parent[key];
  if (!node) {
    return Status::Ok();
  }
  if (!node.IsScalar()) {
    return Bad(where + "." + key, "must be a single value");
  }
  try {
    *out = node.as<T>();
  } catch (const YAML::Exception&) {
    return Bad(where + "." + key, "has the wrong type");
  }
  return Status::Ok();
}

// Counts and sizes: a positive integer (yaml-cpp would read "-1" into a size_t as a huge value).
Status ReadPositive(const YAML::Node& parent, const char* key, const std::string& where,
                    uint64_t max, uint64_t* out) {
  const YAML::Node node = parent[key];
  if (!node) {
    return Status::Ok();
  }
  int64_t value = 0;
  if (!node.IsScalar()) {
    return Bad(where + "." + key, "must be a single value");
  }
  try {
    value = node.as<int64_t>();
  } catch (const YAML::Exception&) {
    return Bad(where + "." + key, "must be an integer");
  }
  if (value <= 0 || static_cast<uint64_t>(value) > max) {
    return Bad(where + "." + key, "must be between 1 and " + std::to_string(max));
  }
  *out = static_cast<uint64_t>(value);
  return Status::Ok();
}

template <typename T>
Status ReadPositiveAs(const YAML::Node& parent, const char* key, const std::string& where,
                      uint64_t max, T* out) {
  uint64_t value = static_cast<uint64_t>(*out);
  Status s = ReadPositive(parent, key, where, max, &value);
  if (s.ok()) {
    *out = static_cast<T>(value);
  }
  return s;
}

std::filesystem::path Resolve(const std::filesystem::path& base, const std::string& p) {
  if (p.empty()) {
    return {};
  }
  std::filesystem::path path(p);
  return path.is_absolute() ? path : base / path;
}

// ODS organisation and site codes: 3 to 12 upper-case letters and digits (RXK, RXK01, M85001).
bool IsOdsCode(const std::string& code) {
  return code.size() >= 3 && code.size() <= 12 &&
         std::all_of(code.begin(), code.end(),
                     [](unsigned char c) { return std::isupper(c) || std::isdigit(c); });
}

Status ParseIdentity(const YAML::Node& n, AdapterConfig* c) {
  CAREHUB_RETURN_IF_ERROR(
      CheckKeys(n, "identity", {"publisher_ods", "allowed_sites", "source_system"}));
  CAREHUB_RETURN_IF_ERROR(Read(n, "publisher_ods", "identity", &c->publisher_ods));
  CAREHUB_RETURN_IF_ERROR(Read(n, "source_system", "identity", &c->source_system));
  if (!IsOdsCode(c->publisher_ods)) {
    return Bad("identity.publisher_ods", c->publisher_ods.empty()
                                             ? "is required"
                                             : "'" + c->publisher_ods + "' is not an ODS code");
  }
  if (const YAML::Node sites = n["allowed_sites"]) {
    if (!sites.IsSequence()) {
      return Bad("identity.allowed_sites", "must be a list of ODS codes");
    }
    for (const auto& item : sites) {
      std::string code;
      if (!item.IsScalar()) {
        return Bad("identity.allowed_sites", "must be a list of ODS codes");
      }
      code = item.as<std::string>();
      if (!IsOdsCode(code)) {
        return Bad("identity.allowed_sites", "'" + code + "' is not an ODS code");
      }
      if (std::find(c->allowed_sites.begin(), c->allowed_sites.end(), code) !=
          c->allowed_sites.end()) {
        return Bad("identity.allowed_sites", "'" + code + "' is listed twice");
      }
      c->allowed_sites.push_back(code);
    }
  }
  return Status::Ok();
}

Status ParseHub(const YAML::Node& n, const std::filesystem::path& base_dir, AdapterConfig* c) {
  CAREHUB_RETURN_IF_ERROR(CheckKeys(n, "hub",
                                    {"endpoint", "client_key_file", "server_public_key_file",
                                     "resend_after_ms", "max_batch_events"}));
  CAREHUB_RETURN_IF_ERROR(Read(n, "endpoint", "hub", &c->hub_endpoint));
  std::string client_key;
  std::string server_key;
  CAREHUB_RETURN_IF_ERROR(Read(n, "client_key_file", "hub", &client_key));
  CAREHUB_RETURN_IF_ERROR(Read(n, "server_public_key_file", "hub", &server_key));
  int64_t resend_ms = c->resend_after.count();
  CAREHUB_RETURN_IF_ERROR(ReadPositiveAs(n, "resend_after_ms", "hub", 3'600'000, &resend_ms));
  c->resend_after = std::chrono::milliseconds(resend_ms);
  CAREHUB_RETURN_IF_ERROR(
      ReadPositiveAs(n, "max_batch_events", "hub", 10'000, &c->max_batch_events));
  if (client_key.empty() != server_key.empty()) {
    return Bad("hub", "client_key_file and server_public_key_file go together");
  }
  if (!client_key.empty()) {
    auto pair = client::ReadKeyFile(Resolve(base_dir, client_key));
    if (!pair.ok()) {
      return Bad("hub.client_key_file", pair.status().message());
    }
    auto server = client::ReadPublicKeyFile(Resolve(base_dir, server_key));
    if (!server.ok()) {
      return Bad("hub.server_public_key_file", server.status().message());
    }
    c->curve = client::CurveClientKeys{pair->public_key, pair->secret_key, server.value()};
  }
  return Status::Ok();
}

// hub.endpoint has a shape ZeroMQ can connect to, and plain transport stays on this machine: an
// ipc:// socket always does; a tcp:// endpoint must name a numeric loopback address. A replicated
// pair is written "primary,standby" (docs/replication.md): each is checked.
Status CheckOneHubEndpoint(const AdapterConfig& c, const std::string& endpoint);

Status CheckHubEndpoint(const AdapterConfig& c) {
  for (const auto& endpoint : client::SplitEndpoints(c.hub_endpoint)) {
    CAREHUB_RETURN_IF_ERROR(CheckOneHubEndpoint(c, endpoint));
  }
  return Status::Ok();
}

Status CheckOneHubEndpoint(const AdapterConfig& c, const std::string& endpoint) {
  if (endpoint.rfind("ipc://", 0) == 0) {
    return Status::Ok();
  }
  if (endpoint.rfind("tcp://", 0) != 0) {
    return Bad("hub.endpoint", "must be tcp://HOST:PORT or ipc://PATH, not '" + endpoint + "'");
  }
  auto host_port = ParseTcpEndpoint(endpoint);
  if (!host_port.ok() || host_port->port == 0) {
    return Bad("hub.endpoint", "must be tcp://HOST:PORT with a port, not '" + endpoint + "'");
  }
  if (!IsLoopbackHost(host_port->host) && !c.curve) {
    return Bad("hub.endpoint", "'" + endpoint +
                                   "' is not loopback (127.0.0.1 or [::1]): set client_key_file "
                                   "and server_public_key_file (CURVE)");
  }
  return Status::Ok();
}

Status ParseKindSection(const YAML::Node& root, AdapterConfig* c) {
  for (const char* section : {"hl7", "fhir", "csv"}) {
    if (root[section] && AdapterKindName(c->kind) != section) {
      return Bad(section, std::string("section does not apply to a ") +
                              std::string(AdapterKindName(c->kind)) + " adapter");
    }
  }
  if (const YAML::Node n = root["hl7"]) {
    CAREHUB_RETURN_IF_ERROR(CheckKeys(n, "hl7",
                                      {"max_message_bytes", "idle_timeout_seconds",
                                       "max_connections", "ack_application", "ack_facility"}));
    CAREHUB_RETURN_IF_ERROR(
        ReadPositiveAs(n, "max_message_bytes", "hl7", 64ull << 20, &c->hl7.max_message_bytes));
    int64_t idle = c->hl7.idle_timeout.count();
    CAREHUB_RETURN_IF_ERROR(ReadPositiveAs(n, "idle_timeout_seconds", "hl7", 86'400, &idle));
    c->hl7.idle_timeout = std::chrono::seconds(idle);
    CAREHUB_RETURN_IF_ERROR(
        ReadPositiveAs(n, "max_connections", "hl7", 4096, &c->hl7.max_connections));
    CAREHUB_RETURN_IF_ERROR(Read(n, "ack_application", "hl7", &c->hl7.ack_application));
    CAREHUB_RETURN_IF_ERROR(Read(n, "ack_facility", "hl7", &c->hl7.ack_facility));
  }
  if (const YAML::Node n = root["fhir"]) {
    CAREHUB_RETURN_IF_ERROR(CheckKeys(n, "fhir", {"max_body_bytes", "max_remembered_resources"}));
    CAREHUB_RETURN_IF_ERROR(
        ReadPositiveAs(n, "max_body_bytes", "fhir", 256ull << 20, &c->fhir.max_body_bytes));
    CAREHUB_RETURN_IF_ERROR(ReadPositiveAs(n, "max_remembered_resources", "fhir", 100'000'000,
                                           &c->fhir.max_remembered_resources));
  }
  if (const YAML::Node n = root["csv"]) {
    CAREHUB_RETURN_IF_ERROR(CheckKeys(
        n, "csv",
        {"poll_interval_ms", "max_columns", "max_row_bytes", "max_file_bytes", "publish_chunk"}));
    int64_t poll = c->csv.poll_interval.count();
    CAREHUB_RETURN_IF_ERROR(ReadPositiveAs(n, "poll_interval_ms", "csv", 3'600'000, &poll));
    c->csv.poll_interval = std::chrono::milliseconds(poll);
    CAREHUB_RETURN_IF_ERROR(ReadPositiveAs(n, "max_columns", "csv", 100'000, &c->csv.max_columns));
    CAREHUB_RETURN_IF_ERROR(
        ReadPositiveAs(n, "max_row_bytes", "csv", 64ull << 20, &c->csv.max_row_bytes));
    CAREHUB_RETURN_IF_ERROR(
        ReadPositiveAs(n, "max_file_bytes", "csv", 64ull << 30, &c->csv.max_file_bytes));
    CAREHUB_RETURN_IF_ERROR(
        ReadPositiveAs(n, "publish_chunk", "csv", 10'000, &c->csv.publish_chunk));
  }
  return Status::Ok();
}

}  // namespace

std::string_view AdapterKindName(AdapterKind kind) {
  switch (kind) {
    case AdapterKind::kHl7:
      return "hl7";
    case AdapterKind::kFhir:
      return "fhir";
    case AdapterKind::kCsv:
      return "csv";
  }
  return "unknown";
}

std::filesystem::path AdapterConfig::EndpointsFile() const {
  // outbox_dir may end with a separator ("data/rxk/outbox/"): drop it so parent_path is the folder
  // that holds the outbox.
  std::filesystem::path dir = outbox_dir;
  if (!dir.has_filename()) {
    dir = dir.parent_path();
  }
  return dir.parent_path() / "adapter-endpoints.json";
}

Result<AdapterConfig> ParseAdapterConfig(const std::string& yaml_text,
                                         const std::filesystem::path& base_dir, AdapterKind kind) {
  AdapterConfig c;
  c.kind = kind;
  try {
    YAML::Node root;
    try {
      root = YAML::Load(yaml_text);
    } catch (const YAML::Exception& e) {
      std::string what = e.what();
      std::replace(what.begin(), what.end(), '\n', ' ');
      return Bad("config", "not valid YAML: " + what);
    }
    if (!root || root.IsNull()) {
      return Bad("config", "is empty");
    }
    CAREHUB_RETURN_IF_ERROR(CheckKeys(
        root, "config", {"identity", "hub", "outbox", "admin", "logging", "hl7", "fhir", "csv"}));
    const YAML::Node identity = root["identity"];
    if (!identity) {
      return Bad("identity", "section is required (publisher_ods)");
    }
    CAREHUB_RETURN_IF_ERROR(ParseIdentity(identity, &c));
    if (c.source_system.empty()) {
      c.source_system = std::string(AdapterKindName(kind));
    }
    if (const YAML::Node n = root["hub"]) {
      CAREHUB_RETURN_IF_ERROR(ParseHub(n, base_dir, &c));
    }
    CAREHUB_RETURN_IF_ERROR(CheckHubEndpoint(c));
    const YAML::Node outbox = root["outbox"];
    if (!outbox) {
      return Bad("outbox", "section is required (dir)");
    }
    CAREHUB_RETURN_IF_ERROR(CheckKeys(outbox, "outbox", {"dir"}));
    std::string outbox_dir;
    CAREHUB_RETURN_IF_ERROR(Read(outbox, "dir", "outbox", &outbox_dir));
    if (outbox_dir.empty()) {
      return Bad("outbox.dir", "is required");
    }
    c.outbox_dir = outbox_dir;
    if (const YAML::Node n = root["admin"]) {
      CAREHUB_RETURN_IF_ERROR(CheckKeys(n, "admin", {"listen", "token_file"}));
      CAREHUB_RETURN_IF_ERROR(Read(n, "listen", "admin", &c.admin_listen));
      std::string token_file;
      CAREHUB_RETURN_IF_ERROR(Read(n, "token_file", "admin", &token_file));
      if (!token_file.empty()) {
        std::ifstream in(Resolve(base_dir, token_file));
        std::string token;
        if (!in || !std::getline(in, token) || token.empty()) {
          return Bad("admin.token_file", "cannot read a token from '" + token_file + "'");
        }
        c.admin_token = token;
      }
    }
    auto admin = ParseHostPort(c.admin_listen);
    if (!admin.ok()) {
      return Bad("admin.listen", "'" + c.admin_listen + "': " + admin.status().message());
    }
    if (!IsLoopbackHost(admin->host) && c.admin_token.empty()) {
      return Bad("admin.listen", "'" + c.admin_listen + "' is not loopback: set admin.token_file");
    }
    if (const YAML::Node n = root["logging"]) {
      CAREHUB_RETURN_IF_ERROR(CheckKeys(n, "logging", {"level", "format"}));
      CAREHUB_RETURN_IF_ERROR(Read(n, "level", "logging", &c.log_level));
      CAREHUB_RETURN_IF_ERROR(Read(n, "format", "logging", &c.log_format));
    }
    static const std::set<std::string> kLevels = {"trace", "debug", "info",
                                                  "warn",  "error", "critical"};
    if (!kLevels.count(c.log_level)) {
      return Bad("logging.level", "must be one of trace, debug, info, warn, error, critical");
    }
    if (c.log_format != "text" && c.log_format != "json") {
      return Bad("logging.format", "must be 'text' or 'json'");
    }
    CAREHUB_RETURN_IF_ERROR(ParseKindSection(root, &c));
    if (c.hl7.ack_facility.empty()) {
      c.hl7.ack_facility = c.publisher_ods;
    }
  } catch (const YAML::Exception& e) {
    // Any structure yaml-cpp could not convert (e.g. a mapping used as a key).
    return Bad("config", std::string("cannot be read: ") + e.what());
  }
  return c;
}

Result<AdapterConfig> LoadAdapterConfig(const std::filesystem::path& path, AdapterKind kind) {
  std::ifstream in(path);
  if (!in) {
    return Status::Error("bad_config", path.string() + ": cannot be read");
  }
  std::ostringstream text;
  text << in.rdbuf();
  auto config = ParseAdapterConfig(text.str(), path.parent_path(), kind);
  if (!config.ok()) {
    return Status::Error(config.status().code(), path.string() + ": " + config.status().message());
  }
  return config;
}

}  // namespace carehub::adapters
