// Crash and restart (issue 9): the real hub dies by SIGKILL at a crash point the seed picks
// (CAREHUB_CRASH_AT=<point>:<n>, core/crash_points.h) during ingest, group commit, delivery, cursor
// acknowledgement or retention deletion, or by an external kill -9 at a seed-chosen moment of mixed
// traffic. A publisher records what was acknowledged and resends the rest after the restart, as a
// real one does; a subscriber acks as it goes and resumes after the restart. Then, with the hub
// stopped:
//   - every acknowledged event is stored exactly once, at the hub_seq it was acknowledged with
//     (or lies below the retention cut, its dedup key still pointing at that hub_seq);
//   - the subscriber's deliveries across the crash have no gap (a redelivery is fine, a skipped
//     hub_seq is not unless retention deleted it) and reach the end of the log;
//   - CheckConsistency (hub/consistency.h) passes: dedup index, routes, cursors, audit;
//   - an audit "delivery" record covers every hub_seq the subscriber received.
//
// Seeded: the seed is printed; CAREHUB_SEED=<n> replays a run.

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "carehub/client/subscriber.h"
#include "carehub/hub/consistency.h"
#include "harness/raw_publisher.h"
#include "harness/workload.h"
#include "subscribe_support.h"

namespace carehub::itest {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Steady = std::chrono::steady_clock;

constexpr uint64_t kDefaultSeed = 20'261'123;
constexpr const char* kSubscription = "crash-feed";
constexpr size_t kEvents = 4000;
constexpr size_t kChunk = 400;
constexpr size_t kBatch = 100;
constexpr size_t kWindow = 4;

constexpr const char* kAgreements = R"(subscribers:
  - id: crash-reader
    subscriptions:
      - {id: crash-feed, purpose: direct_care}
agreements:
  - id: DSA-CRASH
    subscriber: crash-reader
    purpose: direct_care
    legal_basis: "test"
    valid_from: 2020-01-01
    valid_until: 2099-12-31
    sources: ["*"]
    event_types: ["*"]
    patient_fields: identifiable
)";

uint64_t BaseSeed() {
  static const uint64_t seed = [] {
    const char* env = std::getenv("CAREHUB_SEED");
    uint64_t s = env ? std::strtoull(env, nullptr, 10) : kDefaultSeed;
    std::printf("reliability_crash: seed %llu (replay with CAREHUB_SEED=%llu)\n",
                static_cast<unsigned long long>(s), static_cast<unsigned long long>(s));
    return s;
  }();
  return seed;
}

// A phase of the data path and the crash points in it, with the passes a round can die on: each
// round's traffic is sure to pass its point more often than max_pass.
struct Phase {
  std::string name;
  std::vector<std::string> points;
  int min_pass;
  int max_pass;
  bool retention = false;
};

struct RoundPlan {
  std::string phase;
  std::string point;  // empty: external kill -9
  int pass = 0;
  int kill_after_ms = 0;
  uint64_t seed = 0;
  bool retention = false;
};

RoundPlan PlanRound(const Phase& phase, int round) {
  // Each phase draws from its own stream, so adding a phase does not change the others' rounds.
  uint64_t seed = BaseSeed() * 1'000'003 + std::hash<std::string>{}(phase.name) % 1'000'000 +
                  static_cast<uint64_t>(round);
  std::mt19937_64 rng(seed);
  RoundPlan plan;
  plan.phase = phase.name;
  plan.seed = seed;
  plan.retention = phase.retention;
  if (phase.points.empty()) {
    plan.kill_after_ms = std::uniform_int_distribution<int>(phase.min_pass, phase.max_pass)(rng);
  } else {
    // The phase's seed orders its points and successive rounds take the next one, so a run of
    // as many rounds as points visits every point; the pass is the round's own draw.
    std::mt19937_64 phase_rng(BaseSeed() + std::hash<std::string>{}(phase.name));
    const size_t offset = phase_rng() % phase.points.size();
    plan.point = phase.points[(offset + static_cast<size_t>(round)) % phase.points.size()];
    plan.pass = std::uniform_int_distribution<int>(phase.min_pass, phase.max_pass)(rng);
  }
  return plan;
}

// What the subscriber saw: every hub_seq delivered, in order, across its sessions.
struct FeedLog {
  std::vector<uint64_t> seqs;
  std::vector<std::string> errors;
  size_t sessions = 0;
};

