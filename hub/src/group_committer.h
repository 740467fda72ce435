#pragma once
// Group commit (DESIGN §3): the ingest thread submits prepared batches; one writer thread applies
// every batch queued since its last sync and then makes a single WAL fsync cover them all, so the
// cost of an fsync is shared by as many batches as arrived while the previous one ran.
//
// Batches commit in submission order. When a write fails (disk full, read-only), that batch and
// every later batch of the same pipeline epoch fail without being written; see
// IngestPipeline::Finish. While failed, the writer keeps probing the store and reports healthy
// again once a write succeeds.
//
// Thread-safety: Submit/TakeCompleted/queued from the ingest thread; the rest from any thread.

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "carehub/core/mutex.h"
#include "carehub/hub/ingest_pipeline.h"
#include "carehub/hub/store.h"
#include "carehub/metrics/registry.h"

namespace carehub::hub {

class GroupCommitter {
 public:
  // `on_completed` runs on the writer thread after batches move to the completed list (the ingest
  // server uses it to wake its poll loop); `on_committed(seq)` after events up to seq are durable.
  // `last_seq`: the highest hub_seq already durable in `store`. `store` is not owned and must
  // outlive the committer.
  GroupCommitter(Store* store, uint64_t last_seq, bool sync, metrics::Registry* metrics,
                 std::function<void()> on_completed, std::function<void(uint64_t)> on_committed);
  ~GroupCommitter();
  GroupCommitter(const GroupCommitter&) = delete;
  GroupCommitter& operator=(const GroupCommitter&) = delete;

  // Replication (docs/replication.md): after each group is written and synced here, the writer
  // calls this with the store's position and hands the group back only when it returns; an error
  // marks the group's batches `unreplicated`. Set before the first Submit.
  void SetReplicationWait(std::function<Status(uint64_t position)> wait) {
    wait_replicated_ = std::move(wait);
  }

  void Submit(std::unique_ptr<PreparedBatch> batch) CAREHUB_EXCLUDES(mu_);
  // Asks for a WAL sync soon, for writes made without sync that someone waits to see durable
  // (Store::WaitWalSynced). Rides the next group commit's sync when batches are queued; otherwise
  // the writer thread runs one SyncWal for every request made meanwhile. Any thread. No-op when
  // the committer does not sync (durability: os).
  void RequestWalSync() CAREHUB_EXCLUDES(mu_);
  std::vector<std::unique_ptr<PreparedBatch>> TakeCompleted() CAREHUB_EXCLUDES(mu_);
  // Batches submitted and not yet taken back.
  size_t outstanding() const { return outstanding_.load(); }
  // False after a failed write, until a write succeeds again.
  bool healthy() const { return healthy_.load(); }
  uint64_t committed_seq() const { return committed_seq_.load(); }
  std::string last_error() const CAREHUB_EXCLUDES(mu_);

  // Commits what is queued, then stops the writer thread.
  void Stop() CAREHUB_EXCLUDES(mu_);

 private:
  void Run();
  // Moves what is queued into `work`, waiting for some or for a sync request (`*sync_requested`);
  // false when stopping with nothing left.
  bool TakeQueued(std::vector<std::unique_ptr<PreparedBatch>>* work, bool* sync_requested)
      CAREHUB_EXCLUDES(mu_);
  // Writes the group, syncs it once, marks each batch committed or not; the highest seq made
  // durable (0 when none). `*synced`: whether a sync of the WAL completed.
  uint64_t CommitGroup(std::vector<std::unique_ptr<PreparedBatch>>& work, bool* synced);
  // Publishes committed_seq_ and moves the batches to the completed list.
  void HandBack(std::vector<std::unique_ptr<PreparedBatch>>* work, uint64_t max_seq);
  // Serves sync requests when no group commit carried a sync.
  void SyncForWaiters();
  void MarkFailed(uint64_t epoch, const Status& status);
  void MarkHealthy();
  bool ProbeStore();

  Store* store_;
  bool sync_;
  std::function<void()> on_completed_;
  std::function<void(uint64_t)> on_committed_;
  std::function<Status(uint64_t)> wait_replicated_;
  metrics::Histogram& commit_seconds_;
  metrics::Histogram& batches_per_commit_;
  metrics::Counter& commit_failures_;
  // WAL syncs of group commits, and those run only for deliveries waiting on their audit records
  // (RequestWalSync with nothing queued): how many syncs a delivery costs beyond its events'.
  metrics::Counter& group_syncs_;
  metrics::Counter& waiter_syncs_;

  mutable Mutex mu_;
  CondVar cv_;  // signalled on Submit and Stop
  std::deque<std::unique_ptr<PreparedBatch>> queue_ CAREHUB_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<PreparedBatch>> completed_ CAREHUB_GUARDED_BY(mu_);
  bool stopping_ CAREHUB_GUARDED_BY(mu_) = false;
  bool sync_requested_ CAREHUB_GUARDED_BY(mu_) = false;
  std::string last_error_ CAREHUB_GUARDED_BY(mu_);
  uint64_t failed_epoch_ = 0;  // writer thread only
  std::atomic<size_t> outstanding_{0};
  std::atomic<bool> healthy_{true};
  std::atomic<uint64_t> committed_seq_{0};
  std::thread thread_;
};

}  // namespace carehub::hub
