#include "carehub/hub/store/disclosure_index.h"

#include <pthread.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <utility>

#include "carehub/core/wire_reader.h"
#include "carehub/hub/store/event_codec.h"
#include "carehub/hub/store/keys.h"
#include "database.h"
#include "rocksdb_logger.h"

namespace carehub::hub {
namespace {

constexpr std::string_view kKeyRecord = "disclosure_index_key";

// Journal record kinds, and the run index's key tags (header comment of disclosure_index.h).
constexpr char kFiled = 'F';
constexpr char kRetracted = 'R';
constexpr char kEntryTag = 'p';
constexpr char kCursorTag = 'z';
constexpr size_t kRunPrefixBytes = 1 + PatientHasher::kKeyBytes;
constexpr size_t kRunKeyBytes = kRunPrefixBytes + kAuditKeyBytes + 8;

rocksdb::Slice AsSlice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

}  // namespace

std::string PatientHasher::Hash(std::string_view kind, std::string_view a,
                                std::string_view b) const {
  // Length-prefixed parts: ("mrn", "AB", "C1") and ("mrn", "A", "BC1") hash differently.
  crypto_generichash_state state;
  crypto_generichash_init(&state, secret_.data(), secret_.size(), kKeyBytes);
  for (std::string_view part : {kind, a, b}) {
    const auto n = static_cast<uint32_t>(part.size());
    const unsigned char len[4] = {
        static_cast<unsigned char>(n >> 24), static_cast<unsigned char>(n >> 16),
        static_cast<unsigned char>(n >> 8), static_cast<unsigned char>(n)};
    crypto_generichash_update(&state, len, sizeof len);
    crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(part.data()),
                              part.size());
  }
  std::string out(kKeyBytes, '\0');
  crypto_generichash_final(&state, reinterpret_cast<unsigned char*>(out.data()), kKeyBytes);
  return out;
}

std::string PatientHasher::ForNhsNumber(std::string_view nhs_number) const {
  return Hash("nhs", nhs_number, "");
}

std::string PatientHasher::ForLocalMrn(std::string_view assigning_ods, std::string_view mrn) const {
  return Hash("mrn", assigning_ods, mrn);
}

void PatientHasher::KeysOf(const v1::Event& event, std::vector<std::string>* out) const {
  auto add = [&](const v1::Patient& p) {
    std::string key;
    if (!p.nhs_number().empty()) {
      key = ForNhsNumber(p.nhs_number());
    } else if (!p.local_mrn().empty()) {
      key = ForLocalMrn(p.mrn_assigning_ods(), p.local_mrn());
    } else {
      return;
    }
    if (std::find(out->begin(), out->end(), key) == out->end()) {
      out->push_back(std::move(key));
    }
  };
  add(event.envelope().patient());
  if (event.has_activity() && event.activity().has_merged_patient()) {
    add(event.activity().merged_patient());
  }
}

Result<std::optional<PatientHasher>> DisclosureIndex::ReadKey() const {
  std::string value;
  auto s = db_->db()->Get({}, db_->cf(Column::kMeta), std::string(kKeyRecord), &value);
  if (s.IsNotFound()) {
    return std::optional<PatientHasher>();
  }
  if (!s.ok()) {
    return FromRocks(s, "read the disclosure index key");
  }
  std::array<unsigned char, 32> secret{};
  if (value.size() != secret.size()) {
    return Status::Error("store_corrupt", "the disclosure index key is not 32 bytes");
  }
  std::copy(value.begin(), value.end(), secret.begin());
  return std::optional<PatientHasher>(PatientHasher(secret));
}

Status DisclosureIndex::EnsureKey() {
  MutexLock lock(mu_);
  if (hasher_) {
    return Status::Ok();
  }
  auto read = ReadKey();
  if (!read.ok()) {
    return read.status();
  }
  if (read.value()) {
    hasher_ = read.value();
    return Status::Ok();
  }
  std::array<unsigned char, 32> secret{};
  randombytes_buf(secret.data(), secret.size());
  CAREHUB_RETURN_IF_ERROR(
      db_->Put(Column::kMeta, kKeyRecord,
               std::string_view(reinterpret_cast<const char*>(secret.data()), secret.size()),
               /*sync=*/true));
  hasher_ = PatientHasher(secret);
  return Status::Ok();
}

Result<PatientHasher> DisclosureIndex::Hasher() const {
  MutexLock lock(mu_);
  if (!hasher_) {
    // A standby has no key of its own: it reads the one its primary wrote, once replicated.
    auto read = ReadKey();
    if (!read.ok()) {
      return read.status();
    }
    if (!read.value()) {
      return Status::Error("no_index_key",
                           "this store has no disclosure index key yet (no primary has run on it)");
    }
    hasher_ = read.value();
  }
  return *hasher_;
}

