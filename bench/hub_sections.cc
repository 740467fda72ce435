// Sections 1-5 of carehub-bench: the real hub daemon under ingest (plain and CURVE), fan-out,
// catch-up, latency and footprint workloads.
#include <rocksdb/perf_context.h>
#include <rocksdb/perf_level.h>
#include <rocksdb/write_batch.h>
#include <zmq.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <thread>
#include <unordered_map>
#include <zmq.hpp>

#include "carehub/client/curve.h"
#include "carehub/client/subscriber.h"
#include "carehub/core/synthetic.h"
#include "carehub/hub/store.h"
#include "carehub/v1/wire.pb.h"
#include "hub_runner.h"
#include "ingest_load.h"
#include "sections.h"

namespace carehub::bench {
namespace {

using Steady = std::chrono::steady_clock;

// One of the hub's latency buckets (metrics::LatencyBuckets): a group commit slower than this is
// past the whole latency target by itself.
constexpr double kSlowCommitSeconds = 0.05;

double Since(Steady::time_point t) {
  return std::chrono::duration<double>(Steady::now() - t).count();
}

}  // namespace

// 100 publishers, each ~1% of synthetic events: 20 trusts (3-character codes) and 80 practices.
std::vector<std::string> BenchPublishers() {
  std::vector<std::string> p;
  for (int i = 0; i < 20; ++i) {
    p.push_back(std::string("R") + static_cast<char>('A' + i) + "1");
  }
  for (int i = 0; i < 80; ++i) {
    p.push_back("B90" + std::to_string(100 + i));
  }
  return p;
}

namespace {

// The organisation groups of the fan-out agreements: BenchPublishers()[from, to). The top-level
// ones do not overlap; the nested ones (g5, g2) lie inside g50.
struct GroupSpec {
  const char* name;
  size_t from, to;
  bool nested;
};
constexpr GroupSpec kGroups[] = {{"g50", 0, 50, false},  {"g25", 50, 75, false},
                                 {"g10", 75, 85, false}, {"g10b", 85, 95, false},
                                 {"g5", 0, 5, true},     {"g2", 5, 7, true}};

struct SubSpec {
  std::string id;
  std::string purpose;
  std::string sources;  // YAML flow list
  std::string types;    // YAML flow list
  double expected_share;
  std::string nats_filter;  // the same events as a JetStream filter over NatsSubject's subjects
};

std::string GroupYaml(const std::vector<std::string>& pubs, size_t from, size_t to) {
  std::string s = "[";
  for (size_t i = from; i < to; ++i) {
    s += (i > from ? ", " : "") + pubs[i];
  }
  return s + "]";
}

// Ten subscriptions of one view: one subscriber's, one purpose, one agreement covering everything.
// The hub decides and encodes each batch once for them all (disclosure.h, ShareFrom).
constexpr const char* kOneViewSubscriber = "view-org";
std::vector<SubSpec> OneViewSubscriptions() {
  std::vector<SubSpec> out;
  for (int i = 0; i < 10; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "view-%02d", i);
    out.push_back({id, "direct_care", "[\"*\"]", "[\"*\"]", 1.0, "fan.>"});
  }
  return out;
}

// Ten subscriptions, from everything down to one publisher (~1%).
std::vector<SubSpec> FanoutSubscriptions() {
  return {
      {"sub-all", "direct_care", "[\"*\"]", "[\"*\"]", 1.0, "fan.>"},
      {"sub-activity", "direct_care", "[\"*\"]", "[\"activity.*\"]", 0.7, "fan.*.*.*.activity.>"},
      {"sub-referral", "direct_care", "[\"*\"]", "[\"referral.*\"]", 0.3, "fan.*.*.*.referral.>"},
      {"sub-50pc", "direct_care", "[\"group:g50\"]", "[\"*\"]", 0.5, "fan.g50.>"},
      {"sub-25pc", "direct_care", "[\"group:g25\"]", "[\"*\"]", 0.25, "fan.g25.>"},
      {"sub-10pc-secondary", "secondary_use", "[\"group:g10\"]", "[\"*\"]", 0.1, "fan.g10.>"},
      {"sub-7pc-activity", "direct_care", "[\"group:g10b\"]", "[\"activity.*\"]", 0.07,
       "fan.g10b.*.*.activity.>"},
      {"sub-5pc", "direct_care", "[\"group:g5\"]", "[\"*\"]", 0.05, "fan.g50.g5.>"},
      {"sub-2pc", "direct_care", "[\"group:g2\"]", "[\"*\"]", 0.02, "fan.g50.g2.>"},
      {"sub-1pc", "direct_care", "[B90179]", "[\"*\"]", 0.01, "fan.*.*.B90179.>"},
  };
}

}  // namespace

std::string NatsSubject(const std::string& publisher, const std::string& event_type) {
  const auto pubs = BenchPublishers();
  const auto index =
      static_cast<size_t>(std::find(pubs.begin(), pubs.end(), publisher) - pubs.begin());
  std::string tier = "none", sub_group = "rest";
  for (const auto& g : kGroups) {
    if (index >= g.from && index < g.to) {
      (g.nested ? sub_group : tier) = g.name;
    }
  }
  return "fan." + tier + "." + sub_group + "." + publisher + "." + event_type;
}

std::vector<FanoutFilter> FanoutNatsFilters(bool one_view) {
  std::vector<FanoutFilter> out;
  for (const auto& s : one_view ? OneViewSubscriptions() : FanoutSubscriptions()) {
    out.push_back({s.id, s.nats_filter, s.expected_share});
  }
  return out;
}

namespace {

// Writes agreements.yaml (plus its pseudonym key and opt-out list) into `dir`.
std::filesystem::path WriteAgreements(const std::filesystem::path& dir) {
  auto pubs = BenchPublishers();
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "pseudonym.key") << std::string(64, 'a') << "\n";
  std::ofstream(dir / "opt-out.txt") << "# none\n";
  std::ofstream out(dir / "agreements.yaml");
  out << "organisation_groups:\n";
  for (const auto& g : kGroups) {
    out << "  " << g.name << ": " << GroupYaml(pubs, g.from, g.to) << "\n";
  }
  out << "subscribers:\n";
  for (const auto& s : FanoutSubscriptions()) {
    out << "  - id: " << s.id << "-org\n    subscriptions:\n      - {id: " << s.id
        << ", purpose: " << s.purpose << "}\n";
  }
  out << "  - id: " << kOneViewSubscriber << "\n    subscriptions:\n";
  for (const auto& s : OneViewSubscriptions()) {
    out << "      - {id: " << s.id << ", purpose: " << s.purpose << "}\n";
  }
  out << "agreements:\n";
  // One agreement per fan-out subscription's subscriber, and one for the ten of one view.
  const auto agreement = [&out](const std::string& id, const std::string& subscriber,
                                const SubSpec& s) {
    out << "  - id: " << id << "\n    subscriber: " << subscriber << "\n    purpose: " << s.purpose
        << "\n    legal_basis: \"benchmark\"\n    valid_from: 2020-01-01\n"
        << "    valid_until: 2099-12-31\n    sources: " << s.sources
        << "\n    event_types: " << s.types << "\n    patient_fields: "
        << (s.purpose == "direct_care" ? "identifiable" : "pseudonymised") << "\n";
  };
  int n = 0;
  for (const auto& s : FanoutSubscriptions()) {
    char id[32];
    std::snprintf(id, sizeof id, "DSA-BENCH-%02d", ++n);
    agreement(id, s.id + "-org", s);
  }
  agreement("DSA-BENCH-VIEW", kOneViewSubscriber, OneViewSubscriptions().front());
  out << "pseudonymisation:\n  secret_file: pseudonym.key\nopt_out:\n  file: opt-out.txt\n";
  return dir / "agreements.yaml";
}

// One subscription read in its own thread. It stops once `done` is set and it has scanned to its
// target, or when `drain_timeout` has passed since it first saw `done` (error "timed out").
// The target is `final_seq` when the caller knows it: the highest hub_seq its publishers were
// answered with, stored before `done` is set — so a reader that has seen `done` reads the final
// value, and waits for the last answered event however late its batch was. Without `final_seq`
// (a static backlog: `done` is set from the start) the target is the newest head a delivery
// reported.
struct Reader {
  std::string subscription;
  std::atomic<uint64_t> delivered{0};
  std::atomic<uint64_t> scanned{0};
  std::atomic<bool> finished{false};
  double finished_s = 0;
  std::string error;
  std::thread thread;
};

void ReadSubscription(Reader* r, const std::string& endpoint, v1::Subscribe::Start start,
                      const std::atomic<bool>* done, Steady::time_point t0,
                      std::chrono::seconds drain_timeout,
                      const std::function<void(const client::DeliveryBatch&)>& on_batch,
                      const std::atomic<uint64_t>* final_seq = nullptr) {
  client::SubscriberOptions so;
  so.endpoint = endpoint;
  so.subscription = r->subscription;
  so.start = start;
  so.window = 20'000;
  so.hub_timeout = std::chrono::seconds(60);
  auto sub = client::Subscriber::Open(so);
  if (!sub.ok()) {
    r->error = sub.status().ToString();
    r->finished = true;
    return;
  }
  uint64_t head = 0;
  auto last_ack = Steady::now();
  std::optional<Steady::time_point> drain_deadline;
  while (!drain_deadline || Steady::now() < *drain_deadline) {
    // `done` before the target: the caller stores final_seq first.
    const bool is_done = done->load();
    if (is_done && !drain_deadline) {
      drain_deadline = Steady::now() + drain_timeout;
    }
    auto next = (*sub)->Next(std::chrono::milliseconds(100));
    if (!next.ok()) {
      r->error = next.status().ToString();
      break;
    }
    if (next->has_value()) {
      const auto& batch = **next;
      if (on_batch) {
        on_batch(batch);
      }
      r->delivered += batch.events.size();
      r->scanned = batch.scanned_to_seq;
      head = std::max(head, batch.head_seq);
      if (Steady::now() - last_ack > std::chrono::seconds(1)) {
        (void)(*sub)->Ack(batch.scanned_to_seq);
        last_ack = Steady::now();
      }
    }
    const uint64_t target = final_seq != nullptr ? final_seq->load() : head;
    if (is_done && (target > 0 || final_seq != nullptr) && r->scanned.load() >= target) {
      r->finished_s = Since(t0);
      r->finished = true;
      (void)(*sub)->Ack(r->scanned.load());
      return;
    }
  }
  r->finished_s = Since(t0);
  r->finished = true;
  if (r->error.empty()) {
    r->error = "timed out: scanned to " + std::to_string(r->scanned.load()) + ", waiting for " +
               std::to_string(final_seq != nullptr ? final_seq->load() : head);
  }
}

}  // namespace

