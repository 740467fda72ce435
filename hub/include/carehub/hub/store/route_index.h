#pragma once
// The route index: which events are filed under each (publisher, site, type), so a narrow
// subscription reads only the events it may receive (column family "route"), and the list of
// routes ever seen (column family "meta").
//
//   route  RoutePrefix(publisher, site, type) + first hub_seq (8 BE)  ->  further hub_seqs
//   meta   "route:" + RoutePrefix(...)                                 ->  ""
//
// An entry files the events of one route that one ingest batch accepted (keys.h has the value's
// layout): one memtable insert per route and batch rather than per event, which was a third of
// the commit thread's work (docs/performance.md). Entries of one event (empty value) are what
// store format 1 wrote, and read the same. Entries of a route never overlap: every seq of an entry
// is below the first of the route's next entry, because one sequencer hands out a batch's seqs
// together; readers rely on it (a seq at or below the one before is reported as corruption).
//
// A route is written into meta in the same batch as its first event (AddKnown) and joins the
// in-memory list once that batch is committed (NoteCommitted), so the list never names a route
// whose events a failed commit dropped.
//
// Errors: Scan returns an error when the read fails, never a shorter list; a Cursor stops and
// reports it through status().
//
// Thread-safety: every method may be called from any thread; the in-memory list is guarded by a
// mutex. Does not own the Database.

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "carehub/core/mutex.h"
#include "carehub/core/status.h"
#include "carehub/hub/store/keys.h"
#include "carehub/hub/store/write_batch.h"

namespace carehub::hub {

class Database;

class RouteIndex {
 public:
  explicit RouteIndex(Database* db) : db_(db) {}

  // Reads the known routes from meta (at open).
  Status Load();

  // Files `seqs` (ascending, no repeats, at least one, all above the route's entries so far)
  // under the route whose prefix is `route_prefix` (RoutePrefix()), as one entry.
  void Add(WriteBatch* batch, std::string_view route_prefix, std::span<const uint64_t> seqs);
  void Add(WriteBatch* batch, std::string_view route_prefix, uint64_t hub_seq) {
    Add(batch, route_prefix, std::span<const uint64_t>(&hub_seq, 1));
  }
  // Records a route the first time it is seen; NoteCommitted() adds it to Known() once the batch
  // holding it is committed.
  void AddKnown(WriteBatch* batch, const RouteKey& route);
  void NoteCommitted(const std::vector<RouteKey>& routes);
  std::vector<RouteKey> Known() const;
  size_t KnownCount() const;

  // Seqs filed under `route` with seq in [from, to], ascending, at most `limit`.
  Result<std::vector<uint64_t>> Scan(const RouteKey& route, uint64_t from, uint64_t to,
                                     size_t limit) const;

  // The seqs filed under one route with seq in [from, to], ascending, read one at a time, so a
  // reader merging several routes reads no more of each than it uses. Holds a RocksDB iterator
  // (and so the files it reads) until destroyed; used on one thread at a time.
  class Cursor {
   public:
    virtual ~Cursor() = default;
    // False at the end of the range or after an error (status() says which).
    virtual bool Valid() const = 0;
    virtual uint64_t seq() const = 0;  // only while Valid()
    virtual void Next() = 0;
    // An I/O error or a malformed entry; Ok at the end of the range.
    virtual Status status() const = 0;
  };
  // Positioned at the first seq >= `from` (or at the end).
  std::unique_ptr<Cursor> Open(const RouteKey& route, uint64_t from, uint64_t to) const;

  // Seqs filed under `route` with from <= seq < below, newest first, at most `limit` (browsing the
  // most recent events of a route, page by page).
  Result<std::vector<uint64_t>> ScanBackward(const RouteKey& route, uint64_t from, uint64_t below,
                                             size_t limit) const;

  // Adds to `batch` the removal of every seq below `cutoff_seq` (retention): entries wholly
  // below it are deleted, an entry across it is rewritten with only its seqs from the cutoff on.
  // Reads each known route's entry at the cutoff; an error if a read fails (nothing added then).
  Status AddDeleteBefore(WriteBatch* batch, uint64_t cutoff_seq) const;

 private:
  Database* db_;
  mutable Mutex mu_;
  std::vector<RouteKey> known_ CAREHUB_GUARDED_BY(mu_);
};

}  // namespace carehub::hub
