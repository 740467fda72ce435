#include "carehub/hub/store.h"

#include "carehub/core/crash_points.h"
#include "carehub/core/ordered_key.h"

#include <rocksdb/cache.h>
#include <rocksdb/compaction_filter.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <spdlog/spdlog.h>
#include <sys/statvfs.h>

#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace carehub::hub {
namespace {

enum CfIndex { kDefault = 0, kEvents, kDedup, kRoute, kCursors, kQuarantine, kAudit, kMeta, kCfCount };
const char* const kCfNames[kCfCount] = {"default",    "events", "dedup", "route", "cursors",
                                        "quarantine", "audit",  "meta"};
constexpr std::string_view kRouteMetaPrefix = "route:";
constexpr size_t kDedupValueBytes = 8 + 16 + 4;

uint32_t TodayDays() {
  using namespace std::chrono;
  return static_cast<uint32_t>(
      duration_cast<hours>(system_clock::now().time_since_epoch()).count() / 24);
}

void PutU32(std::string* out, uint32_t v) {
  for (int i = 3; i >= 0; --i) {
    out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
}

uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) {
    v = (v << 8) | static_cast<uint8_t>(p[i]);
  }
  return v;
}

std::string EncodeDedup(const DedupEntry& e) {
  std::string v = EncodeSeq(e.hub_seq);
  v.append(reinterpret_cast<const char*>(e.hash.data()), e.hash.size());
  PutU32(&v, e.day);
  return v;
}

std::optional<DedupEntry> DecodeDedup(std::string_view v) {
  if (v.size() != kDedupValueBytes) {
    return std::nullopt;
  }
  DedupEntry e;
  e.hub_seq = DecodeSeq(v.substr(0, 8));
  std::memcpy(e.hash.data(), v.data() + 8, 16);
  e.day = GetU32(v.data() + 24);
  return e;
}

// Expires dedup keys older than the window during compaction, so the index does not grow forever
// and no sweep has to read it (DESIGN §4: window default 400 days).
class DedupExpiryFilter : public rocksdb::CompactionFilter {
 public:
  explicit DedupExpiryFilter(uint32_t window_days) : window_days_(window_days) {}
  bool Filter(int /*level*/, const rocksdb::Slice& /*key*/, const rocksdb::Slice& value,
              std::string* /*new_value*/, bool* /*value_changed*/) const override {
    if (value.size() != kDedupValueBytes) {
      return false;
    }
    uint32_t day = GetU32(value.data() + 24);
    uint32_t today = TodayDays();
    return today > day && today - day > window_days_;
  }
  const char* Name() const override { return "carehub.DedupExpiryFilter"; }

 private:
  uint32_t window_days_;
};

std::string RoutePrefix(const RouteKey& r) {
  std::string p;
  p.reserve(r.publisher_ods.size() + r.site_ods.size() + r.event_type.size() + 3);
  p.append(r.publisher_ods).push_back('\0');
  p.append(r.site_ods).push_back('\0');
  p.append(r.event_type).push_back('\0');
  return p;
}

std::optional<RouteKey> ParseRoutePrefix(std::string_view s) {
  RouteKey r;
  std::string_view* parts[] = {nullptr, nullptr, nullptr};
  (void)parts;
  size_t a = s.find('\0');
  if (a == std::string_view::npos) {
    return std::nullopt;
  }
  size_t b = s.find('\0', a + 1);
  if (b == std::string_view::npos) {
    return std::nullopt;
  }
  size_t c = s.find('\0', b + 1);
  if (c == std::string_view::npos) {
    return std::nullopt;
  }
  r.publisher_ods = std::string(s.substr(0, a));
  r.site_ods = std::string(s.substr(a + 1, b - a - 1));
  r.event_type = std::string(s.substr(b + 1, c - b - 1));
  return r;
}

