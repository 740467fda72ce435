#include "ctl_verify.h"

#include <iostream>

#include "carehub/hub/consistency.h"
#include "carehub/hub/store.h"

namespace carehub::ctl {

int CmdVerify(const std::filesystem::path& data_dir, uint32_t dedup_window_days) {
  // Store::Open would create an empty store where there is none, and call that consistent.
  std::error_code ec;
  if (!std::filesystem::exists(data_dir / "CURRENT", ec)) {
    std::cerr << "carehubctl: " << data_dir.string() << " holds no hub store\n";
    return 2;
  }
  hub::StoreOptions options;
  options.dir = data_dir;
  options.dedup_window_days = dedup_window_days;
  options.block_cache_bytes = 32ull << 20;
  options.disclosure_run_interval = std::chrono::milliseconds(0);  // reads only what is there
  auto store = hub::Store::Open(options);
  if (!store.ok()) {
    std::cerr << "carehubctl: " << store.status().message()
              << " (is the hub still running? verify needs it stopped)\n";
    return 2;
  }
  hub::ConsistencyOptions check;
  check.dedup_window_days = dedup_window_days;
  auto report = hub::CheckConsistency(*store.value(), check);
  if (!report.ok()) {
    std::cerr << "carehubctl: " << report.status().message() << "\n";
    return 2;
  }
  std::cout << report.value().Summary() << "\n";
  for (const auto& problem : report.value().problems) {
    std::cout << "  " << problem << "\n";
  }
  if (report.value().problem_count > report.value().problems.size()) {
    std::cout << "  ... and " << report.value().problem_count - report.value().problems.size()
              << " more\n";
  }
  return report.value().consistent() ? 0 : 1;
}

}  // namespace carehub::ctl
