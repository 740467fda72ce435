#pragma once
// `carehubctl verify --data-dir DIR`: the offline consistency check (carehub/hub/consistency.h) of
// a stopped hub's store, for operators after a crash or before a restore is put back in service.

#include <cstdint>
#include <filesystem>

namespace carehub::ctl {

// Exit codes: 0 consistent; 1 inconsistent (a one-line summary and the first problems on stdout);
// 2 the store cannot be opened (missing, not a store, or the hub still holds its lock).
int CmdVerify(const std::filesystem::path& data_dir, uint32_t dedup_window_days);

}  // namespace carehub::ctl