Status FromRocks(const rocksdb::Status& s, const char* what) {
  if (s.ok()) {
    return Status::Ok();
  }
  std::string code = s.IsNoSpace() || s.IsIOError() ? "store_io_error" : "store_error";
  return Status::Error(code, std::string(what) + ": " + s.ToString());
}

int64_t ReceivedAtMillis(std::string_view bytes) {
  v1::Event e;
  if (!e.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return 0;
  }
  const auto& t = e.envelope().received_at();
  return t.seconds() * 1000 + t.nanos() / 1'000'000;
}

// RocksDB's own diagnostics go to the hub's "store" logger instead of a LOG file in the data dir:
// on a read-only or full filesystem a failed LOG write left RocksDB's logger in an error state and
// the next line aborted the process (Debian's 7.8 keeps assertions: "Assertion
// `sync_without_flush_called_' failed"). RocksDB's info lines (option dumps, flushes) are debug.
class SpdlogRocksLogger : public rocksdb::Logger {
 public:
  explicit SpdlogRocksLogger(std::shared_ptr<spdlog::logger> log)
      : rocksdb::Logger(rocksdb::InfoLogLevel::INFO_LEVEL), log_(std::move(log)) {}
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    const auto mapped = level >= rocksdb::InfoLogLevel::ERROR_LEVEL  ? spdlog::level::err
                        : level == rocksdb::InfoLogLevel::WARN_LEVEL ? spdlog::level::warn
                                                                     : spdlog::level::debug;
    if (!log_ || !log_->should_log(mapped)) {
      return;
    }
    char line[1024];
    std::vsnprintf(line, sizeof(line), format, ap);
    // The json log format writes messages unescaped: keep RocksDB's text to plain characters.
    for (char* c = line; *c != '\0'; ++c) {
      if (*c == '"' || *c == '\\' || static_cast<unsigned char>(*c) < 0x20) {
        *c = ' ';
      }
    }
    log_->log(mapped, "rocksdb: {}", line);
  }

 private:
  std::shared_ptr<spdlog::logger> log_;
};

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

}  // namespace

std::string EncodeSeq(uint64_t seq) { return EncodeOrderedU64(seq); }

uint64_t DecodeSeq(std::string_view bytes) { return DecodeOrderedU64(bytes); }

bool RouteKey::operator<(const RouteKey& o) const {
  return std::tie(publisher_ods, site_ods, event_type) <
         std::tie(o.publisher_ods, o.site_ods, o.event_type);
}

Store::Store(StoreOptions options) : options_(std::move(options)) {}

Store::~Store() {
  if (db_) {
    // Flush memtables on a graceful close so the next start does not replay the whole WAL (which
    // took tens of seconds with a few hundred thousand unflushed events). Best effort: the WAL
    // already holds everything acknowledged.
    rocksdb::FlushOptions flush;
    flush.wait = true;
    if (CheckHeadroom(0).ok()) {
      (void)db_->Flush(flush, handles_);
    }
    for (auto* h : handles_) {
      db_->DestroyColumnFamilyHandle(h);
    }
    db_->Close();
  }
}

