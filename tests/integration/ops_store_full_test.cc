// Operations: a hub whose store cannot write (its filesystem is full) reports not ready, answers
// RETRY instead of acknowledging, logs why, and recovers by itself when space returns, losing
// nothing: the publisher kept every event in its outbox and all of them arrive afterwards.
//
// The hub's data dir is a small tmpfs mounted by the test (the suite runs as root in CI) and filled
// with a ballast file; deleting the ballast is "space returns".

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <set>

#include "harness/raw_publisher.h"
#include "harness/workload.h"
#include "ops_common.h"
#include "scratch_mounts.h"

namespace carehub::itest::ops {
namespace {

constexpr const char* kTmpfsSize = "48m";

// Writes 256 KiB blocks to `file` until the filesystem refuses one; returns the bytes written.
uint64_t FillUntilFull(const std::filesystem::path& file) {
  std::FILE* f = std::fopen(file.c_str(), "wb");
  if (!f) {
    return 0;
  }
  std::string block(256 << 10, 'x');
  uint64_t total = 0;
  // Bounded: the tmpfs is 48 MiB, so 1000 blocks are far more than enough.
  for (int i = 0; i < 1000; ++i) {
    size_t n = std::fwrite(block.data(), 1, block.size(), f);
    if (std::fflush(f) != 0 || n != block.size()) {
      total += n;
      break;
    }
    total += n;
  }
  // Top off with small writes so not even a page is left.
  std::string small(4096, 'y');
  for (int i = 0; i < 256; ++i) {
    if (std::fwrite(small.data(), 1, small.size(), f) != small.size() || std::fflush(f) != 0) {
      break;
    }
  }
  std::fclose(f);
  return total;
}

std::vector<v1::Event> Events(uint64_t seed, const std::string& prefix, size_t n) {
  SyntheticGenerator gen(FixedSyntheticOptions(seed, prefix));
  std::vector<v1::Event> out;
  for (size_t i = 0; i < n; ++i) {
    out.push_back(gen.Next());
  }
  return out;
}

TEST(OpsStoreFull, NotReadyAndRetryWhileFullThenRecoversLosingNothing) {
  ASSERT_EQ(::geteuid(), 0u) << "this test mounts a tmpfs and must run as root (as CI does)";
  auto started = HubProcess::Start(HubOptions("ops-store-full"));
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  auto& hub = *started.value();
  // Move the hub onto a small filesystem of its own: stop, swap the data dir for a tmpfs, restart.
  ASSERT_TRUE(hub.Stop().ok());
  std::filesystem::remove_all(hub.data_dir());
  std::filesystem::create_directories(hub.data_dir());
  auto mount = TmpfsMount::Mount(hub.data_dir(), kTmpfsSize);
  ASSERT_TRUE(mount.ok()) << mount.status().ToString();
  ASSERT_TRUE(hub.Restart().ok());
  const std::string admin = hub.admin_address();
  ASSERT_EQ(HttpGet(admin, "/readyz").status, 200);

  // Phase 1: normal traffic.
  auto phase1 = RunPublish(hub, hub.dir(), 500, 21);
  ASSERT_TRUE(phase1.ok()) << phase1.status().ToString();
  ASSERT_EQ((*phase1)["accepted"].get<int>(), 500);

  // Fill the disk.
  auto ballast = hub.data_dir() / "ballast";
  uint64_t ballast_bytes = FillUntilFull(ballast);
  ASSERT_GT(ballast_bytes, 0u);

  // A raw publisher sees exactly what the hub answers: RETRY for every event, nothing stored.
  auto raw = RawPublisher::Connect(hub.ingest_endpoint());
  ASSERT_TRUE(raw.ok()) << raw.status().ToString();
  auto raw_events = Events(31, "ops-full-raw-", 200);
  // RocksDB may still have room in a preallocated WAL block, so the first batches can succeed;
  // keep publishing (bounded) until the hub refuses one.
  std::vector<v1::Event> refused;
  size_t accepted_while_filling = 0;
  for (int attempt = 0; attempt < 200 && refused.empty(); ++attempt) {
    auto batch = Events(32 + attempt, "ops-full-fill-" + std::to_string(attempt) + "-", 500);
    auto r = (*raw)->Publish(batch, std::chrono::seconds(15));
    ASSERT_TRUE(r.ok()) << r.status().ToString() << (hub.running() ? "" : " (the hub died)")
                        << "; hub log tail:\n"
                        << hub.ReadLog().substr(hub.ReadLog().size() > 2000
                                                    ? hub.ReadLog().size() - 2000
                                                    : 0);
    auto counts = CountResults(r.value());
    accepted_while_filling += counts.accepted;
    if (counts.retry > 0) {
      ASSERT_EQ(counts.retry, batch.size()) << "a refused batch is refused whole";
      refused = batch;
    }
  }
  ASSERT_FALSE(refused.empty()) << "the hub never refused a write on a full filesystem";

  // Not ready, with the reason, in /readyz, the status API, the metrics and the log.
  auto ready = HttpGet(admin, "/readyz");
  EXPECT_EQ(ready.status, 503);
  EXPECT_NE(ready.body.find("store refuses writes"), std::string::npos) << ready.body;
  auto status = nlohmann::json::parse(HttpGet(admin, "/api/v1/status").body);
  EXPECT_FALSE(status["ready"].get<bool>());
  EXPECT_FALSE(status["store_error"].get<std::string>().empty());
  auto samples = ParseSamples(HttpGet(admin, "/metrics").body);
  EXPECT_EQ(SumSamples(samples, "carehub_store_writable"), 0);
  EXPECT_GE(SumSamples(samples, "carehub_store_commit_failures_total"), 1);
  EXPECT_LT(SumSamples(samples, "carehub_store_disk_free_bytes"), 1 << 20);
  EXPECT_NE(hub.ReadLog().find("store refused a write"), std::string::npos);

  // A batch sent during the outage is answered RETRY too (not acknowledged, not lost).
  auto during = (*raw)->Publish(raw_events, std::chrono::seconds(15));
  ASSERT_TRUE(during.ok()) << during.status().ToString();
  EXPECT_EQ(CountResults(during.value()).retry, raw_events.size());

  // Phase 2: the real publisher during the outage. Its events stay in its outbox.
  auto outbox = hub.dir() / "outbox-phase2";
  auto publish = ChildProcess::Spawn(
      {BinaryPath("carehub-publish").string(), "--endpoint", hub.ingest_endpoint(), "--generate",
       "1000", "--seed", "41", "--now-unix", std::to_string(kFixedNowUnix), "--outbox",
       outbox.string(), "--no-sync-outbox", "--timeout", "60"},
      hub.dir() / "publish2.out", hub.dir() / "publish2.err");
  ASSERT_TRUE(publish.ok()) << publish.status().ToString();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_TRUE(publish->running()) << "the publisher finished while the hub could not store";
  EXPECT_EQ(HttpGet(admin, "/readyz").status, 503);

  // Space returns.
  std::filesystem::remove(ballast);
  ASSERT_TRUE(
      WaitFor([&] { return HttpGet(admin, "/readyz").status == 200; }, std::chrono::seconds(20)))
      << "the hub did not become ready after space returned; log:\n"
      << hub.ReadLog();
  EXPECT_NE(hub.ReadLog().find("store accepts writes again"), std::string::npos);

  auto exit = publish->Wait(std::chrono::seconds(60));
  ASSERT_TRUE(exit.has_value()) << "carehub-publish did not finish after recovery";
  EXPECT_TRUE(exit->Exited(0)) << exit->ToString() << ReadFileText(hub.dir() / "publish2.err");
  auto summary = nlohmann::json::parse(ReadFileText(hub.dir() / "publish2.out"), nullptr, false);
  ASSERT_TRUE(summary.is_object()) << ReadFileText(hub.dir() / "publish2.out");
  EXPECT_EQ(summary["accepted"].get<int>(), 1000) << summary.dump();
  EXPECT_EQ(summary["unanswered"].get<int>(), 0);

  // The raw publisher's refused batches are resent and now accepted.
  auto again = (*raw)->Publish(raw_events, std::chrono::seconds(15));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(CountResults(again.value()).accepted, raw_events.size());
  auto refused_again = (*raw)->Publish(refused, std::chrono::seconds(15));
  ASSERT_TRUE(refused_again.ok()) << refused_again.status().ToString();
  EXPECT_EQ(CountResults(refused_again.value()).accepted, refused.size());

  // Nothing lost, nothing twice: every event acknowledged is in the log exactly once.
  raw->reset();
  ASSERT_TRUE(hub.Stop().ok());
  auto store = hub.OpenStore();
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto events = ReadAllEvents(*store.value());
  const size_t expected = 500 + accepted_while_filling + 1000 + raw_events.size() + refused.size();
  EXPECT_EQ(events.size(), expected);
  std::set<std::pair<std::string, std::string>> keys;
  for (const auto& e : events) {
    keys.emplace(e.event.envelope().publisher_ods(), e.event.envelope().event_id());
  }
  EXPECT_EQ(keys.size(), events.size()) << "an event was stored twice";
  for (const auto& e : raw_events) {
    EXPECT_TRUE(keys.count({e.envelope().publisher_ods(), e.envelope().event_id()})) << e.envelope().event_id();
  }
  store.value().reset();
}

}  // namespace
}  // namespace carehub::itest::ops