Result<std::unique_ptr<HubRunner>> StartHub(BenchContext* ctx, const std::string& tag,
                                            const std::string& durability, bool with_agreements) {
  auto dir = ctx->NewDir(tag);
  HubRunOptions ho;
  ho.binary = ctx->options.carehub_binary;
  ho.dir = dir;
  ho.durability = durability;
  if (with_agreements) {
    ho.agreements_file = WriteAgreements(dir / "policy");
  }
  return HubRunner::Start(ho);
}

namespace {

void RemoveHubDir(HubRunner* hub) {
  std::error_code ec;
  std::filesystem::remove_all(hub->data_dir().parent_path(), ec);
}

}  // namespace

IngestLoadOptions LoadOptions(const BenchContext& ctx, const std::string& endpoint,
                              uint64_t events) {
  IngestLoadOptions lo;
  lo.endpoint = endpoint;
  lo.events = events;
  lo.connections = ctx.options.connections;
  lo.batch_events = ctx.options.batch_events;
  lo.window_batches = ctx.options.window_batches;
  lo.resend_ratio = ctx.options.resend_ratio;
  return lo;
}

double Percentile(std::vector<double>* v, double q) {
  if (v->empty()) {
    return 0;
  }
  std::sort(v->begin(), v->end());
  size_t i = std::min(v->size() - 1, static_cast<size_t>(q * static_cast<double>(v->size())));
  return (*v)[i];
}

// ---- 1. Ingest ----
namespace {

// One ingest load against a fresh hub, with the hub's own commit figures.
// What the hub's dedup lookups cost during one load: differences of its dedup metrics
// (carehub_dedup_lookup_*, carehub_dedup_blocks_read_total) across the load. Stored keys are the
// resends answered from the index (not those of batches still being committed).
struct DedupFigures {
  double lookups = 0, lookup_seconds = 0;
  double stored_keys = 0, new_keys = 0;
  double data_blocks = 0, index_blocks = 0, filter_blocks = 0;

  static DedupFigures Scrape(const std::string& metrics) {
    DedupFigures f;
    const auto lookup = ScrapeHistogram(metrics, "carehub_dedup_lookup_seconds");
    f.lookups = lookup.count;
    f.lookup_seconds = lookup.sum;
    f.stored_keys = ScrapeSum(metrics, "carehub_dedup_lookup_keys_total{result=\"stored\"}");
    f.new_keys = ScrapeSum(metrics, "carehub_dedup_lookup_keys_total{result=\"new\"}");
    f.data_blocks = ScrapeSum(metrics, "carehub_dedup_blocks_read_total{block=\"data\"}");
    f.index_blocks = ScrapeSum(metrics, "carehub_dedup_blocks_read_total{block=\"index\"}");
    f.filter_blocks = ScrapeSum(metrics, "carehub_dedup_blocks_read_total{block=\"filter\"}");
    return f;
  }
  DedupFigures Minus(const DedupFigures& before) const {
    return {lookups - before.lookups,
            lookup_seconds - before.lookup_seconds,
            stored_keys - before.stored_keys,
            new_keys - before.new_keys,
            data_blocks - before.data_blocks,
            index_blocks - before.index_blocks,
            filter_blocks - before.filter_blocks};
  }
  double keys() const { return stored_keys + new_keys; }
  // Lookup time per key looked up, in microseconds.
  double us_per_key() const { return keys() > 0 ? lookup_seconds * 1e6 / keys() : 0; }
  nlohmann::json Json() const {
    auto per = [](double n, double d) { return d > 0 ? n / d : 0.0; };
    return {{"lookups", lookups},
            {"lookup_seconds", lookup_seconds},
            {"stored_keys", stored_keys},
            {"new_keys", new_keys},
            {"lookup_us_per_key", us_per_key()},
            {"data_blocks_read", data_blocks},
            {"index_blocks_read", index_blocks},
            {"filter_blocks_read", filter_blocks},
            {"data_blocks_read_per_stored_key", per(data_blocks, stored_keys)},
            {"lookup_us_per_data_block_read", per(lookup_seconds * 1e6, data_blocks)}};
  }
  // "lookups 1.23 s (2.05 us per key); 11800 stored keys, 0.98 data blocks read per stored key"
  std::string Line() const {
    char buf[200];
    std::snprintf(buf, sizeof buf,
                  "lookups %.2f s (%.2f us per key); %.0f stored keys, %.0f new; blocks read: "
                  "%.0f data (%.2f per stored key), %.0f index, %.0f filter",
                  lookup_seconds, us_per_key(), stored_keys, new_keys, data_blocks,
                  stored_keys > 0 ? data_blocks / stored_keys : 0.0, index_blocks, filter_blocks);
    return buf;
  }
};

struct IngestRun {
  IngestLoadResult load;
  DedupFigures dedup;  // the hub's dedup lookups during the load
  HistogramTotals commit, per_commit, batch;
  uint64_t peak_rss = 0;
  uint64_t rss = 0;  // VmRSS when the load ended
  // Hub CPU per answered event (microseconds) and minor faults per answered event, by thread name.
  std::map<std::string, double> thread_us_per_event;
  std::map<std::string, double> thread_faults_per_event;
  double warmup_accepted_per_s = 0;  // the unmeasured load before it (MeasureIngest), when run
  Status stopped = Status::Ok();
};

nlohmann::json ThreadJson(const std::map<std::string, double>& by_thread) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, value] : by_thread) {
    j[name] = value;
  }
  return j;
}

nlohmann::json ThreadJson(const IngestRun& run) { return ThreadJson(run.thread_us_per_event); }

// "carehub-ingest 4.10 us (0.02 faults), carehub-commit 3.02 us (0.07 faults), ..." (threads
// above 0.05 us, busiest first; minor faults per unit of work).
std::string ThreadLine(const std::map<std::string, double>& us_per_unit,
                       const std::map<std::string, double>& faults_per_unit) {
  std::vector<std::pair<double, std::string>> busy;
  for (const auto& [name, us] : us_per_unit) {
    if (us >= 0.05) {
      busy.emplace_back(us, name);
    }
  }
  std::sort(busy.rbegin(), busy.rend());
  std::string line;
  for (const auto& [us, name] : busy) {
    const auto faults = faults_per_unit.find(name);
    char buf[128];
    std::snprintf(buf, sizeof buf, "%s%s %.2f us (%.3f faults)", line.empty() ? "" : ", ",
                  name.c_str(), us, faults == faults_per_unit.end() ? 0.0 : faults->second);
    line += buf;
  }
  return line;
}

std::string ThreadLine(const IngestRun& run) {
  return ThreadLine(run.thread_us_per_event, run.thread_faults_per_event);
}

// What each of the hub's threads (by name) used between two readings of HubRunner::ThreadUsage,
// per unit of work (an answered event, a delivery): CPU in microseconds and minor faults, both 0
// when `units` is.
struct ThreadRates {
  std::map<std::string, double> us;
  std::map<std::string, double> faults;
};
ThreadRates RatesBetween(const std::map<std::string, HubRunner::ThreadUse>& before,
                         const std::map<std::string, HubRunner::ThreadUse>& after, double units) {
  ThreadRates rates;
  for (const auto& [name, now] : after) {
    const auto it = before.find(name);
    double cpu_seconds = now.cpu_seconds;
    uint64_t faults = now.minor_faults;
    if (it != before.end()) {
      cpu_seconds -= it->second.cpu_seconds;
      faults -= std::min(faults, it->second.minor_faults);
    }
    rates.us[name] = units > 0 ? cpu_seconds * 1e6 / units : 0;
    rates.faults[name] = units > 0 ? static_cast<double>(faults) / units : 0;
  }
  return rates;
}

// Runs `lo` against a running hub (its endpoint is filled in) and reads the hub's own figures.
IngestRun RunLoadOn(HubRunner* hub, IngestLoadOptions lo) {
  lo.endpoint = hub->ingest_endpoint();
  IngestRun run;
  const auto dedup_before = DedupFigures::Scrape(hub->Metrics());
  const auto threads_before = hub->ThreadUsage();
  run.load = RunIngestLoad(lo);
  auto rates = RatesBetween(threads_before, hub->ThreadUsage(), static_cast<double>(run.load.sent));
  run.thread_us_per_event = std::move(rates.us);
  run.thread_faults_per_event = std::move(rates.faults);
  auto metrics = hub->Metrics();
  run.dedup = DedupFigures::Scrape(metrics).Minus(dedup_before);
  run.commit = ScrapeHistogram(metrics, "carehub_store_commit_seconds");
  run.per_commit = ScrapeHistogram(metrics, "carehub_store_batches_per_commit");
  run.batch = ScrapeHistogram(metrics, "carehub_ingest_batch_seconds");
  run.peak_rss = hub->PeakRssBytes();
  run.rss = hub->RssBytes();
  return run;
}

// An error when the load of `run` was not answered in full (each event accepted or duplicate).
Status CheckAnswered(const IngestRun& run, const std::string& what) {
  const auto& r = run.load;
  if (r.sent == 0 || r.other > 0) {
    return Status::Error("bench_failed", what + ": " + std::to_string(r.sent) + " answered, " +
                                             std::to_string(r.other) + " not accepted");
  }
  return Status::Ok();
}

