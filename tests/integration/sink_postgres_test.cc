// carehub-sink postgres (issue 19) against a real PostgreSQL 15 server the test starts itself
// (pg_cluster.h), a real hub and real ZeroMQ on loopback:
//   - 200,000 events with UPDATE and CANCEL lifecycles land with the counts and the current state
//     the test computes from what it published (the oracle is the test's, not the sink's);
//   - the sink killed with SIGKILL at seeded points (its own crash points and timed kill -9s) and
//     started again stores every event exactly once;
//   - PostgreSQL stopped and started under a running sink: it waits, reconnects and continues;
//   - a secondary-use feed's tables hold no NHS number, name, address, MRN, full postcode or full
//     birth date (searched for in a pg_dump, value by value);
//   - a bad config or a subscription the hub refuses ends the sink with a one-line reason.
// Deadlines derive from the timeouts they race (the sink's backoff and batch delay, the harness's
// scaled waits); no assertion is about speed. The load rates are printed, beside the plain
// subscriber's rate over the same feed in the same run.

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "carehub/core/event_types.h"
#include "carehub/core/synthetic.h"
#include "harness/workload.h"
#include "sink_support.h"
#include "subscribe_support.h"

namespace carehub::itest {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Steady = std::chrono::steady_clock;

constexpr const char* kAgreements = R"(subscribers:
  - id: pg-tester
    subscriptions:
      - {id: pg-feed, purpose: direct_care}
  - id: pg-analyst
    subscriptions:
      - {id: pg-secondary, purpose: secondary_use}
agreements:
  - id: DSA-T-PG-DC
    subscriber: pg-tester
    purpose: direct_care
    legal_basis: "test: direct care"
    valid_from: 2020-01-01
    valid_until: 2099-12-31
    sources: ["*"]
    event_types: ["*"]
    patient_fields: identifiable
  - id: DSA-T-PG-SU
    subscriber: pg-analyst
    purpose: secondary_use
    legal_basis: "test: secondary use"
    valid_from: 2020-01-01
    valid_until: 2099-12-31
    sources: ["*"]
    event_types: ["*"]
    patient_fields: pseudonymised
pseudonymisation:
  secret_file: pseudonym.key
opt_out:
  file: national-opt-out.txt
)";

// The sink's batch delay and backoff in these tests; waits below are multiples of them.
constexpr int kBatchDelayMs = 100;
constexpr int kBackoffMaxMs = 1000;

std::vector<v1::Event> Synthetic(uint64_t seed, const std::string& prefix, size_t n) {
  SyntheticGenerator gen(FixedSyntheticOptions(seed, prefix));
  std::vector<v1::Event> events;
  events.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    events.push_back(gen.Next());
  }
  return events;
}

// What the tables must hold, computed from the published events alone.
struct Oracle {
  size_t events = 0;
  size_t activities = 0;
  size_t referrals = 0;
  std::map<std::string, size_t> by_lifecycle;
  // "publisher/event_id" -> "hub_seq|status-or-priority" of each current version.
  std::map<std::string, std::string> current;
  std::set<uint64_t> seqs;
  std::vector<std::string> cancelled;  // versions a CANCEL withdrew
};

std::string BodyState(const v1::Event& e) {
  if (e.has_activity()) {
    return e.activity().status();
  }
  return v1::ReferralPriority_Name(e.referral().priority()).substr(18);
}

Oracle ComputeOracle(const std::vector<v1::Event>& events, const std::vector<uint64_t>& seqs) {
  Oracle o;
  std::set<std::string> superseded;
  for (const v1::Event& e : events) {
    if (!e.envelope().supersedes_event_id().empty()) {
      superseded.insert(e.envelope().publisher_ods() + "/" + e.envelope().supersedes_event_id());
      if (e.envelope().lifecycle() == v1::LIFECYCLE_CANCEL) {
        o.cancelled.push_back(e.envelope().publisher_ods() + "/" +
                              e.envelope().supersedes_event_id());
      }
    }
  }
  for (size_t i = 0; i < events.size(); ++i) {
    const v1::Event& e = events[i];
    ++o.events;
    o.seqs.insert(seqs[i]);
    o.activities += e.has_activity() ? 1 : 0;
    o.referrals += e.has_referral() ? 1 : 0;
    ++o.by_lifecycle[v1::Lifecycle_Name(e.envelope().lifecycle()).substr(10)];
    const std::string key = e.envelope().publisher_ods() + "/" + e.envelope().event_id();
    if (e.envelope().lifecycle() != v1::LIFECYCLE_CANCEL && !superseded.count(key)) {
      std::string state = BodyState(e);
      std::transform(state.begin(), state.end(), state.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      o.current[key] = std::to_string(seqs[i]) + "|" + state;
    }
  }
  return o;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) {
      out.push_back(line);
    }
  }
  return out;
}

