// carehub-adapter: runs one source adapter beside a provider's system and publishes what it reads
// to the hub through the durable outbox (docs/adapters.md, "Running the adapters").
//
//   carehub-adapter hl7  --listen HOST:PORT --config FILE   HL7 v2 ADT over MLLP (trust PAS)
//   carehub-adapter fhir --listen HOST:PORT --config FILE   FHIR R4 over HTTP (GP, community)
//   carehub-adapter csv  --watch DIR        --config FILE   CSV drop folder (GP extracts)
//
// Exit codes: 0 after SIGTERM/SIGINT (events not yet answered by the hub stay in the outbox and
// are sent by the next run), 2 on a bad command line or config (one line on stderr), 1 when it
// cannot start (port taken, outbox locked by another process).

#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "carehub/adapters/adapter_config.h"
#include "carehub/adapters/adapter_metrics.h"
#include "carehub/adapters/csv/drop_folder_watcher.h"
#include "carehub/adapters/fhir/fhir_listener.h"
#include "carehub/adapters/hl7/mllp_listener.h"
#include "carehub/adapters/publisher_sink.h"
#include "carehub/client/publisher.h"
#include "carehub/core/address.h"
#include "carehub/core/lifecycle_signals.h"
#include "carehub/core/log.h"
#include "carehub/metrics/admin_http.h"

namespace {

namespace adapters = carehub::adapters;
using carehub::Status;

// One sink for every component's logger, so the process writes one coherent stream. Loggers are
// registered before any library first asks for its own ("hl7", "adapter.fhir", "adapter.csv",
// "publisher").
std::shared_ptr<spdlog::logger> SetUpLogging(const adapters::AdapterConfig& config) {
  auto sink = carehub::MakeStderrLogSink(config.log_format);
  std::shared_ptr<spdlog::logger> main_logger;
  for (const char* name : {"adapter", "hl7", "adapter.fhir", "adapter.csv", "publisher"}) {
    if (spdlog::get(name)) {
      spdlog::drop(name);
    }
    auto logger = std::make_shared<spdlog::logger>(name, sink);
    logger->set_level(spdlog::level::from_str(config.log_level));
    logger->flush_on(spdlog::level::info);
    spdlog::register_logger(logger);
    if (main_logger == nullptr) {
      main_logger = logger;
    }
  }
  spdlog::set_default_logger(main_logger);
  return main_logger;
}

// Written by rename, so a reader never sees half a file; it carries our pid so a reader can tell
// this run's file from a stale one.
Status WriteEndpointsFile(const std::filesystem::path& path, const nlohmann::json& content) {
  std::error_code ec;
  if (!path.parent_path().empty()) {
    std::filesystem::create_directories(path.parent_path(), ec);
  }
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << content.dump() << "\n";
    if (!out.flush()) {
      return Status::Error("write_failed", "cannot write " + tmp.string());
    }
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    return Status::Error("write_failed", "cannot write " + path.string() + ": " + ec.message());
  }
  return Status::Ok();
}