Result<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  std::unique_ptr<Store> store(new Store(options));
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) {
    return Status::Error("store_error",
                         "cannot create data dir " + options.dir.string() + ": " + ec.message());
  }
  // Half the cache is reserved for index and filter blocks (high priority), so a burst of data-block
  // reads cannot evict the dedup index's bloom filters: without them every miss reads a filter block.
  store->cache_ = rocksdb::NewLRUCache(options.block_cache_bytes, /*num_shard_bits=*/-1,
                                       /*strict_capacity_limit=*/false,
                                       /*high_pri_pool_ratio=*/0.5);

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  db_options.bytes_per_sync = 1 << 20;
  db_options.max_total_wal_size = 512ull << 20;
  db_options.keep_log_file_num = 5;
  // One memory budget for every memtable, so RSS stays bounded however the CFs are used.
  db_options.db_write_buffer_size = options.write_buffer_bytes * 3;
  db_options.info_log = std::make_shared<SpdlogRocksLogger>(spdlog::get("store"));
  // A crash can cut short only the last write, which was never acknowledged: tolerate that, and
  // nothing else (see the open below and StoreOptions::salvage_wal).
  db_options.wal_recovery_mode = options.salvage_wal
                                     ? rocksdb::WALRecoveryMode::kSkipAnyCorruptedRecords
                                     : rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;

  auto table_options_with = [&](bool bloom) {
    rocksdb::BlockBasedTableOptions t;
    t.block_cache = store->cache_;
    if (bloom) {
      t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10, false));
      t.whole_key_filtering = true;
      t.cache_index_and_filter_blocks = true;
      t.cache_index_and_filter_blocks_with_high_priority = true;
      t.pin_l0_filter_and_index_blocks_in_cache = true;
    }
    return rocksdb::NewBlockBasedTableFactory(t);
  };

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  static std::unique_ptr<DedupExpiryFilter> expiry;  // must outlive the DB; one per process
  expiry = std::make_unique<DedupExpiryFilter>(options.dedup_window_days);
  for (int i = 0; i < kCfCount; ++i) {
    rocksdb::ColumnFamilyOptions cf;
    cf.write_buffer_size = options.write_buffer_bytes;
    cf.table_factory.reset(table_options_with(false));
    if (i == kDedup) {
      // Most keys looked up at ingest are new: filters answer "not here" without reading blocks.
      cf.table_factory.reset(table_options_with(true));
      cf.memtable_prefix_bloom_size_ratio = 0.1;
      cf.memtable_whole_key_filtering = true;
      cf.compaction_filter = expiry.get();
    }
    if (i == kEvents) {
      cf.write_buffer_size = options.write_buffer_bytes * 2;
    } else if (i != kDedup && i != kRoute) {
      cf.write_buffer_size = 8ull << 20;  // cursors, quarantine, audit, meta: small and rare
    }
    descriptors.emplace_back(kCfNames[i], cf);
  }
  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::Open(db_options, options.dir.string(), descriptors, &store->handles_, &raw);
  if (s.IsCorruption() && !options.salvage_wal) {
    // A damaged record with no intact write after it is the tail a crash cut short (garbage or a
    // torn record, e.g. after a power cut): recover up to it. Intact writes after the damage mean
    // acknowledged events would be dropped silently: refuse to start instead.
    auto up_to_damage = RecoveredSequence(db_options, rocksdb::WALRecoveryMode::kPointInTimeRecovery,
                                          options.dir.string(), descriptors);
    auto all_intact = RecoveredSequence(
        db_options, rocksdb::WALRecoveryMode::kSkipAnyCorruptedRecords, options.dir.string(),
        descriptors);
    if (!up_to_damage || !all_intact || *up_to_damage != *all_intact) {
      return Status::Error(
          "store_wal_corrupt",
          "the write-ahead log in " + options.dir.string() +
              " is damaged before its end (intact writes follow the damage), so starting would "
              "drop acknowledged events; refusing to start. Recovery: docs/reliability.md, "
              "'Damaged write-ahead log' (carehub --salvage-wal). RocksDB: " +
              s.ToString());
    }
    db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
    s = rocksdb::DB::Open(db_options, options.dir.string(), descriptors, &store->handles_, &raw);
    if (s.ok()) {
      if (auto log = spdlog::get("store")) {
        log->warn("the write-ahead log ended in a damaged record (a write cut short by a crash, "
                  "never acknowledged); recovered every write before it");
      }
    }
  }
  if (options.salvage_wal) {
    const char* kept = "every intact record";
    if (s.IsCorruption()) {
      // RocksDB cannot always skip a damaged record and go on (e.g. when the damage leaves
      // fragments it cannot reassemble): then keep every write before the damage.
      db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
      s = rocksdb::DB::Open(db_options, options.dir.string(), descriptors, &store->handles_, &raw);
      kept = "every write before the first damaged record";
    }
    auto log = spdlog::get("store");
    if (s.ok() && log) {
      log->warn("opened with --salvage-wal: kept {}; events in the damaged part of the "
                "write-ahead log are not stored and must be resent by their publishers",
                kept);
    }
  }
  if (!s.ok()) {
    return Status::Error("store_error", "cannot open store at " + options.dir.string() + ": " +
                                            s.ToString());
  }
  store->db_.reset(raw);

  // Known routes and quarantine counters are small; load them.
  {
    std::unique_ptr<rocksdb::Iterator> it(store->db_->NewIterator({}, store->cf(kMeta)));
    for (it->Seek(std::string(kRouteMetaPrefix)); it->Valid() && it->key().starts_with(
                                                     rocksdb::Slice(kRouteMetaPrefix.data(),
                                                                    kRouteMetaPrefix.size()));
         it->Next()) {
      auto r = ParseRoutePrefix(it->key().ToStringView().substr(kRouteMetaPrefix.size()));
      if (r) {
        store->known_routes_.push_back(*r);
      }
    }
  }
  {
    std::unique_ptr<rocksdb::Iterator> it(store->db_->NewIterator({}, store->cf(kQuarantine)));
    uint64_t count = 0;
    uint64_t last = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      ++count;
      last = DecodeSeq(it->key().ToStringView());
    }
    store->quarantine_count_ = count;
    store->next_quarantine_id_ = last + 1;
  }
  return store;
}

