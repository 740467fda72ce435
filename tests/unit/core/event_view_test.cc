// ReadEventView against protobuf itself: every encoding it calls plain must parse with protobuf to
// the same fields, and every encoding protobuf would read differently (an unknown field, a merge,
// a body replaced, the hub's own fields, bad UTF-8, broken bytes) must be refused, so that the hub
// falls back to protobuf for it. The validator and the data-quality measures must say the same of
// an event whichever way it was read.

#include "carehub/core/event_view.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "carehub/core/data_quality.h"
#include "carehub/core/synthetic.h"
#include "carehub/core/validation.h"

namespace carehub {
namespace {

using google::protobuf::io::CodedOutputStream;
using google::protobuf::io::StringOutputStream;

// Appends one field to an encoding by hand: the shapes a protobuf serializer never writes.
void AppendTag(std::string* out, uint32_t field, uint32_t wire_type) {
  StringOutputStream stream(out);
  CodedOutputStream coded(&stream);
  coded.WriteTag(field << 3 | wire_type);
}
void AppendVarintField(std::string* out, uint32_t field, uint64_t value) {
  StringOutputStream stream(out);
  CodedOutputStream coded(&stream);
  coded.WriteTag(field << 3 | 0);
  coded.WriteVarint64(value);
}
void AppendBytesField(std::string* out, uint32_t field, std::string_view value) {
  StringOutputStream stream(out);
  CodedOutputStream coded(&stream);
  coded.WriteTag(field << 3 | 2);
  coded.WriteVarint32(static_cast<uint32_t>(value.size()));
  coded.WriteRaw(value.data(), static_cast<int>(value.size()));
}

SyntheticGenerator Generator(uint64_t seed) {
  SyntheticOptions o;
  o.seed = seed;
  return SyntheticGenerator(o);
}

// The view protobuf's own parse gives for `bytes`.
EventView ProtobufView(const std::string& bytes, v1::Event* storage) {
  EXPECT_TRUE(storage->ParseFromString(bytes));
  EventView view;
  MakeEventView(*storage, &view);
  return view;
}

TEST(EventViewTest, SyntheticEventsReadAsProtobufParsesThem) {
  auto gen = Generator(7);
  EventView view;
  int activity = 0;
  int referral = 0;
  for (int i = 0; i < 2000; ++i) {
    const v1::Event event = gen.Next();
    const std::string bytes = event.SerializeAsString();
    ASSERT_TRUE(ReadEventView(bytes, &view)) << i;
    v1::Event parsed;
    EXPECT_EQ(view, ProtobufView(bytes, &parsed)) << i;
    EXPECT_EQ(view.envelope().event_id(), event.envelope().event_id());
    activity += view.has_activity() ? 1 : 0;
    referral += view.has_referral() ? 1 : 0;
  }
  // Both bodies, and the repeated fields, were exercised.
  EXPECT_GT(activity, 500);
  EXPECT_GT(referral, 300);
}

TEST(EventViewTest, EveryFieldIsRead) {
  // One event with every field of the schema set (except the hub's), so a field the reader
  // dropped or mixed up shows as a difference from protobuf's parse.
  v1::Event e;
  auto* env = e.mutable_envelope();
  env->set_event_id("ev-1");
  env->set_publisher_ods("RXK");
  env->set_site_ods("RXK01");
  env->set_source_system("PAS");
  env->set_lifecycle(v1::LIFECYCLE_UPDATE);
  env->set_supersedes_event_id("ev-0");
  env->mutable_occurred_at()->set_seconds(1'700'000'000);
  env->mutable_occurred_at()->set_nanos(5);
  env->mutable_recorded_at()->set_seconds(1'700'000'001);
  env->mutable_recorded_at()->set_nanos(-1);  // out of range, but an int32 on the wire
  auto* p = env->mutable_patient();
  p->set_nhs_number("9434765919");
  p->set_local_mrn("MRN1");
  p->set_mrn_assigning_ods("RXK");
  p->set_birth_date("1970-01-02");
  p->set_sex(v1::SEX_FEMALE);
  p->set_postcode("LS1 4AP");
  p->set_registered_gp_ods("M85001");
  p->set_given_name("Zoë");
  p->set_family_name("O'Brien");
  p->set_address("1 Road");
  p->set_pseudonym("ps");
  p->set_nhs_number_status("01");
  for (int i = 0; i < 2; ++i) {
    auto* flag = env->add_data_quality();
    flag->set_field("patient.postcode");
    flag->set_problem("not_uk_postcode" + std::to_string(i));
    flag->set_raw_value("XX");
  }
  auto* a = e.mutable_activity();
  a->set_kind(static_cast<v1::ActivityKind>(77));  // an unknown value is kept, as proto3 does
  a->set_encounter_id("enc");
  a->set_encounter_class("IMP");
  a->set_status("finished");
  a->mutable_period_start()->set_seconds(-5);
  a->mutable_period_end()->set_seconds(10);
  a->set_treatment_function("300");
  a->set_location("ward");
  a->set_admission_source("19");
  a->set_admission_method("21");
  a->set_discharge_destination("19");
  for (auto* list : {a->mutable_diagnoses(), a->mutable_procedures()}) {
    auto* c = list->Add();
    c->set_system("ICD-10");
    c->set_code("J18.9");
    c->set_display("Pneumonia");
    list->Add()->set_code("second");
  }
  a->set_referral_id("ref");
  a->set_note("note");
  a->mutable_merged_patient()->set_local_mrn("OLD");
  a->set_discharge_method("1");
  a->set_referral_source("gp");
  const std::string bytes = e.SerializeAsString();
  EventView view;
  ASSERT_TRUE(ReadEventView(bytes, &view));
  v1::Event parsed;
  EXPECT_EQ(view, ProtobufView(bytes, &parsed));
  EXPECT_EQ(view.envelope().recorded_at().nanos(), -1);
  EXPECT_EQ(view.activity().kind(), 77);
  EXPECT_EQ(view.activity().procedures_size(), 2);

  v1::Event r;
  *r.mutable_envelope() = e.envelope();
  auto* ref = r.mutable_referral();
  ref->set_referral_id("r1");
  ref->set_ubrn("123456789012");
  ref->set_status(v1::REFERRAL_STATUS_ACCEPTED);
  ref->set_priority(v1::REFERRAL_PRIORITY_URGENT);
  ref->set_requester_ods("M85001");
  ref->set_performer_ods("RXK");
  ref->set_specialty("cardiology");
  ref->add_reasons()->set_code("R1");
  ref->mutable_authored_at()->set_seconds(1);
  ref->mutable_appointment_at()->set_seconds(2);
  ref->set_note("n");
  ref->set_source_of_referral("111");
  const std::string rbytes = r.SerializeAsString();
  ASSERT_TRUE(ReadEventView(rbytes, &view));
  EXPECT_EQ(view, ProtobufView(rbytes, &parsed));
  EXPECT_EQ(view.referral().reasons_size(), 1);
}

TEST(EventViewTest, ALaterOccurrenceOfAStringWinsAsInProtobuf) {
  auto gen = Generator(3);
  std::string bytes = gen.Next().SerializeAsString();
  v1::Envelope again;
  again.set_event_id("later-id");
  AppendBytesField(&bytes, 1, again.SerializeAsString());  // a second envelope: merged
  EventView view;
  EXPECT_FALSE(ReadEventView(bytes, &view)) << "a second envelope is a protobuf merge";

  // Within one envelope, a string given twice: the last one counts.
  v1::Event e = gen.Next();
  std::string env = e.envelope().SerializeAsString();
  AppendBytesField(&env, 1, "later-id");
  std::string twice;
  AppendBytesField(&twice, 1, env);
  AppendBytesField(&twice, 2, e.activity().SerializeAsString());
  ASSERT_TRUE(ReadEventView(twice, &view));
  v1::Event parsed;
  EXPECT_EQ(view, ProtobufView(twice, &parsed));
  EXPECT_EQ(view.envelope().event_id(), "later-id");
}

TEST(EventViewTest, EncodingsProtobufReadsOtherwiseAreNotPlain) {
  auto gen = Generator(11);
  v1::Event e;
  do {
    e = gen.Next();
  } while (!e.has_activity());
  const std::string good = e.SerializeAsString();
  EventView view;
  ASSERT_TRUE(ReadEventView(good, &view));

  struct Case {
    const char* what;
    std::string bytes;
  };
  std::vector<Case> cases;
  {
    std::string b = good;
    AppendVarintField(&b, 99, 1);
    cases.push_back({"an unknown field", b});
  }
  {
    v1::Event hub = e;
    hub.mutable_envelope()->set_hub_seq(5);
    cases.push_back({"hub_seq set", hub.SerializeAsString()});
  }
  {
    v1::Event hub = e;
    hub.mutable_envelope()->mutable_received_at()->set_seconds(1);
    cases.push_back({"received_at set", hub.SerializeAsString()});
  }
  {
    std::string b = good;
    v1::ReferralEvent referral;
    referral.set_referral_id("x");
    AppendBytesField(&b, 3, referral.SerializeAsString());
    cases.push_back({"a second body replaces the first", b});
  }
  {
    std::string b = good;
    AppendBytesField(&b, 2, e.activity().SerializeAsString());
    cases.push_back({"a second activity is merged", b});
  }
  {
    std::string b = good;
    AppendVarintField(&b, 1, 3);
    cases.push_back({"the envelope with a varint wire type", b});
  }
  {
    std::string env;
    AppendBytesField(&env, 1, "ok");
    AppendBytesField(&env, 4, std::string("\xc3\x28", 2));
    std::string b;
    AppendBytesField(&b, 1, env);
    cases.push_back({"a string that is not UTF-8", b});
  }
  {
    std::string b;
    AppendTag(&b, 1, 5);  // fixed32
    b += std::string(4, '\0');
    cases.push_back({"a fixed32 field", b});
  }
  {
    // The envelope's length, and then a tag, in six bytes where one would do: protobuf reads
    // lengths and tags of at most five bytes, so it refuses the event.
    auto padded = [](uint64_t value) {
      std::string v;
      for (int i = 0; i < 5; ++i) {
        v.push_back(static_cast<char>((value & 0x7f) | 0x80));
        value >>= 7;
      }
      v.push_back(static_cast<char>(value));
      return v;
    };
    const std::string envelope = e.envelope().SerializeAsString();
    const std::string activity = e.activity().SerializeAsString();
    std::string long_length = "\x0a" + padded(envelope.size()) + envelope;
    AppendBytesField(&long_length, 2, activity);
    cases.push_back({"a length in six bytes", long_length});
    std::string long_tag;
    AppendBytesField(&long_tag, 1, envelope);
    ASSERT_LT(activity.size(), 128u);  // its length in one byte
    long_tag += padded(2 << 3 | 2) + static_cast<char>(activity.size()) + activity;
    cases.push_back({"a tag in six bytes", long_tag});
    v1::Event parsed;
    EXPECT_FALSE(parsed.ParseFromString(long_length)) << "protobuf reads a six-byte length";
    EXPECT_FALSE(parsed.ParseFromString(long_tag)) << "protobuf reads a six-byte tag";
  }
  cases.push_back({"truncated", good.substr(0, good.size() - 3)});
  cases.push_back(
      {"an eleven-byte varint", std::string("\x08") + std::string(10, '\xff') + "\x01"});
  cases.push_back({"field number 0", std::string("\x02\x00", 2)});
  for (const auto& c : cases) {
    EXPECT_FALSE(ReadEventView(c.bytes, &view)) << c.what;
  }
}

TEST(EventViewTest, ValidationAndQualityAgreeWithTheParsedEvent) {
  auto gen = Generator(5);
  const auto now = std::chrono::system_clock::now();
  const ValidationLimits limits;
  EventView view;
  int rejected = 0;
  for (int i = 0; i < 600; ++i) {
    v1::Event e = gen.Next();
    if (i % 3 != 0) {
      gen.MakeInvalid(&e, static_cast<InvalidKind>(i % kInvalidKindCount));
    }
    const std::string bytes = e.SerializeAsString();
    if (!ReadEventView(bytes, &view)) {
      // Only an event protobuf itself would read otherwise may be refused; none of these is.
      ADD_FAILURE() << "event " << i << " not plain";
      continue;
    }
    const Status from_message = ValidateEvent(e, bytes.size(), limits, now);
    const Status from_view = ValidateEvent(view, bytes.size(), limits, now);
    EXPECT_EQ(from_view.code(), from_message.code()) << i;
    EXPECT_EQ(from_view.message(), from_message.message()) << i;
    rejected += from_view.ok() ? 0 : 1;
    const DataQualityMeasures a = MeasureDataQuality(e);
    const DataQualityMeasures b = MeasureDataQuality(view);
    EXPECT_EQ(a.verified_nhs_number, b.verified_nhs_number) << i;
    EXPECT_EQ(a.valid_postcode, b.valid_postcode) << i;
    EXPECT_EQ(a.valid_practice, b.valid_practice) << i;
    EXPECT_EQ(a.valid_codes, b.valid_codes) << i;
  }
  EXPECT_GT(rejected, 300);
}

TEST(EventViewTest, ClearKeepsNothingOfThePreviousEvent) {
  auto gen = Generator(9);
  EventView view;
  v1::Event a;
  do {
    a = gen.Next();
  } while (!a.has_activity() || a.activity().diagnoses_size() == 0);
  ASSERT_TRUE(ReadEventView(a.SerializeAsString(), &view));
  v1::Event r;
  do {
    r = gen.Next();
  } while (!r.has_referral());
  const std::string rbytes = r.SerializeAsString();
  ASSERT_TRUE(ReadEventView(rbytes, &view));
  v1::Event parsed;
  EXPECT_EQ(view, ProtobufView(rbytes, &parsed));
  EXPECT_EQ(view.activity().diagnoses_size(), 0);
}

TEST(EventViewTest, AViewOfAMessageHasItsStringsCheckedByTheValidator) {
  // ReadEventView checked every string; a view of a message built in code has not been.
  auto gen = Generator(13);
  v1::Event e = gen.Next();
  EventView view;
  ASSERT_TRUE(ReadEventView(e.SerializeAsString(), &view));
  EXPECT_TRUE(view.strings_checked_utf8());
  e.mutable_envelope()->set_source_system("\xc3\x28");
  MakeEventView(e, &view);
  EXPECT_FALSE(view.strings_checked_utf8());
  const Status valid =
      ValidateEvent(view, 100, ValidationLimits{}, std::chrono::system_clock::now());
  EXPECT_EQ(valid.code(), kReasonInvalidField);
  EXPECT_EQ(valid.message(),
            ValidateEvent(e, 100, ValidationLimits{}, std::chrono::system_clock::now()).message());
}

}  // namespace
}  // namespace carehub
