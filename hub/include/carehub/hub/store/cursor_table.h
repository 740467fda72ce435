#pragma once
// Subscription cursors: the highest hub_seq each subscription has acknowledged (column family
// "cursors").
//
//   key    subscription id
//   value  hub_seq (8 BE)
//
// A cursor is not fsync'd on its own: losing an update means redelivery (at-least-once), never
// loss; the next synced write covers it.
//
// Errors: Get fails when the read fails; an empty optional means the subscription never acked.
//
// Thread-safety: every method may be called from any thread. Does not own the Database.

#include <cstdint>
#include <optional>
#include <string>

#include "carehub/core/status.h"

namespace carehub::hub {

class Database;

class CursorTable {
 public:
  explicit CursorTable(Database* db) : db_(db) {}

  Result<std::optional<uint64_t>> Get(const std::string& subscription) const;
  Status Put(const std::string& subscription, uint64_t seq);

 private:
  Database* db_;
};

}  // namespace carehub::hub
