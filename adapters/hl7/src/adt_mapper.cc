#include "carehub/adapters/hl7/adt_mapper.h"

#include <algorithm>
#include <cctype>
#include <optional>

#include "carehub/adapters/hl7/datetime.h"
#include "carehub/core/strings.h"
#include "segment_readers.h"

namespace carehub::adapters::hl7 {
namespace {

using internal::Fail;
using internal::FindInGroup;
using internal::ReadCodes;
using internal::ReadIdentifiers;
using internal::ReadName;
using internal::ReadPatient;
using internal::SetTime;
using internal::TrimValue;
using internal::Val;

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

}  // namespace

const std::vector<std::string>& SupportedTriggers() {
  static const std::vector<std::string> kTriggers = {"A01", "A02", "A03", "A04", "A05",
                                                     "A08", "A11", "A13", "A40"};
  return kTriggers;
}

Result<std::vector<v1::Event>> MapAdt(const Message& msg, const MapperOptions& options,
                                      ErrorLocation* where) {
  std::string trigger;
  if (Status s = internal::CheckMessageType(msg, "ADT", SupportedTriggers(), &trigger, where);
      !s.ok()) {
    return s;
  }
  v1::Envelope base;
  if (Status s = internal::ReadEnvelope(msg, options, &base, where); !s.ok()) {
    return s;
  }
  const std::string& control_id = base.event_id();
  const std::string& site = base.site_ods();

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
    // With a destination in PV1-37, PV1-36 is the NHS discharge method (1 clinical discharge, 2
    // self discharge, 4 died ...).
    if (!destination.empty()) {
      visit.set_discharge_method(Val(pv1, 36));
    }
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
    if (Status s = ReadPatient(pids[g], FindInGroup(msg, g, "PD1"), site, env->mutable_patient(),
                               env, where);
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