std::string JoinHostPort(const std::string& host, uint16_t port) {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

// A running source: what it serves and how to read its counters.
struct Source {
  std::function<void()> stop;
  std::function<adapters::SourceCounts()> counts;
  std::string bound;  // "HOST:PORT" or the watched folder
};

carehub::Result<Source> StartHl7(const adapters::AdapterConfig& config, const std::string& listen,
                                 adapters::EventSink& sink,
                                 std::unique_ptr<adapters::hl7::MllpListener>* holder) {
  adapters::hl7::MllpOptions options;
  options.listen = listen;
  options.publisher_ods = config.publisher_ods;
  options.allowed_facilities = config.allowed_sites;
  if (!options.allowed_facilities.empty()) {
    // publisher_ods is always allowed, as for FHIR and CSV.
    options.allowed_facilities.push_back(config.publisher_ods);
  }
  options.max_message_bytes = config.hl7.max_message_bytes;
  options.idle_timeout = config.hl7.idle_timeout;
  options.max_connections = config.hl7.max_connections;
  options.identity.application = config.hl7.ack_application;
  options.identity.facility = config.hl7.ack_facility;
  auto listener = std::make_unique<adapters::hl7::MllpListener>(options, sink);
  Status s = listener->Start();
  if (!s.ok()) {
    return s;
  }
  auto host = carehub::ParseHostPort(listen);
  Source source;
  source.bound = JoinHostPort(host->host, listener->port());
  adapters::hl7::MllpListener* raw = listener.get();
  source.stop = [raw] { raw->Stop(); };
  source.counts = [raw] {
    const adapters::hl7::MllpStats st = raw->Stats();
    adapters::SourceCounts c;
    c.accepted = st.messages_accepted;
    c.rejected = st.messages_rejected;
    c.errors = st.errors;
    c.rejected_by_reason = st.rejected_by_reason;
    c.extras["mllp_connections_active"] = static_cast<double>(st.connections_active);
    c.extras["mllp_connections_accepted_total"] = static_cast<double>(st.connections_accepted);
    c.extras["mllp_connections_refused_total"] = static_cast<double>(st.connections_refused);
    c.extras["mllp_idle_timeouts_total"] = static_cast<double>(st.idle_timeouts);
    c.extras["mllp_io_errors_total"] = static_cast<double>(st.io_errors);
    c.extras["mllp_junk_bytes_total"] = static_cast<double>(st.junk_bytes_discarded);
    return c;
  };
  *holder = std::move(listener);
  return source;
}

carehub::Result<Source> StartFhir(const adapters::AdapterConfig& config, const std::string& listen,
                                  adapters::EventSink& sink,
                                  std::unique_ptr<adapters::fhir::FhirListener>* holder) {
  auto host = carehub::ParseHostPort(listen);
  adapters::fhir::FhirListenerOptions options;
  options.host = host->host;
  options.port = host->port;
  options.publisher_ods = config.publisher_ods;
  options.allowed_ods = config.allowed_sites;
  options.source_system = config.source_system;
  options.max_body_bytes = config.fhir.max_body_bytes;
  options.max_remembered_resources = config.fhir.max_remembered_resources;
  auto listener = std::make_unique<adapters::fhir::FhirListener>(options, &sink);
  Status s = listener->Start();
  if (!s.ok()) {
    return s;
  }
  Source source;
  source.bound = JoinHostPort(host->host, static_cast<uint16_t>(listener->port()));
  adapters::fhir::FhirListener* raw = listener.get();
  source.stop = [raw] { raw->Stop(); };
  source.counts = [raw] {
    const adapters::fhir::FhirListenerStats st = raw->Stats();
    adapters::SourceCounts c;
    c.rejected = st.responses_400 + st.responses_413 + st.responses_422;
    c.errors = st.responses_503;
    c.accepted = st.requests > c.rejected + c.errors ? st.requests - c.rejected - c.errors : 0;
    c.rejected_by_reason = {{"http_400", st.responses_400},
                            {"http_413", st.responses_413},
                            {"http_422", st.responses_422}};
    c.extras["fhir_events_published_total"] = static_cast<double>(st.events_published);
    c.extras["fhir_events_rejected_total"] = static_cast<double>(st.events_rejected);
    return c;
  };
  *holder = std::move(listener);
  return source;
}

carehub::Result<Source> StartCsv(const adapters::AdapterConfig& config, const std::string& watch,
                                 adapters::EventSink& sink,
                                 std::unique_ptr<adapters::csv::DropFolderWatcher>* holder) {
  adapters::csv::DropFolderOptions options;
  options.dir = watch;
  options.publisher_ods = config.publisher_ods;
  options.allowed_ods = config.allowed_sites;
  options.source_system = config.source_system;
  options.poll_interval = config.csv.poll_interval;
  options.max_columns = config.csv.max_columns;
  options.max_row_bytes = config.csv.max_row_bytes;
  options.max_file_bytes = config.csv.max_file_bytes;
  options.publish_chunk = config.csv.publish_chunk;
  auto watcher = std::make_unique<adapters::csv::DropFolderWatcher>(options, &sink);
  Status s = watcher->Start();
  if (!s.ok()) {
    return s;
  }
  Source source;
  source.bound = std::filesystem::absolute(watch).lexically_normal().string();
  adapters::csv::DropFolderWatcher* raw = watcher.get();
  source.stop = [raw] { raw->Stop(); };
  source.counts = [raw] {
    const adapters::csv::DropFolderStats st = raw->Stats();
    adapters::SourceCounts c;
    c.accepted = st.files_done;
    c.rejected = st.files_error;
    c.errors = st.files_retried;
    c.extras["csv_rows_published_total"] = static_cast<double>(st.rows_published);
    c.extras["csv_rows_rejected_total"] = static_cast<double>(st.rows_rejected);
    c.extras["csv_sink_failures_total"] = static_cast<double>(st.sink_failures);
    return c;
  };
  *holder = std::move(watcher);
  return source;
}

// Waits for SIGTERM or SIGINT; SIGHUP only says how to apply a changed config.
int WaitForStop(spdlog::logger& log) {
  int sig = carehub::WaitForStopSignal(
      [&log] { log.info("SIGHUP ignored: restart the adapter to apply a changed config"); });
  log.info("{} received: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  return 0;
}

int Fail(int code, const std::string& message) {
  std::fprintf(stderr, "carehub-adapter: %s\n", message.c_str());
  return code;
}

int Run(adapters::AdapterKind kind, const std::string& address, const std::string& config_path) {
  auto loaded = adapters::LoadAdapterConfig(config_path, kind);
  if (!loaded.ok()) {
    return Fail(2, loaded.status().message());
  }
  const adapters::AdapterConfig& config = loaded.value();
  if (kind != adapters::AdapterKind::kCsv) {
    auto listen = carehub::ParseHostPort(address);
    if (!listen.ok()) {
      return Fail(2, "--listen '" + address + "': " + listen.status().message());
    }
  }
  auto log = SetUpLogging(config);

  std::error_code ec;
  std::filesystem::create_directories(config.outbox_dir, ec);
  if (ec) {
    return Fail(1, "cannot create outbox dir " + config.outbox_dir.string() + ": " + ec.message());
  }
  carehub::client::PublisherOptions publisher_options;
  publisher_options.endpoint = config.hub_endpoint;
  publisher_options.outbox_dir = config.outbox_dir;
  publisher_options.curve = config.curve;
  publisher_options.max_batch_events = config.max_batch_events;
  publisher_options.resend_after = config.resend_after;
  auto publisher = carehub::client::Publisher::Open(publisher_options);
  if (!publisher.ok()) {
    return Fail(1, publisher.status().message());
  }
  adapters::PublisherSink sink(publisher.value().get());

  std::unique_ptr<adapters::hl7::MllpListener> hl7;
  std::unique_ptr<adapters::fhir::FhirListener> fhir;
  std::unique_ptr<adapters::csv::DropFolderWatcher> csv;
  carehub::Result<Source> started = Status::Error("unknown_kind", "unknown adapter kind");
  switch (kind) {
    case adapters::AdapterKind::kHl7:
      started = StartHl7(config, address, sink, &hl7);
      break;
    case adapters::AdapterKind::kFhir:
      started = StartFhir(config, address, sink, &fhir);
      break;
    case adapters::AdapterKind::kCsv:
      started = StartCsv(config, address, sink, &csv);
      break;
  }
  if (!started.ok()) {
    publisher.value()->Close();
    return Fail(1, started.status().message());
  }
  Source& source = started.value();
  std::atomic<bool> serving{true};

  // Data quality of what this publisher enqueued (issue 21), beside the source's own counts:
  // carehub_adapter_source_dq_*_total.
  source.counts = [&sink, inner = source.counts] {
    adapters::SourceCounts c = inner();
    const adapters::PublisherSinkStats st = sink.Stats();
    c.extras["dq_events_total"] = static_cast<double>(st.events);
    c.extras["dq_verified_nhs_number_total"] = static_cast<double>(st.dq_verified_nhs_number);
    c.extras["dq_valid_postcode_total"] = static_cast<double>(st.dq_valid_postcode);
    c.extras["dq_valid_practice_total"] = static_cast<double>(st.dq_valid_practice);
    c.extras["dq_valid_codes_total"] = static_cast<double>(st.dq_valid_codes);
    c.extras["dq_flags_total"] = static_cast<double>(st.dq_flags);
    c.extras["dq_delay_seconds_total"] = st.dq_delay_seconds_sum;
    return c;
  };
  carehub::metrics::Registry registry;
  adapters::AdapterMetrics metrics(&registry, kind, config.publisher_ods, publisher.value().get(),
                                   source.counts);
  const std::string kind_name(adapters::AdapterKindName(kind));
  const carehub::client::Publisher* pub = publisher.value().get();
  carehub::metrics::AdminHttpOptions admin_options;
  admin_options.listen = config.admin_listen;
  admin_options.bearer_token = config.admin_token;
  admin_options.unhealthy_reason = [&serving] {
    return serving.load() ? std::string() : std::string("not serving");
  };
  // The hub's silence, with its likely cause, where the operator looks first (issue 22): the
  // source keeps being answered AA/201 from the outbox meanwhile.
  admin_options.warning = [pub] { return pub->Stats().hub_problem; };
  admin_options.status_json = [&, pub] {
    const carehub::client::PublisherStats st = pub->Stats();
    const adapters::SourceCounts counts = source.counts();
    nlohmann::json j = {
        {"kind", kind_name},
        {"publisher_ods", config.publisher_ods},
        {"source", source.bound},
        {"hub_endpoint", config.hub_endpoint},
        {"hub_connected", st.connected},
        {"hub_problem", st.hub_problem},
        {"outbox",
         {{"depth", st.outbox_depth},
          {"oldest_age_seconds", st.oldest_unsent_age_seconds},
          {"enqueued", st.enqueued},
          {"errors_stored", st.errors_stored}}},
        {"hub",
         {{"accepted", st.accepted},
          {"duplicate", st.duplicate},
          {"rejected", st.rejected},
          {"conflict", st.conflict},
          {"retried", st.retried},
          {"rejected_by_reason", st.rejected_by_reason}}},
        {"messages",
         {{"accepted", counts.accepted},
          {"rejected", counts.rejected},
          {"error", counts.errors},
          {"rejected_by_reason", counts.rejected_by_reason}}},
    };
    // This publisher's data quality (issue 21): shares of enqueued events meeting each measure.
    const adapters::PublisherSinkStats sink_stats = sink.Stats();
    auto share = [&sink_stats](uint64_t n) {
      return sink_stats.events == 0
                 ? 0.0
                 : static_cast<double>(n) / static_cast<double>(sink_stats.events);
    };
    j["data_quality"] = {{"events", sink_stats.events},
                         {"verified_nhs_number", share(sink_stats.dq_verified_nhs_number)},
                         {"valid_postcode", share(sink_stats.dq_valid_postcode)},
                         {"valid_practice", share(sink_stats.dq_valid_practice)},
                         {"valid_codes", share(sink_stats.dq_valid_codes)},
                         {"flags", sink_stats.dq_flags},
                         {"mean_delay_seconds", sink_stats.events == 0
                                                    ? 0.0
                                                    : sink_stats.dq_delay_seconds_sum /
                                                          static_cast<double>(sink_stats.events)}};
    return j.dump();
  };
  carehub::metrics::AdminHttpServer admin(admin_options, &registry);
  Status admin_started = admin.Start();
  if (!admin_started.ok()) {
    source.stop();
    publisher.value()->Close();
    return Fail(1, admin_started.message());
  }
  auto admin_host = carehub::ParseHostPort(config.admin_listen);
  const std::string admin_bound = JoinHostPort(admin_host->host, admin.port());

  nlohmann::json endpoints = {{"pid", static_cast<int64_t>(getpid())},
                              {"kind", kind_name},
                              {"publisher_ods", config.publisher_ods},
                              {"admin", admin_bound}};
  endpoints[kind == adapters::AdapterKind::kCsv ? "watch" : "listen"] = source.bound;
  const std::filesystem::path endpoints_file = config.EndpointsFile();
  Status written = WriteEndpointsFile(endpoints_file, endpoints);
  if (!written.ok()) {
    log->warn("{}", written.message());
  }
  log->info("carehub-adapter {} for {} {} {}; admin on {}; hub {}; outbox {}", kind_name,
            config.publisher_ods, kind == adapters::AdapterKind::kCsv ? "watching" : "listening on",
            source.bound, admin_bound, config.hub_endpoint, config.outbox_dir.string());

  int rc = WaitForStop(*log);

  // Source first, so nothing new is acknowledged; in-flight messages finish (each is acknowledged
  // only if it reached the outbox). Then the admin server and the publisher, whose outbox keeps
  // every event the hub has not answered for the next run.
  serving = false;
  source.stop();
  admin.Stop();
  const carehub::client::PublisherStats final_stats = publisher.value()->Stats();
  publisher.value()->Close();
  std::filesystem::remove(endpoints_file, ec);
  log->info("stopped; {} event(s) left in the outbox for the next run", final_stats.outbox_depth);
  spdlog::shutdown();
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"carehub-adapter: publish a provider's HL7 v2, FHIR or CSV feed to a carehub hub"};
  app.require_subcommand(1);
  std::string config_path;
  std::string listen;
  std::string watch;
  CLI::App* hl7 = app.add_subcommand("hl7", "HL7 v2 ADT over MLLP (hospital PAS)");
  hl7->add_option("--listen", listen, "MLLP listen address HOST:PORT (port 0: ephemeral)")
      ->required();
  hl7->add_option("-c,--config", config_path, "adapter YAML config")->required();
  CLI::App* fhir = app.add_subcommand("fhir", "FHIR R4 over HTTP (GP and community systems)");
  fhir->add_option("--listen", listen, "HTTP listen address HOST:PORT (port 0: ephemeral)")
      ->required();
  fhir->add_option("-c,--config", config_path, "adapter YAML config")->required();
  CLI::App* csv = app.add_subcommand("csv", "CSV drop folder (GP and community extracts)");
  csv->add_option("--watch", watch, "folder to watch for *.csv files")->required();
  csv->add_option("-c,--config", config_path, "adapter YAML config")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return Fail(2, std::string(e.what()) + " (run with --help for usage)");
  }

  // Before any thread starts, so only WaitForStop's sigwait sees the lifecycle signals.
  carehub::BlockLifecycleSignals();

  if (hl7->parsed()) {
    return Run(adapters::AdapterKind::kHl7, listen, config_path);
  }
  if (fhir->parsed()) {
    return Run(adapters::AdapterKind::kFhir, listen, config_path);
  }
  return Run(adapters::AdapterKind::kCsv, watch, config_path);
}
