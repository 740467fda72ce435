// Automatic failover through etcd (issue 14, docs/replication.md "Automatic failover"): a real
// three-member etcd cluster (Debian etcd-server) and two real hub processes with a `cluster:`
// section, a publisher with a durable outbox and a subscriber, both configured with both hubs.
//
//   - chaos rounds (seeded, replayable with CAREHUB_SEED; CAREHUB_FAILOVER_ROUNDS rounds, 4 in
//     `make test`, 100+ in `make chaos`): kill -9 of the primary, SIGSTOP of the primary past
//     its lease then SIGCONT, the standby killed during the failover, one etcd member killed with
//     the primary, the primary cut off from etcd (its socat proxies to etcd paused). After the
//     rounds: every event the publisher enqueued is stored exactly once on the primary, the two
//     stores compare equal, no hub_seq was given to two events, the subscriber saw every hub_seq,
//     and every delivered event is covered by an audit record;
//   - etcd quorum lost: the primary stops acknowledging and says so on /readyz and in metrics,
//     and serves again when etcd is back;
//   - an out-of-sync standby never takes over on its own; a forced promotion does, audited.
//
// Deadlines derive from the lease TTL (kTtlMs) and the pair's sync timeout.

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "carehub/client/publisher.h"
#include "carehub/client/subscriber.h"
#include "carehub/hub/consistency.h"
#include "carehub/hub/store_compare.h"
#include "harness/etcd_cluster.h"
#include "harness/ports.h"
#include "harness/raw_publisher.h"
#include "harness/workload.h"
#include "ops_common.h"
#include "reliability_support.h"
#include "subscribe_support.h"

namespace carehub::itest {
namespace {

using ops::HttpGet;
using ops::WaitFor;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Steady = std::chrono::steady_clock;

constexpr const char* kSubscription = "ha-feed";
constexpr const char* kAgreements = R"(subscribers:
  - id: ha-reader
    subscriptions:
      - {id: ha-feed, purpose: direct_care}
agreements:
  - id: DSA-HA
    subscriber: ha-reader
    purpose: direct_care
    legal_basis: "test"
    valid_from: 2020-01-01
    valid_until: 2099-12-31
    sources: ["*"]
    event_types: ["*"]
    patient_fields: identifiable
)";

constexpr int kTtlMs = 3000;
constexpr int kSyncTimeoutMs = 1500;
// A failover is the lease running out (TTL), etcd noticing (its lessor checks twice a second),
// the standby's next round and its promotion; a rejoin may take a full copy. Generous multiples.
const milliseconds kFailoverDeadline{kTtlMs * 10};
const milliseconds kSettle{kSyncTimeoutMs * 40};

enum Port { kIngest = 0, kSubscribe = 1, kAdmin = 2, kReplication = 3 };

std::string Tcp(int port) { return "tcp://127.0.0.1:" + std::to_string(port); }

nlohmann::json Replication(const std::string& admin) {
  auto answer = HttpGet(admin, "/api/v1/replication");
  if (answer.status != 200) {
    return nlohmann::json::object();
  }
  return nlohmann::json::parse(answer.body, nullptr, false);
}

// Two hubs and three etcd members on loopback.
class HaCluster {
 public:
  HaCluster(const std::string& tag, const std::string& on_standby_loss = "degrade") : dir_(tag) {
    auto etcd = EtcdCluster::Start(tag);
    if (!etcd.ok()) {
      error_ = etcd.status().ToString();
      return;
    }
    etcd_ = std::move(etcd).value();
    // Per hub: 4 endpoints, then one proxy per etcd member (+4, +5, +6).
    auto base = FindFreePortBase({0, 1, 2, 3, 4, 5, 6, 10, 11, 12, 13, 14, 15, 16},
                                 std::hash<std::string>()(tag));
    if (!base) {
      error_ = "no free loopback ports";
      return;
    }
    base_ = *base;
    // Each hub reaches etcd through proxies of its own (socat), so a test can cut one hub off
    // from etcd (SIGSTOP of its proxies: connections hang, as on a partitioned network) while
    // the other still reaches it.
    for (int side = 0; side < 2; ++side) {
      for (int m = 0; m < etcd_->size(); ++m) {
        const std::string port = std::to_string(base_ + side * 10 + 4 + m);
        const std::string target = etcd_->client_url(m).substr(std::string("http://").size());
        auto proxy = ChildProcess::Spawn(
            {"/usr/bin/socat", "TCP-LISTEN:" + port + ",bind=127.0.0.1,reuseaddr,fork",
             "TCP:" + target},
            dir_.path() / "socat.log", dir_.path() / "socat.log");
        if (!proxy.ok()) {
          error_ = "socat (scripts/install-deps.sh installs it): " + proxy.status().ToString();
          return;
        }
        proxies_[side].push_back(std::move(proxy).value());
      }
    }
    auto agreements = WritePolicyFiles(dir_.path(), kAgreements);
    if (!agreements.ok()) {
      error_ = agreements.status().ToString();
      return;
    }
    for (int side = 0; side < 2; ++side) {
      auto hub =
          HubProcess::Start(HubWithAgreements(tag + (side == 0 ? "-a" : "-b"), agreements.value(),
                                              SideYaml(tag, side, on_standby_loss)));
      if (!hub.ok()) {
        error_ = hub.status().ToString();
        return;
      }
      hubs_[side] = std::move(hub).value();
    }
    auto leader = WaitLeader(kFailoverDeadline);
    if (leader != 0) {
      error_ =
          "hub A (configured primary) did not become the leader: " + Replication(admin(0)).dump() +
          " / " + Replication(admin(1)).dump();
      return;
    }
    if (!WaitFor([&] { return StandbyInSync(0); }, kSettle)) {
      error_ = "the standby did not get in sync: " + Replication(admin(0)).dump();
    }
  }

