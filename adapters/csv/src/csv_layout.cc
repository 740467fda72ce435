#include "csv_layout.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <regex>

#include "carehub/adapters/data_quality.h"
#include "carehub/adapters/event_id.h"
#include "carehub/core/event_types.h"
#include "carehub/core/strings.h"

namespace carehub::adapters::csv::internal {
namespace {

const std::vector<std::string> kActivityRequired = {"nhs_number", "contact_type",
                                                    "appointment_start"};
const std::vector<std::string> kReferralRequired = {"referral_id", "nhs_number", "status",
                                                    "authored_at"};

// A cell without its surrounding spaces and tabs (the reader has already removed line endings).
std::string TrimCell(std::string_view text) { return std::string(Trim(text, kSpaceTab)); }

// Seconds since the epoch of a civil date-time taken as UTC.
int64_t CivilSeconds(int y, int m, int d, int hh, int mm, int ss) {
  using namespace std::chrono;
  sys_days date{year(y) / month(static_cast<unsigned>(m)) / day(static_cast<unsigned>(d))};
  return duration_cast<seconds>(date.time_since_epoch()).count() + hh * 3600 + mm * 60 + ss;
}

// UTC seconds of 01:00 UTC on the last Sunday of `m` in year `y` (when UK clocks change).
int64_t LastSundayOneAm(int y, int m) {
  using namespace std::chrono;
  sys_days final_day{year(y) / month(static_cast<unsigned>(m)) / std::chrono::last};
  sys_days sunday = final_day - days(weekday(final_day).c_encoding());
  return duration_cast<seconds>(sunday.time_since_epoch()).count() + 3600;
}

bool ValidDate(int y, int m, int d) {
  using namespace std::chrono;
  return year_month_day{year(y), month(static_cast<unsigned>(m)), day(static_cast<unsigned>(d))}
      .ok();
}

// An id from the file as it may appear in an event id (printable ASCII, at most 128 bytes in all):
// itself when short and printable, else "k" + its fingerprint. 64: see event_id.h before changing.
constexpr size_t kMaxIdPartBytes = 64;
std::string IdPart(const std::string& text) { return EventIdPart(text, kMaxIdPartBytes); }

class Row {
 public:
  Row(const Header& header, const std::vector<std::string>& fields)
      : header_(header), fields_(fields) {}

  // The trimmed cell of `column`, or "" when the layout's file lacks that column.
  std::string Get(const std::string& column) const {
    auto it = header_.columns.find(column);
    return it == header_.columns.end() ? std::string() : TrimCell(fields_[it->second]);
  }

