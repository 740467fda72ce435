#pragma once
// The disclosure index: which delivery batches disclosed data about a patient, so "who received
// data about this patient?" and "who received this event?" are answered by reading one key
// prefix, not by scanning the audit trail or the log. Three places hold it:
//
//   journal   column family "disclosure_journal" of the store: one record per delivery batch,
//             written by the delivery path in the same write as the batch's audit record, so each
//             filing is exactly as durable as that record, and replicated with it.
//               key    journal number (8 BE): 1, 2, 3... in commit order
//               value  'F' (filed) or 'R' (retracted: a batch audited but then not sent)
//                      + audit key (16) + per filing, in protobuf's varint and length-
//                      prefixed encodings (event_codec.h, wire_reader.h): the patient key, hub_seq,
//                      the v1::DisclosureEntry ('R': empty)
//   run index a RocksDB database of this node alone, "disclosure-index/" in the store's directory,
//             built from the journal off the delivery path: a run of journal records at a time,
//             sorted here and added as one table file (SstFileWriter, IngestExternalFile). It is
//             derived, never replicated (a standby builds its own from its replicated journal) and
//             rebuilt from the journal when missing or when it does not match the journal (a full
//             copy replaced the store).
//               key    'p' + patient key (16) + audit key (16) + hub_seq (8 BE) -> DisclosureEntry
//               key    'z' -> the last journal number indexed (8 BE) + a hash of its record (16)
//   legacy    column family "disclosure": entries filed one per delivery by store formats before
//             3, key patient key + audit key + hub_seq; read, never written.
//
// Why a journal and runs, not one random insert per delivery: the patient key is random, and
// ordering random keys in RocksDB's memtable cost ~3.5-4 of the ~8-9 us of hub CPU a delivery
// took (docs/performance.md, 2026-12-06 14:10); sorting a run of compact records here is a small
// fraction of that and off the delivery thread.
//
// A patient key is a keyed BLAKE2b-128 of the patient's identifier (PatientHasher): the NHS
// number is never in clear here, and without the key — 32 random bytes in "meta", written once by
// the first primary and replicated like any other write — a dictionary of every possible NHS
// number cannot reverse an entry. A patient without an NHS number is keyed by the local MRN and the
// ODS code that assigned it. An A40 merge is filed under both patients it names.
//
// Between runs, the same thread sorts the journal's new records, a few thousand filings at a
// time, into segments held in memory (what waits for the next run, up to a run's worth): each
// filing a 64-byte row of its run key, and its entry's bytes. A run merges whole segments into
// its table file rather than parsing and sorting the journal again.
//
// Reads (ForPatient) see every committed filing: the legacy family, the run index, and what is
// past the run index's cursor — the waiting segments, found by binary search, and the journal
// records not sorted yet (about kSortFilings while the background runs go), read in
// that order so a run added meanwhile is seen in one of them. Kept for good, like the audit trail
// (retention cuts events, not the record of their disclosure).
//
// Errors: reads fail as a whole when RocksDB fails, never with a shorter list; "store_corrupt" for
// a record or entry that does not decode. Hasher() is "no_index_key" until EnsureKey() ran on a
// primary. IndexPending() returns the error that stopped a run; nothing indexed is lost by it (the
// journal still holds it), and the next run starts from the same cursor.
//
// Thread-safety: every method may be called from any thread, except that File and Retract have one
// writer at a time (the delivery thread): each takes the next journal number from the last
// committed one, so the caller commits before the next call. Runs are serialized internally.
// Does not own the Database.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "carehub/core/mutex.h"
#include "carehub/core/status.h"
#include "carehub/hub/store/write_batch.h"
#include "carehub/v1/event.pb.h"
#include "carehub/v1/store.pb.h"

namespace carehub::hub {

class Database;

// Computes patient keys. Copyable, immutable, thread-safe.
class PatientHasher {
 public:
  static constexpr size_t kKeyBytes = 16;
  explicit PatientHasher(const std::array<unsigned char, 32>& secret) : secret_(secret) {}

