// carehub: the hub daemon. `carehub --config FILE`; without --config it runs the embedded default
// (config/hub.yaml). Exits non-zero with a one-line reason on bad config; SIGTERM/SIGINT stop it
// gracefully (exit 0); SIGHUP reloads agreements.

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <iostream>

#include "carehub/hub/hub.h"
#include "embedded_config.h"

namespace {

int WaitForSignals(carehub::hub::Hub& hub) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  while (true) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) {
      continue;
    }
    if (sig == SIGHUP) {
      auto s = hub.Reload();
      (void)s;  // Reload logs its own outcome.
      continue;
    }
    return 0;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"carehub: the health and care data-sharing hub"};
  std::string config_path;
  bool print_default = false;
  app.add_option("-c,--config", config_path, "YAML config file (default: the embedded config)");
  app.add_flag("--print-default-config", print_default, "print the embedded config and exit");
  CLI11_PARSE(app, argc, argv);
  if (print_default) {
    std::cout << carehub::kEmbeddedHubConfig;
    return 0;
  }

  // Block the signals before any thread starts so that every thread inherits the mask and only
  // sigwait() sees them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  auto config = config_path.empty()
                    ? carehub::hub::ParseHubConfig(carehub::kEmbeddedHubConfig,
                                                   carehub::kEmbeddedConfigDir)
                    : carehub::hub::LoadHubConfig(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "carehub: %s\n", config.status().message().c_str());
    return 2;
  }
  auto hub = carehub::hub::Hub::Start(config.value());
  if (!hub.ok()) {
    std::fprintf(stderr, "carehub: %s\n", hub.status().message().c_str());
    return 1;
  }
  int rc = WaitForSignals(*hub.value());
  hub.value()->Stop();
  return rc;
}
