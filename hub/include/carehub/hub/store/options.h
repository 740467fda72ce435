#pragma once
// How a store is opened (Store::Open), and what it reports of its upkeep. Plain data.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>

#include "carehub/core/clock.h"

namespace rocksdb {
class Env;
}  // namespace rocksdb

namespace carehub::hub {

struct StoreOptions {
  std::filesystem::path dir;
  // Dedup keys older than this are dropped during compaction.
  uint32_t dedup_window_days = 400;
  size_t block_cache_bytes = 256ull << 20;
  size_t write_buffer_bytes = 64ull << 20;
  // Writes are refused (RETRY) while the data filesystem has less than this free, so RocksDB never
  // runs into a full disk itself (its write-ahead log does not recover cleanly from ENOSPC) and
  // flushes and compactions keep room to finish. 0: min(256 MiB, 2% of the filesystem).
  uint64_t min_free_disk_bytes = 0;
  // Write-ahead log recovery at open. By default a damaged record is tolerated only at the very end
  // of the log (a write the crash cut short, never acknowledged); damage with intact writes after
  // it refuses the open (error code "store_wal_corrupt"), because starting would silently drop
  // acknowledged events. `salvage_wal` (the operator's recovery, docs/reliability.md) skips every
  // damaged record and keeps every intact one, or, where RocksDB cannot go on past the damage,
  // every write before it.
  bool salvage_wal = false;
  // Tells the day for dedup-key expiry and the time of the store's own records. Not owned; must
  // outlive the store. Null: the system clock.
  const Clock* clock = nullptr;
  // The storage environment. Tests inject faults (failed reads, lost unsynced writes) through
  // RocksDB's public Env/FileSystem wrappers here; the store itself stays real. Not owned; must
  // outlive the store. Null: the default environment (the local filesystem).
  rocksdb::Env* env = nullptr;
  // A follower (a standby's store): the store's own parts may not write; only replicated changes
  // are applied (ChangeLog::Apply), so its positions stay those of the primary.
  bool follower = false;
  // Write-ahead log history kept for standbys that reconnect behind (ChangeLog::ReadSince); 0
  // keeps none (a hub without replication).
  uint64_t wal_archive_bytes = 0;
  // How often the disclosure journal is added to the run index in the background
  // (store/disclosure_index.h) at the latest; a run starts sooner once a run's worth of filings
  // is waiting. 0: never in the background (an offline tool: reads see the journal all the same).
  // Long: each run is a table file whose merges rewrite the index's level 1 (random keys), so
  // few large runs, not many small ones.
  std::chrono::milliseconds disclosure_run_interval{30'000};
};

// Compaction work in the store (Store::Compactions): compactions running now, and RocksDB's
// estimate of the bytes compaction must still rewrite to bring every level within its target.
struct CompactionBacklog {
  uint64_t running = 0;
  uint64_t pending_bytes = 0;
};

}  // namespace carehub::hub
