// Operations: the hub's /metrics against real traffic, and the shipped Prometheus rules and
// scrape config checked by promtool (the real one, installed by scripts/install-deps.sh).

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <regex>
#include <set>

#include "carehub/hub/config.h"
#include "harness/raw_publisher.h"
#include "harness/workload.h"
#include "ops_common.h"

namespace carehub::itest::ops {
namespace {

std::filesystem::path DeployDir() { return std::filesystem::path(CAREHUB_SOURCE_DIR) / "deploy"; }

// The status API's data quality per publisher (issue 21), over events whose quality the test sets
// itself: 40 accepted events, 10 without a postcode, 4 with the national "unknown practice" code
// V81999, 6 of an unidentified patient (local number, NHS number status 03).
TEST(OpsStatus, DataQualityPerPublisherCountsWhatWasAccepted) {
  auto hub = HubProcess::Start(HubOptions("ops-dq"));
  ASSERT_TRUE(hub.ok()) << hub.status().ToString();
  auto& h = *hub.value();
  SyntheticGenerator gen(FixedSyntheticOptions(4321, "dq-"));
  std::vector<v1::Event> events;
  for (int i = 0; i < 40; ++i) {
    v1::Event e = gen.Next();
    e.mutable_envelope()->set_publisher_ods("RR8");
    auto* p = e.mutable_envelope()->mutable_patient();
    p->set_postcode(i < 10 ? "" : "LS1 4AP");
    p->set_registered_gp_ods(i >= 10 && i < 14 ? "V81999" : "B86001");
    if (i >= 20 && i < 26) {
      p->clear_nhs_number();
      p->set_nhs_number_status("03");
      p->set_local_mrn("MRN" + std::to_string(i));
      p->set_mrn_assigning_ods("RR8");
    }
    events.push_back(std::move(e));
  }
  auto pub = RawPublisher::Connect(h.ingest_endpoint());
  ASSERT_TRUE(pub.ok());
  auto results = pub.value()->PublishAll(events, 10, 2, std::chrono::seconds(30));
  ASSERT_TRUE(results.ok()) << results.status().ToString();
  ASSERT_EQ(CountResults(results.value()).accepted, events.size());

  auto status = nlohmann::json::parse(HttpGet(h.admin_address(), "/api/v1/status").body);
  const auto& dq = status["publishers"]["RR8"]["data_quality"];
  ASSERT_TRUE(dq.is_object()) << status.dump();
  EXPECT_EQ(dq["events"].get<uint64_t>(), 40u);
  EXPECT_DOUBLE_EQ(dq["valid_postcode"].get<double>(), 30.0 / 40);
  EXPECT_DOUBLE_EQ(dq["valid_practice"].get<double>(), 36.0 / 40);
  EXPECT_DOUBLE_EQ(dq["verified_nhs_number"].get<double>(), 34.0 / 40);
  EXPECT_GT(dq["mean_delay_seconds"].get<double>(), 0) << "generated events occurred in the past";
}

// The hub runs on the allocator it is built with (jemalloc, CMake target carehub_allocator; a
// sanitizer build keeps the sanitizer's): a link that loses it (a linker dropping a library it
// thinks unused) shows here, in the metric operators see.
TEST(OpsMetrics, HubReportsTheAllocatorItRunsOn) {
  auto hub = HubProcess::Start(HubOptions("ops-allocator"));
  ASSERT_TRUE(hub.ok()) << hub.status().ToString();
  auto& h = *hub.value();
  const auto samples = ParseSamples(HttpGet(h.admin_address(), "/metrics").body);
  std::string allocator;
  for (const auto& sample : samples) {
    if (sample.name == "carehub_allocator_info" && sample.value == 1) {
      allocator = sample.labels.count("allocator") ? sample.labels.at("allocator") : "";
    }
  }
  ASSERT_FALSE(allocator.empty()) << "no carehub_allocator_info sample";
  if (CAREHUB_LINKS_JEMALLOC) {
    EXPECT_EQ(allocator.rfind("jemalloc 5.", 0), 0u) << allocator;
    // jemalloc's own figures: what it holds covers what is in use, and the hub has started
    // (its memtables, caches and threads are more than a megabyte).
    const double allocated = SumSamples(samples, "carehub_allocator_allocated_bytes");
    const double resident = SumSamples(samples, "carehub_allocator_resident_bytes");
    EXPECT_GT(allocated, 1 << 20);
    EXPECT_GE(resident, allocated);
  } else {
    EXPECT_EQ(allocator, "libc malloc");
    EXPECT_EQ(SumSamples(samples, "carehub_allocator_resident_bytes"), 0);
  }
}

TEST(OpsMetrics, CountersMatchTrafficAndPassPromtool) {
  auto hub = HubProcess::Start(HubOptions("ops-metrics", DemoAgreementsYaml()));
  ASSERT_TRUE(hub.ok()) << hub.status().ToString();
  auto& h = *hub.value();

  // Two publishers, resends and invalid events: every counter family gets samples.
  auto summary = RunPublish(h, h.dir(), 3000, 11,
                            {"--duplicate-ratio", "0.1", "--invalid-ratio", "0.05", "--publisher",
                             "M85001", "--publisher", "RY6"});
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  const auto& s = summary.value();
  const double sent = s["sent"].get<double>();
  const double accepted = s["accepted"].get<double>();
  const double duplicate = s["duplicate"].get<double>();
  const double rejected = s["rejected"].get<double>();
  const double conflict = s["conflict"].get<double>();
  ASSERT_EQ(sent, 3000);
  ASSERT_EQ(s["unanswered"].get<double>(), 0);
  ASSERT_GT(duplicate, 0);
  ASSERT_GT(rejected, 0);

  auto answer = HttpGet(h.admin_address(), "/metrics");
  ASSERT_EQ(answer.status, 200);
  auto metrics_file = h.dir() / "metrics.txt";
  {
    std::ofstream out(metrics_file);
    out << answer.body;
  }
  // promtool reads the exposition on stdin and lints it (names, types, HELP, units).
  auto check =
      RunCommand({"/bin/sh", "-c",
                  SystemTool("promtool") + " check metrics < '" + metrics_file.string() + "'"},
                 h.dir(), std::chrono::seconds(30));
  ASSERT_TRUE(check.ok()) << check.status().ToString();
  EXPECT_TRUE(check->status.Exited(0)) << "promtool check metrics:\n" << check->out << check->err;

  auto samples = ParseSamples(answer.body);
  EXPECT_EQ(SumSamples(samples, "carehub_events_received_total"), sent);
  EXPECT_EQ(SumSamples(samples, "carehub_events_accepted_total"), accepted);
  EXPECT_EQ(SumSamples(samples, "carehub_events_duplicate_total"), duplicate);
  EXPECT_EQ(SumSamples(samples, "carehub_events_rejected_total"), rejected);
  EXPECT_EQ(SumSamples(samples, "carehub_events_conflict_total"), conflict);
  EXPECT_EQ(accepted + duplicate + rejected + conflict, sent);
  // By publisher: both ODS codes were used and the split adds up.
  double by_publisher =
      SumSamples(samples, "carehub_events_received_total", {{"publisher", "M85001"}}) +
      SumSamples(samples, "carehub_events_received_total", {{"publisher", "RY6"}});
  EXPECT_GT(SumSamples(samples, "carehub_events_received_total", {{"publisher", "M85001"}}), 0);
  EXPECT_GT(SumSamples(samples, "carehub_events_received_total", {{"publisher", "RY6"}}), 0);
  // Invalid events may carry a broken publisher_ods; only those two or invalid ones exist.
  EXPECT_LE(sent - by_publisher, rejected);

  EXPECT_EQ(SumSamples(samples, "carehub_store_events"), accepted);
  EXPECT_EQ(SumSamples(samples, "carehub_last_hub_seq"), accepted);
  EXPECT_EQ(SumSamples(samples, "carehub_quarantine_records"), rejected + conflict);
  EXPECT_EQ(SumSamples(samples, "carehub_store_writable"), 1);
  EXPECT_GT(SumSamples(samples, "carehub_ingest_batch_seconds_count"), 0);
  EXPECT_GT(SumSamples(samples, "carehub_store_disk_size_bytes"), 0);
  EXPECT_GT(SumSamples(samples, "carehub_store_disk_free_bytes"), 0);
  // The compaction backlog (what reads and writes compete with; the precursor of write stalls).
  EXPECT_TRUE(HasSample(samples, "carehub_store_compactions_running"));
  EXPECT_TRUE(HasSample(samples, "carehub_store_compaction_pending_bytes"));
  // Every subscription of the demo agreements has a lag gauge; nobody consumed yet.
  for (const char* sub : {"lth-direct-care", "ics-analytics-feed", "lch-virtual-ward"}) {
    ASSERT_TRUE(WaitFor(
        [&] {
          auto again = ParseSamples(HttpGet(h.admin_address(), "/metrics").body);
          return SumSamples(again, "carehub_subscription_lag_events", {{"subscription", sub}}) ==
                 accepted;
        },
        std::chrono::seconds(5)))
        << sub;
  }

  // The status API reports the same totals as the metrics.
  auto status = nlohmann::json::parse(HttpGet(h.admin_address(), "/api/v1/status").body);
  EXPECT_EQ(status["totals"]["accepted"].get<double>(), accepted);
  EXPECT_EQ(status["totals"]["received"].get<double>(), sent);
  EXPECT_EQ(status["quarantine_size"].get<double>(), rejected + conflict);

  // Every hub metric the alert rules and the dashboard use exists in a real scrape, so a renamed
  // metric cannot silently disable an alert. Adapter metrics come from adapters, not the hub.
  std::set<std::string> names;
  for (const auto& sample : samples) {
    names.insert(sample.name);
  }
  // Labelled counters appear on first use (no conflict or delivery happened here): those must at
  // least be registered under that exact name somewhere in the hub's sources.
  std::string hub_sources;
  // hub/src and its folders (store/, subscribe/, replication/).
  for (const auto& entry : std::filesystem::recursive_directory_iterator(
           std::filesystem::path(CAREHUB_SOURCE_DIR) / "hub" / "src")) {
    if (entry.is_regular_file()) {
      hub_sources += ReadFileText(entry.path());
    }
  }
  for (const auto& file : {DeployDir() / "prometheus" / "carehub-alerts.yml",
                           DeployDir() / "grafana" / "carehub-dashboard.json"}) {
    std::string text = ReadFileText(file);
    ASSERT_FALSE(text.empty()) << file;
    static const std::regex kName(R"(carehub_[a-z0-9_]+)");
    for (std::sregex_iterator it(text.begin(), text.end(), kName), end; it != end; ++it) {
      std::string name = it->str();
      if (name.rfind("carehub_adapter_", 0) == 0) {
        continue;
      }
      EXPECT_TRUE(names.count(name) || names.count(name + "_bucket") ||
                  hub_sources.find('"' + name + '"') != std::string::npos)
          << file.filename() << " uses " << name << ", which the hub does not export";
    }
  }
  auto stopped = h.Stop();
  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
}

TEST(OpsMetrics, AlertRulesPassPromtoolAndTheirUnitTests) {
  auto dir = DeployDir() / "prometheus";
  TempDir tmp("ops-promtool");
  auto rules =
      RunCommand({SystemTool("promtool"), "check", "rules", (dir / "carehub-alerts.yml").string()},
                 tmp.path(), std::chrono::seconds(30));
  ASSERT_TRUE(rules.ok()) << rules.status().ToString();
  EXPECT_TRUE(rules->status.Exited(0)) << rules->out << rules->err;
  EXPECT_NE(rules->out.find("SUCCESS"), std::string::npos) << rules->out;

  // Each alert fires on the failure it is for and stays quiet on a healthy hub.
  auto tests = RunCommand(
      {SystemTool("promtool"), "test", "rules", (dir / "carehub-alerts_test.yml").string()},
      tmp.path(), std::chrono::seconds(60));
  ASSERT_TRUE(tests.ok()) << tests.status().ToString();
  EXPECT_TRUE(tests->status.Exited(0)) << tests->out << tests->err;

  // The scrape config, with its token path pointed at a file that exists here.
  std::string config = ReadFileText(dir / "prometheus.yml");
  ASSERT_FALSE(config.empty());
  auto token = tmp.path() / "token";
  std::ofstream(token) << "0123456789abcdef0123456789abcdef\n";
  config = std::regex_replace(config, std::regex("/etc/prometheus/carehub-[a-z]+\\.token"),
                              token.string());
  std::ofstream(tmp.path() / "prometheus.yml") << config;
  std::filesystem::copy_file(dir / "carehub-alerts.yml", tmp.path() / "carehub-alerts.yml");
  auto cfg = RunCommand(
      {SystemTool("promtool"), "check", "config", (tmp.path() / "prometheus.yml").string()},
      tmp.path(), std::chrono::seconds(30));
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_TRUE(cfg->status.Exited(0)) << cfg->out << cfg->err;

  // A broken rule file is refused: the check above can fail.
  std::ofstream(tmp.path() / "broken.yml")
      << "groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: rate(up[5m]\n";
  auto broken =
      RunCommand({SystemTool("promtool"), "check", "rules", (tmp.path() / "broken.yml").string()},
                 tmp.path(), std::chrono::seconds(30));
  ASSERT_TRUE(broken.ok());
  EXPECT_FALSE(broken->status.Exited(0));
}

TEST(OpsDeploy, ConfigsAndManifestsAreWellFormed) {
  // The deploy hub config passes the hub's own strict parser: curve mode, token, no typos.
  auto hub_yaml = DeployDir() / "config" / "hub.yaml";
  auto config = hub::ParseHubConfig(ReadFileText(hub_yaml), hub_yaml.parent_path());
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_TRUE(config->curve);
  EXPECT_FALSE(config->admin_token_file.empty());
  EXPECT_FALSE(config->identities_file.empty());

  // Kubernetes: every document has apiVersion and kind; the hub's probes use /readyz and /healthz
  // on the admin port, and its embedded config parses too.
  std::map<std::string, int> kinds;
  for (const char* file : {"namespace.yaml", "hub.yaml", "adapters.yaml", "kustomization.yaml"}) {
    auto docs = YAML::LoadAllFromFile((DeployDir() / "k8s" / file).string());
    ASSERT_FALSE(docs.empty()) << file;
    for (const auto& doc : docs) {
      ASSERT_TRUE(doc["apiVersion"] && doc["kind"]) << file;
      auto kind = doc["kind"].as<std::string>();
      ++kinds[kind];
      if (kind == "StatefulSet") {
        auto container = doc["spec"]["template"]["spec"]["containers"][0];
        EXPECT_EQ(container["readinessProbe"]["httpGet"]["path"].as<std::string>(), "/readyz");
        EXPECT_EQ(container["livenessProbe"]["httpGet"]["path"].as<std::string>(), "/healthz");
        EXPECT_TRUE(doc["spec"]["volumeClaimTemplates"].IsSequence());
      }
      if (kind == "ConfigMap" && doc["data"]["hub.yaml"]) {
        auto embedded = hub::ParseHubConfig(doc["data"]["hub.yaml"].as<std::string>(), "/");
        EXPECT_TRUE(embedded.ok()) << embedded.status().ToString();
      }
    }
  }
  EXPECT_EQ(kinds["StatefulSet"], 1);
  EXPECT_EQ(kinds["Deployment"], 3);
  EXPECT_GE(kinds["Service"], 4);

  // The dashboard is JSON with panels.
  auto dashboard = nlohmann::json::parse(
      ReadFileText(DeployDir() / "grafana" / "carehub-dashboard.json"), nullptr, false);
  ASSERT_TRUE(dashboard.is_object());
  EXPECT_GE(dashboard["panels"].size(), 10u);

  // systemd units are hardened.
  for (const char* unit : {"carehub.service", "carehub-adapter-hl7.service",
                           "carehub-adapter-fhir.service", "carehub-adapter-csv.service"}) {
    std::string text = ReadFileText(DeployDir() / "systemd" / unit);
    for (const char* directive : {"ProtectSystem=strict", "NoNewPrivileges=yes", "StateDirectory=",
                                  "User=", "CapabilityBoundingSet=", "PrivateTmp=yes"}) {
      EXPECT_NE(text.find(directive), std::string::npos) << unit << " lacks " << directive;
    }
  }
}

}  // namespace
}  // namespace carehub::itest::ops
