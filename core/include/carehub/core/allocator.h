#pragma once
// Which memory allocator the process runs on, and what it holds: for start-up logs and metrics.
//
// The hub links jemalloc (CMake target carehub_allocator; Debian's libjemalloc2): with glibc's
// malloc it spent ~1.4 us more of CPU per ingested event (mean of four alternating 1.5M-event
// pairs), on the ingest thread and ZeroMQ's I/O thread (docs/performance.md, "Issue 15
// (2026-12-07)"). Found at run time through jemalloc's `mallctl` (a weak reference), so any binary
// may ask: one that does not link jemalloc (a sanitizer build keeps the sanitizer's allocator)
// reports libc.
//
// Thread-safety: every function may be called from any thread.

#include <cstdint>
#include <optional>
#include <string>

namespace carehub {

// "jemalloc 5.3.0-0-g54eaed1d8b56b1aa528be3bdd1877e59c56fa90c", or "libc malloc".
std::string AllocatorName();

// jemalloc's own figures, refreshed on each call; empty when the process is not on jemalloc.
struct AllocatorFigures {
  uint64_t allocated_bytes = 0;  // in use by the program
  uint64_t resident_bytes = 0;   // physical pages the allocator holds (a part of the RSS)
};
std::optional<AllocatorFigures> ReadAllocatorFigures();

}  // namespace carehub
