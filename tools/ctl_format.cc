#include "ctl_format.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <regex>
#include <sstream>

namespace carehub::ctl {
namespace {

int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  // Howard Hinnant's days_from_civil: proleptic Gregorian date to days since 1970-01-01.
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

}  // namespace

Result<int64_t> ParseTimeArg(const std::string& text, int64_t now_unix_ms) {
  static const std::regex kRelative(R"(^(\d+)(s|m|h|d|w)$)");
  static const std::regex kRfc3339(
      R"(^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:\d{2}))?$)");
  std::smatch m;
  if (std::regex_match(text, m, kRelative)) {
    int64_t n = 0;
    try {
      n = std::stoll(m[1]);
    } catch (...) {
      return Status::Error("bad_time", "duration out of range: " + text);
    }
    static const std::pair<char, int64_t> kUnits[] = {
        {'s', 1000}, {'m', 60'000}, {'h', 3'600'000}, {'d', 86'400'000}, {'w', 604'800'000}};
    for (const auto& [unit, ms] : kUnits) {
      if (m[2].str()[0] == unit) {
        if (n > INT64_MAX / ms) {
          return Status::Error("bad_time", "duration out of range: " + text);
        }
        return now_unix_ms - n * ms;
      }
    }
  }
  if (!std::regex_match(text, m, kRfc3339)) {
    return Status::Error("bad_time", "'" + text +
                                         "' is neither RFC 3339 (2026-01-31T09:00:00Z) nor a "
                                         "duration ago (90s, 15m, 1h, 7d, 2w)");
  }
  int year = std::stoi(m[1]);
  unsigned month = static_cast<unsigned>(std::stoi(m[2]));
  unsigned day = static_cast<unsigned>(std::stoi(m[3]));
  int hour = m[4].matched ? std::stoi(m[4]) : 0;
  int minute = m[5].matched ? std::stoi(m[5]) : 0;
  int second = m[6].matched ? std::stoi(m[6]) : 0;
  auto ymd = std::chrono::year{year} / std::chrono::month{month} / std::chrono::day{day};
  if (!ymd.ok() || hour > 23 || minute > 59 || second > 60) {
    return Status::Error("bad_time", "'" + text + "' is not a valid date and time");
  }
  int64_t ms =
      (DaysFromCivil(year, month, day) * 86'400 + hour * 3600 + minute * 60 + second) * 1000;
  if (m[7].matched) {
    std::string frac = m[7].str();
    frac.resize(3, '0');
    ms += std::stoi(frac);
  }
  if (m[8].matched) {
    std::string zone = m[8].str();
    if (zone != "Z" && zone != "z") {
      int sign = zone[0] == '-' ? -1 : 1;
      int offset_min = std::stoi(zone.substr(1, 2)) * 60 + std::stoi(zone.substr(4, 2));
      ms -= sign * static_cast<int64_t>(offset_min) * 60'000;
    }
  }
  return ms;
}

std::string FormatUtc(int64_t unix_ms) {
  using namespace std::chrono;
  sys_seconds t{seconds{unix_ms / 1000}};
  auto days = floor<std::chrono::days>(t);
  year_month_day ymd{days};
  hh_mm_ss hms{t - days};
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02u-%02uT%02ld:%02ld:%02lldZ",
                static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()), static_cast<long>(hms.hours().count()),
                static_cast<long>(hms.minutes().count()),
                static_cast<long long>(hms.seconds().count()));
  return buf;
}

std::string FormatAgo(int64_t unix_ms, int64_t now_unix_ms) {
  if (unix_ms <= 0) {
    return "never";
  }
  int64_t s = std::max<int64_t>(0, (now_unix_ms - unix_ms) / 1000);
  if (s < 60) {
    return std::to_string(s) + " s ago";
  }
  if (s < 3600) {
    return std::to_string(s / 60) + " min ago";
  }
  if (s < 86'400) {
    return std::to_string(s / 3600) + " h ago";
  }
  return std::to_string(s / 86'400) + " d ago";
}

std::string FormatDuration(double seconds) {
  auto s = static_cast<int64_t>(std::max(0.0, seconds));
  char buf[48];
  if (s >= 86'400) {
    std::snprintf(buf, sizeof(buf), "%lldd %02lld:%02lld:%02lld",
                  static_cast<long long>(s / 86'400), static_cast<long long>(s % 86'400 / 3600),
                  static_cast<long long>(s % 3600 / 60), static_cast<long long>(s % 60));
  } else {
    std::snprintf(buf, sizeof(buf), "%02lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                  static_cast<long long>(s % 3600 / 60), static_cast<long long>(s % 60));
  }
  return buf;
}

Table::Table(std::vector<std::string> headers) {
  for (auto& h : headers) {
    bool right = !h.empty() && h[0] == '>';
    right_.push_back(right);
    headers_.push_back(right ? h.substr(1) : h);
  }
}

void Table::Add(std::vector<std::string> row) {
  row.resize(headers_.size());
  rows_.push_back(std::move(row));
}

std::string Table::Render() const {
  std::vector<size_t> width(headers_.size());
  for (size_t c = 0; c < headers_.size(); ++c) {
    width[c] = headers_[c].size();
    for (const auto& r : rows_) {
      width[c] = std::max(width[c], r[c].size());
    }
  }
  std::ostringstream out;
  auto line = [&](const std::vector<std::string>& cells) {
    std::string text;
    for (size_t c = 0; c < cells.size(); ++c) {
      std::string pad(width[c] - cells[c].size(), ' ');
      text += right_[c] ? pad + cells[c] : cells[c] + (c + 1 < cells.size() ? pad : "");
      if (c + 1 < cells.size()) {
        text += "  ";
      }
    }
    out << text << "\n";
  };
  line(headers_);
  for (const auto& r : rows_) {
    line(r);
  }
  return out.str();
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "carehubctl: %s\n", message.c_str());
  return 1;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string DefaultOperator() {
  const char* user = std::getenv("USER");
  char host[256] = {};
  (void)gethostname(host, sizeof(host) - 1);
  return std::string(user != nullptr && *user != '\0' ? user : "unknown") + "@" + host;
}

}  // namespace carehub::ctl
