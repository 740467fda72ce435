#include "database.h"

#include <rocksdb/cache.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "carehub/hub/store/disclosure_index.h"
#include "carehub/hub/store/keys.h"
#include "carehub/hub/store/resend_counts.h"
#include "dedup_expiry_filter.h"
#include "rocksdb_logger.h"

namespace carehub::hub {

const char* const kColumnNames[kColumnCount] = {
    "default", "events", "dedup",      "route",  "cursors",           "quarantine",
    "audit",   "meta",   "disclosure", "resend", "disclosure_journal"};

namespace {

// The newest RocksDB sequence number that recovering the log under `mode` yields, found by a
// read-only open (nothing on disk changes); empty when even that open fails.
std::optional<uint64_t> RecoveredSequence(rocksdb::DBOptions options, rocksdb::WALRecoveryMode mode,
                                          const std::string& dir,
                                          const std::vector<rocksdb::ColumnFamilyDescriptor>& cfs) {
  options.wal_recovery_mode = mode;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  if (!rocksdb::DB::OpenForReadOnly(options, dir, cfs, &handles, &raw).ok()) {
    return std::nullopt;
  }
  uint64_t seq = raw->GetLatestSequenceNumber();
  for (auto* h : handles) {
    raw->DestroyColumnFamilyHandle(h);
  }
  delete raw;
  return seq;
}

rocksdb::DBOptions DbOptions(const StoreOptions& options) {
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  db_options.bytes_per_sync = 1 << 20;
  db_options.max_total_wal_size = 512ull << 20;
  db_options.keep_log_file_num = 5;
  // History for standbys that reconnect behind (ChangeLog::ReadSince): write-ahead logs RocksDB no
  // longer needs are kept in archive/ up to this size instead of being deleted.
  db_options.WAL_size_limit_MB = options.wal_archive_bytes >> 20;
  // One memory budget for every memtable, so RSS stays bounded however the CFs are used.
  db_options.db_write_buffer_size = options.write_buffer_bytes * 3;
  // Every write goes through Database::Write one at a time (write_mu_), so concurrent memtable
  // inserts never happened; turning them off lets the disclosure family use a hash memtable.
  db_options.allow_concurrent_memtable_write = false;
  db_options.info_log = std::make_shared<SpdlogRocksLogger>(StoreLog());
  if (options.env != nullptr) {
    db_options.env = options.env;
  }
  // A crash can cut short only the last write, which was never acknowledged: tolerate that, and
  // nothing else (see OpenWithRecoveryPolicy and StoreOptions::salvage_wal).
  db_options.wal_recovery_mode = options.salvage_wal
                                     ? rocksdb::WALRecoveryMode::kSkipAnyCorruptedRecords
                                     : rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  return db_options;
}

// Where the dedup index's memtable puts an insert. RocksDB's skiplist keeps the position of the
// previous insert and starts there only when the next key falls right beside it; otherwise it
// searches from the top (~30 key comparisons). With one position per publisher (a key's bytes up to
// and including its NUL), whose event ids often count up (HL7 v2 message control ids) while a
// batch's keys span many publishers, each insert starts next to the previous one of its publisher:
// commit thread -2.2% of its instructions in the ingest bench. Used only to place inserts.
// Never on a family that takes DeleteRange: RocksDB before 9.2 shares these positions between a
// memtable's keys and its range tombstones, and one used in the other list corrupts it (RocksDB
// issue 5118; Debian 12 has 7.8). The route index, which retention range-deletes, has none.
class PublisherOfDedupKey final : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "carehub.PublisherOfDedupKey"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    const void* nul = std::memchr(key.data(), '\0', key.size());
    return rocksdb::Slice(key.data(), static_cast<const char*>(nul) - key.data() + 1);
  }
  bool InDomain(const rocksdb::Slice& key) const override {
    return std::memchr(key.data(), '\0', key.size()) != nullptr;
  }
};

// Bloom bits per key of the dedup index's filters: ~1% false positives per file checked.
constexpr double kDedupBloomBitsPerKey = 10;

// The dedup memtable's own filter, as a share of its write buffer: 2% of 64 MiB is ~10.7M bits,
// ~14 bits per key for a full memtable (~780k keys at ~86 bytes each), ~0.2% false positives with
// RocksDB's six probes. The filter is allocated and zeroed when the memtable is made, on the
// writing thread while every write waits. At 10% (~68 bits per key) that took 20-26 ms per switch
// here, where a first touch of memory costs ~11 us per 4 KiB page; at 2% it takes 5-13 ms
// (docs/performance.md, "Issue 15 (2026-12-06, 14:10)").
constexpr double kDedupMemtableFilterShare = 0.02;