void AppendDisclosureEntry(std::string* out, std::string_view agreement,
                           std::string_view field_level, std::string_view event_type,
                           std::string_view publisher_ods, std::string_view event_id) {
  uint32_t field = 0;
  for (std::string_view value : {agreement, field_level, event_type, publisher_ods, event_id}) {
    ++field;
    if (!value.empty()) {
      AppendLengthDelimited(out, field, value);
    }
  }
}

// ---- journal records ----------------------------------------------------------------------------

void DisclosureFilings::Add(std::string_view patient_key, uint64_t hub_seq,
                            std::string_view entry_bytes) {
  AppendVarint(&bytes_, patient_key.size());
  bytes_.append(patient_key);
  AppendVarint(&bytes_, hub_seq);
  AppendVarint(&bytes_, entry_bytes.size());
  bytes_.append(entry_bytes);
  ++count_;
}

namespace {

// One filing of a journal record, viewed in place.
struct Filing {
  std::string_view patient;
  uint64_t hub_seq = 0;
  std::string_view entry;
};

// A journal record, viewed in place (header comment of disclosure_index.h).
struct JournalRecord {
  char kind = 0;
  std::string_view audit_key;
  std::vector<Filing> filings;
};

// "store_corrupt" when `value` is not a journal record.
Status ParseJournalRecord(std::string_view value, JournalRecord* out) {
  const Status corrupt =
      Status::Error("store_corrupt", "a disclosure journal record does not decode");
  if (value.size() < 1 + kAuditKeyBytes || (value[0] != kFiled && value[0] != kRetracted)) {
    return corrupt;
  }
  out->kind = value[0];
  out->audit_key = value.substr(1, kAuditKeyBytes);
  out->filings.clear();
  wire::Reader in(value.substr(1 + kAuditKeyBytes));
  while (!in.done()) {
    Filing& f = out->filings.emplace_back();
    if (!in.Bytes(&f.patient) || f.patient.size() != PatientHasher::kKeyBytes ||
        !in.Varint(&f.hub_seq) || !in.Bytes(&f.entry)) {
      return corrupt;
    }
  }
  return Status::Ok();
}

// What the run index's cursor holds of the journal record it names: a full copy that replaced
// the store, or a fork, gives a different record under the same number. The store's content hash
// (event_codec.h): it tells records apart, nobody forges them here.
std::string RecordDigest(std::string_view value) {
  const ContentHash hash = HashContent(value);
  return std::string(reinterpret_cast<const char*>(hash.data()), hash.size());
}

// The RecordDigest of journal record `number`, or nothing when the journal has no such record:
// what a run's cursor is checked against at open, and what a run writes as its cursor. Errors:
// the read failed.
Result<std::optional<std::string>> ReadJournalDigest(const Database& db, uint64_t number) {
  std::string value;
  auto s = db.db()->Get({}, db.cf(Column::kDisclosureJournal), EncodeSeq(number), &value);
  if (s.IsNotFound()) {
    return std::optional<std::string>();
  }
  if (!s.ok()) {
    return FromRocks(s, "read the disclosure journal");
  }
  return std::optional<std::string>(RecordDigest(value));
}

// A run index key, written in place: a run sorts its rows inline (no heap string per row, and
// comparisons that stay in the run's own array).
void WriteRunKey(char* out, std::string_view patient, std::string_view audit_key,
                 uint64_t hub_seq) {
  out[0] = kEntryTag;
  std::memcpy(out + 1, patient.data(), PatientHasher::kKeyBytes);
  std::memcpy(out + kRunPrefixBytes, audit_key.data(), kAuditKeyBytes);
  std::memcpy(out + kRunPrefixBytes + kAuditKeyBytes, EncodeSeq(hub_seq).data(), 8);
}

// One sorted row of a run or of a waiting segment: an entry to add, or one to take out. The
// entry's bytes are in its segment's `entries`, where the row says.
struct RunRow {
  char key[kRunKeyBytes];
  bool retract;
  uint32_t entry_offset;
  uint32_t entry_size;
  uint64_t number;  // the journal record it comes from
  rocksdb::Slice key_slice() const { return rocksdb::Slice(key, kRunKeyBytes); }
};

// Run order: by key; where a key is both filed and retracted, the retraction first, so it is
// the one kept (the filing may be in an earlier run already).
bool RowBefore(const RunRow& a, const RunRow& b) {
  const int c = std::memcmp(a.key, b.key, kRunKeyBytes);
  return c != 0 ? c < 0 : a.retract > b.retract;
}

bool SameKey(const RunRow& a, const RunRow& b) {
  return std::memcmp(a.key, b.key, kRunKeyBytes) == 0;
}

}  // namespace

