// carehub-analytics: the ICS analytics team's subscriber. Follows a secondary-use subscription,
// keeps the facts it needs in its own RocksDB state (acknowledging to the hub only after they are
// synced, so a crash loses nothing and a restart resumes where it stopped), and writes a
// self-contained HTML report plus the indicator counts as JSON.
//
//   carehub-analytics --state DIR --report report.html --practices practices.csv
//                     [--subscription ics-analytics-feed] [--endpoint tcp://127.0.0.1:7401]
//                     [--exit-when-idle SECONDS]
//
// Exit codes: 0 on SIGTERM/SIGINT or when idle as asked, 1 on a runtime failure, 2 on bad usage.

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "carehub/analytics/indicators.h"
#include "carehub/analytics/report.h"
#include "carehub/analytics/state_store.h"
#include "carehub/client/subscriber.h"

namespace {

using carehub::Status;
namespace analytics = carehub::analytics;

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop = true; }

Status WriteAtomically(const std::filesystem::path& path, const std::string& text) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc | std::ios::binary);
    out << text;
    if (!out.flush()) {
      return Status::Error("write_failed", "cannot write " + tmp.string());
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    return Status::Error("write_failed", "cannot write " + path.string() + ": " + ec.message());
  }
  return Status::Ok();
}

Status WriteReport(const analytics::StateStore& store, const analytics::PracticeList& practices,
                   const std::filesystem::path& report) {
  auto facts = store.LoadFacts();
  if (!facts.ok()) {
    return facts.status();
  }
  const analytics::Indicators indicators = analytics::ComputeIndicators(facts.value());
  std::filesystem::path json_path = report;
  json_path.replace_extension(".json");
  nlohmann::json json = indicators.ToJson();
  json["list_sizes"] = practices.sizes;
  // Beside the indicators: it depends on when the feed ran, not only on what it carried.
  json["median_delay_minutes"] = indicators.median_delay_minutes;
  Status s = WriteAtomically(json_path, json.dump(1) + "\n");
  if (!s.ok()) {
    return s;
  }
  return WriteAtomically(report, analytics::RenderReportHtml(indicators, practices));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"carehub-analytics: ICS population-health report from a secondary-use feed"};
  std::string endpoint = "tcp://127.0.0.1:7401";
  std::string subscription = "ics-analytics-feed";
  std::string state_dir;
  std::string report;
  std::string practices_path;
  double exit_when_idle = 0;
  uint32_t window = 5000;
  app.add_option("--endpoint", endpoint, "hub subscribe endpoint");
  app.add_option("--subscription", subscription, "secondary-use subscription to follow");
  app.add_option("--state", state_dir, "state folder (RocksDB)")->required();
  app.add_option("--report", report, "HTML report to write (indicators go beside it as .json)")
      ->required();
  app.add_option("--practices", practices_path,
                 "practice list CSV: practice_ods,pcn,registered_patients")
      ->required();
  app.add_option("--exit-when-idle", exit_when_idle,
                 "exit once caught up and nothing new arrived for this many seconds (0: never)");
  app.add_option("--window", window, "events the hub may have outstanding towards us");
  uint32_t pause_ms = 0;
  app.add_option("--pause-ms", pause_ms,
                 "pause after applying each delivery (throttles a backfill so it does not compete "
                 "with live work; tests use it to stop a run half-way)");
  CLI11_PARSE(app, argc, argv);

  std::string error;
  std::optional<analytics::PracticeList> practices =
      analytics::ReadPracticeList(practices_path, &error);
  if (!practices) {
    std::fprintf(stderr, "carehub-analytics: %s\n", error.c_str());
    return 2;
  }
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  auto store = analytics::StateStore::Open(state_dir);
  if (!store.ok()) {
    std::fprintf(stderr, "carehub-analytics: %s\n", store.status().ToString().c_str());
    return 1;
  }
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);

  carehub::client::SubscriberOptions options;
  options.endpoint = endpoint;
  options.subscription = subscription;
  options.window = window;
  // Our own cursor is the truth: the hub's may lag it by the last unacknowledged delivery.
  if (store.value()->cursor() > 0) {
    options.start = carehub::v1::Subscribe::START_AT_SEQ;
    options.start_seq = store.value()->cursor() + 1;
  } else {
    options.start = carehub::v1::Subscribe::START_EARLIEST;
  }
  auto subscriber = carehub::client::Subscriber::Open(options);
  if (!subscriber.ok()) {
    std::fprintf(stderr, "carehub-analytics: %s\n", subscriber.status().ToString().c_str());
    return 1;
  }
  std::fprintf(stderr, "carehub-analytics: following %s from hub_seq %llu\n", subscription.c_str(),
               static_cast<unsigned long long>(store.value()->cursor() + 1));

  using Clock = std::chrono::steady_clock;
  auto last_activity = Clock::now();
  auto last_progress = Clock::now();
  bool dirty = true;  // the report may not reflect the stored state yet
  uint64_t head = 0;
  while (!g_stop) {
    auto next = subscriber.value()->Next(std::chrono::milliseconds(250));
    if (!next.ok()) {
      std::fprintf(stderr, "carehub-analytics: %s\n", next.status().ToString().c_str());
      return 1;
    }
    const auto now = Clock::now();
    if (next.value().has_value()) {
      const carehub::client::DeliveryBatch& batch = *next.value();
      head = std::max(head, batch.head_seq);
      const uint64_t before = store.value()->cursor();
      Status applied = store.value()->Apply(batch.events, batch.scanned_to_seq);
      if (pause_ms > 0 && !batch.events.empty()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
      }
      if (!applied.ok()) {
        std::fprintf(stderr, "carehub-analytics: %s\n", applied.ToString().c_str());
        return 1;
      }
      Status acked = subscriber.value()->Ack(store.value()->cursor());
      if (!acked.ok()) {
        std::fprintf(stderr, "carehub-analytics: ack: %s\n", acked.ToString().c_str());
      }
      if (store.value()->cursor() != before) {
        dirty = true;
        last_activity = now;
      }
      if (now - last_progress > std::chrono::seconds(1)) {
        last_progress = now;
        std::fprintf(
            stderr, "carehub-analytics: applied up to hub_seq %llu of %llu (%llu facts this run)\n",
            static_cast<unsigned long long>(store.value()->cursor()),
            static_cast<unsigned long long>(head),
            static_cast<unsigned long long>(store.value()->facts_written()));
      }
      continue;
    }
    const bool caught_up = store.value()->cursor() >= head;
    if (caught_up && dirty && now - last_activity > std::chrono::seconds(1)) {
      Status written = WriteReport(*store.value(), *practices, report);
      if (!written.ok()) {
        std::fprintf(stderr, "carehub-analytics: %s\n", written.ToString().c_str());
        return 1;
      }
      dirty = false;
      std::fprintf(stderr, "carehub-analytics: caught up at hub_seq %llu; report %s\n",
                   static_cast<unsigned long long>(store.value()->cursor()), report.c_str());
    }
    if (exit_when_idle > 0 && caught_up && !dirty &&
        now - last_activity > std::chrono::duration<double>(exit_when_idle)) {
      return 0;
    }
  }
  if (dirty) {
    Status written = WriteReport(*store.value(), *practices, report);
    if (!written.ok()) {
      std::fprintf(stderr, "carehub-analytics: %s\n", written.ToString().c_str());
      return 1;
    }
  }
  return 0;
}