std::shared_ptr<rocksdb::TableFactory> TableFactory(const std::shared_ptr<rocksdb::Cache>& cache,
                                                    bool bloom) {
  rocksdb::BlockBasedTableOptions t;
  t.block_cache = cache;
  if (bloom) {
    t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(kDedupBloomBitsPerKey, false));
    t.whole_key_filtering = true;
    // Filters and indexes live with each open table (max_open_files -1: every table stays open),
    // outside the block cache, so a new key is answered from memory. In the block cache a whole-
    // file filter grows with the file (~1.2 MiB per million keys) past a cache shard's capacity
    // (256 MiB / 64 shards): it was never kept, and every MultiGet sub-batch of 32 keys read it
    // from the file again — at 20M keys 22 us of a new key's 23 us (perf context:
    // read_filter_block_nanos). Memory: ~1.25 bytes of filter + ~0.4 of index per key, ~85 MiB at
    // 50M keys.
    t.cache_index_and_filter_blocks = false;
  }
  return std::shared_ptr<rocksdb::TableFactory>(rocksdb::NewBlockBasedTableFactory(t));
}

// Per-level compression for a family written at the ingest or delivery rate whose level-0 files
// are merged into level 1 (its keys land anywhere: dedup, route index): flushes (level 0) write
// their files uncompressed, every deeper level uses `deeper`. A flush runs beside ingest on the
// same cores, and the level-0 files it writes are read once more, soon, by the compaction into
// level 1, which decompressed them only to compress them again. Ingest bench, flush thread CPU
// per answered event in alternating runs: 0.68-1.53 us compressing, 0.58-0.85 us not; the data
// dir of a 2M-event store is 264 against 219 MiB per million (level 0 is a large share of a small
// store; it is bounded by a few memtables' worth, so the share shrinks as the store grows).
// RocksDB's own GetCompressionFlush says as much: compressed flushes cost CPU not offset by the
// space saved.
std::vector<rocksdb::CompressionType> UncompressedFlushes(rocksdb::CompressionType deeper) {
  return {rocksdb::kNoCompression, deeper};  // the last entry applies to every deeper level
}

// Families whose keys only grow (hub_seq, journal number): every level-0 file holds keys past
// everything below it, so RocksDB moves it down the levels without rewriting it — but only when
// the levels' compressions match (Compaction::InputCompressionMatchesOutput). With an
// uncompressed level 0 over a compressed level 1 each of the event log's level-0 files was
// rewritten instead: ~1.3-1.8 us of compaction CPU per event (RocksDB's log, ingest bench at 1.5M
// events), against ~0.9 us for compressing at the flush (docs/performance.md, "Issue 15
// (2026-12-06, 23:00)").
bool KeysAreAppended(Column column) {
  return column == Column::kEvents || column == Column::kDisclosureJournal;
}

// The families written for every accepted event (event log, dedup index, route index) or every
// delivery batch (the disclosure journal). The others (default, cursors, quarantine, audit, meta,
// resend counts, the legacy disclosure family) are small or written rarely.
bool WrittenPerEventOrDelivery(Column column) {
  return column == Column::kEvents || column == Column::kDedup || column == Column::kRoute ||
         column == Column::kDisclosureJournal;
}