// Journal records [first, last], parsed and sorted in memory: what waits for the next run.
// Immutable once built, so reports read it without a lock; a run writes whole segments.
struct DisclosureIndex::Segment {
  uint64_t first = 0;
  uint64_t last = 0;
  std::vector<RunRow> rows;  // sorted by RowBefore
  std::string entries;       // the filings' DisclosureEntry bytes, back to back
  size_t bytes = 0;          // the memory held

  std::string_view EntryOf(const RunRow& row) const {
    return std::string_view(entries).substr(row.entry_offset, row.entry_size);
  }
};

// ---- the run index ------------------------------------------------------------------------------

// The node's own RocksDB database of sorted runs (header comment). Thread-safety: reads from any
// thread; Add under run_mu (one run at a time).
class DisclosureIndex::RunIndex {
 public:
  struct Cursor {
    uint64_t number = 0;  // the last journal number indexed; 0: none
    std::string digest;   // RecordDigest of that record
  };

  static Result<std::unique_ptr<RunIndex>> Open(const std::filesystem::path& dir, rocksdb::Env* env,
                                                const std::shared_ptr<rocksdb::Cache>& cache) {
    std::unique_ptr<RunIndex> index(new RunIndex(dir));
    // RocksDB would log an error for the missing directory before creating it.
    rocksdb::Env* store_env = env ? env : rocksdb::Env::Default();
    if (auto s = store_env->CreateDirIfMissing(dir.string()); !s.ok()) {
      return FromRocks(s, "create the disclosure run index's directory");
    }
    index->options_.create_if_missing = true;
    index->options_.env = store_env;
    index->options_.info_log = std::make_shared<SpdlogRocksLogger>(StoreLog());
    index->options_.keep_log_file_num = 2;
    index->options_.prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(kRunPrefixBytes));
    // Runs are written uncompressed, as the store's own flushes are (database.cc): compaction
    // reads them soon and compresses what it writes below.
    index->options_.compression_per_level = {rocksdb::kNoCompression, rocksdb::kSnappyCompression};
    rocksdb::BlockBasedTableOptions t;
    t.block_cache = cache;
    // A report seeks one patient's prefix in every run not merged yet: a prefix filter lets it
    // skip the runs that hold nothing of that patient without reading a block of them.
    t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10, false));
    t.whole_key_filtering = false;
    index->options_.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
    // The writer takes the last level's compression when levels have their own: runs are level 0.
    index->run_options_ = index->options_;
    index->run_options_.compression_per_level.clear();
    index->run_options_.compression = rocksdb::kNoCompression;
    rocksdb::DB* raw = nullptr;
    auto s = rocksdb::DB::Open(index->options_, dir.string(), &raw);
    if (!s.ok()) {
      return FromRocks(s, "open the disclosure run index");
    }
    index->db_.reset(raw);
    auto cursor = index->ReadCursor(nullptr);
    if (!cursor.ok()) {
      return cursor.status();
    }
    MutexLock lock(index->run_mu_);
    index->cursor_ = std::move(cursor).value();
    index->indexed_to_.store(index->cursor_.number);
    return index;
  }

  // Closes the database and deletes it.
  static Status Destroy(std::unique_ptr<RunIndex> index) {
    const std::filesystem::path dir = index->dir_;
    const rocksdb::Options options = index->options_;
    index.reset();
    return FromRocks(rocksdb::DestroyDB(dir.string(), options), "delete the disclosure run index");
  }

  rocksdb::DB* db() const { return db_.get(); }
  uint64_t indexed_to() const { return indexed_to_.load(); }
  Mutex& run_mu() CAREHUB_RETURN_CAPABILITY(run_mu_) { return run_mu_; }
  const Cursor& cursor() const CAREHUB_REQUIRES(run_mu_) { return cursor_; }

  Result<Cursor> ReadCursor(const rocksdb::Snapshot* snapshot) const {
    rocksdb::ReadOptions ro;
    ro.snapshot = snapshot;
    std::string value;
    auto s = db_->Get(ro, std::string(1, kCursorTag), &value);
    if (s.IsNotFound()) {
      return Cursor{};
    }
    if (!s.ok()) {
      return FromRocks(s, "read the disclosure run index's cursor");
    }
    if (value.size() != 8 + 16) {
      return Status::Error("store_corrupt", "the disclosure run index's cursor is malformed");
    }
    return Cursor{DecodeSeq(value), value.substr(8)};
  }

  // Writes the rows of `segments` (each sorted by RowBefore), merged, each key once, and the
  // cursor as one table file and adds it: both or neither. Re-adding the same journal records is
  // harmless (same keys, same values).
  Status Add(const std::vector<std::shared_ptr<const Segment>>& segments, Cursor cursor)
      CAREHUB_REQUIRES(run_mu_) {
    const std::string path = (dir_ / ("run-" + std::to_string(cursor.number) + ".sst")).string();
    // Written back as it goes, so the sync at its end is short: a run's megabytes synced at once
    // would queue the write-ahead log's syncs behind them on the same disk.
    rocksdb::EnvOptions env_options;
    env_options.bytes_per_sync = 1 << 20;
    // The pages are kept: reports read a run as soon as it is added (SstFileWriter would drop
    // them from the page cache by default, and every report then read the new run from disk:
    // 60-130 ms on this VM's disk under load, docs/performance.md 2026-12-06 20:00).
    rocksdb::SstFileWriter writer(env_options, run_options_, /*column_family=*/nullptr,
                                  /*invalidate_page_cache=*/false);
    auto s = writer.Open(path);
    // A k-way merge straight into the file: a heap of the segments' next rows, smallest on top.
    struct Next {
      const RunRow* row;
      const RunRow* end;
      const Segment* segment;
    };
    auto later = [](const Next& a, const Next& b) { return RowBefore(*b.row, *a.row); };
    std::vector<Next> heap;
    for (const auto& segment : segments) {
      if (!segment->rows.empty()) {
        heap.push_back(
            {segment->rows.data(), segment->rows.data() + segment->rows.size(), segment.get()});
      }
    }
    std::make_heap(heap.begin(), heap.end(), later);
    const RunRow* written = nullptr;
    while (s.ok() && !heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), later);
      const Segment* segment = heap.back().segment;
      const RunRow* row = heap.back().row++;
      if (heap.back().row == heap.back().end) {
        heap.pop_back();
      } else {
        std::push_heap(heap.begin(), heap.end(), later);
      }
      if (written != nullptr && SameKey(*written, *row)) {
        continue;  // a key filed and retracted: the retraction came first (RowBefore)
      }
      s = row->retract ? writer.Delete(row->key_slice())
                       : writer.Put(row->key_slice(), AsSlice(segment->EntryOf(*row)));
      written = row;
    }
    if (s.ok()) {
      s = writer.Put(std::string(1, kCursorTag), EncodeSeq(cursor.number) + cursor.digest);
    }
    if (s.ok()) {
      s = writer.Finish();
    }
    if (s.ok()) {
      rocksdb::IngestExternalFileOptions ingest;
      ingest.move_files = true;           // the file is ours, on the same filesystem
      ingest.write_global_seqno = false;  // kept in the manifest, not by rewriting the file
      s = db_->IngestExternalFile({path}, ingest);
    }
    if (!s.ok()) {
      (void)options_.env->DeleteFile(path);  // a run that was not added leaves nothing behind
      return FromRocks(s, "add a disclosure run");
    }
    cursor_ = std::move(cursor);
    indexed_to_.store(cursor_.number);
    return Status::Ok();
  }

 private:
  explicit RunIndex(std::filesystem::path dir) : dir_(std::move(dir)) {}

  const std::filesystem::path dir_;
  rocksdb::Options options_;
  rocksdb::Options run_options_;  // the table files of runs (SstFileWriter)
  std::unique_ptr<rocksdb::DB> db_;
  Mutex run_mu_;
  Cursor cursor_ CAREHUB_GUARDED_BY(run_mu_);
  std::atomic<uint64_t> indexed_to_{0};
};

