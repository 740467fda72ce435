// A synchronous standby (issue 13, docs/replication.md), with two real hub processes on loopback:
//
//   - 200k events (and resends) through a sync pair; the primary killed with kill -9 right after
//     its last ACCEPTED: the standby holds every acknowledged event, and the two stores compare
//     equal record for record;
//   - the primary killed mid-stream with a subscriber reading from both endpoints: the standby is
//     promoted with carehubctl, the old primary rejoins as its standby, the publisher resends:
//     every event answered ACCEPTED before the kill is answered DUPLICATE with the same hub_seq,
//     every event is stored exactly once, and the subscriber saw every hub_seq (no gap);
//   - a standby killed and restarted catches up from its position (no full copy); a standby whose
//     data dir was wiped takes a full copy while ingest goes on;
//   - on_standby_loss: block answers RETRY (nothing on one disk only), degrade accepts and says so;
//   - a planned switch-over (demote, promote) with the client library's publisher: zero lost, zero
//     stored twice.
//
// Seeds are printed (CAREHUB_SEED replays a run). Deadlines derive from the pair's timeouts.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <zmq.hpp>

#include "carehub/client/publisher.h"
#include "carehub/client/subscriber.h"
#include "carehub/hub/consistency.h"
#include "carehub/hub/store.h"
#include "carehub/hub/store_compare.h"
#include "carehub/v1/replication.pb.h"
#include "harness/ports.h"
#include "harness/raw_publisher.h"
#include "ops_common.h"
#include "reliability_support.h"
#include "security_support.h"
#include "subscribe_support.h"

namespace carehub::itest {
namespace {

using ops::HttpGet;
using ops::ParseSamples;
using ops::RunTool;
using ops::SumSamples;
using ops::WaitFor;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kSubscription = "repl-feed";
constexpr const char* kAgreements = R"(subscribers:
  - id: repl-reader
    subscriptions:
      - {id: repl-feed, purpose: direct_care}
agreements:
  - id: DSA-REPL
    subscriber: repl-reader
    purpose: direct_care
    legal_basis: "test"
    valid_from: 2020-01-01
    valid_until: 2099-12-31
    sources: ["*"]
    event_types: ["*"]
    patient_fields: identifiable
)";

// A standby silent this long leaves sync; everything that waits on the pair derives from it.
constexpr int kSyncTimeoutMs = 1500;
const milliseconds kSettle{kSyncTimeoutMs * 20};

// Port offsets from the pair's base: hub A at +0.., hub B at +10...
enum Port { kIngest = 0, kSubscribe = 1, kAdmin = 2, kReplication = 3 };

std::string Tcp(int port) { return "tcp://127.0.0.1:" + std::to_string(port); }

struct PairOptions {
  static PairOptions Loss(std::string on_standby_loss) {
    PairOptions o;
    o.on_standby_loss = std::move(on_standby_loss);
    return o;
  }
  std::string mode = "sync";
  std::string on_standby_loss = "block";
  // CURVE: appended to each hub's config (security section and replication.key_file).
  std::string curve_yaml_a;
  std::string curve_yaml_b;
  bool wait_in_sync = true;  // the constructor waits until the standby is in sync
};

// The hub config of one side of the pair (`self` 0 = A, 1 = B).
std::string SideYaml(int base, int self, const std::string& role, const PairOptions& o) {
  const int me = base + self * 10;
  const int peer = base + (1 - self) * 10;
  return "ingest: {endpoint: " + Tcp(me + kIngest) + "}\n" +
         "subscribe: {endpoint: " + Tcp(me + kSubscribe) + ", heartbeat_interval_ms: 500}\n" +
         "admin: {listen: 127.0.0.1:" + std::to_string(me + kAdmin) + "}\n" +
         "replication:\n  role: " + role + "\n  name: hub-" + (self == 0 ? "a" : "b") +
         "\n  listen: " + Tcp(me + kReplication) +
         "\n  peer: {replication: " + Tcp(peer + kReplication) +
         ", ingest: " + Tcp(peer + kIngest) + ", subscribe: " + Tcp(peer + kSubscribe) +
         "}\n  mode: " + o.mode + "\n  on_standby_loss: " + o.on_standby_loss +
         "\n  sync_timeout_ms: " + std::to_string(kSyncTimeoutMs) + "\n" +
         (self == 0 ? o.curve_yaml_a : o.curve_yaml_b);
}

nlohmann::json Replication(const std::string& admin) {
  auto answer = HttpGet(admin, "/api/v1/replication");
  if (answer.status != 200) {
    return nlohmann::json::object();
  }
  return nlohmann::json::parse(answer.body, nullptr, false);
}

bool StandbyInSync(const std::string& primary_admin) {
  auto r = Replication(primary_admin);
  return r.value("role", "") == "primary" && r.contains("standby") &&
         r["standby"].value("in_sync", false);
}

// Rewrites replication.role in a hub's config, for its next start.
void SetRole(HubProcess& hub, const std::string& role) {
  std::string text = ReadFileText(hub.config_path());
  for (const char* old : {"role: primary", "role: standby"}) {
    auto at = text.find(old);
    if (at != std::string::npos) {
      text.replace(at, std::string(old).size(), "role: " + role);
    }
  }
  ASSERT_TRUE(WriteFileAtomically(hub.config_path(), text).ok());
}

class Pair {
 public:
  Pair(const std::string& tag, PairOptions options) : options_(std::move(options)), dir_(tag) {
    auto base = FindFreePortBase({0, 1, 2, 3, 10, 11, 12, 13}, std::hash<std::string>()(tag));
    if (!base) {
      error_ = "no free loopback ports";
      return;
    }
    base_ = *base;
    auto agreements = WritePolicyFiles(dir_.path(), kAgreements);
    if (!agreements.ok()) {
      error_ = agreements.status().ToString();
      return;
    }
    auto a = HubProcess::Start(
        HubWithAgreements(tag + "-a", agreements.value(), SideYaml(base_, 0, "primary", options_)));
    if (!a.ok()) {
      error_ = a.status().ToString();
      return;
    }
    a_ = std::move(a).value();
    auto b = HubProcess::Start(
        HubWithAgreements(tag + "-b", agreements.value(), SideYaml(base_, 1, "standby", options_)));
    if (!b.ok()) {
      error_ = b.status().ToString();
      return;
    }
    b_ = std::move(b).value();
    if (options_.wait_in_sync && !WaitFor([&] { return StandbyInSync(admin(0)); }, kSettle)) {
      error_ = "the standby did not get in sync: " + Replication(admin(0)).dump();
    }
  }

