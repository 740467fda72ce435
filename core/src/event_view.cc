#include "carehub/core/event_view.h"

#include "carehub/core/utf8.h"
#include "carehub/core/wire_reader.h"

namespace carehub {
namespace {

using wire::ForEachField;
using wire::kLengthDelimited;
using wire::kVarint;
// A field of another wire type than its schema's is not plain: protobuf would keep it as an
// unknown field.
using FieldValue = wire::Field;

// proto3 string: last occurrence wins, as in protobuf; the bytes must be UTF-8.
bool String(const FieldValue& f, std::string_view* out) {
  if (f.wire_type != kLengthDelimited || !IsValidUtf8(f.bytes)) {
    return false;
  }
  *out = f.bytes;
  return true;
}

// int32 and enum fields: protobuf keeps the low 32 bits of the varint.
bool Int32(const FieldValue& f, int32_t* out) {
  if (f.wire_type != kVarint) {
    return false;
  }
  *out = static_cast<int32_t>(static_cast<uint32_t>(f.varint));
  return true;
}

// A singular message field given twice is merged by protobuf: not plain.
template <typename View, typename ReadFn>
bool Message(const FieldValue& f, View* out, bool* has, ReadFn read) {
  if (f.wire_type != kLengthDelimited || *has) {
    return false;
  }
  *has = true;
  return read(f.bytes, out);
}

bool ReadTimestamp(std::string_view bytes, TimestampView* ts) {
  return ForEachField(bytes, [ts](const FieldValue& f) {
    switch (f.number) {
      case 1:
        if (f.wire_type != kVarint) {
          return false;
        }
        ts->seconds_ = static_cast<int64_t>(f.varint);
        return true;
      case 2:
        return Int32(f, &ts->nanos_);
      default:
        return false;
    }
  });
}

bool ReadPatient(std::string_view bytes, PatientView* p) {
  return ForEachField(bytes, [p](const FieldValue& f) {
    switch (f.number) {
      case 1:
        return String(f, &p->nhs_number_);
      case 2:
        return String(f, &p->local_mrn_);
      case 3:
        return String(f, &p->mrn_assigning_ods_);
      case 4:
        return String(f, &p->birth_date_);
      case 5:
        return Int32(f, &p->sex_);
      case 6:
        return String(f, &p->postcode_);
      case 7:
        return String(f, &p->registered_gp_ods_);
      case 8:
        return String(f, &p->given_name_);
      case 9:
        return String(f, &p->family_name_);
      case 10:
        return String(f, &p->address_);
      case 11:
        return String(f, &p->pseudonym_);
      case 12:
        return String(f, &p->nhs_number_status_);
      default:
        return false;
    }
  });
}

bool ReadFlag(std::string_view bytes, DataQualityFlagView* flag) {
  return ForEachField(bytes, [flag](const FieldValue& f) {
    switch (f.number) {
      case 1:
        return String(f, &flag->field_);
      case 2:
        return String(f, &flag->problem_);
      case 3:
        return String(f, &flag->raw_value_);
      default:
        return false;
    }
  });
}

bool ReadCode(std::string_view bytes, CodedValueView* code) {
  return ForEachField(bytes, [code](const FieldValue& f) {
    switch (f.number) {
      case 1:
        return String(f, &code->system_);
      case 2:
        return String(f, &code->code_);
      case 3:
        return String(f, &code->display_);
      default:
        return false;
    }
  });
}

// Repeated message fields append, in order, as protobuf does.
template <typename View, typename ReadFn>
bool Append(const FieldValue& f, std::vector<View>* out, ReadFn read) {
  if (f.wire_type != kLengthDelimited) {
    return false;
  }
  return read(f.bytes, &out->emplace_back());
}

bool ReadEnvelope(std::string_view bytes, EnvelopeView* env) {
  return ForEachField(bytes, [env](const FieldValue& f) {
    switch (f.number) {
      case 1:
        return String(f, &env->event_id_);
      case 2:
        return String(f, &env->publisher_ods_);
      case 3:
        return String(f, &env->site_ods_);
      case 4:
        return String(f, &env->source_system_);
      case 5:
        return Int32(f, &env->lifecycle_);
      case 6:
        return String(f, &env->supersedes_event_id_);
      case 7:
        return Message(f, &env->occurred_at_, &env->has_occurred_at_, ReadTimestamp);
      case 8:
        return Message(f, &env->recorded_at_, &env->has_recorded_at_, ReadTimestamp);
      case 9:
        return Message(f, &env->patient_, &env->has_patient_, ReadPatient);
      case 10:
        return Append(f, &env->data_quality_, ReadFlag);
      // 20 hub_seq, 21 received_at: the hub's own fields. The caller clears them and re-encodes
      // (ingest_pipeline.cc), which needs the parsed message.
      default:
        return false;
    }
  });
}

bool ReadActivity(std::string_view bytes, ActivityView* a) {
  return ForEachField(bytes, [a](const FieldValue& f) {
    switch (f.number) {
      case 1:
        return Int32(f, &a->kind_);
      case 2:
        return String(f, &a->encounter_id_);
      case 3:
        return String(f, &a->encounter_class_);
      case 4:
        return String(f, &a->status_);
      case 5:
        return Message(f, &a->period_start_, &a->has_period_start_, ReadTimestamp);
      case 6:
        return Message(f, &a->period_end_, &a->has_period_end_, ReadTimestamp);
      case 7:
        return String(f, &a->treatment_function_);
      case 8:
        return String(f, &a->location_);
      case 9:
        return String(f, &a->admission_source_);
      case 10:
        return String(f, &a->admission_method_);
      case 11:
        return String(f, &a->discharge_destination_);
      case 12:
        return Append(f, &a->diagnoses_, ReadCode);
      case 13:
        return Append(f, &a->procedures_, ReadCode);
      case 14:
        return String(f, &a->referral_id_);
      case 15:
        return String(f, &a->note_);
      case 16:
        return Message(f, &a->merged_patient_, &a->has_merged_patient_, ReadPatient);
      case 17:
        return String(f, &a->discharge_method_);
      case 18:
        return String(f, &a->referral_source_);
      default:
        return false;
    }
  });
}

bool ReadReferral(std::string_view bytes, ReferralView* r) {
  return ForEachField(bytes, [r](const FieldValue& f) {
    switch (f.number) {
      case 1:
        return String(f, &r->referral_id_);
      case 2:
        return String(f, &r->ubrn_);
      case 3:
        return Int32(f, &r->status_);
      case 4:
        return Int32(f, &r->priority_);
      case 5:
        return String(f, &r->requester_ods_);
      case 6:
        return String(f, &r->performer_ods_);
      case 7:
        return String(f, &r->specialty_);
      case 8:
        return Append(f, &r->reasons_, ReadCode);
      case 9:
        return Message(f, &r->authored_at_, &r->has_authored_at_, ReadTimestamp);
      case 10:
        return Message(f, &r->appointment_at_, &r->has_appointment_at_, ReadTimestamp);
      case 11:
        return String(f, &r->note_);
      case 12:
        return String(f, &r->source_of_referral_);
      default:
        return false;
    }
  });
}

void CopyTimestamp(const google::protobuf::Timestamp& from, TimestampView* to) {
  to->seconds_ = from.seconds();
  to->nanos_ = from.nanos();
}

void CopyPatient(const v1::Patient& from, PatientView* to) {
  to->nhs_number_ = from.nhs_number();
  to->local_mrn_ = from.local_mrn();
  to->mrn_assigning_ods_ = from.mrn_assigning_ods();
  to->birth_date_ = from.birth_date();
  to->sex_ = from.sex();
  to->postcode_ = from.postcode();
  to->registered_gp_ods_ = from.registered_gp_ods();
  to->given_name_ = from.given_name();
  to->family_name_ = from.family_name();
  to->address_ = from.address();
  to->pseudonym_ = from.pseudonym();
  to->nhs_number_status_ = from.nhs_number_status();
}

void CopyCodes(const google::protobuf::RepeatedPtrField<v1::CodedValue>& from,
               std::vector<CodedValueView>* to) {
  for (const v1::CodedValue& c : from) {
    CodedValueView& v = to->emplace_back();
    v.system_ = c.system();
    v.code_ = c.code();
    v.display_ = c.display();
  }
}

}  // namespace

void EventView::Clear() {
  // Keep the vectors' buffers: a view is reused for event after event.
  auto flags = std::move(envelope_.data_quality_);
  auto diagnoses = std::move(activity_.diagnoses_);
  auto procedures = std::move(activity_.procedures_);
  auto reasons = std::move(referral_.reasons_);
  *this = EventView();
  flags.clear();
  diagnoses.clear();
  procedures.clear();
  reasons.clear();
  envelope_.data_quality_ = std::move(flags);
  activity_.diagnoses_ = std::move(diagnoses);
  activity_.procedures_ = std::move(procedures);
  referral_.reasons_ = std::move(reasons);
}

bool ReadEventView(std::string_view bytes, EventView* view) {
  view->Clear();
  const bool plain = ForEachField(bytes, [view](const FieldValue& f) {
    switch (f.number) {
      case 1:
        return Message(f, &view->envelope_, &view->has_envelope_, ReadEnvelope);
      // The body is a oneof: a second body (of either kind) would replace or merge the first.
      case 2:
      case 3:
        if (f.wire_type != kLengthDelimited || view->body_case_ != v1::Event::BODY_NOT_SET) {
          return false;
        }
        if (f.number == 2) {
          view->body_case_ = v1::Event::kActivity;
          return ReadActivity(f.bytes, &view->activity_);
        }
        view->body_case_ = v1::Event::kReferral;
        return ReadReferral(f.bytes, &view->referral_);
      default:
        return false;
    }
  });
  view->strings_checked_utf8_ = plain;
  return plain;
}

void MakeEventView(const v1::Event& event, EventView* view) {
  view->Clear();
  view->has_envelope_ = event.has_envelope();
  const v1::Envelope& env = event.envelope();
  EnvelopeView& e = view->envelope_;
  e.event_id_ = env.event_id();
  e.publisher_ods_ = env.publisher_ods();
  e.site_ods_ = env.site_ods();
  e.source_system_ = env.source_system();
  e.lifecycle_ = env.lifecycle();
  e.supersedes_event_id_ = env.supersedes_event_id();
  e.has_occurred_at_ = env.has_occurred_at();
  CopyTimestamp(env.occurred_at(), &e.occurred_at_);
  e.has_recorded_at_ = env.has_recorded_at();
  CopyTimestamp(env.recorded_at(), &e.recorded_at_);
  e.has_patient_ = env.has_patient();
  CopyPatient(env.patient(), &e.patient_);
  for (const v1::DataQualityFlag& flag : env.data_quality()) {
    DataQualityFlagView& v = e.data_quality_.emplace_back();
    v.field_ = flag.field();
    v.problem_ = flag.problem();
    v.raw_value_ = flag.raw_value();
  }
  e.hub_seq_ = env.hub_seq();
  e.has_received_at_ = env.has_received_at();
  CopyTimestamp(env.received_at(), &e.received_at_);

  view->body_case_ = event.body_case();
  if (event.has_activity()) {
    const v1::ActivityEvent& from = event.activity();
    ActivityView& a = view->activity_;
    a.kind_ = from.kind();
    a.encounter_id_ = from.encounter_id();
    a.encounter_class_ = from.encounter_class();
    a.status_ = from.status();
    a.has_period_start_ = from.has_period_start();
    CopyTimestamp(from.period_start(), &a.period_start_);
    a.has_period_end_ = from.has_period_end();
    CopyTimestamp(from.period_end(), &a.period_end_);
    a.treatment_function_ = from.treatment_function();
    a.location_ = from.location();
    a.admission_source_ = from.admission_source();
    a.admission_method_ = from.admission_method();
    a.discharge_destination_ = from.discharge_destination();
    CopyCodes(from.diagnoses(), &a.diagnoses_);
    CopyCodes(from.procedures(), &a.procedures_);
    a.referral_id_ = from.referral_id();
    a.note_ = from.note();
    a.has_merged_patient_ = from.has_merged_patient();
    CopyPatient(from.merged_patient(), &a.merged_patient_);
    a.discharge_method_ = from.discharge_method();
    a.referral_source_ = from.referral_source();
  } else if (event.has_referral()) {
    const v1::ReferralEvent& from = event.referral();
    ReferralView& r = view->referral_;
    r.referral_id_ = from.referral_id();
    r.ubrn_ = from.ubrn();
    r.status_ = from.status();
    r.priority_ = from.priority();
    r.requester_ods_ = from.requester_ods();
    r.performer_ods_ = from.performer_ods();
    r.specialty_ = from.specialty();
    CopyCodes(from.reasons(), &r.reasons_);
    r.has_authored_at_ = from.has_authored_at();
    CopyTimestamp(from.authored_at(), &r.authored_at_);
    r.has_appointment_at_ = from.has_appointment_at();
    CopyTimestamp(from.appointment_at(), &r.appointment_at_);
    r.note_ = from.note();
    r.source_of_referral_ = from.source_of_referral();
  }
}

}  // namespace carehub
