// DropFolderWatcher on a real temporary folder; the EventSink is the seam (a recording sink).

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "carehub/adapters/csv/drop_folder_watcher.h"
#include "carehub/core/event_types.h"

namespace carehub::adapters::csv {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class RecordingSink : public EventSink {
 public:
  Status Publish(const std::vector<v1::Event>& events) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (fail_) {
      return Status::Error("unavailable", "test sink refuses");
    }
    ++calls_;
    events_.insert(events_.end(), events.begin(), events.end());
    return Status::Ok();
  }
  void set_fail(bool fail) {
    std::lock_guard<std::mutex> lock(mutex_);
    fail_ = fail;
  }
  std::vector<v1::Event> events() {
    std::lock_guard<std::mutex> lock(mutex_);
    return events_;
  }
  int calls() {
    std::lock_guard<std::mutex> lock(mutex_);
    return calls_;
  }
  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    events_.clear();
  }

 private:
  std::mutex mutex_;
  bool fail_ = false;
  int calls_ = 0;
  std::vector<v1::Event> events_;
};

constexpr char kAppointmentsHeader[] =
    "record_id,nhs_number,birth_date,sex,postcode,practice_ods,contact_type,appointment_start,"
    "appointment_end,clinician_role,snomed_code,status\n";

const std::string kGoodAppointments =
    std::string(kAppointmentsHeader) +
    "R1,9434765919,1970-04-01,F,LS1 4AP,M85001,gp_consultation,2024-07-01 09:30,"
    "2024-07-01 09:40,GP,185347001,finished\n"
    "R2,943 476 5870,02/05/1985,M,LS2 9JT,M85001,community_contact,2024-01-15T14:00:00Z,,"
    "District nurse,,\n"
    "R3,9434765919,1970-04-01,F,LS1 4AP,,did_not_attend,2024-07-02 11:00,,,,\n";

class DropFolderWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "carehub-csv-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    options_.dir = dir_;
    options_.publisher_ods = "M85001";
    options_.poll_interval = std::chrono::milliseconds(20);
    options_.publish_chunk = 2;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  fs::path Write(const std::string& name, const std::string& content) {
    fs::path path = dir_ / name;
    std::ofstream out(path, std::ios::binary);
    out << content;
    return path;
  }

  static std::string Slurp(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  fs::path dir_;
  DropFolderOptions options_;
  RecordingSink sink_;
};

TEST_F(DropFolderWatcherTest, GoodFileIsPublishedAndFiledInDone) {
  DropFolderWatcher watcher(options_, &sink_);
  FileReport report = watcher.ProcessFile(Write("clinic.csv", kGoodAppointments));
  EXPECT_EQ(report.outcome, FileReport::Outcome::kDone) << report.file_error;
  EXPECT_EQ(report.layout, "appointments");
  EXPECT_EQ(report.rows, 3u);
  EXPECT_EQ(report.rows_published, 3u);
  EXPECT_TRUE(fs::exists(dir_ / "done" / "clinic.csv"));
  EXPECT_FALSE(fs::exists(dir_ / "clinic.csv"));
  EXPECT_EQ(sink_.calls(), 2);  // chunks of two

  std::vector<v1::Event> events = sink_.events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].envelope().event_id(), "csv/activity/R1");
  EXPECT_EQ(EventTypeName(events[0]), "activity.gp_consultation");
  // 09:30 UK summer time is 08:30 UTC.
  EXPECT_EQ(events[0].activity().period_start().seconds(), 1719822600);
  EXPECT_EQ(events[0].activity().diagnoses(0).code(), "185347001");
  EXPECT_EQ(events[0].envelope().site_ods(), "M85001");
  EXPECT_EQ(events[0].envelope().patient().sex(), v1::SEX_FEMALE);
  EXPECT_EQ(events[1].envelope().patient().nhs_number(), "9434765870");
  EXPECT_EQ(events[1].envelope().patient().birth_date(), "1985-05-02");
  EXPECT_EQ(events[1].activity().encounter_class(), "HH");
  EXPECT_EQ(EventTypeName(events[2]), "activity.did_not_attend");
  EXPECT_EQ(watcher.Stats().files_done, 1u);
  EXPECT_EQ(watcher.Stats().rows_published, 3u);
}

