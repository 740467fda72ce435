#include "carehub/core/validation.h"

#include <cstdint>
#include <cstring>
#include <string>

#include "carehub/core/utf8.h"

namespace carehub {
namespace {

// This runs once per ingested event in the hub's hot path, so the success path builds no strings:
// every check is a comparison on the message's own storage, and a Status message is only composed
// once a check has failed. Messages name fields, never values, so a rejected event's reason can be
// logged and returned to the publisher without carrying a patient identifier.

constexpr size_t kMaxEventIdBytes = 128;
constexpr size_t kUbrnDigits = 12;
// google.protobuf.Timestamp's documented range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
constexpr int64_t kMinTimestampSeconds = -62135596800;
constexpr int64_t kMaxTimestampSeconds = 253402300799;
constexpr int32_t kMaxNanos = 999'999'999;
constexpr int64_t kSecondsPerDay = 86'400;
constexpr int64_t kNanosPerSecond = 1'000'000'000;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }
bool IsLetter(char c) { return IsUpper(c) || (c >= 'a' && c <= 'z'); }

bool AllDigits(std::string_view s) {
  for (char c : s) {
    if (!IsDigit(c)) {
      return false;
    }
  }
  return true;
}

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) {
    --q;
  }
  return q;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = FloorDiv(y, 400);
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

bool IsLeapYear(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int64_t y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeapYear(y) ? 29 : kDays[m - 1];
}

// Parses "YYYY-MM-DD" into days since the epoch; false when the shape or the date is invalid.
bool ParseIsoDate(std::string_view s, int64_t* year, int64_t* days) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-' || !AllDigits(s.substr(0, 4)) ||
      !AllDigits(s.substr(5, 2)) || !AllDigits(s.substr(8, 2))) {
    return false;
  }
  const int64_t y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
  const int m = (s[5] - '0') * 10 + (s[6] - '0');
  const int d = (s[8] - '0') * 10 + (s[9] - '0');
  if (m < 1 || m > 12 || d < 1 || d > DaysInMonth(y, m)) {
    return false;
  }
  *year = y;
  *days = DaysFromCivil(y, m, d);
  return true;
}

// UK postcode shape: outward code (A9, A99, AA9, AA99, A9A, AA9A), an optional single space, and
// the inward code (9AA). Case-insensitive and tolerant of the missing space because source systems
// differ and rejecting an otherwise good event over formatting would lose care data.
bool IsPostcodeShape(std::string_view pc) {
  if (pc.size() < 5 || pc.size() > 8) {
    return false;
  }
  const std::string_view inward = pc.substr(pc.size() - 3);
  std::string_view outward = pc.substr(0, pc.size() - 3);
  if (outward.back() == ' ') {
    outward.remove_suffix(1);
  }
  if (!IsDigit(inward[0]) || !IsLetter(inward[1]) || !IsLetter(inward[2])) {
    return false;
  }
  const size_t n = outward.size();
  if (n < 2 || n > 4 || !IsLetter(outward[0])) {
    return false;
  }
  size_t i = 1;
  if (IsLetter(outward[i])) {
    ++i;
  }
  if (i >= n || !IsDigit(outward[i])) {
    return false;
  }
  ++i;
  if (i < n && (IsDigit(outward[i]) || IsLetter(outward[i]))) {
    ++i;
  }
  return i == n;
}

bool IsPrintableAscii(std::string_view s) {
  for (char c : s) {
    if (c < 0x20 || c > 0x7e) {
      return false;
    }
  }
  return true;
}

// A field's name as "<prefix>.<name>" (or just the name), joined only when a message needs it so
// that the success path never allocates.
struct Field {
  Field(const char* n) : name(n) {}  // NOLINT: implicit so call sites read naturally
  Field(std::string_view p, std::string_view n) : prefix(p), name(n) {}
  std::string Str() const {
    return prefix.empty() ? std::string(name) : std::string(prefix) + "." + std::string(name);
  }
  std::string_view prefix;
  std::string_view name;
};