  const std::string& error() const { return error_; }
  HubProcess& hub(int side) { return *hubs_[side]; }
  EtcdCluster& etcd() { return *etcd_; }
  std::string admin(int side) const {
    return "127.0.0.1:" + std::to_string(base_ + side * 10 + kAdmin);
  }
  std::string ingest(int side) const { return Tcp(base_ + side * 10 + kIngest); }
  std::string ingest_both() const { return ingest(0) + "," + ingest(1); }
  std::string subscribe_both() const {
    return Tcp(base_ + kSubscribe) + "," + Tcp(base_ + 10 + kSubscribe);
  }
  const std::filesystem::path& dir() const { return dir_.path(); }

  // Whether `side` holds the lease and acknowledges writes.
  bool Leads(int side) const {
    auto r = Replication(admin(side));
    return r.value("role", "") == "primary" && r.value("accepting_writes", false) &&
           r.contains("cluster") && r["cluster"].value("this_hub_leads", false);
  }
  // The side that leads, or -1. (Asks a paused hub too: its admin API answers only on timeout.)
  int Leader() const { return Leads(0) ? 0 : Leads(1) ? 1 : -1; }
  int WaitLeader(milliseconds timeout) const {
    int leader = -1;
    WaitFor([&] { return (leader = Leader()) >= 0; }, timeout);
    return leader;
  }
  // Cuts `side` off from etcd (its proxies paused) or reconnects it.
  void CutOffFromEtcd(int side, bool cut) {
    for (auto& proxy : proxies_[side]) {
      proxy.Signal(cut ? SIGSTOP : SIGCONT);
    }
  }
  bool StandbyInSync(int primary) const {
    auto r = Replication(admin(primary));
    return r.value("role", "") == "primary" && r.contains("standby") &&
           r["standby"].value("in_sync", false);
  }

