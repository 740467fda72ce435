// 9. The PostgreSQL sink (issue 19, docs/postgres-sink.md): a backlog of events loaded into
// PostgreSQL end to end by `carehub-sink postgres` (subscribe, decode, COPY, commit, ack), beside
// two figures from the same run: the plain subscriber (client library, no storage) reading the same
// backlog, and raw `COPY` of the same rows into copies of the same tables (PostgreSQL's own ceiling
// for this data on this machine; in text format, as the sink sends it, and in binary format, as a
// bound on what sending binary rows could gain). The goal the issue set: >= 50,000 events/s.
//
// The PostgreSQL server is the integration tests' throwaway one (tests/integration/pg_cluster.h:
// initdb on a temp dir, Unix socket only, run as the postgres user when we are root), default
// settings apart from max_wal_size.

#include <httplib.h>

#include <chrono>
#include <csignal>
#include <nlohmann/json.hpp>
#include <thread>

#include "hub_runner.h"
#include "ingest_load.h"
#include "pg_cluster.h"
#include "sections.h"

namespace carehub::bench {
namespace {

using Steady = std::chrono::steady_clock;

double Seconds(Steady::time_point since) {
  return std::chrono::duration<double>(Steady::now() - since).count();
}

// GET http://address/path ("" on failure).
std::string HttpGet(const std::string& address, const std::string& path) {
  httplib::Client client("http://" + address);
  client.set_connection_timeout(std::chrono::seconds(2));
  client.set_read_timeout(std::chrono::seconds(5));
  auto res = client.Get(path);
  return res && res->status == 200 ? res->body : "";
}

// The value of an unlabelled Prometheus sample `name` in `text` (0 when absent).
double Sample(const std::string& text, const std::string& name) {
  const size_t at = text.find("\n" + name + " ");
  return at == std::string::npos ? 0 : std::atof(text.c_str() + at + name.size() + 2);
}

struct SinkRun {
  double seconds = 0;              // start to the position reaching the head
  double transaction_seconds = 0;  // of which inside PostgreSQL transactions (the sink's metric)
};

// Starts carehub-sink on `subscription` and waits until its stored position reaches `head`.
Result<SinkRun> RunSink(BenchContext* ctx, const itest::PgCluster& pg, const HubRunner& hub,
                        const std::string& subscription, uint64_t head) {
  const std::filesystem::path binary = ctx->options.carehub_binary.parent_path() / "carehub-sink";
  const std::filesystem::path dir = ctx->NewDir("sink-run");
  const std::filesystem::path endpoints = dir / "endpoints.json";
  const auto t0 = Steady::now();
  std::vector<std::string> argv = {binary.string(),
                                   "postgres",
                                   "--subscription",
                                   subscription,
                                   "--dsn",
                                   pg.Uri(),
                                   "--endpoint",
                                   hub.subscribe_endpoint(),
                                   "--endpoints-file",
                                   endpoints.string(),
                                   "--log-level",
                                   "warn"};
  if (ctx->options.sink_window > 0) {
    argv.insert(argv.end(), {"--window", std::to_string(ctx->options.sink_window)});
  }
  auto child = itest::ChildProcess::Spawn(argv, dir / "sink.out", dir / "sink.log");
  if (!child.ok()) {
    return child.status();
  }
  std::string admin;
  SinkRun run;
  while (true) {
    if (auto ended = child->Poll()) {
      return Status::Error("bench_failed", "carehub-sink exited (" + ended->ToString() +
                                               "): " + itest::ReadFileText(dir / "sink.log"));
    }
    if (Seconds(t0) > 1200) {
      return Status::Error("bench_failed", "carehub-sink did not load the backlog in 1200 s");
    }
    if (admin.empty()) {
      auto j = nlohmann::json::parse(itest::ReadFileText(endpoints), nullptr, false);
      if (!j.is_discarded() && j.contains("admin")) {
        admin = j["admin"].get<std::string>();
      }
    } else {
      auto status = nlohmann::json::parse(HttpGet(admin, "/api/v1/status"), nullptr, false);
      if (!status.is_discarded() && status.value("position", uint64_t{0}) >= head) {
        run.seconds = Seconds(t0);
        break;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  run.transaction_seconds =
      Sample(HttpGet(admin, "/metrics"), "carehub_sink_transaction_seconds_sum");
  child->Signal(SIGTERM);
  auto ended = child->Wait(std::chrono::seconds(60));
  if (!ended || !ended->Exited(0)) {
    return Status::Error("bench_failed", "carehub-sink did not stop cleanly: " +
                                             itest::ReadFileText(dir / "sink.log"));
  }
  return run;
}

// Raw COPY of the rows the sink stored, into copies of its tables (same columns, keys and indexes)
// in one transaction: the seconds it took. `format` is COPY's: text (what the sink sends) or
// binary (no text parsing on the server: what a binary-format sink could at best gain).
Result<double> RawCopy(const itest::PgCluster& pg, const std::string& format) {
  const std::string dir = pg.socket_dir().string();  // the server's own, writable by it
  std::string out_sql, in_sql = "BEGIN;";
  for (const std::string table : {"event", "activity", "referral"}) {
    const std::string copy = "raw_" + format + "_" + table;
    const std::string file = "'" + dir + "/" + copy + ".copy' WITH (FORMAT " + format + ")";
    out_sql += "COPY carehub." + table + " TO " + file + "; CREATE TABLE carehub." + copy +
               " (LIKE carehub." + table + " INCLUDING ALL);";
    in_sql += "COPY carehub." + copy + " FROM " + file + ";";
  }
  in_sql += "COMMIT;";
  auto exported = pg.Psql(out_sql);
  if (!exported.ok()) {
    return exported.status();
  }
  const auto t0 = Steady::now();
  auto loaded = pg.Psql(in_sql);
  if (!loaded.ok()) {
    return loaded.status();
  }
  return Seconds(t0);
}

}  // namespace

Status RunSinkSection(BenchContext* ctx) {
  const std::string sec = "sink";
  const uint64_t events = ctx->options.sink_events;
  auto pg = itest::PgCluster::Start("bench-sink");
  if (!pg.ok()) {
    return pg.status();
  }
  // The backlog is filled with durability os: this section measures reading and loading.
  auto hub = StartHub(ctx, "sink", "os", true);
  if (!hub.ok()) {
    return hub.status();
  }
  auto lo = LoadOptions(*ctx, (*hub)->ingest_endpoint(), events);
  lo.resend_ratio = 0;
  lo.id_prefix = "sink-";
  std::fprintf(stderr, "[%s] filling a backlog of %lu events ...\n", sec.c_str(), events);
  const IngestLoadResult fill = RunIngestLoad(lo);
  if (fill.accepted != events) {
    return Status::Error("bench_failed", "sink backlog: " + std::to_string(fill.accepted) + " of " +
                                             std::to_string(events) + " accepted");
  }
  std::fprintf(stderr, "[%s] plain subscriber from earliest ...\n", sec.c_str());
  auto plain = CatchUp((*hub)->subscribe_endpoint(), "sub-all");
  if (!plain.ok()) {
    return plain.status();
  }
  std::fprintf(stderr, "[%s] carehub-sink postgres from an empty database ...\n", sec.c_str());
  auto sink = RunSink(ctx, *pg.value(), **hub, "sub-all", fill.max_hub_seq);
  if (!sink.ok()) {
    return sink.status();
  }
  auto rows = pg.value()->Psql("SELECT count(*) FROM carehub.event");
  if (!rows.ok() || std::stoull(rows.value()) != plain->second) {
    return Status::Error("bench_failed", "the sink stored " +
                                             (rows.ok() ? rows.value() : rows.status().ToString()) +
                                             " rows, the subscriber read " +
                                             std::to_string(plain->second) + " events");
  }
  std::fprintf(stderr, "[%s] raw COPY of the same rows ...\n", sec.c_str());
  auto raw = RawCopy(*pg.value(), "text");
  if (!raw.ok()) {
    return raw.status();
  }
  auto raw_binary = RawCopy(*pg.value(), "binary");
  if (!raw_binary.ok()) {
    return raw_binary.status();
  }
  const double n = static_cast<double>(plain->second);
  const double plain_rate = plain->first > 0 ? n / plain->first : 0;
  const double sink_rate = sink->seconds > 0 ? n / sink->seconds : 0;
  const double in_tx_rate = sink->transaction_seconds > 0 ? n / sink->transaction_seconds : 0;
  const double raw_rate = *raw > 0 ? n / *raw : 0;
  ctx->report.Set(sec, "events", plain->second);
  ctx->report.Add(sec, "plain_subscriber_per_s", "plain subscriber, events/s (no storage)",
                  plain_rate, "/s");
  ctx->report.Add(sec, "sink_per_s", "carehub-sink into PostgreSQL, events/s end to end", sink_rate,
                  "/s", ">= 50000", sink_rate >= 50'000);
  ctx->report.Add(sec, "sink_in_transactions_per_s",
                  "carehub-sink, events/s counting only time inside its transactions", in_tx_rate,
                  "/s");
  ctx->report.Add(sec, "raw_copy_per_s", "raw COPY of the same rows, events/s (one transaction)",
                  raw_rate, "/s");
  ctx->report.Add(sec, "raw_copy_binary_per_s",
                  "raw COPY of the same rows in binary format, events/s (one transaction)",
                  *raw_binary > 0 ? n / *raw_binary : 0, "/s");
  ctx->report.Add(sec, "sink_vs_subscriber", "sink / plain subscriber",
                  plain_rate > 0 ? sink_rate / plain_rate : 0, "x");
  ctx->report.Add(sec, "sink_vs_raw_copy", "sink / raw COPY",
                  raw_rate > 0 ? sink_rate / raw_rate : 0, "x");
  return (*hub)->Stop();
}

}  // namespace carehub::bench
