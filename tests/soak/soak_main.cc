// carehub-soak: a bounded soak run of the real hub (issue 9). Steady mixed traffic from several
// publishers through the client library's durable outbox, subscribers under four agreements that
// churn (disconnect, die without acknowledging, resume, replay from earliest), agreement reloads
// that narrow and widen one feed (plus one invalid file the hub must refuse), and hub restarts,
// graceful and kill -9, spread over the run. The hub's RSS and open fds are sampled throughout.
// At the end the hub is stopped and everything is checked against the publishers' ledger and the
// store: every valid event stored exactly once and nothing lost, every subscriber given every event
// its agreement allowed at the time (duplicates counted, not failures) and nothing it forbade.
// Exit status: 0 when consistent, 1 on any inconsistency, 2 when the run could not be set up.
//
//   carehub-soak [--minutes 10] [--rate 2000] [--seed N] [--out DIR]
//
// The seed (also CAREHUB_SEED) fixes the events, the mix, the churn and the fault schedule.

#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <map>
#include <random>
#include <thread>

#include "carehub/core/event_types.h"
#include "carehub/core/synthetic.h"
#include "carehub/hub/consistency.h"
#include "feeds.h"
#include "harness/hub_process.h"
#include "harness/ports.h"
#include "ledger.h"
#include "report.h"
#include "subscribe_support.h"
#include "traffic.h"

