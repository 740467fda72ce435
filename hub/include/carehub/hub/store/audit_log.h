#pragma once
// The audit trail: every disclosure, refusal and change of policy (column family "audit").
//
//   key    at_unix_ms (8 BE) + a counter (8 BE): time order, never two records alike
//   value  v1::AuditRecord
//
// Durability: Append writes to the WAL without an fsync of its own (one per delivery batch was
// measured to compete with the group commit: the latency bench's ingest fell from 20k to 2.8k
// events/s). A caller that must not act before the record is durable takes Store::WalSyncTicket()
// after Append and waits with Store::WaitWalSynced (the subscribe server does, riding the group
// commit's next sync; docs/reliability.md).
//
// Errors: Query fails when a read fails, rather than answering with part of the trail.
//
// Thread-safety: every method may be called from any thread. Does not own the Database.

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "carehub/core/status.h"
#include "carehub/hub/store/write_batch.h"
#include "carehub/v1/store.pb.h"

namespace carehub::hub {

class Database;

class AuditLog {
 public:
  explicit AuditLog(Database* db) : db_(db) {}

  Status Append(const v1::AuditRecord& record);
  // For a record written in a batch with other writes (a delivery and its disclosure index
  // entries): NewKey gives the record's key (at_unix_ms 8 BE + counter 8 BE, never two alike),
  // AddRecord adds it to `batch`; nothing is written until the batch is committed.
  std::string NewKey(int64_t at_unix_ms);
  void AddRecord(WriteBatch* batch, std::string_view key, const v1::AuditRecord& record);
  // The records under `keys` (NewKey's), each empty when absent.
  Result<std::vector<std::optional<v1::AuditRecord>>> Get(
      const std::vector<std::string>& keys) const;
  // Where this process's key counter starts: the store's position at open, above every counter a
  // record was written with before (each record took a position), here or on a primary this
  // store replicated; so two records written in the same millisecond by two processes, e.g. on
  // both sides of a failover, never share a key.
  void StartCountingAt(uint64_t n) { counter_.store(n); }
  // Records with since_ms <= at <= until_ms, oldest first, of `subscriber` (all when empty), at
  // most `limit`.
  Result<std::vector<v1::AuditRecord>> Query(const std::string& subscriber, int64_t since_ms,
                                             int64_t until_ms, size_t limit) const;

 private:
  Database* db_;
  std::atomic<uint64_t> counter_{0};
};

}  // namespace carehub::hub