// Reads the subscription (acking each batch as soon as it is handled) until `stop`, or until
// `until` (when > 0) has been examined.
void ReadFeedUntil(const std::string& endpoint, v1::Subscribe::Start start,
                   const std::atomic<bool>& stop, const std::atomic<uint64_t>& until,
                   std::atomic<uint64_t>* scanned, FeedLog* log) {
  client::SubscriberOptions so;
  so.endpoint = endpoint;
  so.subscription = kSubscription;
  so.start = start;
  so.window = 500;
  auto sub = client::Subscriber::Open(so);
  if (!sub.ok()) {
    log->errors.push_back("open: " + sub.status().ToString());
    return;
  }
  ++log->sessions;
  while (!stop.load()) {
    const uint64_t target = until.load();
    if (target > 0 && scanned->load() >= target) {
      break;
    }
    auto batch = sub.value()->Next(milliseconds(50));
    if (!batch.ok()) {
      log->errors.push_back("next: " + batch.status().ToString());
      return;
    }
    if (!batch.value()) {
      continue;
    }
    for (const auto& e : batch.value()->events) {
      log->seqs.push_back(e.event().envelope().hub_seq());
    }
    scanned->store(std::max(scanned->load(), batch.value()->scanned_to_seq));
    (void)sub.value()->Ack(batch.value()->scanned_to_seq);
  }
  // Let the last Ack leave before the socket closes.
  (void)sub.value()->Next(milliseconds(50));
}

// Publishes in chunks (pausing between them, so traffic spans the round) until every event is
// answered or `stop`; answers[i] holds the answer to event i when its batch was answered.
Status PublishInChunks(RawPublisher& pub, const std::vector<v1::Event>& events, milliseconds pause,
                       const std::atomic<bool>& stop, std::map<size_t, v1::EventResult>* answers) {
  std::span<const v1::Event> all(events);
  for (size_t off = 0; off < events.size() && !stop.load(); off += kChunk) {
    const size_t n = std::min(kChunk, events.size() - off);
    auto report = StreamUntilStopped(pub, all.subspan(off, n), kBatch, kWindow, stop, nullptr,
                                     seconds(60), milliseconds(300));
    if (!report.ok()) {
      return report.status();
    }
    for (auto& [i, r] : report.value().answers) {
      (*answers)[off + i] = std::move(r);
    }
    if (report.value().answers.size() < n) {
      break;  // the hub is gone
    }
    std::this_thread::sleep_for(pause);
  }
  return Status::Ok();
}

// The first hub_seq the feed skipped (a later one delivered first, or the end never reached), or
// empty. Seqs below `first_stored` may be skipped: retention deleted them.
std::optional<std::string> FindGap(const std::vector<uint64_t>& delivered, uint64_t first_stored,
                                   uint64_t last_seq) {
  uint64_t high = 0;
  for (size_t i = 0; i < delivered.size(); ++i) {
    const uint64_t s = delivered[i];
    if (s > high + 1 && s - 1 >= first_stored) {
      return "delivery " + std::to_string(i) + " is hub_seq " + std::to_string(s) +
             " but nothing after " + std::to_string(high) + " was delivered before it";
    }
    high = std::max(high, s);
  }
  if (high < last_seq) {
    return "the feed ended at hub_seq " + std::to_string(high) + " of " + std::to_string(last_seq);
  }
  return std::nullopt;
}

// `carehubctl verify` on the stopped hub's store: exit 0 with a "consistent:" line; then, with a
// cursor put beyond the end of the log, exit 1 naming it.
void VerifyWithCarehubctl(HubProcess& h, const std::filesystem::path& work_dir, uint64_t last_seq) {
  const std::vector<std::string> verify = {BinaryPath("carehubctl").string(), "verify",
                                           "--data-dir", h.data_dir().string()};
  auto clean = RunCommand(verify, work_dir, seconds(30));
  ASSERT_TRUE(clean.ok()) << clean.status().ToString();
  EXPECT_TRUE(clean.value().status.Exited(0)) << clean.value().out << clean.value().err;
  EXPECT_EQ(clean.value().out.rfind("consistent: ", 0), 0u) << clean.value().out;
  {
    auto store = h.OpenStore();
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ASSERT_TRUE(store.value()->cursors().Put("bogus-feed", last_seq + 10).ok());
  }
  auto damaged = RunCommand(verify, work_dir, seconds(30));
  ASSERT_TRUE(damaged.ok()) << damaged.status().ToString();
  EXPECT_TRUE(damaged.value().status.Exited(1)) << damaged.value().out << damaged.value().err;
  EXPECT_EQ(damaged.value().out.rfind("INCONSISTENT: 1 problem; ", 0), 0u) << damaged.value().out;
  EXPECT_NE(damaged.value().out.find("cursor bogus-feed = " + std::to_string(last_seq + 10)),
            std::string::npos)
      << damaged.value().out;
}

