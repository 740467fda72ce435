#include "carehub/analytics/indicators.h"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "carehub/core/data_quality.h"
#include "carehub/core/event_types.h"

namespace carehub::analytics {
namespace {

constexpr int64_t kDay = 86'400;
constexpr int64_t kFollowUpWindow = 7 * kDay;

std::string MonthOf(int64_t unix_seconds) {
  const time_t t = static_cast<time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%04d-%02d", tm.tm_year + 1900, tm.tm_mon + 1);
  return buf;
}

// Whole years between a birth month and the event's month (the day is not in the feed).
std::optional<int> AgeInYears(const std::string& birth_ym, int64_t at) {
  if (birth_ym.size() != 7 || birth_ym[4] != '-') {
    return std::nullopt;
  }
  const int birth_year = std::atoi(birth_ym.substr(0, 4).c_str());
  const int birth_month = std::atoi(birth_ym.substr(5, 2).c_str());
  const std::string month = MonthOf(at);
  const int year = std::atoi(month.substr(0, 4).c_str());
  const int mon = std::atoi(month.substr(5, 2).c_str());
  const int months = (year * 12 + mon) - (birth_year * 12 + birth_month);
  if (months < 0) {
    return std::nullopt;
  }
  return months / 12;
}

std::string AgeBand(int age) {
  if (age < 5) {
    return "0-4";
  }
  if (age < 18) {
    return "5-17";
  }
  if (age < 45) {
    return "18-44";
  }
  if (age < 65) {
    return "45-64";
  }
  if (age < 75) {
    return "65-74";
  }
  if (age < 85) {
    return "75-84";
  }
  return "85+";
}

std::string WaitBand(int64_t days) {
  if (days < 14) {
    return "0-13";
  }
  if (days < 28) {
    return "14-27";
  }
  if (days < 42) {
    return "28-41";
  }
  if (days < 63) {
    return "42-62";
  }
  if (days < 91) {
    return "63-90";
  }
  return "91+";
}

int64_t ToUnix(const google::protobuf::Timestamp& ts) { return ts.seconds(); }

bool IsAttendedKind(const std::string& type) {
  return type == "activity.gp_consultation" || type == "activity.outpatient_attendance" ||
         type == "activity.community_contact" || type == "activity.mental_health_contact";
}

bool IsFollowUpKind(const std::string& type) {
  return type == "activity.gp_consultation" || type == "activity.community_contact";
}

}  // namespace

const std::vector<std::string>& AgeBands() {
  static const std::vector<std::string> kBands = {"0-4",   "5-17",  "18-44", "45-64",
                                                  "65-74", "75-84", "85+"};
  return kBands;
}

const std::vector<std::string>& WaitBands() {
  static const std::vector<std::string> kBands = {"0-13",  "14-27", "28-41",
                                                  "42-62", "63-90", "91+"};
  return kBands;
}

std::string SettingOf(const std::string& site_ods) {
  const bool practice =
      site_ods.size() == 6 && std::isupper(static_cast<unsigned char>(site_ods[0])) &&
      std::all_of(site_ods.begin() + 1, site_ods.end(),
                  [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
  return practice ? "GP practices" : site_ods;
}

std::optional<Fact> FactFromEvent(const v1::Event& event) {
  const v1::Envelope& env = event.envelope();
  if (env.lifecycle() == v1::LIFECYCLE_CANCEL) {
    return std::nullopt;
  }
  Fact fact;
  fact.type = EventTypeName(event);
  if (fact.type.empty()) {
    return std::nullopt;
  }
  const v1::Patient& p = env.patient();
  fact.patient = !p.pseudonym().empty() ? p.pseudonym() : p.nhs_number();
  fact.occurred = ToUnix(env.occurred_at());
  fact.publisher_ods = env.publisher_ods();
  fact.site_ods = env.site_ods();
  fact.practice = p.registered_gp_ods();
  fact.birth_ym = p.birth_date().substr(0, std::min<size_t>(7, p.birth_date().size()));
  if (event.has_referral()) {
    const v1::ReferralEvent& r = event.referral();
    fact.referral_id = r.referral_id();
    fact.requester_ods = r.requester_ods();
    fact.performer_ods = r.performer_ods();
    fact.authored = r.has_authored_at() ? ToUnix(r.authored_at()) : 0;
    fact.appointment = r.has_appointment_at() ? ToUnix(r.appointment_at()) : 0;
  } else if (!event.has_activity()) {
    return std::nullopt;
  }
  const DataQualityMeasures quality = MeasureDataQuality(event);
  fact.dq_known = true;
  fact.verified_nhs_number = quality.verified_nhs_number;
  fact.valid_postcode = quality.valid_postcode;
  fact.valid_practice = quality.valid_practice;
  fact.valid_codes = quality.valid_codes;
  fact.delay_seconds = TimelinessSeconds(event).value_or(Fact::kUnknownDelay);
  return fact;
}

std::string EncodeFact(const Fact& f) {
  std::ostringstream out;
  out << f.patient << '\t' << f.type << '\t' << f.occurred << '\t' << f.publisher_ods << '\t'
      << f.site_ods << '\t' << f.practice << '\t' << f.birth_ym << '\t' << f.referral_id << '\t'
      << f.requester_ods << '\t' << f.performer_ods << '\t' << f.authored << '\t' << f.appointment;
  if (f.dq_known) {
    // Two columns added by issue 21; facts stored before have 12 and decode with dq_known false.
    out << '\t' << (f.verified_nhs_number ? '1' : '0') << (f.valid_postcode ? '1' : '0')
        << (f.valid_practice ? '1' : '0') << (f.valid_codes ? '1' : '0') << '\t' << f.delay_seconds;
  }
  return out.str();
}

std::optional<Fact> DecodeFact(const std::string& text) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t tab = text.find('\t', start);
    parts.push_back(text.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) {
      break;
    }
    start = tab + 1;
  }
  if (parts.size() != 12 && parts.size() != 14) {
    return std::nullopt;
  }
  Fact f;
  f.patient = parts[0];
  f.type = parts[1];
  f.occurred = std::strtoll(parts[2].c_str(), nullptr, 10);
  f.publisher_ods = parts[3];
  f.site_ods = parts[4];
  f.practice = parts[5];
  f.birth_ym = parts[6];
  f.referral_id = parts[7];
  f.requester_ods = parts[8];
  f.performer_ods = parts[9];
  f.authored = std::strtoll(parts[10].c_str(), nullptr, 10);
  f.appointment = std::strtoll(parts[11].c_str(), nullptr, 10);
  if (parts.size() == 14) {
    if (parts[12].size() != 4) {
      return std::nullopt;
    }
    f.dq_known = true;
    f.verified_nhs_number = parts[12][0] == '1';
    f.valid_postcode = parts[12][1] == '1';
    f.valid_practice = parts[12][2] == '1';
    f.valid_codes = parts[12][3] == '1';
    f.delay_seconds = std::strtoll(parts[13].c_str(), nullptr, 10);
  }
  return f;
}

std::optional<PracticeList> ReadPracticeList(const std::string& path, std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = "cannot read " + path;
    return std::nullopt;
  }
  PracticeList list;
  std::string line;
  bool header = true;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    if (line.empty()) {
      continue;
    }
    if (header) {
      header = false;
      if (line != "practice_ods,pcn,registered_patients") {
        *error = path + ":1: expected header practice_ods,pcn,registered_patients";
        return std::nullopt;
      }
      continue;
    }
    const size_t a = line.find(',');
    const size_t b = a == std::string::npos ? a : line.find(',', a + 1);
    if (b == std::string::npos) {
      *error = path + ":" + std::to_string(line_no) + ": expected three columns";
      return std::nullopt;
    }
    const std::string practice = line.substr(0, a);
    list.pcn_of[practice] = line.substr(a + 1, b - a - 1);
    list.sizes[practice] = std::strtoll(line.c_str() + b + 1, nullptr, 10);
  }
  return list;
}

