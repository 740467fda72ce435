// Hostile input to the running adapters: binary junk on the MLLP port, a 50 MB JSON body to the
// FHIR endpoint, a CSV with a million columns. Each gets a clear error, the adapter keeps serving,
// and a good message sent after each one is accepted and reaches the hub.

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "adapters_support.h"

namespace carehub::itest {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Key = std::pair<std::string, std::string>;

class AdapterHostileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<TempDir>("hostile-adapters");
    auto yaml = DirectCareHubYaml(dir_->path());
    ASSERT_TRUE(yaml.ok()) << yaml.status().ToString();
    auto hub = HubProcess::Start(HubOptions("hostile", yaml.value()));
    ASSERT_TRUE(hub.ok()) << hub.status().ToString();
    hub_ = std::move(hub).value();
  }

  std::unique_ptr<AdapterProcess> Start(const std::string& name, const std::string& kind,
                                        const std::string& target, const std::string& ods,
                                        const std::string& extra = "") {
    auto adapter = AdapterProcess::Start(
        dir_->path(), name, kind, target,
        AdapterYaml(ods, {}, hub_->ingest_endpoint(), dir_->path() / name / "outbox", extra));
    EXPECT_TRUE(adapter.ok()) << adapter.status().ToString();
    return adapter.ok() ? std::move(adapter).value() : nullptr;
  }

  static void ExpectHealthy(AdapterProcess& adapter) {
    EXPECT_TRUE(adapter.running());
    auto health = adapter.AdminGet("/healthz");
    ASSERT_TRUE(health.ok()) << health.status().ToString();
    EXPECT_EQ(health->first, 200);
  }

  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<HubProcess> hub_;
};

// Random bytes without the MLLP block characters, so the test decides where frames are.
std::string Junk(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  for (char& c : out) {
    do {
      c = static_cast<char>(rng() & 0xFF);
    } while (c == 0x0B || c == 0x1C);
  }
  return out;
}

TEST_F(AdapterHostileTest, MllpSurvivesBinaryJunkAndKeepsAcceptingGoodMessages) {
  auto adapter = Start("rxk", "hl7", "127.0.0.1:0", "RXK", "hl7:\n  max_message_bytes: 1048576\n");
  ASSERT_NE(adapter, nullptr);
  const AdapterEndpoints ep = adapter->endpoints();

  // 1. Unframed junk is discarded (nothing to answer), then a good message on the same
  //    connection is accepted.
  auto pas = MllpClient::Connect(ep.listen_host, ep.listen_port);
  ASSERT_TRUE(pas.ok()) << pas.status().ToString();
  ASSERT_TRUE(pas.value()->SendRaw(Junk(256 * 1024, 1)).ok());
  auto ack = pas.value()->Send(AdtMessage("A01", "HOST-1", "RXK"), seconds(10));
  ASSERT_TRUE(ack.ok()) << ack.status().ToString();
  EXPECT_EQ(ParseAck(ack.value()).code, "AA") << ack.value();

  // 2. Junk inside a frame: an AR (no readable MSH, so MSA-2 is empty), then a good message.
  auto junk_ack = pas.value()->Send(Junk(64 * 1024, 2), seconds(10));
  ASSERT_TRUE(junk_ack.ok()) << junk_ack.status().ToString();
  const ParsedAck parsed = ParseAck(junk_ack.value());
  EXPECT_EQ(parsed.code, "AR") << parsed.text;
  EXPECT_EQ(parsed.control_id, "");
  EXPECT_NE(parsed.text.find("malformed_message"), std::string::npos) << parsed.text;
  ack = pas.value()->Send(AdtMessage("A01", "HOST-2", "RXK"), seconds(10));
  ASSERT_TRUE(ack.ok()) << ack.status().ToString();
  EXPECT_EQ(ParseAck(ack.value()).code, "AA") << ack.value();

  // 3. A frame of junk over the size limit: no MSH to answer, so the connection is closed; a new
  //    connection is served.
  auto flood = MllpClient::Connect(ep.listen_host, ep.listen_port);
  ASSERT_TRUE(flood.ok());
  std::string huge = "\x0B" + Junk(2 * 1024 * 1024, 3) + "\x1C\x0D";
  (void)flood.value()->SendRaw(huge);  // the adapter may close before reading it all
  auto after_flood = flood.value()->ReadFrame(seconds(10));
  ASSERT_TRUE(after_flood.ok() || after_flood.status().code() == "recv_failed");
  if (after_flood.ok()) {
    EXPECT_FALSE(after_flood.value().has_value()) << "expected the connection closed";
  }
  auto fresh = MllpClient::Connect(ep.listen_host, ep.listen_port);
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  ack = fresh.value()->Send(AdtMessage("A01", "HOST-3", "RXK"), seconds(10));
  ASSERT_TRUE(ack.ok()) << ack.status().ToString();
  EXPECT_EQ(ParseAck(ack.value()).code, "AA") << ack.value();

  ExpectHealthy(*adapter);
  auto junk = adapter->Metric("carehub_adapter_source_mllp_junk_bytes_total");
  ASSERT_TRUE(junk.has_value());
  EXPECT_GE(*junk, 256.0 * 1024);
  EXPECT_EQ(adapter->Metric("carehub_adapter_rejected_total{reason=\"malformed_message\"}"), 1.0);

  auto events = ReadEvents(hub_->subscribe_endpoint(), 3, seconds(20));
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  EXPECT_EQ(events->size(), 3u);
  for (const char* id : {"HOST-1", "HOST-2", "HOST-3"}) {
    EXPECT_NE(events->find(Key{"RXK", id}), events->end()) << id;
  }
  auto stopped = adapter->Stop();
  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  EXPECT_TRUE(stopped->Exited(0));
}