Status Fail(std::string_view code, std::string message) {
  return Status::Error(std::string(code), std::move(message));
}

// Everything derived from `limits` and `now` once per call rather than once per field.
class Validator {
 public:
  // `check_utf8` false: the caller knows every string is UTF-8 (a view ReadEventView filled).
  Validator(const ValidationLimits& limits, Clock::TimePoint now, bool check_utf8 = true)
      : limits_(limits), check_utf8_(check_utf8) {
    min_seconds_ = DaysFromCivil(limits.min_year, 1, 1) * kSecondsPerDay;
    const int64_t now_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
    const int64_t limit_ns =
        now_ns +
        std::chrono::duration_cast<std::chrono::nanoseconds>(limits.max_future_skew).count();
    future_limit_seconds_ = FloorDiv(limit_ns, kNanosPerSecond);
    future_limit_nanos_ = static_cast<int32_t>(limit_ns - future_limit_seconds_ * kNanosPerSecond);
    // A birth date is a UK local date, which runs at most one hour ahead of UTC: allow "tomorrow"
    // in UTC terms so a baby born just after local midnight is not rejected.
    latest_birth_day_ = FloorDiv(FloorDiv(now_ns, kNanosPerSecond), kSecondsPerDay) + 1;
  }

  // Each check is a template over the event's representation: a parsed v1::Event or an
  // EventView (event_view.h) of the same fields, so both are validated by one set of rules.
  template <typename E>
  Status Event(const E& event, size_t serialized_bytes) const;

 private:
  template <typename Env>
  Status Envelope(const Env& env) const;
  template <typename P>
  Status Patient(const P& patient, std::string_view prefix, bool nhs_required) const;
  template <typename A>
  Status Activity(const A& activity) const;
  template <typename R>
  Status Referral(const R& referral) const;
  template <typename C>
  Status Codes(const C& codes, const Field& field) const;
  template <typename T>
  Status Timestamp(const T& ts, const Field& field, bool bounded_by_now) const;

  Status Length(std::string_view s, const Field& field) const {
    if (s.size() > limits_.max_string_bytes) {
      return Fail(kReasonInvalidField, field.Str() + " exceeds the string size limit");
    }
    if (check_utf8_ && !IsValidUtf8(s)) {
      return Fail(kReasonInvalidField, field.Str() + " is not valid UTF-8");
    }
    return Status::Ok();
  }
  // Empty means "not given" and is allowed.
  static Status OptionalOds(std::string_view ods, const Field& field) {
    if (!ods.empty() && !IsValidOdsCode(ods)) {
      return Fail(kReasonInvalidOdsCode, field.Str() + " is not a valid ODS code");
    }
    return Status::Ok();
  }
  static Status EventId(std::string_view id, const Field& field) {
    if (id.size() > kMaxEventIdBytes) {
      return Fail(kReasonInvalidField, field.Str() + " is longer than 128 bytes");
    }
    if (!IsPrintableAscii(id)) {
      return Fail(kReasonInvalidField, field.Str() + " has non-printable characters");
    }
    return Status::Ok();
  }

  const ValidationLimits& limits_;
  const bool check_utf8_;
  int64_t min_seconds_ = 0;
  int64_t future_limit_seconds_ = 0;
  int32_t future_limit_nanos_ = 0;
  int64_t latest_birth_day_ = 0;
};

template <typename E>
Status Validator::Event(const E& event, size_t serialized_bytes) const {
  // Size first: an oversized event is refused whatever else is wrong with it.
  if (serialized_bytes > limits_.max_event_bytes) {
    return Fail(kReasonEventTooLarge, "event is " + std::to_string(serialized_bytes) +
                                          " bytes, over the limit of " +
                                          std::to_string(limits_.max_event_bytes));
  }
  if (!event.has_envelope()) {
    return Fail(kReasonMissingField, "envelope is missing");
  }
  CAREHUB_RETURN_IF_ERROR(Envelope(event.envelope()));
  switch (event.body_case()) {
    case v1::Event::kActivity:
      return Activity(event.activity());
    case v1::Event::kReferral:
      return Referral(event.referral());
    case v1::Event::BODY_NOT_SET:
      break;
  }
  return Fail(kReasonMissingField, "event has no body (activity or referral)");
}