// GET http://address/path with curl: the status code and body (status 0 when nothing answered).
std::pair<int, std::string> HttpGet(const std::string& address, const std::string& path,
                                    const fs::path& work_dir) {
  auto run = RunCommand({"/usr/bin/curl", "-s", "--max-time", "5", "-w", "\n%{http_code}",
                         "http://" + address + path},
                        work_dir, Scaled(seconds(10)));
  if (!run.ok()) {
    return {0, ""};
  }
  const size_t nl = run->out.rfind('\n');
  if (nl == std::string::npos) {
    return {0, ""};
  }
  return {std::atoi(run->out.c_str() + nl + 1), run->out.substr(0, nl)};
}

class SinkPostgresTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(StartPgAndHub(dir_.path(), "sink-pg", kAgreements, &pg_, &hub_));
  }

  // Starts carehub-sink postgres on `subscription`; `env` ("NAME=value") goes through env(1).
  ChildProcess StartSink(const std::string& subscription, const std::vector<std::string>& extra,
                         const std::vector<std::string>& env = {}) {
    std::vector<std::string> argv = {"/usr/bin/env"};
    argv.insert(argv.end(), env.begin(), env.end());
    std::vector<std::string> args = {BinaryPath("carehub-sink").string(),
                                     "postgres",
                                     "--subscription",
                                     subscription,
                                     "--dsn",
                                     pg_->Uri(),
                                     "--endpoint",
                                     hub_->subscribe_endpoint(),
                                     "--endpoints-file",
                                     endpoints_file().string(),
                                     "--batch-delay-ms",
                                     std::to_string(kBatchDelayMs),
                                     "--config",
                                     config_file().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), extra.begin(), extra.end());
    std::ofstream(config_file()) << "reconnect: {initial_ms: 100, max_ms: " << kBackoffMaxMs
                                 << "}\nprogress: {interval_s: 1}\n";
    fs::remove(endpoints_file());
    auto child = ChildProcess::Spawn(argv, dir_.path() / "sink.out", sink_log());
    EXPECT_TRUE(child.ok()) << child.status().ToString();
    return std::move(child).value();
  }

  fs::path endpoints_file() const { return dir_.path() / "sink-endpoints.json"; }
  fs::path config_file() const { return dir_.path() / "sink.yaml"; }
  fs::path sink_log() const { return dir_.path() / "sink.log"; }

  std::string AdminAddress() {
    std::string address;
    WaitFor(
        [&] {
          auto text = ReadFileText(endpoints_file());
          if (text.empty()) {
            return false;
          }
          address = nlohmann::json::parse(text)["admin"].get<std::string>();
          return true;
        },
        Scaled(seconds(20)));
    return address;
  }

  // The stored position (0 when the schema is not there yet or PostgreSQL is down).
  uint64_t Position(const std::string& schema = "carehub") {
    auto out = pg_->Psql("SELECT hub_seq FROM " + schema + ".sink_position");
    if (!out.ok() || Lines(out.value()).empty()) {
      return 0;
    }
    return std::stoull(Lines(out.value())[0]);
  }

  bool WaitForPosition(uint64_t seq, milliseconds timeout, ChildProcess* sink,
                       const std::string& schema = "carehub") {
    return WaitFor(
               [&] {
                 return Position(schema) >= seq || (sink != nullptr && !sink->running()) ||
                        (sink != nullptr && sink->Poll().has_value());
               },
               timeout) &&
           Position(schema) >= seq;
  }

  std::string Query(const std::string& sql) {
    auto out = pg_->Psql(sql);
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    return out.ok() ? out.value() : "";
  }

  // Every table against the oracle.
  void ExpectTablesMatch(const Oracle& o) {
    EXPECT_EQ(Query("SELECT count(*) FROM carehub.event"), std::to_string(o.events) + "\n");
    EXPECT_EQ(Query("SELECT count(*) FROM carehub.activity"), std::to_string(o.activities) + "\n");
    EXPECT_EQ(Query("SELECT count(*) FROM carehub.referral"), std::to_string(o.referrals) + "\n");
    std::string lifecycles;
    for (const auto& [name, n] : o.by_lifecycle) {
      lifecycles += name + "|" + std::to_string(n) + "\n";
    }
    EXPECT_EQ(Query("SELECT lifecycle, count(*) FROM carehub.event GROUP BY 1 ORDER BY 1"),
              lifecycles);
    // Exactly the published hub_seqs: none missing, none extra.
    const std::vector<std::string> seqs =
        Lines(Query("SELECT hub_seq FROM carehub.event ORDER BY hub_seq"));
    std::vector<std::string> want;
    for (uint64_t s : o.seqs) {
      want.push_back(std::to_string(s));
    }
    EXPECT_TRUE(seqs == want) << "stored " << seqs.size() << " hub_seqs, published " << want.size();
    // The current state: each live version with its latest body.
    std::map<std::string, std::string> current;
    for (const std::string& line :
         Lines(Query("SELECT publisher_ods || '/' || event_id, hub_seq, coalesce(status, '') "
                     "FROM carehub.activity_current UNION ALL "
                     "SELECT publisher_ods || '/' || event_id, hub_seq, coalesce(priority, '') "
                     "FROM carehub.referral_current"))) {
      const size_t bar = line.find('|');
      current[line.substr(0, bar)] = line.substr(bar + 1);
    }
    EXPECT_EQ(current.size(), o.current.size());
    size_t differences = 0;
    for (const auto& [key, state] : o.current) {
      auto it = current.find(key);
      if (it == current.end() || it->second != state) {
        if (++differences <= 5) {
          ADD_FAILURE() << key << ": expected " << state << ", stored "
                        << (it == current.end() ? "nothing" : it->second);
        }
      }
    }
    EXPECT_EQ(differences, 0u);
    // A cancelled version is out of the current views and still in the history.
    ASSERT_FALSE(o.cancelled.empty());
    const std::string& gone = o.cancelled.front();
    const std::string pub = gone.substr(0, gone.find('/'));
    const std::string id = gone.substr(gone.find('/') + 1);
    const std::string where = " WHERE publisher_ods = '" + pub + "' AND event_id = '" + id + "'";
    EXPECT_EQ(Query("SELECT count(*) FROM carehub.current_record" + where), "0\n");
    EXPECT_EQ(Query("SELECT count(*) FROM carehub.event" + where), "1\n");
    // The position accounts for every row once.
    EXPECT_EQ(Query("SELECT events_loaded FROM carehub.sink_position"),
              std::to_string(o.events) + "\n");
  }

  TempDir dir_{"sink-test"};
  std::unique_ptr<PgCluster> pg_;
  std::unique_ptr<HubProcess> hub_;
};

