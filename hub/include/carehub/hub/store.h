#pragma once
// The hub's durable store (DESIGN §4–5): one RocksDB database with a column family per record kind.
//
//   events      hub_seq (8-byte big-endian) -> serialized v1::Event, hub fields included
//   dedup       publisher_ods \0 event_id -> DedupEntry (hub_seq, content hash, day received)
//   route       publisher \0 site \0 event_type \0 hub_seq -> "" : a routing index that lets a
//               narrow subscription read only the events it may receive
//   cursors     subscription id -> acknowledged hub_seq
//   quarantine  id (8-byte big-endian) -> v1::QuarantineRecord
//   audit       at_ms (8 BE) + counter (8 BE) -> v1::AuditRecord
//   meta        small records (known routes)
//
// The store knows nothing of sockets or policy. Writes that must be atomic together (an event, its
// dedup key and its route) go through one rocksdb::WriteBatch built with the Add* helpers and
// committed with Commit(). Thread-safety: all methods are safe from any thread (RocksDB is).

#include <array>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "carehub/core/status.h"
#include "carehub/v1/event.pb.h"
#include "carehub/v1/store.pb.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class WriteBatch;
class Iterator;
class Cache;
}  // namespace rocksdb

namespace carehub::hub {

using ContentHash = std::array<uint8_t, 16>;

struct DedupEntry {
  uint64_t hub_seq = 0;
  ContentHash hash{};
  uint32_t day = 0;  // days since epoch when first received; used to expire the key
};

// A route: the (publisher, site, type) a stored event is filed under.
struct RouteKey {
  std::string publisher_ods;
  std::string site_ods;
  std::string event_type;
  bool operator<(const RouteKey& o) const;
  bool operator==(const RouteKey& o) const = default;
};

struct StoreOptions {
  std::filesystem::path dir;
  // Dedup keys older than this are dropped during compaction.
  uint32_t dedup_window_days = 400;
  size_t block_cache_bytes = 256ull << 20;
  size_t write_buffer_bytes = 64ull << 20;
  // Writes are refused (RETRY) while the data filesystem has less than this free, so RocksDB never
  // runs into a full disk itself (its write-ahead log does not recover cleanly from ENOSPC) and
  // flushes and compactions keep room to finish. 0: min(256 MiB, 2% of the filesystem).
  uint64_t min_free_disk_bytes = 0;
  // Write-ahead log recovery at open. By default a damaged record is tolerated only at the very end
  // of the log (a write the crash cut short, never acknowledged); damage with intact writes after it
  // refuses the open (error code "store_wal_corrupt"), because starting would silently drop
  // acknowledged events. `salvage_wal` (the operator's recovery, docs/reliability.md) skips every
  // damaged record and keeps every intact one, or, where RocksDB cannot go on past the damage,
  // every write before it.
  bool salvage_wal = false;
};

class Store {
 public:
  static Result<std::unique_ptr<Store>> Open(const StoreOptions& options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // ---- Ingest ----
  static std::string DedupKey(std::string_view publisher_ods, std::string_view event_id);
  // Looks up many dedup keys at once; result[i] is empty when keys[i] is not stored.
  std::vector<std::optional<DedupEntry>> LookupDedup(const std::vector<std::string>& keys);
  void AddEvent(rocksdb::WriteBatch* batch, uint64_t hub_seq, std::string_view event_bytes);
  void AddDedup(rocksdb::WriteBatch* batch, std::string_view key, const DedupEntry& entry);
  void AddRoute(rocksdb::WriteBatch* batch, const RouteKey& route, uint64_t hub_seq);
  // As AddRoute, with the prefix already encoded ("publisher \0 site \0 type \0").
  void AddRouteById(rocksdb::WriteBatch* batch, std::string_view route_prefix, uint64_t hub_seq);
  // Records a route the first time it is seen, in meta; NoteRoutesCommitted() adds it to the
  // in-memory list once the batch holding it is committed.
  void AddKnownRoute(rocksdb::WriteBatch* batch, const RouteKey& route);
  void NoteRoutesCommitted(const std::vector<RouteKey>& routes);
  void AddQuarantine(rocksdb::WriteBatch* batch, const v1::QuarantineRecord& record);
  // Counts quarantine records once the batch holding them is committed (a failed commit stored
  // none, so QuarantineCount must not include them).
  void NoteQuarantineCommitted(uint64_t records) { quarantine_count_.fetch_add(records); }
  uint64_t NextQuarantineId() { return next_quarantine_id_.fetch_add(1); }

  // Applies the batch. With sync, returns after the WAL is fsync'd (group commit: one sync covers
  // every batch written before it).
  Status Commit(rocksdb::WriteBatch* batch, bool sync);
  // OK when `bytes` more can be written while keeping the free-space reserve; "store_full" if not.
  Status CheckHeadroom(uint64_t bytes) const;

  // fsyncs the WAL (covers every write applied before it).
  Status SyncWal();
  // Writes and syncs a small record: proves the store accepts writes.
  Status Probe();
  // Tries to leave the read-only state RocksDB enters after a write error (e.g. disk full).
  Status Resume();

  // The highest hub_seq stored (0 when empty).
  uint64_t LastSeq() const;

  // ---- Reading the log ----
  std::optional<v1::Event> GetEvent(uint64_t hub_seq);
  // Calls fn(seq, bytes) for events with seq in [from, to] in order until fn returns false.
  void ScanEvents(uint64_t from, uint64_t to,
                  const std::function<bool(uint64_t, std::string_view)>& fn);
  // Seqs of events filed under `route` with seq in [from, to], ascending, at most `limit`.
  std::vector<uint64_t> ScanRoute(const RouteKey& route, uint64_t from, uint64_t to, size_t limit);
  // Reads many events by seq (bytes; empty string if missing).
  std::vector<std::string> MultiGetEvents(const std::vector<uint64_t>& seqs);
  std::vector<RouteKey> KnownRoutes() const;
  size_t KnownRouteCount() const;
  // First hub_seq whose received_at >= t (LastSeq()+1 when none). Binary search over the log.
  uint64_t SeqAtTime(int64_t unix_ms);
  uint64_t FirstSeq() const;

  // ---- Subscriptions ----
  std::optional<uint64_t> GetCursor(const std::string& subscription);
  Status PutCursor(const std::string& subscription, uint64_t seq);

  // ---- Quarantine ----
  std::vector<v1::QuarantineRecord> ListQuarantine(uint64_t after_id, size_t limit);
  std::optional<v1::QuarantineRecord> GetQuarantine(uint64_t id);
  Status PutQuarantine(const v1::QuarantineRecord& record);  // overwrite (replay outcome)
  uint64_t QuarantineCount() const { return quarantine_count_.load(); }

  // ---- Audit ----
  Status AppendAudit(const v1::AuditRecord& record);
  std::vector<v1::AuditRecord> QueryAudit(const std::string& subscriber, int64_t since_ms,
                                          int64_t until_ms, size_t limit);

  // ---- Retention / stats ----
  // Deletes events (and their routes) received before `unix_ms`; returns how many seqs were cut.
  Result<uint64_t> DeleteEventsBefore(int64_t unix_ms);
  uint64_t ApproximateEventCount() const;
  uint64_t ApproximateDedupKeys() const;
  uint64_t ApproximateSizeBytes() const;
  const std::filesystem::path& dir() const { return options_.dir; }

  // ---- Raw reads, for the offline consistency check (hub/consistency.h) ----
  enum class Column { kEvents, kDedup, kRoute, kCursors, kAudit };
  // Calls fn(key, value) for every record of `column` in key order until fn returns false.
  void ScanColumn(Column column,
                  const std::function<bool(std::string_view, std::string_view)>& fn) const;
  static std::optional<DedupEntry> DecodeDedupValue(std::string_view value);

 private:
  explicit Store(StoreOptions options);
  rocksdb::ColumnFamilyHandle* cf(int i) const { return handles_[i]; }

  StoreOptions options_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::shared_ptr<rocksdb::Cache> cache_;
  std::atomic<uint64_t> next_quarantine_id_{1};
  std::atomic<uint64_t> quarantine_count_{0};
  std::atomic<uint64_t> audit_counter_{0};
  mutable std::mutex routes_mu_;
  std::vector<RouteKey> known_routes_;
};

// Big-endian u64 keys sort in numeric order.
std::string EncodeSeq(uint64_t seq);
uint64_t DecodeSeq(std::string_view bytes);

}  // namespace carehub::hub