  // The key of a patient known by NHS number (digits only, as stored).
  std::string ForNhsNumber(std::string_view nhs_number) const;
  // The key of a patient known only by a local MRN and the ODS code that assigned it.
  std::string ForLocalMrn(std::string_view assigning_ods, std::string_view mrn) const;
  // Appends the keys of the patients `event` concerns (its patient; an A40 merge's merged patient
  // too), each once; none when it names no patient.
  void KeysOf(const v1::Event& event, std::vector<std::string>* out) const;

 private:
  std::string Hash(std::string_view kind, std::string_view a, std::string_view b) const;
  std::array<unsigned char, 32> secret_;
};

// Appends a serialized v1::DisclosureEntry with these fields to `out` (wire format, the fields in
// number order, empty ones left out: what protobuf's own serializer writes).
void AppendDisclosureEntry(std::string* out, std::string_view agreement,
                           std::string_view field_level, std::string_view event_type,
                           std::string_view publisher_ods, std::string_view event_id);

// The audit key of a record (AuditLog): at_unix_ms (8 BE) + counter (8 BE).
inline constexpr size_t kAuditKeyBytes = 16;

struct FoundDisclosure {
  std::string audit_key;  // the delivery audit record this entry belongs to
  int64_t at_unix_ms = 0;
  uint64_t hub_seq = 0;
  v1::DisclosureEntry entry;
};

// The filings of one delivery batch, packed as a journal record's body (header comment). Reused
// across batches: Clear() keeps the buffer. Not thread-safe.
class DisclosureFilings {
 public:
  void Add(std::string_view patient_key, uint64_t hub_seq, std::string_view entry_bytes);
  void Clear() {
    bytes_.clear();
    count_ = 0;
  }
  size_t count() const { return count_; }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
  size_t count_ = 0;
};

// What the run index has done, for metrics and the status page.
struct DisclosureIndexStats {
  uint64_t journal_last = 0;   // the last journal number committed
  uint64_t indexed_to = 0;     // the last journal number in the run index
  uint64_t waiting = 0;        // filings sorted in memory, waiting for the next run
  uint64_t waiting_bytes = 0;  // the memory they hold (rows and entries), bounded by a run's worth
  uint64_t waiting_bytes_peak = 0;  // the most they have held since open (the allocator keeps it)
  uint64_t runs = 0;                // runs added since open
  uint64_t run_errors = 0;          // runs that failed since open
  uint64_t rebuilds = 0;            // times the run index was found not to match and started over
};

class DisclosureIndex {
 public:
  explicit DisclosureIndex(Database* db);
  // Stops the background runs and closes the run index.
  ~DisclosureIndex();
  DisclosureIndex(const DisclosureIndex&) = delete;
  DisclosureIndex& operator=(const DisclosureIndex&) = delete;

  // Opens (or creates, or rebuilds when it does not match the journal) the run index in
  // `dir`/disclosure-index. Called once by Store::Open before anything else here.
  Status OpenRunIndex();
  // Adds runs on a thread of its own: every `interval`, and sooner once a run's worth of filings
  // waits; between runs, sorts new journal records into waiting segments (kSortFilings,
  // kSortInterval or `interval` when shorter). Stopped by the destructor.
  void StartBackgroundRuns(std::chrono::milliseconds interval);

  // Primary only, at start: creates the hasher's key when the store has none (synced write).
  Status EnsureKey();
  // The hasher, once the store has a key ("no_index_key" before: nothing was ever indexed).
  Result<PatientHasher> Hasher() const;

  // Adds to `batch` the journal record filing `filings` under the delivery audit record
  // `audit_key` (nothing when `filings` is empty). The caller commits `batch` before the next
  // File/Retract. Errors: reading the last journal number; `batch` is then left as it was.
  Status File(WriteBatch* batch, std::string_view audit_key, const DisclosureFilings& filings);
  // As File, for a batch audited under `audit_key` and then not sent: takes its filings out
  // (only the patient keys and seqs of `filings` are used).
  Status Retract(WriteBatch* batch, std::string_view audit_key, const DisclosureFilings& filings);