 private:
  std::string SideYaml(const std::string& tag, int self, const std::string& loss) const {
    const int me = base_ + self * 10;
    const int peer = base_ + (1 - self) * 10;
    std::string etcd_list;
    for (int i = 0; i < etcd_->size(); ++i) {
      etcd_list += (i ? ", " : "") + std::string("http://127.0.0.1:") +
                   std::to_string(base_ + self * 10 + 4 + i);
    }
    return "ingest: {endpoint: " + Tcp(me + kIngest) + "}\n" +
           "subscribe: {endpoint: " + Tcp(me + kSubscribe) + ", heartbeat_interval_ms: 500}\n" +
           "admin: {listen: 127.0.0.1:" + std::to_string(me + kAdmin) + "}\n" +
           "replication:\n  role: " + (self == 0 ? "primary" : "standby") + "\n  name: hub-" +
           (self == 0 ? "a" : "b") + "\n  listen: " + Tcp(me + kReplication) +
           "\n  peer: {replication: " + Tcp(peer + kReplication) +
           ", ingest: " + Tcp(peer + kIngest) + ", subscribe: " + Tcp(peer + kSubscribe) +
           "}\n  on_standby_loss: " + loss +
           "\n  sync_timeout_ms: " + std::to_string(kSyncTimeoutMs) + "\ncluster:\n  etcd: [" +
           etcd_list + "]\n  name: " + tag + "\n  ttl_ms: " + std::to_string(kTtlMs) + "\n";
  }

  TempDir dir_;
  std::unique_ptr<EtcdCluster> etcd_;
  int base_ = 0;
  std::string error_;
  std::unique_ptr<HubProcess> hubs_[2];
  std::vector<ChildProcess> proxies_[2];  // per hub, one per etcd member
};

#define ASSERT_CLUSTER(c) ASSERT_TRUE((c).error().empty()) << (c).error()

// What the subscriber received, checked after the run.
struct Feed {
  std::mutex mu;
  std::map<uint64_t, std::string> ids;  // hub_seq -> event_id
  size_t seq_given_twice = 0;           // one hub_seq with two different events
  uint64_t stale_refused = 0;
  std::string error;
};

void ReadFeed(const std::string& endpoints, const std::atomic<bool>& stop, Feed* feed) {
  client::SubscriberOptions so;
  so.endpoint = endpoints;
  so.subscription = kSubscription;
  so.start = v1::Subscribe::START_EARLIEST;
  so.window = 2000;
  so.heartbeat_interval = milliseconds(500);
  so.hub_timeout = milliseconds(kSyncTimeoutMs * 2);
  so.connect_timeout = seconds(30);
  auto sub = client::Subscriber::Open(so);
  if (!sub.ok()) {
    feed->error = sub.status().ToString();
    return;
  }
  while (!stop.load()) {
    auto batch = sub.value()->Next(milliseconds(100));
    if (!batch.ok()) {
      std::lock_guard<std::mutex> lock(feed->mu);
      feed->error = batch.status().ToString();
      return;
    }
    if (!batch.value()) {
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(feed->mu);
      for (const auto& e : batch.value()->events) {
        const auto& env = e.event().envelope();
        auto [it, fresh] = feed->ids.emplace(env.hub_seq(), env.event_id());
        if (!fresh && it->second != env.event_id()) {
          ++feed->seq_given_twice;
        }
      }
      feed->stale_refused = sub.value()->stale_deliveries_refused();
    }
    (void)sub.value()->Ack(batch.value()->scanned_to_seq);
  }
}

// A steady stream through the client library's publisher (durable outbox, both hubs).
class Stream {
 public:
  Stream(const HaCluster& c, uint64_t seed) : gen_(FixedSyntheticOptions(seed, "ha-")) {
    client::PublisherOptions po;
    po.endpoint = c.ingest_both();
    po.outbox_dir = c.dir() / "outbox";
    po.resend_after = milliseconds(kSyncTimeoutMs * 2);
    po.heartbeat_interval = milliseconds(500);
    auto pub = client::Publisher::Open(po);
    if (!pub.ok()) {
      error_ = pub.status().ToString();
      return;
    }
    pub_ = std::move(pub).value();
    thread_ = std::thread([this] {
      while (!stop_.load()) {
        std::vector<v1::Event> batch;
        for (int i = 0; i < 40; ++i) {
          batch.push_back(gen_.Next());
          ids_.insert(batch.back().envelope().event_id());
        }
        Status s = pub_->Enqueue(batch);
        if (!s.ok()) {
          error_ = s.ToString();
          return;
        }
        std::this_thread::sleep_for(milliseconds(20));
      }
    });
  }
  ~Stream() { Stop(); }
  void Stop() {
    stop_.store(true);
    if (thread_.joinable()) {
      thread_.join();
    }
  }
  const std::string& error() const { return error_; }
  client::Publisher& publisher() { return *pub_; }
  const std::set<std::string>& ids() const { return ids_; }  // after Stop()