// ---- DisclosureIndex ----------------------------------------------------------------------------

DisclosureIndex::DisclosureIndex(Database* db) : db_(db) {}

DisclosureIndex::~DisclosureIndex() {
  stopping_.store(true);  // a rebuild of a large journal stops between runs
  {
    MutexLock lock(wake_mu_);
    stop_ = true;
  }
  wake_cv_.NotifyAll();
  if (thread_.joinable()) {
    thread_.join();
  }
}

Status DisclosureIndex::OpenRunIndex() {
  const std::filesystem::path dir = db_->options().dir / "disclosure-index";
  auto opened = RunIndex::Open(dir, db_->options().env, db_->block_cache());
  if (!opened.ok()) {
    return opened.status();
  }
  std::unique_ptr<RunIndex> index = std::move(opened).value();
  // The journal record the cursor names must still be the one it indexed.
  uint64_t number = 0;
  std::string digest;
  {
    MutexLock lock(index->run_mu());
    number = index->cursor().number;
    digest = index->cursor().digest;
  }
  if (number > 0) {
    auto journal = ReadJournalDigest(*db_, number);
    if (!journal.ok()) {
      return journal.status();
    }
    if (journal.value() != digest) {  // also when the journal has no such record
      StoreLog()->warn(
          "the disclosure run index in {} does not match this store's journal (record {}): "
          "rebuilding it from the journal",
          dir.string(), number);
      CAREHUB_RETURN_IF_ERROR(RunIndex::Destroy(std::move(index)));
      opened = RunIndex::Open(dir, db_->options().env, db_->block_cache());
      if (!opened.ok()) {
        return opened.status();
      }
      index = std::move(opened).value();
      rebuilds_.fetch_add(1);
    }
  }
  runs_ = std::move(index);
  return Status::Ok();
}