// Starts a hub with `ho`, runs the ingest load `lo` against it twice (fresh ids each time) and
// stops the hub; its dir is removed afterwards. The figures are the second load's: the first warms
// the process up as a running hub is. A fresh process touches its memory for the first time (its
// memtables, ~250 MB a 600k-event load), which costs ~11 us a page on this VM: 0.08-0.09 minor
// faults per event on the commit thread, a third of its CPU, and none once warm; and its first
// memtables never fill within one load, so a fresh hub's load left out the flushes a running hub
// does. The raw RocksDB and NATS figures of the same run are taken warm in the same way (limits.cc,
// nats_peer.cc). An error when the hub did not start or not every event was answered as accepted
// or duplicate; a failed stop is returned in `stopped` so the figures are still recorded.
Result<IngestRun> MeasureIngest(const HubRunOptions& ho, const std::string& sec,
                                const IngestLoadOptions& lo) {
  auto hub = HubRunner::Start(ho);
  if (!hub.ok()) {
    return hub.status();
  }
  std::fprintf(stderr, "[%s] durability=%s%s: %lu events, %u connections ...\n", sec.c_str(),
               ho.durability.c_str(), lo.curve_server.empty() ? "" : ", CURVE", lo.events,
               lo.connections);
  IngestLoadOptions warmup = lo;
  warmup.id_prefix = "warmup-" + lo.id_prefix;
  const IngestRun warm = RunLoadOn(hub->get(), warmup);
  std::fprintf(stderr, "[%s] warm-up (not measured) %.0f/s: %s\n", sec.c_str(),
               warm.load.accepted_per_second(), ThreadLine(warm).c_str());
  const Status warm_answered = CheckAnswered(warm, sec + " warm-up");
  IngestRun run;
  if (warm_answered.ok()) {
    run = RunLoadOn(hub->get(), lo);
    run.warmup_accepted_per_s = warm.load.accepted_per_second();
    std::fprintf(stderr, "[%s] hub CPU per answered event: %s\n", sec.c_str(),
                 ThreadLine(run).c_str());
  }
  run.stopped = (*hub)->Stop();
  RemoveHubDir(hub->get());
  CAREHUB_RETURN_IF_ERROR(warm_answered);
  CAREHUB_RETURN_IF_ERROR(CheckAnswered(run, sec));
  return run;
}

void AddIngestFigures(BenchContext* ctx, const std::string& sec, const IngestRun& run) {
  const auto& r = run.load;
  ctx->report.Add(sec, "answered_per_s", "answered events/s (incl. duplicates)",
                  r.sent_per_second(), "/s");
  ctx->report.Add(sec, "ack_p50_ms", "batch ack latency p50", r.ack_p50_ms, "ms");
  ctx->report.Add(sec, "ack_p99_ms", "batch ack latency p99", r.ack_p99_ms, "ms");
  ctx->report.Add(sec, "batches_per_commit", "batches per group commit (mean)",
                  run.per_commit.mean(), "");
  ctx->report.Add(sec, "commit_ms", "store commit time (mean)", run.commit.mean() * 1e3, "ms");
  ctx->report.Set(sec, "ingest_batch_ms_mean", run.batch.mean() * 1e3);
  ctx->report.Set(sec, "sent", r.sent);
  ctx->report.Set(sec, "warmup_accepted_per_s", run.warmup_accepted_per_s);
  ctx->report.Set(sec, "accepted", r.accepted);
  ctx->report.Set(sec, "duplicate", r.duplicate);
  ctx->report.Set(sec, "seconds", r.seconds);
  ctx->report.Set(sec, "commits", run.commit.count);
  ctx->report.Set(sec, "hub_peak_rss_bytes", run.peak_rss);
  ctx->report.Set(sec, "hub_cpu_us_per_answered_event", ThreadJson(run));
  ctx->report.Set(sec, "hub_minor_faults_per_answered_event",
                  ThreadJson(run.thread_faults_per_event));
}

HubRunOptions IngestHubOptions(BenchContext* ctx, const std::string& tag,
                               const std::string& durability) {
  HubRunOptions ho;
  ho.binary = ctx->options.carehub_binary;
  ho.dir = ctx->NewDir(tag);
  ho.durability = durability;
  return ho;
}

}  // namespace

