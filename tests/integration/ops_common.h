#pragma once
// Helpers shared by the operations integration tests (ops_*_test.cc): HTTP against the hub's admin
// API, the project's command-line tools as child processes, and Prometheus text parsing.

#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "carehub/core/status.h"
#include "harness/child_process.h"
#include "harness/hub_process.h"

namespace carehub::itest::ops {

// The demo agreements shipped in config/ (three subscriptions, Leeds ODS codes).
std::filesystem::path DemoAgreements();
// extra_yaml for HubProcess that loads the demo agreements.
std::string DemoAgreementsYaml();

struct HttpAnswer {
  int status = 0;  // 0: no answer (connection failed)
  std::string body;
};
HttpAnswer HttpGet(const std::string& address, const std::string& path);

// carehub-publish --generate `events` against `hub`, with its outbox under `work_dir`; `extra` are
// more flags. Returns the JSON summary line it prints (fails on a non-zero exit).
Result<nlohmann::json> RunPublish(const HubProcess& hub, const std::filesystem::path& work_dir,
                                  uint64_t events, uint64_t seed,
                                  const std::vector<std::string>& extra = {},
                                  std::chrono::milliseconds timeout = std::chrono::seconds(60));

// Runs a binary from CAREHUB_BIN_DIR with `args`.
Result<CommandResult> RunTool(const std::string& name, const std::vector<std::string>& args,
                              const std::filesystem::path& work_dir,
                              std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Headless chromium from Debian (scripts/install-deps.sh), for the status page tests. RunChromium
// loads `url` with `extra` flags (e.g. --virtual-time-budget=5000 --dump-dom) in a fresh profile
// under `work`; ConsoleErrors picks uncaught exceptions and failed loads out of its log;
// ElementText is the text of the element with this id in dumped HTML ("" when absent).
Result<CommandResult> RunChromium(const std::filesystem::path& work, const std::string& tag,
                                  std::vector<std::string> extra, const std::string& url);
std::vector<std::string> ConsoleErrors(const std::string& log);
std::string ElementText(const std::string& html, const std::string& id);

// One sample line of the Prometheus text format.
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};
std::vector<Sample> ParseSamples(const std::string& exposition);
// Sum of every sample named `name` whose labels include all of `match`.
double SumSamples(const std::vector<Sample>& samples, const std::string& name,
                  const std::map<std::string, std::string>& match = {});
bool HasSample(const std::vector<Sample>& samples, const std::string& name);

// Polls `predicate` every 50 ms until it is true or `timeout` passes; returns its last value.
template <typename Predicate>
bool WaitFor(Predicate predicate, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (predicate()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return predicate();
}

}  // namespace carehub::itest::ops
