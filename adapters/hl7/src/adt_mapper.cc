#include "carehub/adapters/hl7/adt_mapper.h"

#include <algorithm>
#include <cctype>
#include <optional>

#include "carehub/adapters/hl7/datetime.h"
#include "carehub/core/strings.h"

namespace carehub::adapters::hl7 {
namespace {

// A component without surrounding spaces and tabs (the parser has split off segment terminators).
// HL7's explicit null ("") means "delete the value": for an event it is simply absent.
std::string TrimValue(std::string_view value) {
  std::string_view trimmed = Trim(value, kSpaceTab);
  return trimmed == "\"\"" ? std::string() : std::string(trimmed);
}

// Segment accessor that trims and treats "" as empty.
std::string Val(const Segment& seg, int field, int rep = 0, int comp = 1, int sub = 1) {
  return TrimValue(seg.Get(field, rep, comp, sub));
}

Status Fail(std::string_view code, std::string message, ErrorLocation* where,
            std::string_view segment = {}, int field = 0) {
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
  for (char c : AsciiUpper(std::move(value))) {
    if (c != ' ') {
      compact.push_back(c);
    }
  }
  // UK postcodes are an outward code and a three-character inward code: "LS14AP" -> "LS1 4AP".
  if (compact.size() >= 5 && compact.size() <= 7) {
    compact.insert(compact.size() - 3, " ");
  }
  return compact;
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

std::string EncounterClass(std::string_view patient_class) {
  if (patient_class == "I" || patient_class == "B") {
    return "IMP";
  }
  if (patient_class == "E") {
    return "EMER";
  }
  if (patient_class == "O" || patient_class == "R") {
    return "AMB";
  }
  if (patient_class == "P") {
    return "PRENC";
  }
  return {};
}

// HL7 table 0007 E (emergency), A (accident), U (urgent); or an NHS admission method 21-28 (the
// NHS Data Dictionary codes many PAS send in PV1-4).
bool IsEmergencyAdmission(std::string_view admission_type) {
  if (admission_type == "E" || admission_type == "A" || admission_type == "U") {
    return true;
  }
  return admission_type.size() == 2 && admission_type[0] == '2' &&
         std::isdigit(static_cast<unsigned char>(admission_type[1]));
}

// The trigger that opened a visit, inferred from the patient class (used by A08 and A11).
std::string OriginTrigger(std::string_view patient_class) {
  if (patient_class == "P") {
    return "A05";
  }
  if (patient_class == "O" || patient_class == "R" || patient_class == "E") {
    return "A04";
  }
  return "A01";
}

v1::ActivityKind KindFor(std::string_view trigger, std::string_view patient_class,
                         std::string_view admission_type) {
  if (trigger == "A01") {
    if (patient_class == "E") {
      return v1::ACTIVITY_KIND_AE_ATTENDANCE;
    }
    return IsEmergencyAdmission(admission_type) ? v1::ACTIVITY_KIND_EMERGENCY_ADMISSION
                                                : v1::ACTIVITY_KIND_ELECTIVE_ADMISSION;
  }
  if (trigger == "A02") {
    return v1::ACTIVITY_KIND_TRANSFER;
  }
  if (trigger == "A03" || trigger == "A13") {
    return v1::ACTIVITY_KIND_DISCHARGE;
  }
  if (trigger == "A04") {
    if (patient_class == "E") {
      return v1::ACTIVITY_KIND_AE_ATTENDANCE;
    }
    if (patient_class == "O" || patient_class == "R") {
      return v1::ACTIVITY_KIND_OUTPATIENT_ATTENDANCE;
    }
    return v1::ACTIVITY_KIND_REGISTRATION;
  }
  if (trigger == "A05") {
    return v1::ACTIVITY_KIND_PRE_ADMISSION;
  }
  if (trigger == "A40") {
    return v1::ACTIVITY_KIND_PATIENT_MERGE;
  }
  return v1::ACTIVITY_KIND_UNSPECIFIED;
}

std::string StatusFor(std::string_view trigger) {
  if (trigger == "A01" || trigger == "A02" || trigger == "A13") {
    return "in-progress";
  }
  if (trigger == "A03") {
    return "finished";
  }
  if (trigger == "A04") {
    return "arrived";
  }
  if (trigger == "A05") {
    return "planned";
  }
  if (trigger == "A11") {
    return "cancelled";
  }
  return {};
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

Status ReadPatient(const Segment& pid, std::optional<Segment> pd1, const std::string& site_ods,
                   v1::Patient* patient, ErrorLocation* where) {
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
    if (!date.ok()) {
      return Fail(date.status().code(), "PID-7: " + date.status().message(), where, "PID", 7);
    }
    patient->set_birth_date(date.value());
  }
  patient->set_sex(MapSex(AsciiUpper(Val(pid, 8))));
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

}  // namespace

const std::vector<std::string>& SupportedTriggers() {
  static const std::vector<std::string> kTriggers = {"A01", "A02", "A03", "A04", "A05",
                                                     "A08", "A11", "A13", "A40"};
  return kTriggers;
}

Result<std::vector<v1::Event>> MapAdt(const Message& msg, const MapperOptions& options,
                                      ErrorLocation* where) {
  const Segment msh = msg.segment(0);
  const std::string version = Val(msh, 12);
  if (!IsSupportedVersion(version)) {
    return Fail(kReasonUnsupportedVersion, "MSH-12 version must be 2.3 to 2.8", where, "MSH", 12);
  }
  if (AsciiUpper(Val(msh, 9, 0, 1)) != "ADT") {
    return Fail(kReasonUnsupportedMessageType, "MSH-9 message type must be ADT", where, "MSH", 9);
  }
  std::string trigger = AsciiUpper(TrimValue(msg.TriggerEvent()));
  const auto& supported = SupportedTriggers();
  if (std::find(supported.begin(), supported.end(), trigger) == supported.end()) {
    return Fail(kReasonUnsupportedTrigger,
                "trigger event " + (trigger.empty() ? std::string("(none)") : trigger) +
                    " is not supported",
                where, "MSH", 9);
  }
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

  // Envelope fields shared by every event of the message.
  v1::Envelope base;
  base.set_event_id(control_id);
  base.set_publisher_ods(options.publisher_ods);
  base.set_site_ods(site);
  base.set_source_system(Val(msh, 3));
  base.set_lifecycle(v1::LIFECYCLE_NEW);
  if (Status s = SetTime(recorded, "MSH", 7, base.mutable_recorded_at(), where); !s.ok()) {
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
  if (Status s = SetTime(occurred, occurred_seg, occurred_field, base.mutable_occurred_at(), where);
      !s.ok()) {
    return s;
  }

  const std::vector<Segment> pids = msg.FindAll("PID");
  if (pids.empty()) {
    return Fail(kReasonMissingField, "PID segment is required", where, "PID", 0);
  }

  // Visit (PV1), shared by all groups; A40 may omit it.
  v1::ActivityEvent visit;
  std::string patient_class;
  std::string visit_number;
  std::string admission_type;
  if (msg.Has("PV1")) {
    const Segment pv1 = msg.FindAll("PV1").front();
    patient_class = AsciiUpper(Val(pv1, 2));
    visit_number = Val(pv1, 19);
    admission_type = AsciiUpper(Val(pv1, 4));
    visit.set_encounter_id(visit_number);
    visit.set_encounter_class(EncounterClass(patient_class));
    std::string location;
    for (int comp = 1; comp <= 3; ++comp) {
      std::string part = Val(pv1, 3, 0, comp);
      if (part.empty()) {
        continue;
      }
      location += location.empty() ? part : "/" + part;
    }
    visit.set_location(location);
    visit.set_admission_method(admission_type);
    visit.set_treatment_function(Val(pv1, 10));
    visit.set_admission_source(Val(pv1, 14));
    // NHS feeds put the discharge destination in PV1-37 and the method in PV1-36; prefer the
    // destination, fall back to the disposition.
    std::string destination = Val(pv1, 37);
    visit.set_discharge_destination(destination.empty() ? Val(pv1, 36) : destination);
    if (std::string start = Val(pv1, 44); !start.empty()) {
      if (Status s = SetTime(start, "PV1", 44, visit.mutable_period_start(), where); !s.ok()) {
        return s;
      }
    }
    if (std::string end = Val(pv1, 45); !end.empty()) {
      if (Status s = SetTime(end, "PV1", 45, visit.mutable_period_end(), where); !s.ok()) {
        return s;
      }
    }
  } else if (trigger != "A40") {
    return Fail(kReasonMissingField, "PV1 segment is required for " + trigger, where, "PV1", 0);
  }
  ReadCodes(msg, "DG1", 3, visit.mutable_diagnoses());
  ReadCodes(msg, "PR1", 3, visit.mutable_procedures());
  if ((trigger == "A01" || trigger == "A04") && msg.Has("RF1")) {
    visit.set_referral_id(Val(msg.FindAll("RF1").front(), 6));
  }

  // Kind, status and lifecycle.
  std::string kind_trigger = trigger;
  if (trigger == "A08" || trigger == "A11" || trigger == "A13") {
    if (visit_number.empty()) {
      return Fail(kReasonMissingField, "PV1-19 visit number is required for " + trigger, where,
                  "PV1", 19);
    }
    const std::string superseded = trigger == "A13" ? "A03" : OriginTrigger(patient_class);
    base.set_supersedes_event_id(visit_number + ":" + superseded);
    base.set_lifecycle(trigger == "A08" ? v1::LIFECYCLE_UPDATE : v1::LIFECYCLE_CANCEL);
    if (trigger != "A13") {
      kind_trigger = superseded;
    }
  }
  visit.set_kind(KindFor(kind_trigger, patient_class, admission_type));
  if (trigger == "A08") {
    visit.set_status(visit.has_period_end() ? "finished" : StatusFor(kind_trigger));
  } else {
    visit.set_status(StatusFor(trigger));
  }

  std::vector<v1::Event> events;
  const std::vector<Segment> mrgs = msg.FindAll("MRG");
  if (trigger == "A40" && mrgs.size() != pids.size()) {
    return Fail(kReasonMissingField, "A40 needs one MRG segment per PID segment", where, "MRG", 1);
  }
  const size_t groups = trigger == "A40" ? pids.size() : 1;
  for (size_t g = 0; g < groups; ++g) {
    v1::Event event;
    v1::Envelope* env = event.mutable_envelope();
    *env = base;
    if (g > 0) {
      env->set_event_id(control_id + "#" + std::to_string(g + 1));
    }
    if (Status s =
            ReadPatient(pids[g], FindInGroup(msg, g, "PD1"), site, env->mutable_patient(), where);
        !s.ok()) {
      return s;
    }
    v1::ActivityEvent* activity = event.mutable_activity();
    *activity = visit;
    if (activity->encounter_id().empty() && trigger == "A40") {
      // A merge concerns a patient, not a visit; the event id stands in for the encounter id.
      activity->set_encounter_id(env->event_id());
    }
    if (trigger == "A40") {
      const Segment& mrg = mrgs[g];
      v1::Patient* merged = activity->mutable_merged_patient();
      if (Status s = ReadIdentifiers(mrg, 1, site, merged, where); !s.ok()) {
        return s;
      }
      ReadName(mrg, 7, merged);
      if (merged->nhs_number().empty() && merged->local_mrn().empty()) {
        return Fail(kReasonMissingField, "MRG-1 prior patient identifier is required", where, "MRG",
                    1);
      }
    }
    events.push_back(std::move(event));
  }
  return events;
}

}  // namespace carehub::adapters::hl7
