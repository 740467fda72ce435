#pragma once
// The real `carehub` daemon as a child process, for integration tests.
//
// Start() makes a fresh temp dir, writes a config into it (loopback endpoints on port 0, data dir
// and log inside the temp dir, then the test's YAML overrides merged on top), runs
// CAREHUB_BIN_DIR/carehub --config that file and waits until the hub has written
// <data_dir>/endpoints.json with its own pid: from then on its sockets are bound and accepting.
// The hub's stderr (its log) is appended to log_path() across restarts.
//
// Stop() is a graceful SIGTERM (the hub finishes and answers in-flight batches, then exits 0);
// Kill() is kill -9. Restart() starts the binary again on the same data dir; the ports change
// (port 0 again), so clients must reconnect to the new ingest_endpoint().
// OpenStore() opens the hub's RocksDB store read-write in this process: only while the hub is not
// running (RocksDB's LOCK file refuses a second opener), to inspect events and the quarantine.
//
// The destructor kills a hub that is still running and removes the temp dir (kept when
// CAREHUB_ITEST_KEEP is set). Not thread-safe, except Signal() and pid(), which any thread may call
// while the hub runs.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "carehub/core/status.h"
#include "carehub/hub/store.h"
#include "harness/child_process.h"

namespace carehub::itest {

// Path of a binary built by this project (CAREHUB_BIN_DIR/name).
std::filesystem::path BinaryPath(const std::string& name);

// Deep-merges `overrides` (YAML mapping text) over `base`: nested mappings merge key by key, any
// other value replaces the base's. Errors when either text is not a YAML mapping.
Result<std::string> MergeYaml(const std::string& base, const std::string& overrides);

struct HubProcessOptions {
  // Names the temp dir, to find it when CAREHUB_ITEST_KEEP is set.
  std::string tag = "hub";
  // "fsync" or "os" (hub.durability).
  std::string durability = "fsync";
  // YAML merged over the generated config, e.g. "ingest:\n  max_frame_bytes: 65536\n".
  std::string extra_yaml;
  std::chrono::milliseconds start_timeout{20'000};
  // "NAME=value" pairs added to the hub's environment (e.g. CAREHUB_CRASH_AT), through env(1).
  std::vector<std::string> environment;
};

// Shorthand for the common options (designated initializers would leave -Wextra warnings).
HubProcessOptions HubOptions(std::string tag, std::string extra_yaml = "",
                             std::string durability = "fsync");

class HubProcess {
 public:
  // Starts the hub; errors (with the hub's log) when it exits or does not come up in time.
  static Result<std::unique_ptr<HubProcess>> Start(HubProcessOptions options = {});
  ~HubProcess();
  HubProcess(const HubProcess&) = delete;
  HubProcess& operator=(const HubProcess&) = delete;

  // Starts the hub again on the same data dir and config after Stop() or Kill().
  Status Restart();
  // Replaces HubProcessOptions::environment for the next Restart().
  void SetEnvironment(std::vector<std::string> environment) {
    options_.environment = std::move(environment);
  }
  // SIGTERM, then waits for the exit. Errors (and kills the hub) if it does not exit in time.
  Result<ExitStatus> Stop(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // SIGKILL and reap: the hub gets no chance to flush anything.
  void Kill();
  // Sends a signal without waiting (e.g. SIGTERM from another thread during a stream).
  void Signal(int sig) const;
  // Waits for the hub to end after a Signal(); empty if it is still running.
  std::optional<ExitStatus> Wait(std::chrono::milliseconds timeout);
  bool running();

  pid_t pid() const { return child_ ? child_->pid() : -1; }
  const std::string& ingest_endpoint() const { return ingest_endpoint_; }
  const std::string& subscribe_endpoint() const { return subscribe_endpoint_; }
  const std::string& admin_address() const { return admin_address_; }
  const std::filesystem::path& dir() const { return dir_.path(); }
  std::filesystem::path data_dir() const { return dir() / "data"; }
  std::filesystem::path config_path() const { return dir() / "hub.yaml"; }
  std::filesystem::path log_path() const { return dir() / "hub.log"; }
  std::string ReadLog() const { return ReadFileText(log_path()); }

  // The hub's resident set size (VmRSS) in bytes; empty when it is not running.
  std::optional<uint64_t> RssBytes() const;

  // Opens the hub's store; the hub must not be running.
  Result<std::unique_ptr<hub::Store>> OpenStore() const;

  // The config the harness generates for a hub living in `dir`, with `options` applied.
  static Result<std::string> ConfigYaml(const std::filesystem::path& dir,
                                        const HubProcessOptions& options);

 private:
  explicit HubProcess(HubProcessOptions options);
  Status Launch();

  HubProcessOptions options_;
  TempDir dir_;
  std::optional<ChildProcess> child_;
  std::string ingest_endpoint_;
  std::string subscribe_endpoint_;
  std::string admin_address_;
};

// ---- Reading a stopped hub's store ----

struct StoredEvent {
  uint64_t hub_seq = 0;
  v1::Event event;
};

// The value of a read of a stopped hub's store. Tests read stores the hub wrote; a read that fails
// there is a finding, so it ends the test binary with the reason rather than look like "absent".
inline void MustSucceed(const Status& status, const char* what) {
  if (!status.ok()) {
    std::fprintf(stderr, "store read failed (%s): %s\n", what, status.ToString().c_str());
    std::abort();
  }
}
template <typename T>
T MustRead(Result<T> result, const char* what) {
  MustSucceed(result.status(), what);
  return std::move(result).value();
}

// Every event in the log, in hub_seq order (bounded by LastSeq()).
std::vector<StoredEvent> ReadAllEvents(hub::Store& store);
// Every quarantine record, in id order.
std::vector<v1::QuarantineRecord> ReadAllQuarantine(hub::Store& store);
// The event with its hub fields (hub_seq, received_at) cleared: what the publisher sent.
v1::Event WithoutHubFields(v1::Event event);

}  // namespace carehub::itest
