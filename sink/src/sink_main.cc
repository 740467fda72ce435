// carehub-sink: materialises a carehub subscription into an external store. One store so far:
//
//   carehub-sink postgres --subscription NAME --dsn postgresql://... [--config sink.yaml] ...
//   carehub-sink report --dsn postgresql://... --practices practices.csv --out report.html
//                       [--schema carehub] [--from YYYY-MM-DD --to YYYY-MM-DD]
//
// `report` writes the funnel plots and XmR charts computed from the tables (warehouse_report.h).
// Flags override the config file (sink_config.h). Exit codes: 0 after SIGTERM/SIGINT (the open
// transaction is committed first) or when idle as asked; 1 on a fatal runtime error (the hub
// refused the subscription, the schema is newer than this binary ...); 2 on a bad config or usage,
// with a one-line reason on stderr. docs/postgres-sink.md has the schema and guarantees.

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "carehub/metrics/admin_http.h"
#include "carehub/sink/postgres_sink.h"
#include "carehub/sink/sink_config.h"
#include "carehub/sink/warehouse_report.h"

namespace {

using carehub::Status;
namespace sink = carehub::sink;

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop = true; }

void SetUpLogging(const std::string& level) {
  auto out = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  out->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%-5l%$ [%n] %v");
  auto logger = std::make_shared<spdlog::logger>("sink", out);
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
  spdlog::drop("sink");
  spdlog::register_logger(logger);
}

int Fail(int code, const std::string& reason) {
  std::fprintf(stderr, "carehub-sink: %s\n", reason.c_str());
  return code;
}

