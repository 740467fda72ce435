#pragma once
// carehub-analytics' own state: the facts of every event it has handled and the highest hub_seq
// handled, in one RocksDB database. Apply() writes a delivery's facts and the new cursor in one
// synced batch, so after a crash the store holds either all of a delivery or none of it, and the
// subscriber acknowledges to the hub only after Apply() returned OK.
//
// Owns the database; not copyable; not thread-safe (one subscriber thread).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "carehub/analytics/indicators.h"
#include "carehub/core/status.h"
#include "carehub/v1/wire.pb.h"

namespace rocksdb {
class DB;
}

namespace carehub::analytics {

class StateStore {
 public:
  // Opens (creating) the database in `dir`. Error code "state_open_failed".
  static Result<std::unique_ptr<StateStore>> Open(const std::string& dir);
  ~StateStore();
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  // Highest hub_seq whose effect is stored (0: nothing yet).
  uint64_t cursor() const { return cursor_; }
  uint64_t facts_written() const { return facts_written_; }

  // Stores the facts of `events` with hub_seq above the cursor (earlier ones are redeliveries and
  // are skipped), applies UPDATE / CANCEL to what they supersede, and moves the cursor to
  // `scanned_to_seq`. Error code "state_write_failed".
  Status Apply(const std::vector<v1::DeliveredEvent>& events, uint64_t scanned_to_seq);

  // Every stored fact.
  Result<std::vector<Fact>> LoadFacts() const;

 private:
  explicit StateStore(std::unique_ptr<rocksdb::DB> db);
  std::unique_ptr<rocksdb::DB> db_;
  uint64_t cursor_ = 0;
  uint64_t facts_written_ = 0;
};

}  // namespace carehub::analytics