Status RunIngestSection(BenchContext* ctx) {
  for (const std::string durability : {"fsync", "os"}) {
    const std::string sec = "ingest_" + durability;
    auto run = MeasureIngest(IngestHubOptions(ctx, "ingest-" + durability, durability), sec,
                             LoadOptions(*ctx, "", ctx->options.ingest_events));
    if (!run.ok()) {
      return run.status();
    }
    bool fsync = durability == "fsync";
    double rate = run->load.accepted_per_second();
    if (fsync) {
      ctx->figures.ingest_fsync_per_s = rate;
    }
    ctx->report.Add(sec, "accepted_per_s", "accepted events/s", rate, "/s",
                    fsync ? ">= 300k/s" : "",
                    fsync ? std::optional<bool>(rate >= 300'000) : std::nullopt);
    AddIngestFigures(ctx, sec, *run);
    if (!run->stopped.ok()) {
      return run->stopped;
    }
  }
  return Status::Ok();
}

// ---- 1b. Ingest over CURVE ----
namespace {

// A fresh CURVE key pair, Z85.
Result<client::CurveKeyPair> NewKeyPair() {
  char pub[41] = {};
  char sec[41] = {};
  if (zmq_curve_keypair(pub, sec) != 0) {
    return Status::Error("bench_setup", "zmq_curve_keypair failed (libzmq without CURVE?)");
  }
  return client::CurveKeyPair{pub, sec};
}

Status WriteKeyFile(const std::filesystem::path& path, const client::CurveKeyPair& keys) {
  {
    std::ofstream out(path);
    out << "public: " << keys.public_key << "\nsecret: " << keys.secret_key << "\n";
    if (!out) {
      return Status::Error("bench_setup", "cannot write " + path.string());
    }
  }
  std::error_code ec;
  std::filesystem::permissions(
      path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write, ec);
  return Status::Ok();
}

}  // namespace

Status RunCurveSection(BenchContext* ctx) {
  // The plain figure to compare with: the ingest section's when it ran in this process (same
  // load, same durability), else measured here.
  std::optional<double> plain = ctx->figures.ingest_fsync_per_s;
  const bool plain_here = !plain.has_value();
  if (plain_here) {
    auto run = MeasureIngest(IngestHubOptions(ctx, "curve-plain", "fsync"), "curve_plain",
                             LoadOptions(*ctx, "", ctx->options.ingest_events));
    if (!run.ok()) {
      return run.status();
    }
    if (!run->stopped.ok()) {
      return run->stopped;
    }
    plain = run->load.accepted_per_second();
  }

  auto server = NewKeyPair();
  if (!server.ok()) {
    return server.status();
  }
  auto client_keys = NewKeyPair();
  if (!client_keys.ok()) {
    return client_keys.status();
  }
  auto ho = IngestHubOptions(ctx, "curve", "fsync");
  auto keys_dir = ho.dir / "keys";
  std::filesystem::create_directories(keys_dir);
  ho.server_key_file = keys_dir / "hub.key";
  ho.identities_file = keys_dir / "identities.yaml";
  auto written = WriteKeyFile(ho.server_key_file, *server);
  if (!written.ok()) {
    return written;
  }
  {
    // The load publishes under the synthetic generator's default publishers (LoadOptions sets
    // none); one identity may publish them all. Z85 has no '"' or '\', so double quotes suffice.
    std::ofstream out(ho.identities_file);
    out << "identities:\n  bench-publisher:\n    kind: publisher\n    ods: [";
    const auto pubs = SyntheticOptions().publishers;
    for (size_t i = 0; i < pubs.size(); ++i) {
      out << (i > 0 ? ", " : "") << pubs[i];
    }
    out << "]\n    public_keys: [\"" << client_keys->public_key << "\"]\n";
  }
  auto lo = LoadOptions(*ctx, "", ctx->options.ingest_events);
  lo.curve_public = client_keys->public_key;
  lo.curve_secret = client_keys->secret_key;
  lo.curve_server = server->public_key;
  auto run = MeasureIngest(ho, "curve", lo);
  if (!run.ok()) {
    return run.status();
  }
  double rate = run->load.accepted_per_second();
  double ratio = *plain > 0 ? rate / *plain : 0;
  ctx->report.Add("curve", "accepted_per_s", "accepted events/s, CURVE (fsync)", rate, "/s");
  ctx->report.Add("curve", "plain_accepted_per_s", "accepted events/s, plain (fsync)", *plain,
                  "/s");
  ctx->figures.curve_over_plain = ratio;
  ctx->report.Add("curve", "curve_over_plain", "CURVE / plain accepted events/s", ratio, "x",
                  ">= 0.85x", ratio >= 0.85);
  ctx->report.Set("curve", "plain_measured_in", plain_here ? "curve section" : "ingest section");
  AddIngestFigures(ctx, "curve", *run);
  return run->stopped;
}

// ---- 2. Fan-out ----
Status RunFanoutSection(BenchContext* ctx) {
  const auto& o = ctx->options;
  auto hub = StartHub(ctx, "fanout", "fsync", true);
  if (!hub.ok()) {
    return hub.status();
  }
  const auto specs = o.fanout_one_view ? OneViewSubscriptions() : FanoutSubscriptions();
  std::vector<std::unique_ptr<Reader>> readers;
  std::atomic<bool> ingest_done{false};
  std::atomic<uint64_t> final_seq{0};
  auto t0 = Steady::now();
  auto lo = LoadOptions(*ctx, (*hub)->ingest_endpoint(), o.fanout_events);
  lo.publishers = BenchPublishers();
  lo.id_prefix = "fan-";
  for (const auto& s : specs) {
    auto r = std::make_unique<Reader>();
    r->subscription = s.id;
    readers.push_back(std::move(r));
  }
  for (auto& r : readers) {
    // After the load, a reader waits for the last answered event as long as the load itself
    // waited for its answers.
    r->thread = std::thread(ReadSubscription, r.get(), (*hub)->subscribe_endpoint(),
                            v1::Subscribe::START_EARLIEST, &ingest_done, t0, lo.answer_timeout,
                            nullptr, &final_seq);
  }
  std::fprintf(stderr, "[fanout] %lu events, %zu live subscriptions ...\n", lo.events,
               readers.size());
  const auto threads_before = (*hub)->ThreadUsage();
  auto r = RunIngestLoad(lo);
  double ingest_end_s = Since(t0);
  // RunIngestLoad builds its frames before its clock starts: sending began r.seconds ago.
  double send_start_s = ingest_end_s - r.seconds;
  std::vector<uint64_t> scanned_at_end, delivered_at_end;
  for (auto& rd : readers) {
    scanned_at_end.push_back(rd->scanned.load());
    delivered_at_end.push_back(rd->delivered.load());
  }
  final_seq = r.max_hub_seq;
  ingest_done = true;
  for (auto& rd : readers) {
    rd->thread.join();
  }
  const auto threads_after = (*hub)->ThreadUsage();
  const std::string hub_metrics = (*hub)->Metrics();
  const double parses = ScrapeSum(hub_metrics, "carehub_delivery_event_parses_total");
  const double shared = ScrapeSum(hub_metrics, "carehub_delivery_batches_shared_total");
  const auto sync_wait = ScrapeHistogram(hub_metrics, "carehub_delivery_audit_sync_wait_seconds");
  auto stopped = (*hub)->Stop();
  RemoveHubDir(hub->get());
  uint64_t total = 0, total_at_end = 0;
  double last_s = 0;
  const uint64_t head = r.accepted;
  for (size_t i = 0; i < readers.size(); ++i) {
    auto& rd = *readers[i];
    if (!rd.error.empty()) {
      return Status::Error("bench_failed", "fanout " + rd.subscription + ": " + rd.error);
    }
    total += rd.delivered;
    total_at_end += delivered_at_end[i];
    last_s = std::max(last_s, rd.finished_s);
    double share = head > 0 ? static_cast<double>(rd.delivered) / head : 0;
    nlohmann::json j = {{"delivered", rd.delivered.load()},
                        {"share", share},
                        {"expected_share", specs[i].expected_share},
                        {"lag_at_ingest_end_events", head - std::min(head, scanned_at_end[i])},
                        {"drain_seconds", std::max(0.0, rd.finished_s - ingest_end_s)}};
    ctx->report.Set("fanout_subscriptions", rd.subscription, j);
  }
  // The clock runs from the first event sent (ingest start, after frame building) to the last
  // subscription reaching the head.
  double active_s = last_s - send_start_s;
  double rate = active_s > 0 ? total / active_s : 0;
  double during = r.seconds > 0 ? total_at_end / r.seconds : 0;
  ctx->figures.fanout_per_s = rate;
  ctx->figures.fanout_one_view = o.fanout_one_view;
  ctx->report.Set("fanout", "views", o.fanout_one_view ? "one" : "distinct");
  ctx->report.Add("fanout", "deliveries_per_s",
                  o.fanout_one_view ? "deliveries/s, 10 subscriptions of one view (to drained)"
                                    : "deliveries/s, 10 subscriptions (to drained)",
                  rate, "/s", ">= 1M/s", rate >= 1e6);
  ctx->report.Add("fanout", "deliveries_during_ingest_per_s", "deliveries/s while ingest ran",
                  during, "/s");
  ctx->report.Add("fanout", "ingest_accepted_per_s", "ingest accepted/s with 10 live readers",
                  r.accepted_per_second(), "/s");
  ctx->report.Add("fanout", "deliveries_per_event", "deliveries per accepted event",
                  head > 0 ? static_cast<double>(total) / head : 0, "");
  ctx->report.Add("fanout", "parses_per_event", "delivery-path parses per accepted event",
                  head > 0 ? parses / static_cast<double>(head) : 0, "");
  ctx->report.Add("fanout", "batches_shared", "delivery batches taken from a session of the view",
                  shared, "");
  uint64_t max_lag = 0;
  for (auto s : scanned_at_end) {
    max_lag = std::max(max_lag, head - std::min(head, s));
  }
  ctx->report.Add("fanout", "max_lag_at_ingest_end", "max subscription lag at ingest end",
                  static_cast<double>(max_lag), "events");
  ctx->report.Add("fanout", "drain_seconds", "time for all to reach head after ingest",
                  std::max(0.0, last_s - ingest_end_s), "s");
  ctx->report.Set("fanout", "total_deliveries", total);
  ctx->report.Set("fanout", "accepted", r.accepted);
  ctx->report.Set("fanout", "ingest_seconds", r.seconds);
  // The hub's CPU per delivery, by thread, from the first event sent until all had drained.
  const ThreadRates per_delivery =
      RatesBetween(threads_before, threads_after, static_cast<double>(total));
  ctx->report.Set("fanout", "hub_cpu_us_per_delivery", ThreadJson(per_delivery.us));
  ctx->report.Set("fanout", "hub_minor_faults_per_delivery", ThreadJson(per_delivery.faults));
  const auto deliver = per_delivery.us.find("carehub-deliver");
  if (deliver != per_delivery.us.end() && total > 0) {
    const double deliver_seconds = deliver->second * static_cast<double>(total) / 1e6;
    ctx->report.Add("fanout", "deliver_thread_us_per_delivery", "delivery thread CPU per delivery",
                    deliver->second, "us");
    ctx->report.Add("fanout", "deliver_thread_busy", "delivery thread busy (CPU s / wall s)",
                    active_s > 0 ? deliver_seconds / active_s : 0, "");
    ctx->report.Add("fanout", "deliver_sync_wait_share",
                    "delivery thread waiting for audit syncs (s / wall s)",
                    active_s > 0 ? sync_wait.sum / active_s : 0, "");
    ctx->report.Add("fanout", "deliver_rounds_synced", "delivery rounds that waited for a sync",
                    sync_wait.count, "");
  }
  return stopped;
}

// ---- 3. Catch-up ----
Result<std::pair<double, uint64_t>> CatchUp(const std::string& endpoint, const std::string& sub) {
  Reader rd;
  rd.subscription = sub;
  std::atomic<bool> done{true};
  auto t0 = Steady::now();
  ReadSubscription(&rd, endpoint, v1::Subscribe::START_EARLIEST, &done, t0,
                   std::chrono::seconds(1200), nullptr);
  if (!rd.error.empty()) {
    return Status::Error("bench_failed", "catch-up " + sub + ": " + rd.error);
  }
  return std::make_pair(rd.finished_s, rd.delivered.load());
}

Status RunCatchupSection(BenchContext* ctx) {
  const auto& o = ctx->options;
  // The backlog is filled with durability os: this section measures reading, not writing.
  auto hub = StartHub(ctx, "catchup", "os", true);
  if (!hub.ok()) {
    return hub.status();
  }
  auto lo = LoadOptions(*ctx, (*hub)->ingest_endpoint(), o.catchup_events);
  lo.publishers = BenchPublishers();
  lo.resend_ratio = 0;
  lo.id_prefix = "cu-";
  std::fprintf(stderr, "[catchup] filling a backlog of %lu events ...\n", lo.events);
  auto fill = RunIngestLoad(lo);
  ctx->report.Set("catchup", "backlog_events", fill.accepted);
  ctx->report.Set("catchup", "fill_accepted_per_s", fill.accepted_per_second());
  // Both readings start on a store at rest: the fill leaves compactions behind (seconds of both
  // cores at 2M events), which would slow whichever reading came first — the short narrow one
  // nearly throughout, the long full one hardly.
  auto settle = [&](const char* after) -> Result<double> {
    const auto settled = (*hub)->WaitCompactionsSettled(std::chrono::seconds(300));
    if (!settled.settled) {
      return Status::Error("bench_failed",
                           std::string("catch-up: compactions still running 300 s after ") + after);
    }
    return settled.seconds;
  };
  auto after_fill = settle("the fill");
  if (!after_fill.ok()) {
    return after_fill.status();
  }
  ctx->report.Set("catchup", "fill_compaction_settle_seconds", *after_fill);
  std::fprintf(stderr, "[catchup] narrow (1%%) subscription from earliest ...\n");
  auto narrow = CatchUp((*hub)->subscribe_endpoint(), "sub-1pc");
  if (!narrow.ok()) {
    return narrow.status();
  }
  if (auto after_narrow = settle("the 1% reading"); !after_narrow.ok()) {
    return after_narrow.status();
  }
  std::fprintf(stderr, "[catchup] full subscription from earliest ...\n");
  auto full = CatchUp((*hub)->subscribe_endpoint(), "sub-all");
  if (!full.ok()) {
    return full.status();
  }
  auto stopped = (*hub)->Stop();
  RemoveHubDir(hub->get());
  auto [narrow_s, narrow_n] = *narrow;
  auto [full_s, full_n] = *full;
  double full_rate = full_s > 0 ? full_n / full_s : 0;
  ctx->figures.full_delivery_per_s = full_rate;
  double ratio = narrow_s > 0 ? full_s / narrow_s : 0;
  ctx->report.Add("catchup", "narrow_seconds", "1% subscription: wall time for backlog", narrow_s,
                  "s");
  ctx->report.Add("catchup", "narrow_delivered_per_s", "1% subscription: events delivered/s",
                  narrow_s > 0 ? narrow_n / narrow_s : 0, "/s");
  ctx->report.Add("catchup", "narrow_backlog_scanned_per_s", "1% subscription: backlog covered/s",
                  narrow_s > 0 ? fill.accepted / narrow_s : 0, "/s");
  ctx->report.Add("catchup", "full_seconds", "full subscription: wall time for backlog", full_s,
                  "s");
  ctx->report.Add("catchup", "full_delivered_per_s", "full subscription: events delivered/s",
                  full_rate, "/s");
  ctx->figures.catchup_speedup = ratio;
  ctx->report.Add("catchup", "speedup", "full time / 1% time", ratio, "x", ">= 50x", ratio >= 50);
  ctx->report.Set("catchup", "narrow_delivered", narrow_n);
  ctx->report.Set("catchup", "full_delivered", full_n);
  return stopped;
}

// ---- 4. Latency ----
namespace {

// The steady-rate latency run against a fresh hub with `durability`; figures under `sec`.
Status MeasureLatency(BenchContext* ctx, const std::string& durability, const std::string& sec) {
  const auto& o = ctx->options;
  auto hub = StartHub(ctx, sec, durability, true);
  if (!hub.ok()) {
    return hub.status();
  }
  const uint64_t events = static_cast<uint64_t>(o.latency_rate * o.latency_seconds);
  const uint32_t batch = std::max<uint32_t>(1, o.latency_batch);
  // Pre-built frames; every event id maps to its batch, whose send time is recorded.
  SyntheticOptions so;
  so.seed = 77;
  so.population = 200'000;
  so.id_prefix = "lat-";
  so.publishers = BenchPublishers();
  so.now = GenerationDay();
  SyntheticGenerator gen(so);
  std::vector<std::string> frames;
  std::unordered_map<std::string, uint32_t> batch_of;
  batch_of.reserve(events);
  {
    v1::Frame frame;
    frame.set_version(v1::PROTOCOL_VERSION_1);
    auto* publish = frame.mutable_publish();
    for (uint64_t i = 0; i < events; ++i) {
      auto e = gen.Next();
      batch_of.emplace(e.envelope().event_id(), static_cast<uint32_t>(frames.size()));
      *publish->add_events() = std::move(e);
      if (static_cast<uint32_t>(publish->events_size()) == batch || i + 1 == events) {
        publish->set_batch_id(frames.size() + 1);
        frames.push_back(frame.SerializeAsString());
        publish->clear_events();
      }
    }
  }
  std::vector<std::atomic<int64_t>> sent_ns(frames.size());
  std::vector<double> e2e_ms;
  e2e_ms.reserve(events);
  // Per publish batch, for --latency-trace: its answer's latency, its slowest event's delivery.
  std::vector<float> batch_answer_ms(frames.size(), 0), batch_delivery_ms(frames.size(), 0);
  std::atomic<bool> done{false};
  std::atomic<uint64_t> final_seq{0};
  // How long the publisher waits for answers after its schedule ends; the reader then waits as
  // long for the last answered event to reach it.
  const auto answer_timeout = std::chrono::seconds(60);
  Reader rd;
  rd.subscription = "sub-all";
  auto t0 = Steady::now();
  rd.thread = std::thread([&] {
    ReadSubscription(
        &rd, (*hub)->subscribe_endpoint(), v1::Subscribe::START_EARLIEST, &done, t0, answer_timeout,
        [&](const client::DeliveryBatch& b) {
          int64_t now = Steady::now().time_since_epoch().count();
          for (const auto& d : b.events) {
            auto it = batch_of.find(d.event().envelope().event_id());
            if (it != batch_of.end()) {
              e2e_ms.push_back((now - sent_ns[it->second].load()) / 1e6);
              batch_delivery_ms[it->second] =
                  std::max<float>(batch_delivery_ms[it->second], e2e_ms.back());
            }
          }
        },
        &final_seq);
  });
  // Give the subscription time to register before the first event.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::fprintf(stderr, "[%s] durability=%s: %lu events at %.0f/s in batches of %u ...\n",
               sec.c_str(), durability.c_str(), events, o.latency_rate, batch);
  zmq::context_t zctx(1);
  zmq::socket_t s(zctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  s.connect((*hub)->ingest_endpoint());
  std::vector<double> ack_ms;
  size_t next = 0, answered = 0;
  uint64_t accepted = 0;
  const auto threads_before = (*hub)->ThreadUsage();  // read before the schedule's clock starts
  auto start = Steady::now();
  auto deadline = start + std::chrono::duration_cast<Steady::duration>(
                              std::chrono::duration<double>(o.latency_seconds) + answer_timeout);
  // Open loop: each batch is due at its time on the schedule, and its latencies count from then,
  // so a stall of the hub is measured in full (no coordinated omission). Like any publisher it
  // keeps at most kMaxUnanswered batches unanswered (docs/protocol.md): a due batch beyond that
  // waits, its wait counted in its latency. Sending 1000 batches/s without that bound, a commit
  // stall of ~70 ms left more answers queued than the hub keeps for one peer; it dropped them
  // (carehub_ingest_answers_dropped_total) and the loop waited out answer_timeout for them: the
  // "2.9k/s achieved" this section once reported after the catch-up section.
  const size_t kMaxUnanswered = 32;
  // The schedule's origin: both the loop (Since(start)) and the latencies (sent_ns) count from it.
  const auto start_ns = start.time_since_epoch().count();
  while (answered < frames.size() && Steady::now() < deadline) {
    double now_s = Since(start);
    while (next < frames.size() && next - answered < kMaxUnanswered &&
           static_cast<double>(next) * batch / o.latency_rate <= now_s) {
      sent_ns[next] =
          start_ns + static_cast<int64_t>(static_cast<double>(next) * batch / o.latency_rate * 1e9);
      s.send(zmq::buffer(frames[next]), zmq::send_flags::none);
      ++next;
    }
    double next_due = static_cast<double>(next) * batch / o.latency_rate;
    // Waits for answers until the next batch is due, in whole milliseconds (zmq::poll's unit),
    // rounded down; the last part of a millisecond is slept after reading what has arrived. A
    // zero-timeout poll through that last millisecond (at 1000 batches/s: all the time) took
    // one of the two cores from the hub and tripled its latencies.
    const double until_due_ms = (next_due - Since(start)) * 1000;
    const bool window_full = next - answered >= kMaxUnanswered;
    const auto wait_ms = window_full
                             ? 5L  // only an answer lets the next batch go
                             : std::clamp(static_cast<long>(std::floor(until_due_ms)), 0L, 5L);
    const bool sleep_rest = !window_full && until_due_ms > 0 && until_due_ms < 1;
    zmq::pollitem_t items[] = {{s.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 1, std::chrono::milliseconds(wait_ms));
    zmq::message_t msg;
    while (s.recv(msg, zmq::recv_flags::dontwait)) {
      v1::Frame reply;
      if (reply.ParseFromArray(msg.data(), static_cast<int>(msg.size())) &&
          reply.has_publish_result()) {
        uint64_t id = reply.publish_result().batch_id();
        if (id >= 1 && id <= frames.size()) {
          ack_ms.push_back((Steady::now().time_since_epoch().count() - sent_ns[id - 1].load()) /
                           1e6);
          batch_answer_ms[id - 1] = ack_ms.back();
          ++answered;
          for (const auto& res : reply.publish_result().results()) {
            accepted += res.status() == v1::EventResult::ACCEPTED;
            final_seq = std::max<uint64_t>(final_seq.load(), res.hub_seq());
          }
        }
      }
    }
    if (sleep_rest) {
      std::this_thread::sleep_until(start + std::chrono::duration_cast<Steady::duration>(
                                                std::chrono::duration<double>(next_due)));
    }
  }
  double send_s = Since(start);
  done = true;
  rd.thread.join();
  // The hub's CPU per event, by thread, over the whole schedule: at a steady rate of small batches
  // a batch's thread hand-offs cost more than its events.
  const ThreadRates per_event =
      RatesBetween(threads_before, (*hub)->ThreadUsage(), static_cast<double>(accepted));
  std::fprintf(stderr, "[%s] hub CPU per event: %s\n", sec.c_str(),
               ThreadLine(per_event.us, per_event.faults).c_str());
  const std::string hub_metrics = (*hub)->Metrics();
  const double answers_dropped = ScrapeSum(hub_metrics, "carehub_ingest_answers_dropped_total");
  const auto commits = ScrapeHistogram(hub_metrics, "carehub_store_commit_seconds");
  // A run whose tail is the disk's shows it here: a group commit (its WAL sync) that took longer
  // than the whole target, which nothing on the hub's side of the sync can take away.
  const double slow_commits =
      ScrapeCountAbove(hub_metrics, "carehub_store_commit_seconds", kSlowCommitSeconds);
  const auto per_commit = ScrapeHistogram(hub_metrics, "carehub_store_batches_per_commit");
  // All WAL syncs over those of group commits: 2 when every delivery needs a sync of its own
  // after its events', 1 when its audit records ride the events' sync.
  const double group_syncs =
      ScrapeSum(hub_metrics, "carehub_store_wal_syncs_total{for=\"group_commit\"}");
  const double waiter_syncs =
      ScrapeSum(hub_metrics, "carehub_store_wal_syncs_total{for=\"waiting_deliveries\"}");
  auto stopped = (*hub)->Stop();
  RemoveHubDir(hub->get());
  if (!o.latency_trace.empty()) {
    const std::string path = o.latency_trace + "." + sec;
    std::ofstream trace(path);
    trace << "# due_ms answer_ms slowest_delivery_ms (0: not received)\n";
    for (size_t i = 0; i < frames.size(); ++i) {
      trace << (sent_ns[i].load() - start_ns) / 1e6 << ' ' << batch_answer_ms[i] << ' '
            << batch_delivery_ms[i] << '\n';
    }
    if (!trace) {
      return Status::Error("bench_failed", "cannot write the latency trace " + path);
    }
  }
  if (!rd.error.empty()) {
    return Status::Error("bench_failed", sec + " subscriber: " + rd.error);
  }
  if (e2e_ms.size() < events) {
    return Status::Error("bench_failed", sec + ": " + std::to_string(e2e_ms.size()) + " of " +
                                             std::to_string(events) + " events delivered");
  }
  const bool fsync = durability == "fsync";
  const double p99 = Percentile(&e2e_ms, 0.99);
  const double target_ms = fsync ? 10 : 3;
  (fsync ? ctx->figures.latency_p99_ms_fsync : ctx->figures.latency_p99_ms_os).push_back(p99);
  ctx->report.Add(sec, "offered_per_s", "offered rate (achieved)", accepted / send_s, "/s");
  ctx->report.Add(sec, "e2e_p50_ms", "publish->subscriber p50", Percentile(&e2e_ms, 0.5), "ms");
  ctx->report.Add(sec, "e2e_p99_ms", "publish->subscriber p99", p99, "ms",
                  fsync ? "< 10 ms" : "< 3 ms", p99 < target_ms);
  ctx->report.Add(sec, "e2e_p999_ms", "publish->subscriber p99.9", Percentile(&e2e_ms, 0.999),
                  "ms");
  ctx->report.Add(sec, "e2e_max_ms", "publish->subscriber max", e2e_ms.back(), "ms");
  ctx->report.Add(sec, "ack_p50_ms", "publish ack (" + durability + ") p50",
                  Percentile(&ack_ms, 0.5), "ms");
  ctx->report.Add(sec, "ack_p99_ms", "publish ack (" + durability + ") p99",
                  Percentile(&ack_ms, 0.99), "ms");
  ctx->report.Set(sec, "events", events);
  ctx->report.Set(sec, "unanswered_batches", frames.size() - answered);
  ctx->report.Add(sec, "commit_mean_ms", "group commit (write + sync) mean", commits.mean() * 1e3,
                  "ms");
  ctx->report.Add(sec, "batches_per_commit", "publish batches per group commit", per_commit.mean(),
                  "");
  ctx->report.Add(sec, "group_commits_over_50ms", "group commits (write + sync) over 50 ms",
                  slow_commits, "");
  if (fsync) {
    ctx->report.Add(sec, "wal_syncs_per_group_commit", "WAL syncs per group commit",
                    group_syncs > 0 ? (group_syncs + waiter_syncs) / group_syncs : 0, "");
  }
  ctx->report.Add(sec, "hub_answers_dropped", "answers the hub dropped (peer's queue full)",
                  answers_dropped, "");
  ctx->report.Set(sec, "batch_events", batch);
  ctx->report.Set(sec, "durability", durability);
  ctx->report.Set(sec, "hub_cpu_us_per_event", ThreadJson(per_event.us));
  ctx->report.Set(sec, "hub_minor_faults_per_event", ThreadJson(per_event.faults));
  return stopped;
}

}  // namespace

Status RunLatencySection(BenchContext* ctx) {
  // Run k's figures under "latency" and "latency_os" for the first run, "latency_run<k>" and
  // "latency_os_run<k>" after it. Fsync and os alternate so that a machine drifting over the
  // minutes favours neither.
  const uint32_t runs = std::max<uint32_t>(1, ctx->options.latency_runs);
  for (uint32_t run = 1; run <= runs; ++run) {
    const std::string suffix = run == 1 ? "" : "_run" + std::to_string(run);
    CAREHUB_RETURN_IF_ERROR(MeasureLatency(ctx, "fsync", "latency" + suffix));
    CAREHUB_RETURN_IF_ERROR(MeasureLatency(ctx, "os", "latency_os" + suffix));
  }
  return Status::Ok();
}

// ---- 5. Footprint ----
namespace {

// What FillHub stored.
struct Fill {
  uint64_t stored = 0;
  double seconds = 0;
  nlohmann::json steps = nlohmann::json::array();  // one entry per round
  // Each round's load, oldest first, to regenerate its events (stored resends). Rounds have
  // disjoint id prefixes, so their keys sit in disjoint ranges of the dedup index.
  std::vector<IngestLoadOptions> rounds;
};

// Fills a running hub with `events` new events (no resends) in rounds of 2M, ids of `shape` under
// "<tag><round>-"; after each round records RSS, peak RSS, data-dir size and the round's rate.
Result<Fill> FillHub(BenchContext* ctx, HubRunner* hub, uint64_t events, const std::string& tag,
                     IdShape shape) {
  const uint64_t round_events = 2'000'000;
  Fill fill;
  int round = 0;
  auto t0 = Steady::now();
  while (fill.stored < events) {
    auto lo =
        LoadOptions(*ctx, hub->ingest_endpoint(), std::min(round_events, events - fill.stored));
    lo.resend_ratio = 0;
    lo.id_shape = shape;
    lo.id_prefix = tag + std::to_string(round) + "-";
    ++round;
    fill.rounds.push_back(lo);
    std::fprintf(stderr, "[%s] %lu stored, adding %lu ...\n", tag.c_str(), fill.stored, lo.events);
    auto r = RunIngestLoad(lo);
    if (r.accepted == 0 || r.other > 0) {
      return Status::Error("bench_failed", tag + " fill: " + std::to_string(r.accepted) +
                                               " accepted, " + std::to_string(r.other) +
                                               " refused");
    }
    fill.stored += r.accepted;
    fill.steps.push_back({{"events", fill.stored},
                          {"rss_bytes", hub->RssBytes()},
                          {"peak_rss_bytes", hub->PeakRssBytes()},
                          {"data_dir_bytes", hub->DataDirBytes()},
                          {"accepted_per_s", r.accepted_per_second()}});
  }
  fill.seconds = Since(t0);
  return fill;
}

// The hub half of the footprint section: RSS and disk while events accumulate.
Status HubFootprint(BenchContext* ctx) {
  const auto& o = ctx->options;
  // os durability: the footprint does not depend on it, and the fill is quicker.
  auto hub = StartHub(ctx, "footprint", "os", false);
  if (!hub.ok()) {
    return hub.status();
  }
  auto fill = FillHub(ctx, hub->get(), o.footprint_events, "fp", IdShape::kSequential);
  if (!fill.ok()) {
    return fill.status();
  }
  const uint64_t stored = fill->stored;
  // Let RocksDB settle (memtable flushes, compactions) before the size is read.
  std::this_thread::sleep_for(std::chrono::seconds(o.quick ? 1 : 5));
  uint64_t peak = (*hub)->PeakRssBytes();
  uint64_t bytes = (*hub)->DataDirBytes();
  auto stopped = (*hub)->Stop();
  uint64_t bytes_stopped = (*hub)->DataDirBytes();
  RemoveHubDir(hub->get());
  double millions = stored / 1e6;
  double gib = peak / double(1ull << 30);
  bool judged = stored >= 20'000'000;
  ctx->report.Add("footprint", "stored_events", "events stored", static_cast<double>(stored), "");
  ctx->report.Add("footprint", "peak_rss_mib", "hub peak RSS (VmHWM)", peak / double(1 << 20),
                  "MiB", judged ? "< 1 GiB at 20M" : "",
                  judged ? std::optional<bool>(gib < 1.0) : std::nullopt);
  ctx->report.Add("footprint", "data_dir_mib_per_million", "data dir per million events",
                  bytes / double(1 << 20) / millions, "MiB");
  ctx->report.Add("footprint", "data_dir_mib_per_million_after_stop",
                  "data dir per million events (after stop)",
                  bytes_stopped / double(1 << 20) / millions, "MiB");
  ctx->report.Add("footprint", "fill_accepted_per_s", "fill rate (os durability, no resends)",
                  stored / fill->seconds, "/s");
  ctx->report.Set("footprint", "steps", fill->steps);
  return stopped;
}

// Where a batch of dedup lookups spent its time, from RocksDB's perf context (thread-local: the
// lookups run MultiGet on this thread), per lookup.
struct LookupProfile {
  double lookups = 0;
  rocksdb::PerfContext ctx;  // a copy, with its own per-level map

  nlohmann::json Json() const {
    auto per = [&](uint64_t v) { return lookups > 0 ? static_cast<double>(v) / lookups : 0.0; };
    nlohmann::json j = {
        {"memtable_us", per(ctx.get_from_memtable_time) / 1e3},
        {"sst_files_us", per(ctx.get_from_output_files_time) / 1e3},
        {"read_filter_block_us", per(ctx.read_filter_block_nanos) / 1e3},
        {"read_index_block_us", per(ctx.read_index_block_nanos) / 1e3},
        {"block_read_us", per(ctx.block_read_time) / 1e3},
        {"block_reads", per(ctx.block_read_count)},
        {"filter_block_reads", per(ctx.filter_block_read_count)},
        {"index_block_reads", per(ctx.index_block_read_count)},
        {"block_cache_hits", per(ctx.block_cache_hit_count)},
        {"block_cache_filter_hits", per(ctx.block_cache_filter_hit_count)},
        {"bloom_sst_hits", per(ctx.bloom_sst_hit_count)},
        {"bloom_sst_misses", per(ctx.bloom_sst_miss_count)},
        {"bloom_memtable_misses", per(ctx.bloom_memtable_miss_count)},
        {"key_comparisons", per(ctx.user_key_comparison_count)},
    };
    if (ctx.level_to_perf_context == nullptr) {
      return j;
    }
    for (const auto& [level, l] : *ctx.level_to_perf_context) {
      j["levels"]["L" + std::to_string(level)] = {
          {"bloom_useful", per(l.bloom_filter_useful)},
          {"bloom_positive", per(l.bloom_filter_full_positive)},
          {"bloom_true_positive", per(l.bloom_filter_full_true_positive)},
          {"block_cache_misses", per(l.block_cache_miss_count)},
          {"table_us", per(l.get_from_table_nanos) / 1e3}};
    }
    return j;
  }
  std::string Line() const {
    const auto j = Json();
    char buf[320];
    std::snprintf(buf, sizeof buf,
                  "memtable %.2f us, SST %.2f us (filter-block reads %.3f, index-block reads "
                  "%.3f, data-block reads %.3f taking %.2f us), bloom: %.2f files skipped, "
                  "%.3f passed",
                  j["memtable_us"].get<double>(), j["sst_files_us"].get<double>(),
                  j["filter_block_reads"].get<double>(), j["index_block_reads"].get<double>(),
                  j["block_reads"].get<double>(), j["block_read_us"].get<double>(),
                  j["bloom_sst_misses"].get<double>(), j["bloom_sst_hits"].get<double>());
    return buf;
  }
};

// The dedup micro-benchmark: `keys` keys written through the Store in batches of 1,000, then
// lookups of stored keys (random) and of new keys, each timed and profiled.
Status DedupLookups(BenchContext* ctx, uint64_t keys) {
  const auto& o = ctx->options;
  auto dir = ctx->NewDir("dedup-" + std::to_string(keys));
  auto store = hub::Store::Open({dir});
  if (!store.ok()) {
    return store.status();
  }
  const std::vector<std::string> pubs = {"RXK", "RR8", "M85001", "M85002", "RY6"};
  auto key_of = [&](uint64_t i) {
    return hub::DedupKey(pubs[i % pubs.size()], "dd-" + std::to_string(i / pubs.size()));
  };
  std::fprintf(stderr, "[footprint] dedup index with %lu keys ...\n", keys);
  const auto today =
      static_cast<uint32_t>(std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now())
                                .time_since_epoch()
                                .count());
  auto tw = Steady::now();
  for (uint64_t i = 0; i < keys;) {
    hub::WriteBatch wb;
    for (uint64_t j = 0; j < 1000 && i < keys; ++j, ++i) {
      hub::DedupEntry e;
      e.hub_seq = i + 1;
      // Today: older keys would be expired by the store's compaction filter (dedup window).
      e.day = today;
      e.hash[0] = static_cast<uint8_t>(i);
      (*store)->dedup().Add(&wb, key_of(i), e);
    }
    auto s = (*store)->Commit(&wb, false);
    if (!s.ok()) {
      return s;
    }
  }
  double write_s = Since(tw);
  const std::string shape = (*store)->dedup().LevelShape();
  std::mt19937_64 rng(5);
  const uint64_t lookups = o.quick ? 50'000 : 500'000;
  double rates[2] = {0, 0};
  LookupProfile profiles[2];
  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kEnableTimeExceptForMutex);
  rocksdb::get_perf_context()->EnablePerLevelPerfContext();
  for (int miss = 0; miss < 2; ++miss) {
    std::vector<std::string> batch;
    uint64_t found = 0;
    rocksdb::get_perf_context()->Reset();
    auto tl = Steady::now();
    for (uint64_t n = 0; n < lookups; n += 1000) {
      batch.clear();
      for (int j = 0; j < 1000; ++j) {
        batch.push_back(miss ? hub::DedupKey("RXK", "new-" + std::to_string(rng()))
                             : key_of(rng() % keys));
      }
      auto looked_up = (*store)->dedup().Lookup(batch);
      if (!looked_up.ok()) {
        return looked_up.status();
      }
      for (const auto& r : looked_up.value()) {
        found += r.has_value();
      }
    }
    rates[miss] = lookups / Since(tl);
    profiles[miss].lookups = static_cast<double>(lookups);
    profiles[miss].ctx = *rocksdb::get_perf_context();
    if (found != (miss ? 0 : lookups)) {
      return Status::Error("bench_failed", "dedup lookups found " + std::to_string(found));
    }
  }
  rocksdb::get_perf_context()->ClearPerLevelPerfContext();
  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);
  store->reset();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::string k = keys >= 1'000'000 ? std::to_string(keys / 1'000'000) + "M"
                                    : std::to_string(keys / 1000) + "k";
  std::fprintf(stderr, "[footprint] dedup %s keys, files per level: %s\n", k.c_str(),
               shape.c_str());
  std::fprintf(stderr, "[footprint] dedup %s keys, per stored-key lookup: %s\n", k.c_str(),
               profiles[0].Line().c_str());
  std::fprintf(stderr, "[footprint] dedup %s keys, per new-key lookup: %s\n", k.c_str(),
               profiles[1].Line().c_str());
  ctx->report.Add("footprint", "dedup_hit_lookups_per_s_" + k,
                  "dedup lookups/s, " + k + " keys, stored keys", rates[0], "/s");
  ctx->report.Add("footprint", "dedup_miss_lookups_per_s_" + k,
                  "dedup lookups/s, " + k + " keys, new keys", rates[1], "/s");
  ctx->report.Add("footprint", "dedup_miss_block_reads_" + k,
                  "blocks read per new-key lookup, " + k + " keys",
                  profiles[1].Json()["block_reads"].get<double>() +
                      profiles[1].Json()["filter_block_reads"].get<double>() +
                      profiles[1].Json()["index_block_reads"].get<double>(),
                  "");
  ctx->report.Set("footprint", "dedup_insert_per_s_" + k, keys / write_s);
  ctx->report.Set("footprint", "dedup_files_per_level_" + k, shape);
  ctx->report.Set("footprint", "dedup_hit_profile_" + k, profiles[0].Json());
  ctx->report.Set("footprint", "dedup_miss_profile_" + k, profiles[1].Json());
  return Status::Ok();
}
}  // namespace

