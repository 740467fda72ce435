// An independent check of the demo's analytics report (issue 19): scripts/demo.sh runs on a small
// synthetic ICS with its throwaway PostgreSQL kept (DEMO_PG_KEEP=1), carehub-sink having loaded the
// analytics agreement's feed into it; this test computes the report's indicators with SQL over
// those tables (definitions from docs/demo.md and docs/postgres-sink.md, not from the analytics
// code) and compares them with what carehub-analytics wrote: the counts in report.json and the
// figures shown in report.html (emergency admissions per 1,000 by practice and month, referral
// flows, DNA rates, discharges followed up within 7 days), and the funnel of the page in the NHS's
// conventions (nhs-report.html, carehub-sink report) against the same SQL.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>

#include "harness/child_process.h"
#include "harness/ports.h"
#include "html_table.h"
#include "pg_cluster.h"

namespace carehub::itest {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

std::string ReadAll(const fs::path& path) { return ReadFileText(path); }

std::vector<std::vector<std::string>> Rows(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) {
      continue;
    }
    std::vector<std::string> fields;
    size_t start = 0;
    while (true) {
      const size_t bar = line.find('|', start);
      fields.push_back(line.substr(start, bar == std::string::npos ? bar : bar - start));
      if (bar == std::string::npos) {
        break;
      }
      start = bar + 1;
    }
    rows.push_back(std::move(fields));
  }
  return rows;
}

class SinkReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    out_ = dir_.path() / "demo-out";
    port_base_ = FindFreePortBase({0, 1, 80, 90}, /*salt=*/19).value_or(21'000);
    const std::string command =
        "cd '" + dir_.path().string() + "' && DEMO_PG_KEEP=1 DEMO_OUT='" + out_.string() +
        "' DEMO_PATIENTS=4000 DEMO_VOLUME=1.0 DEMO_SEED=11 DEMO_QUARTER=2026Q3 DEMO_PORT_BASE=" +
        std::to_string(port_base_) + " '" CAREHUB_SOURCE_DIR "/scripts/demo.sh' '" +
        fs::path(CAREHUB_BIN_DIR).parent_path().string() + "' > demo.log 2>&1";
    const int rc = std::system(command.c_str());
    pg_dir_ = ReadAll(out_ / "postgres-dir");
    while (!pg_dir_.empty() && pg_dir_.back() == '\n') {
      pg_dir_.pop_back();
    }
    ASSERT_EQ(rc, 0) << ReadAll(dir_.path() / "demo.log") << ReadAll(out_ / "logs/sink.log");
    ASSERT_FALSE(pg_dir_.empty());
    report_json_ = nlohmann::json::parse(ReadAll(out_ / "report.json"));
    report_html_ = ReadAll(out_ / "report.html");
  }

  void TearDown() override {
    if (pg_dir_.empty()) {
      return;
    }
    // The demo left its cluster running (DEMO_PG_KEEP=1): stop it as its owner and remove it.
    std::vector<std::string> stop = {
        (PgBinDir() / "pg_ctl").string(), "-D", pg_dir_ + "/data", "-m", "immediate", "stop"};
    if (geteuid() == 0) {
      struct stat st {};
      if (stat((pg_dir_ + "/data").c_str(), &st) == 0) {
        stop.insert(stop.begin(), {"/usr/bin/setpriv", "--reuid=" + std::to_string(st.st_uid),
                                   "--regid=" + std::to_string(st.st_gid), "--clear-groups", "--"});
      }
    }
    auto stopped = RunCommand(stop, dir_.path(), Scaled(seconds(60)));
    EXPECT_TRUE(stopped.ok() && stopped->status.Exited(0))
        << (stopped.ok() ? stopped->err : stopped.status().ToString());
    std::error_code ec;
    fs::remove_all(pg_dir_, ec);
  }

  // Rows of `sql` run by psql against the demo's warehouse.
  std::vector<std::vector<std::string>> Sql(const std::string& sql) {
    auto run = RunCommand(
        {(PgBinDir() / "psql").string(), "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d",
         "host=" + pg_dir_ + " port=" + std::to_string(port_base_ + 90) +
             " dbname=carehub user=carehub",
         "-c", sql},
        dir_.path(), Scaled(seconds(120)));
    EXPECT_TRUE(run.ok() && run->status.Exited(0))
        << (run.ok() ? run->err : run.status().ToString()) << " in " << sql;
    return run.ok() ? Rows(run->out) : std::vector<std::vector<std::string>>{};
  }

  TempDir dir_{"sink-report"};
  fs::path out_;
  int port_base_ = 0;
  std::string pg_dir_;
  nlohmann::json report_json_;
  std::string report_html_;
};

