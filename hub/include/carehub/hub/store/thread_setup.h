#pragma once
// Setup for the hub's own long-lived threads that read or write the store.
//
// RocksDB keeps per-thread perf counters, on by default (PerfLevel kEnableCount): every memtable
// insert, key comparison batch, lookup and iterator step adds to a thread_local context, and from
// a shared library each of those accesses is a call to __tls_get_addr. Nothing in the hub reads
// those counters (carehub-bench's dedup lookup profile turns them on for its own thread), so the
// hub's threads turn them off. Measured (docs/performance.md, "RocksDB's per-thread perf counters
// off"): the commit thread 16% fewer instructions (median 4.8 -> 3.45 us per event); the ingest
// and delivery threads did not measurably change.
//
// Thread safety: affects the calling thread only. No errors.

namespace carehub::hub {

// Call once at the start of a hub thread that uses the store (ingest, commit, delivery,
// replication). Threads RocksDB starts itself (flush, compaction) are not affected.
void PrepareStoreThread();

}  // namespace carehub::hub
