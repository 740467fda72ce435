#include "carehub/core/event_view.h"

#include "carehub/core/utf8.h"

namespace carehub {
namespace {

// Protobuf's wire types (the low three bits of a tag).
constexpr uint32_t kVarint = 0;
constexpr uint32_t kLengthDelimited = 2;

// A cursor over encoded bytes. Every read fails (returns false) rather than read past the end.
class WireReader {
 public:
  explicit WireReader(std::string_view bytes)
      : p_(reinterpret_cast<const uint8_t*>(bytes.data())), end_(p_ + bytes.size()) {}

  bool done() const { return p_ == end_; }

  // At most ten bytes, and the tenth may only carry the value's top bit: a longer or overflowing
  // varint is left to protobuf (the caller falls back), which then decides what it means.
  bool Varint(uint64_t* value) {
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      if (p_ == end_) {
        return false;
      }
      const uint8_t b = *p_++;
      if (shift == 63 && b > 1) {
        return false;
      }
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (b < 0x80) {
        *value = v;
        return true;
      }
    }
    return false;
  }

  // A tag: field number and wire type. Field 0 and numbers past 2^29 are not valid tags.
  bool Tag(uint32_t* field, uint32_t* wire_type) {
    uint64_t tag = 0;
    if (!Varint(&tag) || tag > 0xffffffffULL) {
      return false;
    }
    *field = static_cast<uint32_t>(tag >> 3);
    *wire_type = static_cast<uint32_t>(tag & 7);
    return *field != 0;
  }