template <typename Env>
Status Validator::Envelope(const Env& env) const {
  if (env.event_id().empty()) {
    return Fail(kReasonMissingField, "envelope.event_id is empty");
  }
  CAREHUB_RETURN_IF_ERROR(EventId(env.event_id(), "envelope.event_id"));
  if (env.publisher_ods().empty()) {
    return Fail(kReasonMissingField, "envelope.publisher_ods is empty");
  }
  CAREHUB_RETURN_IF_ERROR(OptionalOds(env.publisher_ods(), "envelope.publisher_ods"));
  CAREHUB_RETURN_IF_ERROR(OptionalOds(env.site_ods(), "envelope.site_ods"));
  CAREHUB_RETURN_IF_ERROR(Length(env.source_system(), "envelope.source_system"));

  switch (env.lifecycle()) {
    case v1::LIFECYCLE_UNSPECIFIED:
      // invalid_lifecycle, as docs/protocol.md lists for this field: a client switching on the
      // reason code sees one code for every lifecycle problem.
      return Fail(kReasonInvalidLifecycle, "envelope.lifecycle is not set (LIFECYCLE_UNSPECIFIED)");
    case v1::LIFECYCLE_NEW:
      if (!env.supersedes_event_id().empty()) {
        return Fail(kReasonInvalidLifecycle,
                    "a NEW event must not set envelope.supersedes_event_id");
      }
      break;
    case v1::LIFECYCLE_UPDATE:
    case v1::LIFECYCLE_CANCEL:
      if (env.supersedes_event_id().empty()) {
        return Fail(kReasonInvalidLifecycle,
                    "an UPDATE or CANCEL event needs envelope.supersedes_event_id");
      }
      if (env.supersedes_event_id() == env.event_id()) {
        return Fail(kReasonInvalidLifecycle, "an event cannot supersede itself");
      }
      CAREHUB_RETURN_IF_ERROR(EventId(env.supersedes_event_id(), "envelope.supersedes_event_id"));
      break;
    default:
      return Fail(kReasonInvalidLifecycle, "envelope.lifecycle has an unknown value");
  }

  if (!env.has_occurred_at()) {
    return Fail(kReasonMissingField, "envelope.occurred_at is not set");
  }
  CAREHUB_RETURN_IF_ERROR(Timestamp(env.occurred_at(), "envelope.occurred_at", true));
  if (env.has_recorded_at()) {
    CAREHUB_RETURN_IF_ERROR(Timestamp(env.recorded_at(), "envelope.recorded_at", true));
  }

  for (const auto& flag : env.data_quality()) {
    if (flag.field().empty() || flag.problem().empty()) {
      return Fail(kReasonMissingField, "envelope.data_quality needs field and problem");
    }
    CAREHUB_RETURN_IF_ERROR(Length(flag.field(), "envelope.data_quality.field"));
    CAREHUB_RETURN_IF_ERROR(Length(flag.problem(), "envelope.data_quality.problem"));
    CAREHUB_RETURN_IF_ERROR(Length(flag.raw_value(), "envelope.data_quality.raw_value"));
  }
  if (env.data_quality_size() > limits_.max_codes) {
    return Fail(kReasonInvalidField, "envelope.data_quality has too many entries");
  }
  if (!env.has_patient()) {
    return Fail(kReasonMissingField, "envelope.patient is missing");
  }
  return Patient(env.patient(), "patient", /*nhs_required=*/true);
}

