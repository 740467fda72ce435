// Issue 21: what trusts actually send, through AdtProcessor (parse, charset, map, screen,
// validate, publish, ACK). Each case checks the exact answer the sender gets and the event the
// sink received. Expected values are written out by hand from the message text, never computed by
// the code under test.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "carehub/adapters/hl7/adt_processor.h"
#include "carehub/adapters/hl7/charset.h"
#include "carehub/core/event_types.h"
#include "hl7_test_messages.h"
#include "hl7_test_sinks.h"

namespace carehub::adapters::hl7 {
namespace {

using namespace testing;  // NOLINT: the sample-message helpers

class Hl7RealFeedsTest : public ::testing::Test {
 protected:
  Hl7RealFeedsTest() : processor_(Options(), sink_, clock_) {}
  static ProcessorOptions Options() {
    ProcessorOptions o;
    o.mapper = MapperOptions{"RXK", {"RXK", "RXK01"}};
    o.identity.facility = "RXK";
    return o;
  }
  // Processes `raw`, expecting AA and exactly one new event in the sink.
  v1::Event AcceptOne(const std::string& raw) {
    const size_t before = sink_.events().size();
    ProcessResult r = processor_.Process(raw);
    EXPECT_EQ(r.code, AckCode::kAccept) << r.reason << ": " << r.ack;
    Result<Message> ack = Message::Parse(r.ack);
    EXPECT_TRUE(ack.ok());
    if (ack.ok()) {
      EXPECT_EQ(ack->Get("MSA", 1), "AA");
      EXPECT_EQ(ack->Get("MSA", 2), Message::Parse(raw)->ControlId());
    }
    std::vector<v1::Event> events = sink_.events();
    EXPECT_EQ(events.size(), before + 1);
    return events.empty() ? v1::Event() : events.back();
  }
  static const v1::DataQualityFlag* FlagFor(const v1::Event& e, const std::string& field) {
    for (const v1::DataQualityFlag& f : e.envelope().data_quality()) {
      if (f.field() == field) {
        return &f;
      }
    }
    return nullptr;
  }