// SQL over the current state (carehub.current_record): what is true now, after UPDATE and
// CANCEL, which is what the report counts.
constexpr const char* kEmergencyAdmissions =
    "SELECT coalesce(registered_gp_ods, 'unknown'), "
    "to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM'), count(*) "
    "FROM carehub.activity_current WHERE event_type = 'activity.emergency_admission' "
    "GROUP BY 1, 2";
constexpr const char* kReferralFlows =
    "SELECT requester || '>' || performer, count(*) FROM ("
    "  SELECT referral_id, min(requester_ods) AS requester, min(performer_ods) AS performer"
    "  FROM carehub.referral_current WHERE referral_id IS NOT NULL GROUP BY referral_id) r "
    "WHERE requester IS NOT NULL AND performer IS NOT NULL GROUP BY 1";
constexpr const char* kAttendance =
    "SELECT CASE WHEN site_ods ~ '^[A-Z][0-9]{5}$' THEN 'GP practices' "
    "ELSE coalesce(site_ods, '') END, "
    "count(*) FILTER (WHERE event_type IN ('activity.gp_consultation', "
    "'activity.outpatient_attendance', 'activity.community_contact', "
    "'activity.mental_health_contact')), "
    "count(*) FILTER (WHERE event_type = 'activity.did_not_attend') "
    "FROM carehub.activity_current GROUP BY 1";
constexpr const char* kFollowUp =
    "SELECT coalesce(d.registered_gp_ods, 'unknown'), count(*), count(*) FILTER (WHERE EXISTS ("
    "  SELECT 1 FROM carehub.activity_current c"
    "  WHERE c.event_type IN ('activity.gp_consultation', 'activity.community_contact')"
    "  AND coalesce(c.pseudonym, c.nhs_number) = coalesce(d.pseudonym, d.nhs_number)"
    "  AND c.occurred_at > d.occurred_at"
    "  AND c.occurred_at <= d.occurred_at + interval '7 days')) "
    "FROM carehub.activity_current d WHERE d.event_type = 'activity.discharge' GROUP BY 1";

