#pragma once
// A set of store writes applied atomically by Store::Commit: all of them or none, and in the order
// added. The parts of the store (EventLog::Add, DedupIndex::Add, ...) append to it; nothing is
// visible to readers, nor durable, until the commit.
//
// Owns its buffer. Not thread-safe: one thread builds a batch, then hands it to the committer.

#include <cstddef>
#include <cstdint>
#include <memory>

namespace rocksdb {
class WriteBatch;
}  // namespace rocksdb

namespace carehub::hub {

class WriteBatch {
 public:
  // Reserves the buffer up front: growing it write by write costs copies on the ingest path.
  explicit WriteBatch(size_t reserve_bytes = 0);
  ~WriteBatch();
  WriteBatch(const WriteBatch&) = delete;
  WriteBatch& operator=(const WriteBatch&) = delete;

  // Drops every write, keeping the buffer's capacity for reuse.
  void Clear();
  // Bytes of the encoded batch (what the commit writes to the WAL).
  size_t DataSize() const;
  // Number of writes.
  uint32_t Count() const;

 private:
  // The store's parts reach the RocksDB batch through this (hub/src/store/database.h); nobody else
  // can, so the on-disk layout stays the parts' business.
  friend rocksdb::WriteBatch* RocksBatch(WriteBatch* batch);
  std::unique_ptr<rocksdb::WriteBatch> rep_;
};

}  // namespace carehub::hub