// Issue 21: optional demographics never cost a row. An overseas visitor's postcode, a sex code the
// layout does not know and a birth year alone are flagged; an unidentified patient (NHS number
// status 03) is published with the local number, assigned by the practice the row comes from.
TEST_F(DropFolderWatcherTest, RealFeedRowsAreKeptAndFlagged) {
  DropFolderWatcher watcher(options_, &sink_);
  FileReport report = watcher.ProcessFile(
      Write("real.csv",
            "record_id,nhs_number,nhs_number_status,local_mrn,birth_date,sex,postcode,practice_ods,"
            "contact_type,appointment_start\n"
            "V1,9434765919,01,,1970,Z,75002,M85001,gp_consultation,2024-07-01 09:30\n"
            "V2,,03,PRAC-0042,,M,,M85001,gp_consultation,2024-07-01 10:00\n"));
  EXPECT_EQ(report.outcome, FileReport::Outcome::kDone) << report.file_error;
  EXPECT_EQ(report.rows_published, 2u);
  std::vector<v1::Event> events = sink_.events();
  ASSERT_EQ(events.size(), 2u);
  const v1::Envelope& visitor = events[0].envelope();
  EXPECT_EQ(visitor.patient().postcode(), "");
  EXPECT_EQ(visitor.patient().birth_date(), "");
  EXPECT_EQ(visitor.patient().sex(), v1::SEX_UNSPECIFIED);
  EXPECT_EQ(visitor.patient().nhs_number_status(), "01");
  ASSERT_EQ(visitor.data_quality_size(), 3);
  EXPECT_EQ(visitor.data_quality(0).field(), "patient.sex");
  EXPECT_EQ(visitor.data_quality(0).raw_value(), "Z");
  EXPECT_EQ(visitor.data_quality(1).field(), "patient.postcode");
  EXPECT_EQ(visitor.data_quality(1).problem(), "not_uk_postcode");
  EXPECT_EQ(visitor.data_quality(2).field(), "patient.birth_date");
  EXPECT_EQ(visitor.data_quality(2).problem(), "imprecise_date");
  const v1::Patient& unidentified = events[1].envelope().patient();
  EXPECT_EQ(unidentified.nhs_number(), "");
  EXPECT_EQ(unidentified.nhs_number_status(), "03");
  EXPECT_EQ(unidentified.local_mrn(), "PRAC-0042");
  EXPECT_EQ(unidentified.mrn_assigning_ods(), "M85001");
}

TEST_F(DropFolderWatcherTest, PartlyBadFilePublishesGoodRowsAndReportsBadOnes) {
  std::string content =
      std::string(kAppointmentsHeader) +
      "R1,9434765919,1970-04-01,F,LS1 4AP,M85001,gp_consultation,2024-07-01 09:30,,,,\n"
      "R2,9434765918,1970-04-01,F,LS1 4AP,M85001,gp_consultation,2024-07-01 09:30,,,,\n"
      "R3,9434765919,1970-04-01,F,LS1 4AP,M85001,tea_party,2024-07-01 09:30,,,,\n"
      "R4,9434765919,1970-04-01,F,LS1 4AP,M85001,gp_consultation,yesterday,,,,\n"
      "R5,9434765919,1970-04-01,F,LS1 4AP,M85001\n"
      "R6,9434765919,1970-04-01,F,LS1 4AP,RR8,gp_consultation,2024-07-01 09:30,,,,\n"
      "R7,9434765919,1970-04-01,F,LS1 4AP,M85001,community_contact,2024-07-03 10:00,,,,\n";
  DropFolderWatcher watcher(options_, &sink_);
  FileReport report = watcher.ProcessFile(Write("mixed.csv", content));
  EXPECT_EQ(report.outcome, FileReport::Outcome::kError);
  EXPECT_EQ(report.rows_published, 2u);
  EXPECT_EQ(report.rows_rejected, 5u);
  ASSERT_EQ(sink_.events().size(), 2u);
  EXPECT_EQ(sink_.events()[1].envelope().event_id(), "csv/activity/R7");

  ASSERT_TRUE(fs::exists(dir_ / "error" / "mixed.csv"));
  fs::path sidecar = dir_ / "error" / "mixed.csv.errors.json";
  ASSERT_TRUE(fs::exists(sidecar));
  std::string text = Slurp(sidecar);
  EXPECT_EQ(text.find("9434765918"), std::string::npos) << "no patient identifiers in reports";
  json errors = json::parse(text)["errors"];
  ASSERT_EQ(errors.size(), 5u);
  EXPECT_EQ(errors[0]["line"], 3);
  EXPECT_EQ(errors[0]["column"], "nhs_number");
  EXPECT_NE(errors[0]["reason"].get<std::string>().find("invalid_nhs_number"), std::string::npos);
  EXPECT_EQ(errors[1]["line"], 4);
  EXPECT_EQ(errors[1]["column"], "contact_type");
  EXPECT_EQ(errors[2]["column"], "appointment_start");
  EXPECT_EQ(errors[3]["line"], 6);
  EXPECT_NE(errors[3]["reason"].get<std::string>().find("expected 12 fields"), std::string::npos);
  EXPECT_EQ(errors[4]["column"], "practice_ods");
}

