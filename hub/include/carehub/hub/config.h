#pragma once
// The hub's configuration (YAML). Loading is strict: unknown keys and bad values are errors with a
// one-line reason, so `carehub --config FILE` can exit non-zero with that line.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "carehub/core/status.h"
#include "carehub/core/validation.h"
#include "carehub/hub/quarantine_budget.h"

namespace carehub::hub {

enum class Durability { kFsync, kOs };

// Two hubs, one primary and one synchronous standby (docs/replication.md). Absent: one hub alone.
struct ReplicationConfig {
  bool enabled = false;
  enum class Role { kPrimary, kStandby };
  Role role = Role::kPrimary;  // the role this hub starts in
  std::string name;            // this hub's node name, in logs and the peer's status
  std::string listen;          // this hub's replication endpoint, served while it is primary
  // The other hub: followed while this one is standby, named in "not_primary" answers.
  std::string peer_replication;
  std::string peer_ingest;
  std::string peer_subscribe;
  bool synchronous = true;    // mode: sync (ACCEPTED once on both disks) or async
  bool block_on_loss = true;  // on_standby_loss: block (RETRY) or degrade (one disk, alerted)
  uint32_t sync_timeout_ms = 2000;
  uint64_t wal_keep_bytes = 1ull << 30;  // log history kept for a standby that falls behind
  // CURVE hubs: this hub's client key pair when it follows (an identity of kind replica on the
  // peer); the peer's server key is this hub's own (a pair shares one server key).
  std::filesystem::path key_file;
};

// Automatic failover (docs/replication.md): membership of a two-hub cluster whose leader is
// elected through etcd. Needs `replication` (sync, block).
struct ClusterConfig {
  bool enabled = false;
  std::vector<std::string> etcd;  // "http://host:port" of the etcd members
  std::string name = "carehub";   // the cluster's key prefix in etcd: /carehub/<name>/
  // The leader lease. A primary stops acknowledging 0.75 x ttl after its last renewal was sent;
  // a standby takes over after the lease has expired in etcd: failover takes about ttl + 1 s.
  uint32_t ttl_ms = 3000;
};

struct HubConfig {
  std::filesystem::path data_dir = "data/hub";
  Durability durability = Durability::kFsync;
  uint64_t min_free_disk_bytes = 0;  // 0: automatic (see StoreOptions)
  // From `carehub --salvage-wal` only, never from the file (a standing setting would hide damage on
  // every later start): one start that skips damaged write-ahead log records (StoreOptions).
  bool salvage_wal = false;

  std::string ingest_endpoint = "tcp://127.0.0.1:7400";
  size_t max_frame_bytes = 8u << 20;
  size_t max_events_per_batch = 10'000;

  std::string subscribe_endpoint = "tcp://127.0.0.1:7401";
  uint32_t heartbeat_interval_ms = 2000;
  // A subscriber silent for this long is dropped (its cursor stays stored).
  uint32_t subscriber_timeout_ms = 30'000;
  uint32_t max_delivery_batch = 1000;

  std::string admin_listen = "127.0.0.1:7480";  // empty: no admin server
  std::filesystem::path admin_token_file;

  uint32_t dedup_window_days = 400;
  ValidationLimits validation;
  QuarantineLimits quarantine;
  uint32_t retention_max_age_days = 0;  // 0: keep forever
  // Seconds instead of days (when > 0, overrides max_age_days) and how often retention runs: for
  // tests and short-lived staging data, which cannot wait a day and an hour.
  uint32_t retention_max_age_seconds = 0;
  uint32_t retention_interval_seconds = 3600;

  std::filesystem::path agreements_file;  // empty: no subscriptions possible
  // Security (DESIGN §7).
  bool curve = false;
  std::filesystem::path server_key_file;
  std::filesystem::path identities_file;

  ReplicationConfig replication;
  ClusterConfig cluster;

  std::string log_level = "info";
  std::string log_format = "text";  // or "json"
};

// Relative paths in the file are resolved against `base_dir` (the file's own folder).
Result<HubConfig> ParseHubConfig(const std::string& yaml_text,
                                 const std::filesystem::path& base_dir);
Result<HubConfig> LoadHubConfig(const std::filesystem::path& file);

}  // namespace carehub::hub
