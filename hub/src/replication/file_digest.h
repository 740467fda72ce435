#pragma once
// The SHA-256 of a file, hex: what a full copy of the store is checked with on both sides
// (replication_source.cc lists it per file; replica_follower.cc checks each file against it).
// Errors: "store_io_error" when the file cannot be read. Thread-safe (no shared state).

#include <filesystem>
#include <string>

#include "carehub/core/status.h"

namespace carehub::hub {

Result<std::string> FileSha256(const std::filesystem::path& file);

}  // namespace carehub::hub
