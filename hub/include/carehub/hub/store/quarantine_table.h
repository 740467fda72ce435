#pragma once
// Quarantine: what the hub refused, with the raw bytes to diagnose it and the outcome of any
// replay (column family "quarantine").
//
//   key    record id (8 BE), assigned in order by NextId()
//   value  v1::QuarantineRecord
//
// Records are added in the same batch as the events they were refused beside (Add) and counted once
// that batch is committed (NoteCommitted), so Count() never includes a record a failed commit
// dropped. A replay overwrites the record with its outcome (Put, synced).
//
// Lifecycle: a record is open when stored; Close() moves it to "replayed", "resolved" or
// "dismissed" (with who, when, why) and OpenCount() drops by one. Closing is serialised inside
// the table, so two operators closing one record at once close it once.
//
// Errors: reads fail when the read fails; Get's empty optional means no record with that id.
//
// Thread-safety: every method may be called from any thread. Does not own the Database.

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "carehub/core/mutex.h"
#include "carehub/core/status.h"
#include "carehub/hub/store/write_batch.h"
#include "carehub/v1/store.pb.h"

namespace carehub::hub {

class Database;

class QuarantineTable {
 public:
  explicit QuarantineTable(Database* db) : db_(db) {}

  // Reads the record count, their bytes and the next id (at open).
  Status Load();

  uint64_t NextId() { return next_id_.fetch_add(1); }
  void Add(WriteBatch* batch, const v1::QuarantineRecord& record);
  // `records` of `bytes` (serialized) reached the store.
  void NoteCommitted(uint64_t records, uint64_t bytes) {
    count_.fetch_add(records);
    bytes_.fetch_add(bytes);
    open_.fetch_add(records);  // a new record is open
  }
  uint64_t Count() const { return count_.load(); }
  // Serialized bytes of every record (what the quarantine's size limit counts).
  uint64_t Bytes() const { return bytes_.load(); }

  // Records with id > after_id, in id order, at most `limit`.
  Result<std::vector<v1::QuarantineRecord>> List(uint64_t after_id, size_t limit) const;
  Result<std::optional<v1::QuarantineRecord>> Get(uint64_t id) const;
  // Overwrites (a replay's outcome), synced.
  Status Put(const v1::QuarantineRecord& record);

  // Records nobody has replayed, resolved or dismissed yet.
  uint64_t OpenCount() const { return open_.load(); }
  static bool IsOpen(const v1::QuarantineRecord& record) {
    return record.state().empty() || record.state() == "open";
  }
  // Closes record `id` as `state` ("replayed", "resolved", "dismissed"), synced. `update` may
  // change other fields first (a replay's outcome). Errors: "not_found", "not_open" (already
  // closed: the record as it is comes back in the message), or the store's.
  Result<v1::QuarantineRecord> Close(uint64_t id, const std::string& state, const std::string& by,
                                     int64_t at_unix_ms, const std::string& note,
                                     const std::function<void(v1::QuarantineRecord&)>& update = {});

 private:
  Database* db_;
  std::atomic<uint64_t> next_id_{1};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> bytes_{0};
  std::atomic<uint64_t> open_{0};
  Mutex close_mu_;  // one Close at a time: read, check open, write
};

}  // namespace carehub::hub