TEST_F(DropFolderWatcherTest, QuotedFieldsCrlfAndBom) {
  std::string content =
      "\xEF\xBB\xBFrecord_id,nhs_number,contact_type,appointment_start,clinician_role,location\r\n"
      "Q1,9434765919,social_care_assessment,2024-01-10 10:00,\"Social worker, adults\","
      "\"Home \"\"visit\"\"\r\nflat 2\"\r\n";
  DropFolderWatcher watcher(options_, &sink_);
  FileReport report = watcher.ProcessFile(Write("quoted.csv", content));
  ASSERT_EQ(report.outcome, FileReport::Outcome::kDone) << report.file_error;
  std::vector<v1::Event> events = sink_.events();
  ASSERT_EQ(events.size(), 1u);
  const v1::ActivityEvent& activity = events[0].activity();
  EXPECT_EQ(activity.kind(), v1::ACTIVITY_KIND_SOCIAL_CARE_ASSESSMENT);
  EXPECT_EQ(activity.note(), "clinician_role: Social worker, adults");
  EXPECT_EQ(activity.location(), "Home \"visit\"\r\nflat 2");
  // 10:00 UK winter time is 10:00 UTC.
  EXPECT_EQ(activity.period_start().seconds(), 1704880800);
}

TEST_F(DropFolderWatcherTest, ReferralsLayoutIsDetected) {
  std::string content =
      "referral_id,ubrn,nhs_number,requester_ods,performer_ods,specialty,priority,status,"
      "authored_at,status_at\n"
      "REF-1,000011112222,9434765919,M85001,RXK,100,2ww,sent,2024-02-20T14:00:00Z,\n"
      "REF-1,000011112222,9434765919,M85001,RXK,100,2ww,accepted,2024-02-20T14:00:00Z,"
      "2024-02-21T09:00:00Z\n";
  DropFolderWatcher watcher(options_, &sink_);
  FileReport report = watcher.ProcessFile(Write("referrals.csv", content));
  ASSERT_EQ(report.outcome, FileReport::Outcome::kDone) << report.file_error;
  EXPECT_EQ(report.layout, "referrals");
  std::vector<v1::Event> events = sink_.events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].envelope().event_id(), "csv/referral/REF-1/sent");
  EXPECT_EQ(events[1].envelope().event_id(), "csv/referral/REF-1/accepted");
  EXPECT_EQ(EventTypeName(events[1]), "referral.accepted");
  EXPECT_EQ(events[1].referral().priority(), v1::REFERRAL_PRIORITY_TWO_WEEK_WAIT);
  EXPECT_EQ(events[1].referral().ubrn(), "000011112222");
  EXPECT_EQ(events[1].envelope().occurred_at().seconds(), 1708506000);
  EXPECT_EQ(events[1].envelope().site_ods(), "M85001");
}

TEST_F(DropFolderWatcherTest, VersionColumnMakesUpdatesAndCancelledMakesCancel) {
  std::string content =
      "record_id,version,nhs_number,contact_type,appointment_start,status\n"
      "V1,1,9434765919,gp_consultation,2024-01-10 10:00,finished\n"
      "V1,2,9434765919,gp_consultation,2024-01-10 10:30,finished\n"
      "V1,2,9434765919,gp_consultation,2024-01-10 10:30,entered-in-error\n";
  DropFolderWatcher watcher(options_, &sink_);
  ASSERT_EQ(watcher.ProcessFile(Write("v.csv", content)).outcome, FileReport::Outcome::kDone);
  std::vector<v1::Event> events = sink_.events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[1].envelope().event_id(), "csv/activity/V1/v2");
  EXPECT_EQ(events[1].envelope().lifecycle(), v1::LIFECYCLE_UPDATE);
  EXPECT_EQ(events[1].envelope().supersedes_event_id(), "csv/activity/V1");
  EXPECT_EQ(events[2].envelope().lifecycle(), v1::LIFECYCLE_CANCEL);
  EXPECT_EQ(events[2].envelope().supersedes_event_id(), "csv/activity/V1/v2");
}