nlohmann::json GoodEncounter(const std::string& id) {
  return {
      {"resourceType", "Encounter"},
      {"id", id},
      {"status", "finished"},
      {"class", {{"code", "HH"}}},
      {"subject",
       {{"identifier", {{"system", "https://fhir.nhs.uk/Id/nhs-number"}, {"value", kNhsNumber}}}}},
      {"period", {{"start", "2024-06-03T10:00:00Z"}, {"end", "2024-06-03T10:30:00Z"}}}};
}

TEST_F(AdapterHostileTest, FhirRefusesA50MbBodyAndKeepsServing) {
  auto adapter = Start("ry6", "fhir", "127.0.0.1:0", "RY6");
  ASSERT_NE(adapter, nullptr);
  const AdapterEndpoints ep = adapter->endpoints();

  // 50 MB of valid-looking JSON: an Encounter padded with a huge string.
  nlohmann::json big = GoodEncounter("big");
  big["text"] = {{"status", "generated"}, {"div", std::string(50 * 1024 * 1024, 'x')}};
  auto answer = HttpSend("POST", ep.listen_host, ep.listen_port, "/fhir/Encounter", big.dump(),
                         "application/fhir+json");
  // The adapter answers 413 from the Content-Length without reading the body; a client still
  // writing may see the connection closed first. Either way nothing was published and the
  // adapter counted a 413.
  if (answer.ok()) {
    EXPECT_EQ(answer->first, 413) << answer->second.substr(0, 200);
    EXPECT_NE(answer->second.find("OperationOutcome"), std::string::npos);
  }
  EXPECT_EQ(adapter->Metric("carehub_adapter_rejected_total{reason=\"http_413\"}"), 1.0);

  auto good = HttpSend("POST", ep.listen_host, ep.listen_port, "/fhir/Encounter",
                       GoodEncounter("small").dump(), "application/fhir+json");
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_EQ(good->first, 201) << good->second;
  ExpectHealthy(*adapter);

  auto events = ReadEvents(hub_->subscribe_endpoint(), 1, seconds(20));
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ(events->begin()->first.first, "RY6");
  EXPECT_EQ(events->begin()->first.second.rfind("Encounter/small/_history/", 0), 0u);
  auto stopped = adapter->Stop();
  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  EXPECT_TRUE(stopped->Exited(0));
}

bool WaitForFile(const std::filesystem::path& path, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (std::filesystem::exists(path)) {
      return true;
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
  return false;
}

void DropFile(const std::filesystem::path& dir, const std::string& name,
              const std::string& content) {
  const std::filesystem::path tmp = dir / (name + ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary);
    out << content;
  }
  std::filesystem::rename(tmp, dir / name);
}

TEST_F(AdapterHostileTest, CsvWithAMillionColumnsIsRefusedAndTheNextFileIsRead) {
  const std::filesystem::path drop = dir_->path() / "drop";
  auto adapter = Start("m85001", "csv", drop.string(), "M85001", "csv:\n  poll_interval_ms: 100\n");
  ASSERT_NE(adapter, nullptr);

  std::string wide;
  wide.reserve(8 * 1024 * 1024);
  for (int i = 0; i < 1'000'000; ++i) {
    wide += (i ? ",c" : "c") + std::to_string(i);
  }
  wide += "\n";
  for (int i = 0; i < 1'000'000; ++i) {
    wide += i ? ",1" : "1";
  }
  wide += "\n";
  DropFile(drop, "wide.csv", wide);
  ASSERT_TRUE(WaitForFile(drop / "error" / "wide.csv.errors.json", seconds(30)));
  const std::string report = ReadFileText(drop / "error" / "wide.csv.errors.json");
  auto json = nlohmann::json::parse(report, nullptr, false);
  ASSERT_FALSE(json.is_discarded()) << report.substr(0, 500);
  EXPECT_TRUE(json.contains("file_error")) << report.substr(0, 500);
  EXPECT_EQ(json.value("rows_published", -1), 0);

  DropFile(drop, "good.csv",
           "record_id,nhs_number,contact_type,appointment_start\n"
           "G1,9434765919,gp_consultation,2024-07-02 08:00\n");
  ASSERT_TRUE(WaitForFile(drop / "done" / "good.csv", seconds(20)));
  ExpectHealthy(*adapter);

  auto events = ReadEvents(hub_->subscribe_endpoint(), 1, seconds(20));
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ(events->begin()->first, (Key{"M85001", "csv/activity/G1"}));
  auto stopped = adapter->Stop();
  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  EXPECT_TRUE(stopped->Exited(0));
}

}  // namespace
}  // namespace carehub::itest
