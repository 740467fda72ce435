// carehub-bench: starts its own hubs (and a NATS server) on temp data dirs and measures ingest,
// fan-out, catch-up, latency, footprint, the machine's raw limits and NATS JetStream with the same
// events. Prints one table and writes the figures as JSON. `make bench` runs it.
#include <spdlog/spdlog.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "carehub/core/allocator.h"
#include "sections.h"

namespace {

using carehub::bench::BenchContext;

std::string ReadFirstMatch(const std::string& file, const std::string& prefix) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) {
      auto colon = line.find(':');
      auto v = colon == std::string::npos ? line : line.substr(colon + 1);
      return v.substr(v.find_first_not_of(" \t"));
    }
  }
  return "";
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

std::string FsType(const std::filesystem::path& dir) {
  struct statfs sf {};
  if (statfs(dir.c_str(), &sf) != 0) {
    return "?";
  }
  switch (static_cast<unsigned long>(sf.f_type)) {
    case 0xEF53:
      return "ext4";
    case 0x01021994:
      return "tmpfs";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case 0x794c7630:
      return "overlayfs";
    default: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "0x%lx", static_cast<unsigned long>(sf.f_type));
      return buf;
    }
  }
}

std::string Quote(const std::string& s) {
  if (s.find_first_of(" \t'\"$") == std::string::npos) {
    return s;
  }
  return "'" + s + "'";
}

}  // namespace

namespace carehub::bench {
std::filesystem::path BenchContext::NewDir(const std::string& tag) {
  static int counter = 0;
  auto dir = options.work_dir / (tag + "-" + std::to_string(++counter));
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(dir);
  return dir;
}
}  // namespace carehub::bench

