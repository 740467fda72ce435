#pragma once
// A read-only view of one carehub.v1.Event: the same fields under the same accessor names as the
// generated message, but every string is a std::string_view into bytes someone else owns. The
// validator, the data-quality measures and the event type name are written once, as templates
// over "an event" (validation.h, data_quality.h, event_types.h), and run on either.
//
// Why: the hub's ingest thread spent ~40% of its instructions parsing frames into message trees
// (an arena slot, a cleanup and often a heap buffer per string, UTF-8 checked at parse) only to
// read each field once. ReadEventView walks the encoded event in place instead.
//
// Two ways to fill a view:
//   ReadEventView  from an encoded event; the view points into those bytes.
//   MakeEventView  from a parsed message; the view points into the message.
// Either way the view is valid only while what it points into is alive and unchanged.
//
// Thread safety: a view is a value; distinct views may be used from distinct threads.

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "carehub/v1/event.pb.h"

namespace carehub {

// Each field: a member and the accessor the generated message has for it.
#define CAREHUB_VIEW_FIELD(type, name) \
  type name##_{};                      \
  type name() const { return name##_; }
// A singular message field: present or not, as has_<name>() says.
#define CAREHUB_VIEW_MESSAGE(type, name)       \
  type name##_{};                              \
  bool has_##name##_ = false;                  \
  const type& name() const { return name##_; } \
  bool has_##name() const { return has_##name##_; }
// A repeated message field.
#define CAREHUB_VIEW_REPEATED(type, name)                \
  std::vector<type> name##_;                             \
  std::span<const type> name() const { return name##_; } \
  int name##_size() const { return static_cast<int>(name##_.size()); }

struct TimestampView {
  CAREHUB_VIEW_FIELD(int64_t, seconds)
  CAREHUB_VIEW_FIELD(int32_t, nanos)

  friend bool operator==(const TimestampView&, const TimestampView&) = default;
};

struct PatientView {
  CAREHUB_VIEW_FIELD(std::string_view, nhs_number)
  CAREHUB_VIEW_FIELD(std::string_view, local_mrn)
  CAREHUB_VIEW_FIELD(std::string_view, mrn_assigning_ods)
  CAREHUB_VIEW_FIELD(std::string_view, birth_date)
  CAREHUB_VIEW_FIELD(int, sex)
  CAREHUB_VIEW_FIELD(std::string_view, postcode)
  CAREHUB_VIEW_FIELD(std::string_view, registered_gp_ods)
  CAREHUB_VIEW_FIELD(std::string_view, given_name)
  CAREHUB_VIEW_FIELD(std::string_view, family_name)
  CAREHUB_VIEW_FIELD(std::string_view, address)
  CAREHUB_VIEW_FIELD(std::string_view, pseudonym)
  CAREHUB_VIEW_FIELD(std::string_view, nhs_number_status)

  friend bool operator==(const PatientView&, const PatientView&) = default;
};

struct DataQualityFlagView {
  CAREHUB_VIEW_FIELD(std::string_view, field)
  CAREHUB_VIEW_FIELD(std::string_view, problem)
  CAREHUB_VIEW_FIELD(std::string_view, raw_value)

  friend bool operator==(const DataQualityFlagView&, const DataQualityFlagView&) = default;
};

struct CodedValueView {
  CAREHUB_VIEW_FIELD(std::string_view, system)
  CAREHUB_VIEW_FIELD(std::string_view, code)
  CAREHUB_VIEW_FIELD(std::string_view, display)

  friend bool operator==(const CodedValueView&, const CodedValueView&) = default;
};

struct EnvelopeView {
  CAREHUB_VIEW_FIELD(std::string_view, event_id)
  CAREHUB_VIEW_FIELD(std::string_view, publisher_ods)
  CAREHUB_VIEW_FIELD(std::string_view, site_ods)
  CAREHUB_VIEW_FIELD(std::string_view, source_system)
  CAREHUB_VIEW_FIELD(int, lifecycle)
  CAREHUB_VIEW_FIELD(std::string_view, supersedes_event_id)
  CAREHUB_VIEW_MESSAGE(TimestampView, occurred_at)
  CAREHUB_VIEW_MESSAGE(TimestampView, recorded_at)
  CAREHUB_VIEW_MESSAGE(PatientView, patient)
  CAREHUB_VIEW_REPEATED(DataQualityFlagView, data_quality)
  CAREHUB_VIEW_FIELD(uint64_t, hub_seq)
  CAREHUB_VIEW_MESSAGE(TimestampView, received_at)

  friend bool operator==(const EnvelopeView&, const EnvelopeView&) = default;
};

struct ActivityView {
  CAREHUB_VIEW_FIELD(int, kind)
  CAREHUB_VIEW_FIELD(std::string_view, encounter_id)
  CAREHUB_VIEW_FIELD(std::string_view, encounter_class)
  CAREHUB_VIEW_FIELD(std::string_view, status)
  CAREHUB_VIEW_MESSAGE(TimestampView, period_start)
  CAREHUB_VIEW_MESSAGE(TimestampView, period_end)
  CAREHUB_VIEW_FIELD(std::string_view, treatment_function)
  CAREHUB_VIEW_FIELD(std::string_view, location)
  CAREHUB_VIEW_FIELD(std::string_view, admission_source)
  CAREHUB_VIEW_FIELD(std::string_view, admission_method)
  CAREHUB_VIEW_FIELD(std::string_view, discharge_destination)
  CAREHUB_VIEW_REPEATED(CodedValueView, diagnoses)
  CAREHUB_VIEW_REPEATED(CodedValueView, procedures)
  CAREHUB_VIEW_FIELD(std::string_view, referral_id)
  CAREHUB_VIEW_FIELD(std::string_view, note)
  CAREHUB_VIEW_MESSAGE(PatientView, merged_patient)
  CAREHUB_VIEW_FIELD(std::string_view, discharge_method)
  CAREHUB_VIEW_FIELD(std::string_view, referral_source)

  friend bool operator==(const ActivityView&, const ActivityView&) = default;
};

struct ReferralView {
  CAREHUB_VIEW_FIELD(std::string_view, referral_id)
  CAREHUB_VIEW_FIELD(std::string_view, ubrn)
  CAREHUB_VIEW_FIELD(int, status)
  CAREHUB_VIEW_FIELD(int, priority)
  CAREHUB_VIEW_FIELD(std::string_view, requester_ods)
  CAREHUB_VIEW_FIELD(std::string_view, performer_ods)
  CAREHUB_VIEW_FIELD(std::string_view, specialty)
  CAREHUB_VIEW_REPEATED(CodedValueView, reasons)
  CAREHUB_VIEW_MESSAGE(TimestampView, authored_at)
  CAREHUB_VIEW_MESSAGE(TimestampView, appointment_at)
  CAREHUB_VIEW_FIELD(std::string_view, note)
  CAREHUB_VIEW_FIELD(std::string_view, source_of_referral)

  friend bool operator==(const ReferralView&, const ReferralView&) = default;
};

struct EventView {
  CAREHUB_VIEW_MESSAGE(EnvelopeView, envelope)
  CAREHUB_VIEW_FIELD(v1::Event::BodyCase, body_case)
  ActivityView activity_;
  ReferralView referral_;
  bool has_activity() const { return body_case_ == v1::Event::kActivity; }
  bool has_referral() const { return body_case_ == v1::Event::kReferral; }
  const ActivityView& activity() const { return activity_; }
  const ReferralView& referral() const { return referral_; }
  // True when ReadEventView filled this view: every string was checked to be UTF-8 then, so the
  // validator need not check again.
  bool strings_checked_utf8() const { return strings_checked_utf8_; }
  bool strings_checked_utf8_ = false;

  // Back to empty, keeping the repeated fields' capacity: a view is meant to be reused.
  void Clear();

  // The same event: every field equal (how it was read aside).
  friend bool operator==(const EventView& a, const EventView& b) {
    return a.has_envelope_ == b.has_envelope_ && a.envelope_ == b.envelope_ &&
           a.body_case_ == b.body_case_ && a.activity_ == b.activity_ && a.referral_ == b.referral_;
  }
};

#undef CAREHUB_VIEW_FIELD
#undef CAREHUB_VIEW_MESSAGE
#undef CAREHUB_VIEW_REPEATED

// Fills `view` from `bytes`, an encoded carehub.v1.Event, and returns true when the encoding is
// plain: every field one this schema defines, with its declared wire type; no singular message
// field given twice (protobuf would merge the two); at most one body; every string well-formed
// UTF-8; neither of the hub's own fields (hub_seq, received_at) set. A plain encoding parses with
// protobuf to a message whose MakeEventView equals `view` (tests/fuzz/fuzz_ingest_frame.cc and
// tests/unit/core/event_view_test.cc check this). Anything else returns false, `view` unspecified:
// the caller then parses with protobuf, which decides what the bytes mean (an unknown field, a
// merge, a decode error).
bool ReadEventView(std::string_view bytes, EventView* view);

// Fills `view` from a parsed event; it points into `event`.
void MakeEventView(const v1::Event& event, EventView* view);

}  // namespace carehub