  // Adds the journal records past the run index's cursor to it, in runs of at most `run_filings`
  // filings; returns how many journal records it indexed. Errors: the store's, or the run
  // index's; see the header comment.
  Result<uint64_t> IndexPending(size_t run_filings = kRunFilings);
  // Sorts the journal records past the waiting segments into new segments, until `limit`
  // filings wait or the journal ends: what the background thread does between runs. Errors: the
  // store's; nothing is lost by them (the journal holds it).
  Status SortJournal(size_t limit = kRunFilings);
  DisclosureIndexStats Stats() const;

  // A patient's entries with since_ms <= at <= until_ms, oldest first (by audit key, then
  // hub_seq), at most `limit`; when `hub_seq` is set, only that event's.
  Result<std::vector<FoundDisclosure>> ForPatient(std::string_view patient_key, int64_t since_ms,
                                                  int64_t until_ms, size_t limit,
                                                  std::optional<uint64_t> hub_seq = {}) const;

  // Every filing in the journal, in journal order, for the offline consistency check: fn(audit
  // key, hub_seq, retracted) until it returns false.
  Status ScanFilings(const std::function<bool(std::string_view audit_key, uint64_t hub_seq,
                                              bool retracted)>& fn) const;

  // A run's size by default: ~64 bytes and the entry's (~50-80) each in memory while they wait.
  static constexpr size_t kRunFilings = 256 * 1024;
  // The background thread sorts new journal records into a waiting segment once this many
  // filings were filed through File, or every kSortInterval: what a report parses of the journal
  // itself stays near a segment's worth, and a report searches a few hundred segments at most.
  static constexpr size_t kSortFilings = 4096;
  static constexpr std::chrono::milliseconds kSortInterval{100};

 private:
  class RunIndex;
  struct Segment;  // journal records' filings sorted in memory, waiting for a run
  Result<std::optional<PatientHasher>> ReadKey() const;
  Status AddJournalRecord(WriteBatch* batch, char kind, std::string_view audit_key,
                          const DisclosureFilings& filings);
  // The number of the last journal record committed; 0 when there is none.
  Result<uint64_t> LastJournalNumber() const;
  // fn(number, value) for each journal record numbered `first` or later, in order, until it
  // returns false. RocksDB's errors are returned.
  Status ScanJournal(uint64_t first,
                     const std::function<bool(uint64_t number, std::string_view value)>& fn) const;
  void BackgroundRuns(std::chrono::milliseconds interval);
  // The journal records from `first` on, until they hold `max_filings` filings, as a segment;
  // null when there are none.
  Result<std::shared_ptr<const Segment>> ReadSegment(uint64_t first, size_t max_filings) const;
  // SortJournal, for a caller that holds the run index's run lock.
  Status SortWaiting(size_t limit);

  Database* db_;
  mutable Mutex mu_;
  mutable std::optional<PatientHasher> hasher_ CAREHUB_GUARDED_BY(mu_);
  std::unique_ptr<RunIndex> runs_;
  std::atomic<uint64_t> runs_added_{0};
  std::atomic<uint64_t> run_errors_{0};
  std::atomic<uint64_t> rebuilds_{0};
  // Segments past the run index's cursor, in journal order, contiguous. Replaced under
  // waiting_mu_ (by the run lock's holder); each segment is immutable, read without a lock.
  mutable Mutex waiting_mu_;
  std::vector<std::shared_ptr<const Segment>> waiting_ CAREHUB_GUARDED_BY(waiting_mu_);
  std::atomic<size_t> waiting_filings_{0};
  std::atomic<size_t> waiting_bytes_{0};
  std::atomic<size_t> waiting_bytes_peak_{0};
  // Filings written through File since the last sort: wakes the background thread early.
  std::atomic<size_t> unsorted_filings_{0};
  Mutex wake_mu_;
  CondVar wake_cv_;
  bool stop_ CAREHUB_GUARDED_BY(wake_mu_) = false;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace carehub::hub
