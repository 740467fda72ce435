#pragma once
// The store's change stream, what replication ships (docs/replication.md).
//
// Every write the store commits is one RocksDB write batch and takes a range of positions
// [first, last]: RocksDB sequence numbers, one per record written, contiguous, never reused. A
// store that applies the same changes in the same order holds the same records at the same
// positions, so "where is the standby" is one number, and a standby whose position does not
// follow on from a change is detected at once (error, never a silent gap).
//
// A Change's bytes are RocksDB's own write-batch encoding (column families by id); the store
// parts' layouts stay the parts' business and replication treats the bytes as opaque.
//
// Errors: "change_log_gone" when the write-ahead log no longer holds a position (the follower
// needs a full copy); "replication_out_of_order" when a change does not start right after the
// follower's position; "not_primary" for writes of the store's own parts on a follower; store
// errors as store.h says.
//
// Thread-safety: every method may be called from any thread. Does not own the Database.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "carehub/core/status.h"

namespace carehub::hub {

class Database;

struct Change {
  uint64_t first = 0;  // position of the change's first record
  uint64_t last = 0;   // and of its last
  std::string data;    // the write batch, as RocksDB encodes it
};

class ChangeLog {
 public:
  explicit ChangeLog(Database* db) : db_(db) {}

  // The position of the last committed write (0 for a store never written).
  uint64_t Position() const;

  // Called for every committed write, in commit order, on the committing thread while the
  // store's write lock is held: it must be quick and must not write to the store. `data` is valid
  // only during the call. One observer; set it before writes start, clear it (nullptr) before the
  // observer goes away.
  using Observer = std::function<void(uint64_t first, uint64_t last, std::string_view data)>;
  void SetObserver(Observer observer);

  // Calls fn for each committed change from position `from` on (a change that began before
  // `from` is cut to begin there), read from the write-ahead log, until fn returns false, about
  // `max_bytes` were read, or the log ends. The log keeps StoreOptions::wal_archive_bytes of
  // history; "change_log_gone" when `from` is older than that.
  Status ReadSince(uint64_t from, size_t max_bytes, const std::function<bool(Change)>& fn) const;

  // Follower stores only: applies a change read from a primary's log; it must begin at
  // Position() + 1. With sync, returns after the write-ahead log is fsync'd.
  Status Apply(const Change& change, bool sync);

  // Writes a consistent copy of the store into `dir` (which must not exist; hard links where the
  // filesystem allows) and returns the position it holds.
  Result<uint64_t> Checkpoint(const std::filesystem::path& dir) const;

  // Epochs (the log's timeline, as PostgreSQL's): each promotion of a standby begins a new epoch
  // after the position where the old primary's history, as the standby had it, ends (the fork).
  // A node whose log runs past the fork of the epoch after its own has writes nobody else has
  // and cannot follow without a full copy. Stored in the meta column ("epoch/" + n -> fork), so
  // they replicate like every other write. Epoch 0 is the first primary's and has no record.
  struct Epoch {
    uint64_t number = 0;
    uint64_t fork = 0;  // the last position of the epoch before
  };
  Result<std::vector<Epoch>> Epochs() const;
  // The newest epoch (0 when none was begun).
  Result<uint64_t> CurrentEpoch() const;
  // Begins a new epoch at the current position, numbered max(CurrentEpoch() + 1, at_least)
  // (a cluster numbers epochs by etcd's revision of the leader key: cluster/cluster_member.h);
  // durable on return. Primary only.
  Result<uint64_t> BeginEpoch(uint64_t at_least = 0);

 private:
  Database* db_;
};

}  // namespace carehub::hub
