#pragma once
// The primary's side of replication (docs/replication.md): ships every committed change of the
// store to one standby over the replication endpoint (a ZeroMQ ROUTER, CURVE like every other
// endpoint), and tells the commit path when a position is on the standby's disk too.
//
//   store commit --observer--> recent changes (memory) --+--> Changes frames --> standby
//                              write-ahead log (behind) -+     standby applies, fsyncs, acks
//
// A standby that says hello is followed from its position: from memory while it is close, from
// the write-ahead log when it is behind, with a full copy (a RocksDB checkpoint streamed file by
// file with its SHA-256) when its store is empty, its position is older than the log keeps, or
// its log runs past the fork of a later epoch (it has writes nobody else has).
//
// Sync: the standby is "in sync" once it has acknowledged everything committed; it leaves sync
// when it is gone or a wait for it runs past sync_timeout. WaitReplicated(position) returns OK
// once the standby has acknowledged `position`; when no standby is in sync it returns at once (or
// after sync_timeout if the standby was in sync until now) with OK under `degrade` and the error
// "standby_unavailable" under `block`. In async mode it never waits.
//
// Thread-safety: WaitReplicated, AcceptingWrites and Snapshot from any thread; Bind/Start/Stop
// from the owner. One thread of its own owns the socket. Does not own the store.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "carehub/core/clock.h"
#include "carehub/core/mutex.h"
#include "carehub/core/status.h"
#include "carehub/hub/store.h"
#include "carehub/metrics/registry.h"
#include "carehub/v1/replication.pb.h"

namespace carehub::hub {

struct ReplicationSourceOptions {
  std::string endpoint;          // to bind
  std::string curve_secret_key;  // empty: plain (loopback only)
  bool synchronous = true;       // mode: sync
  bool block_on_loss = true;     // on_standby_loss: block
  // How long a commit waits for the standby before the standby counts as out of sync; also how
  // long a silent standby stays connected.
  std::chrono::milliseconds sync_timeout{2000};
  size_t max_frame_bytes = 4u << 20;   // changes per frame
  size_t window_bytes = 32u << 20;     // shipped and not yet acknowledged
  size_t memory_bytes = 128u << 20;    // recent changes kept in memory
  size_t copy_chunk_bytes = 1u << 20;  // full copy
  std::chrono::milliseconds heartbeat{500};
};

// What operators see (status page, /api/v1/status, metrics).
struct ReplicationSnapshot {
  bool standby_connected = false;
  std::string standby_name;
  bool in_sync = false;
  bool copying = false;
  uint64_t position = 0;  // the primary's
  uint64_t acked = 0;     // the standby's durable position
  double lag_ms = 0;      // age of the oldest change the standby has not acknowledged
  uint64_t bytes_shipped = 0;
  uint64_t full_copies = 0;
  uint64_t epoch = 0;
};

class ReplicationSource {
 public:
  // `store`, `metrics` and `context` must outlive the source.
  ReplicationSource(zmq::context_t& context, ReplicationSourceOptions options, Store* store,
                    metrics::Registry* metrics, uint64_t epoch);
  ~ReplicationSource();
  ReplicationSource(const ReplicationSource&) = delete;
  ReplicationSource& operator=(const ReplicationSource&) = delete;

  // Binds the endpoint and starts observing the store's commits; the bound endpoint.
  Result<std::string> Bind();
  void Start();
  // Stops the thread and the observer. Waiters return as if the standby were gone.
  void Stop();

  // See the top of this file.
  Status WaitReplicated(uint64_t position) CAREHUB_EXCLUDES(mu_);
  // False under `block` while no standby is in sync: ingest answers RETRY without writing.
  bool AcceptingWrites() const;
  // Waits until the standby has acknowledged everything committed (a planned switch-over), up
  // to `timeout`; "standby_behind" if not.
  Status WaitCaughtUp(std::chrono::milliseconds timeout) CAREHUB_EXCLUDES(mu_);
  ReplicationSnapshot Snapshot() const CAREHUB_EXCLUDES(mu_);
  // Changes on_standby_loss while running. Automatic failover (cluster/cluster_member.h) starts
  // a `degrade` primary blocking and lets it degrade only once etcd records that no standby is
  // in sync, so a standby that lacks what was acknowledged on one disk is never promoted.
  void SetBlockOnLoss(bool block) CAREHUB_EXCLUDES(mu_);

