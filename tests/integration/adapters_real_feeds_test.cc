// Issue 21 end to end: real-shaped messages sent as a trust's PAS and an NHS 111 / community FHIR
// system send them, through the real `carehub-adapter` processes, into the real `carehub` daemon
// (RocksDB store, ZeroMQ on loopback), read back through a direct-care and a secondary-use
// subscription (carehub::client::Subscriber). Checks each exact answer (ACK fields, HTTP status
// and body), the stored event as direct care receives it, and that secondary use receives every
// event with no identifier (the unidentified patient with no pseudonym at all).

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "adapters_support.h"

namespace carehub::itest {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Key = std::pair<std::string, std::string>;

constexpr char kSecondaryUse[] = "itest-research";

// Direct care (identifiable) and secondary use (pseudonymised, opt-out applied) over every source.
Result<std::string> TwoPurposeHubYaml(const std::filesystem::path& dir) {
  std::ofstream(dir / "pseudonym.key")
      << "8f1c2e4a6b8d0f1e3c5a7b9d1f2e4c6a8b0d2f4e6c8a0b2d4f6e8c0a2b4d6f8e\n";
  std::ofstream(dir / "national-opt-out.txt") << "9999999484\n";
  std::ofstream out(dir / "agreements.yaml");
  out << "subscribers:\n"
         "  - id: itest-provider\n"
         "    subscriptions:\n"
         "      - {id: "
      << kDirectCareSubscription
      << ", purpose: direct_care}\n"
         "  - id: itest-ics\n"
         "    subscriptions:\n"
         "      - {id: "
      << kSecondaryUse
      << ", purpose: secondary_use}\n"
         "agreements:\n"
         "  - id: DSA-ITEST-DIRECT-001\n"
         "    subscriber: itest-provider\n"
         "    purpose: direct_care\n"
         "    legal_basis: \"UK GDPR Art 6(1)(e) and 9(2)(h); integration test\"\n"
         "    valid_from: 2020-01-01\n"
         "    valid_until: 2099-12-31\n"
         "    sources: [\"*\"]\n"
         "    event_types: [\"*\"]\n"
         "    patient_fields: identifiable\n"
         "  - id: DSA-ITEST-ICS-001\n"
         "    subscriber: itest-ics\n"
         "    purpose: secondary_use\n"
         "    legal_basis: \"UK GDPR Art 6(1)(e) and 9(2)(h); integration test\"\n"
         "    valid_from: 2020-01-01\n"
         "    valid_until: 2099-12-31\n"
         "    sources: [\"*\"]\n"
         "    event_types: [\"*\"]\n"
         "    patient_fields: pseudonymised\n"
         "pseudonymisation:\n"
         "  secret_file: pseudonym.key\n"
         "opt_out:\n"
         "  file: national-opt-out.txt\n";
  if (!out.flush()) {
    return Status::Error("write_failed", "cannot write agreements.yaml");
  }
  return "policy:\n  agreements: " + (dir / "agreements.yaml").string() + "\n";
}

// The value of an ER7 field ("MSA", 2) in a CR-separated answer; components not split.
std::string Field(const std::string& message, const std::string& segment, int field) {
  size_t pos = message.find(segment + "|");
  while (pos != std::string::npos && pos != 0 && message[pos - 1] != '\r') {
    pos = message.find(segment + "|", pos + 1);
  }
  if (pos == std::string::npos) {
    return {};
  }
  std::string line = message.substr(pos, message.find('\r', pos) - pos);
  // MSH-1 is the separator itself: MSH-n is piece n-1.
  const int piece = segment == "MSH" ? field - 1 : field;
  size_t start = 0;
  for (int i = 0; i < piece; ++i) {
    start = line.find('|', start);
    if (start == std::string::npos) {
      return {};
    }
    ++start;
  }
  return line.substr(start, line.find('|', start) - start);
}

const std::string kMsh = "MSH|^~\\&|PAS|RXK01|CAREHUB|RXK|20240315103000||";
const std::string kEvn = "EVN|A04|20240315103000\r";
const std::string kEdPv1 = "PV1|1|E|ED^MAJ^3^RXK01||||||||||||||||V7001\r";

struct Sent {
  std::string name;
  std::string message;
  std::string ack_code;
};

TEST(AdapterRealFeedsTest, RealShapedMessagesAreKeptFlaggedAndRedactedForSecondaryUse) {
  TempDir dir("real-feeds-adapters");
  auto yaml = TwoPurposeHubYaml(dir.path());
  ASSERT_TRUE(yaml.ok()) << yaml.status().ToString();
  auto hub_started = HubProcess::Start(HubOptions("real-feeds", yaml.value()));
  ASSERT_TRUE(hub_started.ok()) << hub_started.status().ToString();
  std::unique_ptr<HubProcess> hub = std::move(hub_started).value();

  auto hl7 = AdapterProcess::Start(
      dir.path(), "rxk-hl7", "hl7", "127.0.0.1:0",
      AdapterYaml("RXK", {"RXK01"}, hub->ingest_endpoint(), dir.path() / "rxk-hl7" / "outbox"));
  ASSERT_TRUE(hl7.ok()) << hl7.status().ToString();
  auto fhir = AdapterProcess::Start(
      dir.path(), "rxk-fhir", "fhir", "127.0.0.1:0",
      AdapterYaml("RXK", {"RXK01"}, hub->ingest_endpoint(), dir.path() / "rxk-fhir" / "outbox"));
  ASSERT_TRUE(fhir.ok()) << fhir.status().ToString();

  auto client = MllpClient::Connect(hl7.value()->endpoints().listen_host,
                                    hl7.value()->endpoints().listen_port);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  MllpClient& pas = *client.value();

  const std::vector<Sent> sent = {
      {"overseas visitor",
       kMsh + "ADT^A04^ADT_A01|RF-OVERSEAS|P|2.5.1\r" + kEvn +
           "PID|1||9434765919^^^NHS^NH~RXK7654321^^^RXK^MR||DUPONT^MARIE^^^MME^^L||19750612|F|||"
           "12 RUE DE LA PAIX^^PARIS^^75002^FRA^H\r" +
           kEdPv1,
       "AA"},
      {"unidentified",
       kMsh + "ADT^A04^ADT_A01|RF-UNIDENTIFIED|P|2.5.1\r" + kEvn +
           "PID|1||RXKU0042^^^RXK^MR||UNKNOWN^MALE|||M||||||||||||||||||||||||03\r" + kEdPv1,
       "AA"},
      {"non-ODS practice",
       kMsh + "ADT^A04^ADT_A01|RF-PD1|P|2.5.1\r" + kEvn +
           "PID|1||9434765919^^^NHS^NH||SMITH^JOHN||19800101|M|||^^LEEDS^^LS1 4AP\r"
           "PD1|||LEEDS MEDICAL PRACTICE^^^^^^^^^GP-LEEDS-12\r" +
           kEdPv1,
       "AA"},
      {"ISO 8859-1",
       kMsh + "ADT^A04^ADT_A01|RF-LATIN1|P|2.5.1||||||8859/1\r" + kEvn +
           "PID|1||9434765919^^^NHS^NH||GARC\xCD"
           "A^JOS\xC9||19800101|M|||^^LEEDS^^LS1 4AP\r" +
           kEdPv1,
       "AA"},
      {"referral I12",
       "MSH|^~\\&|ERS|RXK01|CAREHUB|RXK|20240315103000||REF^I12^REF_I12|RF-REF|P|2.5.1\r"
       "RF1|P|R|300||O|RXK-REF-9|20240315||20240315100000|R07.4^Chest pain^I10|000012345678\r"
       "PRD|RP|JONES^ANNA|||||B86001\r"
       "PRD|RT|ACUTE MEDICINE|||||RXK\r"
       "PID|1||9434765919^^^NHS^NH||SMITH^JOHN||19800101|M\r",
       "AA"},
      {"unusual MSH-2",
       "MSH|^~\\|PAS|RXK01|CAREHUB|RXK|20240315103000||ADT^A04^ADT_A01|RF-ODD|P|2.5.1\r" + kEvn +
           "PID|1||9434765919^^^NHS^NH\r" + kEdPv1,
       "AR"},
  };
  for (const Sent& s : sent) {
    auto ack = pas.Send(s.message, seconds(10));
    ASSERT_TRUE(ack.ok()) << s.name << ": " << ack.status().ToString();
    EXPECT_EQ(Field(ack.value(), "MSA", 1), s.ack_code) << s.name << ": " << ack.value();
    // Every answer matches its message: MSA-2 = MSH-10, MSH-5/6 = the sender's MSH-3/4.
    EXPECT_EQ(Field(ack.value(), "MSA", 2), Field(s.message, "MSH", 10)) << s.name;
    EXPECT_EQ(Field(ack.value(), "MSH", 5), Field(s.message, "MSH", 3)) << s.name;
    EXPECT_EQ(Field(ack.value(), "MSH", 6), "RXK01") << s.name;
    EXPECT_EQ(Field(ack.value(), "MSH", 12), "2.5.1") << s.name;
    if (s.ack_code == "AR") {
      EXPECT_EQ(Field(ack.value(), "ERR", 2), "MSH^1^2") << ack.value();
      EXPECT_EQ(Field(ack.value(), "ERR", 3), "102^Data type error^HL70357") << ack.value();
    }
  }

  // FHIR: a UK Core emergency admission (admission method 21 on Encounter.hospitalization) as
  // XML, and a BaRS 111 -> ED message with supporting resources carehub does not model.
  const std::string admission_xml =
      "<Encounter xmlns=\"http://hl7.org/fhir\"><id value=\"uk-enc-9\"/>"
      "<meta><versionId value=\"1\"/></meta>"
      "<contained><Patient><id value=\"p\"/><identifier>"
      "<system value=\"https://fhir.nhs.uk/Id/nhs-number\"/><value value=\"9434765919\"/>"
      "</identifier></Patient></contained>"
      "<status value=\"in-progress\"/><class><code value=\"IMP\"/></class>"
      "<subject><reference value=\"#p\"/></subject>"
      "<period><start value=\"2024-03-01T09:30:00Z\"/></period>"
      "<hospitalization><extension "
      "url=\"https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-AdmissionMethod\">"
      "<valueCodeableConcept><coding><code value=\"21\"/></coding></valueCodeableConcept>"
      "</extension></hospitalization></Encounter>";
  const AdapterEndpoints fep = fhir.value()->endpoints();
  auto admitted = HttpSend("POST", fep.listen_host, fep.listen_port, "/fhir/Encounter",
                           admission_xml, "application/fhir+xml");
  ASSERT_TRUE(admitted.ok()) << admitted.status().ToString();
  EXPECT_EQ(admitted->first, 201) << admitted->second;
  EXPECT_EQ(nlohmann::json::parse(admitted->second),
            nlohmann::json::parse(R"({"event_ids":["Encounter/uk-enc-9/_history/1"]})"));

  const nlohmann::json bars = {
      {"resourceType", "Bundle"},
      {"type", "message"},
      {"timestamp", "2024-03-03T08:05:00+00:00"},
      {"entry",
       {{{"fullUrl", "urn:uuid:mh"},
         {"resource",
          {{"resourceType", "MessageHeader"},
           {"eventCoding",
            {{"system", "https://fhir.nhs.uk/CodeSystem/message-events-bars"},
             {"code", "servicerequest-request"}}}}}},
        {{"fullUrl", "urn:uuid:sr"},
         {"resource",
          {{"resourceType", "ServiceRequest"},
           {"id", "bars-sr-1"},
           {"status", "active"},
           {"intent", "order"},
           {"subject",
            {{"identifier",
              {{"system", "https://fhir.nhs.uk/Id/nhs-number"}, {"value", "9434765919"}}}}},
           {"requester",
            {{"identifier",
              {{"system", "https://fhir.nhs.uk/Id/ods-organization-code"}, {"value", "NLO"}}}}},
           {"performer",
            {{{"identifier",
               {{"system", "https://fhir.nhs.uk/Id/ods-organization-code"},
                {"value", "RXK"}}}}}}}}},
        {{"fullUrl", "urn:uuid:hs"},
         {"resource", {{"resourceType", "HealthcareService"}, {"id", "hs"}}}},
        {{"fullUrl", "urn:uuid:flag"}, {"resource", {{"resourceType", "Flag"}, {"id", "f"}}}}}}};
  auto referred = HttpSend("POST", fep.listen_host, fep.listen_port, "/fhir/$process-message",
                           bars.dump(), "application/fhir+json");
  ASSERT_TRUE(referred.ok()) << referred.status().ToString();
  EXPECT_EQ(referred->first, 201) << referred->second;
  const nlohmann::json referred_body = nlohmann::json::parse(referred->second);
  ASSERT_EQ(referred_body["notes"]["issue"].size(), 2u) << referred->second;
  EXPECT_EQ(referred_body["notes"]["issue"][0]["diagnostics"],
            "HealthcareService is not mapped by carehub and was ignored");

  // Direct care: 5 HL7 events + 2 FHIR events, identifiable, flags with their raw values.
  auto direct = ReadEvents(hub->subscribe_endpoint(), 7, seconds(30));
  ASSERT_TRUE(direct.ok()) << direct.status().ToString();
  ASSERT_EQ(direct->size(), 7u);
  const v1::Event& overseas = direct->at(Key{"RXK", "RF-OVERSEAS"});
  EXPECT_EQ(overseas.envelope().patient().postcode(), "");
  ASSERT_EQ(overseas.envelope().data_quality_size(), 1);
  EXPECT_EQ(overseas.envelope().data_quality(0).problem(), "not_uk_postcode");
  EXPECT_EQ(overseas.envelope().data_quality(0).raw_value(), "75002");
  const v1::Event& unidentified = direct->at(Key{"RXK", "RF-UNIDENTIFIED"});
  EXPECT_EQ(unidentified.envelope().patient().nhs_number(), "");
  EXPECT_EQ(unidentified.envelope().patient().nhs_number_status(), "03");
  EXPECT_EQ(unidentified.envelope().patient().local_mrn(), "RXKU0042");
  EXPECT_EQ(unidentified.envelope().patient().mrn_assigning_ods(), "RXK");
  const v1::Event& pd1 = direct->at(Key{"RXK", "RF-PD1"});
  EXPECT_EQ(pd1.envelope().patient().registered_gp_ods(), "");
  EXPECT_EQ(pd1.envelope().data_quality(0).raw_value(), "GP-LEEDS-12");
  EXPECT_EQ(direct->at(Key{"RXK", "RF-LATIN1"}).envelope().patient().family_name(),
            "GARC\xC3\x8D"
            "A");
  const v1::Event& referral = direct->at(Key{"RXK", "RF-REF"});
  EXPECT_EQ(referral.referral().referral_id(), "RXK-REF-9");
  EXPECT_EQ(referral.referral().status(), v1::REFERRAL_STATUS_SENT);
  const v1::Event& admission = direct->at(Key{"RXK", "Encounter/uk-enc-9/_history/1"});
  EXPECT_EQ(admission.activity().kind(), v1::ACTIVITY_KIND_EMERGENCY_ADMISSION);
  EXPECT_EQ(admission.activity().admission_method(), "21");
  EXPECT_EQ(direct->count(Key{"RXK", "RF-ODD"}), 0u);

  // Secondary use: the same 7 events, none carrying an identifier; the unidentified patient has
  // no pseudonym at all, the others the agreement's 64-hex-digit pseudonym.
  auto research = ReadEventsFrom(hub->subscribe_endpoint(), kSecondaryUse, 7, seconds(30));
  ASSERT_TRUE(research.ok()) << research.status().ToString();
  ASSERT_EQ(research->size(), 7u);
  for (const auto& [key, event] : research.value()) {
    const v1::Patient& p = event.envelope().patient();
    EXPECT_EQ(p.nhs_number(), "") << key.second;
    EXPECT_EQ(p.local_mrn(), "") << key.second;
    EXPECT_EQ(p.mrn_assigning_ods(), "") << key.second;
    EXPECT_EQ(p.given_name(), "") << key.second;
    EXPECT_EQ(p.family_name(), "") << key.second;
    EXPECT_EQ(p.address(), "") << key.second;
    for (const v1::DataQualityFlag& flag : event.envelope().data_quality()) {
      EXPECT_EQ(flag.raw_value(), "") << key.second;
    }
    if (key.second == "RF-UNIDENTIFIED") {
      EXPECT_EQ(p.pseudonym(), "");
      EXPECT_EQ(p.nhs_number_status(), "03");
    } else {
      EXPECT_TRUE(std::regex_match(p.pseudonym(), std::regex("[0-9a-f]{64}"))) << key.second;
    }
  }
  EXPECT_EQ(research->at(Key{"RXK", "RF-OVERSEAS"}).envelope().patient().birth_date(), "1975-06");

  // The HL7 adapter measured its own feed: 5 events, 4 with a verified NHS number.
  EXPECT_EQ(hl7.value()->Metric("carehub_adapter_source_dq_events_total"), 5.0);
  EXPECT_EQ(hl7.value()->Metric("carehub_adapter_source_dq_verified_nhs_number_total"), 4.0);
  EXPECT_EQ(hl7.value()->Metric("carehub_adapter_source_dq_flags_total"), 2.0);
}

}  // namespace
}  // namespace carehub::itest
