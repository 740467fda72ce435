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

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

namespace carehub {

std::shared_ptr<spdlog::logger> Logger(const std::string& name);

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
