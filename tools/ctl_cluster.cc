#include "ctl_cluster.h"

#include <iostream>
#include <thread>

#include "carehub/hub/store_compare.h"

namespace carehub::ctl {

using nlohmann::json;

int CmdCompare(const std::filesystem::path& a, const std::filesystem::path& b) {
  for (const auto& dir : {a, b}) {
    std::error_code ec;
    if (!std::filesystem::exists(dir / "CURRENT", ec)) {
      std::cerr << "carehubctl: " << dir.string() << " holds no hub store\n";
      return 2;
    }
  }
  auto result = hub::CompareStores(a, b);
  if (!result.ok()) {
    std::cerr << "carehubctl: " << result.status().message() << "\n";
    return 2;
  }
  const auto& r = result.value();
  if (r.equal) {
    std::cout << "equal: " << r.records << " records, position " << r.position_a << "\n";
    return 0;
  }
  std::cout << "different (positions " << r.position_a << " and " << r.position_b << ", "
            << r.records << " records equal before): " << r.first_difference << "\n";
  return 1;
}

int CmdChangeRole(const AdminClientOptions& options, const std::string& to, bool force,
                  std::chrono::seconds wait) {
  AdminClient client(options);
  const std::string path = std::string("/api/v1/replication/") +
                           (to == "primary" ? "promote" : "demote") + (force ? "?force=1" : "");
  auto asked = client.Post(path);
  if (!asked.ok()) {
    std::cerr << "carehubctl: " << asked.status().message() << "\n";
    return 1;
  }
  // The hub restarts its admin server as part of the change: poll until it answers in its new
  // role.
  const auto deadline = std::chrono::steady_clock::now() + wait;
  std::string last;
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    AdminClient poll(options);
    auto status = poll.Get("/api/v1/replication");
    if (!status.ok()) {
      last = status.status().message();
      continue;
    }
    if (status.value().value("role", "") == to) {
      std::cout << options.address << " is now " << to << " at position "
                << status.value().value("position", 0ull) << "\n";
      return 0;
    }
  }
  std::cerr << "carehubctl: " << options.address << " did not report role " << to << " within "
            << wait.count() << " s" << (last.empty() ? "" : " (" + last + ")") << "\n";
  return 1;
}

int CmdClusterStatus(const AdminClientOptions& options, const std::vector<std::string>& admins,
                     bool as_json) {
  json all = json::array();
  int primaries = 0;
  for (const auto& address : admins) {
    AdminClientOptions one = options;
    one.address = address;
    AdminClient client(one);
    auto r = client.Get("/api/v1/replication");
    json entry = {{"admin", address}};
    if (!r.ok()) {
      entry["error"] = r.status().message();
    } else {
      entry["replication"] = r.value();
      primaries += r.value().value("role", "") == "primary";
    }
    all.push_back(entry);
  }
  if (as_json) {
    std::cout << all.dump(2) << "\n";
  } else {
    for (const auto& e : all) {
      if (e.contains("error")) {
        std::cout << e["admin"].get<std::string>()
                  << "  unreachable: " << e["error"].get<std::string>() << "\n";
        continue;
      }
      const auto& r = e["replication"];
      std::cout << e["admin"].get<std::string>() << "  " << r.value("name", "") << "  "
                << r.value("role", "?") << "  epoch " << r.value("epoch", 0ull) << "  position "
                << r.value("position", 0ull);
      if (r.value("role", "") == "primary" && r.contains("standby")) {
        const auto& s = r["standby"];
        std::cout << "  standby " << (s.value("connected", false) ? s.value("name", "") : "none")
                  << (s.value("in_sync", false) ? " in sync" : " NOT in sync") << "  lag "
                  << s.value("lag_changes", 0ull) << " changes / " << s.value("lag_ms", 0.0)
                  << " ms";
      } else if (r.value("role", "") == "standby") {
        std::cout << "  following " << r.value("following", "")
                  << (r.value("connected", false) ? " (connected)" : " (not connected)")
                  << (r.value("copying", false) ? " taking a full copy" : "");
      }
      std::cout << "\n";
    }
  }
  if (primaries != 1) {
    std::cerr << "carehubctl: " << primaries << " hubs report role primary (expected 1)\n";
    return 1;
  }
  return 0;
}

}  // namespace carehub::ctl
