#include "carehub/adapters/hl7/datetime.h"

#include <cctype>
#include <cstdint>
#include <cstdio>

#include "carehub/core/validation.h"

namespace carehub::adapters::hl7 {
namespace {

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool IsLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

// Day of week, 0 = Sunday.
int Weekday(int64_t days_since_epoch) {
  int64_t w = (days_since_epoch + 4) % 7;  // 1970-01-01 was a Thursday
  return static_cast<int>(w < 0 ? w + 7 : w);
}

// Unix seconds of 01:00 UTC on the last Sunday of `month`: when UK clocks change.
int64_t LastSundayOneAmUtc(int year, int month) {
  int64_t last_day = DaysFromCivil(year, static_cast<unsigned>(month),
                                   static_cast<unsigned>(DaysInMonth(year, month)));
  last_day -= Weekday(last_day);
  return last_day * 86400 + 3600;
}

// True when UK clocks show BST (UTC+1) at this instant (rule in force since 1996).
bool IsBst(int64_t unix_seconds, int year) {
  return unix_seconds >= LastSundayOneAmUtc(year, 3) && unix_seconds < LastSundayOneAmUtc(year, 10);
}

bool Digits(std::string_view s) {
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return !s.empty();
}

int ToInt(std::string_view s) {
  int v = 0;
  for (char c : s) {
    v = v * 10 + (c - '0');
  }
  return v;
}

Status BadTimestamp(std::string_view why) {
  return Status::Error(std::string(kReasonInvalidTimestamp), std::string(why));
}

}  // namespace

Result<google::protobuf::Timestamp> ParseDateTime(std::string_view value) {
  // Split off the offset first: everything after a '+' or '-'.
  size_t sign_pos = value.find_first_of("+-");
  std::string_view offset;
  if (sign_pos != std::string_view::npos) {
    offset = value.substr(sign_pos);
    value = value.substr(0, sign_pos);
  }
  std::string_view fraction;
  size_t dot = value.find('.');
  if (dot != std::string_view::npos) {
    fraction = value.substr(dot + 1);
    value = value.substr(0, dot);
    if (fraction.empty() || fraction.size() > 4 || !Digits(fraction) || value.size() != 14) {
      return BadTimestamp("fractional seconds need a full YYYYMMDDHHMMSS and 1-4 digits");
    }
  }
  if (!Digits(value) || value.size() < 4 || value.size() > 14 || value.size() % 2 != 0) {
    return BadTimestamp("date/time is not YYYY[MM[DD[HH[MM[SS]]]]]");
  }
  auto part = [&](size_t pos, int fallback) {
    return value.size() >= pos + 2 ? ToInt(value.substr(pos, 2)) : fallback;
  };
  const int year = ToInt(value.substr(0, 4));
  const int month = part(4, 1);
  const int day = part(6, 1);
  const int hour = part(8, 0);
  const int minute = part(10, 0);
  const int second = part(12, 0);
  if (month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, month) || hour > 23 ||
      minute > 59 || second > 59) {
    return BadTimestamp("date/time has an out-of-range part");
  }
  int64_t civil =
      DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 +
      hour * 3600 + minute * 60 + second;
  int64_t unix_seconds = civil;
  if (!offset.empty()) {
    std::string_view digits = offset.substr(1);
    if (digits.size() != 4 || !Digits(digits)) {
      return BadTimestamp("time zone offset is not +/-ZZZZ");
    }
    int hh = ToInt(digits.substr(0, 2));
    int mm = ToInt(digits.substr(2, 2));
    if (hh > 14 || mm > 59) {
      return BadTimestamp("time zone offset out of range");
    }
    int64_t off = hh * 3600 + mm * 60;
    unix_seconds = offset[0] == '+' ? civil - off : civil + off;
  } else {
    // UK civil time: try the BST reading first so the repeated autumn hour resolves to BST.
    int64_t as_bst = civil - 3600;
    unix_seconds = IsBst(as_bst, year) ? as_bst : civil;
  }
  int nanos = 0;
  if (!fraction.empty()) {
    nanos = ToInt(fraction);
    for (size_t i = fraction.size(); i < 9; ++i) {
      nanos *= 10;
    }
  }
  google::protobuf::Timestamp ts;
  ts.set_seconds(unix_seconds);
  ts.set_nanos(nanos);
  return ts;
}

Result<std::string> ParseBirthDate(std::string_view value) {
  if (value.size() < 8 || !Digits(value.substr(0, 8))) {
    return Status::Error(std::string(kReasonInvalidField), "birth date needs YYYYMMDD");
  }
  const int year = ToInt(value.substr(0, 4));
  const int month = ToInt(value.substr(4, 2));
  const int day = ToInt(value.substr(6, 2));
  if (month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, month)) {
    return Status::Error(std::string(kReasonInvalidField), "birth date is not a calendar date");
  }
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02d", year, month, day);
  return std::string(buf);
}

std::string FormatDateTime(Clock::TimePoint time) {
  const int64_t secs =
      std::chrono::duration_cast<std::chrono::seconds>(time.time_since_epoch()).count();
  int64_t days = secs / 86400;
  int64_t rem = secs % 86400;
  if (rem < 0) {
    rem += 86400;
    days -= 1;
  }
  // civil_from_days (H. Hinnant).
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(days - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  const int64_t y = static_cast<int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%04lld%02u%02u%02lld%02lld%02lld+0000",
                static_cast<long long>(y), m, d, static_cast<long long>(rem / 3600),
                static_cast<long long>(rem % 3600 / 60), static_cast<long long>(rem % 60));
  return buf;
}

}  // namespace carehub::adapters::hl7
