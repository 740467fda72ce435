#pragma once
// The YAML config of one `carehub-adapter` process (docs/adapters.md, "Running the adapters").
//
// Parsing is strict: an unknown key, a value of the wrong type, a missing required value or a
// section for another kind of adapter refuses the whole file with one line naming the key, because
// a typo must never silently fall back to a default (for example an outbox in the wrong place).
// CURVE key files are read here too, so a missing or malformed key is a config error at start-up,
// not a connection failure later. Pure apart from reading the key files; thread-safe.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "carehub/client/curve.h"
#include "carehub/core/status.h"

namespace carehub::adapters {

enum class AdapterKind { kHl7, kFhir, kCsv };

// "hl7", "fhir", "csv".
std::string_view AdapterKindName(AdapterKind kind);

struct Hl7Settings {
  size_t max_message_bytes = 1024 * 1024;
  std::chrono::seconds idle_timeout{300};
  size_t max_connections = 64;
  // MSH-3/MSH-4 of our ACKs when the sender left MSH-5/MSH-6 empty.
  std::string ack_application = "CAREHUB";
  std::string ack_facility;  // default: publisher_ods
};

struct FhirSettings {
  size_t max_body_bytes = 10 * 1024 * 1024;
  size_t max_remembered_resources = 200'000;
};

struct CsvSettings {
  std::chrono::milliseconds poll_interval{1000};
  size_t max_columns = 256;
  size_t max_row_bytes = 1024 * 1024;
  size_t max_file_bytes = 512ull * 1024 * 1024;
  size_t publish_chunk = 500;
};

struct AdapterConfig {
  AdapterKind kind = AdapterKind::kHl7;
  // identity:
  std::string publisher_ods;
  // Site / facility ODS codes this publisher may publish for (HL7 MSH-4, FHIR serviceProvider,
  // CSV practice_ods). publisher_ods is always allowed.
  std::vector<std::string> allowed_sites;
  // envelope.source_system for FHIR and CSV (HL7 takes MSH-3). Default: the kind name.
  std::string source_system;
  // hub: tcp://HOST:PORT or ipc://PATH. Without CURVE keys only ipc:// or a numeric loopback host
  // (carehub::IsLoopbackHost: 127.0.0.0/8 or ::1; not the name localhost) is accepted.
  std::string hub_endpoint = "tcp://127.0.0.1:7400";
  std::optional<client::CurveClientKeys> curve;
  std::chrono::milliseconds resend_after{5000};
  size_t max_batch_events = 1000;
  // outbox:
  std::filesystem::path outbox_dir;
  // admin:
  std::string admin_listen = "127.0.0.1:0";
  // Bearer token required by the admin HTTP server; required when admin_listen is not a numeric
  // loopback address.
  std::string admin_token;
  // logging:
  std::string log_level = "info";
  std::string log_format = "text";

  Hl7Settings hl7;
  FhirSettings fhir;
  CsvSettings csv;

  // Where the running adapter writes its bound addresses: <outbox_dir>/../adapter-endpoints.json.
  std::filesystem::path EndpointsFile() const;
};

// Parses config text. Relative key and token file paths are resolved against `base_dir` (the
// config file's folder); the outbox dir is relative to the working directory, as the hub's
// data_dir is. Errors have code "bad_config" and a one-line message naming the key.
Result<AdapterConfig> ParseAdapterConfig(const std::string& yaml_text,
                                         const std::filesystem::path& base_dir, AdapterKind kind);

// Reads and parses a config file; the message starts with the file's path.
Result<AdapterConfig> LoadAdapterConfig(const std::filesystem::path& path, AdapterKind kind);

}  // namespace carehub::adapters