  bool Bytes(std::string_view* out) {
    uint64_t length = 0;
    if (!Varint(&length) || length > static_cast<uint64_t>(end_ - p_)) {
      return false;
    }
    *out = std::string_view(reinterpret_cast<const char*>(p_), length);
    p_ += length;
    return true;
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

// The value of one field, read according to its wire type; the message readers below take it
// apart. A field of another wire type than its schema's is not plain: protobuf would keep it as
// an unknown field.
struct FieldValue {
  uint32_t number = 0;
  uint32_t wire_type = 0;
  uint64_t varint = 0;
  std::string_view bytes;
};

bool NextField(WireReader* in, FieldValue* f) {
  if (!in->Tag(&f->number, &f->wire_type)) {
    return false;
  }
  switch (f->wire_type) {
    case kVarint:
      return in->Varint(&f->varint);
    case kLengthDelimited:
      return in->Bytes(&f->bytes);
    default:
      return false;  // no fixed-width or group fields in this schema
  }
}

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
  WireReader in(bytes);
  FieldValue f;
  while (!in.done()) {
    if (!NextField(&in, &f)) {
      return false;
    }
    switch (f.number) {
      case 1:
        if (f.wire_type != kVarint) {
          return false;
        }
        ts->seconds_ = static_cast<int64_t>(f.varint);
        break;
      case 2:
        if (!Int32(f, &ts->nanos_)) {
          return false;
        }
        break;
      default:
        return false;
    }
  }
  return true;
}

bool ReadPatient(std::string_view bytes, PatientView* p) {
  WireReader in(bytes);
  FieldValue f;
  while (!in.done()) {
    if (!NextField(&in, &f)) {
      return false;
    }
    bool ok = false;
    switch (f.number) {
      case 1:
        ok = String(f, &p->nhs_number_);
        break;
      case 2:
        ok = String(f, &p->local_mrn_);
        break;
      case 3:
        ok = String(f, &p->mrn_assigning_ods_);
        break;
      case 4:
        ok = String(f, &p->birth_date_);
        break;
      case 5:
        ok = Int32(f, &p->sex_);
        break;
      case 6:
        ok = String(f, &p->postcode_);
        break;
      case 7:
        ok = String(f, &p->registered_gp_ods_);
        break;
      case 8:
        ok = String(f, &p->given_name_);
        break;
      case 9:
        ok = String(f, &p->family_name_);
        break;
      case 10:
        ok = String(f, &p->address_);
        break;
      case 11:
        ok = String(f, &p->pseudonym_);
        break;
      case 12:
        ok = String(f, &p->nhs_number_status_);
        break;
      default:
        break;
    }
    if (!ok) {
      return false;
    }
  }
  return true;
}

bool ReadFlag(std::string_view bytes, DataQualityFlagView* flag) {
  WireReader in(bytes);
  FieldValue f;
  while (!in.done()) {
    if (!NextField(&in, &f)) {
      return false;
    }
    bool ok = false;
    switch (f.number) {
      case 1:
        ok = String(f, &flag->field_);
        break;
      case 2:
        ok = String(f, &flag->problem_);
        break;
      case 3:
        ok = String(f, &flag->raw_value_);
        break;
      default:
        break;
    }
    if (!ok) {
      return false;
    }
  }
  return true;
}

bool ReadCode(std::string_view bytes, CodedValueView* code) {
  WireReader in(bytes);
  FieldValue f;
  while (!in.done()) {
    if (!NextField(&in, &f)) {
      return false;
    }
    bool ok = false;
    switch (f.number) {
      case 1:
        ok = String(f, &code->system_);
        break;
      case 2:
        ok = String(f, &code->code_);
        break;
      case 3:
        ok = String(f, &code->display_);
        break;
      default:
        break;
    }
    if (!ok) {
      return false;
    }
  }
  return true;
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
  WireReader in(bytes);
  FieldValue f;
  while (!in.done()) {
    if (!NextField(&in, &f)) {
      return false;
    }
    bool ok = false;
    switch (f.number) {
      case 1:
        ok = String(f, &env->event_id_);
        break;
      case 2:
        ok = String(f, &env->publisher_ods_);
        break;
      case 3:
        ok = String(f, &env->site_ods_);
        break;
      case 4:
        ok = String(f, &env->source_system_);
        break;
      case 5:
        ok = Int32(f, &env->lifecycle_);
        break;
      case 6:
        ok = String(f, &env->supersedes_event_id_);
        break;
      case 7:
        ok = Message(f, &env->occurred_at_, &env->has_occurred_at_, ReadTimestamp);
        break;
      case 8:
        ok = Message(f, &env->recorded_at_, &env->has_recorded_at_, ReadTimestamp);
        break;
      case 9:
        ok = Message(f, &env->patient_, &env->has_patient_, ReadPatient);
        break;
      case 10:
        ok = Append(f, &env->data_quality_, ReadFlag);
        break;
      // 20 hub_seq, 21 received_at: the hub's own fields. The caller clears them and re-encodes
      // (ingest_pipeline.cc), which needs the parsed message.
      default:
        break;
    }
    if (!ok) {
      return false;
    }
  }
  return true;
}

bool ReadActivity(std::string_view bytes, ActivityView* a) {
  WireReader in(bytes);
  FieldValue f;
  while (!in.done()) {
    if (!NextField(&in, &f)) {
      return false;
    }
    bool ok = false;
    switch (f.number) {
      case 1:
        ok = Int32(f, &a->kind_);
        break;
      case 2:
        ok = String(f, &a->encounter_id_);
        break;
      case 3:
        ok = String(f, &a->encounter_class_);
        break;
      case 4:
        ok = String(f, &a->status_);
        break;
      case 5:
        ok = Message(f, &a->period_start_, &a->has_period_start_, ReadTimestamp);
        break;
      case 6:
        ok = Message(f, &a->period_end_, &a->has_period_end_, ReadTimestamp);
        break;
      case 7:
        ok = String(f, &a->treatment_function_);
        break;
      case 8:
        ok = String(f, &a->location_);
        break;
      case 9:
        ok = String(f, &a->admission_source_);
        break;
      case 10:
        ok = String(f, &a->admission_method_);
        break;
      case 11:
        ok = String(f, &a->discharge_destination_);
        break;
      case 12:
        ok = Append(f, &a->diagnoses_, ReadCode);
        break;
      case 13:
        ok = Append(f, &a->procedures_, ReadCode);
        break;
      case 14:
        ok = String(f, &a->referral_id_);
        break;
      case 15:
        ok = String(f, &a->note_);
        break;
      case 16:
        ok = Message(f, &a->merged_patient_, &a->has_merged_patient_, ReadPatient);
        break;
      case 17:
        ok = String(f, &a->discharge_method_);
        break;
      case 18:
        ok = String(f, &a->referral_source_);
        break;
      default:
        break;
    }
    if (!ok) {
      return false;
    }
  }
  return true;
}

bool ReadReferral(std::string_view bytes, ReferralView* r) {
  WireReader in(bytes);
  FieldValue f;
  while (!in.done()) {
    if (!NextField(&in, &f)) {
      return false;
    }
    bool ok = false;
    switch (f.number) {
      case 1:
        ok = String(f, &r->referral_id_);
        break;
      case 2:
        ok = String(f, &r->ubrn_);
        break;
      case 3:
        ok = Int32(f, &r->status_);
        break;
      case 4:
        ok = Int32(f, &r->priority_);
        break;
      case 5:
        ok = String(f, &r->requester_ods_);
        break;
      case 6:
        ok = String(f, &r->performer_ods_);
        break;
      case 7:
        ok = String(f, &r->specialty_);
        break;
      case 8:
        ok = Append(f, &r->reasons_, ReadCode);
        break;
      case 9:
        ok = Message(f, &r->authored_at_, &r->has_authored_at_, ReadTimestamp);
        break;
      case 10:
        ok = Message(f, &r->appointment_at_, &r->has_appointment_at_, ReadTimestamp);
        break;
      case 11:
        ok = String(f, &r->note_);
        break;
      case 12:
        ok = String(f, &r->source_of_referral_);
        break;
      default:
        break;
    }
    if (!ok) {
      return false;
    }
  }
  return true;
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
  WireReader in(bytes);
  FieldValue f;
  while (!in.done()) {
    if (!NextField(&in, &f)) {
      return false;
    }
    bool ok = false;
    switch (f.number) {
      case 1:
        ok = Message(f, &view->envelope_, &view->has_envelope_, ReadEnvelope);
        break;
      // The body is a oneof: a second body (of either kind) would replace or merge the first.
      case 2:
      case 3:
        if (f.wire_type != kLengthDelimited || view->body_case_ != v1::Event::BODY_NOT_SET) {
          break;
        }
        if (f.number == 2) {
          view->body_case_ = v1::Event::kActivity;
          ok = ReadActivity(f.bytes, &view->activity_);
        } else {
          view->body_case_ = v1::Event::kReferral;
          ok = ReadReferral(f.bytes, &view->referral_);
        }
        break;
      default:
        break;
    }
    if (!ok) {
      return false;
    }
  }
  return true;
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