template <typename P>
Status Validator::Patient(const P& p, std::string_view prefix, bool nhs_required) const {
  auto field = [prefix](std::string_view name) { return Field(prefix, name); };
  if (p.nhs_number().empty()) {
    // Unidentified and not-yet-traced patients are real activity (issue 21): they are accepted
    // with the local record number and the organisation that assigned it, so direct care can
    // still find the record. Without either there is no patient to speak of.
    if (nhs_required && (p.local_mrn().empty() || p.mrn_assigning_ods().empty())) {
      return Fail(kReasonMissingField, field("nhs_number").Str() +
                                           " is empty and there is no local_mrn with its " +
                                           "mrn_assigning_ods");
    }
    if (IsVerifiedNhsNumberStatus(p.nhs_number_status())) {
      return Fail(kReasonInvalidField, field("nhs_number_status").Str() +
                                           " says a number is present but nhs_number is empty");
    }
  } else if (!IsValidNhsNumber(p.nhs_number())) {
    if (p.nhs_number().size() != 10 || !AllDigits(p.nhs_number())) {
      return Fail(kReasonInvalidNhsNumber, field("nhs_number").Str() + " is not 10 digits");
    }
    return Fail(kReasonInvalidNhsNumber, field("nhs_number").Str() + " fails the Modulus 11 check");
  }
  if (!p.nhs_number_status().empty() && !IsNhsNumberStatusCode(p.nhs_number_status())) {
    return Fail(kReasonInvalidField, field("nhs_number_status").Str() + " is not a code 01-08");
  }
  CAREHUB_RETURN_IF_ERROR(Length(p.local_mrn(), field("local_mrn")));
  CAREHUB_RETURN_IF_ERROR(OptionalOds(p.mrn_assigning_ods(), field("mrn_assigning_ods")));
  CAREHUB_RETURN_IF_ERROR(OptionalOds(p.registered_gp_ods(), field("registered_gp_ods")));
  if (!p.birth_date().empty()) {
    int64_t year = 0;
    int64_t days = 0;
    if (!ParseIsoDate(p.birth_date(), &year, &days)) {
      return Fail(kReasonInvalidField, field("birth_date").Str() + " is not a YYYY-MM-DD date");
    }
    if (year < limits_.min_year) {
      return Fail(kReasonInvalidField, field("birth_date").Str() + " is before the minimum year");
    }
    if (days > latest_birth_day_) {
      return Fail(kReasonInvalidField, field("birth_date").Str() + " is in the future");
    }
  }
  if (!v1::Sex_IsValid(p.sex())) {
    return Fail(kReasonInvalidField, field("sex").Str() + " has an unknown value");
  }
  if (!p.postcode().empty() && !IsPostcodeShape(p.postcode())) {
    return Fail(kReasonInvalidField, field("postcode").Str() + " is not a UK postcode");
  }
  CAREHUB_RETURN_IF_ERROR(Length(p.given_name(), field("given_name")));
  CAREHUB_RETURN_IF_ERROR(Length(p.family_name(), field("family_name")));
  CAREHUB_RETURN_IF_ERROR(Length(p.address(), field("address")));
  return Length(p.pseudonym(), field("pseudonym"));
}