std::string Store::DedupKey(std::string_view publisher_ods, std::string_view event_id) {
  std::string k;
  k.reserve(publisher_ods.size() + event_id.size() + 1);
  k.append(publisher_ods).push_back('\0');
  k.append(event_id);
  return k;
}

std::vector<std::optional<DedupEntry>> Store::LookupDedup(const std::vector<std::string>& keys) {
  std::vector<std::optional<DedupEntry>> out(keys.size());
  if (keys.empty()) {
    return out;
  }
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  rocksdb::ReadOptions ro;
  ro.verify_checksums = false;
  db_->MultiGet(ro, cf(kDedup), keys.size(), slices.data(), values.data(), statuses.data(),
                /*sorted_input=*/false);
  for (size_t i = 0; i < keys.size(); ++i) {
    if (statuses[i].ok()) {
      out[i] = DecodeDedup(values[i].ToStringView());
    }
  }
  return out;
}

void Store::AddEvent(rocksdb::WriteBatch* batch, uint64_t hub_seq, std::string_view event_bytes) {
  batch->Put(cf(kEvents), EncodeSeq(hub_seq), rocksdb::Slice(event_bytes.data(), event_bytes.size()));
}

void Store::AddDedup(rocksdb::WriteBatch* batch, std::string_view key, const DedupEntry& entry) {
  batch->Put(cf(kDedup), rocksdb::Slice(key.data(), key.size()), EncodeDedup(entry));
}

void Store::AddRoute(rocksdb::WriteBatch* batch, const RouteKey& route, uint64_t hub_seq) {
  batch->Put(cf(kRoute), RoutePrefix(route) + EncodeSeq(hub_seq), rocksdb::Slice());
}

void Store::AddRouteById(rocksdb::WriteBatch* batch, std::string_view route_prefix,
                         uint64_t hub_seq) {
  char key[256];
  if (route_prefix.size() + 8 > sizeof(key)) {
    std::string k(route_prefix);
    k += EncodeSeq(hub_seq);
    batch->Put(cf(kRoute), k, rocksdb::Slice());
    return;
  }
  std::memcpy(key, route_prefix.data(), route_prefix.size());
  for (int i = 7; i >= 0; --i) {
    key[route_prefix.size() + i] = static_cast<char>(hub_seq & 0xff);
    hub_seq >>= 8;
  }
  batch->Put(cf(kRoute), rocksdb::Slice(key, route_prefix.size() + 8), rocksdb::Slice());
}