std::vector<rocksdb::ColumnFamilyDescriptor> ColumnDescriptors(
    const StoreOptions& options, const std::shared_ptr<rocksdb::Cache>& cache,
    const rocksdb::CompactionFilter* dedup_expiry, const rocksdb::CompactionFilter* resend_expiry) {
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (int i = 0; i < kColumnCount; ++i) {
    const auto column = static_cast<Column>(i);
    rocksdb::ColumnFamilyOptions cf;
    cf.write_buffer_size = options.write_buffer_bytes;
    cf.table_factory = TableFactory(cache, /*bloom=*/false);
    if (column == Column::kDedup) {
      // Most keys looked up at ingest are new: filters answer "not here" without reading blocks.
      // Every level keeps its filters (optimize_filters_for_hits would drop the last level's,
      // which is where most keys are): a miss must be answered by filters on every level.
      cf.table_factory = TableFactory(cache, /*bloom=*/true);
      cf.optimize_filters_for_hits = false;
      cf.memtable_prefix_bloom_size_ratio = kDedupMemtableFilterShare;
      cf.memtable_whole_key_filtering = true;
      cf.compaction_filter = dedup_expiry;
      cf.memtable_insert_with_hint_prefix_extractor = std::make_shared<PublisherOfDedupKey>();
    }
    if (column == Column::kDisclosure) {
      // Entries filed one per delivery by store formats before 3, read by IG queries within one
      // patient (the first 16 bytes), never written now: the delivery path files into the
      // journal and the run index (store/disclosure_index.h). Until format 3 this family had a
      // hash link-list memtable, whose flush re-sorted every random patient key (~2.5 us each)
      // and whose buckets were zeroed as each memtable was made (docs/performance.md).
      cf.prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(PatientHasher::kKeyBytes));
    }
    if (WrittenPerEventOrDelivery(column)) {
      // LZ4 for the event log, not RocksDB's default Snappy: a narrow reader (route
      // index) reads one event per 4 KiB block and decompresses the whole block for it; Snappy
      // was ~17% of the delivery thread in a 1% catch-up, LZ4 decompresses about twice as fast
      // for about the same size on disk (footprint: 248 against Snappy's 242 MiB per million
      // events). Files already written keep theirs. Snappy for the indexes.
      const auto compression =
          column == Column::kEvents ? rocksdb::kLZ4Compression : rocksdb::kSnappyCompression;
      if (KeysAreAppended(column)) {
        cf.compression = compression;  // every level alike: level-0 files move down unrewritten
      } else {
        cf.compression_per_level = UncompressedFlushes(compression);
      }
    } else {
      cf.write_buffer_size = 8ull << 20;
    }
    if (column == Column::kResend) {
      cf.merge_operator = NewResendMergeOperator();
      cf.compaction_filter = resend_expiry;
    }
    if (column == Column::kEvents) {
      cf.write_buffer_size = options.write_buffer_bytes * 2;
    }
    descriptors.emplace_back(kColumnNames[i], cf);
  }
  return descriptors;
}

// Opens under the WAL recovery policy of StoreOptions::salvage_wal (see there).
rocksdb::Status OpenWithRecoveryPolicy(rocksdb::DBOptions db_options, const StoreOptions& options,
                                       const std::vector<rocksdb::ColumnFamilyDescriptor>& cfs,
                                       std::vector<rocksdb::ColumnFamilyHandle*>* handles,
                                       rocksdb::DB** raw, Status* refusal) {
  const std::string dir = options.dir.string();
  auto s = rocksdb::DB::Open(db_options, dir, cfs, handles, raw);
  if (s.IsCorruption() && !options.salvage_wal) {
    // A damaged record with no intact write after it is the tail a crash cut short (garbage or a
    // torn record, e.g. after a power cut): recover up to it. Intact writes after the damage mean
    // acknowledged events would be dropped silently: refuse to start instead.
    auto up_to_damage =
        RecoveredSequence(db_options, rocksdb::WALRecoveryMode::kPointInTimeRecovery, dir, cfs);
    auto all_intact =
        RecoveredSequence(db_options, rocksdb::WALRecoveryMode::kSkipAnyCorruptedRecords, dir, cfs);
    if (!up_to_damage || !all_intact || *up_to_damage != *all_intact) {
      *refusal = Status::Error(
          "store_wal_corrupt",
          "the write-ahead log in " + dir +
              " is damaged before its end (intact writes follow the damage), so starting would "
              "drop acknowledged events; refusing to start. Recovery: docs/reliability.md, "
              "'Damaged write-ahead log' (carehub --salvage-wal). RocksDB: " +
              s.ToString());
      return s;
    }
    db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
    s = rocksdb::DB::Open(db_options, dir, cfs, handles, raw);
    if (s.ok()) {
      StoreLog()->warn(
          "the write-ahead log ended in a damaged record (a write cut short by a crash, never "
          "acknowledged); recovered every write before it");
    }
  }
  if (options.salvage_wal) {
    const char* kept = "every intact record";
    if (s.IsCorruption()) {
      // RocksDB cannot always skip a damaged record and go on (e.g. when the damage leaves
      // fragments it cannot reassemble): then keep every write before the damage.
      db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
      s = rocksdb::DB::Open(db_options, dir, cfs, handles, raw);
      kept = "every write before the first damaged record";
    }
    if (s.ok()) {
      StoreLog()->warn(
          "opened with --salvage-wal: kept {}; events in the damaged part of the write-ahead log "
          "are not stored and must be resent by their publishers",
          kept);
    }
  }
  return s;
}

}  // namespace

Status FromRocks(const rocksdb::Status& s, const char* what) {
  if (s.ok()) {
    return Status::Ok();
  }
  std::string code = s.IsNoSpace() || s.IsIOError() ? "store_io_error"
                     : s.IsCorruption()             ? "store_corrupt"
                                                    : "store_error";
  return Status::Error(code, std::string(what) + ": " + s.ToString());
}

