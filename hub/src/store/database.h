#pragma once
// The one owner of the hub's RocksDB database (private to the store: hub/src/store). Opens it with
// the hub's tuning and write-ahead-log recovery policy, holds a handle per column family, commits
// batches and answers questions about the disk. The parts (EventLog, DedupIndex, RouteIndex,
// CursorTable, AuditLog, QuarantineTable) each own the layout of their column family and reach the
// database only through this class.
//
// Errors: every RocksDB status that is not OK becomes a Status; codes "store_io_error" (I/O error
// or no space: the disk), "store_corrupt" (a checksum or decoding failure: the data) and
// "store_error" (anything else). NotFound is never an error here: callers ask for it explicitly.
//
// Thread-safety: every method may be called from any thread (RocksDB is thread-safe); the handles
// stay valid until the Database is destroyed.

#include <rocksdb/db.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "carehub/core/mutex.h"
#include "carehub/core/status.h"
#include "carehub/hub/store/options.h"
#include "carehub/hub/store/write_batch.h"

namespace rocksdb {
class Cache;
class CompactionFilter;
}  // namespace rocksdb

namespace carehub::hub {

// Column families, one per kind of record; the layouts are documented by the part that owns each.
// New families go at the end: a store made before them gets them at open with the next ids, as a
// new store does (replication names families by id).
enum class Column {
  kDefault = 0,
  kEvents,
  kDedup,
  kRoute,
  kCursors,
  kQuarantine,
  kAudit,
  kMeta,
  kDisclosure,  // read only since store format 3 (store/disclosure_index.h)
  kResend,
  kDisclosureJournal,
};
inline constexpr int kColumnCount = 11;
// RocksDB's names of the families, by Column.
extern const char* const kColumnNames[kColumnCount];

// The RocksDB batch inside a WriteBatch (defined in write_batch.cc).
rocksdb::WriteBatch* RocksBatch(WriteBatch* batch);

// RocksDB status -> Status with the codes above; `what` names the operation.
Status FromRocks(const rocksdb::Status& s, const char* what);

class Database {
 public:
  static Result<std::unique_ptr<Database>> Open(const StoreOptions& options);
  // Flushes memtables (best effort) and closes.
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  rocksdb::DB* db() const { return db_.get(); }
  rocksdb::ColumnFamilyHandle* cf(Column column) const {
    return handles_[static_cast<int>(column)];
  }
  const StoreOptions& options() const { return options_; }
  const Clock& clock() const { return *clock_; }
  // The block cache every family of the store shares (and the disclosure run index).
  const std::shared_ptr<rocksdb::Cache>& block_cache() const { return cache_; }

  // Applies the batch. With sync, returns after the WAL is fsync'd (group commit: one sync covers
  // every batch written before it). Every write of the store's parts comes through here, so the
  // change observer sees all of them, in order. "not_primary" on a follower store.
  Status Commit(WriteBatch* batch, bool sync);
  // One record, as Commit.
  Status Put(Column column, std::string_view key, std::string_view value, bool sync);
  // The position (RocksDB sequence number) of the last committed write.
  uint64_t Position() const;
  // See ChangeLog (store/change_log.h).
  void SetChangeObserver(std::function<void(uint64_t, uint64_t, std::string_view)> observer);
  // Follower only: applies a replicated batch that must begin at Position() + 1; `last` is the
  // position its last record had on the primary.
  Status ApplyReplicated(uint64_t first, uint64_t last, std::string_view data, bool sync);
  // fsyncs the WAL (covers every write applied before it).
  Status SyncWal();
  // Durability of a write made without sync (an audit record before its disclosure leaves): it is
  // durable once a WAL sync that started after it returned has completed — any sync: a group
  // commit's sync write, SyncWal or Probe. Call WalSyncTicket() after the write returns; the write
  // is durable when WalSynced(ticket). WaitWalSynced waits for that until `timeout`
  // ("store_sync_timeout"); it does not sync by itself (see GroupCommitter::RequestWalSync).
  uint64_t WalSyncTicket() const { return syncs_started_.load() + 1; }
  bool WalSynced(uint64_t ticket) const { return synced_through_.load() >= ticket; }
  Status WaitWalSynced(uint64_t ticket, std::chrono::milliseconds timeout) const;
  // Writes and syncs a small record: proves the store accepts writes.
  Status Probe();
  // Tries to leave the read-only state RocksDB enters after a write error (e.g. disk full).
  Status Resume();
  // OK when `bytes` more can be written while keeping the free-space reserve; "store_full" if not.
  Status CheckHeadroom(uint64_t bytes) const;
  // SST files plus memtables, every column family.
  uint64_t ApproximateSizeBytes() const;
  // RocksDB's estimate of the keys in a column family.
  uint64_t ApproximateKeys(Column column) const;
  // Background compaction work, every column family (see Store::Compactions).
  CompactionBacklog Compactions() const;

 private:
  explicit Database(const StoreOptions& options);
  // The one write path (Commit, Put, Probe); see Commit.
  Status Write(rocksdb::WriteBatch* batch, bool sync, const char* what);
  // Brackets a sync: BeginSync numbers it, EndSync publishes it when it succeeded.
  uint64_t BeginSync() { return ++syncs_started_; }
  void EndSync(uint64_t n, const rocksdb::Status& s);

  StoreOptions options_;
  const Clock* clock_;
  // Must outlive db_ (RocksDB calls it from compactions): declared first, destroyed last.
  std::unique_ptr<rocksdb::CompactionFilter> dedup_expiry_;
  std::unique_ptr<rocksdb::CompactionFilter> resend_expiry_;
  std::shared_ptr<rocksdb::Cache> cache_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  // Syncs numbered in the order they start; the highest number of a sync that completed.
  std::atomic<uint64_t> syncs_started_{0};
  std::atomic<uint64_t> synced_through_{0};
  // Orders writes with the positions RocksDB gives them, so the observer sees changes in position
  // order and Position() right after a write is that write's last record. Held for the write only,
  // never across an fsync.
  Mutex write_mu_;
  std::function<void(uint64_t, uint64_t, std::string_view)> observer_ CAREHUB_GUARDED_BY(write_mu_);
  mutable Mutex sync_mu_;
  mutable CondVar synced_cv_;  // signalled when synced_through_ moves
};

}  // namespace carehub::hub
