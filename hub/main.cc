// carehub: the hub daemon. `carehub --config FILE`; without --config it runs the embedded default
// (config/hub.yaml). Exits non-zero with a one-line reason on bad config; SIGTERM/SIGINT stop it
// gracefully (exit 0); SIGHUP reloads agreements.

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "carehub/core/lifecycle_signals.h"
#include "embedded_config.h"
#include "hub.h"

int main(int argc, char** argv) {
  CLI::App app{"carehub: the health and care data-sharing hub"};
  std::string config_path;
  bool print_default = false;
  app.add_option("-c,--config", config_path, "YAML config file (default: the embedded config)");
  app.add_flag("--print-default-config", print_default, "print the embedded config and exit");
  bool salvage_wal = false;
  app.add_flag("--salvage-wal", salvage_wal,
               "recovery after a damaged write-ahead log: skip damaged records, keep every intact "
               "one (docs/reliability.md)");
  std::string role;
  app.add_option("--role", role,
                 "start as primary or standby, whatever replication.role says (e.g. an old "
                 "primary rejoining as standby after a failover; docs/replication.md)")
      ->check(CLI::IsMember({"primary", "standby"}));
  CLI11_PARSE(app, argc, argv);
  if (print_default) {
    std::cout << carehub::kEmbeddedHubConfig;
    return 0;
  }

  // Before any thread starts, so only the sigwait below sees the lifecycle signals.
  carehub::BlockLifecycleSignals();

  auto config = config_path.empty() ? carehub::hub::ParseHubConfig(carehub::kEmbeddedHubConfig,
                                                                   carehub::kEmbeddedConfigDir)
                                    : carehub::hub::LoadHubConfig(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "carehub: %s\n", config.status().message().c_str());
    return 2;
  }
  config.value().salvage_wal = salvage_wal;
  if (!role.empty()) {
    if (!config.value().replication.enabled) {
      std::fprintf(stderr, "carehub: --role needs a replication section in the config\n");
      return 2;
    }
    config.value().replication.role = role == "primary"
                                          ? carehub::hub::ReplicationConfig::Role::kPrimary
                                          : carehub::hub::ReplicationConfig::Role::kStandby;
  }
  auto hub = carehub::hub::Hub::Start(config.value());
  if (!hub.ok()) {
    std::fprintf(stderr, "carehub: %s\n", hub.status().message().c_str());
    return 1;
  }
  auto& running = *hub.value();
  // Reload logs its own outcome (and audits it); a refused file keeps the old set in force.
  carehub::WaitForStopSignal([&running] { (void)running.Reload(); });
  running.Stop();
  return 0;
}
