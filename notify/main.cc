// carehub-fhir-notify: holds carehub subscriptions and delivers each to a receiver's HTTPS
// endpoint as FHIR R4 Subscriptions Backport notifications (docs/fhir-notify.md).
//
//   carehub-fhir-notify --config FILE
//
// Exit codes: 0 after SIGTERM/SIGINT (what was not answered 2xx is sent again by the next run,
// under the same event numbers), 2 on a bad command line or config (one line on stderr), 1 when
// it cannot start (state dir, port) or a subscription fails in a way it cannot continue after
// (its event-number file cannot be written): a supervisor restarts it.

#include <malloc.h>
#include <signal.h>
#include <sodium.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "carehub/core/address.h"
#include "carehub/core/lifecycle_signals.h"
#include "carehub/core/log.h"
#include "carehub/metrics/registry.h"
#include "carehub/notify/config.h"
#include "carehub/notify/endpoint_client.h"
#include "carehub/notify/event_numbers.h"
#include "carehub/notify/notify_http.h"
#include "carehub/notify/subscription_worker.h"

namespace {

namespace notify = carehub::notify;

void SetUpLogging(const notify::NotifyConfig& config) {
  auto sink = carehub::MakeStderrLogSink(config.log_format);
  std::shared_ptr<spdlog::logger> main_logger;
  for (const char* name : {"fhir-notify"}) {
    if (spdlog::get(name)) {
      spdlog::drop(name);
    }
    auto logger = std::make_shared<spdlog::logger>(name, sink);
    logger->set_level(spdlog::level::from_str(config.log_level));
    logger->flush_on(spdlog::level::info);
    spdlog::register_logger(logger);
    main_logger = logger;
  }
  spdlog::set_default_logger(main_logger);
}

// Written by rename, with our pid, so a reader (a test, an operator's script) can tell this run's
// file from a stale one.
bool WriteEndpointsFile(const std::filesystem::path& path, const nlohmann::json& content) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << content.dump() << "\n";
    if (!out.flush()) {
      return false;
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  return !ec;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "carehub-fhir-notify: deliver carehub subscriptions to HTTPS endpoints as FHIR R4 "
      "Subscriptions Backport notifications (docs/fhir-notify.md)"};
  std::string config_path;
  app.add_option("-c,--config", config_path, "YAML config file")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  auto loaded = notify::LoadNotifyConfig(config_path);
  if (!loaded.ok()) {
    std::fprintf(stderr, "carehub-fhir-notify: %s\n", loaded.status().ToString().c_str());
    return 2;
  }
  const notify::NotifyConfig& config = loaded.value();
  if (sodium_init() < 0) {
    std::fprintf(stderr, "carehub-fhir-notify: libsodium cannot start\n");
    return 1;
  }
  // Each full-resource notification builds and frees a JSON tree of a few MB; glibc's defaults
  // hand such blocks back to the kernel every time (mmap/munmap, trims) and consolidate fastbins
  // on each large free, which showed as a fifth of the CPU in perf. Keeping the blocks in the heap
  // and doing without fastbins (tcache still serves small blocks) is the cheaper trade here.
  mallopt(M_MMAP_THRESHOLD, 64 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);
  mallopt(M_MXFAST, 0);
  carehub::BlockLifecycleSignals();
  SetUpLogging(config);
  auto log = spdlog::get("fhir-notify");

  std::error_code ec;
  std::filesystem::create_directories(config.state_dir, ec);
  if (ec) {
    std::fprintf(stderr, "carehub-fhir-notify: cannot create state_dir %s: %s\n",
                 config.state_dir.c_str(), ec.message().c_str());
    return 1;
  }
  carehub::metrics::Registry registry;
  std::vector<std::unique_ptr<notify::SubscriptionWorker>> workers;
  for (const notify::SubscriptionConfig& sub : config.subscriptions) {
    auto numbers = notify::EventNumbers::Open(config.state_dir / (sub.fhir_id + ".events"));
    if (!numbers.ok()) {
      std::fprintf(stderr, "carehub-fhir-notify: subscription %s: %s\n", sub.id.c_str(),
                   numbers.status().ToString().c_str());
      return 1;
    }
    auto endpoint = notify::EndpointClient::Create(sub.endpoint);
    if (!endpoint.ok()) {
      std::fprintf(stderr, "carehub-fhir-notify: subscription %s: %s\n", sub.id.c_str(),
                   endpoint.status().ToString().c_str());
      return 2;
    }
    workers.push_back(std::make_unique<notify::SubscriptionWorker>(
        sub, notify::HubConnection{config.hub_endpoint, config.curve}, config.public_base_url,
        std::move(numbers).value(), std::move(endpoint).value(), &registry));
  }
  std::vector<notify::SubscriptionWorker*> raw;
  for (auto& w : workers) {
    raw.push_back(w.get());
  }
  notify::NotifyHttpServer http(config.admin_listen, config.admin_token, raw, &registry);
  carehub::Status started = http.Start();
  if (!started.ok()) {
    std::fprintf(stderr, "carehub-fhir-notify: %s\n", started.ToString().c_str());
    return 1;
  }
  for (auto& w : workers) {
    w->Start();
  }
  const std::filesystem::path endpoints_file = config.state_dir / "notify-endpoints.json";
  auto host = carehub::ParseHostPort(config.admin_listen);
  nlohmann::json endpoints = {{"pid", static_cast<int64_t>(getpid())},
                              {"admin", host->host + ":" + std::to_string(http.port())}};
  if (!WriteEndpointsFile(endpoints_file, endpoints)) {
    log->warn("cannot write {}", endpoints_file.string());
  }
  log->info("carehub-fhir-notify: {} subscription(s), admin on {}:{}", workers.size(), host->host,
            http.port());

  // Wait for SIGTERM/SIGINT, looking every half second for a subscription that cannot go on.
  sigset_t set = carehub::LifecycleSignalSet();
  int rc = 0;
  while (true) {
    timespec half{0, 500'000'000};
    const int sig = sigtimedwait(&set, nullptr, &half);
    if (sig == SIGTERM || sig == SIGINT) {
      log->info("signal {}: stopping", sig);
      break;
    }
    bool failed = false;
    for (auto& w : workers) {
      failed = failed || !w->status().fatal_error.empty();
    }
    if (failed) {
      log->error("a subscription cannot continue; exiting so a supervisor restarts the service");
      rc = 1;
      break;
    }
  }
  for (auto& w : workers) {
    w->Stop();
  }
  http.Stop();
  std::filesystem::remove(endpoints_file, ec);
  log->info("carehub-fhir-notify stopped");
  return rc;
}