namespace {

nlohmann::json DataQualityJson(const std::map<std::string, Indicators::Quality>& by_publisher) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [publisher, q] : by_publisher) {
    out[publisher] = {{"events", q.events},
                      {"verified_nhs_number", q.verified_nhs_number},
                      {"valid_postcode", q.valid_postcode},
                      {"valid_practice", q.valid_practice},
                      {"valid_codes", q.valid_codes}};
  }
  return out;
}

}  // namespace

nlohmann::json Indicators::ToJson() const {
  return nlohmann::json{{"emergency_admissions", emergency_admissions},
                        {"ae_by_age_band", ae_by_age_band},
                        {"referral_flows", referral_flows},
                        {"referrals_accepted", referrals_accepted},
                        {"referrals_rejected", referrals_rejected},
                        {"wait_days", wait_days},
                        {"median_wait_days", median_wait_days},
                        {"attended", attended},
                        {"did_not_attend", did_not_attend},
                        {"discharges", discharges},
                        {"discharges_followed_up", discharges_followed_up},
                        {"data_quality", DataQualityJson(data_quality)},
                        {"facts", facts}};
}

Indicators ComputeIndicators(const std::vector<Fact>& facts) {
  Indicators out;
  out.facts = static_cast<int64_t>(facts.size());
  struct Referral {
    std::string requester;
    std::string performer;
    int64_t authored = 0;
    int64_t first_seen = 0;
    bool accepted = false;
    bool rejected = false;
  };
  std::map<std::string, Referral> referrals;
  // Per patient, the times of GP and community contacts, for the discharge follow-up.
  std::unordered_map<std::string, std::vector<int64_t>> contacts;
  std::vector<const Fact*> discharge_facts;

  std::map<std::string, std::vector<int64_t>> delays;
  for (const Fact& f : facts) {
    if (f.dq_known) {
      Indicators::Quality& q = out.data_quality[f.publisher_ods];
      ++q.events;
      q.verified_nhs_number += f.verified_nhs_number ? 1 : 0;
      q.valid_postcode += f.valid_postcode ? 1 : 0;
      q.valid_practice += f.valid_practice ? 1 : 0;
      q.valid_codes += f.valid_codes ? 1 : 0;
      if (f.delay_seconds != Fact::kUnknownDelay) {
        delays[f.publisher_ods].push_back(f.delay_seconds);
      }
    }
    if (f.type == "activity.emergency_admission") {
      ++out.emergency_admissions[f.practice.empty() ? "unknown" : f.practice][MonthOf(f.occurred)];
    } else if (f.type == "activity.ae_attendance") {
      const std::optional<int> age = AgeInYears(f.birth_ym, f.occurred);
      ++out.ae_by_age_band[age ? AgeBand(*age) : "unknown"];
    } else if (f.type == "activity.discharge") {
      discharge_facts.push_back(&f);
    } else if (f.type == "activity.did_not_attend") {
      ++out.did_not_attend[SettingOf(f.site_ods)];
    }
    if (IsAttendedKind(f.type)) {
      ++out.attended[SettingOf(f.site_ods)];
    }
    // A patient without an NHS number has no linking key (docs/agreements.md): never link.
    if (IsFollowUpKind(f.type) && !f.patient.empty()) {
      contacts[f.patient].push_back(f.occurred);
    }
    if (!f.referral_id.empty()) {
      Referral& r = referrals[f.referral_id];
      if (r.requester.empty()) {
        r.requester = f.requester_ods;
      }
      if (r.performer.empty()) {
        r.performer = f.performer_ods;
      }
      if (f.authored != 0 && (r.authored == 0 || f.authored < r.authored)) {
        r.authored = f.authored;
      }
      if (f.type == "referral.accepted") {
        r.accepted = true;
      } else if (f.type == "referral.rejected") {
        r.rejected = true;
      } else if (f.type == "referral.seen") {
        const int64_t at = f.appointment != 0 ? f.appointment : f.occurred;
        if (r.first_seen == 0 || at < r.first_seen) {
          r.first_seen = at;
        }
      }
    }
  }

  std::map<std::string, std::vector<int64_t>> waits;
  for (const auto& [id, r] : referrals) {
    if (r.requester.empty() || r.performer.empty()) {
      continue;
    }
    ++out.referral_flows[r.requester + ">" + r.performer];
    if (r.accepted) {
      ++out.referrals_accepted[r.performer];
    }
    if (r.rejected) {
      ++out.referrals_rejected[r.performer];
    }
    if (r.first_seen != 0 && r.authored != 0 && r.first_seen >= r.authored) {
      const int64_t days = (r.first_seen - r.authored) / kDay;
      ++out.wait_days[r.performer][WaitBand(days)];
      waits[r.performer].push_back(days);
    }
  }
  for (auto& [performer, days] : waits) {
    std::sort(days.begin(), days.end());
    out.median_wait_days[performer] = days[(days.size() - 1) / 2];
  }

  for (auto& [publisher, seconds] : delays) {
    std::sort(seconds.begin(), seconds.end());
    out.median_delay_minutes[publisher] = seconds[(seconds.size() - 1) / 2] / 60;
  }
  for (auto& [patient, times] : contacts) {
    std::sort(times.begin(), times.end());
  }
  for (const Fact* d : discharge_facts) {
    const std::string practice = d->practice.empty() ? "unknown" : d->practice;
    ++out.discharges[practice];
    auto it = d->patient.empty() ? contacts.end() : contacts.find(d->patient);
    if (it == contacts.end()) {
      continue;
    }
    auto next = std::upper_bound(it->second.begin(), it->second.end(), d->occurred);
    if (next != it->second.end() && *next <= d->occurred + kFollowUpWindow) {
      ++out.discharges_followed_up[practice];
    }
  }
  return out;
}

}  // namespace carehub::analytics
