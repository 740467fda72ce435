#include "carehub/adapters/csv/drop_folder_watcher.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <system_error>

#include "carehub/adapters/csv/csv_reader.h"
#include "carehub/adapters/data_quality.h"
#include "carehub/core/log.h"
#include "carehub/core/strings.h"
#include "csv_layout.h"

namespace carehub::adapters::csv {
namespace {

namespace fs = std::filesystem;

constexpr char kLogger[] = "adapter.csv";

// Files still being written, or not ours, are never read.
bool IsCandidate(const fs::path& path) {
  std::string name = path.filename().string();
  if (name.empty() || name[0] == '.') {
    return false;
  }
  std::string lower = AsciiLower(name);
  for (const char* suffix : {".tmp", ".partial", ".part", ".filepart", ".crdownload"}) {
    std::string_view s(suffix);
    if (lower.size() >= s.size() && lower.compare(lower.size() - s.size(), s.size(), s) == 0) {
      return false;
    }
  }
  return lower.size() > 4 && lower.compare(lower.size() - 4, 4, ".csv") == 0;
}

// The CSV column a validation failure is about, from the event field its message names.
std::string ColumnForValidation(const Status& status, bool referral) {
  static const std::vector<std::pair<std::string, std::string>> kActivity = {
      {"nhs_number", "nhs_number"},
      {"birth_date", "birth_date"},
      {"postcode", "postcode"},
      {"sex", "sex"},
      {"registered_gp_ods", "registered_gp_ods"},
      {"local_mrn", "local_mrn"},
      {"site_ods", "practice_ods"},
      {"period_end", "appointment_end"},
      {"period_start", "appointment_start"},
      {"occurred_at", "appointment_start"},
      {"recorded_at", "recorded_at"},
      {"encounter_id", "record_id"},
      {"diagnoses", "snomed_code"},
      {"treatment_function", "treatment_function"},
      {"location", "location"},
      {"referral_id", "referral_id"},
      {"event_id", "record_id"}};
  static const std::vector<std::pair<std::string, std::string>> kReferral = {
      {"nhs_number", "nhs_number"},
      {"birth_date", "birth_date"},
      {"postcode", "postcode"},
      {"sex", "sex"},
      {"registered_gp_ods", "registered_gp_ods"},
      {"local_mrn", "local_mrn"},
      {"site_ods", "requester_ods"},
      {"requester_ods", "requester_ods"},
      {"performer_ods", "performer_ods"},
      {"ubrn", "ubrn"},
      {"authored_at", "authored_at"},
      {"appointment_at", "appointment_at"},
      {"occurred_at", "status_at"},
      {"recorded_at", "recorded_at"},
      {"referral_id", "referral_id"},
      {"reasons", "reason_code"},
      {"specialty", "specialty"},
      {"event_id", "referral_id"}};
  for (const auto& [field, column] : referral ? kReferral : kActivity) {
    if (status.message().find(field) != std::string::npos) {
      return column;
    }
  }
  return "";
}

// A target name in `dir` that does not exist yet: name, name.1, name.2 ...
fs::path FreeName(const fs::path& dir, const std::string& name) {
  fs::path target = dir / name;
  std::error_code ec;
  for (int n = 1; fs::exists(target, ec) ||
                  fs::exists(dir / (target.filename().string() + ".errors.json"), ec);
       ++n) {
    target = dir / (name + "." + std::to_string(n));
  }
  return target;
}

}  // namespace

DropFolderWatcher::DropFolderWatcher(DropFolderOptions options, EventSink* sink)
    : options_(std::move(options)), sink_(sink) {}

DropFolderWatcher::~DropFolderWatcher() { Stop(); }

Status DropFolderWatcher::Start() {
  if (options_.publisher_ods.empty() || sink_ == nullptr || options_.dir.empty()) {
    return Status::Error("invalid_options", "dir, publisher_ods and a sink are required");
  }
  if (thread_.joinable()) {
    return Status::Error("invalid_options", "already started");
  }
  std::error_code ec;
  for (const fs::path& dir : {options_.dir, options_.dir / "done", options_.dir / "error"}) {
    fs::create_directories(dir, ec);
    if (ec) {
      return Status::Error("io_error", "cannot create " + dir.string() + ": " + ec.message());
    }
  }
  {
    MutexLock lock(mutex_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { Run(); });
  Logger(kLogger)->info("watching {} for publisher {}", options_.dir.string(),
                        options_.publisher_ods);
  return Status::Ok();
}

void DropFolderWatcher::Stop() {
  if (!thread_.joinable()) {
    return;
  }
  {
    MutexLock lock(mutex_);
    stopping_ = true;
  }
  wake_.NotifyAll();
  thread_.join();
}

void DropFolderWatcher::Run() {
  while (true) {
    PollOnce();
    // Sleep for the poll interval, or until Stop().
    const auto deadline = std::chrono::steady_clock::now() + options_.poll_interval;
    MutexLock lock(mutex_);
    while (!stopping_) {
      if (wake_.WaitUntil(mutex_, deadline) == std::cv_status::timeout) {
        break;
      }
    }
    if (stopping_) {
      return;
    }
  }
}

std::vector<FileReport> DropFolderWatcher::PollOnce() {
  std::vector<FileReport> reports;
  std::error_code ec;
  std::map<fs::path, std::pair<uintmax_t, fs::file_time_type>> now_seen;
  std::vector<fs::path> ready;
  for (fs::directory_iterator it(options_.dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code entry_ec;
    if (!it->is_regular_file(entry_ec) || !IsCandidate(it->path())) {
      continue;
    }
    uintmax_t size = it->file_size(entry_ec);
    fs::file_time_type mtime = it->last_write_time(entry_ec);
    if (entry_ec) {
      continue;
    }
    now_seen[it->path()] = {size, mtime};
    auto before = seen_.find(it->path());
    if (before != seen_.end() && before->second == std::make_pair(size, mtime)) {
      ready.push_back(it->path());
    }
  }
  if (ec) {
    Logger(kLogger)->warn("cannot list {}: {}", options_.dir.string(), ec.message());
  }
  seen_ = std::move(now_seen);
  std::sort(ready.begin(), ready.end());
  for (const fs::path& path : ready) {
    {
      MutexLock lock(mutex_);
      if (stopping_) {
        break;
      }
    }
    reports.push_back(ProcessFile(path));
    if (reports.back().outcome != FileReport::Outcome::kRetry) {
      seen_.erase(path);
    }
  }
  return reports;
}

bool DropFolderWatcher::Publish(const std::vector<v1::Event>& events) {
  if (events.empty()) {
    return true;
  }
  Status status = sink_->Publish(events);
  if (!status.ok()) {
    ++sink_failures_;
    Logger(kLogger)->warn("sink refused {} event(s): {}", events.size(), status.code());
    return false;
  }
  rows_published_ += events.size();
  return true;
}

FileReport DropFolderWatcher::ProcessFile(const fs::path& path) {
  FileReport report;
  report.file = path.filename().string();
  std::error_code ec;
  uintmax_t size = fs::file_size(path, ec);
  if (ec) {
    report.file_error = "cannot read the file: " + ec.message();
    return report;  // kRetry: it may have been moved away meanwhile
  }
  if (size > options_.max_file_bytes) {
    report.file_error = "file of " + std::to_string(size) + " bytes exceeds the limit of " +
                        std::to_string(options_.max_file_bytes);
    return Finish(path, std::move(report), 0);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    report.file_error = "cannot open the file";
    return report;
  }
  CsvReader reader(&in, CsvLimits{options_.max_columns, options_.max_row_bytes});
  CsvRecord header_record;
  if (!reader.Next(&header_record)) {
    report.file_error = "empty file: no header";
    return Finish(path, std::move(report), 0);
  }
  if (!header_record.error.empty()) {
    report.file_error =
        "header (line " + std::to_string(header_record.line) + "): " + header_record.error;
    return Finish(path, std::move(report), 0);
  }
  Result<internal::Header> header = internal::DetectLayout(header_record.fields);
  if (!header.ok()) {
    report.file_error = header.status().ToString();
    return Finish(path, std::move(report), 0);
  }
  report.layout = internal::LayoutName(header->layout);
  bool referral = header->layout == internal::Layout::kReferral;

  internal::RowContext context;
  context.publisher_ods = options_.publisher_ods;
  context.allowed_ods.insert(options_.publisher_ods);
  context.allowed_ods.insert(options_.allowed_ods.begin(), options_.allowed_ods.end());
  context.source_system = options_.source_system;
  context.file_name = report.file;

  size_t total_problems = 0;
  auto problem = [&](size_t line, std::string column, std::string reason) {
    ++total_problems;
    ++report.rows_rejected;
    if (report.problems.size() < options_.max_reported_errors) {
      report.problems.push_back({line, std::move(column), std::move(reason)});
    }
  };

  std::vector<v1::Event> chunk;
  // Event ids in this file: the same id twice would be a CONFLICT at the hub.
  std::set<std::string> ids;
  CsvRecord record;
  const size_t columns = header->names.size();
  while (reader.Next(&record)) {
    ++report.rows;
    if (!record.error.empty()) {
      std::string column;
      if (record.error_field >= 0) {
        column = static_cast<size_t>(record.error_field) < columns
                     ? header->names[record.error_field]
                     : "field " + std::to_string(record.error_field + 1);
      }
      problem(record.line, column, record.error);
      continue;
    }
    if (record.fields.size() != columns) {
      problem(record.line, "",
              "expected " + std::to_string(columns) + " fields, found " +
                  std::to_string(record.fields.size()));
      continue;
    }
    std::variant<v1::Event, internal::RowError> mapped =
        internal::MapRow(*header, record.fields, context);
    if (auto* error = std::get_if<internal::RowError>(&mapped)) {
      problem(record.line, error->column, error->reason);
      continue;
    }
    v1::Event& event = std::get<v1::Event>(mapped);
    // Keep the row, flag the field (adapters/common data_quality.h).
    ScreenEvent(&event, options_.clock->Now());
    Status valid =
        ValidateEvent(event, event.ByteSizeLong(), options_.limits, options_.clock->Now());
    if (!valid.ok()) {
      // Validation messages name the field, never its value (core/validation.h).
      problem(record.line, ColumnForValidation(valid, referral), valid.ToString());
      continue;
    }
    if (!ids.insert(event.envelope().event_id()).second) {
      problem(record.line, referral ? "referral_id" : "record_id",
              "duplicate id: an earlier row of this file has the same id (and status/version)");
      continue;
    }
    chunk.push_back(std::move(event));
    if (chunk.size() >= options_.publish_chunk) {
      if (!Publish(chunk)) {
        ++files_retried_;
        report.file_error = "the sink refused the events; the file will be retried";
        return report;
      }
      report.rows_published += chunk.size();
      chunk.clear();
    }
  }
  if (!Publish(chunk)) {
    ++files_retried_;
    report.file_error = "the sink refused the events; the file will be retried";
    return report;
  }
  report.rows_published += chunk.size();
  return Finish(path, std::move(report), total_problems);
}

FileReport DropFolderWatcher::Finish(const fs::path& path, FileReport report,
                                     size_t total_problems) {
  bool bad = !report.file_error.empty() || total_problems > 0;
  fs::path folder = path.parent_path() / (bad ? "error" : "done");
  std::error_code ec;
  fs::create_directories(folder, ec);
  fs::path target = FreeName(folder, report.file);
  if (bad) {
    nlohmann::json body = {{"file", report.file},
                           {"layout", report.layout},
                           {"rows", report.rows},
                           {"rows_published", report.rows_published},
                           {"rows_rejected", report.rows_rejected},
                           {"errors", nlohmann::json::array()}};
    if (!report.file_error.empty()) {
      body["file_error"] = report.file_error;
    }
    for (const RowProblem& p : report.problems) {
      body["errors"].push_back({{"line", p.line}, {"column", p.column}, {"reason", p.reason}});
    }
    if (total_problems > report.problems.size()) {
      body["errors_not_listed"] = total_problems - report.problems.size();
    }
    // Written beside, then renamed, so a reader never sees half a report.
    fs::path sidecar = folder / (target.filename().string() + ".errors.json");
    fs::path partial = folder / (target.filename().string() + ".errors.json.tmp");
    {
      std::ofstream out(partial, std::ios::trunc);
      out << body.dump(2) << "\n";
    }
    fs::rename(partial, sidecar, ec);
    if (ec) {
      Logger(kLogger)->error("cannot write the error report for {}: {}", report.file, ec.message());
    }
  }
  fs::rename(path, target, ec);
  if (ec) {
    Logger(kLogger)->error("cannot move {} to {}: {}", report.file, folder.string(), ec.message());
    report.outcome = FileReport::Outcome::kRetry;
    return report;
  }
  report.moved_to = target;
  report.outcome = bad ? FileReport::Outcome::kError : FileReport::Outcome::kDone;
  rows_rejected_ += report.rows_rejected;
  if (bad) {
    ++files_error_;
    Logger(kLogger)->warn("{}: {} row(s) published, {} rejected{} -> error/", report.file,
                          report.rows_published, report.rows_rejected,
                          report.file_error.empty() ? "" : " (" + report.file_error + ")");
  } else {
    ++files_done_;
    Logger(kLogger)->info("{}: {} row(s) published -> done/", report.file, report.rows_published);
  }
  return report;
}

DropFolderStats DropFolderWatcher::Stats() const {
  DropFolderStats stats;
  stats.files_done = files_done_.load();
  stats.files_error = files_error_.load();
  stats.files_retried = files_retried_.load();
  stats.rows_published = rows_published_.load();
  stats.rows_rejected = rows_rejected_.load();
  stats.sink_failures = sink_failures_.load();
  return stats;
}

}  // namespace carehub::adapters::csv
