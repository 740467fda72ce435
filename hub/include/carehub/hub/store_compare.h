#pragma once
// Proves two data dirs hold the same store (docs/replication.md): every record of every column
// family, key and value, in key order, and the same position. Used by `carehubctl compare` and
// the replication tests to show a standby equals its primary.
//
// Opens each store read-only (RocksDB's read-only mode takes no lock), so one of the two may
// belong to a running hub; that one is read as of the moment it is opened. Left out: the "probe"
// record a hub writes to test its disk. Not left out (reported as a difference): dedup keys older
// than the dedup window that the expiry compaction of one side has dropped and the other's not yet.
//
// Errors: "store_error" when a dir cannot be opened; a difference is a result, not an error.

#include <cstdint>
#include <filesystem>
#include <string>

#include "carehub/core/status.h"

namespace carehub::hub {

struct StoreComparison {
  bool equal = false;
  uint64_t position_a = 0;
  uint64_t position_b = 0;
  uint64_t records = 0;  // compared
  // The first difference, in words ("events: key 00..2a only in A"), empty when equal.
  std::string first_difference;
};

Result<StoreComparison> CompareStores(const std::filesystem::path& a,
                                      const std::filesystem::path& b);

}  // namespace carehub::hub
