// kill -9 of the hub in the middle of a stream: every event acknowledged ACCEPTED before the kill
// survives exactly once, and resending everything after a restart stores nothing twice. Run with
// both durability modes: `os` survives a crash of the hub process (not a power cut), which is all a
// SIGKILL is.

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <set>
#include <thread>

#include "harness/hub_process.h"
#include "harness/raw_publisher.h"
#include "harness/workload.h"

namespace carehub::itest {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using SteadyClock = std::chrono::steady_clock;

void KillMidStreamThenResend(const std::string& durability, size_t event_count,
                             size_t kill_after_batches) {
  WorkloadOptions wo;
  wo.seed = 31'337;
  wo.id_prefix = "crash-" + durability + "-";
  wo.events = event_count;
  Workload w = MakeWorkload(wo);
  constexpr size_t kBatch = 500;
  constexpr size_t kWindow = 8;

  auto hub = HubProcess::Start(HubOptions("crash-" + durability, "", durability));
  ASSERT_TRUE(hub.ok()) << hub.status().ToString();
  auto& h = *hub.value();
  auto pub = RawPublisher::Connect(h.ingest_endpoint(),
                                   RawPublisherOptions::WithSendTimeout(milliseconds(200)));
  ASSERT_TRUE(pub.ok()) << pub.status().ToString();

  std::atomic<size_t> answered{0};
  std::atomic<bool> stop{false};
  Result<StreamReport> stream = Status::Error("not_run", "");
  std::thread publisher([&] {
    stream =
        StreamUntilStopped(*pub.value(), w.events, kBatch, kWindow, stop, &answered, seconds(90));
  });
  // Kill while the publisher is mid-stream with its window full.
  auto deadline = SteadyClock::now() + seconds(60);
  while (answered.load() < kill_after_batches && SteadyClock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  const size_t answered_at_kill = answered.load();
  h.Kill();
  stop.store(true);
  publisher.join();
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  const StreamReport& before = stream.value();
  ASSERT_GE(answered_at_kill, kill_after_batches) << "the stream was too slow to reach the kill";
  ASSERT_LT(before.sent_events, w.events.size()) << "the kill came after the stream ended";
  ASSERT_GT(before.sent_events, before.answered_batches * kBatch)
      << "no batch was in flight at the kill";
  // event index -> hub_seq, for every event answered ACCEPTED before the kill.
  std::map<size_t, uint64_t> accepted;
  for (const auto& [i, r] : before.answers) {
    ASSERT_EQ(r.status(), v1::EventResult::ACCEPTED) << "event " << i << " " << r.reason();
    accepted[i] = r.hub_seq();
  }
  ASSERT_EQ(accepted.size(), before.answered_batches * kBatch);

  ASSERT_TRUE(h.Restart().ok()) << h.ReadLog();
  auto pub2 = RawPublisher::Connect(h.ingest_endpoint());
  ASSERT_TRUE(pub2.ok()) << pub2.status().ToString();

  // Resend everything not acknowledged, and every fifth acknowledged event too.
  std::vector<size_t> resend_index;
  for (size_t i = 0; i < w.events.size(); ++i) {
    auto it = accepted.find(i);
    if (it == accepted.end() || i % 5 == 0) {
      resend_index.push_back(i);
    }
  }
  std::vector<v1::Event> resend;
  resend.reserve(resend_index.size());
  for (size_t i : resend_index) {
    resend.push_back(w.events[i]);
  }
  auto results = pub2.value()->PublishAll(resend, 1000, 8, seconds(90));
  ASSERT_TRUE(results.ok()) << results.status().ToString();

  std::map<std::string, uint64_t> seq_of_id;  // what the hub says each event is stored as
  size_t acked_dups_ok = 0;
  size_t acked_resent = 0;
  size_t stored_unanswered = 0;  // committed before the kill, answer lost with the hub
  for (size_t k = 0; k < resend_index.size(); ++k) {
    const auto& r = results.value()[k];
    const size_t i = resend_index[k];
    auto acked = accepted.find(i);
    if (acked != accepted.end()) {
      ++acked_resent;
      EXPECT_EQ(r.status(), v1::EventResult::DUPLICATE) << "acknowledged event " << i;
      EXPECT_EQ(r.hub_seq(), acked->second) << "acknowledged event " << i;
      if (r.status() == v1::EventResult::DUPLICATE && r.hub_seq() == acked->second) {
        ++acked_dups_ok;
      }
    } else {
      // Sent but unanswered before the kill: stored (DUPLICATE) or lost (ACCEPTED now).
      ASSERT_TRUE(r.status() == v1::EventResult::ACCEPTED ||
                  r.status() == v1::EventResult::DUPLICATE)
          << "event " << i << ": " << v1::EventResult::Status_Name(r.status()) << " " << r.reason();
      if (i < before.sent_events && r.status() == v1::EventResult::DUPLICATE) {
        ++stored_unanswered;
      }
    }
    seq_of_id[w.events[i].envelope().event_id()] = r.hub_seq();
  }
  std::printf("%s: killed with %zu events sent, %zu acknowledged, %zu more committed unanswered\n",
              durability.c_str(), before.sent_events, accepted.size(), stored_unanswered);
  EXPECT_GT(acked_resent, 0u);
  EXPECT_EQ(acked_dups_ok, acked_resent);
  for (const auto& [i, seq] : accepted) {
    seq_of_id[w.events[i].envelope().event_id()] = seq;
  }

  auto stopped = h.Stop();
  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  EXPECT_TRUE(stopped.value().Exited(0)) << stopped.value().ToString();
  auto store = h.OpenStore();
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto stored = ReadAllEvents(*store.value());

  // Nothing stored twice, nothing missing, every event at the hub_seq it was acknowledged with,
  // and no hole in the log.
  std::set<std::string> ids;
  size_t misplaced = 0;
  for (size_t k = 0; k < stored.size(); ++k) {
    const auto& id = stored[k].event.envelope().event_id();
    EXPECT_TRUE(ids.insert(id).second) << "event_id " << id << " stored twice";
    auto it = seq_of_id.find(id);
    if (it == seq_of_id.end() || it->second != stored[k].hub_seq) {
      ++misplaced;
    }
    EXPECT_EQ(stored[k].hub_seq, k + 1) << "hole in the log";
  }
  EXPECT_EQ(ids.size(), stored.size());
  EXPECT_EQ(stored.size(), w.events.size());
  EXPECT_EQ(misplaced, 0u);
  for (const auto& [i, seq] : accepted) {
    auto e = MustRead(store.value()->events().Get(seq), "event");
    ASSERT_TRUE(e.has_value()) << "acknowledged hub_seq " << seq << " lost";
    EXPECT_EQ(e->envelope().event_id(), w.events[i].envelope().event_id());
  }
}

TEST(IngestCrashTest, KillDuringStreamLosesNothingAcknowledgedAndStoresNothingTwice) {
  KillMidStreamThenResend("fsync", 60'000, 40);
}

TEST(IngestCrashTest, OsDurabilitySurvivesKillOfTheHubProcess) {
  KillMidStreamThenResend("os", 20'000, 12);
}

}  // namespace
}  // namespace carehub::itest