Database::Database(const StoreOptions& options)
    : options_(options),
      clock_(options.clock ? options.clock : &SystemClock::Instance()),
      dedup_expiry_(NewDedupExpiryFilter(options.dedup_window_days, *clock_)),
      resend_expiry_(NewResendExpiryFilter(options.dedup_window_days, *clock_)) {}

Database::~Database() {
  if (!db_) {
    return;
  }
  // Flush memtables on a graceful close so the next start does not replay the whole WAL (which
  // took tens of seconds with a few hundred thousand unflushed events). Best effort: the WAL
  // already holds everything acknowledged.
  rocksdb::FlushOptions flush;
  flush.wait = true;
  if (CheckHeadroom(0).ok()) {
    db_->Flush(flush, handles_).PermitUncheckedError();
  }
  for (auto* h : handles_) {
    db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  }
  db_->Close().PermitUncheckedError();
  db_.reset();
}

Result<std::unique_ptr<Database>> Database::Open(const StoreOptions& options) {
  std::unique_ptr<Database> database(new Database(options));
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) {
    return Status::Error("store_error",
                         "cannot create data dir " + options.dir.string() + ": " + ec.message());
  }
  // Data blocks: no column family caches its index and filter blocks (the dedup index keeps
  // them with the open table, see TableFactory), so the high-priority half is unused.
  database->cache_ = rocksdb::NewLRUCache(options.block_cache_bytes, /*num_shard_bits=*/-1,
                                          /*strict_capacity_limit=*/false,
                                          /*high_pri_pool_ratio=*/0.5);
  const auto descriptors = ColumnDescriptors(
      options, database->cache_, database->dedup_expiry_.get(), database->resend_expiry_.get());
  rocksdb::DB* raw = nullptr;
  Status refusal;
  auto s = OpenWithRecoveryPolicy(DbOptions(options), options, descriptors, &database->handles_,
                                  &raw, &refusal);
  if (!refusal.ok()) {
    return refusal;
  }
  if (!s.ok()) {
    return Status::Error("store_error",
                         "cannot open store at " + options.dir.string() + ": " + s.ToString());
  }
  database->db_.reset(raw);
  // Replicated changes name column families by id: both sides must give each Column the same one
  // (true of every store this code created: the families are created together, in this order).
  for (int i = 0; i < kColumnCount; ++i) {
    if (database->handles_[i]->GetID() != static_cast<uint32_t>(i)) {
      return Status::Error("store_error", "column family " + std::string(kColumnNames[i]) + " of " +
                                              options.dir.string() + " has id " +
                                              std::to_string(database->handles_[i]->GetID()) +
                                              ", expected " + std::to_string(i));
    }
  }
  return database;
}

Status Database::Commit(WriteBatch* batch, bool sync) {
  return Write(RocksBatch(batch), sync, "write");
}

Status Database::Put(Column column, std::string_view key, std::string_view value, bool sync) {
  rocksdb::WriteBatch batch;
  auto s = batch.Put(cf(column), rocksdb::Slice(key.data(), key.size()),
                     rocksdb::Slice(value.data(), value.size()));
  if (!s.ok()) {
    return FromRocks(s, "put");
  }
  return Write(&batch, sync, "put");
}

Status Database::Write(rocksdb::WriteBatch* batch, bool sync, const char* what) {
  if (options_.follower) {
    return Status::Error("not_primary",
                         "this store follows a primary and takes writes only from replication");
  }
  {
    MutexLock lock(write_mu_);
    auto s = db_->Write(rocksdb::WriteOptions(), batch);
    if (!s.ok()) {
      return FromRocks(s, what);
    }
    if (observer_) {
      const uint64_t last = db_->GetLatestSequenceNumber();
      observer_(last + 1 - batch->Count(), last, batch->Data());
    }
  }
  // The fsync runs outside the write lock: other writes (audit records, cursors) go on meanwhile,
  // and one sync covers them too.
  return sync ? SyncWal() : Status::Ok();
}

uint64_t Database::Position() const { return db_->GetLatestSequenceNumber(); }

void Database::SetChangeObserver(
    std::function<void(uint64_t, uint64_t, std::string_view)> observer) {
  MutexLock lock(write_mu_);
  observer_ = std::move(observer);
}

