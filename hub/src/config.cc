#include "carehub/hub/config.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <set>
#include <sstream>

#include "carehub/core/address.h"

namespace carehub::hub {
namespace {

Status Bad(const std::string& where, const std::string& what) {
  return Status::Error("bad_config", where + ": " + what);
}

// Rejects keys we do not know: a typo must not silently fall back to a default.
Status CheckKeys(const YAML::Node& node, const std::string& where, std::set<std::string> allowed) {
  if (!node.IsMap()) {
    return Bad(where, "must be a mapping");
  }
  for (const auto& kv : node) {
    // A sequence or mapping as a key ("[a]: 1") would throw from as<std::string>() and end the
    // process instead of refusing the file (found by fuzz_hub_config).
    if (!kv.first.IsScalar()) {
      return Bad(where, "has a key that is not a plain name");
    }
    auto key = kv.first.as<std::string>();
    if (!allowed.count(key)) {
      return Bad(where, "unknown key '" + key + "'");
    }
  }
  return Status::Ok();
}

template <typename T>
Status Read(const YAML::Node& parent, const char* key, const std::string& where, T* out) {
  auto node = parent[key];
  if (!node) {
    return Status::Ok();
  }
  try {
    *out = node.as<T>();
  } catch (const YAML::Exception&) {
    return Bad(where + "." + key, "has the wrong type");
  }
  return Status::Ok();
}

std::filesystem::path Resolve(const std::filesystem::path& base, const std::string& p) {
  if (p.empty()) {
    return {};
  }
  std::filesystem::path path(p);
  return path.is_absolute() ? path : base / path;
}

}  // namespace

// Long on purpose: one short block per config key, in the order of config/hub.yaml, so the whole
// file format (and each key's bounds and error message) reads in one place.
Result<HubConfig> ParseHubConfig(const std::string& yaml_text,
                                 const std::filesystem::path& base_dir) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return Bad("config", std::string("not valid YAML: ") + e.what());
  }
  HubConfig c;
  if (!root || root.IsNull()) {
    return Bad("config", "is empty");
  }
  CAREHUB_RETURN_IF_ERROR(
      CheckKeys(root, "config",
                {"hub", "ingest", "subscribe", "admin", "dedup", "validation", "quarantine",
                 "retention", "policy", "security", "logging", "replication", "cluster"}));
  if (auto n = root["hub"]) {
    CAREHUB_RETURN_IF_ERROR(CheckKeys(n, "hub", {"data_dir", "durability", "min_free_disk_bytes"}));
    CAREHUB_RETURN_IF_ERROR(Read(n, "min_free_disk_bytes", "hub", &c.min_free_disk_bytes));
    std::string data_dir = c.data_dir.string();
    std::string durability = "fsync";
    CAREHUB_RETURN_IF_ERROR(Read(n, "data_dir", "hub", &data_dir));
    CAREHUB_RETURN_IF_ERROR(Read(n, "durability", "hub", &durability));
    if (durability == "fsync") {
      c.durability = Durability::kFsync;
    } else if (durability == "os") {
      c.durability = Durability::kOs;
    } else {
      return Bad("hub.durability", "must be 'fsync' or 'os', not '" + durability + "'");
    }
    // data_dir is relative to the working directory, so the embedded default works anywhere.
    c.data_dir = data_dir;
  }
  if (auto n = root["ingest"]) {
    CAREHUB_RETURN_IF_ERROR(
        CheckKeys(n, "ingest", {"endpoint", "max_frame_bytes", "max_events_per_batch"}));
    CAREHUB_RETURN_IF_ERROR(Read(n, "endpoint", "ingest", &c.ingest_endpoint));
    CAREHUB_RETURN_IF_ERROR(Read(n, "max_frame_bytes", "ingest", &c.max_frame_bytes));
    CAREHUB_RETURN_IF_ERROR(Read(n, "max_events_per_batch", "ingest", &c.max_events_per_batch));
  }
  if (auto n = root["subscribe"]) {
    CAREHUB_RETURN_IF_ERROR(CheckKeys(
        n, "subscribe",
        {"endpoint", "heartbeat_interval_ms", "subscriber_timeout_ms", "max_delivery_batch"}));
    CAREHUB_RETURN_IF_ERROR(Read(n, "endpoint", "subscribe", &c.subscribe_endpoint));
    CAREHUB_RETURN_IF_ERROR(
        Read(n, "heartbeat_interval_ms", "subscribe", &c.heartbeat_interval_ms));
    CAREHUB_RETURN_IF_ERROR(
        Read(n, "subscriber_timeout_ms", "subscribe", &c.subscriber_timeout_ms));
    CAREHUB_RETURN_IF_ERROR(Read(n, "max_delivery_batch", "subscribe", &c.max_delivery_batch));
  }
  if (auto n = root["admin"]) {
    CAREHUB_RETURN_IF_ERROR(CheckKeys(n, "admin", {"listen", "token_file"}));
    CAREHUB_RETURN_IF_ERROR(Read(n, "listen", "admin", &c.admin_listen));
    std::string token;
    CAREHUB_RETURN_IF_ERROR(Read(n, "token_file", "admin", &token));
    c.admin_token_file = Resolve(base_dir, token);
  }
  if (auto n = root["dedup"]) {
    CAREHUB_RETURN_IF_ERROR(CheckKeys(n, "dedup", {"window_days"}));
    CAREHUB_RETURN_IF_ERROR(Read(n, "window_days", "dedup", &c.dedup_window_days));
  }
  if (auto n = root["quarantine"]) {
    CAREHUB_RETURN_IF_ERROR(CheckKeys(
        n, "quarantine", {"peer_bytes_per_minute", "max_total_bytes", "frame_prefix_bytes"}));
    CAREHUB_RETURN_IF_ERROR(
        Read(n, "peer_bytes_per_minute", "quarantine", &c.quarantine.peer_bytes_per_minute));
    CAREHUB_RETURN_IF_ERROR(
        Read(n, "max_total_bytes", "quarantine", &c.quarantine.max_total_bytes));
    CAREHUB_RETURN_IF_ERROR(
        Read(n, "frame_prefix_bytes", "quarantine", &c.quarantine.frame_prefix_bytes));
  }
  if (auto n = root["validation"]) {
    CAREHUB_RETURN_IF_ERROR(
        CheckKeys(n, "validation", {"max_event_bytes", "max_future_skew_seconds"}));
    CAREHUB_RETURN_IF_ERROR(
        Read(n, "max_event_bytes", "validation", &c.validation.max_event_bytes));
    int64_t skew = c.validation.max_future_skew.count();
    CAREHUB_RETURN_IF_ERROR(Read(n, "max_future_skew_seconds", "validation", &skew));
    c.validation.max_future_skew = std::chrono::seconds(skew);
  }
  if (auto n = root["retention"]) {
    CAREHUB_RETURN_IF_ERROR(
        CheckKeys(n, "retention", {"max_age_days", "max_age_seconds", "interval_seconds"}));
    CAREHUB_RETURN_IF_ERROR(Read(n, "max_age_days", "retention", &c.retention_max_age_days));
    CAREHUB_RETURN_IF_ERROR(Read(n, "max_age_seconds", "retention", &c.retention_max_age_seconds));
    CAREHUB_RETURN_IF_ERROR(
        Read(n, "interval_seconds", "retention", &c.retention_interval_seconds));
    if (c.retention_interval_seconds == 0) {
      return Status::Error("bad_config", "retention.interval_seconds must be at least 1");
    }
  }
  if (auto n = root["policy"]) {
    CAREHUB_RETURN_IF_ERROR(CheckKeys(n, "policy", {"agreements"}));
    std::string agreements;
    CAREHUB_RETURN_IF_ERROR(Read(n, "agreements", "policy", &agreements));
    c.agreements_file = Resolve(base_dir, agreements);
  }
  if (auto n = root["security"]) {
    CAREHUB_RETURN_IF_ERROR(CheckKeys(n, "security", {"mode", "server_key_file", "identities"}));
    std::string mode = "plain";
    std::string key;
    std::string identities;
    CAREHUB_RETURN_IF_ERROR(Read(n, "mode", "security", &mode));
    CAREHUB_RETURN_IF_ERROR(Read(n, "server_key_file", "security", &key));
    CAREHUB_RETURN_IF_ERROR(Read(n, "identities", "security", &identities));
    if (mode != "plain" && mode != "curve") {
      return Bad("security.mode", "must be 'plain' or 'curve', not '" + mode + "'");
    }
    c.curve = mode == "curve";
    c.server_key_file = Resolve(base_dir, key);
    c.identities_file = Resolve(base_dir, identities);
  }
  if (auto n = root["logging"]) {
    CAREHUB_RETURN_IF_ERROR(CheckKeys(n, "logging", {"level", "format"}));
    CAREHUB_RETURN_IF_ERROR(Read(n, "level", "logging", &c.log_level));
    CAREHUB_RETURN_IF_ERROR(Read(n, "format", "logging", &c.log_format));
    static const std::set<std::string> kLevels = {"trace", "debug", "info", "warn", "error"};
    if (!kLevels.count(c.log_level)) {
      return Bad("logging.level", "must be one of trace, debug, info, warn, error");
    }
    if (c.log_format != "text" && c.log_format != "json") {
      return Bad("logging.format", "must be 'text' or 'json'");
    }
  }

  if (auto n = root["replication"]) {
    auto& r = c.replication;
    r.enabled = true;
    CAREHUB_RETURN_IF_ERROR(CheckKeys(n, "replication",
                                      {"role", "name", "listen", "peer", "mode", "on_standby_loss",
                                       "sync_timeout_ms", "wal_keep_mb", "key_file"}));
    std::string role = "primary";
    std::string mode = "sync";
    std::string loss = "block";
    std::string key;
    uint64_t wal_keep_mb = r.wal_keep_bytes >> 20;
    CAREHUB_RETURN_IF_ERROR(Read(n, "role", "replication", &role));
    CAREHUB_RETURN_IF_ERROR(Read(n, "name", "replication", &r.name));
    CAREHUB_RETURN_IF_ERROR(Read(n, "listen", "replication", &r.listen));
    CAREHUB_RETURN_IF_ERROR(Read(n, "mode", "replication", &mode));
    CAREHUB_RETURN_IF_ERROR(Read(n, "on_standby_loss", "replication", &loss));
    CAREHUB_RETURN_IF_ERROR(Read(n, "sync_timeout_ms", "replication", &r.sync_timeout_ms));
    CAREHUB_RETURN_IF_ERROR(Read(n, "wal_keep_mb", "replication", &wal_keep_mb));
    CAREHUB_RETURN_IF_ERROR(Read(n, "key_file", "replication", &key));
    r.key_file = Resolve(base_dir, key);
    r.wal_keep_bytes = wal_keep_mb << 20;
    if (role != "primary" && role != "standby") {
      return Bad("replication.role", "must be 'primary' or 'standby', not '" + role + "'");
    }
    r.role =
        role == "primary" ? ReplicationConfig::Role::kPrimary : ReplicationConfig::Role::kStandby;
    if (mode != "sync" && mode != "async") {
      return Bad("replication.mode", "must be 'sync' or 'async', not '" + mode + "'");
    }
    r.synchronous = mode == "sync";
    if (loss != "block" && loss != "degrade") {
      return Bad("replication.on_standby_loss", "must be 'block' or 'degrade', not '" + loss + "'");
    }
    r.block_on_loss = loss == "block";
    if (auto p = n["peer"]) {
      CAREHUB_RETURN_IF_ERROR(
          CheckKeys(p, "replication.peer", {"replication", "ingest", "subscribe"}));
      CAREHUB_RETURN_IF_ERROR(Read(p, "replication", "replication.peer", &r.peer_replication));
      CAREHUB_RETURN_IF_ERROR(Read(p, "ingest", "replication.peer", &r.peer_ingest));
      CAREHUB_RETURN_IF_ERROR(Read(p, "subscribe", "replication.peer", &r.peer_subscribe));
    }
    if (r.name.empty()) {
      return Bad("replication.name", "is required (this hub's node name)");
    }
    if (r.listen.rfind("tcp://", 0) != 0) {
      return Bad("replication.listen", "must be a tcp:// endpoint");
    }
    if (r.peer_replication.rfind("tcp://", 0) != 0) {
      return Bad("replication.peer.replication", "must be the other hub's tcp:// endpoint");
    }
    if (r.sync_timeout_ms < 100) {
      return Bad("replication.sync_timeout_ms", "must be at least 100");
    }
  }

  if (auto n = root["cluster"]) {
    auto& k = c.cluster;
    k.enabled = true;
    CAREHUB_RETURN_IF_ERROR(CheckKeys(n, "cluster", {"etcd", "name", "ttl_ms"}));
    CAREHUB_RETURN_IF_ERROR(Read(n, "etcd", "cluster", &k.etcd));
    CAREHUB_RETURN_IF_ERROR(Read(n, "name", "cluster", &k.name));
    CAREHUB_RETURN_IF_ERROR(Read(n, "ttl_ms", "cluster", &k.ttl_ms));
    if (k.etcd.empty()) {
      return Bad("cluster.etcd", "must list the etcd members' client URLs (http://host:port)");
    }
    for (const auto& url : k.etcd) {
      if (url.rfind("http://", 0) != 0) {
        return Bad("cluster.etcd", "'" + url + "' is not an http:// URL");
      }
    }
    if (k.name.empty() || k.name.find('/') != std::string::npos) {
      return Bad("cluster.name", "must be a non-empty name without '/'");
    }
    if (k.ttl_ms < 2000 || k.ttl_ms > 60000) {
      // etcd refuses leases shorter than its election timeout allows (2 s with its defaults).
      return Bad("cluster.ttl_ms", "must be between 2000 and 60000");
    }
    if (k.ttl_ms % 1000 != 0) {
      return Bad("cluster.ttl_ms", "must be whole seconds (etcd leases are granted in seconds)");
    }
  }

  // Cross-field rules.
  if (c.ingest_endpoint.rfind("tcp://", 0) != 0 && c.ingest_endpoint.rfind("ipc://", 0) != 0) {
    return Bad("ingest.endpoint", "must start with tcp:// or ipc://");
  }
  for (const auto& [name, ep] :
       {std::pair<const char*, const std::string&>{"ingest.endpoint", c.ingest_endpoint},
        {"subscribe.endpoint", c.subscribe_endpoint}}) {
    if (ep.rfind("tcp://", 0) != 0) {
      continue;
    }
    auto host_port = ParseTcpEndpoint(ep);
    if (!host_port.ok()) {
      return Bad(name, "'" + ep + "': " + host_port.status().message());
    }
    // DESIGN §7: plain mode only where nothing outside this machine can connect. The host must be
    // a numeric loopback address: a name (even localhost) or an interface name is refused.
    if (!c.curve && !IsLoopbackHost(host_port->host)) {
      return Bad(name,
                 "binds to a non-loopback address in plain mode (write 127.0.0.1 or [::1] for "
                 "loopback); set security.mode: curve");
    }
  }
  if (c.max_frame_bytes < 1024 || c.max_frame_bytes > (256u << 20)) {
    return Bad("ingest.max_frame_bytes", "must be between 1 KiB and 256 MiB");
  }
  if (c.max_events_per_batch == 0) {
    return Bad("ingest.max_events_per_batch", "must be at least 1");
  }
  if (c.dedup_window_days == 0) {
    return Bad("dedup.window_days", "must be at least 1");
  }
  if (c.quarantine.frame_prefix_bytes < 64 || c.quarantine.frame_prefix_bytes > (1u << 20)) {
    return Bad("quarantine.frame_prefix_bytes", "must be between 64 bytes and 1 MiB");
  }
  if (c.quarantine.peer_bytes_per_minute < 4096) {
    return Bad("quarantine.peer_bytes_per_minute", "must be at least 4096");
  }
  if (c.quarantine.max_total_bytes < c.quarantine.peer_bytes_per_minute) {
    return Bad("quarantine.max_total_bytes", "must be at least quarantine.peer_bytes_per_minute");
  }
  if (c.curve && (c.server_key_file.empty() || c.identities_file.empty())) {
    return Bad("security", "curve mode needs server_key_file and identities");
  }
  if (c.replication.enabled && c.curve && c.replication.key_file.empty()) {
    return Bad("replication.key_file", "is required in curve mode (this hub's replica key pair)");
  }
  if (c.cluster.enabled && !c.replication.enabled) {
    return Bad("cluster", "needs a replication section (the standby that can take over)");
  }
  if (c.cluster.enabled && !c.replication.synchronous) {
    // Automatic failover promotes only a standby that holds every acknowledged event; an async
    // primary acknowledges events its standby may lack. (`degrade` is safe in a cluster: the
    // primary degrades only after etcd records that no standby is in sync.)
    return Bad("cluster",
               "needs replication.mode: sync (automatic failover must never promote a standby "
               "that lacks acknowledged events)");
  }
  if (c.replication.enabled && !c.curve) {
    auto host_port = ParseTcpEndpoint(c.replication.listen);
    if (!host_port.ok() || !IsLoopbackHost(host_port->host)) {
      return Bad("replication.listen",
                 "binds to a non-loopback address in plain mode; set security.mode: curve");
    }
  }
  if (!c.admin_listen.empty()) {
    auto admin = ParseHostPort(c.admin_listen);
    if (!admin.ok()) {
      return Bad("admin.listen", "'" + c.admin_listen + "': " + admin.status().message());
    }
    if (!IsLoopbackHost(admin->host) && c.admin_token_file.empty()) {
      return Bad("admin.listen", "binds to a non-loopback address without admin.token_file");
    }
  }
  return c;
}

Result<HubConfig> LoadHubConfig(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) {
    return Bad(file.string(), "cannot be read");
  }
  std::stringstream text;
  text << in.rdbuf();
  auto result = ParseHubConfig(text.str(), file.parent_path());
  if (!result.ok()) {
    return Status::Error("bad_config", file.string() + ": " + result.status().message());
  }
  return result;
}

}  // namespace carehub::hub
