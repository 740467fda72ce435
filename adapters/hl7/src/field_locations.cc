#include "field_locations.h"

#include <string>

namespace carehub::adapters::hl7 {
namespace {

struct Source {
  std::string_view event_field;  // a prefix of the validator's field name
  std::string_view segment;
  int field;
  int component;
};

// The mappers' field sources (adt_mapper.cc, ref_mapper.cc, segment_readers.cc). Longer
// prefixes first where one is a prefix of another.
constexpr Source kSources[] = {
    {"patient.nhs_number_status", "PID", 32, 0},
    {"patient.nhs_number", "PID", 3, 1},
    {"patient.local_mrn", "PID", 3, 1},
    {"patient.mrn_assigning_ods", "PID", 3, 4},
    {"patient.given_name", "PID", 5, 2},
    {"patient.family_name", "PID", 5, 1},
    {"patient.birth_date", "PID", 7, 0},
    {"patient.sex", "PID", 8, 0},
    {"patient.address", "PID", 11, 0},
    {"patient.postcode", "PID", 11, 5},
    {"patient.registered_gp_ods", "PD1", 3, 10},
    {"envelope.event_id", "MSH", 10, 0},
    {"envelope.publisher_ods", "MSH", 4, 0},
    {"envelope.site_ods", "MSH", 4, 0},
    {"envelope.source_system", "MSH", 3, 0},
    {"envelope.recorded_at", "MSH", 7, 0},
    {"activity.merged_patient", "MRG", 1, 1},
    {"activity.encounter_id", "PV1", 19, 0},
    {"activity.encounter_class", "PV1", 2, 0},
    {"activity.location", "PV1", 3, 0},
    {"activity.admission_method", "PV1", 4, 0},
    {"activity.treatment_function", "PV1", 10, 0},
    {"activity.admission_source", "PV1", 14, 0},
    {"activity.discharge_destination", "PV1", 37, 0},
    {"activity.discharge_method", "PV1", 36, 0},
    {"activity.period_start", "PV1", 44, 0},
    {"activity.period_end", "PV1", 45, 0},
    {"activity.diagnoses", "DG1", 3, 0},
    {"activity.procedures", "PR1", 3, 0},
    {"activity.referral_id", "RF1", 6, 0},
    {"referral.referral_id", "RF1", 6, 0},
    {"referral.ubrn", "RF1", 11, 0},
    {"referral.priority", "RF1", 2, 0},
    {"referral.specialty", "RF1", 3, 0},
    {"referral.reasons", "RF1", 10, 0},
    {"referral.authored_at", "RF1", 9, 0},
    {"referral.source_of_referral", "RF1", 5, 0},
    {"referral.requester_ods", "PRD", 7, 0},
    {"referral.performer_ods", "PRD", 7, 0},
};

}  // namespace

ErrorLocation LocateEventField(std::string_view validator_message, const Message& message) {
  const std::string_view field = validator_message.substr(0, validator_message.find(' '));
  if (field == "envelope.occurred_at" || field == "envelope.supersedes_event_id") {
    // occurred_at is EVN-6, else EVN-2, else MSH-7; the visit key comes from PV1-19.
    if (field == "envelope.supersedes_event_id") {
      return ErrorLocation{"PV1", 19};
    }
    if (message.Has("EVN")) {
      return ErrorLocation{"EVN", message.Get("EVN", 6).empty() ? 2 : 6};
    }
    return ErrorLocation{"MSH", 7};
  }
  for (const Source& source : kSources) {
    if (field.substr(0, source.event_field.size()) == source.event_field) {
      ErrorLocation where{std::string(source.segment), source.field};
      where.component = source.component;
      return where;
    }
  }
  return ErrorLocation{};
}

}  // namespace carehub::adapters::hl7
