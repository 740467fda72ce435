#include "carehub/sink/copy_rows.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>

#include "carehub/core/event_types.h"
#include "carehub/core/utf8.h"

namespace carehub::sink {
namespace {

// COPY text format: backslash, the delimiter (tab) and line ends must be escaped.
void AppendEscaped(std::string_view value, std::string* out) {
  for (char c : value) {
    switch (c) {
      case '\\':
        out->append("\\\\");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      default:
        out->push_back(c);
    }
  }
}

void Field(std::string_view value, std::string* out, size_t* repaired) {
  out->push_back('\t');
  AppendText(value, out, repaired);
}

void TimeField(const google::protobuf::Timestamp& ts, bool present, std::string* out) {
  out->push_back('\t');
  if (!present) {
    out->append("\\N");
    return;
  }
  AppendTimestamp(ts.seconds(), ts.nanos(), out);
}

std::vector<std::string> Codes(const google::protobuf::RepeatedPtrField<v1::CodedValue>& codes) {
  // FHIR token form, system|code, so codes from different systems never look alike.
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(codes.size()));
  for (const v1::CodedValue& c : codes) {
    out.push_back(c.system() + "|" + c.code());
  }
  return out;
}

const char* LifecycleName(v1::Lifecycle l) {
  switch (l) {
    case v1::LIFECYCLE_NEW:
      return "NEW";
    case v1::LIFECYCLE_UPDATE:
      return "UPDATE";
    case v1::LIFECYCLE_CANCEL:
      return "CANCEL";
    default:
      return "UNSPECIFIED";
  }
}

// "SEX_FEMALE" -> "female"; enum names are ASCII.
std::string Lowered(const std::string& enum_name, size_t prefix) {
  std::string out = enum_name.size() > prefix ? enum_name.substr(prefix) : enum_name;
  for (char& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

}  // namespace

bool RepairUtf8(std::string_view value, std::string* out) {
  bool changed = false;
  out->clear();
  out->reserve(value.size());
  for (size_t i = 0; i < value.size();) {
    if (value[i] == '\0') {
      changed = true;
      ++i;
      continue;
    }
    const size_t n = Utf8SequenceLength(value, i);
    if (n == 0) {
      out->append("\xEF\xBF\xBD");
      changed = true;
      ++i;
      continue;
    }
    out->append(value.substr(i, n));
    i += n;
  }
  return changed;
}

void AppendText(std::string_view value, std::string* out, size_t* repaired) {
  if (value.empty()) {
    out->append("\\N");
    return;
  }
  bool plain = true;
  for (char c : value) {
    if (c == '\0' || (static_cast<unsigned char>(c) & 0x80) != 0) {
      plain = false;
      break;
    }
  }
  if (plain) {
    AppendEscaped(value, out);
    return;
  }
  std::string fixed;
  if (RepairUtf8(value, &fixed) && repaired != nullptr) {
    ++*repaired;
  }
  AppendEscaped(fixed, out);
}

void AppendTimestamp(int64_t seconds, int32_t nanos, std::string* out) {
  if (seconds == 0 && nanos == 0) {
    out->append("\\N");
    return;
  }
  const time_t t = static_cast<time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  const int micros = std::max(0, nanos) / 1000;
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02d %02d:%02d:%02d.%06d+00", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, micros);
  out->append(buf);
}

void AppendTextArray(const std::vector<std::string>& values, std::string* out, size_t* repaired) {
  if (values.empty()) {
    out->append("\\N");
    return;
  }
  // The array literal first (elements double-quoted, " and \ escaped), then COPY escaping of it.
  std::string literal = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) {
      literal.push_back(',');
    }
    std::string fixed;
    if (RepairUtf8(values[i], &fixed) && repaired != nullptr) {
      ++*repaired;
    }
    literal.push_back('"');
    for (char c : fixed) {
      if (c == '"' || c == '\\') {
        literal.push_back('\\');
      }
      literal.push_back(c);
    }
    literal.push_back('"');
  }
  literal.push_back('}');
  AppendEscaped(literal, out);
}