 private:
  SyntheticGenerator gen_;
  std::unique_ptr<client::Publisher> pub_;
  std::set<std::string> ids_;
  std::atomic<bool> stop_{false};
  std::string error_;
  std::thread thread_;
};

uint64_t Percentile(std::vector<uint64_t> v, double p) {
  if (v.empty()) {
    return 0;
  }
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

// A fresh event to `endpoint`: its answer, or "" when none came.
std::string ProbeAnswer(const std::string& endpoint, uint64_t seed) {
  auto pub = RawPublisher::Connect(endpoint);
  if (!pub.ok()) {
    return "";
  }
  auto events = reliability::MakeEvents(seed, "probe-", 1);
  auto result = pub.value()->Publish(events, seconds(3));
  if (!result.ok()) {
    return "";
  }
  if (result.value().results_size() == 0) {
    return "error";
  }
  const auto& r = result.value().results(0);
  return v1::EventResult::Status_Name(r.status()) + (r.reason().empty() ? "" : " " + r.reason());
}

// ACCEPTED, or DUPLICATE for a probe resent after an earlier RETRY stored it.
bool Acknowledged(const std::string& answer) {
  return answer == "ACCEPTED" || answer == "DUPLICATE";
}

TEST(AutoFailover, ChaosRoundsNothingAcknowledgedLost) {
  const uint64_t seed = reliability::TestSeed("AutoFailover", 20'261'214);
  int rounds = 4;
  if (const char* env = std::getenv("CAREHUB_FAILOVER_ROUNDS")) {
    rounds = std::max(1, std::atoi(env));
  }
  std::mt19937_64 rng(seed);
  HaCluster c("ha-chaos");
  ASSERT_CLUSTER(c);
  Stream stream(c, seed);
  ASSERT_TRUE(stream.error().empty()) << stream.error();
  std::atomic<bool> stop_feed{false};
  Feed feed;
  std::thread reader([&] { ReadFeed(c.subscribe_both(), stop_feed, &feed); });

  std::vector<uint64_t> failover_ms;
  int leader = 0;
  for (int round = 0; round < rounds; ++round) {
    ASSERT_TRUE(WaitFor([&] { return c.StandbyInSync(leader); }, kSettle))
        << "round " << round << ": " << Replication(c.admin(leader)).dump();
    std::this_thread::sleep_for(milliseconds(300 + rng() % 1500));  // mid-stream
    const int standby = 1 - leader;
    // CAREHUB_FAILOVER_ACTION=N repeats one kind of round (to chase one failure).
    const char* only = std::getenv("CAREHUB_FAILOVER_ACTION");
    const int action = only ? std::atoi(only) % 5 : static_cast<int>(rng() % 5);
    static const char* kNames[] = {"kill -9 primary", "SIGSTOP primary past its lease",
                                   "kill -9 primary, then the standby during the failover",
                                   "kill one etcd member and the primary",
                                   "primary cut off from etcd"};
    std::printf("round %d: %s (primary hub-%c)\n", round, kNames[action], "ab"[leader]);
    std::fflush(stdout);
    const int etcd_member = static_cast<int>(rng() % 3);
    if (action == 3) {
      c.etcd().Kill(etcd_member);
    }
    const auto t0 = Steady::now();
    if (action == 1) {
      c.hub(leader).Signal(SIGSTOP);
    } else if (action == 4) {
      c.CutOffFromEtcd(leader, true);
    } else {
      c.hub(leader).Kill();
    }
    if (action == 2) {
      // The standby dies while it campaigns or promotes; back, it is still the in-sync one.
      std::this_thread::sleep_for(milliseconds(rng() % (kTtlMs + 1000)));
      c.hub(standby).Kill();
      ASSERT_TRUE(c.hub(standby).Restart().ok());
    }
    ASSERT_TRUE(WaitFor([&] { return c.Leads(standby); }, kFailoverDeadline))
        << "round " << round << ": no failover: " << Replication(c.admin(standby)).dump();
    const int next = standby;
    failover_ms.push_back(static_cast<uint64_t>(
        std::chrono::duration_cast<milliseconds>(Steady::now() - t0).count()));
    std::printf("round %d: hub-%c leads after %llu ms\n", round, "ab"[next],
                static_cast<unsigned long long>(failover_ms.back()));
    if (action == 1 || action == 4) {
      // Resumed after its lease (or still cut off): it must not acknowledge anything (fenced by
      // the lease gate), and once it reaches etcd it must find out and follow the new primary.
      if (action == 1) {
        c.hub(leader).Signal(SIGCONT);
      }
      const std::string answer = ProbeAnswer(c.ingest(leader), seed + round);
      EXPECT_FALSE(Acknowledged(answer)) << "the fenced primary answered " << answer;
      if (action == 4) {
        c.CutOffFromEtcd(leader, false);
      }
      ASSERT_TRUE(WaitFor(
          [&] { return Replication(c.admin(leader)).value("role", "") == "standby"; }, kSettle))
          << Replication(c.admin(leader)).dump();
    } else {
      ASSERT_TRUE(c.hub(leader).Restart().ok());
    }
    if (action == 3) {
      ASSERT_TRUE(c.etcd().Restart(etcd_member).ok());
    }
    leader = next;
  }
  ASSERT_TRUE(WaitFor([&] { return c.StandbyInSync(leader); }, kSettle));

  stream.Stop();
  ASSERT_TRUE(stream.error().empty()) << stream.error();
  ASSERT_TRUE(stream.publisher().Drain(kSettle)) << "the outbox did not drain";
  const auto stats = stream.publisher().Stats();
  EXPECT_EQ(stats.rejected + stats.conflict, 0u);
  EXPECT_EQ(stats.accepted + stats.duplicate, stream.ids().size());
  const size_t expected = stream.ids().size();
  EXPECT_TRUE(WaitFor(
      [&] {
        std::lock_guard<std::mutex> lock(feed.mu);
        return feed.ids.size() >= expected || !feed.error.empty();
      },
      kSettle))
      << "the subscriber did not receive every event";
  stop_feed.store(true);
  reader.join();
  EXPECT_TRUE(feed.error.empty()) << feed.error;
  ASSERT_TRUE(WaitFor([&] { return c.StandbyInSync(leader); }, kSettle));
  stream.publisher().Close();

  // The standby first: the primary stopping first would hand it the lease (a new epoch).
  ASSERT_TRUE(c.hub(1 - leader).Stop().ok());
  ASSERT_TRUE(c.hub(leader).Stop().ok());

  // Every enqueued event stored exactly once.
  std::map<std::string, int> stored;
  uint64_t audited_deliveries = 0;
  {
    auto store = c.hub(leader).OpenStore();
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    for (const auto& e : ReadAllEvents(*store.value())) {
      ++stored[e.event.envelope().event_id()];
    }
    auto report = hub::CheckConsistency(*store.value());
    EXPECT_TRUE(report.ok() && report.value().problem_count == 0)
        << (report.ok() ? report.value().Summary() : report.status().ToString());
    auto audit = store.value()->audit().Query("", 0, INT64_MAX, 10'000'000);
    ASSERT_TRUE(audit.ok()) << audit.status().ToString();
    for (const auto& record : audit.value()) {
      if (record.kind() == "delivery") {
        audited_deliveries += record.delivered();
      }
    }
  }
  size_t lost = 0;
  size_t stored_twice = 0;
  for (const auto& id : stream.ids()) {
    auto it = stored.find(id);
    lost += it == stored.end();
    stored_twice += it != stored.end() && it->second > 1;
  }
  EXPECT_EQ(lost, 0u) << "enqueued events not stored";
  EXPECT_EQ(stored_twice, 0u);
  EXPECT_EQ(stored.size(), expected) << "stored events that were never sent";

  // The subscriber: no gap, no hub_seq given to two events, every delivery audited.
  size_t gaps = 0;
  for (uint64_t s = 1; s <= expected; ++s) {
    gaps += feed.ids.count(s) == 0;
  }
  EXPECT_EQ(gaps, 0u);
  EXPECT_EQ(feed.seq_given_twice, 0u);
  EXPECT_GE(audited_deliveries, feed.ids.size());

  auto cmp = hub::CompareStores(c.hub(0).data_dir(), c.hub(1).data_dir());
  ASSERT_TRUE(cmp.ok()) << cmp.status().ToString();
  EXPECT_TRUE(cmp.value().equal) << cmp.value().first_difference;

  std::printf(
      "{\"rounds\": %d, \"events\": %zu, \"lost\": %zu, \"duplicates_stored\": %zu, "
      "\"subscriber_gaps\": %zu, \"stale_deliveries_refused\": %llu, \"failover_ms_p50\": %llu, "
      "\"failover_ms_max\": %llu}\n",
      rounds, expected, lost, stored_twice, gaps,
      static_cast<unsigned long long>(feed.stale_refused),
      static_cast<unsigned long long>(Percentile(failover_ms, 0.5)),
      static_cast<unsigned long long>(Percentile(failover_ms, 1.0)));
}

TEST(AutoFailover, QuorumLostPrimaryStepsDownAndResumes) {
  HaCluster c("ha-quorum");
  ASSERT_CLUSTER(c);
  // One member of three down: nothing changes.
  c.etcd().Kill(2);
  std::this_thread::sleep_for(milliseconds(kTtlMs * 2));
  EXPECT_EQ(c.Leader(), 0);
  EXPECT_EQ(ProbeAnswer(c.ingest(0), 1), "ACCEPTED");
  // Quorum lost: the lease cannot be renewed; the primary stops acknowledging before it could
  // have expired, and says so.
  c.etcd().Kill(1);
  ASSERT_TRUE(WaitFor([&] { return HttpGet(c.admin(0), "/readyz").status == 503; },
                      milliseconds(kTtlMs * 3)));
  const std::string answer = ProbeAnswer(c.ingest(0), 2);
  EXPECT_NE(answer.find("RETRY"), std::string::npos) << answer;
  // The member's own round notices within a few etcd timeouts.
  EXPECT_TRUE(WaitFor(
      [&] {
        auto metrics = HttpGet(c.admin(0), "/metrics").body;
        return metrics.find("carehub_cluster_leader 0") != std::string::npos &&
               metrics.find("carehub_cluster_etcd_reachable 0") != std::string::npos &&
               c.hub(0).ReadLog().find("no longer the leader") != std::string::npos;
      },
      milliseconds(kTtlMs * 5)))
      << HttpGet(c.admin(0), "/metrics").body;
  // Quorum back: a leader again (either hub: both are eligible), acknowledging.
  ASSERT_TRUE(c.etcd().Restart(1).ok());
  const int leader = c.WaitLeader(kFailoverDeadline);
  ASSERT_GE(leader, 0);
  EXPECT_TRUE(WaitFor([&] { return Acknowledged(ProbeAnswer(c.ingest(leader), 3)); }, kSettle));
  ASSERT_TRUE(c.etcd().Restart(2).ok());
}

TEST(AutoFailover, OutOfSyncStandbyWaitsForcedPromotionIsAudited) {
  HaCluster c("ha-forced");
  ASSERT_CLUSTER(c);
  // The standby stops; the primary un-names it in etcd, then goes on alone (degrade).
  ASSERT_TRUE(c.hub(1).Stop().ok());
  EXPECT_TRUE(WaitFor([&] { return Acknowledged(ProbeAnswer(c.ingest(0), 10)); }, kSettle));
  c.hub(0).Kill();
  ASSERT_TRUE(c.hub(1).Restart().ok());
  // It lacks what hub A acknowledged alone: it must not take over by itself.
  std::this_thread::sleep_for(milliseconds(kTtlMs * 3));
  EXPECT_EQ(c.Leader(), -1) << Replication(c.admin(1)).dump();
  EXPECT_NE(c.hub(1).ReadLog().find("may not take over"), std::string::npos);
  // An operator forces it: loud, audited.
  auto forced = ops::RunTool("carehubctl", {"--admin", c.admin(1), "promote", "--force"}, c.dir(),
                             seconds(30));
  ASSERT_TRUE(forced.ok() && forced.value().status.Exited(0))
      << (forced.ok() ? forced.value().out + forced.value().err : forced.status().ToString());
  ASSERT_EQ(c.WaitLeader(kFailoverDeadline), 1);
  EXPECT_NE(c.hub(1).ReadLog().find("FORCED"), std::string::npos);
  ASSERT_TRUE(c.hub(1).Stop().ok());
  auto store = c.hub(1).OpenStore();
  ASSERT_TRUE(store.ok());
  auto audit = store.value()->audit().Query("", 0, INT64_MAX, 100'000);
  ASSERT_TRUE(audit.ok());
  EXPECT_TRUE(std::any_of(audit.value().begin(), audit.value().end(),
                          [](const v1::AuditRecord& r) { return r.kind() == "forced_promotion"; }));
}

// `make demo-ha` as a user runs it (scripts/demo-ha.sh), smaller: its JSON line must show nothing
// lost, nothing stored twice and no gap in the subscriber's feed.
TEST(DemoHa, PrimaryKilledMidStreamNothingAcknowledgedLost) {
  TempDir dir("demo-ha");
  const int base =
      FindFreePortBase({0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 20, 21, 22, 23}, 0x4a).value_or(23'600);
  const std::string command =
      "cd '" + dir.path().string() + "' && DEMO_OUT='" + (dir.path() / "out").string() +
      "' DEMO_HA_PORT_BASE=" + std::to_string(base) +
      " DEMO_HA_BATCHES=20 DEMO_HA_EVENTS=1000 '" CAREHUB_SOURCE_DIR "/scripts/demo-ha.sh' '" +
      std::filesystem::path(CAREHUB_BIN_DIR).parent_path().string() + "' > result.json 2> demo.log";
  const int rc = std::system(command.c_str());
  const std::string result = ReadFileText(dir.path() / "result.json");
  ASSERT_EQ(rc, 0) << result << ReadFileText(dir.path() / "demo.log");
  auto j = nlohmann::json::parse(result.substr(result.rfind('{')), nullptr, false);
  ASSERT_TRUE(j.is_object()) << result;
  EXPECT_EQ(j.value("acked", 0), 20'000) << result;
  EXPECT_EQ(j.value("stored_exactly_once", 0), 20'000) << result;
  EXPECT_EQ(j.value("lost", -1), 0) << result;
  EXPECT_EQ(j.value("duplicates_stored", -1), 0) << result;
  EXPECT_EQ(j.value("subscriber_gaps", -1), 0) << result;
  EXPECT_GT(j.value("failover_ms", 0), 0) << result;
}

}  // namespace
}  // namespace carehub::itest
