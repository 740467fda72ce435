#pragma once
// The dedup column family's compaction filter (defined beside the value layout it reads, in
// dedup_index.cc): drops keys first received more than `window_days` ago, so the index does not
// grow forever and no sweep has to read it (DESIGN §4: window default 400 days).
//
// One per store (it carries that store's window and clock); RocksDB calls it from compaction
// threads, so the filter is thread-safe and must outlive the database.

#include <rocksdb/compaction_filter.h>

#include <cstdint>
#include <memory>

#include "carehub/core/clock.h"

namespace carehub::hub {

std::unique_ptr<rocksdb::CompactionFilter> NewDedupExpiryFilter(uint32_t window_days,
                                                                const Clock& clock);

}  // namespace carehub::hub
