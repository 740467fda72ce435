// The daemon's edges: a bad config is refused with one line on stderr; SIGTERM mid-stream exits 0
// with every acknowledged event stored; the carehub-publish tool's summary adds up and agrees with
// the store.

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "harness/hub_process.h"
#include "harness/raw_publisher.h"
#include "harness/workload.h"

namespace carehub::itest {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

struct BadConfigCase {
  const char* name;
  const char* extra_yaml;
  // Every one of these must appear in the single stderr line.
  std::vector<std::string> expected;
};

// gtest prints the parameter in test names and ctest entries: the case name, not its bytes.
void PrintTo(const BadConfigCase& c, std::ostream* os) { *os << c.name; }

class BadConfigTest : public ::testing::TestWithParam<BadConfigCase> {};

TEST_P(BadConfigTest, ExitsNonZeroWithOneLineNamingTheProblem) {
  TempDir dir("bad-config");
  HubProcessOptions options;
  options.extra_yaml = GetParam().extra_yaml;
  auto yaml = HubProcess::ConfigYaml(dir.path(), options);
  ASSERT_TRUE(yaml.ok()) << yaml.status().ToString();
  auto config = dir.path() / "hub.yaml";
  std::ofstream(config) << yaml.value();

  auto run = RunCommand({BinaryPath("carehub").string(), "--config", config.string()}, dir.path(),
                        seconds(20));
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  ASSERT_TRUE(run->status.exit_code.has_value()) << run->status.ToString();
  EXPECT_NE(*run->status.exit_code, 0);
  const std::string& err = run->err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << "stderr:\n" << err;
  EXPECT_TRUE(!err.empty() && err.back() == '\n') << "stderr:\n" << err;
  for (const auto& want : GetParam().expected) {
    EXPECT_NE(err.find(want), std::string::npos) << "'" << want << "' not in: " << err;
  }
  // Refused before anything was opened or bound.
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "data" / "endpoints.json"));
}