void Store::AddKnownRoute(rocksdb::WriteBatch* batch, const RouteKey& route) {
  batch->Put(cf(kMeta), std::string(kRouteMetaPrefix) + RoutePrefix(route), rocksdb::Slice());
}

void Store::NoteRoutesCommitted(const std::vector<RouteKey>& routes) {
  std::lock_guard lock(routes_mu_);
  known_routes_.insert(known_routes_.end(), routes.begin(), routes.end());
}

void Store::AddQuarantine(rocksdb::WriteBatch* batch, const v1::QuarantineRecord& record) {
  batch->Put(cf(kQuarantine), EncodeSeq(record.id()), record.SerializeAsString());
}

Status Store::Commit(rocksdb::WriteBatch* batch, bool sync) {
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  return FromRocks(db_->Write(wo, batch), "write");
}

Status Store::CheckHeadroom(uint64_t bytes) const {
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

Status Store::SyncWal() { return FromRocks(db_->SyncWAL(), "sync wal"); }

Status Store::Probe() {
  Status room = CheckHeadroom(1 << 20);
  if (!room.ok()) {
    return room;
  }
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return FromRocks(db_->Put(wo, cf(kMeta), "probe", EncodeSeq(static_cast<uint64_t>(
                                                          std::chrono::system_clock::now()
                                                              .time_since_epoch()
                                                              .count()))),
                   "probe");
}

Status Store::Resume() { return FromRocks(db_->Resume(), "resume"); }

uint64_t Store::LastSeq() const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator({}, cf(kEvents)));
  it->SeekToLast();
  return it->Valid() ? DecodeSeq(it->key().ToStringView()) : 0;
}

uint64_t Store::FirstSeq() const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator({}, cf(kEvents)));
  it->SeekToFirst();
  return it->Valid() ? DecodeSeq(it->key().ToStringView()) : 0;
}

std::optional<v1::Event> Store::GetEvent(uint64_t hub_seq) {
  std::string value;
  if (!db_->Get({}, cf(kEvents), EncodeSeq(hub_seq), &value).ok()) {
    return std::nullopt;
  }
  v1::Event e;
  if (!e.ParseFromString(value)) {
    return std::nullopt;
  }
  return e;
}

void Store::ScanEvents(uint64_t from, uint64_t to,
                       const std::function<bool(uint64_t, std::string_view)>& fn) {
  rocksdb::ReadOptions ro;
  ro.verify_checksums = false;
  std::string upper = EncodeSeq(to == UINT64_MAX ? to : to + 1);
  rocksdb::Slice upper_slice(upper);
  if (to != UINT64_MAX) {
    ro.iterate_upper_bound = &upper_slice;
  }
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(kEvents)));
  for (it->Seek(EncodeSeq(from)); it->Valid(); it->Next()) {
    if (!fn(DecodeSeq(it->key().ToStringView()), it->value().ToStringView())) {
      break;
    }
  }
}

std::vector<uint64_t> Store::ScanRoute(const RouteKey& route, uint64_t from, uint64_t to,
                                       size_t limit) {
  std::vector<uint64_t> seqs;
  std::string prefix = RoutePrefix(route);
  std::string upper = prefix + EncodeSeq(to);
  upper.push_back('\0');  // inclusive of `to`
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.verify_checksums = false;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(kRoute)));
  for (it->Seek(prefix + EncodeSeq(from)); it->Valid() && seqs.size() < limit; it->Next()) {
    auto key = it->key().ToStringView();
    if (key.size() != prefix.size() + 8) {
      break;
    }
    seqs.push_back(DecodeSeq(key.substr(prefix.size())));
  }
  return seqs;
}

