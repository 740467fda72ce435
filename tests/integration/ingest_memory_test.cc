// The dedup index lives in RocksDB, not in the hub's heap (DESIGN §4: "memory does not grow with
// the index"). Publish 600k unique events and compare the hub's RSS after 200k and after 600k.

#include <gtest/gtest.h>

#include <cstdio>

#include "harness/hub_process.h"
#include "harness/raw_publisher.h"
#include "harness/workload.h"

namespace carehub::itest {
namespace {

using std::chrono::seconds;

constexpr uint64_t kMiB = 1 << 20;

// The bound on RSS growth between 200k and 600k stored events, and why it holds when the index is
// on disk. Store::Open (as hub.cc calls it) gives each column family a 64 MiB write buffer (events
// 128 MiB) and a 256 MiB block cache that ingest barely reads (dedup lookups of new keys are
// answered by bloom filters). The memtables fill at ~45 MB per 100k events (events ~35 MB, dedup
// and route keys ~10 MB) and are freed when flushed, so RSS is a sawtooth: measured here ~130 MiB
// at 200k, ~225 MiB just before the events memtable's first flush (~400k), ~145 MiB just after.
// The worst sample after 200k is bounded by a full events memtable plus one being flushed and the
// partly filled dedup/route memtables: ~100 MiB above the 200k sample. 150 MiB leaves room for
// that phase; a per-event leak or an in-memory copy of what is stored would pass it by 600k.
constexpr uint64_t kMaxGrowthBytes = 150 * kMiB;

// After a restart the memtables start empty (recovery flushes the replayed WAL), so a hub holding
// 600k dedup keys must sit as low as a fresh one: 600k keys in a heap index (~100 bytes each)
// would add ~60 MB. The slack covers the dedup filter and index blocks the lookups pull into the
// block cache and allocator noise.
constexpr uint64_t kMaxRestartedOverFreshBytes = 40 * kMiB;

std::vector<v1::Event> Generate(SyntheticGenerator& gen, size_t n) {
  std::vector<v1::Event> batch;
  batch.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    batch.push_back(gen.Next());
  }
  return batch;
}

SyntheticOptions MemoryWorkloadOptions() {
  SyntheticOptions so = FixedSyntheticOptions(600'000, "mem-");
  so.population = 200'000;
  return so;
}

double Mib(uint64_t bytes) { return static_cast<double>(bytes) / kMiB; }

TEST(IngestMemoryTest, RssStaysFlatAsTheDedupIndexGrows) {
  auto hub = HubProcess::Start(HubOptions("memory"));
  ASSERT_TRUE(hub.ok()) << hub.status().ToString();
  auto& h = *hub.value();
  auto pub = RawPublisher::Connect(h.ingest_endpoint());
  ASSERT_TRUE(pub.ok()) << pub.status().ToString();

  SyntheticGenerator gen(MemoryWorkloadOptions());
  auto make = [&gen](size_t n) { return Generate(gen, n); };

  // Warm up every code path with a small first load: the baseline a restarted hub is held to.
  auto warm = PublishGenerated(*pub.value(), 2'000, 1000, 8, make, seconds(30));
  ASSERT_TRUE(warm.ok()) << warm.status().ToString();
  ASSERT_EQ(warm->accepted, 2'000u);
  const uint64_t rss_fresh = h.RssBytes().value_or(0);
  size_t stored = 2'000;

  // Then to 200k, and on in 100k steps to 600k.
  std::vector<std::pair<size_t, uint64_t>> samples;  // (events stored, RSS)
  for (size_t target : {200'000, 300'000, 400'000, 500'000, 600'000}) {
    auto counts = PublishGenerated(*pub.value(), target - stored, 1000, 8, make, seconds(60));
    ASSERT_TRUE(counts.ok()) << counts.status().ToString();
    ASSERT_EQ(counts->accepted, target - stored);
    stored = target;
    auto rss = h.RssBytes();
    ASSERT_TRUE(rss.has_value());
    samples.emplace_back(stored, *rss);
  }
  std::printf("hub RSS: fresh %.1f MiB", Mib(rss_fresh));
  for (const auto& [n, rss] : samples) {
    std::printf(", %zuk %.1f MiB", n / 1000, Mib(rss));
  }
  std::printf("\n");
  const uint64_t at_200k = samples.front().second;
  for (const auto& [n, rss] : samples) {
    EXPECT_LT(rss, at_200k + kMaxGrowthBytes)
        << "RSS grew from " << Mib(at_200k) << " MiB at 200k events to " << Mib(rss) << " MiB at "
        << n << " events";
  }

  auto stopped = h.Stop();
  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  EXPECT_TRUE(stopped.value().Exited(0)) << stopped.value().ToString();
  // Restarted on the 600k-key index: resends of the oldest events are found (DUPLICATE) and new
  // ones accepted, with memory where a fresh hub's was.
  ASSERT_TRUE(h.Restart().ok()) << h.ReadLog();
  auto pub2 = RawPublisher::Connect(h.ingest_endpoint());
  ASSERT_TRUE(pub2.ok()) << pub2.status().ToString();
  // The restarted hub's head is everything stored before (asked over the wire: opening the store
  // here would replay its WAL a second time).
  v1::Frame heartbeat;
  heartbeat.set_version(v1::PROTOCOL_VERSION_1);
  heartbeat.mutable_heartbeat()->set_sent_at_unix_ms(1);
  ASSERT_TRUE(pub2.value()->SendFrame(heartbeat).ok());
  auto beat = pub2.value()->Receive(seconds(10));
  ASSERT_TRUE(beat.ok() && beat.value().has_value() && beat.value()->has_heartbeat());
  EXPECT_EQ(beat.value()->heartbeat().head_seq(), stored);
  SyntheticGenerator replay(MemoryWorkloadOptions());
  auto resent = PublishGenerated(
      *pub2.value(), 2'000, 1000, 8, [&](size_t n) { return Generate(replay, n); }, seconds(30));
  ASSERT_TRUE(resent.ok()) << resent.status().ToString();
  EXPECT_EQ(resent->duplicate, 2'000u);
  auto fresh_events = PublishGenerated(*pub2.value(), 2'000, 1000, 8, make, seconds(30));
  ASSERT_TRUE(fresh_events.ok()) << fresh_events.status().ToString();
  EXPECT_EQ(fresh_events->accepted, 2'000u);
  const uint64_t rss_restarted = h.RssBytes().value_or(UINT64_MAX);
  std::printf("hub RSS after restart on %zu stored events: %.1f MiB\n", stored, Mib(rss_restarted));
  EXPECT_LT(rss_restarted, rss_fresh + kMaxRestartedOverFreshBytes)
      << "a hub restarted on " << stored << " events uses " << Mib(rss_restarted)
      << " MiB; a fresh one used " << Mib(rss_fresh) << " MiB";
}

}  // namespace
}  // namespace carehub::itest
