#pragma once
// CSV drop folder for GP and community extracts (DESIGN §1-3; layouts in
// docs/adapters_fhir_csv.md).
//
// A DropFolderWatcher polls `dir` for *.csv files that are fully written (renamed into the folder,
// or unchanged in size and mtime over two polls; *.tmp, *.partial, *.part and dot-files are never
// read). Each file is parsed, every row mapped and checked with carehub::ValidateEvent, and valid
// rows handed to the EventSink in chunks. Then:
//   - every row valid and persisted        -> the file moves to dir/done/
//   - some rows (or the whole file) bad     -> valid rows are still published; the file moves to
//     dir/error/ beside <name>.errors.json listing each bad row (line, column, reason; never a
//     cell's value, so no patient identifiers)
//   - the sink fails                        -> the file stays where it is and is retried on the
//     next poll; already-published rows are resent with the same event ids (the hub deduplicates)
//
// Thread-safety: Start/Stop from one owning thread. ProcessFile and PollOnce must not run
// concurrently with each other or with a started watcher; Stats() from any thread.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "carehub/adapters/event_sink.h"
#include "carehub/core/clock.h"
#include "carehub/core/mutex.h"
#include "carehub/core/status.h"
#include "carehub/core/validation.h"

namespace carehub::adapters::csv {

struct DropFolderOptions {
  std::filesystem::path dir;
  std::string publisher_ods;
  // Site codes (practice_ods, requester/performer) the publisher may publish for; publisher_ods is
  // always allowed.
  std::vector<std::string> allowed_ods;
  std::string source_system = "csv";
  std::chrono::milliseconds poll_interval{1000};
  size_t max_columns = 256;
  size_t max_row_bytes = 1024 * 1024;
  size_t max_file_bytes = 512ull * 1024 * 1024;
  // Events per EventSink::Publish call.
  size_t publish_chunk = 500;
  // Bad rows listed in the error report; the rest are counted.
  size_t max_reported_errors = 1000;
  ValidationLimits limits;
  // Not owned; must outlive the watcher.
  const Clock* clock = &SystemClock::Instance();
};

// One bad row (or, with line 0, the whole file).
struct RowProblem {
  size_t line = 0;
  std::string column;
  std::string reason;
};

struct FileReport {
  enum class Outcome { kDone, kError, kRetry };
  Outcome outcome = Outcome::kRetry;
  std::string file;                // file name
  std::string layout;              // "appointments", "referrals" or "" when undetected
  std::filesystem::path moved_to;  // empty for kRetry
  std::string file_error;          // why the whole file was refused, if it was
  size_t rows = 0;                 // data records read
  size_t rows_published = 0;
  size_t rows_rejected = 0;
  std::vector<RowProblem> problems;  // at most max_reported_errors
};

struct DropFolderStats {
  uint64_t files_done = 0;
  uint64_t files_error = 0;
  uint64_t files_retried = 0;  // left in place after a sink failure
  uint64_t rows_published = 0;
  uint64_t rows_rejected = 0;
  uint64_t sink_failures = 0;
};

class DropFolderWatcher {
 public:
  // `sink` is not owned and must outlive the watcher.
  DropFolderWatcher(DropFolderOptions options, EventSink* sink);
  ~DropFolderWatcher();  // Stops if running.
  DropFolderWatcher(const DropFolderWatcher&) = delete;
  DropFolderWatcher& operator=(const DropFolderWatcher&) = delete;

  // Creates dir, dir/done and dir/error if needed and starts polling on a background thread.
  Status Start();
  // Finishes the file in hand and joins the thread. Idempotent.
  void Stop();

  // One scan of the folder: processes every stable file. Returns the reports of files handled.
  std::vector<FileReport> PollOnce();

  // Processes one file now, whatever its name or age (tests, and operators re-running a file).
  FileReport ProcessFile(const std::filesystem::path& path);

  DropFolderStats Stats() const;

 private:
  void Run() CAREHUB_EXCLUDES(mutex_);
  bool Publish(const std::vector<v1::Event>& events);
  FileReport Finish(const std::filesystem::path& path, FileReport report, size_t total_problems);

  DropFolderOptions options_;
  EventSink* sink_;
  std::thread thread_;
  Mutex mutex_;
  CondVar wake_;  // signalled by Stop
  bool stopping_ CAREHUB_GUARDED_BY(mutex_) = false;
  // Size and mtime seen on the previous poll, to tell a file still being written.
  std::map<std::filesystem::path, std::pair<uintmax_t, std::filesystem::file_time_type>> seen_;

  std::atomic<uint64_t> files_done_{0};
  std::atomic<uint64_t> files_error_{0};
  std::atomic<uint64_t> files_retried_{0};
  std::atomic<uint64_t> rows_published_{0};
  std::atomic<uint64_t> rows_rejected_{0};
  std::atomic<uint64_t> sink_failures_{0};
};

}  // namespace carehub::adapters::csv