TEST_F(DropFolderWatcherTest, RedropGivesIdenticalEvents) {
  DropFolderWatcher watcher(options_, &sink_);
  Write("again.csv", kGoodAppointments);
  watcher.PollOnce();  // first sight: size recorded
  ASSERT_EQ(watcher.PollOnce().size(), 1u);
  std::vector<v1::Event> first = sink_.events();
  sink_.clear();
  Write("again.csv", kGoodAppointments);
  watcher.PollOnce();
  ASSERT_EQ(watcher.PollOnce().size(), 1u);
  std::vector<v1::Event> second = sink_.events();
  ASSERT_EQ(first.size(), 3u);
  ASSERT_EQ(second.size(), first.size());
  for (size_t i = 0; i < first.size(); ++i) {
    EXPECT_EQ(first[i].SerializeAsString(), second[i].SerializeAsString());
  }
  EXPECT_TRUE(fs::exists(dir_ / "done" / "again.csv"));
  EXPECT_TRUE(fs::exists(dir_ / "done" / "again.csv.1"));
}

TEST_F(DropFolderWatcherTest, RowsWithoutRecordIdGetStableContentIds) {
  std::string content =
      "nhs_number,contact_type,appointment_start\n"
      "9434765919,gp_consultation,2024-01-10 10:00\n"
      "9434765919,gp_consultation,2024-01-11 10:00\n";
  DropFolderWatcher watcher(options_, &sink_);
  ASSERT_EQ(watcher.ProcessFile(Write("noid.csv", content)).outcome, FileReport::Outcome::kDone);
  ASSERT_EQ(watcher.ProcessFile(Write("noid.csv", content)).outcome, FileReport::Outcome::kDone);
  std::vector<v1::Event> events = sink_.events();
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].envelope().event_id().rfind("csv/activity/h", 0), 0u);
  EXPECT_NE(events[0].envelope().event_id(), events[1].envelope().event_id());
  EXPECT_EQ(events[0].envelope().event_id(), events[2].envelope().event_id());
  EXPECT_EQ(events[1].envelope().event_id(), events[3].envelope().event_id());
}

TEST_F(DropFolderWatcherTest, MillionColumnHeaderIsRefusedAndWatcherCarriesOn) {
  std::string header;
  header.reserve(8'000'000);
  for (int i = 0; i < 1'000'000; ++i) {
    header += "c" + std::to_string(i) + ",";
  }
  header += "\n1,2,3\n";
  DropFolderWatcher watcher(options_, &sink_);
  Write("wide.csv", header);
  Write("zgood.csv", kGoodAppointments);
  watcher.PollOnce();
  std::vector<FileReport> reports = watcher.PollOnce();
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(reports[0].outcome, FileReport::Outcome::kError);
  EXPECT_NE(reports[0].file_error.find("header"), std::string::npos) << reports[0].file_error;
  json report = json::parse(Slurp(dir_ / "error" / "wide.csv.errors.json"));
  EXPECT_NE(report["file_error"].get<std::string>().find("columns"), std::string::npos);
  EXPECT_EQ(reports[1].outcome, FileReport::Outcome::kDone);
  EXPECT_EQ(sink_.events().size(), 3u);
}

TEST_F(DropFolderWatcherTest, MillionColumnRowIsOneBadRow) {
  std::string content = kGoodAppointments + std::string(1'000'000, ',') + "\n";
  DropFolderWatcher watcher(options_, &sink_);
  FileReport report = watcher.ProcessFile(Write("widerow.csv", content));
  EXPECT_EQ(report.outcome, FileReport::Outcome::kError);
  EXPECT_EQ(report.rows_published, 3u);
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_EQ(report.problems[0].line, 5u);
}

TEST_F(DropFolderWatcherTest, BinaryJunkGetsAClearReport) {
  std::string junk;
  uint32_t state = 12345;
  for (int i = 0; i < 200'000; ++i) {
    state = state * 1103515245u + 12345u;
    junk.push_back(static_cast<char>(state >> 24));
  }
  DropFolderWatcher watcher(options_, &sink_);
  FileReport report = watcher.ProcessFile(Write("junk.csv", junk));
  EXPECT_EQ(report.outcome, FileReport::Outcome::kError);
  EXPECT_FALSE(report.file_error.empty());
  EXPECT_TRUE(fs::exists(dir_ / "error" / "junk.csv.errors.json"));
  EXPECT_TRUE(sink_.events().empty());
}