 private:
  const Header& header_;
  const std::vector<std::string>& fields_;
};

// Fills the envelope's patient. Optional demographics never make a row error (issue 21): what
// is not usable is kept for ScreenDemographics to flag, or (sex, an enum) flagged here.
std::optional<RowError> FillPatient(const Row& row, v1::Envelope* envelope) {
  v1::Patient* patient = envelope->mutable_patient();
  patient->set_nhs_number(RemoveChars(row.Get("nhs_number"), " -"));
  patient->set_nhs_number_status(row.Get("nhs_number_status"));
  std::string birth = row.Get("birth_date");
  // A birth date that is not a date is kept as sent for ScreenDemographics to flag: an optional
  // demographic never costs the row (issue 21).
  if (!birth.empty() && birth.size() > 10) {
    patient->set_birth_date(birth);
  } else if (!birth.empty()) {
    std::smatch match;
    static const std::regex kIso(R"(([0-9]{4})-([0-9]{2})-([0-9]{2}))");
    static const std::regex kUk(R"(([0-9]{2})/([0-9]{2})/([0-9]{4}))");
    int y = 0;
    int m = 0;
    int d = 0;
    if (std::regex_match(birth, match, kIso)) {
      y = std::stoi(match[1]);
      m = std::stoi(match[2]);
      d = std::stoi(match[3]);
    } else if (std::regex_match(birth, match, kUk)) {
      d = std::stoi(match[1]);
      m = std::stoi(match[2]);
      y = std::stoi(match[3]);
    }
    if (y == 0 || !ValidDate(y, m, d)) {
      patient->set_birth_date(birth);
    } else {
      char text[11];
      std::snprintf(text, sizeof(text), "%04d-%02d-%02d", y, m, d);
      patient->set_birth_date(text);
    }
  }
  std::string sex = AsciiLower(row.Get("sex"));
  if (sex == "m" || sex == "male" || sex == "1") {
    patient->set_sex(v1::SEX_MALE);
  } else if (sex == "f" || sex == "female" || sex == "2") {
    patient->set_sex(v1::SEX_FEMALE);
  } else if (sex == "o" || sex == "other" || sex == "9" || sex == "i") {
    patient->set_sex(v1::SEX_OTHER);
  } else if (sex == "u" || sex == "unknown" || sex == "x" || sex == "0") {
    patient->set_sex(v1::SEX_UNKNOWN);
  } else if (!sex.empty()) {
    FlagField(envelope, "patient.sex", kDqUnknownCode, row.Get("sex"));
  }
  patient->set_postcode(AsciiUpper(row.Get("postcode")));
  patient->set_registered_gp_ods(row.Get("registered_gp_ods"));
  patient->set_local_mrn(row.Get("local_mrn"));
  if (!patient->local_mrn().empty()) {
    // The organisation that assigned the local number: the extract's own column, else the
    // practice (appointments) or requester (referrals) the row comes from.
    std::string assigner = row.Get("mrn_assigning_ods");
    for (const char* column : {"practice_ods", "requester_ods"}) {
      if (assigner.empty()) {
        assigner = row.Get(column);
      }
    }
    patient->set_mrn_assigning_ods(AsciiUpper(assigner));
  }
  return std::nullopt;
}

// The row's version (1 when absent); nullopt when not a positive integer.
std::optional<int> Version(const Row& row) {
  std::string text = row.Get("version");
  if (text.empty()) {
    return 1;
  }
  if (text.size() > 6 || !std::all_of(text.begin(), text.end(), ::isdigit) || std::stoi(text) < 1) {
    return std::nullopt;
  }
  return std::stoi(text);
}

std::string Versioned(const std::string& base, int version) {
  return version <= 1 ? base : base + "/v" + std::to_string(version);
}

std::optional<RowError> SetTime(const Row& row, const std::string& column,
                                google::protobuf::Timestamp* out) {
  if (!ParseCsvDateTime(row.Get(column), out)) {
    return RowError{column, "not a date-time (ISO 8601, or DD/MM/YYYY HH:MM UK local time)"};
  }
  return std::nullopt;
}

std::optional<RowError> PickSite(const std::vector<std::string>& columns, const Row& row,
                                 const RowContext& context, v1::Envelope* envelope) {
  std::string first_column;
  for (const std::string& column : columns) {
    std::string ods = AsciiUpper(row.Get(column));
    if (ods.empty()) {
      continue;
    }
    if (first_column.empty()) {
      first_column = column;
    }
    if (context.allowed_ods.count(ods) > 0) {
      envelope->set_site_ods(ods);
      return std::nullopt;
    }
  }
  if (first_column.empty()) {
    envelope->set_site_ods(context.publisher_ods);
    return std::nullopt;
  }
  return RowError{first_column, "this publisher may not publish for that organisation"};
}

std::string DefaultClass(v1::ActivityKind kind) {
  switch (kind) {
    case v1::ACTIVITY_KIND_AE_ATTENDANCE:
      return "EMER";
    case v1::ACTIVITY_KIND_EMERGENCY_ADMISSION:
    case v1::ACTIVITY_KIND_ELECTIVE_ADMISSION:
    case v1::ACTIVITY_KIND_TRANSFER:
    case v1::ACTIVITY_KIND_DISCHARGE:
      return "IMP";
    case v1::ACTIVITY_KIND_PRE_ADMISSION:
      return "PRENC";
    case v1::ACTIVITY_KIND_COMMUNITY_CONTACT:
    case v1::ACTIVITY_KIND_SOCIAL_CARE_ASSESSMENT:
      return "HH";
    default:
      return "AMB";
  }
}

std::variant<v1::Event, RowError> MapActivity(const Row& row,
                                              const std::vector<std::string>& fields,
                                              const RowContext& context) {
  v1::Event event;
  v1::Envelope* envelope = event.mutable_envelope();
  v1::ActivityEvent* activity = event.mutable_activity();

  std::string contact = AsciiLower(row.Get("contact_type"));
  if (contact == "dna") {
    contact = "did_not_attend";
  }
  v1::ActivityKind kind;
  if (contact.empty() || !ParseActivityKind(contact, &kind) ||
      kind == v1::ACTIVITY_KIND_UNSPECIFIED || kind == v1::ACTIVITY_KIND_PATIENT_MERGE) {
    return RowError{"contact_type",
                    "not a known contact type (e.g. gp_consultation, "
                    "community_contact, did_not_attend, social_care_assessment)"};
  }
  activity->set_kind(kind);
  if (auto error = FillPatient(row, envelope)) {
    return *error;
  }
  if (auto error = PickSite({"practice_ods"}, row, context, envelope)) {
    return *error;
  }
  if (auto error = SetTime(row, "appointment_start", activity->mutable_period_start())) {
    return *error;
  }
  if (!row.Get("appointment_end").empty()) {
    if (auto error = SetTime(row, "appointment_end", activity->mutable_period_end())) {
      return *error;
    }
  }
  std::string status = AsciiLower(row.Get("status"));
  if (status.empty()) {
    status = "finished";
  }
  static const std::set<std::string> kStatuses = {"planned",     "arrived",         "triaged",
                                                  "in-progress", "onleave",         "finished",
                                                  "cancelled",   "entered-in-error"};
  if (kStatuses.count(status) == 0) {
    return RowError{"status",
                    "not an encounter status (planned, arrived, in-progress, finished, "
                    "cancelled, entered-in-error)"};
  }
  activity->set_status(status);
  std::string encounter_class = row.Get("encounter_class");
  activity->set_encounter_class(encounter_class.empty() ? DefaultClass(kind) : encounter_class);
  activity->set_treatment_function(row.Get("treatment_function"));
  activity->set_location(row.Get("location"));
  activity->set_referral_id(row.Get("referral_id"));
  std::string snomed = row.Get("snomed_code");
  if (!snomed.empty()) {
    if (!std::all_of(snomed.begin(), snomed.end(), ::isdigit) || snomed.size() < 6 ||
        snomed.size() > 18) {
      return RowError{"snomed_code", "not a SNOMED CT concept id (6 to 18 digits)"};
    }
    v1::CodedValue* code = activity->add_diagnoses();
    code->set_system("http://snomed.info/sct");
    code->set_code(snomed);
    code->set_display(row.Get("snomed_display"));
  }
  std::string role = row.Get("clinician_role");
  if (!role.empty()) {
    activity->set_note("clinician_role: " + role);
  }
  *envelope->mutable_occurred_at() = activity->period_start();

  std::optional<int> version = Version(row);
  if (!version) {
    return RowError{"version", "not a positive whole number"};
  }
  std::string record_id = row.Get("record_id");
  activity->set_encounter_id(record_id);
  bool cancels = status == "cancelled" || status == "entered-in-error";
  if (record_id.empty()) {
    // No publisher id: the row's content and the file name make the id (docs: "Event ids").
    std::string content = context.file_name;
    for (const std::string& field : fields) {
      content += '\x1f';
      content += field;
    }
    activity->set_encounter_id("h" + Fingerprint(content));
    envelope->set_event_id("csv/activity/" + activity->encounter_id());
    envelope->set_lifecycle(v1::LIFECYCLE_NEW);
  } else {
    std::string base = "csv/activity/" + IdPart(record_id);
    if (cancels) {
      envelope->set_event_id(base + "/cancel");
      envelope->set_lifecycle(v1::LIFECYCLE_CANCEL);
      envelope->set_supersedes_event_id(Versioned(base, *version));
    } else {
      envelope->set_event_id(Versioned(base, *version));
      envelope->set_lifecycle(*version > 1 ? v1::LIFECYCLE_UPDATE : v1::LIFECYCLE_NEW);
      if (*version > 1) {
        envelope->set_supersedes_event_id(Versioned(base, *version - 1));
      }
    }
  }
  return event;
}

std::variant<v1::Event, RowError> MapReferral(const Row& row, const RowContext& context) {
  v1::Event event;
  v1::Envelope* envelope = event.mutable_envelope();
  v1::ReferralEvent* referral = event.mutable_referral();

  std::string referral_id = row.Get("referral_id");
  if (referral_id.empty()) {
    return RowError{"referral_id", "required"};
  }
  referral->set_referral_id(referral_id);
  std::string ubrn = row.Get("ubrn");
  if (!ubrn.empty() && (ubrn.size() != 12 || !std::all_of(ubrn.begin(), ubrn.end(), ::isdigit))) {
    return RowError{"ubrn", "not a 12-digit e-RS UBRN"};
  }
  referral->set_ubrn(ubrn);
  std::string status_text = AsciiLower(row.Get("status"));
  v1::ReferralStatus status;
  if (status_text.empty() || !ParseReferralStatus(status_text, &status) ||
      status == v1::REFERRAL_STATUS_UNSPECIFIED) {
    return RowError{"status",
                    "not a referral status (created, sent, received, accepted, "
                    "rejected, booked, seen, completed, cancelled)"};
  }
  referral->set_status(status);
  std::string priority = AsciiLower(row.Get("priority"));
  if (priority.empty() || priority == "routine") {
    referral->set_priority(v1::REFERRAL_PRIORITY_ROUTINE);
  } else if (priority == "urgent") {
    referral->set_priority(v1::REFERRAL_PRIORITY_URGENT);
  } else if (priority == "two_week_wait" || priority == "2ww" || priority == "two-week-wait") {
    referral->set_priority(v1::REFERRAL_PRIORITY_TWO_WEEK_WAIT);
  } else {
    return RowError{"priority", "not a priority (routine, urgent, two_week_wait)"};
  }
  if (auto error = FillPatient(row, envelope)) {
    return *error;
  }
  referral->set_requester_ods(row.Get("requester_ods"));
  referral->set_performer_ods(row.Get("performer_ods"));
  if (auto error = PickSite({"requester_ods", "performer_ods"}, row, context, envelope)) {
    return *error;
  }
  referral->set_specialty(row.Get("specialty"));
  std::string reason = row.Get("reason_code");
  if (!reason.empty()) {
    v1::CodedValue* code = referral->add_reasons();
    code->set_system("http://snomed.info/sct");
    code->set_code(reason);
    code->set_display(row.Get("reason_display"));
  }
  if (auto error = SetTime(row, "authored_at", referral->mutable_authored_at())) {
    return *error;
  }
  if (!row.Get("appointment_at").empty()) {
    if (auto error = SetTime(row, "appointment_at", referral->mutable_appointment_at())) {
      return *error;
    }
  }
  if (!row.Get("status_at").empty()) {
    if (auto error = SetTime(row, "status_at", envelope->mutable_occurred_at())) {
      return *error;
    }
  } else {
    *envelope->mutable_occurred_at() = referral->authored_at();
  }
  std::optional<int> version = Version(row);
  if (!version) {
    return RowError{"version", "not a positive whole number"};
  }
  // Each status of a referral is its own event; a later version of the same status corrects it.
  std::string base = "csv/referral/" + IdPart(referral_id) + "/" + status_text;
  envelope->set_event_id(Versioned(base, *version));
  envelope->set_lifecycle(*version > 1 ? v1::LIFECYCLE_UPDATE : v1::LIFECYCLE_NEW);
  if (*version > 1) {
    envelope->set_supersedes_event_id(Versioned(base, *version - 1));
  }
  return event;
}

}  // namespace

std::string LayoutName(Layout layout) {
  return layout == Layout::kActivity ? "appointments" : "referrals";
}

Result<Header> DetectLayout(const std::vector<std::string>& header_fields) {
  Header header;
  for (size_t i = 0; i < header_fields.size(); ++i) {
    std::string name = AsciiLower(TrimCell(header_fields[i]));
    if (name.empty()) {
      continue;
    }
    if (!header.columns.emplace(name, i).second) {
      return Status::Error("duplicate_column", "column " + name + " appears twice in the header");
    }
  }
  for (const std::string& field : header_fields) {
    header.names.push_back(AsciiLower(TrimCell(field)));
  }
  const std::vector<std::string>* required;
  if (header.columns.count("contact_type") > 0) {
    header.layout = Layout::kActivity;
    required = &kActivityRequired;
  } else if (header.columns.count("authored_at") > 0 || header.columns.count("referral_id") > 0) {
    header.layout = Layout::kReferral;
    required = &kReferralRequired;
  } else {
    return Status::Error("unknown_layout",
                         "the header matches neither layout: appointments need contact_type, "
                         "referrals need referral_id and authored_at");
  }
  std::string missing;
  for (const std::string& column : *required) {
    if (header.columns.count(column) == 0) {
      missing += (missing.empty() ? "" : ", ") + column;
    }
  }
  if (!missing.empty()) {
    return Status::Error("missing_columns",
                         LayoutName(header.layout) + " layout lacks column(s): " + missing);
  }
  return header;
}

std::variant<v1::Event, RowError> MapRow(const Header& header,
                                         const std::vector<std::string>& fields,
                                         const RowContext& context) {
  Row row(header, fields);
  std::variant<v1::Event, RowError> result = header.layout == Layout::kActivity
                                                 ? MapActivity(row, fields, context)
                                                 : MapReferral(row, context);
  if (auto* event = std::get_if<v1::Event>(&result)) {
    v1::Envelope* envelope = event->mutable_envelope();
    envelope->set_publisher_ods(context.publisher_ods);
    envelope->set_source_system(context.source_system);
    // recorded_at never comes from the adapter's clock: a re-dropped file must give identical
    // events so that the hub answers DUPLICATE, not CONFLICT.
    if (!row.Get("recorded_at").empty()) {
      if (auto error = SetTime(row, "recorded_at", envelope->mutable_recorded_at())) {
        return *error;
      }
    } else {
      *envelope->mutable_recorded_at() = envelope->occurred_at();
    }
  }
  return result;
}

bool ParseCsvDateTime(const std::string& text, google::protobuf::Timestamp* out) {
  static const std::regex kIso(
      R"(([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?(Z|[+-][0-9]{2}:?[0-9]{2})?)?)");
  static const std::regex kUk(
      R"(([0-9]{2})/([0-9]{2})/([0-9]{4})(?: ([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?)?)");
  std::smatch match;
  // The length check keeps std::regex (recursive) away from hostile megabyte cells.
  if (text.size() > 40) {
    return false;
  }
  int y;
  int m;
  int d;
  int hh = 0;
  int mm = 0;
  int ss = 0;
  int32_t nanos = 0;
  std::string zone;
  if (std::regex_match(text, match, kIso)) {
    y = std::stoi(match[1]);
    m = std::stoi(match[2]);
    d = std::stoi(match[3]);
    if (match[4].matched) {
      hh = std::stoi(match[4]);
      mm = std::stoi(match[5]);
      ss = match[6].matched ? std::stoi(match[6]) : 0;
      if (match[7].matched) {
        std::string fraction = match[7].str();
        fraction.resize(9, '0');
        nanos = std::stoi(fraction);
      }
      zone = match[8].str();
    }
  } else if (std::regex_match(text, match, kUk)) {
    d = std::stoi(match[1]);
    m = std::stoi(match[2]);
    y = std::stoi(match[3]);
    if (match[4].matched) {
      hh = std::stoi(match[4]);
      mm = std::stoi(match[5]);
      ss = match[6].matched ? std::stoi(match[6]) : 0;
    }
  } else {
    return false;
  }
  if (!ValidDate(y, m, d) || hh > 23 || mm > 59 || ss > 60) {
    return false;
  }
  int64_t seconds = CivilSeconds(y, m, d, hh, mm, ss);
  if (zone == "Z") {
    // UTC already.
  } else if (!zone.empty()) {
    std::string digits = zone.substr(1);
    digits.erase(std::remove(digits.begin(), digits.end(), ':'), digits.end());
    int offset = std::stoi(digits.substr(0, 2)) * 3600 + std::stoi(digits.substr(2, 2)) * 60;
    seconds -= zone[0] == '+' ? offset : -offset;
  } else {
    // UK local time: BST (UTC+1) between 01:00 UTC on the last Sundays of March and October.
    int64_t as_bst = seconds - 3600;
    if (as_bst >= LastSundayOneAm(y, 3) && as_bst < LastSundayOneAm(y, 10)) {
      seconds = as_bst;
    }
  }
  out->set_seconds(seconds);
  out->set_nanos(nanos);
  return true;
}

}  // namespace carehub::adapters::csv::internal
