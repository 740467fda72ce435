#pragma once
// One named spdlog logger per component ("hl7", "adapter.csv", "publisher", ...), found the same
// way everywhere. Daemons register their loggers at start-up with their own sink, pattern and level
// (hub/src/logging.cc, adapters/main.cc); libraries, tests and fuzzers used to call
// spdlog::get(name)-> and crash on the null pointer whenever nobody had registered `name` first.
// Logger() never returns null: it returns the registered logger, or registers one that writes to
// the sinks of spdlog's default logger (stderr unless a program changed the default), at the
// registry's global level.
//
// Thread-safe. Safe to race with another thread that registers the same name (the other logger
// wins and is returned). Do not cache the result across a daemon's SetUpLogging: that replaces
// the registered loggers, and a cached pointer would keep writing to the old sink. The lookup is
// a mutex and a hash lookup inside spdlog, cheap but not free: hot paths log at debug at most.

#include <spdlog/formatter.h>
#include <spdlog/sinks/sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

namespace carehub {

std::shared_ptr<spdlog::logger> Logger(const std::string& name);

// The stderr sink a daemon's loggers share, in `format` "text" (a timestamp, the level, [logger]
// and the message) or "json" (one JSON object per line: ts, level, logger, thread, msg). In JSON
// the message and the logger name are escaped as JSON strings (quotes, backslashes, control
// characters, raw newlines as \n), so every line parses whatever a message carries: a reload's list
// of changes, a YAML error quoting the file, a peer's text at debug. One place for every daemon
// (hub, adapters, fhir-notify), so no binary can drift back to an unescaped pattern. Any other
// `format` is treated as "text" (the config loaders refuse other values before this is called).
std::shared_ptr<spdlog::sinks::sink> MakeStderrLogSink(const std::string& format);
// For a command-line tool whose stdout is data (carehub-publish's JSON summary, carehub-subscribe's
// NDJSON): the default logger, which Logger() clones for the libraries' own loggers, becomes
// `tool`'s on the stderr sink (text) at `level`. spdlog's default writes to stdout, where a
// library's warning (the publisher's "hub refused events ...") corrupted the data.
void UseStderrForLogs(const std::string& tool, spdlog::level::level_enum level);
// The formatter that sink uses, for a sink of another kind (a test's ostream sink).
std::unique_ptr<spdlog::formatter> MakeLogFormatter(const std::string& format);

// Appends `text` to `out` escaped for the inside of a JSON string (no surrounding quotes).
// Well-formed UTF-8 passes through; a byte that is not part of a well-formed sequence becomes
// U+FFFD, so the result is always valid JSON string content.
void AppendJsonEscaped(std::string_view text, std::string& out);

// For log lines about untrusted input: Allow() is true at most `per_second` times a second, so a
// hostile sender cannot flood the log; the counters beside such a line still count every case.
// Thread-safe (a race at a window's edge may let one extra line through).
class LogRateLimiter {
 public:
  explicit LogRateLimiter(int per_second = 5) : per_second_(per_second) {}
  bool Allow() {
    const int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::steady_clock::now().time_since_epoch())
                              .count();
    if (window_.exchange(now_s) != now_s) {
      count_.store(0);
    }
    return count_.fetch_add(1) < per_second_;
  }

 private:
  const int per_second_;
  std::atomic<int64_t> window_{0};
  std::atomic<int> count_{0};
};

}  // namespace carehub
