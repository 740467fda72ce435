#pragma once
// The hub's durable store (DESIGN §4–5): one RocksDB database, one part per kind of record.
//
//   events()      the event log, by hub_seq                       store/event_log.h
//   dedup()       (publisher, event_id) -> hub_seq, content hash  store/dedup_index.h
//   routes()      (publisher, site, type) -> hub_seqs             store/route_index.h
//   cursors()     subscription -> acknowledged hub_seq            store/cursor_table.h
//   audit()       disclosures, refusals, policy changes           store/audit_log.h
//   disclosures() patient -> the deliveries that disclosed them    store/disclosure_index.h
//   resends()     (publisher, event_id) -> times answered DUPLICATE store/resend_counts.h
//   quarantine()  what was refused, with its raw bytes            store/quarantine_table.h
//   changes()     every committed write, by position, for replicas store/change_log.h
//
// Each part documents its key layout, what its errors mean and its thread-safety. The store knows
// nothing of sockets or policy. Writes that must be atomic together (an event, its dedup key and
// its route) are added to one WriteBatch by the parts and applied with Commit().
//
// Errors: Open refuses a store it cannot open safely (see StoreOptions::salvage_wal). Reads return
// errors as errors: "store_io_error" (the disk), "store_corrupt" (the data), "store_error" (other);
// an absent record is an empty optional, never an error, and an error is never an absent record.
//
// Thread-safety: every method may be called from any thread. The parts live as long as the Store.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string_view>

#include "carehub/core/status.h"
#include "carehub/hub/store/audit_log.h"
#include "carehub/hub/store/change_log.h"
#include "carehub/hub/store/cursor_table.h"
#include "carehub/hub/store/dedup_index.h"
#include "carehub/hub/store/disclosure_index.h"
#include "carehub/hub/store/event_log.h"
#include "carehub/hub/store/keys.h"
#include "carehub/hub/store/options.h"
#include "carehub/hub/store/quarantine_table.h"
#include "carehub/hub/store/resend_counts.h"
#include "carehub/hub/store/route_index.h"
#include "carehub/hub/store/write_batch.h"

namespace carehub::hub {

class Database;

// The layout this binary writes, and the newest it reads (every older one too):
//   1  one route-index entry per event
//   2  one route-index entry per route and ingest batch (route_index.h)
//   3  disclosures filed in a journal, one record per delivery batch, and indexed in runs
//      (disclosure_index.h); the family "disclosure" is read, no longer written
// A standby must read what its primary writes: replication refuses one that reports an older
// format (ReplicaHello.store_format), so a rolling upgrade upgrades the standby first.
inline constexpr uint32_t kStoreFormat = 3;

class Store {
 public:
  static Result<std::unique_ptr<Store>> Open(const StoreOptions& options);
  // Flushes memtables (best effort: the WAL already holds everything) and closes.
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  EventLog& events() { return events_; }
  const EventLog& events() const { return events_; }
  DedupIndex& dedup() { return dedup_; }
  const DedupIndex& dedup() const { return dedup_; }
  RouteIndex& routes() { return routes_; }
  const RouteIndex& routes() const { return routes_; }
  CursorTable& cursors() { return cursors_; }
  const CursorTable& cursors() const { return cursors_; }
  AuditLog& audit() { return audit_; }
  const AuditLog& audit() const { return audit_; }
  DisclosureIndex& disclosures() { return disclosures_; }
  const DisclosureIndex& disclosures() const { return disclosures_; }
  ResendCounts& resends() { return resends_; }
  const ResendCounts& resends() const { return resends_; }
  QuarantineTable& quarantine() { return quarantine_; }
  const QuarantineTable& quarantine() const { return quarantine_; }
  ChangeLog& changes() { return changes_; }
  const ChangeLog& changes() const { return changes_; }

  // Applies every write of `batch` atomically. With sync, returns after the WAL is fsync'd (group
  // commit: one sync covers every batch written before it).
  Status Commit(WriteBatch* batch, bool sync);
  // fsyncs the WAL (covers every write applied before it).
  Status SyncWal();
  // For a write made without sync that must be durable before something else happens (an audit
  // record before its disclosure leaves): WalSyncTicket() right after the write returns, then
  // WaitWalSynced(ticket, timeout) returns once a WAL sync that started after the write has
  // completed (whoever ran it), or "store_sync_timeout". Waiting syncs nothing by itself.
  uint64_t WalSyncTicket() const;
  Status WaitWalSynced(uint64_t ticket, std::chrono::milliseconds timeout) const;
  // Writes and syncs a small record: proves the store accepts writes.
  Status Probe();
  // Tries to leave the read-only state RocksDB enters after a write error (e.g. disk full).
  Status Resume();
  // OK when `bytes` more can be written while keeping the free-space reserve; "store_full" if not.
  Status CheckHeadroom(uint64_t bytes) const;

  // Deletes events received before `unix_ms` and their routes (retention); how many seqs were cut.
  Result<uint64_t> DeleteEventsBefore(int64_t unix_ms) {
    return events_.DeleteBefore(unix_ms, routes_);
  }
  uint64_t ApproximateSizeBytes() const;
  // The compaction work RocksDB is doing or owes: background CPU and disk that reads and writes
  // compete with (e.g. just after a bulk load), and the precursor of write stalls.
  CompactionBacklog Compactions() const;
  const std::filesystem::path& dir() const;

  // Raw reads, for the offline consistency check (consistency.h): fn(key, value) for every record
  // of `column` in key order until fn returns false; an error ends the scan and is returned.
  enum class Column { kEvents, kDedup, kRoute, kCursors, kAudit, kDisclosure };
  Status ScanColumn(Column column,
                    const std::function<bool(std::string_view, std::string_view)>& fn) const;

 private:
  explicit Store(std::unique_ptr<Database> db);

  std::unique_ptr<Database> db_;  // declared first: the parts point into it
  EventLog events_;
  DedupIndex dedup_;
  RouteIndex routes_;
  CursorTable cursors_;
  AuditLog audit_;
  DisclosureIndex disclosures_;
  ResendCounts resends_;
  QuarantineTable quarantine_;
  ChangeLog changes_;
};

}  // namespace carehub::hub
