#include "group_committer.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <chrono>

#include "carehub/core/crash_points.h"
#include "carehub/core/log.h"
#include "carehub/hub/store/thread_setup.h"

namespace carehub::hub {

GroupCommitter::GroupCommitter(Store* store, uint64_t last_seq, bool sync,
                               metrics::Registry* metrics, std::function<void()> on_completed,
                               std::function<void(uint64_t)> on_committed)
    : store_(store),
      sync_(sync),
      on_completed_(std::move(on_completed)),
      on_committed_(std::move(on_committed)),
      commit_seconds_(metrics->GetHistogram("carehub_store_commit_seconds",
                                            "Time to apply and sync one group commit.",
                                            metrics::LatencyBuckets())),
      batches_per_commit_(metrics->GetHistogram("carehub_store_batches_per_commit",
                                                "Publish batches sharing one group commit.",
                                                {1, 2, 4, 8, 16, 32, 64, 128})),
      commit_failures_(metrics->GetCounter("carehub_store_commit_failures_total",
                                           "Group commits the store refused.")),
      group_syncs_(metrics->GetCounter("carehub_store_wal_syncs_total",
                                       "WAL syncs run by the group committer, by what for.",
                                       {{"for", "group_commit"}})),
      waiter_syncs_(metrics->GetCounter("carehub_store_wal_syncs_total",
                                        "WAL syncs run by the group committer, by what for.",
                                        {{"for", "waiting_deliveries"}})),
      committed_seq_(last_seq),
      thread_([this] { Run(); }) {}

GroupCommitter::~GroupCommitter() { Stop(); }

void GroupCommitter::Submit(std::unique_ptr<PreparedBatch> batch) {
  outstanding_.fetch_add(1);
  {
    MutexLock lock(mu_);
    queue_.push_back(std::move(batch));
  }
  cv_.NotifyOne();
}

void GroupCommitter::RequestWalSync() {
  if (!sync_) {
    return;
  }
  {
    MutexLock lock(mu_);
    sync_requested_ = true;
  }
  cv_.NotifyOne();
}

std::vector<std::unique_ptr<PreparedBatch>> GroupCommitter::TakeCompleted() {
  MutexLock lock(mu_);
  auto out = std::move(completed_);
  completed_.clear();
  outstanding_.fetch_sub(out.size());
  return out;
}

std::string GroupCommitter::last_error() const {
  MutexLock lock(mu_);
  return last_error_;
}

void GroupCommitter::Stop() {
  {
    MutexLock lock(mu_);
    if (stopping_ && !thread_.joinable()) {
      return;
    }
    stopping_ = true;
  }
  cv_.NotifyAll();
  if (thread_.joinable()) {
    thread_.join();
  }
}

bool GroupCommitter::ProbeStore() {
  // After a write error RocksDB stays read-only until resumed; try, then prove a write works.
  (void)store_->Resume();
  return store_->Probe().ok();
}

// The writer thread: wait for batches, commit them as one group, hand them back.
void GroupCommitter::Run() {
  pthread_setname_np(pthread_self(), "carehub-commit");
  PrepareStoreThread();
  std::vector<std::unique_ptr<PreparedBatch>> work;
  while (true) {
    bool sync_requested = false;
    if (!TakeQueued(&work, &sync_requested)) {
      return;
    }
    if (work.empty()) {
      if (!healthy_.load()) {
        // Woken while unhealthy with nothing queued: see whether the store recovered (a probe is
        // a synced write: it serves a sync request too).
        if (ProbeStore()) {
          MarkHealthy();
        }
      } else if (sync_requested) {
        SyncForWaiters();
      }
      continue;
    }
    CAREHUB_CRASH_POINT("commit.before_write");
    const auto start = std::chrono::steady_clock::now();
    bool synced = false;
    const uint64_t max_seq = CommitGroup(work, &synced);
    if (sync_requested && !synced) {
      SyncForWaiters();  // nothing of this group carried a sync (all of it refused)
    }
    // Written and synced, nobody answered yet.
    CAREHUB_CRASH_POINT("commit.after_sync");
    if (wait_replicated_ && max_seq > 0) {
      // The standby was sent the group as it was written, so its fsync ran beside ours.
      Status replicated = wait_replicated_(store_->changes().Position());
      if (!replicated.ok()) {
        for (auto& b : work) {
          b->unreplicated = b->committed;
        }
      }
    }
    commit_seconds_.Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    batches_per_commit_.Observe(static_cast<double>(work.size()));
    HandBack(&work, max_seq);
  }
}

void GroupCommitter::SyncForWaiters() {
  waiter_syncs_.Inc();
  Status s = store_->SyncWal();
  if (!s.ok()) {
    // The waiters time out and hold their deliveries; the next group commit will say more.
    Logger("store")->warn("cannot sync the write-ahead log for waiting deliveries: {}",
                          s.ToString());
  }
}

bool GroupCommitter::TakeQueued(std::vector<std::unique_ptr<PreparedBatch>>* work,
                                bool* sync_requested) {
  MutexLock lock(mu_);
  // While unhealthy, wake every second even with nothing queued, to probe the store.
  if (!healthy_.load()) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (!stopping_ && queue_.empty() && !sync_requested_) {
      if (cv_.WaitUntil(mu_, deadline) == std::cv_status::timeout) {
        break;
      }
    }
  } else {
    while (!stopping_ && queue_.empty() && !sync_requested_) {
      cv_.Wait(mu_);
    }
  }
  *sync_requested = sync_requested_;
  sync_requested_ = false;
  if (queue_.empty() && stopping_) {
    return false;
  }
  while (!queue_.empty()) {
    work->push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return true;
}

uint64_t GroupCommitter::CommitGroup(std::vector<std::unique_ptr<PreparedBatch>>& work,
                                     bool* synced) {
  *synced = false;
  uint64_t max_seq = 0;
  size_t last_write = work.size();
  bool write_failed = false;  // RocksDB itself refused a write (not the headroom check)
  // Find the last batch that will actually be written, so that only it carries the sync.
  for (size_t i = work.size(); i-- > 0;) {
    if (work[i]->epoch > failed_epoch_) {
      last_write = i;
      break;
    }
  }
  for (size_t i = 0; i < work.size(); ++i) {
    auto& batch = work[i];
    if (batch->epoch <= failed_epoch_) {
      batch->committed = false;
      continue;
    }
    if (!healthy_.load()) {
      (void)store_->Resume();
    }
    // A write that would eat into the disk reserve is refused like a failed one (RETRY).
    Status s = store_->CheckHeadroom(batch->writes.DataSize() * 2);
    if (s.ok()) {
      if (sync_ && i == last_write) {
        group_syncs_.Inc();
      }
      s = store_->Commit(&batch->writes, sync_ && i == last_write);
      write_failed = write_failed || !s.ok();
    }
    if (!s.ok()) {
      MarkFailed(batch->epoch, s);
      batch->committed = false;
      continue;
    }
    batch->committed = true;
    *synced = *synced || (sync_ && i == last_write);
    max_seq = std::max(max_seq, batch->max_seq);
    // A subscription plans its scans from the known routes and reads up to committed_seq_: the
    // batch's new routes must be known before committed_seq_ passes their events, or a session
    // planning in between skips a new route's first events for good (found by the soak run).
    if (!batch->new_routes.empty()) {
      store_->routes().NoteCommitted(batch->new_routes);
    }
    if (!healthy_.load()) {
      MarkHealthy();
    }
  }
  // If a failure happened after some unsynced writes of this group, those must not be
  // acknowledged as durable unless a sync succeeded afterwards: fsync the WAL explicitly.
  // After RocksDB refused a write its log writer is in an error state, and syncing it then
  // aborts the process in RocksDB builds with assertions (Debian's 7.8: "Assertion
  // `sync_without_flush_called_' failed", found with a read-only data dir): fail the group.
  if (sync_ && last_write < work.size() && !work[last_write]->committed) {
    if (write_failed || !store_->SyncWal().ok()) {
      for (auto& b : work) {
        b->committed = false;
      }
      max_seq = 0;
    } else {
      *synced = true;
    }
  }
  return max_seq;
}

void GroupCommitter::MarkFailed(uint64_t epoch, const Status& status) {
  // Later batches of this epoch fail unwritten; the pipeline starts a new epoch (Finish).
  commit_failures_.Inc();
  failed_epoch_ = epoch;
  healthy_.store(false);
  {
    MutexLock lock(mu_);
    last_error_ = status.ToString();
  }
  Logger("store")->error("store refused a write, answering RETRY until it recovers: {}",
                         status.ToString());
}

void GroupCommitter::MarkHealthy() {
  healthy_.store(true);
  {
    MutexLock lock(mu_);
    last_error_.clear();
  }
  Logger("store")->info("store accepts writes again");
}

void GroupCommitter::HandBack(std::vector<std::unique_ptr<PreparedBatch>>* work, uint64_t max_seq) {
  if (max_seq > 0) {
    uint64_t prev = committed_seq_.load();
    while (max_seq > prev && !committed_seq_.compare_exchange_weak(prev, max_seq)) {
    }
  }
  {
    MutexLock lock(mu_);
    for (auto& b : *work) {
      completed_.push_back(std::move(b));
    }
  }
  work->clear();
  if (max_seq > 0 && on_committed_) {
    on_committed_(committed_seq_.load());
  }
  if (on_completed_) {
    on_completed_();
  }
}

}  // namespace carehub::hub
