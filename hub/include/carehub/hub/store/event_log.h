#pragma once
// The event log: every accepted event, in hub_seq order (column family "events").
//
//   key    hub_seq, 8-byte big-endian
//   value  the stored record: canonical v1::Event bytes + hub fields (see event_codec.h)
//
// hub_seq is assigned by the single ingest thread and grows with received_at; it can have gaps (a
// failed commit, retention at the front). Retention deletes whole ranges at the front
// (DeleteBefore), never the newest event: LastSeq() is where hub_seq resumes after a restart.
//
// Errors: a read that fails is an error Status ("store_io_error", "store_corrupt", "store_error"),
// never an absent value — "not stored" is an empty optional or a skipped seq, and only that.
// Reads verify block checksums: a flipped bit on disk must be an error, not a different event
// (docs/reliability.md has the measured cost).
//
// Thread-safety: every method may be called from any thread. Does not own the Database.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "carehub/core/status.h"
#include "carehub/hub/store/write_batch.h"
#include "carehub/v1/event.pb.h"

namespace carehub::hub {

class Database;
class RouteIndex;

class EventLog {
 public:
  explicit EventLog(Database* db) : db_(db) {}

  // Adds the stored record of `hub_seq` to `batch`.
  void Add(WriteBatch* batch, uint64_t hub_seq, std::string_view stored_bytes);

  // The highest / lowest hub_seq stored (0 when the log is empty).
  Result<uint64_t> LastSeq() const;
  Result<uint64_t> FirstSeq() const;
  struct SeqRange {
    uint64_t first = 0;  // 0 when empty
    uint64_t last = 0;
  };
  Result<SeqRange> Range() const;

  // The event at `hub_seq`, or an empty optional when none is stored there.
  Result<std::optional<v1::Event>> Get(uint64_t hub_seq) const;

  // Calls fn(seq, bytes) for stored events with seq in [from, to], in order, until fn returns
  // false. An error ends the scan and is returned; fn has then seen only events before the
  // failure, so the caller can retry from after the last seq it saw.
  Status Scan(uint64_t from, uint64_t to,
              const std::function<bool(uint64_t, std::string_view)>& fn) const;

  // The stored bytes of each seq, in the order asked; an empty string where none is stored.
  Result<std::vector<std::string>> MultiGet(const std::vector<uint64_t>& seqs) const;

  // The first hub_seq whose received_at >= unix_ms (LastSeq()+1 when none; 1 when empty), by a
  // binary search over the log.
  Result<uint64_t> SeqAtTime(int64_t unix_ms) const;

  // Deletes the events received before `unix_ms`, and their entries in `routes`, in one synced
  // write; keeps the newest event whatever its age. Returns how many seqs were cut.
  Result<uint64_t> DeleteBefore(int64_t unix_ms, const RouteIndex& routes);

  // (last - first + 1): exact unless retention or failed commits left gaps.
  Result<uint64_t> ApproximateCount() const;

 private:
  Result<uint64_t> EdgeSeq(bool last) const;
  Database* db_;
};

}  // namespace carehub::hub
