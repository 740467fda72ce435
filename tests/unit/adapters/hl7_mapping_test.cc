// ADT -> carehub event mapping for every supported trigger, and the ACKs AdtProcessor builds.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "carehub/adapters/hl7/adt_mapper.h"
#include "carehub/adapters/hl7/adt_processor.h"
#include "carehub/core/event_types.h"
#include "hl7_test_messages.h"
#include "hl7_test_sinks.h"

namespace carehub::adapters::hl7 {
namespace {

using namespace testing;  // NOLINT: the sample-message helpers

MapperOptions Options() { return MapperOptions{"RXK", {"RXK", "RXK01"}}; }

// Maps and validates one message, expecting a single valid event.
v1::Event MapOne(const std::string& raw) {
  Result<Message> msg = Message::Parse(raw);
  EXPECT_TRUE(msg.ok()) << msg.status().ToString();
  if (!msg.ok()) {
    return {};
  }
  Result<std::vector<v1::Event>> events = MapAdt(msg.value(), Options());
  EXPECT_TRUE(events.ok()) << events.status().ToString();
  if (!events.ok() || events->size() != 1) {
    ADD_FAILURE() << "expected one event";
    return {};
  }
  v1::Event event = events->front();
  Status valid = ValidateEvent(event, event.ByteSizeLong(), ValidationLimits{}, FixedClock().Now());
  EXPECT_TRUE(valid.ok()) << valid.ToString();
  return event;
}

Status MapError(const std::string& raw, ErrorLocation* where = nullptr) {
  Result<Message> msg = Message::Parse(raw);
  if (!msg.ok()) {
    return msg.status();
  }
  Result<std::vector<v1::Event>> events = MapAdt(msg.value(), Options(), where);
  return events.ok() ? Status::Ok() : events.status();
}

TEST(Hl7MappingTest, A01EmergencyAdmissionV251MapsEveryField) {
  v1::Event e = MapOne(Msh("A01", "MSG00001") + Evn("A01") + Pid() + Pd1() + Pv1("I", "21") +
                       Dg1() + Pr1() + Rf1() + Seg("ZU1", {{1, "local"}}));
  const v1::Envelope& env = e.envelope();
  EXPECT_EQ(env.event_id(), "MSG00001");
  EXPECT_EQ(env.publisher_ods(), "RXK");
  EXPECT_EQ(env.site_ods(), "RXK01");
  EXPECT_EQ(env.source_system(), "PAS");
  EXPECT_EQ(env.lifecycle(), v1::LIFECYCLE_NEW);
  EXPECT_TRUE(env.supersedes_event_id().empty());
  // EVN-6 10:25 and MSH-7 10:30 UK time on 15 March (GMT).
  EXPECT_EQ(env.occurred_at().seconds(), 1710498300);
  EXPECT_EQ(env.recorded_at().seconds(), 1710498600);
  const v1::Patient& p = env.patient();
  EXPECT_EQ(p.nhs_number(), kNhsNumber);
  EXPECT_EQ(p.local_mrn(), "RXK1234567");
  EXPECT_EQ(p.mrn_assigning_ods(), "RXK");
  EXPECT_EQ(p.family_name(), "SMITH");
  EXPECT_EQ(p.given_name(), "JOHN");
  EXPECT_EQ(p.birth_date(), "1980-01-01");
  EXPECT_EQ(p.sex(), v1::SEX_MALE);
  EXPECT_EQ(p.postcode(), "LS1 4AP");
  EXPECT_EQ(p.address(), "1 HIGH STREET, FLAT 2, LEEDS, WEST YORKSHIRE");
  EXPECT_EQ(p.registered_gp_ods(), "B86001");
  ASSERT_TRUE(e.has_activity());
  const v1::ActivityEvent& a = e.activity();
  EXPECT_EQ(a.kind(), v1::ACTIVITY_KIND_EMERGENCY_ADMISSION);
  EXPECT_EQ(EventTypeName(e), "activity.emergency_admission");
  EXPECT_EQ(a.encounter_id(), "V000123");
  EXPECT_EQ(a.encounter_class(), "IMP");
  EXPECT_EQ(a.status(), "in-progress");
  EXPECT_EQ(a.location(), "WARD12/B3/4");
  EXPECT_EQ(a.admission_method(), "21");
  EXPECT_EQ(a.treatment_function(), "300");
  EXPECT_EQ(a.admission_source(), "19");
  EXPECT_EQ(a.period_start().seconds(), 1710493200);
  EXPECT_FALSE(a.has_period_end());
  ASSERT_EQ(a.diagnoses_size(), 2);
  EXPECT_EQ(a.diagnoses(0).system(), "ICD-10");
  EXPECT_EQ(a.diagnoses(0).code(), "I21.9");
  EXPECT_EQ(a.diagnoses(0).display(), "Acute myocardial infarction");
  EXPECT_EQ(a.diagnoses(1).system(), "http://snomed.info/sct");
  ASSERT_EQ(a.procedures_size(), 1);
  EXPECT_EQ(a.procedures(0).system(), "OPCS-4");
  EXPECT_EQ(a.procedures(0).code(), "K40.1");
  EXPECT_EQ(a.referral_id(), "REF-778899");
}

TEST(Hl7MappingTest, A01AdmissionKindFollowsClassAndAdmissionType) {
  EXPECT_EQ(MapOne(Msh("A01", "M1") + Pid() + Pv1("I", "E")).activity().kind(),
            v1::ACTIVITY_KIND_EMERGENCY_ADMISSION);
  EXPECT_EQ(MapOne(Msh("A01", "M2") + Pid() + Pv1("I", "C")).activity().kind(),
            v1::ACTIVITY_KIND_ELECTIVE_ADMISSION);
  EXPECT_EQ(MapOne(Msh("A01", "M3") + Pid() + Pv1("I", "11")).activity().kind(),
            v1::ACTIVITY_KIND_ELECTIVE_ADMISSION);
  v1::Event ed = MapOne(Msh("A01", "M4") + Pid() + Pv1("E", "E"));
  EXPECT_EQ(ed.activity().kind(), v1::ACTIVITY_KIND_AE_ATTENDANCE);
  EXPECT_EQ(ed.activity().encounter_class(), "EMER");
}

TEST(Hl7MappingTest, A02TransferV23WithNhsNumberInPid2) {
  // v2.3 PAS style: MSH-9 without structure, NHS number in PID-2, hospital number alone in PID-3.
  std::string pid = Seg("PID", {{1, "1"},
                                {2, std::string(kNhsNumber) + "^^^NHS"},
                                {3, "H445566^^^RXK"},
                                {5, "JONES^MARY"},
                                {7, "19751224"},
                                {8, "F"},
                                {11, "2 PARK LANE^^YORK^^YO1 7HH"}});
  v1::Event e =
      MapOne(Msh("A02", "T0002", "2.3") + Seg("EVN", {{1, "A02"}, {2, "20240315110000"}}) + pid +
             Seg("PV1", {{2, "I"}, {3, "WARD7^^12"}, {19, "V555"}}));
  EXPECT_EQ(e.activity().kind(), v1::ACTIVITY_KIND_TRANSFER);
  EXPECT_EQ(e.activity().location(), "WARD7/12");
  EXPECT_EQ(e.activity().encounter_id(), "V555");
  EXPECT_EQ(e.envelope().patient().nhs_number(), kNhsNumber);
  EXPECT_EQ(e.envelope().patient().local_mrn(), "H445566");
  EXPECT_EQ(e.envelope().patient().sex(), v1::SEX_FEMALE);
  EXPECT_EQ(e.envelope().patient().postcode(), "YO1 7HH");
  // No EVN-6: occurred_at falls back to EVN-2.
  EXPECT_EQ(e.envelope().occurred_at().seconds(), 1710500400);
}

TEST(Hl7MappingTest, A03DischargeV28) {
  v1::Event e =
      MapOne(Msh("A03", "D0003", "2.8") + Evn("A03") + Pid() + Pv1("I", "21", "V000123", true));
  EXPECT_EQ(e.activity().kind(), v1::ACTIVITY_KIND_DISCHARGE);
  EXPECT_EQ(e.activity().status(), "finished");
  EXPECT_EQ(e.activity().discharge_destination(), "19");
  EXPECT_EQ(e.activity().discharge_method(), "1");  // PV1-36 beside a PV1-37 destination
  EXPECT_EQ(e.activity().period_start().seconds(), 1710493200);
  EXPECT_EQ(e.activity().period_end().seconds(), 1710770400);
  EXPECT_EQ(e.envelope().lifecycle(), v1::LIFECYCLE_NEW);
}

TEST(Hl7MappingTest, A04RegistrationByPatientClass) {
  v1::Event outpatient = MapOne(Msh("A04", "R1") + Pid() + Pv1("O", "") + Rf1());
  EXPECT_EQ(outpatient.activity().kind(), v1::ACTIVITY_KIND_OUTPATIENT_ATTENDANCE);
  EXPECT_EQ(outpatient.activity().encounter_class(), "AMB");
  EXPECT_EQ(outpatient.activity().status(), "arrived");
  EXPECT_EQ(outpatient.activity().referral_id(), "REF-778899");
  EXPECT_EQ(MapOne(Msh("A04", "R2") + Pid() + Pv1("E", "")).activity().kind(),
            v1::ACTIVITY_KIND_AE_ATTENDANCE);
  EXPECT_EQ(MapOne(Msh("A04", "R3") + Pid() + Pv1("N", "")).activity().kind(),
            v1::ACTIVITY_KIND_REGISTRATION);
}

TEST(Hl7MappingTest, A05PreAdmission) {
  v1::Event e = MapOne(Msh("A05", "P1") + Evn("A05") + Pid() + Pv1("P", "11") + Rf1());
  EXPECT_EQ(e.activity().kind(), v1::ACTIVITY_KIND_PRE_ADMISSION);
  EXPECT_EQ(e.activity().status(), "planned");
  EXPECT_EQ(e.activity().encounter_class(), "PRENC");
  EXPECT_TRUE(e.activity().referral_id().empty());  // RF1 is read on A01/A04 only
}

TEST(Hl7MappingTest, A08UpdateSupersedesTheVisitsOpeningEvent) {
  v1::Event inpatient = MapOne(Msh("A08", "U1") + Evn("A08") + Pid() + Pv1("I", "21"));
  EXPECT_EQ(inpatient.envelope().event_id(), "U1");
  EXPECT_EQ(inpatient.envelope().lifecycle(), v1::LIFECYCLE_UPDATE);
  EXPECT_EQ(inpatient.envelope().supersedes_event_id(), "V000123:A01");
  EXPECT_EQ(inpatient.activity().kind(), v1::ACTIVITY_KIND_EMERGENCY_ADMISSION);
  EXPECT_EQ(inpatient.activity().status(), "in-progress");
  v1::Event outpatient = MapOne(Msh("A08", "U2", "2.3") + Pid() + Pv1("O", ""));
  EXPECT_EQ(outpatient.envelope().supersedes_event_id(), "V000123:A04");
  EXPECT_EQ(outpatient.activity().kind(), v1::ACTIVITY_KIND_OUTPATIENT_ATTENDANCE);
  v1::Event finished = MapOne(Msh("A08", "U3", "2.8") + Pid() + Pv1("I", "11", "V9", true));
  EXPECT_EQ(finished.envelope().supersedes_event_id(), "V9:A01");
  EXPECT_EQ(finished.activity().status(), "finished");
}

TEST(Hl7MappingTest, A11CancelsTheAdmission) {
  v1::Event e = MapOne(Msh("A11", "C1") + Evn("A11") + Pid() + Pv1("I", "21"));
  EXPECT_EQ(e.envelope().lifecycle(), v1::LIFECYCLE_CANCEL);
  EXPECT_EQ(e.envelope().supersedes_event_id(), "V000123:A01");
  EXPECT_EQ(e.activity().kind(), v1::ACTIVITY_KIND_EMERGENCY_ADMISSION);
  EXPECT_EQ(e.activity().status(), "cancelled");
}

TEST(Hl7MappingTest, A13CancelsTheDischarge) {
  v1::Event e = MapOne(Msh("A13", "C2", "2.3") + Evn("A13") + Pid() + Pv1("I", "21"));
  EXPECT_EQ(e.envelope().lifecycle(), v1::LIFECYCLE_CANCEL);
  EXPECT_EQ(e.envelope().supersedes_event_id(), "V000123:A03");
  EXPECT_EQ(e.activity().kind(), v1::ACTIVITY_KIND_DISCHARGE);
  EXPECT_EQ(e.activity().status(), "in-progress");
}

TEST(Hl7MappingTest, A40MergeCarriesThePriorPatient) {
  std::string mrg = Seg("MRG", {{1, std::string(kOtherNhsNumber) + "^^^NHS^NH~RXK7654321^^^RXK^MR"},
                                {7, "SMYTH^JON"}});
  v1::Event e = MapOne(Msh("A40", "G1") + Evn("A40") + Pid() + Pd1() + mrg);
  EXPECT_EQ(e.activity().kind(), v1::ACTIVITY_KIND_PATIENT_MERGE);
  EXPECT_EQ(EventTypeName(e), "activity.patient_merge");
  EXPECT_EQ(e.envelope().patient().nhs_number(), kNhsNumber);
  const v1::Patient& merged = e.activity().merged_patient();
  EXPECT_EQ(merged.nhs_number(), kOtherNhsNumber);
  EXPECT_EQ(merged.local_mrn(), "RXK7654321");
  EXPECT_EQ(merged.family_name(), "SMYTH");
  EXPECT_EQ(e.activity().encounter_id(), "G1");  // no PV1: the event id stands in

  // Two PID/MRG groups: one event each, the second with a derived id.
  Result<Message> two = Message::Parse(Msh("A40", "G2", "2.8") + Evn("A40") + Pid() + mrg +
                                       Pid(kOtherNhsNumber) + Seg("MRG", {{1, "RXK111^^^RXK^MR"}}));
  ASSERT_TRUE(two.ok());
  Result<std::vector<v1::Event>> events = MapAdt(two.value(), Options());
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[1].envelope().event_id(), "G2#2");
  EXPECT_EQ((*events)[1].envelope().patient().nhs_number(), kOtherNhsNumber);
  EXPECT_EQ((*events)[1].activity().merged_patient().local_mrn(), "RXK111");
}

TEST(Hl7MappingTest, RejectsWithStableReasonsAndLocations) {
  ErrorLocation where;
  Status s = MapError(Msh("A01", "X1") + Pid(kBadNhsNumber) + Pv1("I", "21"), &where);
  EXPECT_EQ(s.code(), kReasonInvalidNhsNumber);
  EXPECT_EQ(where.segment, "PID");
  EXPECT_EQ(where.field, 3);
  EXPECT_EQ(s.message().find(kBadNhsNumber), std::string::npos);  // never echo identifiers

  EXPECT_EQ(MapError(Msh("A01", "X2", "2.5.1", "RAE01") + Pid() + Pv1("I", "21"), &where).code(),
            kReasonUnknownFacility);
  EXPECT_EQ(where.field, 4);
  EXPECT_EQ(MapError(Msh("A28", "X3") + Pid() + Pv1("I", "21")).code(), kReasonUnsupportedTrigger);
  EXPECT_EQ(MapError(Msh("A01", "X4", "2.2") + Pid() + Pv1("I", "21")).code(),
            kReasonUnsupportedVersion);
  EXPECT_EQ(MapError(Msh("A01", "X5", "3.0") + Pid() + Pv1("I", "21")).code(),
            kReasonUnsupportedVersion);
  EXPECT_EQ(MapError("MSH|^~\\&|LAB|RXK01|||20240315103000||ORU^R01|X6|P|2.5\r" + Pid()).code(),
            kReasonUnsupportedMessageType);
  EXPECT_EQ(MapError(Msh("A08", "X7") + Pid() + Pv1("I", "21", "")).code(), kReasonMissingField);
  EXPECT_EQ(MapError(Msh("A01", "X8") + Pv1("I", "21")).code(), kReasonMissingField);
  EXPECT_EQ(MapError(Msh("A01", "") + Pid() + Pv1("I", "21")).code(), kReasonMissingField);
  EXPECT_EQ(
      MapError(Msh("A01", "X9") + Pid() + Seg("PV1", {{2, "I"}, {19, "V1"}, {44, "2024-03-15"}}))
          .code(),
      kReasonInvalidTimestamp);
  for (const char* version :
       {"2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8"}) {
    EXPECT_TRUE(MapError(Msh("A01", "V", version) + Pid() + Pv1("I", "21")).ok()) << version;
  }
}

// --- AdtProcessor and ACKs ---

class Hl7ProcessorTest : public ::testing::Test {
 protected:
  ProcessorOptions Opts() {
    ProcessorOptions o;
    o.mapper = Options();
    o.identity.facility = "RXK";
    return o;
  }
  FixedClock clock_;
  RecordingSink sink_;
};

std::vector<std::string> Segments(const std::string& ack) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < ack.size()) {
    size_t end = ack.find('\r', pos);
    out.push_back(ack.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

TEST_F(Hl7ProcessorTest, AcceptsOnlyAfterTheSinkPersisted) {
  AdtProcessor processor(Opts(), sink_, clock_);
  ProcessResult r = processor.Process(Msh("A01", "MSG00001") + Evn("A01") + Pid() + Pv1("I", "21"));
  EXPECT_EQ(r.code, AckCode::kAccept);
  EXPECT_EQ(r.events, 1u);
  ASSERT_EQ(sink_.batches().size(), 1u);
  EXPECT_EQ(sink_.batches()[0][0].envelope().event_id(), "MSG00001");
  std::vector<std::string> segs = Segments(r.ack);
  ASSERT_EQ(segs.size(), 2u);
  Result<Message> ack = Message::Parse(r.ack);
  ASSERT_TRUE(ack.ok());
  // Sending and receiving application/facility swapped, same version and processing id.
  EXPECT_EQ(ack->Get("MSH", 3), "CAREHUB");
  EXPECT_EQ(ack->Get("MSH", 4), "RXK");
  EXPECT_EQ(ack->Get("MSH", 5), "PAS");
  EXPECT_EQ(ack->Get("MSH", 6), "RXK01");
  EXPECT_EQ(ack->Get("MSH", 7), "20240320120000+0000");
  EXPECT_EQ(ack->Get("MSH", 9), "ACK");
  EXPECT_EQ(ack->Get("MSH", 9, 0, 2), "A01");
  EXPECT_EQ(ack->Get("MSH", 11), "P");
  EXPECT_EQ(ack->Get("MSH", 12), "2.5.1");
  EXPECT_FALSE(ack->ControlId().empty());
  EXPECT_NE(ack->ControlId(), "MSG00001");
  EXPECT_LE(ack->ControlId().size(), 20u);
  EXPECT_EQ(ack->Get("MSA", 1), "AA");
  EXPECT_EQ(ack->Get("MSA", 2), "MSG00001");
  EXPECT_FALSE(ack->Has("ERR"));
  // A second ACK gets a new control id.
  ProcessResult again =
      processor.Process(Msh("A03", "MSG00002") + Pid() + Pv1("I", "21", "V1", true));
  EXPECT_NE(Message::Parse(again.ack)->ControlId(), ack->ControlId());
}

TEST_F(Hl7ProcessorTest, SinkFailureIsAeAndRetryable) {
  AdtProcessor processor(Opts(), sink_, clock_);
  sink_.set_fail(true);
  const std::string raw = Msh("A01", "MSG00009") + Pid() + Pv1("I", "21");
  ProcessResult r = processor.Process(raw);
  EXPECT_EQ(r.code, AckCode::kError);
  EXPECT_EQ(r.reason, kReasonSinkUnavailable);
  Result<Message> ack = Message::Parse(r.ack);
  ASSERT_TRUE(ack.ok());
  EXPECT_EQ(ack->Get("MSA", 1), "AE");
  EXPECT_EQ(ack->Get("MSA", 2), "MSG00009");
  EXPECT_EQ(ack->Get("ERR", 3), "207");
  EXPECT_EQ(ack->Get("ERR", 5), std::string(kReasonSinkUnavailable));
  EXPECT_TRUE(sink_.batches().empty());
  sink_.set_fail(false);
  EXPECT_EQ(processor.Process(raw).code, AckCode::kAccept);  // the resend succeeds
}

TEST_F(Hl7ProcessorTest, InvalidNhsNumberIsArWithoutIdentifiersV25Err) {
  AdtProcessor processor(Opts(), sink_, clock_);
  ProcessResult r = processor.Process(Msh("A01", "BAD1") + Pid(kBadNhsNumber) + Pv1("I", "21"));
  EXPECT_EQ(r.code, AckCode::kReject);
  EXPECT_EQ(r.reason, kReasonInvalidNhsNumber);
  EXPECT_TRUE(sink_.batches().empty());
  Result<Message> ack = Message::Parse(r.ack);
  ASSERT_TRUE(ack.ok());
  EXPECT_EQ(ack->Get("MSA", 1), "AR");
  EXPECT_EQ(ack->Get("MSA", 2), "BAD1");
  EXPECT_EQ(ack->Get("ERR", 2, 0, 1), "PID");
  EXPECT_EQ(ack->Get("ERR", 2, 0, 3), "3");
  EXPECT_EQ(ack->Get("ERR", 3, 0, 1), "102");
  EXPECT_EQ(ack->Get("ERR", 3, 0, 3), "HL70357");
  EXPECT_EQ(ack->Get("ERR", 4), "E");
  EXPECT_EQ(ack->Get("ERR", 5), "invalid_nhs_number");
  EXPECT_NE(ack->Get("ERR", 8).find("Modulus 11"), std::string::npos);
  for (const char* identifier : {kBadNhsNumber, "SMITH", "JOHN", "RXK1234567", "19800101", "LS1"}) {
    EXPECT_EQ(r.ack.find(identifier), std::string::npos) << identifier;
  }
}

TEST_F(Hl7ProcessorTest, OlderVersionsUseErr1AndMsa3) {
  AdtProcessor processor(Opts(), sink_, clock_);
  ProcessResult r = processor.Process(Msh("A01", "OLD1", "2.3", "RAE01") + Pid() + Pv1("I", "21"));
  EXPECT_EQ(r.reason, kReasonUnknownFacility);
  Result<Message> ack = Message::Parse(r.ack);
  ASSERT_TRUE(ack.ok());
  EXPECT_EQ(ack->Get("MSH", 9, 0, 3), "");  // v2.3 has no message structure component
  EXPECT_EQ(ack->Get("MSH", 12), "2.3");
  EXPECT_EQ(ack->Get("MSA", 1), "AR");
  EXPECT_EQ(ack->Get("MSA", 2), "OLD1");
  EXPECT_NE(ack->Get("MSA", 3).find("sending facility"), std::string::npos);
  EXPECT_EQ(ack->Get("ERR", 1, 0, 1), "MSH");
  EXPECT_EQ(ack->Get("ERR", 1, 0, 3), "4");
  EXPECT_EQ(ack->Get("ERR", 1, 0, 4, 1), "103");
  EXPECT_EQ(ack->Get("ERR", 1, 0, 4, 3), "HL70357");
}

TEST_F(Hl7ProcessorTest, ValidationFailuresAreRejected) {
  AdtProcessor processor(Opts(), sink_, clock_);
  // No patient identifier at all (no NHS number, no local number): there is no patient to speak
  // of. ERR-2 points at PID-3.1, where the mapper looks for both.
  std::string pid = Seg("PID", {{5, "SMITH^JOHN"}});
  ProcessResult r = processor.Process(Msh("A01", "NOID") + pid + Pv1("I", "21"));
  EXPECT_EQ(r.code, AckCode::kReject);
  EXPECT_EQ(r.reason, std::string(kReasonMissingField));
  EXPECT_EQ(Message::Parse(r.ack)->Get("ERR", 3), "101");
  EXPECT_EQ(Message::Parse(r.ack)->Get("ERR", 2, 0, 1), "PID");
  EXPECT_EQ(Message::Parse(r.ack)->Get("ERR", 2, 0, 3), "3");
  EXPECT_EQ(Message::Parse(r.ack)->Get("ERR", 2, 0, 5), "1");
  // A message from the future is refused.
  std::string future = "MSH|^~\\&|PAS|RXK01|CAREHUB|RXK|20250101000000||ADT^A01|FUT|P|2.5\r";
  EXPECT_EQ(processor.Process(future + Pid() + Pv1("I", "21")).reason,
            std::string(kReasonFutureTimestamp));
  EXPECT_TRUE(sink_.batches().empty());
}

TEST_F(Hl7ProcessorTest, UnparseableInputGetsAHeaderlessAr) {
  AdtProcessor processor(Opts(), sink_, clock_);
  ProcessResult r = processor.Process("PID|1||9434765919\r");
  EXPECT_EQ(r.code, AckCode::kReject);
  EXPECT_EQ(r.reason, kReasonMalformedMessage);
  Result<Message> ack = Message::Parse(r.ack);
  ASSERT_TRUE(ack.ok());
  EXPECT_EQ(ack->Get("MSA", 1), "AR");
  EXPECT_EQ(ack->Get("MSA", 2), "");
  EXPECT_EQ(ack->Get("MSH", 12), "2.5");
  EXPECT_EQ(ack->Get("ERR", 3), "100");
  EXPECT_EQ(r.ack.find("9434765919"), std::string::npos);
}

TEST_F(Hl7ProcessorTest, OversizedMessagesAreRejectedWhenTheHeaderIsReadable) {
  AdtProcessor processor(Opts(), sink_, clock_);
  std::optional<ProcessResult> r = processor.RejectOversized(Msh("A01", "BIG1") + "PID|1||94347");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->reason, kReasonMessageTooLarge);
  EXPECT_EQ(Message::Parse(r->ack)->Get("MSA", 2), "BIG1");
  EXPECT_FALSE(processor.RejectOversized("MSH|^~\\&|PAS|RXK01|CAREHUB|RXK|2024").has_value());
  EXPECT_FALSE(processor.RejectOversized(std::string(100, 'x')).has_value());
}

TEST(Hl7RedactionTest, ReplacesEveryKnownIdentifier) {
  v1::Event e;
  v1::Patient* p = e.mutable_envelope()->mutable_patient();
  p->set_nhs_number(kNhsNumber);
  p->set_family_name("SMITH");
  p->set_birth_date("1980-01-01");
  EXPECT_EQ(RedactIdentifiers("nhs 9434765919 name SMITH dob 19800101 / 1980-01-01", {e}),
            "nhs *** name *** dob *** / ***");
}

}  // namespace
}  // namespace carehub::adapters::hl7
