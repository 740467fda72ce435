#include "segment_readers.h"

#include <algorithm>
#include <cctype>

#include "carehub/adapters/data_quality.h"
#include "carehub/adapters/hl7/datetime.h"
#include "carehub/core/strings.h"

namespace carehub::adapters::hl7::internal {

// A component without surrounding spaces and tabs (the parser has split off segment terminators).
// HL7's explicit null ("") means "delete the value": for an event it is simply absent.
std::string TrimValue(std::string_view value) {
  std::string_view trimmed = Trim(value, kSpaceTab);
  return trimmed == "\"\"" ? std::string() : std::string(trimmed);
}

// Segment accessor that trims and treats "" as empty.
std::string Val(const Segment& seg, int field, int rep, int comp, int sub) {
  return TrimValue(seg.Get(field, rep, comp, sub));
}

Status Fail(std::string_view code, std::string message, ErrorLocation* where,
            std::string_view segment, int field) {
  if (where != nullptr) {
    where->segment = std::string(segment);
    where->field = field;
  }
  return Status::Error(std::string(code), std::move(message));
}

// Accepts 2.3 up to 2.8 with any sub-release (2.3.1, 2.5.1, 2.8.2).
bool IsSupportedVersion(std::string_view version) {
  if (version.size() < 3 || version[0] != '2' || version[1] != '.' ||
      !std::isdigit(static_cast<unsigned char>(version[2]))) {
    return false;
  }
  if (version.size() > 3) {
    if (version[3] != '.' || version.size() == 4) {
      return false;
    }
    for (char c : version.substr(4)) {
      if (!std::isdigit(static_cast<unsigned char>(c))) {
        return false;
      }
    }
  }
  return version[2] >= '3' && version[2] <= '8';
}

// The first segment named `name` in patient group `group`: from its PID to the next PID.
std::optional<Segment> FindInGroup(const Message& msg, size_t group, std::string_view name) {
  size_t pid_seen = 0;
  bool inside = false;
  for (size_t i = 0; i < msg.SegmentCount(); ++i) {
    const Segment seg = msg.segment(i);
    if (seg.name() == "PID") {
      inside = pid_seen == group;
      ++pid_seen;
      continue;
    }
    if (inside && seg.name() == name) {
      return seg;
    }
  }
  return std::nullopt;
}

// The spaces and dashes people type inside an NHS number ("943 476 5919"), as FHIR and CSV drop.
std::string NormaliseNhsNumber(const std::string& value) { return RemoveChars(value, " -"); }

bool IsNhsRepetition(const Segment& seg, int field, int rep) {
  return AsciiUpper(Val(seg, field, rep, 4)) == "NHS" ||
         AsciiUpper(Val(seg, field, rep, 5)) == "NH";
}

// Reads NHS number and MRN from a CX list (PID-3, PID-2, MRG-1) into `patient`.
Status ReadIdentifiers(const Segment& seg, int field, const std::string& site_ods,
                       v1::Patient* patient, ErrorLocation* where) {
  const int reps = seg.RepetitionCount(field);
  int mrn_rep = -1;
  int fallback_rep = -1;
  for (int rep = 0; rep < reps; ++rep) {
    std::string id = Val(seg, field, rep);
    if (id.empty()) {
      continue;
    }
    if (IsNhsRepetition(seg, field, rep)) {
      if (!patient->nhs_number().empty()) {
        continue;
      }
      std::string nhs = NormaliseNhsNumber(id);
      if (!IsValidNhsNumber(nhs)) {
        return Fail(kReasonInvalidNhsNumber,
                    std::string(seg.name()) + "-" + std::to_string(field) +
                        " NHS number fails the Modulus 11 check",
                    where, seg.name(), field);
      }
      patient->set_nhs_number(nhs);
      continue;
    }
    if (mrn_rep < 0 && AsciiUpper(Val(seg, field, rep, 5)) == "MR") {
      mrn_rep = rep;
    }
    if (fallback_rep < 0) {
      fallback_rep = rep;
    }
  }
  if (mrn_rep < 0) {
    mrn_rep = fallback_rep;
  }
  if (mrn_rep >= 0 && patient->local_mrn().empty()) {
    patient->set_local_mrn(Val(seg, field, mrn_rep));
    std::string authority = AsciiUpper(Val(seg, field, mrn_rep, 4));
    std::string facility = AsciiUpper(Val(seg, field, mrn_rep, 6));
    if (IsValidOdsCode(authority)) {
      patient->set_mrn_assigning_ods(authority);
    } else if (IsValidOdsCode(facility)) {
      patient->set_mrn_assigning_ods(facility);
    } else {
      patient->set_mrn_assigning_ods(site_ods);
    }
  }
  return Status::Ok();
}

// Legal name (XPN-7 "L") when flagged, else the first.
void ReadName(const Segment& seg, int field, v1::Patient* patient) {
  const int reps = seg.RepetitionCount(field);
  int chosen = 0;
  for (int rep = 0; rep < reps; ++rep) {
    if (AsciiUpper(Val(seg, field, rep, 7)) == "L") {
      chosen = rep;
      break;
    }
  }
  // XPN-1 is FN (surname&prefix...) from v2.4; in v2.3 it is plain ST. Subcomponent 1 covers both.
  patient->set_family_name(Val(seg, field, chosen, 1, 1));
  patient->set_given_name(Val(seg, field, chosen, 2));
}

std::string NormalisePostcode(std::string value) {
  std::string compact;
  for (char c : AsciiUpper(value)) {
    if (c != ' ') {
      compact.push_back(c);
    }
  }
  // UK postcodes are an outward code and a three-character inward code: "LS14AP" -> "LS1 4AP".
  if (compact.size() >= 5 && compact.size() <= 7) {
    compact.insert(compact.size() - 3, " ");
  }
  // A foreign postcode ("75011") stays as sent, for the data-quality flag that will carry it.
  return IsValidUkPostcode(compact) ? compact : value;
}

void ReadAddress(const Segment& seg, v1::Patient* patient) {
  constexpr int kField = 11;
  const int reps = seg.RepetitionCount(kField);
  int chosen = 0;
  for (int rep = 0; rep < reps; ++rep) {
    if (AsciiUpper(Val(seg, kField, rep, 7)) == "H") {
      chosen = rep;
      break;
    }
  }
  std::string postcode = Val(seg, kField, chosen, 5);
  if (!postcode.empty()) {
    patient->set_postcode(NormalisePostcode(postcode));
  }
  std::string address;
  for (int comp = 1; comp <= 4; ++comp) {
    std::string part = Val(seg, kField, chosen, comp, 1);
    if (part.empty()) {
      continue;
    }
    if (!address.empty()) {
      address += ", ";
    }
    address += part;
  }
  patient->set_address(address);
}

v1::Sex MapSex(std::string_view code) {
  if (code == "M") {
    return v1::SEX_MALE;
  }
  if (code == "F") {
    return v1::SEX_FEMALE;
  }
  if (code == "O" || code == "A") {
    return v1::SEX_OTHER;
  }
  if (code == "U" || code == "N") {
    return v1::SEX_UNKNOWN;
  }
  return v1::SEX_UNSPECIFIED;
}

std::string CodingSystem(std::string raw) {
  std::string up = AsciiUpper(raw);
  if (up == "I10" || up == "ICD10" || up == "ICD-10" || up == "I10C" || up == "ICD10UK") {
    return "ICD-10";
  }
  if (up == "SCT" || up == "SNOMED" || up == "SNOMEDCT" || up == "SNOMED-CT" || up == "SNOMED CT" ||
      raw == "http://snomed.info/sct") {
    return "http://snomed.info/sct";
  }
  if (up == "OPCS4" || up == "OPCS-4" || up == "OPCS" || up == "OPC4") {
    return "OPCS-4";
  }
  return raw;
}

// DG1-3 / PR1-3 (CE, CWE or CNE: code^text^system); the description falls back to field 4.
void ReadCodes(const Message& msg, std::string_view segment, int field,
               google::protobuf::RepeatedPtrField<v1::CodedValue>* out) {
  for (const Segment& seg : msg.FindAll(segment)) {
    std::string code = Val(seg, field, 0, 1);
    if (code.empty()) {
      continue;
    }
    v1::CodedValue* value = out->Add();
    value->set_code(code);
    std::string display = Val(seg, field, 0, 2);
    value->set_display(display.empty() ? Val(seg, field + 1) : display);
    value->set_system(CodingSystem(Val(seg, field, 0, 3)));
  }
}

Status SetTime(std::string_view value, std::string_view segment, int field,
               google::protobuf::Timestamp* out, ErrorLocation* where) {
  Result<google::protobuf::Timestamp> ts = ParseDateTime(value);
  if (!ts.ok()) {
    return Fail(ts.status().code(),
                std::string(segment) + "-" + std::to_string(field) + ": " + ts.status().message(),
                where, segment, field);
  }
  *out = ts.value();
  return Status::Ok();
}

// "1980" -> "1980", "198005" -> "1980-05"; anything else is returned as sent.
std::string PartialBirthDate(const std::string& value) {
  const bool digits = std::all_of(value.begin(), value.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c));
  });
  if (digits && value.size() == 4) {
    return value;
  }
  if (digits && value.size() == 6) {
    return value.substr(0, 4) + "-" + value.substr(4, 2);
  }
  return value;
}