void DisclosureIndex::StartBackgroundRuns(std::chrono::milliseconds interval) {
  thread_ = std::thread([this, interval] { BackgroundRuns(interval); });
}

void DisclosureIndex::BackgroundRuns(std::chrono::milliseconds interval) {
  pthread_setname_np(pthread_self(), "carehub-dindex");
  const auto sort_every = std::min<std::chrono::milliseconds>(interval, kSortInterval);
  // The first run at once: what a restart left waiting, or a whole journal after the index was
  // rebuilt, is indexed now rather than read by every report until the interval has passed.
  auto next_run = std::chrono::steady_clock::now();
  auto next_sort = next_run;
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    const bool run = now >= next_run || waiting_filings_.load() >= kRunFilings;
    if (run || now >= next_sort || unsorted_filings_.load() >= kSortFilings) {
      next_sort = now + sort_every;
      if (run) {
        next_run = now + interval;
      }
      unsorted_filings_.store(0);  // a run sorts the journal first
      const Status s = run ? IndexPending().status() : SortJournal();
      if (!s.ok()) {
        run_errors_.fetch_add(1);
        // The journal keeps what was not indexed; the next try starts from the same cursor.
        StoreLog()->error("disclosure index: {} failed, retrying in {} ms: {}",
                          run ? "a run" : "sorting the journal", interval.count(), s.ToString());
        next_sort = next_run = now + interval;
      }
    }
    MutexLock lock(wake_mu_);
    const auto deadline = std::min(next_run, next_sort);
    while (!stop_ && unsorted_filings_.load() < kSortFilings &&
           wake_cv_.WaitUntil(wake_mu_, deadline) != std::cv_status::timeout) {
    }
    if (stop_) {
      return;
    }
  }
}

Status DisclosureIndex::File(WriteBatch* batch, std::string_view audit_key,
                             const DisclosureFilings& filings) {
  CAREHUB_RETURN_IF_ERROR(AddJournalRecord(batch, kFiled, audit_key, filings));
  const size_t before = unsorted_filings_.fetch_add(filings.count());
  if (before < kSortFilings && before + filings.count() >= kSortFilings) {
    wake_cv_.NotifyAll();
  }
  return Status::Ok();
}

Status DisclosureIndex::Retract(WriteBatch* batch, std::string_view audit_key,
                                const DisclosureFilings& filings) {
  return AddJournalRecord(batch, kRetracted, audit_key, filings);
}

Status DisclosureIndex::AddJournalRecord(WriteBatch* batch, char kind, std::string_view audit_key,
                                         const DisclosureFilings& filings) {
  if (filings.count() == 0) {
    return Status::Ok();
  }
  // The next number after the last committed: read each time (once per delivery round, not per
  // delivery) rather than cached, so a store that was a standby meanwhile continues its primary's
  // numbering.
  auto last = LastJournalNumber();
  if (!last.ok()) {
    return last.status();
  }
  const std::string key = EncodeSeq(last.value() + 1);
  const char head = kind;
  const rocksdb::Slice value[3] = {rocksdb::Slice(&head, 1), AsSlice(audit_key),
                                   AsSlice(filings.bytes())};
  const rocksdb::Slice key_slice(key);
  RocksBatch(batch)->Put(db_->cf(Column::kDisclosureJournal), rocksdb::SliceParts(&key_slice, 1),
                         rocksdb::SliceParts(value, 3));
  return Status::Ok();
}

