#pragma once
// Text helpers for carehubctl: time arguments, ages and aligned tables for people to read.

#include <cstdint>
#include <string>
#include <vector>

#include "carehub/core/status.h"

namespace carehub::ctl {

// A time argument as Unix milliseconds: RFC 3339 ("2026-01-31T09:00:00Z",
// "2026-01-31T09:00:00.250+01:00", or a bare date "2026-01-31" for its UTC midnight), or a duration
// before `now_unix_ms` ("90s", "15m", "1h", "7d", "2w").
Result<int64_t> ParseTimeArg(const std::string& text, int64_t now_unix_ms);

// "2026-01-31T09:00:00Z" (UTC, seconds precision).
std::string FormatUtc(int64_t unix_ms);
// "12 s ago", "5 min ago", "3 h ago", "2 d ago"; "never" for 0.
std::string FormatAgo(int64_t unix_ms, int64_t now_unix_ms);
// "1d 02:03:04" style uptime.
std::string FormatDuration(double seconds);
// Prints "carehubctl: <message>" on stderr; returns 1, the exit code of a failed command.
int Fail(const std::string& message);
// The wall clock in Unix milliseconds.
int64_t NowMs();

// Who acts, when --by is not given: the login and the host, as a default an operator can read back
// in the audit ("alice@ops-1").
std::string DefaultOperator();

// Columns padded to their widest cell; columns whose header starts with '>' are right-aligned
// (the '>' is not printed). Cells are shown as given.
class Table {
 public:
  explicit Table(std::vector<std::string> headers);
  void Add(std::vector<std::string> row);
  std::string Render() const;
  bool empty() const { return rows_.empty(); }

 private:
  std::vector<std::string> headers_;
  std::vector<bool> right_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace carehub::ctl