void RunRound(const RoundPlan& plan) {
  std::printf("round %s seed %llu: %s\n", plan.phase.c_str(),
              static_cast<unsigned long long>(plan.seed),
              plan.point.empty()
                  ? ("external kill -9 after " + std::to_string(plan.kill_after_ms) + " ms").c_str()
                  : ("CAREHUB_CRASH_AT=" + plan.point + ":" + std::to_string(plan.pass)).c_str());
  std::fflush(stdout);
  SCOPED_TRACE("seed " + std::to_string(plan.seed) + " phase " + plan.phase + " point " +
               plan.point + ":" + std::to_string(plan.pass));

  WorkloadOptions wo;
  wo.seed = plan.seed;
  wo.id_prefix = "rc-" + std::to_string(plan.seed) + "-";
  wo.events = kEvents;
  wo.resend_ratio = 0.05;
  Workload w = MakeWorkload(wo);
  // Only valid events: every one must end up stored. (MakeWorkload can make the very first event
  // invalid when it draws a resend before there is anything to resend.)
  for (size_t i = w.events.size(); i-- > 0;) {
    if (w.kinds[i] == Workload::Kind::kInvalid) {
      w.events.erase(w.events.begin() + static_cast<std::ptrdiff_t>(i));
    }
  }

  TempDir dir("reliability-crash");
  auto agreements = WritePolicyFiles(dir.path(), kAgreements);
  ASSERT_TRUE(agreements.ok()) << agreements.status().ToString();
  std::string extra = "subscribe:\n  max_delivery_batch: 100\n";
  if (plan.retention) {
    extra += "retention:\n  max_age_seconds: 1\n  interval_seconds: 1\n";
  }
  HubProcessOptions options = HubWithAgreements("crash-" + plan.phase, agreements.value(), extra);
  if (!plan.point.empty()) {
    options.environment = {"CAREHUB_CRASH_AT=" + plan.point + ":" + std::to_string(plan.pass)};
  }
  auto hub = HubProcess::Start(options);
  ASSERT_TRUE(hub.ok()) << hub.status().ToString();
  auto& h = *hub.value();

  // ---- Traffic until the hub dies ----
  auto pub = RawPublisher::Connect(h.ingest_endpoint(),
                                   RawPublisherOptions::WithSendTimeout(milliseconds(200)));
  ASSERT_TRUE(pub.ok()) << pub.status().ToString();
  FeedLog feed;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> no_target{0};
  std::atomic<uint64_t> scanned{0};
  std::thread reader([&] {
    ReadFeedUntil(h.subscribe_endpoint(), v1::Subscribe::START_EARLIEST, stop, no_target, &scanned,
                  &feed);
  });
  std::map<size_t, v1::EventResult> before;
  Status published = Status::Ok();
  std::thread publisher([&] {
    published =
        PublishInChunks(*pub.value(), w.events,
                        plan.retention ? milliseconds(350) : milliseconds(30), stop, &before);
  });
  std::optional<ExitStatus> died;
  if (plan.point.empty()) {
    std::this_thread::sleep_for(milliseconds(plan.kill_after_ms));
    h.Kill();
    died = ExitStatus{};
    died->term_signal = SIGKILL;
  } else {
    died = h.Wait(seconds(25));
  }
  stop.store(true);
  publisher.join();
  reader.join();
  ASSERT_TRUE(died.has_value()) << "the hub never reached crash point " << plan.point << " pass "
                                << plan.pass << " (it is still running)";
  ASSERT_TRUE(died->term_signal && *died->term_signal == SIGKILL)
      << "the hub ended otherwise than by SIGKILL: " << died->ToString() << "\n"
      << h.ReadLog();
  ASSERT_TRUE(published.ok()) << published.ToString();
  if (!plan.point.empty()) {
    ASSERT_NE(h.ReadLog().find("CAREHUB_CRASH_AT is set"), std::string::npos)
        << "the crash point was not armed";
  }

  // What the publisher was told before the crash: event index -> hub_seq.
  std::map<size_t, uint64_t> acked;
  for (const auto& [i, r] : before) {
    ASSERT_TRUE(r.status() == v1::EventResult::ACCEPTED || r.status() == v1::EventResult::DUPLICATE)
        << "event " << i << ": " << v1::EventResult::Status_Name(r.status()) << " " << r.reason();
    acked[i] = r.hub_seq();
  }
  const size_t delivered_before = feed.seqs.size();

  // ---- Restart without the crash point; resend like a real publisher; read to the end ----
  h.SetEnvironment({});
  ASSERT_TRUE(h.Restart().ok()) << h.ReadLog();
  stop.store(false);
  auto pub2 = RawPublisher::Connect(h.ingest_endpoint());
  ASSERT_TRUE(pub2.ok()) << pub2.status().ToString();
  std::atomic<uint64_t> target{0};
  std::atomic<bool> no_stop{false};
  std::thread reader2([&] {
    ReadFeedUntil(h.subscribe_endpoint(), v1::Subscribe::START_RESUME, no_stop, target, &scanned,
                  &feed);
  });
  // Everything unacknowledged, and every seventh acknowledged event (a publisher that lost its
  // own record of an answer).
  std::vector<size_t> resend_index;
  for (size_t i = 0; i < w.events.size(); ++i) {
    if (!acked.count(i) || i % 7 == 0) {
      resend_index.push_back(i);
    }
  }
  std::vector<v1::Event> resend;
  for (size_t i : resend_index) {
    resend.push_back(w.events[i]);
  }
  auto results = pub2.value()->PublishAll(resend, kBatch, kWindow, seconds(60));
  if (!results.ok()) {
    no_stop.store(true);
    reader2.join();
    FAIL() << results.status().ToString();
  }
  // event_id -> the one hub_seq every answer about it must name.
  std::map<std::string, uint64_t> seq_of_id;
  auto note = [&](size_t i, uint64_t seq) {
    auto [it, inserted] = seq_of_id.emplace(w.events[i].envelope().event_id(), seq);
    EXPECT_EQ(it->second, seq) << "event " << i << " answered with two hub_seqs";
  };
  for (const auto& [i, seq] : acked) {
    note(i, seq);
  }
  size_t acked_resent = 0;
  for (size_t k = 0; k < resend_index.size(); ++k) {
    const auto& r = results.value()[k];
    const size_t i = resend_index[k];
    ASSERT_TRUE(r.status() == v1::EventResult::ACCEPTED || r.status() == v1::EventResult::DUPLICATE)
        << "event " << i << ": " << v1::EventResult::Status_Name(r.status()) << " " << r.reason();
    if (acked.count(i)) {
      ++acked_resent;
      EXPECT_EQ(r.status(), v1::EventResult::DUPLICATE) << "acknowledged event " << i;
    }
    note(i, r.hub_seq());
  }
  uint64_t last_seq = 0;
  for (const auto& [id, seq] : seq_of_id) {
    last_seq = std::max(last_seq, seq);
  }
  target.store(last_seq);
  // Bounded: the reader stops on its own once it has examined last_seq.
  auto deadline = Steady::now() + seconds(20);
  while (scanned.load() < last_seq && Steady::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  no_stop.store(true);
  reader2.join();
  for (const auto& e : feed.errors) {
    ADD_FAILURE() << "subscriber: " << e;
  }

  // The operator's check refuses a store the running hub holds.
  auto locked =
      RunCommand({BinaryPath("carehubctl").string(), "verify", "--data-dir", h.data_dir().string()},
                 dir.path(), seconds(30));
  ASSERT_TRUE(locked.ok()) << locked.status().ToString();
  EXPECT_TRUE(locked.value().status.Exited(2)) << locked.value().status.ToString() << "\n"
                                               << locked.value().err;

  auto stopped = h.Stop();
  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  EXPECT_TRUE(stopped.value().Exited(0)) << stopped.value().ToString();
  auto store = h.OpenStore();
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto& s = *store.value();
  const uint64_t first_stored = MustRead(s.events().FirstSeq(), "first seq");
  EXPECT_EQ(MustRead(s.events().LastSeq(), "last seq"), last_seq)
      << "the log ends at the last hub_seq any answer named";

  // Every acknowledged event exactly once, where it was acknowledged (or cut by retention).
  std::map<std::string, std::vector<uint64_t>> stored_at;
  for (const auto& e : ReadAllEvents(s)) {
    stored_at[e.event.envelope().event_id()].push_back(e.hub_seq);
  }
  size_t cut = 0;
  for (const auto& [id, seq] : seq_of_id) {
    auto it = stored_at.find(id);
    if (plan.retention && seq < first_stored) {
      EXPECT_TRUE(it == stored_at.end()) << id << " below the retention cut but stored";
      auto event = std::find_if(w.events.begin(), w.events.end(), [&](const v1::Event& ev) {
        return ev.envelope().event_id() == id;
      });
      auto dedup = MustRead(
          s.dedup().Lookup({hub::DedupKey(event->envelope().publisher_ods(), id)}), "dedup");
      EXPECT_TRUE(dedup[0] && dedup[0]->hub_seq == seq) << id << ": dedup key lost with retention";
      ++cut;
      continue;
    }
    ASSERT_TRUE(it != stored_at.end())
        << "acknowledged event " << id << " (hub_seq " << seq << ") is not stored";
    EXPECT_EQ(it->second, std::vector<uint64_t>{seq}) << id << " stored other than once at " << seq;
  }
  EXPECT_EQ(stored_at.size() + cut, seq_of_id.size()) << "events stored that nobody acknowledged";

  // The feed: no gap across the crash, and every delivery audited.
  auto gap = FindGap(feed.seqs, first_stored, last_seq);
  EXPECT_FALSE(gap.has_value()) << *gap;
  std::vector<std::pair<uint64_t, uint64_t>> audited;
  for (const auto& a : MustRead(s.audit().Query("", 0, INT64_MAX, 1'000'000), "audit")) {
    if (a.kind() == "delivery" && a.subscription() == kSubscription) {
      audited.emplace_back(a.from_seq(), a.to_seq());
    }
  }
  std::sort(audited.begin(), audited.end());
  size_t unaudited = 0;
  for (uint64_t seq : feed.seqs) {
    auto it = std::upper_bound(audited.begin(), audited.end(), std::make_pair(seq, UINT64_MAX));
    bool covered = false;
    // Ranges of one subscription may overlap only through redelivery: look back a few.
    for (int k = 0; k < 8 && it != audited.begin() && !covered; ++k) {
      --it;
      covered = it->first <= seq && seq <= it->second;
    }
    unaudited += covered ? 0 : 1;
  }
  EXPECT_EQ(unaudited, 0u) << "delivered hub_seqs without a delivery audit record";

  auto report = hub::CheckConsistency(s);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(report.value().consistent())
      << report.value().Summary() << "\n"
      << (report.value().problems.empty() ? "" : report.value().problems.front());

  std::printf(
      "  acknowledged before the crash %zu (resent %zu), delivered %zu before + %zu after "
      "(%zu sessions), log %llu..%llu, %zu below the retention cut\n",
      acked.size(), acked_resent, delivered_before, feed.seqs.size() - delivered_before,
      feed.sessions, static_cast<unsigned long long>(first_stored),
      static_cast<unsigned long long>(last_seq), cut);
  std::printf("  %s\n", report.value().Summary().c_str());
  store.value().reset();
  VerifyWithCarehubctl(h, dir.path(), last_seq);
}

void RunPhase(const Phase& phase, int rounds) {
  for (int r = 0; r < rounds; ++r) {
    RunRound(PlanRound(phase, r));
    if (::testing::Test::HasFatalFailure() || ::testing::Test::HasFailure()) {
      return;
    }
  }
}

TEST(ReliabilityCrash, DuringIngest) { RunPhase({"ingest", {"ingest.after_decode"}, 2, 30}, 2); }

TEST(ReliabilityCrash, DuringGroupCommit) {
  RunPhase({"commit", {"commit.before_write", "commit.after_sync"}, 1, 8}, 2);
}

TEST(ReliabilityCrash, DuringDelivery) {
  RunPhase({"delivery", {"deliver.after_audit", "deliver.mid_send"}, 2, 30}, 2);
}

TEST(ReliabilityCrash, DuringCursorAck) {
  RunPhase({"cursor", {"cursor.before_store", "cursor.after_store"}, 2, 30}, 2);
}

TEST(ReliabilityCrash, DuringRetention) {
  RunPhase({"retention", {"retention.before_delete", "retention.after_delete"}, 1, 2, true}, 2);
}

TEST(ReliabilityCrash, ExternalKillDuringMixedTraffic) {
  // min/max are the kill time in ms after traffic starts.
  RunPhase({"kill", {}, 50, 600}, 2);
}

}  // namespace
}  // namespace carehub::itest