namespace carehub::soak {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr uint64_t kDefaultSeed = 20'261'123;
constexpr uint32_t kPopulation = 5000;

struct SoakOptions {
  double minutes = 10;
  double rate = 2000;
  uint64_t seed = kDefaultSeed;
  std::string out = "soak-report";
  double sample_seconds = 5;
  // Feed hospital-direct ignores every event whose hub_seq is a multiple of this (0: none), to
  // show the final check fails when deliveries are lost.
  uint64_t inject_lost_deliveries = 0;
  // The hub's footprint bounds; a sample past one fails the run. RSS: the store's block cache
  // (256 MiB) and write buffers (64 MiB per column family being written) plus the program, with
  // room; the short ctest run peaks near 70 MiB. Open fds: sockets, the store's SST and log files.
  // Fd growth: the last sample over the first, across every restart (a leak per reconnect or per
  // reload shows here).
  uint64_t max_rss_mib = 768;
  uint64_t max_open_fds = 512;
  uint64_t max_fd_growth = 64;
};

// The hub keeps its ports across restarts, as a deployed one does, so the clients reconnect on
// their own: fixed ports, picked free below the ephemeral range by the harness.
std::optional<int> PickPortPair(uint64_t seed) { return itest::FindFreePortBase({0, 1}, seed); }

uint64_t OpenFds(pid_t pid) {
  std::error_code ec;
  uint64_t n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

int64_t UnixMs() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

enum class ActionKind { kKill, kGraceful, kNarrow, kWiden, kRefused };

struct Action {
  int64_t at_ms = 0;
  ActionKind kind = ActionKind::kKill;
};

// Restarts and reloads spread over the run, jittered by the seed.
std::vector<Action> Schedule(double minutes, uint64_t seed) {
  const double total = minutes * 60'000;
  std::mt19937_64 rng(seed + 7);
  auto jitter = [&](double fraction) {
    const double j = std::uniform_real_distribution<double>(-0.02, 0.02)(rng);
    return static_cast<int64_t>(std::clamp(fraction + j, 0.05, 0.93) * total);
  };
  std::vector<Action> actions;
  if (minutes >= 2) {
    for (auto [f, k] : {std::pair{0.2, ActionKind::kKill}, std::pair{0.4, ActionKind::kGraceful},
                        std::pair{0.6, ActionKind::kKill}, std::pair{0.8, ActionKind::kGraceful}}) {
      actions.push_back({jitter(f), k});
    }
  } else {
    actions.push_back({jitter(0.3), ActionKind::kKill});
    actions.push_back({jitter(0.62), ActionKind::kGraceful});
  }
  int reloads = std::max(2, static_cast<int>(std::lround(minutes * 1.5)));
  reloads += reloads % 2;  // end widened
  for (int i = 0; i < reloads; ++i) {
    const double f = 0.1 + 0.8 * (i + 0.5) / reloads;
    actions.push_back({jitter(f), i % 2 == 0 ? ActionKind::kNarrow : ActionKind::kWiden});
  }
  actions.push_back({jitter(0.5), ActionKind::kRefused});
  std::stable_sort(actions.begin(), actions.end(),
                   [](const Action& a, const Action& b) { return a.at_ms < b.at_ms; });
  return actions;
}

class Soak {
 public:
  explicit Soak(SoakOptions options, std::string command)
      : options_(std::move(options)),
        work_("soak"),
        feeds_(SoakFeeds()),
        ledger_({"p0-", "p1-", "p2-"}) {
    report_.command = std::move(command);
    report_.seed = options_.seed;
    report_.minutes = options_.minutes;
    report_.rate = options_.rate;
  }

  int Run();

 private:
  Status Setup();
  void Orchestrate();
  void Execute(const Action& action, int reload_number);
  Status Reload(bool narrow, bool by_admin);
  Status RefusedReload();
  void TakeSample();
  void Finish();
  // The hub's RSS and open files against the stated bounds (SoakOptions).
  void CheckFootprint();
  void CheckStore();
  void Note(const std::string& what);
  void Fail(const std::string& what) { findings_.Add(what); }

  SoakOptions options_;
  itest::TempDir work_;
  std::vector<FeedRule> feeds_;
  Ledger ledger_;
  PolicyTimeline timeline_;
  Findings findings_;
  std::set<uint64_t> opted_out_;
  std::filesystem::path agreements_;
  bool narrow_ = false;
  std::unique_ptr<itest::HubProcess> hub_;
  std::string ingest_endpoint_;
  std::string subscribe_endpoint_;
  std::vector<std::unique_ptr<PublisherWorker>> publishers_;
  std::vector<std::unique_ptr<FeedWorker>> feed_workers_;
  std::atomic<bool> stop_traffic_{false};
  std::atomic<bool> stop_churn_{false};
  SoakReport report_;
  std::vector<SeqFacts> facts_;      // by hub_seq, from the stopped hub's store
  std::vector<std::string> routes_;  // SeqFacts::route names
  int64_t started_ms_ = 0;
};

void Soak::Note(const std::string& what) {
  char at[32];
  std::snprintf(at, sizeof at, "+%.1f s ", static_cast<double>(SoakNowMs() - started_ms_) / 1000);
  const std::string line = at + what;
  report_.timeline.push_back(line);
  std::cout << "  " << line << std::endl;
}

Status Soak::Setup() {
  std::vector<std::string> opt_out;
  for (uint32_t n = 0; n < kPopulation; n += 9) {
    opt_out.push_back(SyntheticNhsNumber(n));
    opted_out_.insert(NhsAsNumber(opt_out.back()));
  }
  auto policy_dir = work_.path() / "policy";
  std::filesystem::create_directories(policy_dir);
  auto agreements = itest::WritePolicyFiles(policy_dir, AgreementsYaml(feeds_, false), opt_out);
  if (!agreements.ok()) {
    return agreements.status();
  }
  agreements_ = agreements.value();
  auto base = PickPortPair(options_.seed);
  if (!base) {
    return Status::Error("no_ports", "no free pair of ports in 21000-31000");
  }
  ingest_endpoint_ = "tcp://127.0.0.1:" + std::to_string(*base);
  subscribe_endpoint_ = "tcp://127.0.0.1:" + std::to_string(*base + 1);
  const std::string extra = "ingest:\n  endpoint: " + ingest_endpoint_ +
                            "\nsubscribe:\n  endpoint: " + subscribe_endpoint_ + "\n";
  auto hub = itest::HubProcess::Start(itest::HubWithAgreements("soak-hub", agreements_, extra));
  if (!hub.ok()) {
    return hub.status();
  }
  hub_ = std::move(hub).value();
  std::cout << "  hub pid " << hub_->pid() << ", ingest " << ingest_endpoint_ << ", subscribe "
            << subscribe_endpoint_ << ", dir " << hub_->dir().string() << std::endl;

  const std::vector<std::vector<std::string>> providers = {
      {"RXK", "RR8"}, {"M85001", "M85002"}, {"RY6"}};
  const std::vector<double> shares = {0.45, 0.35, 0.20};
  const double total_ms = options_.minutes * 60'000;
  for (size_t c = 0; c < providers.size(); ++c) {
    TrafficOptions to;
    to.endpoint = ingest_endpoint_;
    to.outbox_dir = work_.path() / ("outbox-" + std::to_string(c));
    to.providers = providers[c];
    to.id_prefix = "p" + std::to_string(c) + "-";
    to.seed = options_.seed * 31 + c;
    to.events_per_second = options_.rate * shares[c];
    to.population = kPopulation;
    to.reopen_at_ms = static_cast<int64_t>(total_ms * (0.3 + 0.2 * static_cast<double>(c)));
    publishers_.push_back(std::make_unique<PublisherWorker>(c, to, &ledger_, &findings_));
    Status s = publishers_.back()->Open();
    if (!s.ok()) {
      return s;
    }
  }
  for (size_t f = 0; f < feeds_.size(); ++f) {
    feed_workers_.push_back(std::make_unique<FeedWorker>(
        f, feeds_[f], options_.seed * 131 + f, subscribe_endpoint_, &ledger_, &timeline_,
        &opted_out_, &findings_, f == 1 ? options_.inject_lost_deliveries : 0));
  }
  return Status::Ok();
}

Status Soak::Reload(bool narrow, bool by_admin) {
  const int64_t written_unix = UnixMs();
  timeline_.BeginChange(narrow, SoakNowMs());
  Status s = itest::WriteFileAtomically(agreements_, AgreementsYaml(feeds_, narrow));
  if (!s.ok()) {
    return s;
  }
  if (by_admin) {
    auto reply = itest::AdminPost(hub_->admin_address(), "/api/v1/agreements/reload");
    if (!reply.ok()) {
      return reply.status();
    }
    if (reply->status != 200) {
      return Status::Error("reload_refused", reply->body.dump());
    }
  } else {
    hub_->Signal(SIGHUP);
    const std::string query = "/api/v1/audit?limit=1000&since=" + std::to_string(written_unix - 5);
    bool seen = itest::WaitFor(
        [&] {
          auto reply = itest::AdminGet(hub_->admin_address(), query);
          if (!reply.ok() || !reply->body.contains("items")) {
            return false;
          }
          for (const auto& a : reply->body["items"]) {
            if (a.value("kind", "") == "agreements_changed") {
              return true;
            }
          }
          return false;
        },
        seconds(15));
    if (!seen) {
      return Status::Error("reload_unconfirmed", "no agreements_changed audit record after SIGHUP");
    }
  }
  timeline_.Confirm(SoakNowMs());
  narrow_ = narrow;
  return Status::Ok();
}

Status Soak::RefusedReload() {
  Status s = itest::WriteFileAtomically(agreements_, AgreementsYaml(feeds_, narrow_, true));
  if (!s.ok()) {
    return s;
  }
  auto reply = itest::AdminPost(hub_->admin_address(), "/api/v1/agreements/reload");
  // Restore the file in force before anything else can read it (a restart would refuse to start).
  Status restored = itest::WriteFileAtomically(agreements_, AgreementsYaml(feeds_, narrow_));
  if (!reply.ok()) {
    return reply.status();
  }
  if (reply->status != 422) {
    return Status::Error("invalid_file_accepted",
                         "reload of an invalid file answered " + std::to_string(reply->status));
  }
  return restored;
}

void Soak::Execute(const Action& action, int reload_number) {
  switch (action.kind) {
    case ActionKind::kKill:
    case ActionKind::kGraceful: {
      const bool kill = action.kind == ActionKind::kKill;
      NoteHubDown();
      if (kill) {
        hub_->Kill();
        ++report_.restarts_kill9;
        Note("hub kill -9 (pid " + std::to_string(hub_->pid()) + ")");
      } else {
        auto exit = hub_->Stop(seconds(60));
        ++report_.restarts_graceful;
        if (!exit.ok() || !exit->Exited(0)) {
          Fail("hub did not exit 0 on SIGTERM: " +
               (exit.ok() ? exit->ToString() : exit.status().ToString()));
        }
        Note("hub stopped by SIGTERM");
      }
      std::this_thread::sleep_for(milliseconds(1000));
      Status s = hub_->Restart();
      if (!s.ok()) {
        Fail("hub restart failed: " + s.ToString());
        stop_traffic_ = true;
        return;
      }
      NoteHubUp();
      Note("hub restarted (pid " + std::to_string(hub_->pid()) + ")");
      return;
    }
    case ActionKind::kNarrow:
    case ActionKind::kWiden: {
      const bool narrow = action.kind == ActionKind::kNarrow;
      const bool by_admin = reload_number % 2 == 1;
      Status s = Reload(narrow, by_admin);
      if (!s.ok()) {
        Fail("reload failed: " + s.ToString());
        return;
      }
      ++(narrow ? report_.reloads_narrow : report_.reloads_widen);
      Note(std::string(narrow ? "agreements narrowed" : "agreements widened") + " (" +
           (by_admin ? "admin reload" : "SIGHUP") + ")");
      return;
    }
    case ActionKind::kRefused: {
      Status s = RefusedReload();
      if (!s.ok()) {
        Fail("invalid agreements file: " + s.ToString());
        return;
      }
      ++report_.reloads_refused;
      Note("invalid agreements file refused (admin reload 422), old set kept");
      return;
    }
  }
}

void Soak::TakeSample() {
  Sample s;
  s.at_seconds = static_cast<double>(SoakNowMs() - started_ms_) / 1000.0;
  s.hub_up = hub_->running();
  if (s.hub_up) {
    s.rss_bytes = hub_->RssBytes().value_or(0);
    s.open_fds = OpenFds(hub_->pid());
  }
  for (const auto& p : publishers_) {
    auto c = p->counters();
    s.enqueued += c.sent_valid + c.sent_resends + c.sent_invalid;
    s.acknowledged += c.accepted + c.duplicate;
  }
  for (const auto& f : feed_workers_) {
    s.deliveries += f->deliveries();
  }
  report_.samples.push_back(s);
}

void Soak::Orchestrate() {
  const auto actions = Schedule(options_.minutes, options_.seed);
  const int64_t end_ms = started_ms_ + static_cast<int64_t>(options_.minutes * 60'000);
  const auto sample_every = static_cast<int64_t>(options_.sample_seconds * 1000);
  int64_t next_sample = started_ms_;
  size_t next_action = 0;
  int reload_number = 0;
  while (SoakNowMs() < end_ms && !stop_traffic_.load()) {
    const int64_t now = SoakNowMs();
    if (now >= next_sample) {
      TakeSample();
      next_sample += sample_every;
    }
    if (next_action < actions.size() && now >= started_ms_ + actions[next_action].at_ms) {
      const auto& a = actions[next_action++];
      const bool reload = a.kind == ActionKind::kNarrow || a.kind == ActionKind::kWiden;
      Execute(a, reload_number);
      reload_number += reload ? 1 : 0;
      continue;
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
}

int Soak::Run() {
  std::cout << "carehub soak: " << options_.minutes << " min at " << options_.rate
            << " events/s, seed " << options_.seed << " (replay: --seed " << options_.seed
            << " or CAREHUB_SEED=" << options_.seed << ")" << std::endl;
  Status s = Setup();
  if (!s.ok()) {
    std::cerr << "soak setup failed: " << s.ToString() << std::endl;
    if (hub_) {
      std::cerr << hub_->ReadLog() << std::endl;
    }
    return 2;
  }
  started_ms_ = SoakNowMs();
  std::vector<std::thread> threads;
  for (auto& p : publishers_) {
    threads.emplace_back([&p, this] { p->Run(stop_traffic_); });
  }
  std::vector<std::thread> churners;
  for (auto& f : feed_workers_) {
    churners.emplace_back([&f, this] { f->Churn(stop_churn_, stop_traffic_); });
  }
  Orchestrate();
  const bool aborted = stop_traffic_.load();
  stop_traffic_ = true;
  for (auto& t : threads) {
    t.join();
  }
  Note("traffic stopped; draining the outboxes");
  for (size_t c = 0; c < publishers_.size() && !aborted; ++c) {
    if (!publishers_[c]->Drain(seconds(180))) {
      Fail("publisher p" + std::to_string(c) + " outbox not drained within 180 s");
    }
  }
  stop_churn_ = true;
  for (auto& t : churners) {
    t.join();
  }
  Note("subscribers catching up to the head");
  for (auto& f : feed_workers_) {
    if (aborted) {
      break;
    }
    Status caught = f->CatchUp(seconds(180));
    if (!caught.ok()) {
      Fail(caught.ToString());
    }
  }
  TakeSample();
  for (auto& p : publishers_) {
    auto c = p->counters();
    report_.outbox_left += c.outbox_depth;
    p->Close();
  }
  Finish();
  report_.seconds = static_cast<double>(SoakNowMs() - started_ms_) / 1000.0;
  report_.findings = findings_.count();
  report_.first_findings = findings_.first();
  std::cout << ReportText(report_) << std::flush;
  Status written = WriteReport(report_, options_.out);
  if (!written.ok()) {
    std::cerr << written.ToString() << std::endl;
  } else {
    std::cout << "report: " << (std::filesystem::path(options_.out) / "report.md").string() << ", "
              << (std::filesystem::path(options_.out) / "report.json").string() << std::endl;
  }
  if (!report_.ok() && hub_) {
    std::cerr << "last lines of the hub log (" << hub_->log_path().string() << "):\n";
    const std::string log = hub_->ReadLog();
    std::cerr << log.substr(log.size() > 4000 ? log.size() - 4000 : 0) << std::endl;
  }
  return report_.ok() ? 0 : 1;
}

void Soak::Finish() {
  for (const auto& p : publishers_) {
    auto c = p->counters();
    auto& t = report_.traffic;
    t.sent_valid += c.sent_valid;
    t.sent_resends += c.sent_resends;
    t.sent_invalid += c.sent_invalid;
    t.enqueue_calls += c.enqueue_calls;
    t.enqueue_errors += c.enqueue_errors;
    t.client_reopens += c.client_reopens;
    t.accepted += c.accepted;
    t.duplicate += c.duplicate;
    t.rejected += c.rejected;
    t.conflict += c.conflict;
    t.retried += c.retried;
  }
  const auto& t = report_.traffic;
  if (t.rejected != t.sent_invalid || t.conflict != 0) {
    Fail("publishers sent " + std::to_string(t.sent_invalid) + " invalid events but " +
         std::to_string(t.rejected) + " were answered REJECTED and " + std::to_string(t.conflict) +
         " CONFLICT");
  }
  if (report_.outbox_left != 0) {
    Fail(std::to_string(report_.outbox_left) + " events left in the outboxes");
  }
  auto exit = hub_->Stop(seconds(60));
  if (!exit.ok() || !exit->Exited(0)) {
    Fail("hub did not exit 0 on the final SIGTERM: " +
         (exit.ok() ? exit->ToString() : exit.status().ToString()));
  }
  Note("hub stopped; checking the store");
  CheckFootprint();
  CheckStore();
  for (auto& f : feed_workers_) {
    f->FinalCheck(facts_, routes_);
    report_.feeds.push_back({f->rule().subscription,
                             f->rule().secondary_use ? "secondary_use" : "direct_care",
                             f->counters()});
  }
  // Two secondary-use agreements must not be linkable on the pseudonym.
  const auto& a = feed_workers_[2]->pseudonyms();
  const auto& b = feed_workers_[3]->pseudonyms();
  size_t shared = 0;
  for (const auto& [nhs, p] : b) {
    auto it = a.find(nhs);
    if (it != a.end()) {
      ++shared;
      if (it->second == p) {
        Fail("one patient has the same pseudonym under two secondary-use agreements");
        break;
      }
    }
  }
  if (shared == 0 && !b.empty()) {
    Fail("no patient in both secondary-use feeds: the pseudonym check tested nothing");
  }
}

void Soak::CheckFootprint() {
  const Sample* first = nullptr;
  const Sample* last = nullptr;
  for (const auto& s : report_.samples) {
    if (!s.hub_up) {
      continue;
    }
    first = first ? first : &s;
    last = &s;
    if (s.rss_bytes > options_.max_rss_mib << 20) {
      Fail("hub RSS " + std::to_string(s.rss_bytes >> 20) + " MiB at +" +
           std::to_string(static_cast<int>(s.at_seconds)) + " s, over the bound of " +
           std::to_string(options_.max_rss_mib) + " MiB");
      break;
    }
    if (s.open_fds > options_.max_open_fds) {
      Fail("hub holds " + std::to_string(s.open_fds) + " open files at +" +
           std::to_string(static_cast<int>(s.at_seconds)) + " s, over the bound of " +
           std::to_string(options_.max_open_fds));
      break;
    }
  }
  if (first == nullptr) {
    Fail("no footprint sample was taken while the hub was up");
  } else if (last->open_fds > first->open_fds + options_.max_fd_growth) {
    Fail("hub open files grew from " + std::to_string(first->open_fds) + " to " +
         std::to_string(last->open_fds) + ", more than the bound of " +
         std::to_string(options_.max_fd_growth));
  }
}

void Soak::CheckStore() {
  auto store = hub_->OpenStore();
  if (!store.ok()) {
    Fail("cannot open the hub's store: " + store.status().ToString());
    return;
  }
  hub::Store& st = *store.value();
  const uint64_t last = itest::MustRead(st.events().LastSeq(), "last seq");
  const uint64_t first = itest::MustRead(st.events().FirstSeq(), "first seq");
  facts_.assign(last + 1, SeqFacts{});
  uint64_t expect_seq = first > 0 ? first : 1;
  uint64_t holes = 0;
  uint64_t bad_hash = 0;
  uint64_t dedup_bad = 0;
  std::vector<std::string> keys;
  std::vector<uint64_t> key_seqs;
  std::map<std::string, uint16_t> route_index;
  auto check_dedup = [&] {
    auto entries = itest::MustRead(st.dedup().Lookup(keys), "dedup");
    for (size_t i = 0; i < entries.size(); ++i) {
      if (!entries[i] || entries[i]->hub_seq != key_seqs[i]) {
        if (dedup_bad++ < 3) {
          Fail("dedup key of hub_seq " + std::to_string(key_seqs[i]) +
               (entries[i] ? " points to " + std::to_string(entries[i]->hub_seq) : " missing"));
        }
      }
    }
    keys.clear();
    key_seqs.clear();
  };
  Status scanned = st.events().Scan(0, last, [&](uint64_t seq, std::string_view bytes) {
    if (seq != expect_seq) {
      holes += seq > expect_seq ? seq - expect_seq : 1;
    }
    expect_seq = seq + 1;
    v1::Event e;
    if (!e.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      Fail("hub_seq " + std::to_string(seq) + " does not parse");
      return true;
    }
    const auto& env = e.envelope();
    if (env.hub_seq() != seq) {
      Fail("hub_seq " + std::to_string(seq) + " holds an event stamped " +
           std::to_string(env.hub_seq()));
    }
    auto original = ledger_.MarkStored(env.event_id());
    if (!original) {
      Fail("stored event " + env.event_id() + " was never sent");
      return true;
    }
    if (!original->valid) {
      ++report_.invalid_stored;
    }
    if (ContentHash(e) != original->content_hash && bad_hash++ < 3) {
      Fail("stored event " + env.event_id() + " differs from what the publisher sent");
    }
    ++report_.stored;
    SeqFacts& f = facts_[seq];
    f.present = true;
    f.opted_out = opted_out_.count(original->nhs) > 0;
    const std::string type = EventTypeName(e);
    const std::string route = env.publisher_ods() + " " + env.site_ods() + " " + type;
    auto known = route_index.try_emplace(route, static_cast<uint16_t>(routes_.size()));
    if (known.second) {
      routes_.push_back(route);
    }
    f.route = known.first->second;
    for (size_t i = 0; i < feeds_.size(); ++i) {
      const auto bit = static_cast<uint8_t>(1u << i);
      f.wide |= Covers(feeds_[i], env.publisher_ods(), env.site_ods(), type, false) ? bit : 0;
      f.narrow |= Covers(feeds_[i], env.publisher_ods(), env.site_ods(), type, true) ? bit : 0;
    }
    keys.push_back(hub::DedupKey(env.publisher_ods(), env.event_id()));
    key_seqs.push_back(seq);
    if (keys.size() >= 1000) {
      check_dedup();
    }
    return true;
  });
  itest::MustSucceed(scanned, "scan events");
  check_dedup();
  if (holes > 0 || expect_seq != last + 1) {
    Fail("the event log has " + std::to_string(holes) + " holes (ends at " +
         std::to_string(expect_seq - 1) + ", LastSeq " + std::to_string(last) + ")");
  }
  std::string first_lost;
  ledger_.ForEach([&](const std::string& id, const Original& o) {
    if (o.valid && o.stored == 0) {
      ++report_.lost;
      if (first_lost.empty()) {
        first_lost = id;
      }
    }
    if (o.stored > 1) {
      ++report_.stored_twice;
    }
  });
  if (report_.lost > 0) {
    Fail(std::to_string(report_.lost) + " valid events sent but not stored, first " + first_lost);
  }
  if (report_.stored_twice > 0 || report_.invalid_stored > 0) {
    Fail(std::to_string(report_.stored_twice) + " events stored twice, " +
         std::to_string(report_.invalid_stored) + " invalid events stored");
  }
  report_.quarantined = itest::ReadAllQuarantine(st).size();
  if (report_.quarantined < report_.traffic.sent_invalid) {
    Fail("quarantine holds " + std::to_string(report_.quarantined) + " records for " +
         std::to_string(report_.traffic.sent_invalid) + " invalid events");
  }
  for (const auto& f : feeds_) {
    auto cursor = itest::MustRead(st.cursors().Get(f.subscription), "cursor");
    if (cursor && *cursor > last) {
      Fail(f.subscription + " cursor " + std::to_string(*cursor) + " beyond LastSeq " +
           std::to_string(last));
    }
  }
  auto consistency = hub::CheckConsistency(st);
  if (!consistency.ok()) {
    Fail("CheckConsistency could not read the store: " + consistency.status().ToString());
  } else if (!consistency->consistent()) {
    Fail("CheckConsistency: " + consistency->Summary());
    for (const auto& p : consistency->problems) {
      Fail("  " + p);
    }
  }
  report_.store_check =
      std::string("log without holes: ") + (holes == 0 ? "yes" : "NO") +
      "; dedup keys pointing at their event: " +
      (dedup_bad == 0 ? "all" : std::to_string(dedup_bad) + " wrong") + "; CheckConsistency: " +
      (consistency.ok() ? consistency->Summary() : consistency.status().ToString());
  store.value().reset();
  // The operators' tool on the same data dir must agree.
  auto verify = itest::RunCommand(
      {itest::BinaryPath("carehubctl").string(), "verify", "--data-dir", hub_->data_dir().string()},
      work_.path(), seconds(300));
  if (!verify.ok() || !verify->status.Exited(0)) {
    Fail("carehubctl verify: " + (verify.ok()
                                      ? verify->status.ToString() + " " + verify->out + verify->err
                                      : verify.status().ToString()));
  }
  report_.store_check +=
      "; carehubctl verify: " + (verify.ok() ? verify->status.ToString() : std::string("not run"));
}

}  // namespace
}  // namespace carehub::soak

int main(int argc, char** argv) {
  carehub::soak::SoakOptions options;
  if (const char* env = std::getenv("CAREHUB_SEED")) {
    options.seed = std::strtoull(env, nullptr, 10);
  }
  CLI::App app{
      "carehub-soak: a bounded soak run of the real hub with faults, then a full "
      "consistency check"};
  app.add_option("--minutes", options.minutes, "Length of the traffic phase")
      ->check(CLI::Range(0.1, 600.0));
  app.add_option("--rate", options.rate, "Events per second over all publishers")
      ->check(CLI::Range(10.0, 100000.0));
  app.add_option("--seed", options.seed, "Seed for events, mix, churn and faults (CAREHUB_SEED)");
  app.add_option("--out", options.out, "Directory for report.json and report.md");
  app.add_option("--sample-seconds", options.sample_seconds, "Seconds between footprint samples")
      ->check(CLI::Range(0.5, 60.0));
  app.add_option("--inject-lost-deliveries", options.inject_lost_deliveries,
                 "Self-check: one feed ignores every event whose hub_seq is a multiple of N, "
                 "so the run must FAIL");
  app.add_option("--max-rss-mib", options.max_rss_mib, "Fail when the hub's RSS passes this");
  app.add_option("--max-open-fds", options.max_open_fds,
                 "Fail when the hub holds more open files than this");
  app.add_option("--max-fd-growth", options.max_fd_growth,
                 "Fail when the hub's open files grow by more than this over the run");
  CLI11_PARSE(app, argc, argv);
  char minutes[32];
  std::snprintf(minutes, sizeof minutes, "%g", options.minutes);
  char rate[32];
  std::snprintf(rate, sizeof rate, "%g", options.rate);
  std::string command = std::string(argv[0]) + " --minutes " + minutes + " --rate " + rate +
                        " --seed " + std::to_string(options.seed);
  if (options.inject_lost_deliveries > 0) {
    command += " --inject-lost-deliveries " + std::to_string(options.inject_lost_deliveries);
  }
  carehub::soak::Soak soak(options, command);
  return soak.Run();
}
