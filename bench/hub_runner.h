#pragma once
// The real `carehub` daemon as a child process of the benchmark: a generated config on a temp data
// dir with loopback endpoints on port 0; the bound endpoints come from <data_dir>/endpoints.json.
// Plain transport unless CURVE key and identities files are given.
// The hub's log (warnings and up) goes to <dir>/hub.log.
// Started through the test harness's ChildProcess (tests/integration/harness/child_process.h), so
// the kernel kills the hub if the benchmark dies without stopping it (kill -9, a ctest timeout, a
// closed pipe): no hub outlives its run (tests/integration/bench_children_test.cc).
//
// Not thread-safe: one thread owns a HubRunner; PeakRssBytes() may be called from any thread.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "carehub/core/status.h"
#include "harness/child_process.h"

namespace carehub::bench {

struct HubRunOptions {
  std::filesystem::path binary;  // the carehub executable
  std::filesystem::path dir;     // created; the data dir is dir/data
  std::string durability = "fsync";
  std::filesystem::path agreements_file;  // empty: no subscriptions
  // Both set: `security.mode: curve` with these files (see docs/security.md); else plain.
  std::filesystem::path server_key_file;
  std::filesystem::path identities_file;
  std::chrono::milliseconds start_timeout{30'000};
  // Appended to the generated config (e.g. a replication section).
  std::string extra_yaml;
};

class HubRunner {
 public:
  static Result<std::unique_ptr<HubRunner>> Start(HubRunOptions options);
  // Stops the hub (SIGTERM, then SIGKILL if it lingers).
  ~HubRunner();
  HubRunner(const HubRunner&) = delete;
  HubRunner& operator=(const HubRunner&) = delete;

  // SIGTERM and wait for the exit; errors when the hub had to be killed or exited non-zero.
  Status Stop(std::chrono::milliseconds timeout = std::chrono::seconds(60));

  pid_t pid() const { return pid_; }
  const std::string& ingest_endpoint() const { return ingest_; }
  const std::string& subscribe_endpoint() const { return subscribe_; }
  const std::string& admin_address() const { return admin_; }
  // The bound replication endpoint (empty without a replication section or as a standby).
  const std::string& replication_endpoint() const { return replication_; }
  std::filesystem::path data_dir() const { return options_.dir / "data"; }

  // VmHWM (peak resident set) and VmRSS of the hub, in bytes; 0 when unreadable.
  uint64_t PeakRssBytes() const;
  uint64_t RssBytes() const;
  // Bytes of every file under the data dir.
  uint64_t DataDirBytes() const;
  // What each of the hub's threads has used so far, summed by thread name ("carehub-ingest",
  // "carehub-commit", "rocksdb:low", "ZMQbg/IO/0" ...); empty when unreadable. Minor faults are
  // counted because a first touch of a page is not cheap everywhere: ~11 us on the VM of
  // docs/performance.md, so a thread growing into fresh memory pays for it in CPU.
  struct ThreadUse {
    double cpu_seconds = 0;  // user + system
    uint64_t minor_faults = 0;
  };
  std::map<std::string, ThreadUse> ThreadUsage() const;
  // GET /metrics from the admin server ("" on failure).
  std::string Metrics() const;
  // GET `path` from the admin server ("" on failure).
  std::string Get(const std::string& path) const;
  // Waits until the hub reports no compaction running or owed (its /metrics) in three scrapes in
  // a row, or `limit` passes.
  struct Settled {
    bool settled = false;  // false: `limit` passed first
    double seconds = 0;    // waited
  };
  Settled WaitCompactionsSettled(std::chrono::seconds limit) const;

 private:
  explicit HubRunner(HubRunOptions options) : options_(std::move(options)) {}
  Status Launch();

  HubRunOptions options_;
  std::optional<itest::ChildProcess> child_;
  pid_t pid_ = -1;  // child_'s pid, for the /proc readings; -1 when none runs
  std::string ingest_, subscribe_, admin_, replication_;
};

// Sum and count of a Prometheus histogram or summary family in `text` (all label sets summed).
struct HistogramTotals {
  double sum = 0;
  double count = 0;
  double mean() const { return count > 0 ? sum / count : 0; }
};
HistogramTotals ScrapeHistogram(const std::string& text, const std::string& name);
// Observations of histogram `name` (one label set) above `bound`, which must be one of its bucket
// bounds: the +Inf bucket's count less the `bound` bucket's. 0 when either is missing.
double ScrapeCountAbove(const std::string& text, const std::string& name, double bound);
// A Prometheus counter or gauge family in `text`, all label sets summed; nullopt when `text` has
// no sample of it (ScrapeSum: 0).
std::optional<double> ScrapeTotal(const std::string& text, const std::string& name);
double ScrapeSum(const std::string& text, const std::string& name);

// Size of every regular file under `dir`.
uint64_t DirectoryBytes(const std::filesystem::path& dir);
// A value such as VmHWM from /proc/<pid>/status, in bytes (0 when unreadable).
uint64_t ProcStatusBytes(pid_t pid, const std::string& field);

}  // namespace carehub::bench