  const std::string& error() const { return error_; }
  HubProcess& hub(int side) { return side == 0 ? *a_ : *b_; }
  std::string ingest(int side) const { return Tcp(base_ + side * 10 + kIngest); }
  std::string subscribe(int side) const { return Tcp(base_ + side * 10 + kSubscribe); }
  std::string admin(int side) const {
    return "127.0.0.1:" + std::to_string(base_ + side * 10 + kAdmin);
  }
  std::string replication(int side) const { return Tcp(base_ + side * 10 + kReplication); }
  std::string ingest_both() const { return ingest(0) + "," + ingest(1); }
  std::string subscribe_both() const { return subscribe(0) + "," + subscribe(1); }
  const std::filesystem::path& dir() const { return dir_.path(); }

  Result<CommandResult> Ctl(int side, const std::vector<std::string>& args) {
    std::vector<std::string> all = {"--admin", admin(side)};
    all.insert(all.end(), args.begin(), args.end());
    return RunTool("carehubctl", all, dir_.path(), seconds(60));
  }

 private:
  PairOptions options_;
  TempDir dir_;
  int base_ = 0;
  std::string error_;
  std::unique_ptr<HubProcess> a_;
  std::unique_ptr<HubProcess> b_;
};

#define ASSERT_PAIR(pair) ASSERT_TRUE((pair).error().empty()) << (pair).error()

void ExpectStoresEqual(Pair& pair) {
  auto cmp = hub::CompareStores(pair.hub(0).data_dir(), pair.hub(1).data_dir());
  ASSERT_TRUE(cmp.ok()) << cmp.status().ToString();
  EXPECT_TRUE(cmp.value().equal) << cmp.value().first_difference;
  EXPECT_GT(cmp.value().records, 0u);
  std::printf("stores equal: %llu records, position %llu\n",
              static_cast<unsigned long long>(cmp.value().records),
              static_cast<unsigned long long>(cmp.value().position_a));
}

// event_id -> how many times it is stored; every stored event must be one of `events`.
std::map<std::string, int> StoredIds(HubProcess& hub) {
  std::map<std::string, int> ids;
  auto store = hub.OpenStore();
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  if (!store.ok()) {
    return ids;
  }
  for (const auto& e : ReadAllEvents(*store.value())) {
    ++ids[e.event.envelope().event_id()];
  }
  auto report = hub::CheckConsistency(*store.value());
  EXPECT_TRUE(report.ok() && report.value().problem_count == 0)
      << (report.ok() ? report.value().Summary() : report.status().ToString());
  return ids;
}

// `expected` events in the hub's store, none twice.
void ExpectEachStoredOnce(HubProcess& hub, size_t expected) {
  auto ids = StoredIds(hub);
  EXPECT_EQ(ids.size(), expected);
  for (const auto& [id, n] : ids) {
    ASSERT_EQ(n, 1) << id << " stored " << n << " times";
  }
}

TEST(ReplicationSync, EveryAcknowledgedEventIsOnTheStandbyWhenThePrimaryDies) {
  const uint64_t seed = reliability::TestSeed("ReplicationSync", 20'261'202);
  Pair pair("repl-sync", {});
  ASSERT_PAIR(pair);
  const auto events = reliability::MakeEvents(seed, "rs-", 200'000);
  auto pub = RawPublisher::Connect(pair.ingest(0));
  ASSERT_TRUE(pub.ok());
  auto acked = reliability::PublishAcked(*pub.value(), events, 1000);
  ASSERT_TRUE(acked.ok()) << acked.status().ToString();
  // Resends of a random tenth: DUPLICATE with the hub_seq first given.
  std::mt19937_64 rng(seed);
  std::vector<v1::Event> resends;
  for (const auto& e : events) {
    if (rng() % 10 == 0) {
      resends.push_back(e);
    }
  }
  auto again = pub.value()->PublishAll(resends, 1000, 4, seconds(60));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  for (size_t i = 0; i < resends.size(); ++i) {
    ASSERT_EQ((*again)[i].status(), v1::EventResult::DUPLICATE);
    ASSERT_EQ((*again)[i].hub_seq(), acked.value().at(resends[i].envelope().event_id()));
  }
  // The last answer is out: whatever the primary does now, the standby has it all.
  pair.hub(0).Kill();
  ASSERT_TRUE(pair.hub(1).Stop().ok());
  auto ids = StoredIds(pair.hub(1));
  EXPECT_EQ(ids.size(), events.size());
  size_t missing = 0;
  for (const auto& [id, seq] : acked.value()) {
    missing += ids.count(id) == 0;
  }
  EXPECT_EQ(missing, 0u) << "acknowledged events not on the standby";
  for (const auto& [id, n] : ids) {
    ASSERT_EQ(n, 1) << id << " stored " << n << " times";
  }
  ExpectStoresEqual(pair);
}

// Reads the subscription from both hubs' endpoints, acking as it goes, until `stop`.
void ReadFeed(const std::string& endpoints, const std::atomic<bool>& stop, std::set<uint64_t>* seqs,
              std::mutex* mu, std::string* error) {
  client::SubscriberOptions so;
  so.endpoint = endpoints;
  so.subscription = kSubscription;
  so.start = v1::Subscribe::START_EARLIEST;
  so.window = 2000;
  so.heartbeat_interval = milliseconds(500);
  so.hub_timeout = milliseconds(kSyncTimeoutMs * 2);
  so.connect_timeout = seconds(10);
  auto sub = client::Subscriber::Open(so);
  if (!sub.ok()) {
    *error = sub.status().ToString();
    return;
  }
  while (!stop.load()) {
    auto batch = sub.value()->Next(milliseconds(100));
    if (!batch.ok()) {
      *error = batch.status().ToString();
      return;
    }
    if (!batch.value()) {
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(*mu);
      for (const auto& e : batch.value()->events) {
        seqs->insert(e.event().envelope().hub_seq());
      }
    }
    (void)sub.value()->Ack(batch.value()->scanned_to_seq);
  }
}

TEST(ReplicationFailover, PrimaryKilledStandbyPromotedNothingAcknowledgedLostNoGap) {
  const uint64_t seed = reliability::TestSeed("ReplicationFailover", 20'261'203);
  Pair pair("repl-failover", {});
  ASSERT_PAIR(pair);
  const auto events = reliability::MakeEvents(seed, "rf-", 30'000);
  constexpr size_t kBatch = 100;
  std::mt19937_64 rng(seed);
  const size_t kill_after = std::uniform_int_distribution<size_t>(20, 250)(rng);
  std::printf("kill -9 of the primary after batch %zu of %zu\n", kill_after,
              events.size() / kBatch);

  std::atomic<bool> stop{false};
  std::set<uint64_t> seen;
  std::mutex seen_mu;
  std::string read_error;
  std::thread reader([&] { ReadFeed(pair.subscribe_both(), stop, &seen, &seen_mu, &read_error); });

  std::map<std::string, uint64_t> acked;
  {
    auto pub = RawPublisher::Connect(pair.ingest(0));
    ASSERT_TRUE(pub.ok());
    for (size_t b = 0; b < kill_after; ++b) {
      std::span<const v1::Event> batch(events.data() + b * kBatch, kBatch);
      auto result = pub.value()->Publish(batch, seconds(30));
      ASSERT_TRUE(result.ok()) << result.status().ToString();
      for (const auto& r : result.value().results()) {
        ASSERT_EQ(r.status(), v1::EventResult::ACCEPTED) << r.reason();
        acked[r.event_id()] = r.hub_seq();
      }
    }
    // One batch in flight when the primary dies: its outcome is unknown to the publisher.
    (void)pub.value()->SendPublish(
        std::span<const v1::Event>(events.data() + kill_after * kBatch, kBatch));
    pair.hub(0).Kill();
  }
  auto promoted = pair.Ctl(1, {"promote"});
  ASSERT_TRUE(promoted.ok() && promoted.value().status.Exited(0))
      << (promoted.ok() ? promoted.value().err : promoted.status().ToString());
  // The old primary rejoins as the new primary's standby (block: the new primary waits for it).
  SetRole(pair.hub(0), "standby");
  ASSERT_TRUE(pair.hub(0).Restart().ok());
  ASSERT_TRUE(WaitFor([&] { return StandbyInSync(pair.admin(1)); }, kSettle))
      << Replication(pair.admin(1)).dump();

  // The publisher resends everything it was not sure of, and more, to the new primary.
  auto pub = RawPublisher::Connect(pair.ingest(1));
  ASSERT_TRUE(pub.ok());
  auto results = pub.value()->PublishAll(events, 500, 4, seconds(120));
  ASSERT_TRUE(results.ok()) << results.status().ToString();
  size_t duplicates = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    const auto& r = (*results)[i];
    auto before = acked.find(events[i].envelope().event_id());
    if (before != acked.end()) {
      ASSERT_EQ(r.status(), v1::EventResult::DUPLICATE) << "acknowledged before the kill";
      ASSERT_EQ(r.hub_seq(), before->second) << "a different hub_seq after failover";
      ++duplicates;
    } else {
      ASSERT_TRUE(r.status() == v1::EventResult::ACCEPTED ||
                  r.status() == v1::EventResult::DUPLICATE)
          << v1::EventResult::Status_Name(r.status()) << " " << r.reason();
    }
  }
  EXPECT_EQ(duplicates, acked.size());

  const uint64_t last = events.size();  // every event stored once: hub_seqs 1..N
  const bool complete = WaitFor(
      [&] {
        std::lock_guard<std::mutex> lock(seen_mu);
        return seen.size() >= last || !read_error.empty();
      },
      kSettle);
  stop.store(true);
  reader.join();
  EXPECT_TRUE(read_error.empty()) << read_error;
  EXPECT_TRUE(complete);
  size_t gaps = 0;
  for (uint64_t s = 1; s <= last; ++s) {
    gaps += seen.count(s) == 0;
  }
  EXPECT_EQ(gaps, 0u) << "hub_seqs the subscriber never received";

  ASSERT_TRUE(pair.hub(1).Stop().ok());
  ASSERT_TRUE(pair.hub(0).Stop().ok());
  ExpectEachStoredOnce(pair.hub(1), events.size());
  ExpectStoresEqual(pair);
}

TEST(ReplicationCatchUp, StandbyKilledAndRestartedResumesFromItsPosition) {
  const uint64_t seed = reliability::TestSeed("ReplicationCatchUp", 20'261'204);
  Pair pair("repl-catchup", PairOptions::Loss("degrade"));
  ASSERT_PAIR(pair);
  const auto events = reliability::MakeEvents(seed, "rc-", 45'000);
  auto pub = RawPublisher::Connect(pair.ingest(0));
  ASSERT_TRUE(pub.ok());
  auto first = std::span<const v1::Event>(events).subspan(0, 20'000);
  ASSERT_TRUE(reliability::PublishAcked(*pub.value(), {first.begin(), first.end()}, 500).ok());
  pair.hub(1).Kill();
  // degrade: the primary goes on alone (its first commit waits out the sync timeout).
  auto second = std::span<const v1::Event>(events).subspan(20'000, 20'000);
  ASSERT_TRUE(reliability::PublishAcked(*pub.value(), {second.begin(), second.end()}, 500).ok());
  EXPECT_FALSE(StandbyInSync(pair.admin(0)));
  ASSERT_TRUE(pair.hub(1).Restart().ok());
  ASSERT_TRUE(WaitFor([&] { return StandbyInSync(pair.admin(0)); }, kSettle));
  auto standby = Replication(pair.admin(1));
  EXPECT_EQ(standby.value("full_copies", 99), 0) << standby.dump();
  auto third = std::span<const v1::Event>(events).subspan(40'000);
  ASSERT_TRUE(reliability::PublishAcked(*pub.value(), {third.begin(), third.end()}, 500).ok());
  ASSERT_TRUE(pair.hub(0).Stop().ok());
  ASSERT_TRUE(pair.hub(1).Stop().ok());
  ExpectStoresEqual(pair);
  ExpectEachStoredOnce(pair.hub(1), events.size());
}

TEST(ReplicationResync, WipedStandbyTakesAFullCopyWhileIngestGoesOn) {
  const uint64_t seed = reliability::TestSeed("ReplicationResync", 20'261'205);
  Pair pair("repl-resync", PairOptions::Loss("degrade"));
  ASSERT_PAIR(pair);
  const auto events = reliability::MakeEvents(seed, "rw-", 40'000);
  auto pub = RawPublisher::Connect(pair.ingest(0));
  ASSERT_TRUE(pub.ok());
  auto first = std::span<const v1::Event>(events).subspan(0, 20'000);
  ASSERT_TRUE(reliability::PublishAcked(*pub.value(), {first.begin(), first.end()}, 500).ok());
  ASSERT_TRUE(pair.hub(1).Stop().ok());
  std::filesystem::remove_all(pair.hub(1).data_dir());
  std::atomic<bool> published{false};
  Status publish_status;
  std::thread ingest([&] {
    auto second = std::span<const v1::Event>(events).subspan(20'000);
    auto r = reliability::PublishAcked(*pub.value(), {second.begin(), second.end()}, 200);
    publish_status = r.status();
    published.store(true);
  });
  ASSERT_TRUE(pair.hub(1).Restart().ok());
  ingest.join();
  EXPECT_TRUE(publish_status.ok()) << publish_status.ToString();
  ASSERT_TRUE(WaitFor([&] { return StandbyInSync(pair.admin(0)); }, kSettle));
  auto standby = Replication(pair.admin(1));
  EXPECT_GE(standby.value("full_copies", 0), 1) << standby.dump();
  ASSERT_TRUE(pair.hub(0).Stop().ok());
  ASSERT_TRUE(pair.hub(1).Stop().ok());
  ExpectStoresEqual(pair);
  ExpectEachStoredOnce(pair.hub(1), events.size());
}

TEST(ReplicationRoles, StandbyAnswersNotPrimaryNamingThePrimary) {
  Pair pair("repl-roles", {});
  ASSERT_PAIR(pair);
  const auto events = reliability::MakeEvents(7, "rr-", 10);
  auto pub = RawPublisher::Connect(pair.ingest(1));
  ASSERT_TRUE(pub.ok());
  auto batch_id = pub.value()->SendPublish(events);
  ASSERT_TRUE(batch_id.ok());
  auto error = pub.value()->WaitForError(seconds(10));
  ASSERT_TRUE(error.ok() && error.value().has_value());
  EXPECT_EQ(error.value()->code(), "not_primary");
  EXPECT_EQ(error.value()->batch_id(), batch_id.value());
  EXPECT_EQ(error.value()->primary_endpoint(), pair.ingest(0));
  v1::Frame subscribe;
  subscribe.set_version(v1::PROTOCOL_VERSION_1);
  subscribe.mutable_subscribe()->set_subscription(kSubscription);
  subscribe.mutable_subscribe()->set_start(v1::Subscribe::START_EARLIEST);
  auto sub = RawPublisher::Connect(pair.subscribe(1));
  ASSERT_TRUE(sub.ok());
  ASSERT_TRUE(sub.value()->SendFrame(subscribe).ok());
  auto refused = sub.value()->WaitForError(seconds(10));
  ASSERT_TRUE(refused.ok() && refused.value().has_value());
  EXPECT_EQ(refused.value()->code(), "not_primary");
  EXPECT_TRUE(refused.value()->fatal());
  EXPECT_EQ(refused.value()->primary_endpoint(), pair.subscribe(0));
  // Nothing reached the standby's store but what the primary replicated.
  EXPECT_EQ(HttpGet(pair.admin(1), "/readyz").status, 503);
}

// A standby whose binary predates store format 2 says no store_format in its hello, and would
// read only the first event of each route-index entry the primary writes: refused, by name, while
// the pair's own standby stays in sync.
TEST(ReplicationRoles, PrimaryRefusesAStandbyThatCannotReadItsStoreFormat) {
  Pair pair("repl-format", {});
  ASSERT_PAIR(pair);
  zmq::context_t context;
  zmq::socket_t old_standby(context, zmq::socket_type::dealer);
  old_standby.set(zmq::sockopt::linger, 0);
  old_standby.connect(pair.replication(0));
  v1::ReplicationFrame hello;
  hello.mutable_hello()->set_name("hub-old");
  hello.mutable_hello()->set_want_copy(true);
  const std::string bytes = hello.SerializeAsString();
  ASSERT_TRUE(old_standby.send(zmq::buffer(bytes), zmq::send_flags::none));
  // The answer races nothing but the primary's own loop: kSettle is its generous bound.
  zmq::pollitem_t item{old_standby.handle(), 0, ZMQ_POLLIN, 0};
  ASSERT_EQ(zmq::poll(&item, 1, kSettle), 1) << "no answer to the hello";
  zmq::message_t answer;
  ASSERT_TRUE(old_standby.recv(answer));
  v1::ReplicationFrame frame;
  ASSERT_TRUE(frame.ParseFromArray(answer.data(), static_cast<int>(answer.size())));
  ASSERT_TRUE(frame.has_refused()) << frame.ShortDebugString();
  EXPECT_EQ(frame.refused().code(), "store_format");
  EXPECT_NE(frame.refused().message().find("format " + std::to_string(hub::kStoreFormat)),
            std::string::npos)
      << frame.refused().message();
  EXPECT_TRUE(StandbyInSync(pair.admin(0))) << Replication(pair.admin(0)).dump();
}

// CURVE: the replication endpoint admits only identities of kind replica; a pair shares one
// server key, so a client with both endpoints needs one server key.
TEST(ReplicationCurve, OnlyAReplicaKeyMayFollow) {
  TempDir keys("repl-curve-keys");
  const auto server = security::NewKeyPair();
  const auto replica_a = security::NewKeyPair();
  const auto replica_b = security::NewKeyPair();
  const auto publisher = security::NewKeyPair();
  security::WriteKeyFile(keys.path() / "hub.key", server);
  security::WriteKeyFile(keys.path() / "hub-a-replica.key", replica_a);
  security::WriteKeyFile(keys.path() / "hub-b-replica.key", replica_b);
  // Hub B follows with the publisher's key: not a replica.
  security::WriteKeyFile(keys.path() / "not-a-replica.key", publisher);
  std::vector<security::Party> parties = {
      {"rxk-pas", "publisher", {"RXK", "RR8", "M85001", "M85002", "RY6"}, "", {publisher}},
      {"hub-a", "replica", {}, "", {replica_a}},
      {"hub-b", "replica", {}, "", {replica_b}}};
  ASSERT_TRUE(
      WriteFileAtomically(keys.path() / "identities.yaml", security::IdentitiesYaml(parties)).ok());
  auto curve = [&](const std::string& key) {
    return "security:\n  mode: curve\n  server_key_file: " + (keys.path() / "hub.key").string() +
           "\n  identities: " + (keys.path() / "identities.yaml").string() +
           "\nreplication:\n  key_file: " + (keys.path() / key).string() + "\n";
  };
  {
    PairOptions o;
    o.curve_yaml_a = curve("hub-a-replica.key");
    o.curve_yaml_b = curve("not-a-replica.key");
    o.wait_in_sync = false;
    Pair refused("repl-curve-bad", o);
    ASSERT_PAIR(refused);
    // Long enough for several connection attempts (the follower retries within a second).
    std::this_thread::sleep_for(milliseconds(kSyncTimeoutMs * 2));
    EXPECT_FALSE(StandbyInSync(refused.admin(0)));
    auto standby = Replication(refused.admin(1));
    EXPECT_FALSE(standby.value("connected", true)) << standby.dump();
    EXPECT_NE(refused.hub(0).ReadLog().find("carehub-replication"), std::string::npos)
        << "the primary's log names the refused domain";
  }
  PairOptions o;
  o.curve_yaml_a = curve("hub-a-replica.key");
  o.curve_yaml_b = curve("hub-b-replica.key");
  Pair pair("repl-curve", o);
  ASSERT_PAIR(pair);
  client::PublisherOptions po;
  po.endpoint = pair.ingest_both();
  po.outbox_dir = pair.dir() / "outbox";
  po.sync_outbox = false;
  po.curve = client::CurveClientKeys{publisher.pub, publisher.sec, server.pub};
  auto pub = client::Publisher::Open(po);
  ASSERT_TRUE(pub.ok()) << pub.status().ToString();
  const auto events = reliability::MakeEvents(11, "rcv-", 2000);
  ASSERT_TRUE(pub.value()->Enqueue(events).ok());
  ASSERT_TRUE(pub.value()->Drain(kSettle));
  EXPECT_EQ(pub.value()->Stats().accepted, events.size());
  pub.value()->Close();
  ASSERT_TRUE(pair.hub(0).Stop().ok());
  ASSERT_TRUE(pair.hub(1).Stop().ok());
  ExpectStoresEqual(pair);
}

TEST(ReplicationLoss, BlockAnswersRetryUntilTheStandbyIsBack) {
  const uint64_t seed = reliability::TestSeed("ReplicationLossBlock", 20'261'206);
  Pair pair("repl-block", PairOptions::Loss("block"));
  ASSERT_PAIR(pair);
  const auto events = reliability::MakeEvents(seed, "rb-", 300);
  auto pub = RawPublisher::Connect(pair.ingest(0));
  ASSERT_TRUE(pub.ok());
  ASSERT_TRUE(pair.hub(1).Stop().ok());
  // The first commit after the loss waits out the sync timeout; from then on the gate answers.
  for (int round = 0; round < 2; ++round) {
    auto batch = std::span<const v1::Event>(events).subspan(round * 100, 100);
    auto result = pub.value()->Publish(batch, milliseconds(kSyncTimeoutMs * 4));
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    for (const auto& r : result.value().results()) {
      ASSERT_EQ(r.status(), v1::EventResult::RETRY);
      ASSERT_EQ(r.reason(), "standby_unavailable");
    }
  }
  EXPECT_EQ(HttpGet(pair.admin(0), "/readyz").status, 503);
  ASSERT_TRUE(pair.hub(1).Restart().ok());
  ASSERT_TRUE(WaitFor([&] { return StandbyInSync(pair.admin(0)); }, kSettle));
  EXPECT_EQ(HttpGet(pair.admin(0), "/readyz").status, 200);
  auto results = pub.value()->PublishAll(events, 100, 2, seconds(60));
  ASSERT_TRUE(results.ok()) << results.status().ToString();
  for (const auto& r : results.value()) {
    // DUPLICATE: a batch the primary had written before the sync timeout answered RETRY.
    ASSERT_TRUE(r.status() == v1::EventResult::ACCEPTED || r.status() == v1::EventResult::DUPLICATE)
        << v1::EventResult::Status_Name(r.status()) << " " << r.reason() << " " << r.message();
  }
  ASSERT_TRUE(pair.hub(0).Stop().ok());
  ASSERT_TRUE(pair.hub(1).Stop().ok());
  ExpectStoresEqual(pair);
}

TEST(ReplicationLoss, DegradeAcceptsOnOneDiskAndSaysSo) {
  const uint64_t seed = reliability::TestSeed("ReplicationLossDegrade", 20'261'207);
  Pair pair("repl-degrade", PairOptions::Loss("degrade"));
  ASSERT_PAIR(pair);
  const auto events = reliability::MakeEvents(seed, "rd-", 400);
  auto pub = RawPublisher::Connect(pair.ingest(0));
  ASSERT_TRUE(pub.ok());
  ASSERT_TRUE(pair.hub(1).Stop().ok());
  auto first = std::span<const v1::Event>(events).subspan(0, 200);
  ASSERT_TRUE(reliability::PublishAcked(*pub.value(), {first.begin(), first.end()}, 100).ok());
  auto r = Replication(pair.admin(0));
  EXPECT_FALSE(r["standby"].value("in_sync", true)) << r.dump();
  EXPECT_TRUE(r.value("accepting_writes", false));
  auto metrics = ParseSamples(HttpGet(pair.admin(0), "/metrics").body);
  EXPECT_GE(SumSamples(metrics, "carehub_replication_sync_lost_total"), 1.0);
  ASSERT_TRUE(pair.hub(1).Restart().ok());
  ASSERT_TRUE(WaitFor([&] { return StandbyInSync(pair.admin(0)); }, kSettle));
  auto second = std::span<const v1::Event>(events).subspan(200);
  ASSERT_TRUE(reliability::PublishAcked(*pub.value(), {second.begin(), second.end()}, 100).ok());
  ASSERT_TRUE(pair.hub(0).Stop().ok());
  ASSERT_TRUE(pair.hub(1).Stop().ok());
  ExpectStoresEqual(pair);
}

// Async never waits for the standby, so losing it must not stop ingest, whatever
// on_standby_loss says (block is about a synchronous pair). It used to: the primary answered RETRY
// standby_unavailable once the standby left sync (found by carehub_bench_quick under a CPU hog,
// where the async standby fell behind and was dropped).
TEST(ReplicationLoss, AsyncKeepsAcceptingWhenItsStandbyLeaves) {
  const uint64_t seed = reliability::TestSeed("ReplicationLossAsync", 20'261'208);
  PairOptions o;
  o.mode = "async";
  o.on_standby_loss = "block";
  Pair pair("repl-async-loss", o);
  ASSERT_PAIR(pair);
  const auto events = reliability::MakeEvents(seed, "ra-", 300);
  auto pub = RawPublisher::Connect(pair.ingest(0));
  ASSERT_TRUE(pub.ok());
  auto first = std::span<const v1::Event>(events).subspan(0, 100);
  ASSERT_TRUE(reliability::PublishAcked(*pub.value(), {first.begin(), first.end()}, 100).ok());
  ASSERT_TRUE(pair.hub(1).Stop().ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        auto r = Replication(pair.admin(0));
        return r.contains("standby") && !r["standby"].value("in_sync", true);
      },
      kSettle))
      << Replication(pair.admin(0)).dump();
  EXPECT_TRUE(Replication(pair.admin(0)).value("accepting_writes", false));
  auto rest = std::span<const v1::Event>(events).subspan(100);
  auto results = pub.value()->PublishAll(rest, 100, 2, seconds(60));
  ASSERT_TRUE(results.ok()) << results.status().ToString();
  for (const auto& r : results.value()) {
    ASSERT_EQ(r.status(), v1::EventResult::ACCEPTED)
        << v1::EventResult::Status_Name(r.status()) << " " << r.reason() << " " << r.message();
  }
  EXPECT_EQ(HttpGet(pair.admin(0), "/readyz").status, 200);
  ASSERT_TRUE(pair.hub(0).Stop().ok());
}

TEST(ReplicationSwitchover, DemoteThenPromoteLosesNothingAndStoresNothingTwice) {
  const uint64_t seed = reliability::TestSeed("ReplicationSwitchover", 20'261'208);
  Pair pair("repl-switch", {});
  ASSERT_PAIR(pair);
  const auto events = reliability::MakeEvents(seed, "rso-", 20'000);
  client::PublisherOptions po;
  po.endpoint = pair.ingest_both();
  po.outbox_dir = pair.dir() / "outbox";
  po.sync_outbox = false;
  po.heartbeat_interval = milliseconds(500);
  po.resend_after = milliseconds(kSyncTimeoutMs * 2);
  auto publisher = client::Publisher::Open(po);
  ASSERT_TRUE(publisher.ok()) << publisher.status().ToString();
  std::thread feeder([&] {
    for (size_t i = 0; i < events.size(); i += 200) {
      std::vector<v1::Event> chunk(events.begin() + i, events.begin() + i + 200);
      (void)publisher.value()->Enqueue(chunk);
      std::this_thread::sleep_for(milliseconds(5));
    }
  });
  std::this_thread::sleep_for(milliseconds(200));
  auto demoted = pair.Ctl(0, {"demote"});
  ASSERT_TRUE(demoted.ok() && demoted.value().status.Exited(0))
      << (demoted.ok() ? demoted.value().err : demoted.status().ToString());
  auto promoted = pair.Ctl(1, {"promote"});
  ASSERT_TRUE(promoted.ok() && promoted.value().status.Exited(0))
      << (promoted.ok() ? promoted.value().err : promoted.status().ToString());
  feeder.join();
  // The demoted hub follows the new primary by itself.
  ASSERT_TRUE(WaitFor([&] { return StandbyInSync(pair.admin(1)); }, kSettle))
      << Replication(pair.admin(1)).dump();
  ASSERT_TRUE(publisher.value()->Drain(kSettle * 2));
  auto stats = publisher.value()->Stats();
  publisher.value()->Close();
  EXPECT_EQ(stats.accepted + stats.duplicate, events.size());
  EXPECT_EQ(stats.rejected + stats.conflict, 0u);
  auto status = pair.Ctl(1, {"cluster", "status", "--hubs", pair.admin(0) + "," + pair.admin(1)});
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(status.value().status.Exited(0)) << status.value().out << status.value().err;
  std::printf("%s", status.value().out.c_str());
  ASSERT_TRUE(pair.hub(1).Stop().ok());
  ASSERT_TRUE(pair.hub(0).Stop().ok());
  ExpectEachStoredOnce(pair.hub(1), events.size());
  ExpectStoresEqual(pair);
}

}  // namespace
}  // namespace carehub::itest