Status WriteEndpoints(const std::string& path, const std::string& host, uint16_t port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << nlohmann::json{{"admin", host + ":" + std::to_string(port)}, {"pid", getpid()}}.dump()
        << "\n";
    if (!out.flush()) {
      return Status::Error("bad_config", "cannot write " + tmp);
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return Status::Error("bad_config", "cannot write " + path);
  }
  return Status::Ok();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"carehub-sink: materialise a carehub subscription into an external store"};
  app.require_subcommand(1);
  CLI::App* pg = app.add_subcommand(
      "postgres", "load a subscription into PostgreSQL, exactly once (docs/postgres-sink.md)");
  std::string config_path;
  std::string subscription, dsn, schema, endpoint, key_file, server_key_file, admin_listen;
  std::string endpoints_file, log_level;
  uint32_t window = 0, batch_events = 0, batch_delay_ms = 0;
  double exit_when_idle = -1;
  pg->add_option("--config", config_path, "YAML config file (flags override it)");
  pg->add_option("--subscription", subscription, "subscription to follow");
  pg->add_option("--dsn", dsn, "libpq connection string or URI, e.g. postgresql:///carehub");
  pg->add_option("--schema", schema, "PostgreSQL schema for the tables (default carehub)");
  pg->add_option("--endpoint", endpoint, "hub subscribe endpoint (default tcp://127.0.0.1:7401)");
  pg->add_option("--key", key_file, "CURVE client key file");
  pg->add_option("--server-key", server_key_file, "the hub's CURVE public key file");
  pg->add_option("--window", window, "events the hub may have outstanding towards us");
  pg->add_option("--batch-events", batch_events, "commit after this many events");
  pg->add_option("--batch-delay-ms", batch_delay_ms,
                 "commit when the oldest event waited this long");
  pg->add_option("--admin-listen", admin_listen, "HOST:PORT for /metrics and /healthz");
  pg->add_option("--endpoints-file", endpoints_file,
                 "write {\"admin\": HOST:PORT, \"pid\": N} here once listening");
  pg->add_option("--log-level", log_level, "trace | debug | info | warn | error");
  pg->add_option("--exit-when-idle", exit_when_idle,
                 "exit 0 once caught up and idle for this many seconds (0: never)");
  CLI::App* report = app.add_subcommand(
      "report",
      "write the funnel plots and SPC charts computed from the tables (docs/postgres-sink.md)");
  sink::WarehouseReportOptions report_options;
  report->add_option("--dsn", report_options.dsn, "libpq connection string or URI")->required();
  report->add_option("--schema", report_options.schema, "schema the sink writes (default carehub)");
  report
      ->add_option("--practices", report_options.practices_path,
                   "practice list CSV: practice_ods,pcn,registered_patients")
      ->required();
  report->add_option("--out", report_options.out_path, "HTML page to write")->required();
  report->add_option("--from", report_options.from, "first day, YYYY-MM-DD (UTC)");
  report->add_option("--to", report_options.to, "day after the last, YYYY-MM-DD (UTC)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line, as for a bad config file.
    return Fail(2, std::string("bad usage: ") + e.what() + " (see carehub-sink --help)");
  }
  if (report->parsed()) {
    std::string summary;
    Status written = sink::WriteWarehouseReport(report_options, &summary);
    if (!written.ok()) {
      return Fail(written.code() == "bad_config" ? 2 : 1, written.message());
    }
    std::fprintf(stderr, "carehub-sink: %s\n", summary.c_str());
    return 0;
  }

  sink::SinkConfig config;
  if (!config_path.empty()) {
    auto loaded = sink::LoadSinkConfigFile(config_path);
    if (!loaded.ok()) {
      return Fail(2, loaded.status().message());
    }
    config = std::move(loaded).value();
  }
  auto set = [](auto& field, const auto& value, bool given) {
    if (given) {
      field = value;
    }
  };
  set(config.subscription, subscription, !subscription.empty());
  set(config.dsn, dsn, !dsn.empty());
  set(config.schema, schema, !schema.empty());
  set(config.hub_endpoint, endpoint, !endpoint.empty());
  set(config.client_key_file, key_file, !key_file.empty());
  set(config.server_public_key_file, server_key_file, !server_key_file.empty());
  set(config.window, window, window > 0);
  set(config.batch_max_events, batch_events, batch_events > 0);
  set(config.batch_max_delay_ms, batch_delay_ms, batch_delay_ms > 0);
  set(config.admin_listen, admin_listen, !admin_listen.empty());
  set(config.admin_endpoints_file, endpoints_file, !endpoints_file.empty());
  set(config.log_level, log_level, !log_level.empty());
  set(config.exit_when_idle_s, exit_when_idle, exit_when_idle >= 0);
  if (Status valid = sink::ValidateSinkConfig(config); !valid.ok()) {
    return Fail(2, valid.message());
  }

  SetUpLogging(config.log_level);
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  std::signal(SIGPIPE, SIG_IGN);

  carehub::metrics::Registry registry;
  sink::PostgresSink postgres_sink(config, &registry);
  carehub::metrics::AdminHttpOptions admin_options;
  admin_options.listen = config.admin_listen;
  admin_options.bearer_token = config.admin_bearer_token;
  admin_options.unhealthy_reason = [&] { return postgres_sink.UnhealthyReason(); };
  admin_options.status_json = [&] { return postgres_sink.StatusJson(); };
  carehub::metrics::AdminHttpServer admin(admin_options, &registry);
  if (Status started = admin.Start(); !started.ok()) {
    return Fail(2, started.message());
  }
  const std::string admin_host = config.admin_listen.substr(0, config.admin_listen.rfind(':'));
  spdlog::get("sink")->info("admin on {}:{} (/metrics, /healthz, /api/v1/status)", admin_host,
                            admin.port());
  if (!config.admin_endpoints_file.empty()) {
    if (Status written = WriteEndpoints(config.admin_endpoints_file, admin_host, admin.port());
        !written.ok()) {
      return Fail(2, written.message());
    }
  }
  Status ran = postgres_sink.Run(g_stop);
  admin.Stop();
  if (!ran.ok()) {
    return Fail(ran.code() == "bad_config" ? 2 : 1, ran.ToString());
  }
  return 0;
}
