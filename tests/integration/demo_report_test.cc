// scripts/demo.sh end to end on a small synthetic ICS (a few thousand patients), through the real
// hub, adapters and subscribers: the analytics report must equal the indicators the generator
// computed from its own records; a carehub-analytics killed with SIGKILL half-way and restarted
// must produce the same report as an uninterrupted run; the report must render in headless
// chromium with its charts and without console errors.
//
// Each test runs the demo in its own temp dir, on ports derived from the process id so ctest may
// run the cases side by side.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>

#include "carehub/analytics/state_store.h"
#include "harness/child_process.h"
#include "harness/ports.h"

namespace carehub::itest {
namespace {

namespace fs = std::filesystem;

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

nlohmann::json ReadJson(const fs::path& path) { return nlohmann::json::parse(ReadAll(path)); }

// The demo runs on fixed ports (base, base+1 ingest/subscribe, base+80 admin), like the embedded
// default; the harness picks a base below the ephemeral range whose three ports are free.
int PortBase() { return FindFreePortBase({0, 1, 80}, /*salt=*/0).value_or(20'000); }

class DemoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    out_ = dir_.path() / "demo-out";
    port_base_ = PortBase();
    const std::string command =
        "cd '" + dir_.path().string() + "' && DEMO_OUT='" + out_.string() +
        "' DEMO_PATIENTS=4000 DEMO_VOLUME=1.0 DEMO_SEED=7 DEMO_QUARTER=2026Q3 DEMO_PORT_BASE=" +
        std::to_string(port_base_) + " '" CAREHUB_SOURCE_DIR "/scripts/demo.sh' '" +
        fs::path(CAREHUB_BIN_DIR).parent_path().string() + "' > demo.log 2>&1";
    const int rc = std::system(command.c_str());
    ASSERT_EQ(rc, 0) << ReadAll(dir_.path() / "demo.log") << ReadAll(out_ / "logs/hub.log");
  }

  // Runs carehub-analytics on a fresh state dir against the demo's hub data; returns its pid.
  pid_t StartAnalytics(const fs::path& state, const fs::path& report, const std::string& extra) {
    const std::string command =
        "exec '" CAREHUB_BIN_DIR "/carehub-analytics' --endpoint tcp://127.0.0.1:" +
        std::to_string(port_base_ + 1) + " --state '" + state.string() + "' --report '" +
        report.string() + "' --practices '" + (out_ / "source/practices.csv").string() + "' " +
        extra + " >> '" + (dir_.path() / "analytics.log").string() + "' 2>&1";
    const pid_t pid = fork();
    if (pid == 0) {
      execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    return pid;
  }

  TempDir dir_{"demo"};
  fs::path out_;
  int port_base_ = 0;
};

TEST_F(DemoTest, ReportIndicatorsEqualGroundTruth) {
  const nlohmann::json truth = ReadJson(out_ / "source/ground-truth.json");
  nlohmann::json report = ReadJson(out_ / "report.json");
  // Timeliness depends on when the demo ran, so the ground truth cannot hold it: it must exist
  // (the hub stamped received_at on every delivered event) and is then set aside.
  ASSERT_TRUE(report.contains("median_delay_minutes"));
  EXPECT_FALSE(report["median_delay_minutes"].empty());
  report.erase("median_delay_minutes");
  // Big enough to mean something: every indicator has data.
  ASSERT_GT(truth["summary"]["events"].get<int64_t>(), 3000);
  for (const char* key :
       {"emergency_admissions", "ae_by_age_band", "referral_flows", "referrals_accepted",
        "referrals_rejected", "wait_days", "attended", "did_not_attend", "discharges",
        "discharges_followed_up", "data_quality"}) {
    EXPECT_FALSE(truth["indicators"][key].empty()) << key;
    EXPECT_EQ(report[key], truth["indicators"][key]) << key;
  }
  EXPECT_EQ(report, truth["indicators"]);
  // Opted-out patients' events were withheld, invalid records never arrived, resends were
  // duplicates: the analytics saw exactly the ground truth's facts.
  const int64_t expected_facts = truth["summary"]["events"].get<int64_t>() -
                                 truth["summary"]["withheld_events"].get<int64_t>();
  EXPECT_EQ(report["facts"].get<int64_t>(), expected_facts);
  // Issue 21: the demo's real-feed records (unidentified ED patients, overseas visitors, PD1
  // without an ODS code) were accepted and counted, and show in the data-quality table.
  EXPECT_GT(truth["summary"]["unidentified_events"].get<int64_t>(), 0);
  int64_t unverified = 0;
  int64_t invalid_postcode = 0;
  for (const auto& [publisher, q] : report["data_quality"].items()) {
    unverified += q["events"].get<int64_t>() - q["verified_nhs_number"].get<int64_t>();
    invalid_postcode += q["events"].get<int64_t>() - q["valid_postcode"].get<int64_t>();
  }
  EXPECT_EQ(unverified, truth["summary"]["unidentified_events"].get<int64_t>());
  // Unidentified patients carry no address; overseas visitors a foreign one: both are counted.
  EXPECT_EQ(invalid_postcode, truth["summary"]["unidentified_events"].get<int64_t>() +
                                  truth["summary"]["overseas_events"].get<int64_t>());
  const nlohmann::json status = ReadJson(out_ / "logs/status.json");
  EXPECT_EQ(status["totals"]["accepted"].get<int64_t>(), truth["summary"]["events"].get<int64_t>());
  EXPECT_GT(status["totals"]["duplicate"].get<int64_t>(), 0);
  // The direct-care subscriber of RR8 received identifiable GP and community activity.
  const std::string direct = ReadAll(out_ / "lth-direct-care.ndjson");
  EXPECT_NE(direct.find("\"nhs_number\":\"999"), std::string::npos);
  // The report shows no identifiers: no NHS number of the population, no pseudonym.
  const std::string html = ReadAll(out_ / "report.html");
  EXPECT_FALSE(std::regex_search(html, std::regex("999[0-9]{7}")));
  EXPECT_FALSE(std::regex_search(html, std::regex("[0-9a-f]{64}")));
  EXPECT_NE(html.find("Data quality by publisher"), std::string::npos);
}

TEST_F(DemoTest, AnalyticsKilledHalfwayGivesTheSameReport) {
  // The demo stopped its hub; run it again on the same data.
  const std::string hub_cmd = "cd '" + out_.string() +
                              "' && exec '" CAREHUB_BIN_DIR
                              "/carehub' --config config/hub.yaml >> '" +
                              (dir_.path() / "hub2.log").string() + "' 2>&1";
  const pid_t hub = fork();
  if (hub == 0) {
    execl("/bin/sh", "sh", "-c", hub_cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // A failed assertion returns early: stop the hub then too, so no test leaves a daemon behind.
  struct StopHub {
    pid_t pid;
    ~StopHub() {
      if (kill(pid, SIGTERM) == 0) {
        int status = 0;
        waitpid(pid, &status, 0);
      }
    }
  } stop_hub{hub};
  const std::string ready =
      "curl -sf --max-time 1 http://127.0.0.1:" + std::to_string(port_base_ + 80) +
      "/readyz > /dev/null";
  bool up = false;
  for (int i = 0; i < 200 && !up; ++i) {
    up = std::system(ready.c_str()) == 0;
    if (!up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  ASSERT_TRUE(up) << ReadAll(dir_.path() / "hub2.log");
  uint64_t final_cursor = 0;
  {
    auto full = analytics::StateStore::Open((out_ / "run/analytics-state").string());
    ASSERT_TRUE(full.ok()) << full.status().ToString();
    final_cursor = full.value()->cursor();
  }
  ASSERT_GT(final_cursor, 100u);

  // A small credit window and a pause per delivery make the run last several seconds (20-event
  // deliveries, 10 ms each: ~2 s per 4,000 events), so one of the growing kill times lands while
  // the state holds some but not all of the feed, however fast the hub is.
  const fs::path state = dir_.path() / "killed-state";
  const fs::path report = dir_.path() / "killed-report.html";
  uint64_t cursor_at_kill = 0;
  for (int delay_ms = 150; delay_ms < 20'000; delay_ms = delay_ms * 3 / 2) {
    fs::remove_all(state);
    const pid_t pid = StartAnalytics(state, report, "--window 20 --pause-ms 10");
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    kill(pid, SIGKILL);
    int wstatus = 0;
    waitpid(pid, &wstatus, 0);
    auto killed = analytics::StateStore::Open(state.string());
    ASSERT_TRUE(killed.ok()) << killed.status().ToString();
    cursor_at_kill = killed.value()->cursor();
    if (cursor_at_kill > 0 && cursor_at_kill < final_cursor) {
      break;
    }
  }
  ASSERT_GT(cursor_at_kill, 0u);
  ASSERT_LT(cursor_at_kill, final_cursor) << "never caught it half-way";
  ASSERT_FALSE(fs::exists(report));  // killed before it ever caught up

  const pid_t pid = StartAnalytics(state, report, "--window 20 --exit-when-idle 1");
  int wstatus = 0;
  waitpid(pid, &wstatus, 0);
  ASSERT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0)
      << ReadAll(dir_.path() / "analytics.log");
  fs::path json = report;
  json.replace_extension(".json");
  EXPECT_EQ(ReadJson(json), ReadJson(out_ / "report.json"));
  EXPECT_EQ(ReadAll(report), ReadAll(out_ / "report.html"));
}

TEST_F(DemoTest, ReportRendersInHeadlessChromium) {
  // scripts/install-deps.sh installs chromium: a missing browser is a failed set-up, not a skip.
  ASSERT_TRUE(fs::exists("/usr/bin/chromium"))
      << "no /usr/bin/chromium: run scripts/install-deps.sh";
  const std::string flags =
      "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
      "--disable-background-networking --disable-component-update --disable-sync "
      "--enable-logging=stderr --v=0 --user-data-dir='" +
      (dir_.path() / "chromium-profile").string() + "'";
  const std::string url = "file://" + (out_ / "report.html").string();
  const fs::path dom = dir_.path() / "dom.html";
  const fs::path console = dir_.path() / "chromium.log";
  const std::string dump = "timeout 60 /usr/bin/chromium " + flags + " --dump-dom '" + url +
                           "' > '" + dom.string() + "' 2> '" + console.string() + "'";
  ASSERT_EQ(std::system(dump.c_str()), 0) << ReadAll(console);
  const std::string html = ReadAll(dom);
  for (const char* chart : {"emergency-admissions", "ae-age-bands", "referral-volumes",
                            "acceptance", "referral-waits", "dna-rates", "discharge-follow-up"}) {
    EXPECT_NE(html.find("<svg class=\"chart\" id=\"" + std::string(chart) + "\""),
              std::string::npos)
        << chart;
  }
  const std::string log = ReadAll(console);
  EXPECT_EQ(log.find("Uncaught"), std::string::npos) << log;
  EXPECT_EQ(log.find(":ERROR:CONSOLE"), std::string::npos) << log;
  EXPECT_EQ(log.find("Failed to load resource"), std::string::npos) << log;

  const fs::path shot = fs::path(CAREHUB_BIN_DIR).parent_path() / "demo-report-screenshot.png";
  const std::string screenshot = "timeout 60 /usr/bin/chromium " + flags +
                                 " --window-size=1100,2400 --screenshot='" + shot.string() + "' '" +
                                 url + "' > /dev/null 2>&1";
  ASSERT_EQ(std::system(screenshot.c_str()), 0);
  EXPECT_GT(fs::file_size(shot), 20'000u);
}

}  // namespace
}  // namespace carehub::itest