Status RunFootprintSection(BenchContext* ctx) {
  const auto& o = ctx->options;
  Status stopped = Status::Ok();
  if (o.footprint_events > 0) {
    stopped = HubFootprint(ctx);
  }

  for (uint64_t keys : o.dedup_keys) {
    auto s = DedupLookups(ctx, keys);
    if (!s.ok()) {
      return s;
    }
  }
  return stopped;
}

// ---- 5b. Growth ----
namespace {

// One pair of the growth comparison: the same load on the (warmed) empty hub and on the filled
// hub, run back to back so both meet the same minutes of the machine.
struct GrowthPair {
  bool empty_first = true;
  IngestRun empty, filled;
  double settle_seconds = 0;  // both hubs' compaction waits before the pair's two loads
  bool settled = true;        // every wait ended with no compaction running or owed

  double ratio() const {
    const double e = empty.load.accepted_per_second();
    return e > 0 ? filled.load.accepted_per_second() / e : 0;
  }
};

// What a set of growth pairs gives: the medians (the figure is the median of the pairs' ratios),
// and each pair for the JSON and the log.
struct PairFigures {
  double ratio = 0, empty_rate = 0, filled_rate = 0;
  double settle_seconds = 0;
  bool all_settled = true;
  nlohmann::json json = nlohmann::json::array();
  std::string per_pair;  // "0.91x, 0.88x, 0.94x" in run order
};

PairFigures SummarisePairs(const std::vector<GrowthPair>& pairs) {
  PairFigures f;
  std::vector<double> ratios, empty_rates, filled_rates;
  for (const auto& pair : pairs) {
    ratios.push_back(pair.ratio());
    empty_rates.push_back(pair.empty.load.accepted_per_second());
    filled_rates.push_back(pair.filled.load.accepted_per_second());
    f.all_settled = f.all_settled && pair.settled;
    f.settle_seconds += pair.settle_seconds;
    f.json.push_back({{"order", pair.empty_first ? "empty, filled" : "filled, empty"},
                      {"empty_accepted_per_s", pair.empty.load.accepted_per_second()},
                      {"filled_accepted_per_s", pair.filled.load.accepted_per_second()},
                      {"filled_over_empty", pair.ratio()},
                      {"settle_seconds", pair.settle_seconds},
                      {"settled", pair.settled},
                      {"empty_ack_p99_ms", pair.empty.load.ack_p99_ms},
                      {"filled_ack_p99_ms", pair.filled.load.ack_p99_ms},
                      {"empty_duplicates", pair.empty.load.duplicate},
                      {"filled_duplicates", pair.filled.load.duplicate},
                      {"empty_hub_cpu_us_per_answered_event", ThreadJson(pair.empty)},
                      {"filled_hub_cpu_us_per_answered_event", ThreadJson(pair.filled)},
                      {"empty_hub_minor_faults_per_answered_event",
                       ThreadJson(pair.empty.thread_faults_per_event)},
                      {"filled_hub_minor_faults_per_answered_event",
                       ThreadJson(pair.filled.thread_faults_per_event)},
                      {"empty_dedup", pair.empty.dedup.Json()},
                      {"filled_dedup", pair.filled.dedup.Json()}});
    char buf[32];
    std::snprintf(buf, sizeof buf, "%s%.2fx", f.per_pair.empty() ? "" : ", ", pair.ratio());
    f.per_pair += buf;
  }
  f.ratio = Percentile(&ratios, 0.5);
  f.empty_rate = Percentile(&empty_rates, 0.5);
  f.filled_rate = Percentile(&filled_rates, 0.5);
  return f;
}

}  // namespace