Result<std::shared_ptr<const DisclosureIndex::Segment>> DisclosureIndex::ReadSegment(
    uint64_t first, size_t max_filings) const {
  auto segment = std::make_shared<Segment>();
  JournalRecord record;
  Status parse = Status::Ok();
  CAREHUB_RETURN_IF_ERROR(ScanJournal(first, [&](uint64_t number, std::string_view value) {
    parse = ParseJournalRecord(value, &record);
    if (!parse.ok()) {
      return false;
    }
    if (segment->rows.empty()) {
      segment->first = number;
    }
    segment->last = number;
    for (const Filing& f : record.filings) {
      RunRow& row = segment->rows.emplace_back();
      WriteRunKey(row.key, f.patient, record.audit_key, f.hub_seq);
      row.retract = record.kind == kRetracted;
      row.entry_offset = static_cast<uint32_t>(segment->entries.size());
      row.entry_size = static_cast<uint32_t>(f.entry.size());
      row.number = number;
      segment->entries.append(f.entry);
    }
    return segment->rows.size() < max_filings;
  }));
  CAREHUB_RETURN_IF_ERROR(parse);
  if (segment->rows.empty()) {
    return std::shared_ptr<const Segment>();
  }
  std::sort(segment->rows.begin(), segment->rows.end(), RowBefore);
  // Held until its run: not the slack of the buffers' growth.
  segment->rows.shrink_to_fit();
  segment->entries.shrink_to_fit();
  segment->bytes = segment->rows.capacity() * sizeof(RunRow) + segment->entries.capacity();
  return std::shared_ptr<const Segment>(std::move(segment));
}

Status DisclosureIndex::SortJournal(size_t limit) {
  MutexLock run(runs_->run_mu());
  return SortWaiting(limit);
}

Status DisclosureIndex::SortWaiting(size_t limit) {
  for (;;) {
    uint64_t next = 0;
    {
      MutexLock lock(waiting_mu_);
      if (waiting_filings_.load() >= limit) {
        return Status::Ok();
      }
      next = waiting_.empty() ? runs_->indexed_to() + 1 : waiting_.back()->last + 1;
    }
    auto segment = ReadSegment(next, limit - waiting_filings_.load());
    if (!segment.ok()) {
      return segment.status();
    }
    if (!segment.value()) {
      return Status::Ok();  // nothing new in the journal
    }
    MutexLock lock(waiting_mu_);
    waiting_filings_.fetch_add(segment.value()->rows.size());
    const size_t bytes = waiting_bytes_.fetch_add(segment.value()->bytes) + segment.value()->bytes;
    if (bytes > waiting_bytes_peak_.load()) {
      waiting_bytes_peak_.store(bytes);  // one writer: the run lock's holder
    }
    waiting_.push_back(std::move(segment).value());
  }
}

Result<uint64_t> DisclosureIndex::IndexPending(size_t run_filings) {
  MutexLock run(runs_->run_mu());
  uint64_t indexed = 0;
  for (;;) {
    CAREHUB_RETURN_IF_ERROR(SortWaiting(run_filings));
    // A run is whole segments from the oldest, so its cursor is a segment's last record.
    std::vector<std::shared_ptr<const Segment>> take;
    size_t filings = 0;
    size_t bytes = 0;
    {
      MutexLock lock(waiting_mu_);
      for (const auto& segment : waiting_) {
        if (!take.empty() && filings >= run_filings) {
          break;
        }
        take.push_back(segment);
        filings += segment->rows.size();
        bytes += segment->bytes;
      }
    }
    if (take.empty() || stopping_.load()) {
      return indexed;
    }
    // The run's cursor: its last journal record, read again once per run.
    const uint64_t last = take.back()->last;
    auto digest = ReadJournalDigest(*db_, last);
    if (!digest.ok()) {
      return digest.status();
    }
    if (!digest.value()) {  // the journal is kept for good: a record sorted here cannot go
      return Status::Error("store_error", "read the disclosure journal: record " +
                                              std::to_string(last) + " is missing");
    }
    CAREHUB_RETURN_IF_ERROR(runs_->Add(take, {last, *std::move(digest).value()}));
    {
      // Reports that copied the list before this still read the taken segments; those that
      // copy it after read the run.
      MutexLock lock(waiting_mu_);
      waiting_.erase(waiting_.begin(), waiting_.begin() + static_cast<ptrdiff_t>(take.size()));
      waiting_filings_.fetch_sub(filings);
      waiting_bytes_.fetch_sub(bytes);
    }
    runs_added_.fetch_add(1);
    indexed += take.back()->last - take.front()->first + 1;
  }
}