std::vector<std::string> Store::MultiGetEvents(const std::vector<uint64_t>& seqs) {
  std::vector<std::string> keys;
  keys.reserve(seqs.size());
  for (uint64_t s : seqs) {
    keys.push_back(EncodeSeq(s));
  }
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  rocksdb::ReadOptions ro;
  ro.verify_checksums = false;
  db_->MultiGet(ro, cf(kEvents), keys.size(), slices.data(), values.data(), statuses.data(),
                /*sorted_input=*/true);
  std::vector<std::string> out(seqs.size());
  for (size_t i = 0; i < seqs.size(); ++i) {
    if (statuses[i].ok()) {
      out[i] = values[i].ToString();
    }
  }
  return out;
}

size_t Store::KnownRouteCount() const {
  std::lock_guard lock(routes_mu_);
  return known_routes_.size();
}

std::vector<RouteKey> Store::KnownRoutes() const {
  std::lock_guard lock(routes_mu_);
  return known_routes_;
}

uint64_t Store::SeqAtTime(int64_t unix_ms) {
  uint64_t lo = FirstSeq();
  uint64_t hi = LastSeq();
  if (lo == 0) {
    return 1;
  }
  // received_at grows with hub_seq (both assigned by the single ingest thread).
  uint64_t answer = hi + 1;
  while (lo <= hi) {
    uint64_t mid = lo + (hi - lo) / 2;
    // Seqs can have gaps (retention, failed commits): look at the first event at or after mid.
    uint64_t found_seq = 0;
    int64_t found_ms = 0;
    ScanEvents(mid, hi, [&](uint64_t seq, std::string_view bytes) {
      found_seq = seq;
      found_ms = ReceivedAtMillis(bytes);
      return false;
    });
    if (found_seq == 0) {
      hi = mid - 1;
      continue;
    }
    if (found_ms >= unix_ms) {
      answer = found_seq;
      if (mid == 0) {
        break;
      }
      hi = mid - 1;
    } else {
      lo = found_seq + 1;
    }
  }
  return answer;
}

std::optional<uint64_t> Store::GetCursor(const std::string& subscription) {
  std::string value;
  if (!db_->Get({}, cf(kCursors), subscription, &value).ok()) {
    return std::nullopt;
  }
  return DecodeSeq(value);
}

Status Store::PutCursor(const std::string& subscription, uint64_t seq) {
  // Not synced on its own: a lost cursor update means redelivery (at-least-once), never loss.
  return FromRocks(db_->Put({}, cf(kCursors), subscription, EncodeSeq(seq)), "put cursor");
}

std::vector<v1::QuarantineRecord> Store::ListQuarantine(uint64_t after_id, size_t limit) {
  std::vector<v1::QuarantineRecord> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator({}, cf(kQuarantine)));
  for (it->Seek(EncodeSeq(after_id + 1)); it->Valid() && out.size() < limit; it->Next()) {
    v1::QuarantineRecord r;
    if (r.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      out.push_back(std::move(r));
    }
  }
  return out;
}

std::optional<v1::QuarantineRecord> Store::GetQuarantine(uint64_t id) {
  std::string value;
  if (!db_->Get({}, cf(kQuarantine), EncodeSeq(id), &value).ok()) {
    return std::nullopt;
  }
  v1::QuarantineRecord r;
  if (!r.ParseFromString(value)) {
    return std::nullopt;
  }
  return r;
}

Status Store::PutQuarantine(const v1::QuarantineRecord& record) {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return FromRocks(db_->Put(wo, cf(kQuarantine), EncodeSeq(record.id()),
                            record.SerializeAsString()),
                   "put quarantine");
}

Status Store::AppendAudit(const v1::AuditRecord& record) {
  std::string key = EncodeSeq(static_cast<uint64_t>(record.at_unix_ms())) +
                    EncodeSeq(audit_counter_.fetch_add(1));
  // Not fsync'd on its own: the record reaches the OS before the delivery is sent (it survives a
  // crash of the hub) and the next synced write covers it. A separate fsync per delivery batch was
  // measured to compete with the group commit and cut the latency bench's ingest from 20k to 2.8k
  // events/s (docs/reliability.md).
  return FromRocks(db_->Put({}, cf(kAudit), key, record.SerializeAsString()), "append audit");
}