TEST_F(SinkReportTest, IndicatorsBySqlEqualTheReport) {
  // The feed is all there: what the analytics team's feed carried, the warehouse holds.
  const auto facts = Sql("SELECT count(*) FROM carehub.current_record");
  ASSERT_EQ(facts.size(), 1u);
  EXPECT_EQ(std::stoll(facts[0][0]), report_json_["facts"].get<int64_t>());

  // Emergency admissions: counts against report.json, and per 1,000 registered patients (list
  // sizes from the practice list the demo publishes) against the figures in report.html.
  nlohmann::json emergency = nlohmann::json::object();
  for (const auto& r : Sql(kEmergencyAdmissions)) {
    emergency[r[0]][r[1]] = std::stoll(r[2]);
  }
  EXPECT_EQ(emergency, report_json_["emergency_admissions"]);
  std::map<std::string, int64_t> list_size;
  std::ifstream practices(out_ / "source/practices.csv");
  std::string line;
  std::getline(practices, line);  // header
  while (std::getline(practices, line)) {
    const size_t a = line.find(','), b = line.rfind(',');
    list_size[line.substr(0, a)] = std::stoll(line.substr(b + 1));
  }
  const auto table = HtmlTableRows(report_html_, "Emergency admissions per 1,000");
  ASSERT_GT(table.size(), 1u);
  const std::vector<std::string>& header =
      table[0];  // Practice, PCN, Registered, months..., Quarter
  size_t checked = 0;
  for (size_t i = 1; i < table.size(); ++i) {
    const std::string& practice = table[i][0];
    ASSERT_TRUE(list_size.count(practice)) << practice;
    for (size_t m = 3; m + 1 < header.size(); ++m) {
      const int64_t n = emergency.contains(practice) && emergency[practice].contains(header[m])
                            ? emergency[practice][header[m]].get<int64_t>()
                            : 0;
      const double rate =
          1000.0 * static_cast<double>(n) / static_cast<double>(list_size[practice]);
      EXPECT_NEAR(std::stod(table[i][m]), rate, 0.0051) << practice << " " << header[m];
      ++checked;
    }
  }
  EXPECT_GT(checked, 0u);

  // The page in the NHS's conventions (carehub-sink report over the generated quarter): its
  // funnel plots each practice's list size and its emergency admissions in the quarter, as this
  // SQL counts them.
  const nlohmann::json truth = nlohmann::json::parse(ReadAll(out_ / "source/ground-truth.json"));
  const std::string from = truth["summary"]["quarter_start"].get<std::string>().substr(0, 10);
  const std::string days = std::to_string(truth["summary"]["quarter_days"].get<int>());
  std::map<std::string, int64_t> quarter;
  for (const auto& r : Sql("SELECT registered_gp_ods, count(*) FROM carehub.activity_current "
                           "WHERE event_type = 'activity.emergency_admission' "
                           "AND occurred_at >= '" +
                           from +
                           "'::timestamp AT TIME ZONE 'UTC' "
                           "AND occurred_at < ('" +
                           from + "'::date + " + days +
                           ")::timestamp AT TIME ZONE 'UTC' "
                           "GROUP BY 1")) {
    quarter[r[0]] = std::stoll(r[1]);
  }
  const std::string nhs = ReadAll(out_ / "nhs-report.html");
  const auto funnel = HtmlTableRows(nhs, "<table id=\"funnel-emergency-admissions\"");
  ASSERT_EQ(funnel.size(), list_size.size() + 1) << "nhs-report.html";
  for (size_t i = 1; i < funnel.size(); ++i) {
    const std::string& practice = funnel[i][0];
    EXPECT_EQ(funnel[i][1], std::to_string(list_size[practice])) << practice;
    EXPECT_EQ(funnel[i][2], std::to_string(quarter[practice])) << practice;
  }
  EXPECT_NE(nhs.find("<svg class=\"chart\" id=\"chart-emergency-admissions-daily\""),
            std::string::npos);

  // Referral flows (distinct referrals from requester to performer).
  nlohmann::json flows = nlohmann::json::object();
  for (const auto& r : Sql(kReferralFlows)) {
    flows[r[0]] = std::stoll(r[1]);
  }
  EXPECT_EQ(flows, report_json_["referral_flows"]);
  EXPECT_FALSE(flows.empty());

  // Did-not-attend: counts against report.json, the rate against the report's table.
  nlohmann::json attended = nlohmann::json::object();
  nlohmann::json dna = nlohmann::json::object();
  std::map<std::string, std::string> dna_rate;
  for (const auto& r : Sql(kAttendance)) {
    const int64_t att = std::stoll(r[1]);
    const int64_t not_att = std::stoll(r[2]);
    if (att > 0) {
      attended[r[0]] = att;
    }
    if (not_att > 0) {
      dna[r[0]] = not_att;
    }
    if (att + not_att > 0) {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%.1f%%",
                    100.0 * static_cast<double>(not_att) / static_cast<double>(att + not_att));
      dna_rate[r[0]] = buf;
    }
  }
  EXPECT_EQ(attended, report_json_["attended"]);
  EXPECT_EQ(dna, report_json_["did_not_attend"]);
  const auto dna_table = HtmlTableRows(report_html_, "Did-not-attend rates");
  ASSERT_GT(dna_table.size(), 1u);
  for (size_t i = 1; i < dna_table.size(); ++i) {
    const std::string setting = std::regex_replace(dna_table[i][0], std::regex("&amp;"), "&");
    EXPECT_EQ(dna_table[i][3], dna_rate[setting]) << setting;
  }

  // Discharges followed by a GP or community contact within 7 days, per practice.
  nlohmann::json discharges = nlohmann::json::object();
  nlohmann::json followed = nlohmann::json::object();
  for (const auto& r : Sql(kFollowUp)) {
    discharges[r[0]] = std::stoll(r[1]);
    if (std::stoll(r[2]) > 0) {
      followed[r[0]] = std::stoll(r[2]);
    }
  }
  EXPECT_EQ(discharges, report_json_["discharges"]);
  EXPECT_EQ(followed, report_json_["discharges_followed_up"]);
  EXPECT_FALSE(followed.empty());
  const auto follow_table = HtmlTableRows(report_html_, "followed by a GP or community contact");
  ASSERT_GT(follow_table.size(), 1u);
  for (size_t i = 1; i < follow_table.size(); ++i) {
    const std::string& practice = follow_table[i][0];
    EXPECT_EQ(follow_table[i][1], std::to_string(discharges.value(practice, int64_t{0})))
        << practice;
    EXPECT_EQ(follow_table[i][2], std::to_string(followed.value(practice, int64_t{0}))) << practice;
  }
}

}  // namespace
}  // namespace carehub::itest