DisclosureIndexStats DisclosureIndex::Stats() const {
  DisclosureIndexStats stats;
  // For metrics: a journal that cannot be read shows as empty here and fails every report.
  auto last = LastJournalNumber();
  stats.journal_last = last.ok() ? last.value() : 0;
  stats.indexed_to = runs_ ? runs_->indexed_to() : 0;
  stats.waiting = waiting_filings_.load();
  stats.waiting_bytes = waiting_bytes_.load();
  stats.waiting_bytes_peak = waiting_bytes_peak_.load();
  stats.runs = runs_added_.load();
  stats.run_errors = run_errors_.load();
  stats.rebuilds = rebuilds_.load();
  return stats;
}

Result<std::vector<FoundDisclosure>> DisclosureIndex::ForPatient(
    std::string_view patient_key, int64_t since_ms, int64_t until_ms, size_t limit,
    std::optional<uint64_t> hub_seq) const {
  const uint64_t since = static_cast<uint64_t>(std::max<int64_t>(since_ms, 0));
  const uint64_t until = static_cast<uint64_t>(std::max<int64_t>(until_ms, 0));
  // Entries by (audit key, hub_seq): the order reports list them in, and how a retraction names
  // one.
  std::map<std::pair<std::string, uint64_t>, std::string> found;
  std::set<std::pair<std::string, uint64_t>> retracted;
  auto in_window = [&](std::string_view audit_key, uint64_t seq) {
    const uint64_t at = DecodeSeq(audit_key);
    return at >= since && at <= until && (!hub_seq || seq == *hub_seq);
  };
  auto take = [&](std::string_view audit_key, uint64_t seq, bool retract, std::string_view entry) {
    if (!in_window(audit_key, seq)) {
      return;
    }
    auto key = std::make_pair(std::string(audit_key), seq);
    if (retract) {
      retracted.insert(std::move(key));
    } else {
      found[std::move(key)] = std::string(entry);
    }
  };

  // 1. The run index at a snapshot, and its cursor at the same snapshot.
  rocksdb::DB* runs = runs_->db();
  const rocksdb::Snapshot* snapshot = runs->GetSnapshot();
  struct Release {
    rocksdb::DB* db;
    const rocksdb::Snapshot* s;
    ~Release() { db->ReleaseSnapshot(s); }
  } release{runs, snapshot};
  auto cursor = runs_->ReadCursor(snapshot);
  if (!cursor.ok()) {
    return cursor.status();
  }

  // 2. What waits for a run past that cursor (read after the snapshot: a run added meanwhile
  // still waits, or is still in the journal): the sorted segments, by binary search, and the
  // journal around them.
  std::vector<std::shared_ptr<const Segment>> waiting;
  {
    MutexLock lock(waiting_mu_);
    waiting = waiting_;
  }
  JournalRecord record;
  Status parse = Status::Ok();
  auto scan_journal = [&](uint64_t first, uint64_t last) -> Status {
    CAREHUB_RETURN_IF_ERROR(ScanJournal(first, [&](uint64_t number, std::string_view value) {
      if (number > last) {
        return false;
      }
      parse = ParseJournalRecord(value, &record);
      for (size_t i = 0; parse.ok() && i < record.filings.size(); ++i) {
        const Filing& f = record.filings[i];
        if (f.patient == patient_key) {
          take(record.audit_key, f.hub_seq, record.kind == kRetracted, f.entry);
        }
      }
      return parse.ok();
    }));
    return parse;
  };
  char probe[kRunKeyBytes];
  WriteRunKey(probe, patient_key, EncodeSeq(since) + std::string(8, '\0'), 0);
  // Every record up to `covered` is read. A run takes whole segments, so a segment lies wholly
  // before or after any cursor.
  uint64_t covered = cursor.value().number;
  for (const auto& segment : waiting) {
    if (segment->last <= covered) {
      continue;  // in the run index's snapshot already
    }
    if (segment->first > covered + 1) {  // segments taken by a run added since the snapshot
      CAREHUB_RETURN_IF_ERROR(scan_journal(covered + 1, segment->first - 1));
    }
    auto row = std::lower_bound(
        segment->rows.begin(), segment->rows.end(), probe,
        [](const RunRow& r, const char* key) { return std::memcmp(r.key, key, kRunKeyBytes) < 0; });
    for (; row != segment->rows.end() && std::memcmp(row->key, probe, kRunPrefixBytes) == 0;
         ++row) {
      const std::string_view audit_key(row->key + kRunPrefixBytes, kAuditKeyBytes);
      if (DecodeSeq(audit_key) > until) {
        break;
      }
      take(audit_key, DecodeSeq(std::string_view(row->key + kRunPrefixBytes + kAuditKeyBytes, 8)),
           row->retract, segment->EntryOf(*row));
    }
    covered = segment->last;
  }
  CAREHUB_RETURN_IF_ERROR(scan_journal(covered + 1, UINT64_MAX));
  // Enough of the older entries that `limit` remain once the retracted ones are taken out.
  const size_t want = limit + retracted.size();

  // 3. The run index, then the legacy family: prefix + audit key range, oldest first.
  auto read_prefix = [&](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf,
                         const rocksdb::Snapshot* snap, std::string prefix) -> Status {
    const std::string start = prefix + EncodeSeq(since);
    const std::string end = prefix + EncodeSeq(until + 1);
    rocksdb::Slice upper(end);
    rocksdb::ReadOptions ro;
    ro.snapshot = snap;
    ro.iterate_upper_bound = &upper;
    ro.prefix_same_as_start = true;  // one patient: each family's prefix is the patient
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, cf));
    size_t read = 0;
    for (it->Seek(start); it->Valid() && read < want; it->Next()) {
      const std::string_view key = it->key().ToStringView();
      if (key.size() != prefix.size() + kAuditKeyBytes + 8) {
        return Status::Error("store_corrupt", "a disclosure index key has the wrong size");
      }
      const uint64_t seq = DecodeSeq(key.substr(prefix.size() + kAuditKeyBytes));
      if (hub_seq && seq != *hub_seq) {
        continue;
      }
      found.emplace(std::make_pair(std::string(key.substr(prefix.size(), kAuditKeyBytes)), seq),
                    std::string(it->value().ToStringView()));
      ++read;
    }
    return FromRocks(it->status(), "read the disclosure index");
  };
  CAREHUB_RETURN_IF_ERROR(read_prefix(runs, runs->DefaultColumnFamily(), snapshot,
                                      std::string(1, kEntryTag) + std::string(patient_key)));
  CAREHUB_RETURN_IF_ERROR(
      read_prefix(db_->db(), db_->cf(Column::kDisclosure), nullptr, std::string(patient_key)));

  std::vector<FoundDisclosure> out;
  for (const auto& [key, entry] : found) {
    if (out.size() >= limit) {
      break;
    }
    if (retracted.count(key)) {
      continue;
    }
    FoundDisclosure f;
    f.audit_key = key.first;
    f.at_unix_ms = static_cast<int64_t>(DecodeSeq(key.first));
    f.hub_seq = key.second;
    if (!f.entry.ParseFromArray(entry.data(), static_cast<int>(entry.size()))) {
      return Status::Error("store_corrupt", "a disclosure index entry does not decode");
    }
    out.push_back(std::move(f));
  }
  return out;
}

