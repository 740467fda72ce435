#pragma once
// The route index: which events are filed under each (publisher, site, type), so a narrow
// subscription reads only the events it may receive (column family "route"), and the list of
// routes ever seen (column family "meta").
//
//   route  RoutePrefix(publisher, site, type) + hub_seq (8 BE)  ->  ""
//   meta   "route:" + RoutePrefix(...)                           ->  ""
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

  // Files `hub_seq` under the route whose prefix is `route_prefix` (RoutePrefix()).
  void Add(WriteBatch* batch, std::string_view route_prefix, uint64_t hub_seq);
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

  // Adds to `batch` the deletion of every entry below `cutoff_seq` (retention).
  void AddDeleteBefore(WriteBatch* batch, uint64_t cutoff_seq) const;

 private:
  Database* db_;
  mutable Mutex mu_;
  std::vector<RouteKey> known_ CAREHUB_GUARDED_BY(mu_);
};

}  // namespace carehub::hub