int main(int argc, char** argv) {
  BenchContext ctx;
  auto& o = ctx.options;
  auto self = std::filesystem::canonical("/proc/self/exe");
  o.carehub_binary = self.parent_path() / "carehub";
  std::filesystem::path json_out = self.parent_path().parent_path() / "carehub-bench.json";
  std::filesystem::path work_root;
  if (const char* t = std::getenv("TMPDIR")) {
    work_root = t;
  } else {
    work_root = "/tmp";
  }
  bool s_ingest = false, s_curve = false, s_fanout = false, s_catchup = false, s_latency = false,
       s_footprint = false, s_growth = false, s_limits = false, s_nats = false,
       s_replication = false, s_sink = false, s_disclosures = false;
  CLI::App app{"carehub-bench: carehub against NATS JetStream and the machine's own limits"};
  app.add_flag("--quick", o.quick, "small counts (under 2 minutes); used by ctest");
  app.add_flag("--ingest", s_ingest, "1. ingest, fsync and os durability");
  app.add_flag("--curve", s_curve, "1b. ingest (fsync) over CURVE beside plain");
  app.add_flag("--fanout", s_fanout, "2. fan-out to 10 live subscriptions");
  app.add_flag("--catchup", s_catchup, "3. catch-up of a 1% and a full subscription");
  app.add_flag("--latency", s_latency, "4. publisher-to-subscriber latency at a steady rate");
  app.add_flag("--footprint", s_footprint, "5. RSS, disk per million events, dedup lookups");
  app.add_flag("--growth", s_growth,
               "5b. ingest (fsync) on a hub filled to --growth-events beside an empty hub");
  app.add_flag("--limits", s_limits, "6. raw ZeroMQ, RocksDB and protobuf limits");
  app.add_flag("--nats", s_nats, "7. NATS JetStream with the same events");
  app.add_flag("--replication", s_replication,
               "8. a synchronous standby pair beside a single hub; async standby lag");
  app.add_flag("--sink", s_sink,
               "9. carehub-sink into PostgreSQL beside the plain subscriber and raw COPY");
  app.add_flag("--disclosures", s_disclosures,
               "10. one patient's disclosure report in a store of --disclosure-events deliveries");
  app.add_option("--disclosure-events", o.disclosure_events,
                 "delivered events filed for the disclosure section (default 20M)");
  app.add_option("--json-out", json_out, "results file");
  app.add_option("--work-dir", work_root, "where temp data dirs go (default $TMPDIR or /tmp)");
  app.add_option("--carehub", o.carehub_binary, "the carehub daemon");
  app.add_option("--nats-server", o.nats_server);
  app.add_option("--connections", o.connections, "ingest connections");
  app.add_option("--batch", o.batch_events, "events per Publish batch");
  app.add_option("--window", o.window_batches, "batches in flight per connection");
  app.add_option("--resend-ratio", o.resend_ratio);
  app.add_option("--events", o.ingest_events, "ingest section event count");
  app.add_option("--fanout-events", o.fanout_events);
  std::string fanout_views = "distinct";
  app.add_option("--fanout-views", fanout_views,
                 "the fan-out section's ten subscriptions: distinct (ten agreements, from all "
                 "events to 1%) or one (one subscriber's ten subscriptions under one agreement; "
                 "NATS's ten consumers all on fan.>)")
      ->check(CLI::IsMember({"distinct", "one"}));
  app.add_option("--catchup-events", o.catchup_events, "backlog size");
  app.add_option("--latency-rate", o.latency_rate);
  app.add_option("--latency-seconds", o.latency_seconds);
  app.add_option("--latency-batch", o.latency_batch, "events per batch at the steady rate");
  app.add_option("--latency-runs", o.latency_runs,
                 "latency runs per durability (the target: p99 below it in 5 of 5)");
  app.add_option("--latency-trace", o.latency_trace,
                 "write each publish batch's due time, answer and delivery latency to "
                 "PATH.<section> (one line per batch, milliseconds)");
  app.add_option("--footprint-events", o.footprint_events);
  app.add_option("--dedup-keys", o.dedup_keys, "dedup index sizes for the lookup benchmark");
  app.add_option("--growth-events", o.growth_events,
                 "events the growth section stores (os durability) before its measured load");
  std::string growth_ids = "random";
  app.add_option("--growth-ids", growth_ids,
                 "id shape of the growth fill: random (UUIDs, as FHIR) or sequential (a counter "
                 "per sending system, as HL7 v2)")
      ->check(CLI::IsMember({"random", "sequential"}));
  app.add_option(
      "--growth-stored-resends", o.growth_stored_resend_ratio,
      "share of the replay pairs' filled loads resending old stored events (shown beside the "
      "target's pairs; 0: no replay pairs)");
  app.add_option("--growth-pairs", o.growth_pairs,
                 "back-to-back loads on an empty and on the filled hub; the figure is the median "
                 "of their ratios");
  app.add_option("--limits-events", o.limits_events);
  app.add_option("--nats-events", o.nats_events);
  app.add_option("--sink-events", o.sink_events, "backlog the sink section loads into PostgreSQL");
  app.add_option("--sink-window", o.sink_window,
                 "carehub-sink --window (events the hub may send ahead; 0: its default)");
  // --quick sets small defaults; explicit counts given with it still win.
  app.parse_complete_callback([&] {
    if (!o.quick) {
      return;
    }
    auto unless_given = [&](const char* name, auto* field, auto value) {
      if (app.count(name) == 0) {
        *field = value;
      }
    };
    // Sized so that the whole run stays under 2 minutes even on a busy 2-core machine.
    unless_given("--events", &o.ingest_events, uint64_t{40'000});
    unless_given("--fanout-events", &o.fanout_events, uint64_t{20'000});
    unless_given("--catchup-events", &o.catchup_events, uint64_t{60'000});
    unless_given("--latency-rate", &o.latency_rate, 5'000.0);
    unless_given("--latency-seconds", &o.latency_seconds, 2.0);
    unless_given("--latency-runs", &o.latency_runs, uint32_t{1});
    unless_given("--footprint-events", &o.footprint_events, uint64_t{40'000});
    unless_given("--growth-events", &o.growth_events, uint64_t{200'000});
    unless_given("--limits-events", &o.limits_events, uint64_t{200'000});
    unless_given("--nats-events", &o.nats_events, uint64_t{40'000});
    unless_given("--sink-events", &o.sink_events, uint64_t{20'000});
    if (app.count("--dedup-keys") == 0) {
      o.dedup_keys = {1'000'000};
    }
  });
  CLI11_PARSE(app, argc, argv);
  o.growth_random_ids = growth_ids == "random";
  o.fanout_one_view = fanout_views == "one";
  spdlog::set_level(spdlog::level::warn);
  bool all = !(s_ingest || s_curve || s_fanout || s_catchup || s_latency || s_footprint ||
               s_growth || s_limits || s_nats || s_replication || s_sink || s_disclosures);
  o.work_dir = work_root / ("carehub-bench-" + std::to_string(getpid()));
  std::filesystem::create_directories(o.work_dir);
  if (!std::filesystem::exists(o.carehub_binary)) {
    std::fprintf(stderr, "carehub-bench: no carehub binary at %s\n", o.carehub_binary.c_str());
    return 2;
  }

  std::string command;
  for (int i = 0; i < argc; ++i) {
    command += (i ? " " : "") + Quote(i == 0 ? self.string() : argv[i]);
  }
  utsname un{};
  uname(&un);
  auto& j = ctx.report.json();
  j["command"] = command;
  j["machine"] = {
      {"cpu", ReadFirstMatch("/proc/cpuinfo", "model name")},
      {"cores", std::thread::hardware_concurrency()},
      {"memory", ReadFirstMatch("/proc/meminfo", "MemTotal")},
      {"kernel", std::string(un.sysname) + " " + un.release},
      {"work_dir", o.work_dir.string()},
      {"work_dir_fs", FsType(o.work_dir)},
      {"load_at_start", LoadAverage()},
      {"bench_allocator", carehub::AllocatorName()},
  };
  j["options"] = {{"quick", o.quick},
                  {"connections", o.connections},
                  {"batch_events", o.batch_events},
                  {"window_batches", o.window_batches},
                  {"resend_ratio", o.resend_ratio}};
  std::printf("carehub-bench%s\n",
              o.quick ? " (quick: small counts, figures are indicative only)" : "");
  std::printf("machine: %s, %u cores, %s RAM, %s, data on %s (%s)\n",
              j["machine"]["cpu"].get<std::string>().c_str(), std::thread::hardware_concurrency(),
              j["machine"]["memory"].get<std::string>().c_str(),
              j["machine"]["kernel"].get<std::string>().c_str(), o.work_dir.c_str(),
              j["machine"]["work_dir_fs"].get<std::string>().c_str());
  std::printf("benchmark's own allocator (load, readers, raw baselines): %s\n",
              carehub::AllocatorName().c_str());
  std::printf("load average at start (uptime): %s\n", LoadAverage().c_str());
  std::fflush(stdout);

  struct Section {
    const char* name;
    bool selected;
    std::function<carehub::Status(BenchContext*)> run;
  };
  std::vector<Section> sections = {
      {"limits", s_limits, carehub::bench::RunLimitsSection},
      {"ingest", s_ingest, carehub::bench::RunIngestSection},
      {"curve", s_curve, carehub::bench::RunCurveSection},
      {"fanout", s_fanout, carehub::bench::RunFanoutSection},
      {"catchup", s_catchup, carehub::bench::RunCatchupSection},
      {"latency", s_latency, carehub::bench::RunLatencySection},
      {"footprint", s_footprint, carehub::bench::RunFootprintSection},
      {"growth", s_growth, carehub::bench::RunGrowthSection},
      {"nats", s_nats, carehub::bench::RunNatsSection},
      {"replication", s_replication, carehub::bench::RunReplicationSection},
      {"sink", s_sink, carehub::bench::RunSinkSection},
      {"disclosures", s_disclosures, carehub::bench::RunDisclosureSection},
  };
  int failures = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (auto& s : sections) {
    if (!all && !s.selected) {
      continue;
    }
    auto ts = std::chrono::steady_clock::now();
    auto status = s.run(&ctx);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - ts).count();
    j["section_seconds"][s.name] = secs;
    j["load_after"][s.name] = LoadAverage();
    std::fprintf(stderr, "[%s] %s in %.1f s, load %s\n", s.name, status.ok() ? "done" : "FAILED",
                 secs, LoadAverage().c_str());
    if (!status.ok()) {
      ++failures;
      j["errors"][s.name] = status.ToString();
      std::fprintf(stderr, "carehub-bench: %s: %s\n", s.name, status.ToString().c_str());
    }
  }
  carehub::bench::AddComparisons(&ctx);
  carehub::bench::AddTargetSummary(&ctx);
  double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  j["machine"]["load_at_end"] = LoadAverage();
  j["total_seconds"] = total_s;
  std::printf("\n");
  ctx.report.Print(stdout);
  std::printf("\nload average at end (uptime): %s; total %.0f s\n", LoadAverage().c_str(), total_s);
  std::printf("reproduce: %s\n", command.c_str());
  {
    std::ofstream out(json_out);
    out << j.dump(2) << "\n";
  }
  std::printf("results: %s\n", json_out.c_str());
  std::error_code ec;
  std::filesystem::remove_all(o.work_dir, ec);
  return failures == 0 ? 0 : 1;
}