template <typename A>
Status Validator::Activity(const A& a) const {
  if (a.kind() == v1::ACTIVITY_KIND_UNSPECIFIED || !v1::ActivityKind_IsValid(a.kind())) {
    return Fail(kReasonInvalidEventType, "activity.kind is not set or unknown");
  }
  if (a.encounter_id().empty()) {
    return Fail(kReasonMissingField, "activity.encounter_id is empty");
  }
  CAREHUB_RETURN_IF_ERROR(Length(a.encounter_id(), "activity.encounter_id"));
  CAREHUB_RETURN_IF_ERROR(Length(a.encounter_class(), "activity.encounter_class"));
  CAREHUB_RETURN_IF_ERROR(Length(a.status(), "activity.status"));
  CAREHUB_RETURN_IF_ERROR(Length(a.treatment_function(), "activity.treatment_function"));
  CAREHUB_RETURN_IF_ERROR(Length(a.location(), "activity.location"));
  CAREHUB_RETURN_IF_ERROR(Length(a.admission_source(), "activity.admission_source"));
  CAREHUB_RETURN_IF_ERROR(Length(a.admission_method(), "activity.admission_method"));
  CAREHUB_RETURN_IF_ERROR(Length(a.discharge_destination(), "activity.discharge_destination"));
  CAREHUB_RETURN_IF_ERROR(Length(a.discharge_method(), "activity.discharge_method"));
  CAREHUB_RETURN_IF_ERROR(Length(a.referral_source(), "activity.referral_source"));
  CAREHUB_RETURN_IF_ERROR(Length(a.referral_id(), "activity.referral_id"));
  CAREHUB_RETURN_IF_ERROR(Length(a.note(), "activity.note"));
  // Planned encounters legitimately have future periods, so only the range is checked here.
  if (a.has_period_start()) {
    CAREHUB_RETURN_IF_ERROR(Timestamp(a.period_start(), "activity.period_start", false));
  }
  if (a.has_period_end()) {
    CAREHUB_RETURN_IF_ERROR(Timestamp(a.period_end(), "activity.period_end", false));
  }
  if (a.has_period_start() && a.has_period_end()) {
    const auto& s = a.period_start();
    const auto& e = a.period_end();
    if (e.seconds() < s.seconds() || (e.seconds() == s.seconds() && e.nanos() < s.nanos())) {
      return Fail(kReasonInvalidTimestamp, "activity.period_end is before activity.period_start");
    }
  }
  CAREHUB_RETURN_IF_ERROR(Codes(a.diagnoses(), "activity.diagnoses"));
  CAREHUB_RETURN_IF_ERROR(Codes(a.procedures(), "activity.procedures"));
  if (a.has_merged_patient()) {
    return Patient(a.merged_patient(), "activity.merged_patient", /*nhs_required=*/false);
  }
  return Status::Ok();
}

template <typename R>
Status Validator::Referral(const R& r) const {
  if (r.referral_id().empty()) {
    return Fail(kReasonMissingField, "referral.referral_id is empty");
  }
  CAREHUB_RETURN_IF_ERROR(Length(r.referral_id(), "referral.referral_id"));
  if (r.status() == v1::REFERRAL_STATUS_UNSPECIFIED || !v1::ReferralStatus_IsValid(r.status())) {
    return Fail(kReasonInvalidEventType, "referral.status is not set or unknown");
  }
  if (!v1::ReferralPriority_IsValid(r.priority())) {
    return Fail(kReasonInvalidField, "referral.priority has an unknown value");
  }
  if (!r.ubrn().empty() && (r.ubrn().size() != kUbrnDigits || !AllDigits(r.ubrn()))) {
    return Fail(kReasonInvalidField, "referral.ubrn is not 12 digits");
  }
  CAREHUB_RETURN_IF_ERROR(OptionalOds(r.requester_ods(), "referral.requester_ods"));
  CAREHUB_RETURN_IF_ERROR(OptionalOds(r.performer_ods(), "referral.performer_ods"));
  CAREHUB_RETURN_IF_ERROR(Length(r.specialty(), "referral.specialty"));
  CAREHUB_RETURN_IF_ERROR(Length(r.note(), "referral.note"));
  CAREHUB_RETURN_IF_ERROR(Length(r.source_of_referral(), "referral.source_of_referral"));
  CAREHUB_RETURN_IF_ERROR(Codes(r.reasons(), "referral.reasons"));
  if (r.has_authored_at()) {
    CAREHUB_RETURN_IF_ERROR(Timestamp(r.authored_at(), "referral.authored_at", false));
  }
  if (r.has_appointment_at()) {
    CAREHUB_RETURN_IF_ERROR(Timestamp(r.appointment_at(), "referral.appointment_at", false));
  }
  return Status::Ok();
}