TEST_F(SinkPostgresTest, TwoHundredThousandEventsLandWithTheirCurrentState) {
  constexpr size_t kEvents = 200'000;
  const std::vector<v1::Event> events = Synthetic(19, "pg-", kEvents);
  auto seqs = PublishAccepted(hub_->ingest_endpoint(), events);
  ASSERT_TRUE(seqs.ok()) << seqs.status().ToString();
  const Oracle oracle = ComputeOracle(events, seqs.value());
  ASSERT_TRUE(oracle.by_lifecycle.count("UPDATE"));
  ASSERT_TRUE(oracle.by_lifecycle.count("CANCEL"));

  const auto started = Steady::now();
  ChildProcess sink = StartSink("pg-feed", {});
  ASSERT_TRUE(WaitForPosition(seqs->back(), Scaled(seconds(300)), &sink))
      << ReadFileText(sink_log());
  const double sink_seconds = std::chrono::duration<double>(Steady::now() - started).count();

  // While running: healthy, and /metrics counts what was loaded.
  const std::string admin = AdminAddress();
  EXPECT_EQ(HttpGet(admin, "/healthz", dir_.path()).first, 200);
  std::string metrics;
  EXPECT_TRUE(WaitFor(
      [&] {
        metrics = HttpGet(admin, "/metrics", dir_.path()).second;
        return metrics.find("carehub_sink_events_loaded_total " + std::to_string(kEvents)) !=
               std::string::npos;
      },
      Scaled(seconds(10))))
      << metrics;
  EXPECT_NE(metrics.find("carehub_sink_behind_hub_seq 0"), std::string::npos) << metrics;
  // Where the sink's time went: inside PostgreSQL transactions, or receiving from the hub.
  std::string in_transactions = "?";
  if (size_t at = metrics.find("carehub_sink_transaction_seconds_sum "); at != std::string::npos) {
    in_transactions = metrics.substr(at + 37, metrics.find('\n', at) - at - 37);
  }

  sink.Signal(SIGTERM);
  auto ended = sink.Wait(Scaled(seconds(30)));
  ASSERT_TRUE(ended.has_value());
  EXPECT_TRUE(ended->Exited(0)) << ended->ToString() << ReadFileText(sink_log());
  ExpectTablesMatch(oracle);

  // The plain subscriber over the same feed in the same run, for the rate beside the sink's.
  ReadFeedOptions read;
  read.until_seq = seqs->back();
  read.ack = false;
  read.timeout = Scaled(seconds(300));
  auto plain = ReadFeed(hub_->subscribe_endpoint(), "pg-feed", read);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  ASSERT_EQ(plain->events.size(), kEvents);
  std::cout << "[ rate ] carehub-sink postgres: " << kEvents << " events in " << sink_seconds
            << " s = " << static_cast<int64_t>(kEvents / sink_seconds)
            << " events/s (including connect and schema creation; " << in_transactions
            << " s inside transactions); plain subscriber (client library, no storage): "
            << static_cast<int64_t>(kEvents / plain->seconds) << " events/s\n";
  RecordProperty("sink_events_per_s", static_cast<int>(kEvents / sink_seconds));
  RecordProperty("subscriber_events_per_s", static_cast<int>(kEvents / plain->seconds));
}

