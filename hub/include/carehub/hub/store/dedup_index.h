#pragma once
// The dedup index: which (publisher, event_id) pairs are stored, under which hub_seq and content
// (column family "dedup").
//
//   key    DedupKey(publisher, event_id)        (keys.h)
//   value  hub_seq (8 BE) + content hash (16) + day first received (4 BE, days since the epoch)
//
// Keys older than the dedup window are dropped by a compaction filter (one per store, with the
// store's clock), so the index does not grow forever and nothing has to sweep it. Its column
// family has bloom filters: most keys looked up at ingest are new, and the filter answers "not
// here" without reading a block.
//
// What a lookup cost is measured on request (DedupLookupCost): the ingest pipeline exports it as
// metrics, so an operator (and carehub-bench) can see whether the index answers from memory or
// reads blocks from its files, and for which keys.
//
// Errors: Lookup fails as a whole when any read fails — a failed read is never a miss, because a
// miss makes a resend ACCEPTED a second time. The caller answers RETRY and stores nothing.
//
// Thread-safety: every method may be called from any thread. Does not own the Database.

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "carehub/core/status.h"
#include "carehub/hub/store/event_codec.h"
#include "carehub/hub/store/write_batch.h"

namespace carehub::hub {

class Database;

struct DedupEntry {
  uint64_t hub_seq = 0;
  ContentHash hash{};
  uint32_t day = 0;  // days since epoch when first received; used to expire the key
};

// The value layout above; DecodeDedupValue is empty for a value of the wrong size.
std::string EncodeDedupValue(const DedupEntry& entry);
std::optional<DedupEntry> DecodeDedupValue(std::string_view value);

// What one Lookup cost. Blocks counted are those read from the files (block-cache misses; a read
// the OS page cache answers counts too), from RocksDB's perf context of the calling thread.
struct DedupLookupCost {
  uint64_t keys = 0;   // looked up
  uint64_t found = 0;  // of them stored (in any state of expiry: the caller applies the window)
  uint64_t data_blocks_read = 0;
  uint64_t index_blocks_read = 0;
  uint64_t filter_blocks_read = 0;
  std::chrono::nanoseconds elapsed{0};  // wall time of the lookup
};

class DedupIndex {
 public:
  explicit DedupIndex(Database* db) : db_(db) {}

  // result[i] is the entry of keys[i], or empty when keys[i] is not stored. With `cost`, also
  // measures the lookup into it (overwritten; left unspecified on error). Counting raises the
  // calling thread's RocksDB perf level to kEnableCount for the call when it is lower, and puts
  // it back after.
  Result<std::vector<std::optional<DedupEntry>>> Lookup(std::span<const std::string_view> keys,
                                                        DedupLookupCost* cost = nullptr) const;
  Result<std::vector<std::optional<DedupEntry>>> Lookup(const std::vector<std::string>& keys) const;
  void Add(WriteBatch* batch, std::string_view key, const DedupEntry& entry);
  // RocksDB's estimate.
  uint64_t ApproximateKeys() const;
  // The shape of the index on disk, for benchmarks: SST files per level ("L0 3, L1 4, L2 31").
  std::string LevelShape() const;

 private:
  Database* db_;
};

}  // namespace carehub::hub