template <typename C>
Status Validator::Codes(const C& codes, const Field& field) const {
  const int n = static_cast<int>(codes.size());
  if (n > limits_.max_codes) {
    return Fail(kReasonInvalidField,
                field.Str() + " has more than " + std::to_string(limits_.max_codes) + " entries");
  }
  for (int i = 0; i < n; ++i) {
    const auto& c = codes[i];
    if (c.code().empty()) {
      return Fail(kReasonMissingField, field.Str() + "[" + std::to_string(i) + "].code is empty");
    }
    if (c.system().size() > limits_.max_string_bytes ||
        c.code().size() > limits_.max_string_bytes ||
        c.display().size() > limits_.max_string_bytes) {
      return Fail(kReasonInvalidField,
                  field.Str() + "[" + std::to_string(i) + "] exceeds the string size limit");
    }
    if (check_utf8_ &&
        (!IsValidUtf8(c.system()) || !IsValidUtf8(c.code()) || !IsValidUtf8(c.display()))) {
      return Fail(kReasonInvalidField,
                  field.Str() + "[" + std::to_string(i) + "] is not valid UTF-8");
    }
  }
  return Status::Ok();
}

template <typename T>
Status Validator::Timestamp(const T& ts, const Field& field, bool bounded_by_now) const {
  if (ts.seconds() < kMinTimestampSeconds || ts.seconds() > kMaxTimestampSeconds ||
      ts.nanos() < 0 || ts.nanos() > kMaxNanos) {
    return Fail(kReasonInvalidTimestamp, field.Str() + " is out of the timestamp range");
  }
  if (ts.seconds() < min_seconds_) {
    return Fail(kReasonInvalidTimestamp, field.Str() + " is before the minimum year");
  }
  if (bounded_by_now &&
      (ts.seconds() > future_limit_seconds_ ||
       (ts.seconds() == future_limit_seconds_ && ts.nanos() > future_limit_nanos_))) {
    return Fail(kReasonFutureTimestamp,
                field.Str() + " is further in the future than the allowed clock skew");
  }
  return Status::Ok();
}

#undef CAREHUB_RETURN_IF_ERROR

}  // namespace

int NhsNumberCheckDigit(std::string_view first_nine_digits) {
  if (first_nine_digits.size() != 9) {
    return -1;
  }
  int sum = 0;
  for (int i = 0; i < 9; ++i) {
    const char c = first_nine_digits[i];
    if (!IsDigit(c)) {
      return -1;
    }
    sum += (c - '0') * (10 - i);
  }
  const int check = 11 - sum % 11;
  if (check == 11) {
    return 0;
  }
  return check == 10 ? -1 : check;
}

bool IsValidNhsNumber(std::string_view nhs_number) {
  if (nhs_number.size() != 10 || !IsDigit(nhs_number[9])) {
    return false;
  }
  const int check = NhsNumberCheckDigit(nhs_number.substr(0, 9));
  return check >= 0 && check == nhs_number[9] - '0';
}

bool IsValidOdsCode(std::string_view ods) {
  if (ods.size() < 3 || ods.size() > 9) {
    return false;
  }
  for (char c : ods) {
    if (!IsUpper(c) && !IsDigit(c)) {
      return false;
    }
  }
  return true;
}

bool IsValidUkPostcode(std::string_view postcode) { return IsPostcodeShape(postcode); }

bool IsNhsNumberStatusCode(std::string_view code) {
  return code.size() == 2 && code[0] == '0' && code[1] >= '1' && code[1] <= '8';
}

bool IsVerifiedNhsNumberStatus(std::string_view code) { return code == "01"; }

Status ValidateEvent(const v1::Event& event, size_t serialized_bytes,
                     const ValidationLimits& limits, Clock::TimePoint now) {
  return Validator(limits, now).Event(event, serialized_bytes);
}

Status ValidateEvent(const EventView& event, size_t serialized_bytes,
                     const ValidationLimits& limits, Clock::TimePoint now) {
  return Validator(limits, now, !event.strings_checked_utf8()).Event(event, serialized_bytes);
}

}  // namespace carehub
