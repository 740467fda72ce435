#pragma once
// carehubctl's replication commands (docs/replication.md):
//
//   compare DIR_A DIR_B      the two data dirs hold the same store (carehub/hub/store_compare.h)
//   promote [--force]        the standby at --admin becomes the primary
//   demote                   the primary at --admin stops accepting and delivering, hands its log
//                            to the standby and becomes a standby
//   cluster status           role, position, sync state and lag of each hub in --admin A,B
//
// Exit codes as carehubctl's: 0 done (compare: equal); 1 failed or different, one line on stderr
// saying why; 2 bad usage or a data dir that cannot be opened.

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "ctl_admin_client.h"

namespace carehub::ctl {

int CmdCompare(const std::filesystem::path& a, const std::filesystem::path& b);
// Asks for the role change, then waits (up to `wait`) until the hub reports the new role.
int CmdChangeRole(const AdminClientOptions& options, const std::string& to, bool force,
                  std::chrono::seconds wait);
int CmdClusterStatus(const AdminClientOptions& options, const std::vector<std::string>& admins,
                     bool as_json);

}  // namespace carehub::ctl