  FixedClock clock_;
  RecordingSink sink_;
  AdtProcessor processor_;
};

const std::string kEdMsh =
    "MSH|^~\\&|PAS|RXK01|CAREHUB|RXK|20240315103000||ADT^A04^ADT_A01|ED0001|P|2.5.1\r";
const std::string kEdEvn = "EVN|A04|20240315103000\r";
const std::string kEdPv1 = "PV1|1|E|ED^MAJ^3^RXK01||||||||||||||||V99001\r";

TEST_F(Hl7RealFeedsTest, OverseasVisitorIsKeptAndTheFrenchPostcodeFlagged) {
  v1::Event e = AcceptOne(kEdMsh + kEdEvn +
                          "PID|1||9434765919^^^NHS^NH~RXK7654321^^^RXK^MR||DUPONT^MARIE^^^MME^^L||"
                          "19750612|F|||12 RUE DE LA PAIX^^PARIS^^75002^FRA^H\r" +
                          kEdPv1);
  const v1::Patient& p = e.envelope().patient();
  EXPECT_EQ(p.nhs_number(), "9434765919");
  EXPECT_EQ(p.postcode(), "");
  EXPECT_EQ(p.address(), "12 RUE DE LA PAIX, PARIS");
  EXPECT_EQ(p.birth_date(), "1975-06-12");
  EXPECT_EQ(EventTypeName(e), "activity.ae_attendance");
  ASSERT_EQ(e.envelope().data_quality_size(), 1);
  EXPECT_EQ(e.envelope().data_quality(0).field(), "patient.postcode");
  EXPECT_EQ(e.envelope().data_quality(0).problem(), "not_uk_postcode");
  EXPECT_EQ(e.envelope().data_quality(0).raw_value(), "75002");
}

TEST_F(Hl7RealFeedsTest, RegisteredPracticeThatIsNotAnOdsCodeIsFlaggedNotRefused) {
  v1::Event e = AcceptOne(kEdMsh + kEdEvn + Pid() +
                          "PD1|||LEEDS MEDICAL PRACTICE^^^^^^^^^GP-LEEDS-12\r" + kEdPv1);
  EXPECT_EQ(e.envelope().patient().registered_gp_ods(), "");
  EXPECT_EQ(e.envelope().patient().postcode(), "LS1 4AP");
  const v1::DataQualityFlag* flag = FlagFor(e, "patient.registered_gp_ods");
  ASSERT_NE(flag, nullptr);
  EXPECT_EQ(flag->problem(), "not_ods_code");
  EXPECT_EQ(flag->raw_value(), "GP-LEEDS-12");
}

TEST_F(Hl7RealFeedsTest, UnidentifiedPatientIsAcceptedWithStatusAndLocalNumber) {
  // An unconscious man brought in by ambulance: no NHS number, trace required (PID-32 03).
  v1::Event e = AcceptOne(kEdMsh + kEdEvn + "PID|1||RXKU0042^^^RXK^MR||UNKNOWN^MALE|||M" +
                          std::string(24, '|') + "03\r" + kEdPv1);
  const v1::Patient& p = e.envelope().patient();
  EXPECT_EQ(p.nhs_number(), "");
  EXPECT_EQ(p.nhs_number_status(), "03");
  EXPECT_EQ(p.local_mrn(), "RXKU0042");
  EXPECT_EQ(p.mrn_assigning_ods(), "RXK");
  EXPECT_EQ(p.sex(), v1::SEX_MALE);
  EXPECT_EQ(e.envelope().data_quality_size(), 0);

  // "Trace attempted, no match" sent as NSTS04 by some PAS.
  std::string msh04 = kEdMsh;
  msh04.replace(msh04.find("ED0001"), 6, "ED0002");
  v1::Event e4 = AcceptOne(msh04 + kEdEvn + "PID|1||RXKU0043^^^RXK^MR||UNKNOWN^FEMALE|||F" +
                           std::string(24, '|') + "NSTS04\r" + kEdPv1);
  EXPECT_EQ(e4.envelope().patient().nhs_number_status(), "04");
}

TEST_F(Hl7RealFeedsTest, ImpreciseBirthDateAndUnknownSexAreFlagged) {
  v1::Event e =
      AcceptOne(kEdMsh + kEdEvn +
                "PID|1||9434765919^^^NHS^NH||SMITH^JOHN||1975|X|||^^LEEDS^^LS1 4AP\r" + kEdPv1);
  EXPECT_EQ(e.envelope().patient().birth_date(), "");
  EXPECT_EQ(e.envelope().patient().sex(), v1::SEX_UNSPECIFIED);
  const v1::DataQualityFlag* birth = FlagFor(e, "patient.birth_date");
  ASSERT_NE(birth, nullptr);
  EXPECT_EQ(birth->problem(), "imprecise_date");
  EXPECT_EQ(birth->raw_value(), "1975");
  const v1::DataQualityFlag* sex = FlagFor(e, "patient.sex");
  ASSERT_NE(sex, nullptr);
  EXPECT_EQ(sex->problem(), "unknown_code");
  EXPECT_EQ(sex->raw_value(), "X");
}

TEST_F(Hl7RealFeedsTest, UnusualMsh2StillGetsAMatchableAckExactly) {
  // Three encoding characters: Message::Parse refuses the header, but MSH-10 is readable.
  ProcessResult r = processor_.Process(
      "MSH|^~\\|PAS|RXK01|CAREHUB|RXK|20240315103000||ADT^A01^ADT_A01|ODD0001|P|2.5.1\r" + Pid() +
      Pv1("I", "21"));
  EXPECT_EQ(r.code, AckCode::kReject);
  EXPECT_EQ(r.control_id, "ODD0001");
  EXPECT_EQ(r.ack,
            "MSH|^~\\&|CAREHUB|RXK|PAS|RXK01|20240320120000+0000||ACK^A01^ACK|"
            "CH171093600000000000|P|2.5.1\r"
            "MSA|AR|ODD0001\r"
            "ERR||MSH^1^2|102^Data type error^HL70357|E|malformed_message^^L|||"
            "MSH-2 encoding characters must be 4 or 5 characters\r");
  EXPECT_TRUE(sink_.events().empty());
}

TEST_F(Hl7RealFeedsTest, RepeatedSeparatorInMsh2IsLocatedAndEchoed) {
  ProcessResult r = processor_.Process(
      "MSH|^~^&|PAS|RXK01|CAREHUB|RXK|20240315103000||ADT^A01|ODD0002|P|2.4\r" + Pid());
  Result<Message> ack = Message::Parse(r.ack);
  ASSERT_TRUE(ack.ok());
  EXPECT_EQ(ack->Get("MSA", 1), "AR");
  EXPECT_EQ(ack->Get("MSA", 2), "ODD0002");
  EXPECT_EQ(ack->Get("MSH", 5), "PAS");
  EXPECT_EQ(ack->Get("MSH", 6), "RXK01");
  EXPECT_EQ(ack->Get("MSH", 12), "2.4");
  // v2.4: ERR-1 segment^sequence^field^code&text&table.
  EXPECT_EQ(ack->Get("ERR", 1, 0, 1), "MSH");
  EXPECT_EQ(ack->Get("ERR", 1, 0, 3), "2");
  EXPECT_EQ(ack->Get("ERR", 1, 0, 4, 1), "102");
}

// Found by fuzz_hl7_message: "MSH" alone on its line made the lenient header reader read past
// the line. There is no MSH-10 to echo: the answer is the headerless AR.
TEST_F(Hl7RealFeedsTest, MshAloneOnItsLineIsRefusedWithoutCrashing) {
  ProcessResult r =
      processor_.Process("MSH\r|^~\\&|PAS|RXK01|||20240315103000||ADT^A01|X1|P|2.5\r");
  EXPECT_EQ(r.code, AckCode::kReject);
  EXPECT_EQ(r.reason, "malformed_message");
  Result<Message> ack = Message::Parse(r.ack);
  ASSERT_TRUE(ack.ok()) << r.ack;
  EXPECT_EQ(ack->Get("MSA", 1), "AR");
  EXPECT_EQ(ack->Get("MSA", 2), "");
}

TEST_F(Hl7RealFeedsTest, Iso88591NamesWithAccentsAreTranscoded) {
  // GARCÍA and JOSÉ in ISO 8859-1 bytes (0xCD, 0xC9), as a PAS declaring 8859/1 sends them.
  v1::Event e = AcceptOne(
      "MSH|^~\\&|PAS|RXK01|CAREHUB|RXK|20240315103000||ADT^A04^ADT_A01|LAT0001|P|2.5.1||||||"
      "8859/1\r" +
      kEdEvn +
      "PID|1||9434765919^^^NHS^NH||GARC\xCD"
      "A^JOS\xC9||19800101|M\r" +
      kEdPv1);
  EXPECT_EQ(e.envelope().patient().family_name(),
            "GARC\xC3\x8D"
            "A");
  EXPECT_EQ(e.envelope().patient().given_name(), "JOS\xC3\x89");
}

TEST_F(Hl7RealFeedsTest, Windows1252QuoteIsTranscoded) {
  v1::Event e = AcceptOne(
      "MSH|^~\\&|PAS|RXK01|CAREHUB|RXK|20240315103000||ADT^A04^ADT_A01|WIN0001|P|2.5.1||||||"
      "WINDOWS-1252\r" +
      kEdEvn +
      "PID|1||9434765919^^^NHS^NH||O\x92"
      "BRIEN^SEAN||19800101|M\r" +
      kEdPv1);
  EXPECT_EQ(e.envelope().patient().family_name(),
            "O\xE2\x80\x99"
            "BRIEN");  // U+2019
}

TEST_F(Hl7RealFeedsTest, UnknownCharsetIsRefusedWithAClearAr) {
  ProcessResult r = processor_.Process(
      "MSH|^~\\&|PAS|RXK01|CAREHUB|RXK|20240315103000||ADT^A04^ADT_A01|JIS0001|P|2.5.1||||||"
      "ISO IR87\r" +
      kEdEvn + Pid() + kEdPv1);
  EXPECT_EQ(r.reason, "unsupported_charset");
  Result<Message> ack = Message::Parse(r.ack);
  ASSERT_TRUE(ack.ok());
  EXPECT_EQ(ack->Get("MSA", 1), "AR");
  EXPECT_EQ(ack->Get("MSA", 2), "JIS0001");
  EXPECT_EQ(ack->Get("ERR", 2), "MSH");
  EXPECT_EQ(ack->Get("ERR", 2, 0, 3), "18");
  EXPECT_EQ(ack->Get("ERR", 3), "103");
  EXPECT_EQ(ack->Get("ERR", 3, 0, 2), "Table value not found");
  EXPECT_EQ(ack->Get("ERR", 5), "unsupported_charset");
  EXPECT_NE(ack->Get("ERR", 8).find("MSH-18"), std::string::npos);
  EXPECT_TRUE(sink_.events().empty());
}

TEST_F(Hl7RealFeedsTest, UndeclaredLatin1IsRefusedAndLocated) {
  // No MSH-18: the default is ASCII, and 0xC9 is not UTF-8 either.
  ProcessResult r = processor_.Process(
      kEdMsh + kEdEvn + "PID|1||9434765919^^^NHS^NH||SMITH^JOS\xC9||19800101|M\r" + kEdPv1);
  EXPECT_EQ(r.reason, "invalid_field");
  Result<Message> ack = Message::Parse(r.ack);
  ASSERT_TRUE(ack.ok());
  EXPECT_EQ(ack->Get("ERR", 2), "PID");
  EXPECT_EQ(ack->Get("ERR", 2, 0, 3), "5");
  EXPECT_EQ(ack->Get("ERR", 2, 0, 5), "2");
  EXPECT_EQ(ack->Get("ERR", 3), "102");
}

TEST_F(Hl7RealFeedsTest, CharsetNamesFollowTable0211) {
  EXPECT_EQ(IconvNameForCharset("8859/1"), "ISO-8859-1");
  EXPECT_EQ(IconvNameForCharset(" unicode utf-8 "), "UTF-8");
  EXPECT_EQ(IconvNameForCharset(""), "UTF-8");
  EXPECT_EQ(IconvNameForCharset("ASCII"), "UTF-8");
  EXPECT_EQ(IconvNameForCharset("CP1252"), "WINDOWS-1252");
  EXPECT_EQ(IconvNameForCharset("8859/15"), "ISO-8859-15");
  EXPECT_EQ(IconvNameForCharset("UNICODE UTF-16"), std::nullopt);
  EXPECT_EQ(IconvNameForCharset("ISO IR87"), std::nullopt);
  // 0x81 is not a Windows-1252 character.
  EXPECT_FALSE(TranscodeToUtf8("A\x81", "WINDOWS-1252").ok());
}

// --- REF^I12..I15 ---

std::string RefMessage(const std::string& trigger, const std::string& control_id,
                       const std::string& rf1_status) {
  return "MSH|^~\\&|ERS|RXK01|CAREHUB|RXK|20240315103000||REF^" + trigger + "^REF_I12|" +
         control_id + "|P|2.5.1\r" + "RF1|" + rf1_status +
         "|R|300^General medicine||O|RXK-REF-001|20240315||20240315100000|"
         "R07.4^Chest pain, unspecified^I10|000012345678\r"
         "PRD|RP|JONES^ANNA^^^DR|||||B86001\r"
         "PRD|RT|ACUTE MEDICINE|||||RXK\r" +
         Pid();
}

TEST_F(Hl7RealFeedsTest, RefI12IsANewReferral) {
  v1::Event e = AcceptOne(RefMessage("I12", "REF0001", "P"));
  EXPECT_EQ(EventTypeName(e), "referral.sent");
  EXPECT_EQ(e.envelope().event_id(), "REF0001");
  EXPECT_EQ(e.envelope().lifecycle(), v1::LIFECYCLE_NEW);
  const v1::ReferralEvent& r = e.referral();
  EXPECT_EQ(r.referral_id(), "RXK-REF-001");
  EXPECT_EQ(r.ubrn(), "000012345678");
  EXPECT_EQ(r.priority(), v1::REFERRAL_PRIORITY_ROUTINE);
  EXPECT_EQ(r.specialty(), "300");
  EXPECT_EQ(r.source_of_referral(), "O");
  EXPECT_EQ(r.requester_ods(), "B86001");
  EXPECT_EQ(r.performer_ods(), "RXK");
  ASSERT_EQ(r.reasons_size(), 1);
  EXPECT_EQ(r.reasons(0).code(), "R07.4");
  EXPECT_EQ(r.reasons(0).system(), "ICD-10");
  EXPECT_EQ(r.authored_at().seconds(), 1710496800);  // 2024-03-15T10:00:00Z (GMT in March)
  EXPECT_EQ(e.envelope().patient().nhs_number(), kNhsNumber);
}

TEST_F(Hl7RealFeedsTest, RefI13I14I15SupersedeTheReferral) {
  v1::Event modify = AcceptOne(RefMessage("I13", "REF0002", "A"));
  EXPECT_EQ(EventTypeName(modify), "referral.accepted");
  EXPECT_EQ(modify.envelope().lifecycle(), v1::LIFECYCLE_UPDATE);
  EXPECT_EQ(modify.envelope().supersedes_event_id(), "RXK-REF-001:I12");

  v1::Event cancel = AcceptOne(RefMessage("I14", "REF0003", "A"));
  EXPECT_EQ(EventTypeName(cancel), "referral.cancelled");
  EXPECT_EQ(cancel.envelope().lifecycle(), v1::LIFECYCLE_CANCEL);
  EXPECT_EQ(cancel.envelope().supersedes_event_id(), "RXK-REF-001:I12");

  v1::Event status = AcceptOne(RefMessage("I15", "REF0004", "R"));
  EXPECT_EQ(EventTypeName(status), "referral.rejected");
  EXPECT_EQ(status.envelope().lifecycle(), v1::LIFECYCLE_UPDATE);

  ProcessResult no_status = processor_.Process(RefMessage("I15", "REF0005", ""));
  EXPECT_EQ(no_status.reason, "missing_field");
  Result<Message> ack = Message::Parse(no_status.ack);
  ASSERT_TRUE(ack.ok());
  EXPECT_EQ(ack->Get("MSA", 2), "REF0005");
  EXPECT_EQ(ack->Get("ERR", 2), "RF1");
  EXPECT_EQ(ack->Get("ERR", 2, 0, 3), "1");
  EXPECT_EQ(ack->Get("ERR", 3), "101");
  EXPECT_EQ(ack->Get("MSH", 9, 0, 2), "I15");

  ProcessResult other = processor_.Process(RefMessage("I16", "REF0006", "A"));
  EXPECT_EQ(other.reason, "unsupported_trigger");
  EXPECT_EQ(Message::Parse(other.ack)->Get("ERR", 3), "201");
}

// --- Enhanced-mode acknowledgements (MSH-15 / MSH-16) ---

std::string WithAckTypes(const std::string& control_id, const std::string& accept,
                         const std::string& application, const std::string& nhs = kNhsNumber) {
  return "MSH|^~\\&|PAS|RXK01|CAREHUB|RXK|20240315103000||ADT^A04^ADT_A01|" + control_id +
         "|P|2.5.1|||" + accept + "|" + application + "\r" + kEdEvn + Pid(nhs) + kEdPv1;
}

TEST_F(Hl7RealFeedsTest, EnhancedModeAnswersWithCommitCodesWhenAsked) {
  ProcessResult al = processor_.Process(WithAckTypes("ENH1", "AL", "NE"));
  EXPECT_EQ(Message::Parse(al.ack)->Get("MSA", 1), "CA");
  EXPECT_EQ(Message::Parse(al.ack)->Get("MSA", 2), "ENH1");

  ProcessResult error_only = processor_.Process(WithAckTypes("ENH2", "ER", "NE"));
  EXPECT_EQ(error_only.code, AckCode::kAccept);
  EXPECT_EQ(error_only.ack, "");  // success, and the sender asked for errors only

  ProcessResult rejected = processor_.Process(WithAckTypes("ENH3", "ER", "NE", kBadNhsNumber));
  EXPECT_EQ(Message::Parse(rejected.ack)->Get("MSA", 1), "CR");
  EXPECT_EQ(Message::Parse(rejected.ack)->Get("MSA", 2), "ENH3");

  ProcessResult never = processor_.Process(WithAckTypes("ENH4", "NE", "NE", kBadNhsNumber));
  EXPECT_EQ(never.code, AckCode::kReject);
  EXPECT_EQ(never.ack, "");

  ProcessResult app_only = processor_.Process(WithAckTypes("ENH5", "", "AL"));
  EXPECT_EQ(Message::Parse(app_only.ack)->Get("MSA", 1), "AA");

  ProcessResult success_only = processor_.Process(WithAckTypes("ENH6", "SU", "", kBadNhsNumber));
  EXPECT_EQ(success_only.ack, "");
  EXPECT_EQ(sink_.events().size(), 3u);  // ENH1, ENH2, ENH5
}

}  // namespace
}  // namespace carehub::adapters::hl7