std::vector<v1::AuditRecord> Store::QueryAudit(const std::string& subscriber, int64_t since_ms,
                                               int64_t until_ms, size_t limit) {
  std::vector<v1::AuditRecord> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator({}, cf(kAudit)));
  for (it->Seek(EncodeSeq(static_cast<uint64_t>(std::max<int64_t>(since_ms, 0))));
       it->Valid() && out.size() < limit; it->Next()) {
    if (static_cast<int64_t>(DecodeSeq(it->key().ToStringView())) > until_ms) {
      break;
    }
    v1::AuditRecord r;
    if (!r.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      continue;
    }
    if (subscriber.empty() || r.subscriber() == subscriber) {
      out.push_back(std::move(r));
    }
  }
  return out;
}

Result<uint64_t> Store::DeleteEventsBefore(int64_t unix_ms) {
  uint64_t first = FirstSeq();
  // The newest event always stays: LastSeq() is where hub_seq resumes after a restart, so an
  // emptied log would hand out sequence numbers again that subscribers already acknowledged.
  uint64_t cutoff = std::min(SeqAtTime(unix_ms), LastSeq());
  if (first == 0 || cutoff <= first) {
    return uint64_t{0};
  }
  CAREHUB_CRASH_POINT("retention.before_delete");
  rocksdb::WriteBatch batch;
  batch.DeleteRange(cf(kEvents), EncodeSeq(0), EncodeSeq(cutoff));
  for (const auto& route : KnownRoutes()) {
    std::string prefix = RoutePrefix(route);
    batch.DeleteRange(cf(kRoute), prefix + EncodeSeq(0), prefix + EncodeSeq(cutoff));
  }
  rocksdb::WriteOptions wo;
  wo.sync = true;
  auto s = db_->Write(wo, &batch);
  if (!s.ok()) {
    return FromRocks(s, "retention delete");
  }
  CAREHUB_CRASH_POINT("retention.after_delete");
  return cutoff - first;
}

void Store::ScanColumn(Column column,
                       const std::function<bool(std::string_view, std::string_view)>& fn) const {
  int index = kEvents;
  switch (column) {
    case Column::kEvents:
      index = kEvents;
      break;
    case Column::kDedup:
      index = kDedup;
      break;
    case Column::kRoute:
      index = kRoute;
      break;
    case Column::kCursors:
      index = kCursors;
      break;
    case Column::kAudit:
      index = kAudit;
      break;
  }
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator({}, cf(index)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (!fn(it->key().ToStringView(), it->value().ToStringView())) {
      break;
    }
  }
}

std::optional<DedupEntry> Store::DecodeDedupValue(std::string_view value) {
  return DecodeDedup(value);
}

uint64_t Store::ApproximateEventCount() const {
  uint64_t first = FirstSeq();
  uint64_t last = LastSeq();
  return first == 0 ? 0 : last - first + 1;
}

uint64_t Store::ApproximateDedupKeys() const {
  uint64_t n = 0;
  db_->GetIntProperty(cf(kDedup), "rocksdb.estimate-num-keys", &n);
  return n;
}

uint64_t Store::ApproximateSizeBytes() const {
  uint64_t total = 0;
  for (int i = 0; i < kCfCount; ++i) {
    uint64_t sst = 0;
    uint64_t mem = 0;
    db_->GetIntProperty(cf(i), "rocksdb.total-sst-files-size", &sst);
    db_->GetIntProperty(cf(i), "rocksdb.size-all-mem-tables", &mem);
    total += sst + mem;
  }
  return total;
}

}  // namespace carehub::hub