TEST_F(DropFolderWatcherTest, UnterminatedQuoteKeepsEarlierRows) {
  std::string content =
      kGoodAppointments +
      "R9,9434765919,1970-04-01,F,LS1 4AP,M85001,gp_consultation,\"2024-07-01 09:30,,,,\n";
  DropFolderWatcher watcher(options_, &sink_);
  FileReport report = watcher.ProcessFile(Write("open.csv", content));
  EXPECT_EQ(report.outcome, FileReport::Outcome::kError);
  EXPECT_EQ(report.rows_published, 3u);
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_NE(report.problems[0].reason.find("unterminated"), std::string::npos);
  EXPECT_EQ(report.problems[0].column, "appointment_start");
}

TEST_F(DropFolderWatcherTest, UnknownHeaderIsAFileError) {
  DropFolderWatcher watcher(options_, &sink_);
  FileReport report = watcher.ProcessFile(Write("other.csv", "foo,bar\n1,2\n"));
  EXPECT_EQ(report.outcome, FileReport::Outcome::kError);
  EXPECT_NE(report.file_error.find("unknown_layout"), std::string::npos);
  FileReport missing =
      watcher.ProcessFile(Write("missing.csv", "record_id,contact_type\nR1,gp_consultation\n"));
  EXPECT_NE(missing.file_error.find("nhs_number"), std::string::npos);
}

TEST_F(DropFolderWatcherTest, SinkFailureLeavesTheFileForRetry) {
  DropFolderWatcher watcher(options_, &sink_);
  sink_.set_fail(true);
  Write("retry.csv", kGoodAppointments);
  watcher.PollOnce();
  std::vector<FileReport> reports = watcher.PollOnce();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].outcome, FileReport::Outcome::kRetry);
  EXPECT_TRUE(fs::exists(dir_ / "retry.csv"));
  EXPECT_EQ(watcher.Stats().files_retried, 1u);
  sink_.set_fail(false);
  reports = watcher.PollOnce();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].outcome, FileReport::Outcome::kDone);
  EXPECT_EQ(sink_.events().size(), 3u);
}

TEST_F(DropFolderWatcherTest, PartialFilesAreNotRead) {
  DropFolderWatcher watcher(options_, &sink_);
  Write("a.csv.tmp", kGoodAppointments);
  Write("b.csv.partial", kGoodAppointments);
  Write(".c.csv", kGoodAppointments);
  watcher.PollOnce();
  EXPECT_TRUE(watcher.PollOnce().empty());
  fs::rename(dir_ / "a.csv.tmp", dir_ / "a.csv");
  watcher.PollOnce();
  ASSERT_EQ(watcher.PollOnce().size(), 1u);
  EXPECT_TRUE(fs::exists(dir_ / "b.csv.partial"));
}

TEST_F(DropFolderWatcherTest, GrowingFileWaitsUntilStable) {
  DropFolderWatcher watcher(options_, &sink_);
  Write("grow.csv", std::string(kAppointmentsHeader));
  watcher.PollOnce();
  {
    std::ofstream out(dir_ / "grow.csv", std::ios::app);
    out << kGoodAppointments.substr(std::string(kAppointmentsHeader).size());
  }
  EXPECT_TRUE(watcher.PollOnce().empty());  // changed since the last poll
  ASSERT_EQ(watcher.PollOnce().size(), 1u);
  EXPECT_EQ(sink_.events().size(), 3u);
}

TEST_F(DropFolderWatcherTest, BackgroundThreadPicksUpRenamedFiles) {
  DropFolderWatcher watcher(options_, &sink_);
  ASSERT_TRUE(watcher.Start().ok());
  Write("bg.csv.tmp", kGoodAppointments);
  fs::rename(dir_ / "bg.csv.tmp", dir_ / "bg.csv");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!fs::exists(dir_ / "done" / "bg.csv") && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  watcher.Stop();
  EXPECT_TRUE(fs::exists(dir_ / "done" / "bg.csv"));
  EXPECT_EQ(watcher.Stats().files_done, 1u);
}

}  // namespace
}  // namespace carehub::adapters::csv