 private:
  struct Recent {
    uint64_t first;
    uint64_t last;
    // Shared, so a frame is built from it outside mu_ (which the committing thread takes).
    std::shared_ptr<const std::string> data;
    std::chrono::steady_clock::time_point at;
  };
  struct Session {
    std::string routing_id;
    std::string name;
    uint64_t sent = 0;  // last position shipped
    // Frames shipped and not acknowledged: (last position, bytes).
    std::deque<std::pair<uint64_t, size_t>> inflight;
    size_t inflight_bytes = 0;
    std::chrono::steady_clock::time_point last_heard;
    // Full copy in progress.
    bool copying = false;
    bool awaiting_hello = false;  // a copy was sent; the standby says hello once it opened it
    std::filesystem::path copy_dir;
    std::vector<v1::CopyFile> copy_files;
    size_t copy_file = 0;
    uint64_t copy_offset = 0;
    uint64_t copy_sent_bytes = 0;
    uint64_t copy_acked_bytes = 0;
    uint64_t copy_position = 0;
  };

  void OnCommit(uint64_t first, uint64_t last, std::string_view data) CAREHUB_EXCLUDES(mu_);
  void Run();
  void Handle(const std::string& routing_id, const v1::ReplicationFrame& frame);
  void HandleHello(const std::string& routing_id, const v1::ReplicaHello& hello);
  // Whether a standby at (epoch, position) can follow this log, or needs a full copy.
  bool CanFollow(uint64_t epoch, uint64_t position, std::string* why) const;
  void StartCopy();
  void SendCopyChunks();
  void SendChanges();
  // Changes from `from` on, from memory if it still holds `from`, else from the log.
  Status CollectChanges(uint64_t from, v1::Changes* out, size_t* bytes) CAREHUB_EXCLUDES(mu_);
  void SendHeartbeat();
  void Refuse(const std::string& routing_id, const std::string& code, const std::string& message);
  void Send(const std::string& routing_id, const v1::ReplicationFrame& frame);
  void DropSession(const std::string& why);
  void NoteAck(uint64_t position) CAREHUB_EXCLUDES(mu_);
  void LeaveSync(const std::string& why) CAREHUB_REQUIRES(mu_);
  // Sets accepting_ from the state: a synchronous pair that blocks on loss accepts only while its
  // standby is in sync; async, or degrade, always accepts. The one place that rule is written.
  void UpdateAccepting() CAREHUB_REQUIRES(mu_);
  void EndCopy();

  ReplicationSourceOptions options_;
  Store* store_;
  metrics::Registry* metrics_;
  const uint64_t epoch_;
  zmq::socket_t socket_;
  int wake_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::optional<Session> session_;  // the thread's own

  mutable Mutex mu_;
  CondVar acked_cv_;
  std::deque<Recent> recent_ CAREHUB_GUARDED_BY(mu_);
  size_t recent_bytes_ CAREHUB_GUARDED_BY(mu_) = 0;
  uint64_t acked_ CAREHUB_GUARDED_BY(mu_) = 0;
  bool in_sync_ CAREHUB_GUARDED_BY(mu_) = false;
  bool connected_ CAREHUB_GUARDED_BY(mu_) = false;
  bool copying_ CAREHUB_GUARDED_BY(mu_) = false;
  std::string standby_name_ CAREHUB_GUARDED_BY(mu_);
  std::atomic<bool> accepting_{false};
  std::atomic<bool> block_on_loss_{true};
  std::atomic<uint64_t> bytes_shipped_{0};
  std::atomic<uint64_t> full_copies_{0};

  uint64_t refresher_ = 0;  // metrics::Registry::AddRefresher handle
  metrics::Counter& shipped_bytes_metric_;
  metrics::Counter& copies_metric_;
  metrics::Counter& sync_lost_metric_;
};

}  // namespace carehub::hub