void AppendRows(const v1::DeliveredEvent& delivered, CopyBuffers* out) {
  const v1::Event& event = delivered.event();
  const v1::Envelope& env = event.envelope();
  const v1::Patient& p = env.patient();
  size_t* fix = &out->repaired_values;
  std::string& row = out->events;
  row.append(std::to_string(env.hub_seq()));
  Field(env.event_id(), &row, fix);
  Field(env.publisher_ods(), &row, fix);
  Field(env.site_ods(), &row, fix);
  Field(env.source_system(), &row, fix);
  Field(EventTypeName(event), &row, fix);
  Field(LifecycleName(env.lifecycle()), &row, fix);
  Field(env.supersedes_event_id(), &row, fix);
  TimeField(env.occurred_at(), env.has_occurred_at(), &row);
  TimeField(env.recorded_at(), env.has_recorded_at(), &row);
  TimeField(env.received_at(), env.has_received_at(), &row);
  Field(delivered.agreement_id(), &row, fix);
  // What the agreement let through: the hub has already redacted (DESIGN §6); the sink stores
  // what it was given and nothing more (names, address and free text are not stored at all).
  Field(p.nhs_number(), &row, fix);
  Field(p.pseudonym(), &row, fix);
  Field(p.nhs_number_status(), &row, fix);
  Field(p.local_mrn(), &row, fix);
  Field(p.mrn_assigning_ods(), &row, fix);
  Field(p.birth_date(), &row, fix);
  Field(p.sex() == v1::SEX_UNSPECIFIED ? "" : Lowered(v1::Sex_Name(p.sex()), 4), &row, fix);
  Field(p.postcode(), &row, fix);
  Field(p.registered_gp_ods(), &row, fix);
  row.push_back('\n');
  ++out->event_rows;

  const std::string seq = std::to_string(env.hub_seq());
  if (event.has_activity()) {
    const v1::ActivityEvent& a = event.activity();
    std::string& r = out->activities;
    r.append(seq);
    Field(a.kind() == v1::ACTIVITY_KIND_UNSPECIFIED ? ""
                                                    : Lowered(v1::ActivityKind_Name(a.kind()), 14),
          &r, fix);
    Field(a.encounter_id(), &r, fix);
    Field(a.encounter_class(), &r, fix);
    Field(a.status(), &r, fix);
    TimeField(a.period_start(), a.has_period_start(), &r);
    TimeField(a.period_end(), a.has_period_end(), &r);
    Field(a.treatment_function(), &r, fix);
    Field(a.location(), &r, fix);
    Field(a.admission_source(), &r, fix);
    Field(a.admission_method(), &r, fix);
    Field(a.discharge_destination(), &r, fix);
    Field(a.discharge_method(), &r, fix);
    Field(a.referral_source(), &r, fix);
    Field(a.referral_id(), &r, fix);
    r.push_back('\t');
    AppendTextArray(Codes(a.diagnoses()), &r, fix);
    r.push_back('\t');
    AppendTextArray(Codes(a.procedures()), &r, fix);
    r.push_back('\n');
    ++out->activity_rows;
  } else if (event.has_referral()) {
    const v1::ReferralEvent& f = event.referral();
    std::string& r = out->referrals;
    r.append(seq);
    Field(f.referral_id(), &r, fix);
    Field(f.ubrn(), &r, fix);
    Field(f.status() == v1::REFERRAL_STATUS_UNSPECIFIED
              ? ""
              : Lowered(v1::ReferralStatus_Name(f.status()), 16),
          &r, fix);
    Field(f.priority() == v1::REFERRAL_PRIORITY_UNSPECIFIED
              ? ""
              : Lowered(v1::ReferralPriority_Name(f.priority()), 18),
          &r, fix);
    Field(f.requester_ods(), &r, fix);
    Field(f.performer_ods(), &r, fix);
    Field(f.specialty(), &r, fix);
    Field(f.source_of_referral(), &r, fix);
    r.push_back('\t');
    AppendTextArray(Codes(f.reasons()), &r, fix);
    TimeField(f.authored_at(), f.has_authored_at(), &r);
    TimeField(f.appointment_at(), f.has_appointment_at(), &r);
    r.push_back('\n');
    ++out->referral_rows;
  }
}

}  // namespace carehub::sink
