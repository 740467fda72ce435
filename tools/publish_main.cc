// carehub-publish: a command-line publisher for testing and load. Generates realistic synthetic
// events (or reads NDJSON in the protobuf JSON mapping), publishes them through the publisher client
// library with its durable outbox, waits for every answer and prints one JSON summary line.

#include <google/protobuf/util/json_util.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "carehub/client/publisher.h"
#include "carehub/core/log.h"
#include "carehub/core/synthetic.h"
#include "curve_key_options.h"

namespace {

std::atomic<bool> g_interrupted{false};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"carehub-publish: publish synthetic or NDJSON events to a carehub hub"};
  std::string endpoint = "tcp://127.0.0.1:7400";
  uint64_t generate = 0;
  uint32_t population = 10'000;
  double duplicate_ratio = 0;
  double invalid_ratio = 0;
  uint64_t seed = 1;
  std::string from_file;
  std::string outbox = "data/publish-outbox";
  std::string id_prefix;
  std::vector<std::string> publishers;
  size_t chunk = 1000;
  double timeout_s = 600;
  bool no_sync = false;
  int64_t now_unix = 0;
  app.add_option("--endpoint", endpoint, "hub ingest endpoint");
  app.add_option("--generate", generate, "number of synthetic events to generate");
  app.add_option("--population", population, "synthetic patients");
  app.add_option("--duplicate-ratio", duplicate_ratio, "share of events resent (0..1)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--invalid-ratio", invalid_ratio, "share of events made invalid (0..1)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--seed", seed, "generator seed");
  app.add_option("--id-prefix", id_prefix, "event id prefix (default: seed-based)");
  app.add_option("--publisher", publishers, "publisher ODS codes to spread events over");
  app.add_option("--now-unix", now_unix, "generator clock (default: start of today, UTC)");
  app.add_option("--from-file", from_file, "NDJSON file of events (protobuf JSON mapping)");
  app.add_option("--outbox", outbox, "durable outbox directory");
  app.add_option("--chunk", chunk, "events per outbox write");
  app.add_option("--timeout", timeout_s, "seconds to wait for every answer");
  app.add_flag("--no-sync-outbox", no_sync, "do not fsync the outbox (load tests only)");
  carehub::tools::CurveKeyOptions curve_keys;
  carehub::tools::AddCurveKeyOptions(app, &curve_keys);
  CLI11_PARSE(app, argc, argv);
  if (generate == 0 && from_file.empty()) {
    std::cerr << "carehub-publish: give --generate N or --from-file FILE\n";
    return 2;
  }
  carehub::UseStderrForLogs("carehub-publish", spdlog::level::warn);
  std::signal(SIGINT, [](int) { g_interrupted = true; });
  std::signal(SIGTERM, [](int) { g_interrupted = true; });

  carehub::client::PublisherOptions options;
  options.endpoint = endpoint;
  options.outbox_dir = outbox;
  options.sync_outbox = !no_sync;
  auto curve = carehub::tools::ReadCurveKeyOptions(curve_keys);
  if (!curve.ok()) {
    std::cerr << "carehub-publish: " << curve.status().message() << "\n";
    return 2;
  }
  options.curve = curve.value();
  auto publisher = carehub::client::Publisher::Open(options);
  if (!publisher.ok()) {
    std::cerr << "carehub-publish: " << publisher.status().message() << "\n";
    return 1;
  }
  auto& pub = *publisher.value();
  auto start = std::chrono::steady_clock::now();
  uint64_t sent = 0;
  std::vector<carehub::v1::Event> pending;
  auto flush = [&]() -> bool {
    if (pending.empty()) {
      return true;
    }
    auto s = pub.Enqueue(pending);
    if (!s.ok()) {
      std::cerr << "carehub-publish: " << s.message() << "\n";
      return false;
    }
    sent += pending.size();
    pending.clear();
    return true;
  };

  if (generate > 0) {
    carehub::SyntheticOptions so;
    so.seed = seed;
    so.population = population;
    so.id_prefix = id_prefix.empty() ? "s" + std::to_string(seed) + "-" : id_prefix;
    if (!publishers.empty()) {
      so.publishers = publishers;
    }
    // The same seed on the same day gives the same events, so a rerun is a resend (DUPLICATE),
    // not a conflict; --now-unix pins it for tests that span midnight.
    if (now_unix > 0) {
      so.now = std::chrono::system_clock::time_point(std::chrono::seconds(now_unix));
    } else {
      auto days = std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now());
      so.now = std::chrono::system_clock::time_point(days);
    }
    carehub::SyntheticGenerator gen(so);
    std::mt19937_64 rng(seed ^ 0x9e3779b97f4a7c15ULL);
    std::uniform_real_distribution<double> u(0, 1);
    std::vector<carehub::v1::Event> recent;  // resend candidates
    uint64_t produced = 0;
    while (produced < generate && !g_interrupted) {
      if (!recent.empty() && u(rng) < duplicate_ratio) {
        pending.push_back(recent[rng() % recent.size()]);
      } else {
        auto e = gen.Next();
        if (u(rng) < invalid_ratio) {
          (void)gen.MakeInvalid(&e);
        } else if (recent.size() < 10'000) {
          recent.push_back(e);
        } else {
          recent[rng() % recent.size()] = e;
        }
        pending.push_back(std::move(e));
      }
      ++produced;
      if (pending.size() >= chunk && !flush()) {
        return 1;
      }
    }
  } else {
    std::ifstream in(from_file);
    if (!in) {
      std::cerr << "carehub-publish: cannot read " << from_file << "\n";
      return 2;
    }
    std::string line;
    uint64_t line_no = 0;
    while (std::getline(in, line) && !g_interrupted) {
      ++line_no;
      if (line.empty()) {
        continue;
      }
      carehub::v1::Event e;
      auto s = google::protobuf::util::JsonStringToMessage(line, &e);
      if (!s.ok()) {
        std::cerr << "carehub-publish: " << from_file << ":" << line_no
                  << ": not an Event in the protobuf JSON mapping\n";
        return 2;
      }
      pending.push_back(std::move(e));
      if (pending.size() >= chunk && !flush()) {
        return 1;
      }
    }
  }
  if (!flush()) {
    return 1;
  }
  bool drained = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (!g_interrupted && std::chrono::steady_clock::now() < deadline) {
    if (pub.Drain(std::chrono::milliseconds(200))) {
      drained = true;
      break;
    }
  }
  double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  auto stats = pub.Stats();
  nlohmann::json summary = {
      {"sent", sent},
      {"accepted", stats.accepted},
      {"duplicate", stats.duplicate},
      {"rejected", stats.rejected},
      {"conflict", stats.conflict},
      {"rejected_by_reason", stats.rejected_by_reason},
      {"unanswered", stats.outbox_depth},
      {"elapsed_seconds", std::round(elapsed * 1000) / 1000},
      {"events_per_second", elapsed > 0 ? std::round(sent / elapsed) : 0},
  };
  std::cout << summary.dump() << std::endl;
  pub.Close();
  return drained ? 0 : 1;
}
