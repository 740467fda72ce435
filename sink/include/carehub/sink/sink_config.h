#pragma once
// carehub-sink's configuration: a YAML file (the same shape as the other binaries' configs) and
// command-line flags that override it. Unknown keys, wrong types and out-of-range values are
// refused with a one-line reason (Status code "bad_config"), never defaulted silently.
//
//   subscription: ics-analytics-feed          # required
//   hub:      {endpoint: tcp://127.0.0.1:7401, client_key_file: K, server_public_key_file: S,
//              window: 10000}
//   postgres: {dsn: "postgresql:///carehub", schema: carehub, connect_timeout_s: 5}
//   batch:    {max_events: 10000, max_delay_ms: 200}
//   reconnect: {initial_ms: 200, max_ms: 5000}
//   admin:    {listen: 127.0.0.1:0, bearer_token: "", endpoints_file: ""}
//   logging:  {level: info}
//   progress: {interval_s: 5}
//
// Plain values; thread-safe to read.

#include <cstdint>
#include <filesystem>
#include <string>

#include "carehub/core/status.h"

namespace carehub::sink {

struct SinkConfig {
  std::string subscription;
  std::string hub_endpoint = "tcp://127.0.0.1:7401";
  std::string client_key_file;
  std::string server_public_key_file;
  uint32_t window = 10'000;
  std::string dsn;
  std::string schema = "carehub";
  uint32_t connect_timeout_s = 5;
  // A transaction is committed when it holds max_events events or its first event has waited
  // max_delay_ms, whichever comes first.
  uint32_t batch_max_events = 10'000;
  uint32_t batch_max_delay_ms = 200;
  // Backoff between attempts to reach PostgreSQL or the hub: doubles from initial_ms to max_ms.
  uint32_t reconnect_initial_ms = 200;
  uint32_t reconnect_max_ms = 5'000;
  std::string admin_listen = "127.0.0.1:0";
  std::string admin_bearer_token;
  // When set, {"admin": "HOST:PORT", "pid": N} is written there once the admin server listens.
  std::string admin_endpoints_file;
  std::string log_level = "info";
  uint32_t progress_interval_s = 5;
  // Exit 0 once caught up and nothing new arrived for this long (0: run until SIGTERM).
  double exit_when_idle_s = 0;
};

// Reads `path`; relative file paths in it resolve against the file's folder.
Result<SinkConfig> LoadSinkConfigFile(const std::filesystem::path& path);

// Checks a complete config (after command-line overrides).
Status ValidateSinkConfig(const SinkConfig& config);

}  // namespace carehub::sink