// PID-32 (identity reliability code), where NHS feeds put the NHS Number Status Indicator: "01"
// .. "08", also sent as "1" .. "8" or prefixed "NSTS" (the NHS code system's name). Other values
// are returned as sent and flagged unknown_code by ScreenDemographics.
std::string NhsNumberStatus(std::string value) {
  value = AsciiUpper(value);
  if (value.rfind("NSTS", 0) == 0) {
    value = value.substr(4);
  }
  if (value.size() == 1 && value[0] >= '1' && value[0] <= '8') {
    value = "0" + value;
  }
  return value;
}

Status ReadPatient(const Segment& pid, std::optional<Segment> pd1, const std::string& site_ods,
                   v1::Patient* patient, v1::Envelope* flags, ErrorLocation* where) {
  if (Status s = ReadIdentifiers(pid, 3, site_ods, patient, where); !s.ok()) {
    return s;
  }
  // v2.3 feeds often carry the NHS number in PID-2 (external ID) and only local numbers in PID-3.
  if (patient->nhs_number().empty() && pid.RepetitionCount(2) > 0) {
    v1::Patient external;
    if (Status s = ReadIdentifiers(pid, 2, site_ods, &external, where); !s.ok()) {
      return s;
    }
    patient->set_nhs_number(external.nhs_number());
  }
  ReadName(pid, 5, patient);
  std::string birth = Val(pid, 7);
  if (!birth.empty()) {
    Result<std::string> date = ParseBirthDate(birth);
    // A date known only to the year or month, or nonsense, is kept in the shape ScreenDemographics
    // recognises and flagged there; it never costs the event (issue 21).
    patient->set_birth_date(date.ok() ? date.value() : PartialBirthDate(birth));
  }
  const std::string sex = AsciiUpper(Val(pid, 8));
  patient->set_sex(MapSex(sex));
  if (!sex.empty() && patient->sex() == v1::SEX_UNSPECIFIED && flags != nullptr) {
    FlagField(flags, "patient.sex", kDqUnknownCode, sex);
  }
  patient->set_nhs_number_status(NhsNumberStatus(Val(pid, 32)));
  ReadAddress(pid, patient);
  if (pd1.has_value()) {
    // XON-10 (organisation identifier, v2.5+) is where the ODS code belongs; v2.3 used XON-3.
    std::string gp = AsciiUpper(Val(*pd1, 3, 0, 10));
    if (gp.empty()) {
      gp = AsciiUpper(Val(*pd1, 3, 0, 3));
    }
    patient->set_registered_gp_ods(gp);
  }
  return Status::Ok();
}