Status RunGrowthSection(BenchContext* ctx) {
  const auto& o = ctx->options;
  const IdShape shape = o.growth_random_ids ? IdShape::kRandom : IdShape::kSequential;
  const char* shape_name = o.growth_random_ids ? "random (UUID)" : "sequential per sending system";
  // The fill inside the dedup window (events of today) with os durability; then the same hub
  // (same data dir) restarted with fsync for the measured loads.
  auto ho = IngestHubOptions(ctx, "growth", "os");
  auto hub = HubRunner::Start(ho);
  if (!hub.ok()) {
    return hub.status();
  }
  auto fill = FillHub(ctx, hub->get(), o.growth_events, "gr", shape);
  if (!fill.ok()) {
    return fill.status();
  }
  const uint64_t fill_peak_rss = (*hub)->PeakRssBytes();
  auto stopped = (*hub)->Stop();
  if (!stopped.ok()) {
    return stopped;
  }
  hub->reset();
  ho.durability = "fsync";
  // The target's load is the ingest section's own (issue 15: "then runs the ingest load"): new
  // events plus its 10% resends of its own recent events, as an outbox resends what was not
  // acknowledged. Resends of old events deep in the index (a replay of an old extract) are a
  // harder case measured beside it in the same run, in pairs of their own: every such resend needs
  // a data block of the index that no cache holds, which the target's load never asks for.
  auto lo = LoadOptions(*ctx, "", o.ingest_events);
  // The n-th replay load resends events of the fill's n-th round (of 2M; the last round when there
  // are fewer), so no load finds the index blocks of its resends in the caches because an earlier
  // load read them. Until 12-06 every load resent the first round's events: the same blocks, a
  // key or two apart (dd90688 shifted the picks by one event per load).
  auto stored_round = [&fill](size_t n) {
    return std::make_shared<IngestLoadOptions>(fill->rounds[std::min(n, fill->rounds.size() - 1)]);
  };
  hub = HubRunner::Start(ho);
  if (!hub.ok()) {
    return hub.status();
  }
  // First right after the restart, with the compactions the fill left behind still running (shown,
  // not the target's figure).
  std::fprintf(stderr, "[growth_full] durability=fsync, right after the restart: %lu events ...\n",
               lo.events);
  lo.id_prefix = "filled-restart-";
  IngestRun full = RunLoadOn(hub->get(), lo);
  std::fprintf(stderr, "[growth_full] hub CPU per answered event: %s\n", ThreadLine(full).c_str());
  std::fprintf(stderr, "[growth_full] dedup %s\n", full.dedup.Line().c_str());
  if (auto s = CheckAnswered(full, "growth, right after the restart"); !s.ok()) {
    return s;
  }
  // Then pairs: the same load on the empty hub and on the filled hub, back to back, the order
  // alternating (empty first, filled first, ...) so a machine that drifts over the minutes favours
  // neither side. Until 12-05 the empty load ran once, on a fresh process, before the 20-minute
  // fill, and was compared with a filled load half an hour later: on this VM the same load's rate
  // moved by a third between such runs (118k against 150k/s), more than the effect measured.
  // Both hub processes have run one load before the measured ones (the filled hub's first load
  // above; the empty hub's warm-up below): a fresh process pays for first touching its memtables'
  // memory, and the filled hub must not gain from that. The empty hub thus holds a few loads'
  // events (a few million with the defaults), a few per cent of the filled one. Every load
  // starts once both hubs report no compaction running or owed (their gauges, as in the catch-up
  // section; at most 10 min each), as on a hub that received its events over months; a filled
  // load's own flushes start compactions again, and that cost is the index's steady cost, carried
  // by the filled figure. Each figure is the median of its pairs' ratios.
  auto empty_hub = HubRunner::Start(IngestHubOptions(ctx, "growth-empty", "fsync"));
  if (!empty_hub.ok()) {
    return empty_hub.status();
  }
  auto empty_lo = LoadOptions(*ctx, "", o.ingest_events);
  empty_lo.id_prefix = "empty-warm-";
  std::fprintf(stderr, "[growth_empty_warmup] durability=fsync, a fresh hub: %lu events ...\n",
               empty_lo.events);
  const IngestRun empty_warmup = RunLoadOn(empty_hub->get(), empty_lo);
  if (auto s = CheckAnswered(empty_warmup, "growth, the empty hub's warm-up"); !s.ok()) {
    return s;
  }
  // `tag` names the pairs' sections; with `replay` the filled hub's loads resend old stored
  // events at growth_stored_resend_ratio (the empty hub has none to resend).
  auto run_pairs = [&](const std::string& tag, bool replay) -> Result<std::vector<GrowthPair>> {
    std::vector<GrowthPair> pairs(std::max<uint32_t>(1, o.growth_pairs));
    for (size_t i = 0; i < pairs.size(); ++i) {
      GrowthPair& pair = pairs[i];
      pair.empty_first = i % 2 == 0;
      const std::string pair_tag = tag + std::to_string(i + 1);
      for (int step = 0; step < 2; ++step) {
        const bool empty_now = (step == 0) == pair.empty_first;
        double waited = 0;
        bool settled = true;
        for (const auto* h : {hub->get(), empty_hub->get()}) {
          const auto quiet = h->WaitCompactionsSettled(std::chrono::seconds(600));
          waited += quiet.seconds;
          settled = settled && quiet.settled;
        }
        pair.settle_seconds += waited;
        pair.settled = pair.settled && settled;
        HubRunner* target = empty_now ? empty_hub->get() : hub->get();
        IngestLoadOptions load = empty_now ? empty_lo : lo;
        load.id_prefix = pair_tag + (empty_now ? "-empty-" : "-filled-");
        if (replay && !empty_now) {
          load.stored = stored_round(i);
          load.stored_resend_ratio = o.growth_stored_resend_ratio;
        }
        const std::string sec = pair_tag + (empty_now ? "_empty" : "_filled");
        std::fprintf(stderr, "[%s] compactions %s after %.0f s; %lu events ...\n", sec.c_str(),
                     settled ? "settled" : "still owed", waited, load.events);
        IngestRun run = RunLoadOn(target, load);
        std::fprintf(stderr, "[%s] hub CPU per answered event: %s\n", sec.c_str(),
                     ThreadLine(run).c_str());
        std::fprintf(stderr, "[%s] dedup %s\n", sec.c_str(), run.dedup.Line().c_str());
        if (auto s = CheckAnswered(run, "growth, " + sec); !s.ok()) {
          return s;
        }
        (empty_now ? pair.empty : pair.filled) = std::move(run);
      }
      std::fprintf(stderr, "[%s] %s first: empty %.0f/s, filled %.0f/s (%.2fx)\n", pair_tag.c_str(),
                   pair.empty_first ? "empty" : "filled", pair.empty.load.accepted_per_second(),
                   pair.filled.load.accepted_per_second(), pair.ratio());
    }
    return pairs;
  };
  auto pairs = run_pairs("growth_pair", false);
  if (!pairs.ok()) {
    return pairs.status();
  }
  std::vector<GrowthPair> replay_pairs;
  if (o.growth_stored_resend_ratio > 0) {
    auto replayed = run_pairs("growth_replay_pair", true);
    if (!replayed.ok()) {
      return replayed.status();
    }
    replay_pairs = std::move(replayed.value());
  }
  // RSS after every load on the filled hub, the replays' block reads included.
  const IngestRun& last_filled = (replay_pairs.empty() ? *pairs : replay_pairs).back().filled;
  const uint64_t rss = last_filled.rss;
  const uint64_t peak_rss = last_filled.peak_rss;
  stopped = (*hub)->Stop();
  RemoveHubDir(hub->get());
  auto empty_stopped = (*empty_hub)->Stop();
  RemoveHubDir(empty_hub->get());
  if (stopped.ok()) {
    stopped = empty_stopped;
  }

  const PairFigures target = SummarisePairs(*pairs);
  const double full_rate = full.load.accepted_per_second();
  const double rss_gib = rss / double(1ull << 30);
  const bool at_target_size = fill->stored >= 50'000'000;
  ctx->figures.growth_ratio = target.ratio;
  ctx->figures.growth_events = fill->stored;
  ctx->figures.growth_rss_bytes = rss;
  ctx->report.Add("growth", "stored_events", "events stored before the measured loads",
                  static_cast<double>(fill->stored), "");
  ctx->report.Add("growth", "fill_accepted_per_s", "fill rate (os durability, no resends)",
                  fill->stored / fill->seconds, "/s");
  ctx->report.Add("growth", "full_accepted_per_s",
                  "filled hub right after restart (compactions running), accepted/s", full_rate,
                  "/s");
  ctx->report.Add("growth", "empty_accepted_per_s",
                  "ingest (fsync) on an empty hub, accepted/s (median of pairs)", target.empty_rate,
                  "/s");
  ctx->report.Add("growth", "settled_accepted_per_s",
                  "filled hub, compactions quiet, accepted/s (median of pairs)", target.filled_rate,
                  "/s");
  ctx->report.Add("growth", "full_over_empty", "filled right after restart / empty (median)",
                  target.empty_rate > 0 ? full_rate / target.empty_rate : 0, "x");
  ctx->report.Add("growth", "settled_over_empty",
                  "filled / empty accepted/s, the ingest load, median of " +
                      std::to_string(pairs->size()) + " back-to-back pairs",
                  target.ratio, "x", ">= 0.80", target.ratio >= 0.8);
  if (!replay_pairs.empty()) {
    const PairFigures replay = SummarisePairs(replay_pairs);
    ctx->figures.growth_replay_ratio = replay.ratio;
    char metric[160];
    std::snprintf(metric, sizeof metric,
                  "the same with %.0f%% of the filled loads resending old events, median of %zu",
                  o.growth_stored_resend_ratio * 100, replay_pairs.size());
    ctx->report.Add("growth", "replay_over_empty", metric, replay.ratio, "x");
    ctx->report.Add("growth", "replay_accepted_per_s",
                    "filled hub resending old events, accepted/s (median of pairs)",
                    replay.filled_rate, "/s");
    ctx->report.Set("growth", "replay_pairs", replay.json);
    std::fprintf(stderr, "[growth] replaying %.0f%% old events: pairs %s; median %.2fx\n",
                 o.growth_stored_resend_ratio * 100, replay.per_pair.c_str(), replay.ratio);
  }
  ctx->report.Add("growth", "rss_mib", "hub RSS after the loads on the filled hub",
                  rss / double(1 << 20), "MiB", "< 1 GiB at 50M",
                  at_target_size ? std::optional<bool>(rss_gib < 1.0) : std::nullopt);
  ctx->report.Add("growth", "fill_peak_rss_mib", "hub peak RSS during the fill",
                  fill_peak_rss / double(1 << 20), "MiB");
  ctx->report.Set("growth", "id_shape", shape_name);
  ctx->report.Set("growth", "stored_resend_ratio", o.growth_stored_resend_ratio);
  ctx->report.Set("growth", "pairs", target.json);
  ctx->report.Set("growth", "settle_seconds", target.settle_seconds);
  ctx->report.Set("growth", "settled_before_every_load", target.all_settled);
  ctx->report.Set("growth", "steps", fill->steps);
  ctx->report.Set("growth", "full_duplicates", full.load.duplicate);
  ctx->report.Set("growth", "peak_rss_bytes", peak_rss);
  ctx->report.Set("growth", "full_hub_cpu_us_per_answered_event", ThreadJson(full));
  ctx->report.Set("growth", "full_dedup", full.dedup.Json());
  ctx->report.Set("growth", "full_ack_p99_ms", full.load.ack_p99_ms);
  ctx->report.Set("growth", "empty_warmup_accepted_per_s", empty_warmup.load.accepted_per_second());
  ctx->report.Set("growth", "empty_warmup_hub_cpu_us_per_answered_event", ThreadJson(empty_warmup));
  std::fprintf(stderr,
               "[growth] ids %s; filled %lu; right after restart %.0f/s; pairs %s; median "
               "empty %.0f/s, filled %.0f/s (%.2fx)\n",
               shape_name, fill->stored, full_rate, target.per_pair.c_str(), target.empty_rate,
               target.filled_rate, target.ratio);
  return stopped;
}

}  // namespace carehub::bench
