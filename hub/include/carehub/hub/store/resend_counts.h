#pragma once
// How often each stored event was sent again and answered DUPLICATE (column family "resend"), for
// an event's trace: a publisher resending the same event hundreds of times (an outbox that never
// sees its ACK) is a fault to find, and the per-publisher duplicate counter cannot say which event.
//
//   key    DedupKey(publisher, event_id)        (keys.h)
//   value  count (8 BE) + first resend (unix ms, 8 BE) + last resend (unix ms, 8 BE)
//
// Written with RocksDB merges (counts add, first takes the minimum, last the maximum), so the
// ingest path adds one small record per duplicate to the batch it commits anyway and never reads.
// Keys whose last resend is older than the dedup window are dropped by a compaction filter.
//
// Errors: Get fails when the read fails, never "never resent".
//
// Thread-safety: every method may be called from any thread. Does not own the Database.

#include <rocksdb/compaction_filter.h>
#include <rocksdb/merge_operator.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "carehub/core/clock.h"
#include "carehub/core/status.h"
#include "carehub/hub/store/write_batch.h"

namespace carehub::hub {

class Database;

struct Resends {
  uint64_t count = 0;
  int64_t first_unix_ms = 0;
  int64_t last_unix_ms = 0;
};

class ResendCounts {
 public:
  explicit ResendCounts(Database* db) : db_(db) {}

  // One more resend of the event under `dedup_key`, answered at `at_unix_ms`.
  void Add(WriteBatch* batch, std::string_view dedup_key, int64_t at_unix_ms);
  // The resends of the event under `dedup_key`; empty when it was never sent again.
  Result<std::optional<Resends>> Get(std::string_view dedup_key) const;

 private:
  Database* db_;
};

// The column family's merge operator and expiry filter (one per store; the filter must outlive the
// database, RocksDB calls both from its own threads).
std::shared_ptr<rocksdb::MergeOperator> NewResendMergeOperator();
std::unique_ptr<rocksdb::CompactionFilter> NewResendExpiryFilter(uint32_t window_days,
                                                                 const Clock& clock);

}  // namespace carehub::hub
