#include "carehub/core/validation.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

namespace carehub {
namespace {

using std::chrono::seconds;

// 2025-03-01T12:00:00Z.
constexpr int64_t kNowSeconds = 1'740'830'400;
const Clock::TimePoint kNow{seconds(kNowSeconds)};

constexpr char kNhsNumber[] = "9434765919";
constexpr char kPostcode[] = "LS1 4AP";
constexpr char kGivenName[] = "Alice";
constexpr char kFamilyName[] = "Brontesmith";

TEST(NhsNumberTest, KnownValidNumbers) {
  EXPECT_TRUE(IsValidNhsNumber("9434765919"));
  EXPECT_TRUE(IsValidNhsNumber("4010232137"));
  EXPECT_TRUE(IsValidNhsNumber("9990000026"));
  // Remainder 0 gives 11, which becomes check digit 0.
  EXPECT_EQ(NhsNumberCheckDigit("000000000"), 0);
  EXPECT_TRUE(IsValidNhsNumber("0000000000"));
}

TEST(NhsNumberTest, CheckDigitMatchesKnownNumbers) {
  EXPECT_EQ(NhsNumberCheckDigit("943476591"), 9);
  EXPECT_EQ(NhsNumberCheckDigit("401023213"), 7);
}

TEST(NhsNumberTest, WrongCheckDigitIsInvalid) {
  for (char last = '0'; last <= '9'; ++last) {
    std::string number = "943476591";
    number.push_back(last);
    EXPECT_EQ(IsValidNhsNumber(number), last == '9') << number;
  }
}

TEST(NhsNumberTest, RemainderTenHasNoCheckDigit) {
  // 1*10 + 2*9 + ... + 9*2 = 210 = 11*19 + 1: 11 - 1 = 10, so no ten-digit number is valid.
  EXPECT_EQ(NhsNumberCheckDigit("123456789"), -1);
  for (char last = '0'; last <= '9'; ++last) {
    EXPECT_FALSE(IsValidNhsNumber(std::string("123456789") + last));
  }
}

TEST(NhsNumberTest, WrongLengthIsInvalid) {
  EXPECT_FALSE(IsValidNhsNumber(""));
  EXPECT_FALSE(IsValidNhsNumber("943476591"));
  EXPECT_FALSE(IsValidNhsNumber("94347659190"));
  EXPECT_EQ(NhsNumberCheckDigit("94347659"), -1);
  EXPECT_EQ(NhsNumberCheckDigit("9434765919"), -1);
}

TEST(NhsNumberTest, NonDigitsAreInvalid) {
  EXPECT_FALSE(IsValidNhsNumber("943 476 5919"));
  EXPECT_FALSE(IsValidNhsNumber("943476591X"));
  EXPECT_FALSE(IsValidNhsNumber("94347659 9"));
  EXPECT_FALSE(IsValidNhsNumber("-434765919"));
  EXPECT_EQ(NhsNumberCheckDigit("94347659A"), -1);
}

TEST(OdsCodeTest, AcceptsTrustsSitesPracticesAndAuthorities) {
  EXPECT_TRUE(IsValidOdsCode("RXK"));
  EXPECT_TRUE(IsValidOdsCode("RXK01"));
  EXPECT_TRUE(IsValidOdsCode("M85001"));
  EXPECT_TRUE(IsValidOdsCode("E08000035"));
  EXPECT_TRUE(IsValidOdsCode("8HT"));
}

TEST(OdsCodeTest, RejectsBadShapes) {
  EXPECT_FALSE(IsValidOdsCode(""));
  EXPECT_FALSE(IsValidOdsCode("RX"));
  EXPECT_FALSE(IsValidOdsCode("rxk"));
  EXPECT_FALSE(IsValidOdsCode("RXK-01"));
  EXPECT_FALSE(IsValidOdsCode("RX K"));
  EXPECT_FALSE(IsValidOdsCode("E080000351"));
}

TEST(PostcodeTest, AcceptsUkShapes) {
  for (const char* pc : {"LS1 4AP", "LS14AP", "ls1 4ap", "BD18 3LS", "W1A 1AA", "EC1A 1BB",
                         "M1 1AE", "B33 8TH", "CR2 6XH", "DN55 1PT", "HD9 1DX"}) {
    EXPECT_TRUE(IsValidUkPostcode(pc)) << pc;
  }
}

TEST(PostcodeTest, RejectsOtherShapes) {
  for (const char* pc : {"", "LS1", "LS1  4AP", " LS1 4AP", "1LS 4AP", "LS1 4A", "LS1 AAP",
                         "LSA1 4AP", "LS123 4AP", "LS1-4AP", "12345"}) {
    EXPECT_FALSE(IsValidUkPostcode(pc)) << pc;
  }
}

v1::Event BaseEnvelope() {
  v1::Event event;
  v1::Envelope* env = event.mutable_envelope();
  env->set_event_id("ADT-000123");
  env->set_publisher_ods("RR8");
  env->set_site_ods("RR801");
  env->set_source_system("PAS");
  env->set_lifecycle(v1::LIFECYCLE_NEW);
  env->mutable_occurred_at()->set_seconds(kNowSeconds - 3600);
  env->mutable_recorded_at()->set_seconds(kNowSeconds - 3000);
  v1::Patient* p = env->mutable_patient();
  p->set_nhs_number(kNhsNumber);
  p->set_local_mrn("K1234567");
  p->set_mrn_assigning_ods("RR8");
  p->set_birth_date("1958-07-14");
  p->set_sex(v1::SEX_FEMALE);
  p->set_postcode(kPostcode);
  p->set_registered_gp_ods("B86003");
  p->set_given_name(kGivenName);
  p->set_family_name(kFamilyName);
  return event;
}

v1::Event ValidActivity() {
  v1::Event event = BaseEnvelope();
  v1::ActivityEvent* a = event.mutable_activity();
  a->set_kind(v1::ACTIVITY_KIND_EMERGENCY_ADMISSION);
  a->set_encounter_id("RR8-E00001234");
  a->set_encounter_class("IMP");
  a->set_status("in-progress");
  a->mutable_period_start()->set_seconds(kNowSeconds - 3600);
  a->set_treatment_function("300");
  v1::CodedValue* dx = a->add_diagnoses();
  dx->set_system("ICD-10");
  dx->set_code("J18.9");
  dx->set_display("Pneumonia");
  return event;
}

v1::Event ValidReferral() {
  v1::Event event = BaseEnvelope();
  v1::ReferralEvent* r = event.mutable_referral();
  r->set_referral_id("000123456789");
  r->set_ubrn("000123456789");
  r->set_status(v1::REFERRAL_STATUS_ACCEPTED);
  r->set_priority(v1::REFERRAL_PRIORITY_TWO_WEEK_WAIT);
  r->set_requester_ods("B86003");
  r->set_performer_ods("RR8");
  r->set_specialty("320");
  r->mutable_authored_at()->set_seconds(kNowSeconds - 86400);
  return event;
}

Status Validate(const v1::Event& event, const ValidationLimits& limits = ValidationLimits()) {
  return ValidateEvent(event, event.ByteSizeLong(), limits, kNow);
}

TEST(ValidateEventTest, ValidEventsPass) {
  EXPECT_TRUE(Validate(ValidActivity()).ok()) << Validate(ValidActivity()).ToString();
  EXPECT_TRUE(Validate(ValidReferral()).ok()) << Validate(ValidReferral()).ToString();
}

struct Case {
  const char* name;
  bool referral;  // which base event to start from
  std::function<void(v1::Event*)> mutate;
  std::string_view reason;
};

std::vector<Case> Cases() {
  auto env = [](v1::Event* e) { return e->mutable_envelope(); };
  auto patient = [](v1::Event* e) { return e->mutable_envelope()->mutable_patient(); };
  return {
      {"no_envelope", false, [](v1::Event* e) { e->clear_envelope(); }, kReasonMissingField},
      {"empty_event_id", false, [&](v1::Event* e) { env(e)->clear_event_id(); },
       kReasonMissingField},
      {"long_event_id", false, [&](v1::Event* e) { env(e)->set_event_id(std::string(129, 'a')); },
       kReasonInvalidField},
      {"control_char_event_id", false, [&](v1::Event* e) { env(e)->set_event_id("ADT\n1"); },
       kReasonInvalidField},
      {"empty_publisher", false, [&](v1::Event* e) { env(e)->clear_publisher_ods(); },
       kReasonMissingField},
      {"bad_publisher", false, [&](v1::Event* e) { env(e)->set_publisher_ods("rr8"); },
       kReasonInvalidOdsCode},
      {"bad_site", false, [&](v1::Event* e) { env(e)->set_site_ods("R"); }, kReasonInvalidOdsCode},
      {"long_source_system", false,
       [&](v1::Event* e) { env(e)->set_source_system(std::string(4097, 's')); },
       kReasonInvalidField},
      {"lifecycle_unset", false,
       [&](v1::Event* e) { env(e)->set_lifecycle(v1::LIFECYCLE_UNSPECIFIED); },
       kReasonInvalidLifecycle},
      {"lifecycle_unknown", false,
       [&](v1::Event* e) { env(e)->set_lifecycle(static_cast<v1::Lifecycle>(7)); },
       kReasonInvalidLifecycle},
      {"new_with_supersedes", false,
       [&](v1::Event* e) { env(e)->set_supersedes_event_id("ADT-000122"); },
       kReasonInvalidLifecycle},
      {"update_without_supersedes", false,
       [&](v1::Event* e) { env(e)->set_lifecycle(v1::LIFECYCLE_UPDATE); }, kReasonInvalidLifecycle},
      {"cancel_without_supersedes", false,
       [&](v1::Event* e) { env(e)->set_lifecycle(v1::LIFECYCLE_CANCEL); }, kReasonInvalidLifecycle},
      {"update_supersedes_itself", false,
       [&](v1::Event* e) {
         env(e)->set_lifecycle(v1::LIFECYCLE_UPDATE);
         env(e)->set_supersedes_event_id(env(e)->event_id());
       },
       kReasonInvalidLifecycle},
      {"occurred_at_unset", false, [&](v1::Event* e) { env(e)->clear_occurred_at(); },
       kReasonMissingField},
      {"occurred_at_negative_nanos", false,
       [&](v1::Event* e) { env(e)->mutable_occurred_at()->set_nanos(-1); },
       kReasonInvalidTimestamp},
      {"occurred_at_beyond_year_9999", false,
       [&](v1::Event* e) { env(e)->mutable_occurred_at()->set_seconds(253402300800); },
       kReasonInvalidTimestamp},
      {"occurred_at_1899", false,
       // 1899-12-31T00:00:00Z
       [&](v1::Event* e) { env(e)->mutable_occurred_at()->set_seconds(-2209075200); },
       kReasonInvalidTimestamp},
      {"occurred_at_past_skew", false,
       [&](v1::Event* e) { env(e)->mutable_occurred_at()->set_seconds(kNowSeconds + 15 * 60 + 1); },
       kReasonFutureTimestamp},
      {"recorded_at_past_skew", false,
       [&](v1::Event* e) { env(e)->mutable_recorded_at()->set_seconds(kNowSeconds + 86400); },
       kReasonFutureTimestamp},
      {"no_patient", false, [&](v1::Event* e) { env(e)->clear_patient(); }, kReasonMissingField},
      {"no_nhs_number_and_no_mrn", false,
       [&](v1::Event* e) {
         patient(e)->clear_nhs_number();
         patient(e)->clear_local_mrn();
       },
       kReasonMissingField},
      {"mrn_without_assigning_ods_or_nhs_number", false,
       [&](v1::Event* e) {
         patient(e)->clear_nhs_number();
         patient(e)->clear_mrn_assigning_ods();
       },
       kReasonMissingField},
      {"nhs_number_status_not_a_code", false,
       [&](v1::Event* e) { patient(e)->set_nhs_number_status("09"); }, kReasonInvalidField},
      {"verified_status_without_number", false,
       [&](v1::Event* e) {
         patient(e)->clear_nhs_number();
         patient(e)->set_nhs_number_status("01");
       },
       kReasonInvalidField},
      {"discharge_method_not_utf8", false,
       [&](v1::Event* e) { e->mutable_activity()->set_discharge_method("\xC9"); },
       kReasonInvalidField},
      {"referral_source_not_utf8", false,
       [&](v1::Event* e) { e->mutable_activity()->set_referral_source("\xC9"); },
       kReasonInvalidField},
      {"source_of_referral_not_utf8", true,
       [&](v1::Event* e) { e->mutable_referral()->set_source_of_referral("\xC9"); },
       kReasonInvalidField},
      {"data_quality_flag_not_utf8", false,
       [&](v1::Event* e) {
         v1::DataQualityFlag* f = env(e)->add_data_quality();
         f->set_field("patient.postcode");
         f->set_problem("not_uk_postcode");
         f->set_raw_value("\xC9");
       },
       kReasonInvalidField},
      {"data_quality_flag_without_problem", false,
       [&](v1::Event* e) { env(e)->add_data_quality()->set_field("patient.postcode"); },
       kReasonMissingField},
      {"nhs_number_bad_check_digit", false,
       [&](v1::Event* e) { patient(e)->set_nhs_number("9434765918"); }, kReasonInvalidNhsNumber},
      {"nhs_number_short", false, [&](v1::Event* e) { patient(e)->set_nhs_number("943476591"); },
       kReasonInvalidNhsNumber},
      {"nhs_number_spaced", false,
       [&](v1::Event* e) { patient(e)->set_nhs_number("943 476 5919"); }, kReasonInvalidNhsNumber},
      {"bad_registered_gp", false, [&](v1::Event* e) { patient(e)->set_registered_gp_ods("b86"); },
       kReasonInvalidOdsCode},
      {"bad_mrn_assigning_ods", false,
       [&](v1::Event* e) { patient(e)->set_mrn_assigning_ods("RR8 01"); }, kReasonInvalidOdsCode},
      {"birth_date_not_a_date", false,
       [&](v1::Event* e) { patient(e)->set_birth_date("1958-02-30"); }, kReasonInvalidField},
      {"birth_date_compact", false, [&](v1::Event* e) { patient(e)->set_birth_date("19580714"); },
       kReasonInvalidField},
      {"birth_date_future", false, [&](v1::Event* e) { patient(e)->set_birth_date("2025-03-03"); },
       kReasonInvalidField},
      {"birth_date_before_min_year", false,
       [&](v1::Event* e) { patient(e)->set_birth_date("1850-01-01"); }, kReasonInvalidField},
      {"sex_unknown_value", false,
       [&](v1::Event* e) { patient(e)->set_sex(static_cast<v1::Sex>(42)); }, kReasonInvalidField},
      {"bad_postcode", false, [&](v1::Event* e) { patient(e)->set_postcode("LS1 4A"); },
       kReasonInvalidField},
      {"long_address", false,
       [&](v1::Event* e) { patient(e)->set_address(std::string(5000, 'a')); }, kReasonInvalidField},
      {"no_body", false, [](v1::Event* e) { e->clear_body(); }, kReasonMissingField},
      {"activity_kind_unset", false,
       [](v1::Event* e) { e->mutable_activity()->set_kind(v1::ACTIVITY_KIND_UNSPECIFIED); },
       kReasonInvalidEventType},
      {"activity_kind_unknown", false,
       [](v1::Event* e) { e->mutable_activity()->set_kind(static_cast<v1::ActivityKind>(99)); },
       kReasonInvalidEventType},
      {"encounter_id_empty", false,
       [](v1::Event* e) { e->mutable_activity()->clear_encounter_id(); }, kReasonMissingField},
      {"period_end_before_start", false,
       [](v1::Event* e) {
         e->mutable_activity()->mutable_period_end()->set_seconds(kNowSeconds - 7200);
       },
       kReasonInvalidTimestamp},
      {"period_start_before_min_year", false,
       [](v1::Event* e) {
         e->mutable_activity()->mutable_period_start()->set_seconds(-2209075200);
       },
       kReasonInvalidTimestamp},
      {"too_many_diagnoses", false,
       [](v1::Event* e) {
         for (int i = 0; i < 100; ++i) {
           v1::CodedValue* dx = e->mutable_activity()->add_diagnoses();
           dx->set_code("R69");
         }
       },
       kReasonInvalidField},
      {"diagnosis_without_code", false,
       [](v1::Event* e) { e->mutable_activity()->add_diagnoses()->set_system("ICD-10"); },
       kReasonMissingField},
      {"long_note", false,
       [](v1::Event* e) { e->mutable_activity()->set_note(std::string(4097, 'n')); },
       kReasonInvalidField},
      {"merged_patient_bad_nhs_number", false,
       [](v1::Event* e) {
         e->mutable_activity()->mutable_merged_patient()->set_nhs_number("4010232138");
       },
       kReasonInvalidNhsNumber},
      {"referral_id_empty", true, [](v1::Event* e) { e->mutable_referral()->clear_referral_id(); },
       kReasonMissingField},
      {"referral_status_unset", true,
       [](v1::Event* e) { e->mutable_referral()->set_status(v1::REFERRAL_STATUS_UNSPECIFIED); },
       kReasonInvalidEventType},
      {"referral_priority_unknown", true,
       [](v1::Event* e) {
         e->mutable_referral()->set_priority(static_cast<v1::ReferralPriority>(9));
       },
       kReasonInvalidField},
      {"bad_requester", true, [](v1::Event* e) { e->mutable_referral()->set_requester_ods("B8"); },
       kReasonInvalidOdsCode},
      {"bad_performer", true,
       [](v1::Event* e) { e->mutable_referral()->set_performer_ods("RR8/01"); },
       kReasonInvalidOdsCode},
      {"ubrn_short", true, [](v1::Event* e) { e->mutable_referral()->set_ubrn("12345678901"); },
       kReasonInvalidField},
      {"ubrn_not_digits", true,
       [](v1::Event* e) { e->mutable_referral()->set_ubrn("12345678901X"); }, kReasonInvalidField},
      {"referral_reason_without_code", true,
       [](v1::Event* e) { e->mutable_referral()->add_reasons()->set_display("Chest pain"); },
       kReasonMissingField},
  };
}

TEST(ValidateEventTest, EachDefectGivesItsReason) {
  for (const Case& c : Cases()) {
    v1::Event event = c.referral ? ValidReferral() : ValidActivity();
    c.mutate(&event);
    const Status status = Validate(event);
    EXPECT_EQ(status.code(), c.reason) << c.name << ": " << status.ToString();
    EXPECT_FALSE(status.message().empty()) << c.name;
  }
}

TEST(ValidateEventTest, MessagesCarryNoPatientIdentifiers) {
  for (const Case& c : Cases()) {
    v1::Event event = c.referral ? ValidReferral() : ValidActivity();
    c.mutate(&event);
    const Status status = Validate(event);
    for (std::string_view identifier :
         {std::string_view(kNhsNumber), std::string_view("9434765918"),
          std::string_view("943476591"), std::string_view(kPostcode), std::string_view("LS1 4A"),
          std::string_view(kGivenName), std::string_view(kFamilyName), std::string_view("1958")}) {
      EXPECT_EQ(status.message().find(identifier), std::string::npos)
          << c.name << " leaks an identifier: " << status.message();
    }
  }
  v1::Event event = ValidActivity();
  event.mutable_envelope()->mutable_patient()->set_nhs_number("9434765918");
  EXPECT_EQ(Validate(event).message(), "patient.nhs_number fails the Modulus 11 check");
}

// Found by fuzz_hl7_message: a Latin-1 byte in a PAS address became a proto3 string the hub could
// not decode, so the whole frame was refused as malformed after the adapter had sent AA.
TEST(ValidateEventTest, StringsMustBeWellFormedUtf8) {
  v1::Event event = ValidActivity();
  event.mutable_envelope()->mutable_patient()->set_address("1 HIGH STREET^FLA\xe6T 2");
  EXPECT_EQ(Validate(event).code(), kReasonInvalidField);
  EXPECT_EQ(Validate(event).message(), "patient.address is not valid UTF-8");
  event.mutable_envelope()->mutable_patient()->set_address("1 H\xc3\xa6GH STREET \xf0\x9f\x8f\xa5");
  EXPECT_TRUE(Validate(event).ok()) << Validate(event).ToString();
  // Each bad sequence alone, and after and before runs of ASCII that the check skips eight bytes
  // at a time (the run ends at, before and after an eight-byte boundary).
  for (const char* bad : {"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\xff"}) {
    for (const std::string ascii : {"", "1234567", "12345678", "123456789abcdefgh"}) {
      v1::Event e = ValidActivity();
      e.mutable_activity()->set_note(ascii + bad + ascii);
      EXPECT_EQ(Validate(e).message(), "activity.note is not valid UTF-8") << ascii << bad;
      // Truncated at the end of the string, after the ASCII run.
      e.mutable_activity()->set_note(ascii + bad);
      EXPECT_EQ(Validate(e).message(), "activity.note is not valid UTF-8") << ascii << bad;
    }
  }
  for (const std::string ascii : {"1234567", "12345678", "123456789abcdefgh"}) {
    v1::Event e = ValidActivity();
    e.mutable_activity()->set_note(ascii + "\xc3\xa6" + ascii + "\xf0\x9f\x8f\xa5" + ascii);
    EXPECT_TRUE(Validate(e).ok()) << ascii;
  }
  v1::Event coded = ValidActivity();
  coded.mutable_activity()->mutable_diagnoses(0)->set_display("Pneum\xf6nia");
  EXPECT_EQ(Validate(coded).code(), kReasonInvalidField);
}

TEST(ValidateEventTest, OversizedEventIsRejectedFirst) {
  v1::Event event = ValidActivity();
  event.mutable_envelope()->clear_event_id();  // also broken, but size is checked first
  const ValidationLimits limits;
  EXPECT_EQ(ValidateEvent(event, limits.max_event_bytes + 1, limits, kNow).code(),
            kReasonEventTooLarge);
  EXPECT_EQ(ValidateEvent(event, limits.max_event_bytes, limits, kNow).code(), kReasonMissingField);
}

TEST(ValidateEventTest, BoundariesAreInclusive) {
  v1::Event event = ValidActivity();
  event.mutable_envelope()->set_event_id(std::string(128, 'a'));
  EXPECT_TRUE(Validate(event).ok());
  event.mutable_envelope()->mutable_occurred_at()->set_seconds(kNowSeconds + 15 * 60);
  EXPECT_TRUE(Validate(event).ok());
  event.mutable_envelope()->mutable_occurred_at()->set_nanos(1);
  EXPECT_EQ(Validate(event).code(), kReasonFutureTimestamp);

  v1::Event codes = ValidActivity();
  for (int i = 1; i < 100; ++i) {
    codes.mutable_activity()->add_diagnoses()->set_code("R69");
  }
  EXPECT_EQ(codes.activity().diagnoses_size(), 100);
  EXPECT_TRUE(Validate(codes).ok());

  v1::Event note = ValidReferral();
  note.mutable_referral()->set_note(std::string(4096, 'n'));
  EXPECT_TRUE(Validate(note).ok());
}

TEST(ValidateEventTest, AcceptsLegitimateVariants) {
  v1::Event event = ValidActivity();
  v1::Envelope* env = event.mutable_envelope();
  env->clear_site_ods();
  env->clear_recorded_at();
  env->set_lifecycle(v1::LIFECYCLE_UPDATE);
  env->set_supersedes_event_id("ADT-000122");
  v1::Patient* p = env->mutable_patient();
  p->set_postcode("ls14ap");
  p->set_birth_date("2000-02-29");
  p->clear_local_mrn();
  // A planned encounter may end in the future.
  event.mutable_activity()->mutable_period_end()->set_seconds(kNowSeconds + 30 * 86400);
  // A merge may name a local record with no NHS number.
  event.mutable_activity()->mutable_merged_patient()->set_local_mrn("K7654321");
  EXPECT_TRUE(Validate(event).ok()) << Validate(event).ToString();

  v1::Event referral = ValidReferral();
  referral.mutable_envelope()->set_lifecycle(v1::LIFECYCLE_CANCEL);
  referral.mutable_envelope()->set_supersedes_event_id("ADT-000100");
  referral.mutable_referral()->clear_ubrn();
  referral.mutable_referral()->clear_requester_ods();
  referral.mutable_referral()->set_priority(v1::REFERRAL_PRIORITY_UNSPECIFIED);
  referral.mutable_referral()->mutable_appointment_at()->set_seconds(kNowSeconds + 40 * 86400);
  EXPECT_TRUE(Validate(referral).ok()) << Validate(referral).ToString();
}

// Issue 21: an unidentified or not-yet-traced patient is real activity. A local MRN with its
// assigning organisation identifies the record; the NHS Number Status Indicator says why there is
// no number; data-quality flags record what an adapter dropped.
TEST(ValidateEventTest, AcceptsUnidentifiedPatientsAndDataQualityFlags) {
  v1::Event event = ValidActivity();
  v1::Patient* p = event.mutable_envelope()->mutable_patient();
  p->clear_nhs_number();
  for (const char* status : {"", "03", "04", "07"}) {
    p->set_nhs_number_status(status);
    EXPECT_TRUE(Validate(event).ok()) << status << ": " << Validate(event).ToString();
  }
  v1::DataQualityFlag* flag = event.mutable_envelope()->add_data_quality();
  flag->set_field("patient.postcode");
  flag->set_problem("not_uk_postcode");
  flag->set_raw_value("75002");
  EXPECT_TRUE(Validate(event).ok()) << Validate(event).ToString();
}

TEST(ValidateEventTest, BirthDateOnTheNextUtcDayIsAllowed) {
  // Just after midnight in the UK during BST is still the previous day in UTC.
  v1::Event event = ValidActivity();
  event.mutable_envelope()->mutable_patient()->set_birth_date("2025-03-02");
  EXPECT_TRUE(Validate(event).ok());
}

TEST(ValidateEventTest, LimitsAreConfigurable) {
  v1::Event event = ValidActivity();
  ValidationLimits limits;
  limits.min_year = 2026;
  EXPECT_EQ(Validate(event, limits).code(), kReasonInvalidTimestamp);

  limits = ValidationLimits();
  limits.max_future_skew = seconds(0);
  event.mutable_envelope()->mutable_occurred_at()->set_seconds(kNowSeconds + 1);
  EXPECT_EQ(Validate(event, limits).code(), kReasonFutureTimestamp);

  limits = ValidationLimits();
  limits.max_codes = 0;
  EXPECT_EQ(Validate(ValidActivity(), limits).code(), kReasonInvalidField);

  limits = ValidationLimits();
  limits.max_string_bytes = 8;
  EXPECT_EQ(Validate(ValidActivity(), limits).code(), kReasonInvalidField);
}

}  // namespace
}  // namespace carehub