Status CheckMessageType(const Message& msg, std::string_view message_type,
                        const std::vector<std::string>& triggers, std::string* trigger,
                        ErrorLocation* where) {
  const Segment msh = msg.segment(0);
  if (!IsSupportedVersion(Val(msh, 12))) {
    return Fail(kReasonUnsupportedVersion, "MSH-12 version must be 2.3 to 2.8", where, "MSH", 12);
  }
  if (AsciiUpper(Val(msh, 9, 0, 1)) != message_type) {
    return Fail(kReasonUnsupportedMessageType,
                "MSH-9 message type must be " + std::string(message_type), where, "MSH", 9);
  }
  *trigger = AsciiUpper(TrimValue(msg.TriggerEvent()));
  if (std::find(triggers.begin(), triggers.end(), *trigger) == triggers.end()) {
    return Fail(kReasonUnsupportedTrigger,
                "trigger event " + (trigger->empty() ? std::string("(none)") : *trigger) +
                    " is not supported for " + std::string(message_type),
                where, "MSH", 9);
  }
  return Status::Ok();
}

Status ReadEnvelope(const Message& msg, const MapperOptions& options, v1::Envelope* base,
                    ErrorLocation* where) {
  const Segment msh = msg.segment(0);
  const std::string control_id = Val(msh, 10);
  if (control_id.empty()) {
    return Fail(kReasonMissingField, "MSH-10 message control id is required", where, "MSH", 10);
  }
  std::string site = AsciiUpper(Val(msh, 4));
  if (site.empty()) {
    return Fail(kReasonMissingField, "MSH-4 sending facility is required", where, "MSH", 4);
  }
  const std::vector<std::string>& allowed = options.allowed_facilities;
  const bool site_allowed = allowed.empty()
                                ? site == options.publisher_ods
                                : std::find(allowed.begin(), allowed.end(), site) != allowed.end();
  if (!site_allowed) {
    return Fail(kReasonUnknownFacility, "MSH-4 sending facility is not configured for this adapter",
                where, "MSH", 4);
  }
  const std::string recorded = Val(msh, 7);
  if (recorded.empty()) {
    return Fail(kReasonMissingField, "MSH-7 message date/time is required", where, "MSH", 7);
  }

  base->set_event_id(control_id);
  base->set_publisher_ods(options.publisher_ods);
  base->set_site_ods(site);
  base->set_source_system(Val(msh, 3));
  base->set_lifecycle(v1::LIFECYCLE_NEW);
  if (Status s = SetTime(recorded, "MSH", 7, base->mutable_recorded_at(), where); !s.ok()) {
    return s;
  }
  std::string occurred = Val(msh, 7);
  std::string_view occurred_seg = "MSH";
  int occurred_field = 7;
  if (msg.Has("EVN")) {
    const Segment evn = msg.FindAll("EVN").front();
    if (!Val(evn, 6).empty()) {
      occurred = Val(evn, 6);
      occurred_seg = "EVN";
      occurred_field = 6;
    } else if (!Val(evn, 2).empty()) {
      occurred = Val(evn, 2);
      occurred_seg = "EVN";
      occurred_field = 2;
    }
  }
  if (Status s =
          SetTime(occurred, occurred_seg, occurred_field, base->mutable_occurred_at(), where);
      !s.ok()) {
    return s;
  }

  return Status::Ok();
}

}  // namespace carehub::adapters::hl7::internal