INSTANTIATE_TEST_SUITE_P(
    Configs, BadConfigTest,
    ::testing::Values(
        BadConfigCase{"UnknownKey", "hub:\n  dat_dir: /tmp/x\n", {"unknown key 'dat_dir'", "hub"}},
        BadConfigCase{"UnknownSection",
                      "ingestion:\n  endpoint: tcp://127.0.0.1:0\n",
                      {"unknown key 'ingestion'"}},
        BadConfigCase{
            "BadDurability", "hub:\n  durability: sometimes\n", {"hub.durability", "'sometimes'"}},
        BadConfigCase{"NonLoopbackPlainEndpoint",
                      "ingest:\n  endpoint: tcp://0.0.0.0:0\n",
                      {"ingest.endpoint", "non-loopback"}},
        BadConfigCase{
            "WrongType", "ingest:\n  max_frame_bytes: lots\n", {"ingest.max_frame_bytes"}}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(HubLifecycleTest, MissingConfigFileExitsNonZeroWithOneLine) {
  TempDir dir("no-config");
  auto run = RunCommand(
      {BinaryPath("carehub").string(), "--config", (dir.path() / "absent.yaml").string()},
      dir.path(), seconds(20));
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  EXPECT_FALSE(run->status.Exited(0)) << run->status.ToString();
  EXPECT_EQ(std::count(run->err.begin(), run->err.end(), '\n'), 1) << run->err;
  EXPECT_NE(run->err.find("absent.yaml"), std::string::npos) << run->err;
}

TEST(HubLifecycleTest, SigtermDuringStreamExitsZeroAndKeepsEveryAcceptedEvent) {
  WorkloadOptions wo;
  wo.seed = 15;
  wo.id_prefix = "term-";
  wo.events = 60'000;
  Workload w = MakeWorkload(wo);

  auto hub = HubProcess::Start(HubOptions("sigterm"));
  ASSERT_TRUE(hub.ok()) << hub.status().ToString();
  auto& h = *hub.value();
  auto pub = RawPublisher::Connect(h.ingest_endpoint(),
                                   RawPublisherOptions::WithSendTimeout(milliseconds(200)));
  ASSERT_TRUE(pub.ok()) << pub.status().ToString();

  std::atomic<size_t> answered{0};
  std::atomic<bool> stop{false};
  Result<StreamReport> stream = Status::Error("not_run", "");
  std::thread publisher([&] {
    stream = StreamUntilStopped(*pub.value(), w.events, 500, 8, stop, &answered, seconds(90));
  });
  auto deadline = std::chrono::steady_clock::now() + seconds(60);
  while (answered.load() < 30 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  h.Signal(SIGTERM);
  stop.store(true);
  auto exited = h.Wait(seconds(30));
  publisher.join();
  ASSERT_TRUE(exited.has_value()) << "the hub did not exit within 30 s of SIGTERM";
  EXPECT_TRUE(exited->Exited(0)) << exited->ToString() << "\n" << h.ReadLog();
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  ASSERT_LT(stream->sent_events, w.events.size()) << "SIGTERM came after the stream ended";
  EXPECT_NE(h.ReadLog().find("hub stopped"), std::string::npos) << h.ReadLog();

  auto store = h.OpenStore();
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  size_t accepted = 0;
  size_t missing = 0;
  for (const auto& [i, r] : stream->answers) {
    ASSERT_EQ(r.status(), v1::EventResult::ACCEPTED) << "event " << i << " " << r.reason();
    ++accepted;
    auto e = MustRead(store.value()->events().Get(r.hub_seq()), "event");
    if (!e || e->envelope().event_id() != w.events[i].envelope().event_id()) {
      ++missing;
    }
  }
  EXPECT_GE(accepted, 30u * 500);
  EXPECT_EQ(missing, 0u);
  // Nothing beyond what was sent, nothing twice.
  auto stored = ReadAllEvents(*store.value());
  EXPECT_GE(stored.size(), accepted);
  EXPECT_LE(stored.size(), stream->sent_events);
  std::set<std::string> ids;
  for (const auto& s : stored) {
    EXPECT_TRUE(ids.insert(s.event.envelope().event_id()).second);
  }
}

// Runs carehub-publish once and returns its JSON summary.
Result<nlohmann::json> RunPublishTool(const HubProcess& hub, const std::filesystem::path& outbox) {
  auto run = RunCommand(
      {BinaryPath("carehub-publish").string(), "--endpoint", hub.ingest_endpoint(), "--generate",
       "20000", "--duplicate-ratio", "0.1", "--invalid-ratio", "0.01", "--seed", "5", "--now-unix",
       std::to_string(kFixedNowUnix), "--outbox", outbox.string(), "--timeout", "60"},
      hub.dir(), seconds(90));
  if (!run.ok()) {
    return run.status();
  }
  if (!run->status.Exited(0)) {
    return Status::Error("publish_failed", "carehub-publish " + run->status.ToString() +
                                               "; stderr: " + run->err + "; stdout: " + run->out);
  }
  if (std::count(run->out.begin(), run->out.end(), '\n') != 1) {
    return Status::Error("bad_output", "expected one line on stdout, got: " + run->out);
  }
  auto json = nlohmann::json::parse(run->out, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return Status::Error("bad_output", "stdout is not JSON: " + run->out);
  }
  return json;
}

TEST(HubLifecycleTest, PublishToolSummaryAddsUpAndMatchesTheStore) {
  auto hub = HubProcess::Start(HubOptions("publish-tool"));
  ASSERT_TRUE(hub.ok()) << hub.status().ToString();
  auto& h = *hub.value();

  auto first = RunPublishTool(h, h.dir() / "outbox-1");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  const auto& s = first.value();
  const uint64_t sent = s.at("sent");
  const uint64_t accepted = s.at("accepted");
  const uint64_t duplicate = s.at("duplicate");
  const uint64_t rejected = s.at("rejected");
  const uint64_t conflict = s.at("conflict");
  EXPECT_EQ(sent, 20'000u);
  EXPECT_EQ(sent, accepted + duplicate + rejected + conflict) << s.dump();
  EXPECT_EQ(s.at("unanswered").get<uint64_t>(), 0u) << s.dump();
  EXPECT_GT(duplicate, 1'500u) << s.dump();
  EXPECT_GT(rejected, 100u) << s.dump();
  uint64_t by_reason = 0;
  for (const auto& [reason, n] : s.at("rejected_by_reason").items()) {
    by_reason += n.get<uint64_t>();
  }
  EXPECT_EQ(by_reason, rejected + conflict) << s.dump();

  // A second, independent run of the same events (fresh outbox): every valid event is now a
  // DUPLICATE, so the hub's view must reproduce the first run's split.
  auto second = RunPublishTool(h, h.dir() / "outbox-2");
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  const auto& s2 = second.value();
  EXPECT_EQ(s2.at("accepted").get<uint64_t>(), 0u) << s2.dump();
  EXPECT_EQ(s2.at("duplicate").get<uint64_t>(), accepted + duplicate) << s2.dump();
  EXPECT_EQ(s2.at("rejected").get<uint64_t>(), rejected) << s2.dump();
  EXPECT_EQ(s2.at("rejected_by_reason"), s.at("rejected_by_reason")) << s2.dump();

  // And the store agrees: `accepted` events stored, every rejection of both runs quarantined.
  auto stopped = h.Stop();
  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  EXPECT_TRUE(stopped.value().Exited(0)) << stopped.value().ToString();
  auto store = h.OpenStore();
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ(ReadAllEvents(*store.value()).size(), accepted);
  std::map<std::string, uint64_t> quarantined_by_reason;
  auto quarantine = ReadAllQuarantine(*store.value());
  EXPECT_EQ(quarantine.size(), 2 * (rejected + conflict));
  for (const auto& q : quarantine) {
    ++quarantined_by_reason[q.reason()];
  }
  for (const auto& [reason, n] : s.at("rejected_by_reason").items()) {
    EXPECT_EQ(quarantined_by_reason[reason], 2 * n.get<uint64_t>()) << reason;
  }
}

}  // namespace
}  // namespace carehub::itest
