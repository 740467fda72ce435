#pragma once
// The standby's side of replication (docs/replication.md): owns the standby's store (opened as a
// follower: nothing but replicated changes is written to it), connects to the primary's
// replication endpoint, says where it stands, applies the changes it is sent in position order,
// fsyncs them and acknowledges the position, so the primary may answer ACCEPTED.
//
// A store that is empty, behind what the primary's log keeps, or that diverged from the primary
// is replaced by a full copy: the files of a primary checkpoint, each checked against its size
// and SHA-256, moved into the data dir under a marker file. A standby that dies mid-swap finds the
// marker at its next start, discards the half-swapped store and asks for a copy again.
//
// Errors never end the follower: a gap, a refused hello or a silent primary are logged, counted
// and followed by a fresh connection (backoff up to a second).
//
// Thread-safety: Snapshot from any thread; Open/Start/Stop/TakeStore from the owner. One thread of
// its own applies changes.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <zmq.hpp>

#include "carehub/client/curve.h"
#include "carehub/core/mutex.h"
#include "carehub/core/status.h"
#include "carehub/hub/store.h"
#include "carehub/metrics/registry.h"
#include "carehub/v1/replication.pb.h"

namespace carehub::hub {

struct ReplicaFollowerOptions {
  std::string primary_endpoint;  // the primary's replication endpoint
  std::string name;              // this standby's node name
  std::optional<client::CurveClientKeys> curve;
  std::chrono::milliseconds heartbeat{500};
  // No frame from the primary for this long: reconnect.
  std::chrono::milliseconds primary_timeout{3000};
  StoreOptions store;  // `follower` is set by Open
};

struct FollowerSnapshot {
  bool connected = false;
  bool copying = false;
  uint64_t position = 0;
  uint64_t primary_position = 0;  // from the primary's last frame
  uint64_t epoch = 0;
  uint64_t full_copies = 0;
  std::string last_error;
};

class ReplicaFollower {
 public:
  static Result<std::unique_ptr<ReplicaFollower>> Open(ReplicaFollowerOptions options,
                                                       metrics::Registry* metrics);
  ~ReplicaFollower();
  ReplicaFollower(const ReplicaFollower&) = delete;
  ReplicaFollower& operator=(const ReplicaFollower&) = delete;

  void Start();
  // Stops following; the store stays open (closed with the follower).
  void Stop();
  FollowerSnapshot Snapshot() const CAREHUB_EXCLUDES(mu_);
  // Whether the last thing the primary told us is applied here (a promotion loses nothing).
  bool CaughtUp() const CAREHUB_EXCLUDES(mu_);

 private:
  explicit ReplicaFollower(ReplicaFollowerOptions options, metrics::Registry* metrics);
  Status OpenStore() CAREHUB_EXCLUDES(mu_);
  void Run();
  // One connection: hello, then frames until an error or stop. Returns why it ended.
  std::string Follow(zmq::context_t& context);
  void SendHello(zmq::socket_t& socket);
  Status ApplyChanges(const v1::Changes& changes) CAREHUB_EXCLUDES(mu_);
  Status BeginCopy(const v1::CopyBegin& begin);
  Status WriteChunk(const v1::CopyChunk& chunk);
  Status FinishCopy() CAREHUB_EXCLUDES(mu_);
  void Send(zmq::socket_t& socket, const v1::ReplicationFrame& frame);
  void NoteError(const std::string& error) CAREHUB_EXCLUDES(mu_);

  ReplicaFollowerOptions options_;
  std::filesystem::path copy_dir_;
  std::optional<v1::CopyBegin> copy_;  // the thread's own
  uint64_t copy_bytes_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};

  mutable Mutex mu_;
  // Replaced (closed, reopened) by a full copy; guarded so Snapshot never reads a closed store.
  std::unique_ptr<Store> store_ CAREHUB_GUARDED_BY(mu_);
  bool connected_ CAREHUB_GUARDED_BY(mu_) = false;
  bool copying_ CAREHUB_GUARDED_BY(mu_) = false;
  uint64_t primary_position_ CAREHUB_GUARDED_BY(mu_) = 0;
  uint64_t full_copies_ CAREHUB_GUARDED_BY(mu_) = 0;
  std::string last_error_ CAREHUB_GUARDED_BY(mu_);

  metrics::Gauge& position_metric_;
  metrics::Gauge& lag_metric_;
  metrics::Counter& applied_bytes_metric_;
  metrics::Counter& copies_metric_;
  metrics::Counter& stale_frames_metric_;
  // The newest epoch this standby has seen (its store's, at each hello): frames of an older
  // epoch come from a superseded primary and are refused.
  std::atomic<uint64_t> known_epoch_{0};
};

}  // namespace carehub::hub
