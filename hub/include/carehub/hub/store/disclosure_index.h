#pragma once
// The disclosure index: which delivery batches disclosed data about a patient (column family
// "disclosure"), so "who received data about this patient?" and "who received this event?" are
// answered by reading one key prefix, not by scanning the audit trail or the log.
//
//   key    patient key (16) + audit key (16: at_unix_ms 8 BE + counter 8 BE) + hub_seq (8 BE)
//   value  v1::DisclosureEntry (agreement, field level, the event's type, publisher and id)
//
// A patient key is a keyed BLAKE2b-128 of the patient's identifier (PatientHasher): the NHS
// number is never in clear here, and without the key — 32 random bytes in "meta", written once by
// the first primary and replicated like any other write — a dictionary of every possible NHS
// number cannot reverse an entry. A patient without an NHS number is keyed by the local MRN and the
// ODS code that assigned it. An A40 merge is filed under both patients it names.
//
// Entries are written by the delivery path in the same batch as the audit record whose key they
// carry (AuditLog::NewKey / AddRecord), so each is exactly as durable as that record and, like the
// audit trail, kept for good (retention cuts events, not the record of their disclosure). A batch
// that was audited but then not sent gets its entries deleted with its "delivery_not_sent" record.
//
// Errors: reads fail as a whole when RocksDB fails, never with a shorter list; "store_corrupt" for
// an entry that does not decode. Hasher() is "no_index_key" until EnsureKey() ran on a primary.
//
// Thread-safety: every method may be called from any thread; the key, once read, never changes.
// Does not own the Database.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
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

class DisclosureIndex {
 public:
  explicit DisclosureIndex(Database* db) : db_(db) {}

  // Primary only, at start: creates the hasher's key when the store has none (synced write).
  Status EnsureKey();
  // The hasher, once the store has a key ("no_index_key" before: nothing was ever indexed).
  Result<PatientHasher> Hasher() const;

  void Add(WriteBatch* batch, std::string_view patient_key, std::string_view audit_key,
           uint64_t hub_seq, const v1::DisclosureEntry& entry);
  // As Add, with the entry already encoded (AppendDisclosureEntry): the delivery path writes one
  // per delivered event and building a message for each was a fifth of its thread (callgrind).
  void AddEncoded(WriteBatch* batch, std::string_view patient_key, std::string_view audit_key,
                  uint64_t hub_seq, std::string_view entry_bytes);
  void Delete(WriteBatch* batch, std::string_view patient_key, std::string_view audit_key,
              uint64_t hub_seq);

  // A patient's entries with since_ms <= at <= until_ms, oldest first, at most `limit`; when
  // `hub_seq` is set, only that event's.
  Result<std::vector<FoundDisclosure>> ForPatient(std::string_view patient_key, int64_t since_ms,
                                                  int64_t until_ms, size_t limit,
                                                  std::optional<uint64_t> hub_seq = {}) const;

 private:
  Result<std::optional<PatientHasher>> ReadKey() const;

  Database* db_;
  mutable Mutex mu_;
  mutable std::optional<PatientHasher> hasher_ CAREHUB_GUARDED_BY(mu_);
};

}  // namespace carehub::hub