Status DisclosureIndex::ScanFilings(
    const std::function<bool(std::string_view audit_key, uint64_t hub_seq, bool retracted)>& fn)
    const {
  JournalRecord record;
  Status parse = Status::Ok();
  bool more = true;
  CAREHUB_RETURN_IF_ERROR(ScanJournal(1, [&](uint64_t, std::string_view value) {
    parse = ParseJournalRecord(value, &record);
    for (size_t i = 0; parse.ok() && more && i < record.filings.size(); ++i) {
      more = fn(record.audit_key, record.filings[i].hub_seq, record.kind == kRetracted);
    }
    return parse.ok() && more;
  }));
  return parse;
}

Result<uint64_t> DisclosureIndex::LastJournalNumber() const {
  std::unique_ptr<rocksdb::Iterator> it(
      db_->db()->NewIterator({}, db_->cf(Column::kDisclosureJournal)));
  it->SeekToLast();
  CAREHUB_RETURN_IF_ERROR(FromRocks(it->status(), "read the disclosure journal"));
  return it->Valid() ? DecodeSeq(it->key().ToStringView()) : 0;
}

Status DisclosureIndex::ScanJournal(
    uint64_t first, const std::function<bool(uint64_t number, std::string_view value)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it(
      db_->db()->NewIterator({}, db_->cf(Column::kDisclosureJournal)));
  for (it->Seek(EncodeSeq(first)); it->Valid(); it->Next()) {
    if (!fn(DecodeSeq(it->key().ToStringView()), it->value().ToStringView())) {
      break;
    }
  }
  return FromRocks(it->status(), "read the disclosure journal");
}

}  // namespace carehub::hub