TEST_F(SinkPostgresTest, KilledAtSeededPointsStoresEveryEventOnce) {
  const char* env_seed = std::getenv("CAREHUB_SINK_CRASH_SEED");
  const uint64_t seed = env_seed ? std::strtoull(env_seed, nullptr, 10)
                                 : static_cast<uint64_t>(std::random_device{}());
  std::cout << "[ seed ] CAREHUB_SINK_CRASH_SEED=" << seed << "\n";
  RecordProperty("seed", std::to_string(seed));
  std::mt19937_64 rng(seed);

  std::vector<v1::Event> events = Synthetic(seed, "crash-", 60'000);
  const std::vector<v1::Event> first(events.begin(), events.begin() + 40'000);
  const std::vector<v1::Event> second(events.begin() + 40'000, events.end());
  auto seqs = PublishAccepted(hub_->ingest_endpoint(), first);
  ASSERT_TRUE(seqs.ok()) << seqs.status().ToString();

  const std::vector<std::string> points = {"sink.after_copy", "sink.before_commit",
                                           "sink.after_commit"};
  // Small transactions, so every round has many to crash in.
  const std::vector<std::string> small = {"--batch-events", "1500", "--window", "2000"};
  constexpr int kRounds = 8;
  for (int round = 0; round < kRounds; ++round) {
    if (round == kRounds / 2) {
      // New events arrive between crashes too.
      auto more = PublishAccepted(hub_->ingest_endpoint(), second);
      ASSERT_TRUE(more.ok()) << more.status().ToString();
      seqs->insert(seqs->end(), more->begin(), more->end());
    }
    const uint64_t before = Position();
    std::string how;
    std::optional<ChildProcess> sink;
    if (rng() % 2 == 0) {
      const std::string point = points[rng() % points.size()];
      const int pass = 1 + static_cast<int>(rng() % 4);
      how = point + ":" + std::to_string(pass);
      sink.emplace(StartSink("pg-feed", small, {"CAREHUB_CRASH_AT=" + how}));
      // It dies at the point, or catches up without reaching it (fewer transactions left than
      // the pass asks for) and is killed idle; either way it ends by SIGKILL.
      std::optional<ExitStatus> ended;
      WaitFor(
          [&] {
            ended = sink->Poll();
            return ended.has_value() || Position() >= seqs->back();
          },
          Scaled(seconds(60)));
      if (!ended) {
        sink->Signal(SIGKILL);
        ended = sink->Wait(Scaled(seconds(10)));
      }
      ASSERT_TRUE(ended && ended->term_signal && *ended->term_signal == SIGKILL)
          << how << ": " << (ended ? ended->ToString() : "still running");
    } else {
      const int delay_ms = 100 + static_cast<int>(rng() % 900);
      how = "kill -9 after " + std::to_string(delay_ms) + " ms";
      sink.emplace(StartSink("pg-feed", small));
      std::this_thread::sleep_for(milliseconds(delay_ms));
      sink->Signal(SIGKILL);
      ASSERT_TRUE(sink->Wait(Scaled(seconds(10))).has_value());
    }
    std::cout << "[ round " << round << " ] " << how << ": position " << before << " -> "
              << Position() << "\n";
  }
  // A last run without faults finishes the feed.
  ChildProcess sink = StartSink("pg-feed", small);
  ASSERT_TRUE(WaitForPosition(seqs->back(), Scaled(seconds(120)), &sink))
      << ReadFileText(sink_log());
  sink.Signal(SIGTERM);
  auto ended = sink.Wait(Scaled(seconds(30)));
  ASSERT_TRUE(ended && ended->Exited(0));
  ExpectTablesMatch(ComputeOracle(events, seqs.value()));
}

TEST_F(SinkPostgresTest, PostgresRestartedUnderTheSinkWaitsAndContinues) {
  const std::vector<v1::Event> events = Synthetic(7, "restart-", 30'000);
  const std::vector<v1::Event> first(events.begin(), events.begin() + 10'000);
  const std::vector<v1::Event> second(events.begin() + 10'000, events.end());
  auto seqs = PublishAccepted(hub_->ingest_endpoint(), first);
  ASSERT_TRUE(seqs.ok()) << seqs.status().ToString();
  ChildProcess sink = StartSink("pg-feed", {"--batch-events", "2000"});
  ASSERT_TRUE(WaitForPosition(seqs->back(), Scaled(seconds(60)), &sink))
      << ReadFileText(sink_log());
  const std::string admin = AdminAddress();

  ASSERT_TRUE(pg_->Stop().ok());
  auto more = PublishAccepted(hub_->ingest_endpoint(), second);
  ASSERT_TRUE(more.ok()) << more.status().ToString();
  seqs->insert(seqs->end(), more->begin(), more->end());
  // The sink notices at its next commit (within a batch delay) and says so on /healthz.
  EXPECT_TRUE(WaitFor([&] { return HttpGet(admin, "/healthz", dir_.path()).first == 503; },
                      Scaled(seconds(10))))
      << ReadFileText(sink_log());
  // It keeps waiting through several backoff periods rather than exiting.
  std::this_thread::sleep_for(milliseconds(3 * kBackoffMaxMs));
  ASSERT_FALSE(sink.Poll().has_value()) << ReadFileText(sink_log());

  ASSERT_TRUE(pg_->Restart().ok()) << pg_->ReadLog();
  ASSERT_TRUE(WaitForPosition(seqs->back(), Scaled(seconds(60)), &sink))
      << ReadFileText(sink_log());
  EXPECT_TRUE(WaitFor([&] { return HttpGet(admin, "/healthz", dir_.path()).first == 200; },
                      Scaled(seconds(10))));
  sink.Signal(SIGTERM);
  auto ended = sink.Wait(Scaled(seconds(30)));
  ASSERT_TRUE(ended && ended->Exited(0));
  ExpectTablesMatch(ComputeOracle(events, seqs.value()));
  EXPECT_NE(ReadFileText(sink_log()).find("connected again"), std::string::npos);
}

TEST_F(SinkPostgresTest, SecondaryUseTablesHoldNoIdentifiers) {
  const std::vector<v1::Event> events = Synthetic(23, "su-", 5'000);
  auto seqs = PublishAccepted(hub_->ingest_endpoint(), events);
  ASSERT_TRUE(seqs.ok()) << seqs.status().ToString();
  ChildProcess sink = StartSink("pg-secondary", {"--schema", "analytics"});
  ASSERT_TRUE(WaitForPosition(seqs->back(), Scaled(seconds(60)), &sink, "analytics"))
      << ReadFileText(sink_log());
  sink.Signal(SIGTERM);
  ASSERT_TRUE(sink.Wait(Scaled(seconds(30))).has_value());

  // Not vacuous: the feed is there, pseudonymised, with the coarsened fields.
  EXPECT_EQ(Query("SELECT count(*), count(pseudonym), count(nhs_number), count(local_mrn) "
                  "FROM analytics.event"),
            std::to_string(events.size()) + "|" + std::to_string(events.size()) + "|0|0\n");
  EXPECT_EQ(Query("SELECT count(*) FROM analytics.event WHERE birth_date !~ '^[0-9]{4}-[0-9]{2}$'"),
            "0\n");
  auto dump = pg_->Dump();
  ASSERT_TRUE(dump.ok()) << dump.status().ToString();
  ASSERT_NE(dump->find("COPY analytics.event"), std::string::npos);
  std::map<std::string, std::set<std::string>> found;
  for (const v1::Event& e : events) {
    const v1::Patient& p = e.envelope().patient();
    const std::vector<std::pair<std::string, std::string>> identifiers = {
        {"nhs_number", p.nhs_number()},   {"given_name", p.given_name()},
        {"family_name", p.family_name()}, {"address", p.address()},
        {"local_mrn", p.local_mrn()},     {"postcode", p.postcode()},
        {"birth_date", p.birth_date()}};
    for (const auto& [field, value] : identifiers) {
      // Full postcodes have a space and an inward code; the district alone is allowed. A birth
      // date may equal the date of some event: in the dump a stored date value ends its field
      // (tab, newline or quote), a timestamp's date goes on with " HH:MM:SS".
      if (value.size() < 5) {
        continue;
      }
      for (size_t at = dump->find(value); at != std::string::npos; at = dump->find(value, at + 1)) {
        const size_t end = at + value.size();
        if (field != "birth_date" || end >= dump->size() || (*dump)[end] != ' ') {
          found[field].insert(value);
          break;
        }
      }
    }
  }
  for (const auto& [field, values] : found) {
    ADD_FAILURE() << values.size() << " published " << field << " value(s) in the dump, e.g. "
                  << *values.begin();
  }
}

TEST_F(SinkPostgresTest, BadConfigAndRefusedSubscriptionEndWithOneLine) {
  const fs::path bin = BinaryPath("carehub-sink");
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::string says;
  };
  std::ofstream(dir_.path() / "typo.yaml") << "subscription: pg-feed\npostgress: {dsn: x}\n";
  const std::vector<Case> cases = {
      {{"postgres", "--dsn", pg_->Uri()}, 2, "subscription"},
      {{"postgres", "--subscription", "pg-feed"}, 2, "postgres.dsn is required"},
      {{"postgres", "--subscription", "pg-feed", "--dsn", "host=x port=y z"}, 2, "postgres.dsn"},
      {{"postgres", "--config", (dir_.path() / "typo.yaml").string()}, 2, "unknown key"},
      {{"postgres", "--config", (dir_.path() / "missing.yaml").string()}, 2, "cannot read"},
      {{"postgres", "--subscription", "pg-feed", "--dsn", pg_->Uri(), "--schema", "Bad-Name"},
       2,
       "postgres.schema"},
      {{"postgres", "--subscription", "pg-feed", "--dsn", pg_->Uri("no_such_db"), "--endpoint",
        hub_->subscribe_endpoint()},
       2,
       "does not exist"},
      {{"postgres", "--subscription", "nobody-feed", "--dsn", pg_->Uri(), "--endpoint",
        hub_->subscribe_endpoint()},
       1,
       "refused subscription"},
      {{"postgres", "--bogus"}, 2, "bad usage"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> argv = {bin.string()};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    auto run = RunCommand(argv, dir_.path(), Scaled(seconds(60)));
    ASSERT_TRUE(run.ok()) << run.status().ToString();
    EXPECT_TRUE(run->status.Exited(c.exit_code))
        << c.args.back() << ": " << run->status.ToString() << " " << run->err;
    // The reason is the last line, one line, naming the problem.
    const std::vector<std::string> lines = Lines(run->err);
    ASSERT_FALSE(lines.empty()) << c.args.back();
    EXPECT_EQ(lines.back().rfind("carehub-sink: ", 0), 0u) << lines.back();
    EXPECT_NE(lines.back().find(c.says), std::string::npos) << lines.back();
  }
}

}  // namespace
}  // namespace carehub::itest