Status Database::ApplyReplicated(uint64_t first, uint64_t last, std::string_view data, bool sync) {
  if (!options_.follower) {
    return Status::Error("not_follower", "only a follower store applies replicated changes");
  }
  rocksdb::WriteBatch batch{std::string(data)};
  MutexLock lock(write_mu_);
  const uint64_t position = db_->GetLatestSequenceNumber();
  if (first != position + 1 || batch.Count() == 0 || last != first + batch.Count() - 1) {
    return Status::Error("replication_out_of_order",
                         "change " + std::to_string(first) + ".." + std::to_string(last) + " (" +
                             std::to_string(batch.Count()) +
                             " records) does not follow this store's position " +
                             std::to_string(position));
  }
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  const uint64_t n = sync ? BeginSync() : 0;
  auto s = db_->Write(wo, &batch);
  if (sync) {
    EndSync(n, s);
  }
  if (!s.ok()) {
    return FromRocks(s, "apply replicated change");
  }
  if (db_->GetLatestSequenceNumber() != last) {
    return Status::Error("replication_diverged",
                         "after applying change " + std::to_string(first) + ".." +
                             std::to_string(last) + " this store is at position " +
                             std::to_string(db_->GetLatestSequenceNumber()));
  }
  return Status::Ok();
}

Status Database::SyncWal() {
  const uint64_t n = BeginSync();
  auto s = db_->SyncWAL();
  EndSync(n, s);
  return FromRocks(s, "sync wal");
}

void Database::EndSync(uint64_t n, const rocksdb::Status& s) {
  if (!s.ok()) {
    return;
  }
  {
    MutexLock lock(sync_mu_);
    uint64_t through = synced_through_.load();
    while (through < n && !synced_through_.compare_exchange_weak(through, n)) {
    }
  }
  synced_cv_.NotifyAll();
}

Status Database::WaitWalSynced(uint64_t ticket, std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  MutexLock lock(sync_mu_);
  while (synced_through_.load() < ticket) {
    if (synced_cv_.WaitUntil(sync_mu_, deadline) == std::cv_status::timeout &&
        synced_through_.load() < ticket) {
      return Status::Error("store_sync_timeout", "the write-ahead log was not synced within " +
                                                     std::to_string(timeout.count()) + " ms");
    }
  }
  return Status::Ok();
}

Status Database::Probe() {
  Status room = CheckHeadroom(1 << 20);
  if (!room.ok()) {
    return room;
  }
  const auto now = static_cast<uint64_t>(clock_->Now().time_since_epoch().count());
  return Put(Column::kMeta, "probe", EncodeSeq(now), /*sync=*/true);
}

Status Database::Resume() { return FromRocks(db_->Resume(), "resume"); }

Status Database::CheckHeadroom(uint64_t bytes) const {
  struct statvfs fs {};
  if (statvfs(options_.dir.c_str(), &fs) != 0) {
    return Status::Ok();  // cannot tell: let the write itself decide
  }
  const uint64_t free_bytes = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
  const uint64_t size_bytes = static_cast<uint64_t>(fs.f_blocks) * fs.f_frsize;
  const uint64_t reserve = options_.min_free_disk_bytes > 0
                               ? options_.min_free_disk_bytes
                               : std::min<uint64_t>(256ull << 20, size_bytes / 50);
  if (free_bytes < reserve + bytes) {
    return Status::Error("store_full", "only " + std::to_string(free_bytes >> 10) +
                                           " KiB free on the data filesystem; writes are refused "
                                           "below a reserve of " +
                                           std::to_string(reserve >> 10) + " KiB");
  }
  return Status::Ok();
}

uint64_t Database::ApproximateSizeBytes() const {
  uint64_t total = 0;
  for (auto* handle : handles_) {
    uint64_t sst = 0;
    uint64_t mem = 0;
    db_->GetIntProperty(handle, "rocksdb.total-sst-files-size", &sst);
    db_->GetIntProperty(handle, "rocksdb.size-all-mem-tables", &mem);
    total += sst + mem;
  }
  return total;
}

CompactionBacklog Database::Compactions() const {
  CompactionBacklog backlog;
  db_->GetIntProperty("rocksdb.num-running-compactions", &backlog.running);
  for (auto* handle : handles_) {
    uint64_t pending = 0;
    db_->GetIntProperty(handle, "rocksdb.estimate-pending-compaction-bytes", &pending);
    backlog.pending_bytes += pending;
  }
  return backlog;
}

uint64_t Database::ApproximateKeys(Column column) const {
  uint64_t n = 0;
  db_->GetIntProperty(cf(column), "rocksdb.estimate-num-keys", &n);
  return n;
}

}  // namespace carehub::hub
