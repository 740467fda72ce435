#include "feeds.h"

#include <algorithm>
#include <atomic>
#include <thread>

#include "carehub/client/subscriber.h"
#include "carehub/core/event_types.h"
#include "harness/child_process.h"

namespace carehub::soak {
namespace {

using Steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

const Steady::time_point kEpoch = Steady::now();

// The client settings every soak session uses (SessionOptions).
constexpr milliseconds kHeartbeatInterval{1000};
constexpr milliseconds kHubTimeout{4000};
constexpr milliseconds kConnectTimeout{3000};

// When the hub last became available again (SoakNowMs), and whether it is down now: a session's
// silence counts only from then, so a slow restart (a WAL replay) is never taken for a client that
// failed to resume.
std::atomic<int64_t> hub_up_since_ms{0};
std::atomic<bool> hub_down{false};

// A session that hears nothing this long while the hub is up (no delivery, not even an empty one)
// is reopened, and it is a finding while traffic flows. Derived from what it races: the client
// notices a silent hub after kHubTimeout, reconnects within kConnectTimeout, and the hub answers
// within a heartbeat; one more heartbeat of margin, stretched by CAREHUB_TIME_SCALE.
int64_t StallLimitMs() {
  return itest::Scaled(kHubTimeout + kConnectTimeout + 2 * kHeartbeatInterval).count();
}

std::string YamlList(const std::vector<std::string>& items) {
  if (items.empty()) {
    return "[\"*\"]";
  }
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    out += (i ? ", \"" : "\"") + items[i] + "\"";
  }
  return out + "]";
}

bool IsHex64(const std::string& s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

client::SubscriberOptions SessionOptions(const std::string& endpoint, const FeedRule& rule,
                                         v1::Subscribe::Start start) {
  client::SubscriberOptions so;
  so.endpoint = endpoint;
  so.subscription = rule.subscription;
  so.start = start;
  so.window = 5000;
  so.heartbeat_interval = kHeartbeatInterval;
  so.hub_timeout = kHubTimeout;
  so.connect_timeout = kConnectTimeout;
  return so;
}

}  // namespace

void NoteHubDown() { hub_down = true; }

void NoteHubUp() {
  hub_up_since_ms = SoakNowMs();
  hub_down = false;
}

int64_t SoakNowMs() {
  return std::chrono::duration_cast<milliseconds>(Steady::now() - kEpoch).count();
}

std::vector<FeedRule> SoakFeeds() {
  std::vector<FeedRule> feeds(4);
  feeds[0].subscription = "trust-direct";
  feeds[0].subscriber = "soak-trust";
  feeds[0].agreement = "DSA-SOAK-TRUST";
  feeds[0].sources = {"M85001", "M85002", "RY6"};
  feeds[0].narrow_sources = {"RY6"};
  feeds[0].types = {"activity.*"};
  feeds[0].reloaded = true;

  feeds[1].subscription = "hospital-direct";
  feeds[1].subscriber = "soak-hospital";
  feeds[1].agreement = "DSA-SOAK-HOSP";
  feeds[1].sources = {"RXK", "RR8", "M85001"};

  feeds[2].subscription = "ics-feed";
  feeds[2].subscriber = "soak-ics";
  feeds[2].agreement = "DSA-SOAK-ICS";
  feeds[2].secondary_use = true;

  feeds[3].subscription = "research-feed";
  feeds[3].subscriber = "soak-research";
  feeds[3].agreement = "DSA-SOAK-RES";
  feeds[3].secondary_use = true;
  feeds[3].sources = {"RXK", "RR8"};
  feeds[3].types = {"referral.*", "activity.emergency_admission"};
  feeds[3].replays = true;
  return feeds;
}

std::string AgreementsYaml(const std::vector<FeedRule>& feeds, bool narrow, bool invalid) {
  std::string y = "subscribers:\n";
  for (const auto& f : feeds) {
    y += "  - id: " + f.subscriber + "\n    subscriptions:\n      - {id: " + f.subscription +
         ", purpose: " + (f.secondary_use ? "secondary_use" : "direct_care") + "}\n";
  }
  y += "agreements:\n";
  for (const auto& f : feeds) {
    y += "  - id: " + f.agreement + "\n    subscriber: " + f.subscriber +
         "\n    purpose: " + (f.secondary_use ? "secondary_use" : "direct_care") +
         "\n    legal_basis: \"soak test\"\n    valid_from: 2020-01-01\n"
         "    valid_until: 2099-12-31\n" +
         (invalid && f.reloaded ? "    sourcs: " : "    sources: ") +
         YamlList(f.reloaded && narrow ? f.narrow_sources : f.sources) +
         "\n    event_types: " + YamlList(f.types) +
         "\n    patient_fields: " + (f.secondary_use ? "pseudonymised" : "identifiable") + "\n";
  }
  y += "pseudonymisation:\n  secret_file: pseudonym.key\nopt_out:\n  file: national-opt-out.txt\n";
  return y;
}

bool Covers(const FeedRule& rule, const std::string& publisher, const std::string& site,
            const std::string& type, bool narrow) {
  const auto& sources = rule.reloaded && narrow ? rule.narrow_sources : rule.sources;
  if (!sources.empty() && std::find(sources.begin(), sources.end(), publisher) == sources.end() &&
      std::find(sources.begin(), sources.end(), site) == sources.end()) {
    return false;
  }
  if (rule.types.empty()) {
    return true;
  }
  return std::any_of(rule.types.begin(), rule.types.end(),
                     [&](const std::string& p) { return EventTypeMatches(p, type); });
}

void PolicyTimeline::BeginChange(bool narrow, int64_t t_ms) {
  std::lock_guard lock(mu_);
  Change c;
  c.narrow = narrow;
  c.written_ms = t_ms;
  changes_.push_back(c);
}

void PolicyTimeline::Confirm(int64_t t_ms) {
  std::lock_guard lock(mu_);
  if (!changes_.empty()) {
    changes_.back().confirmed_ms = t_ms;
  }
}

PolicyState PolicyTimeline::At(int64_t t_ms) const {
  std::lock_guard lock(mu_);
  bool narrow = false;
  for (const auto& c : changes_) {
    if (c.written_ms > t_ms) {
      break;
    }
    if (c.confirmed_ms == INT64_MAX || t_ms < c.confirmed_ms + kMarginMs) {
      return PolicyState::kChanging;
    }
    narrow = c.narrow;
  }
  return narrow ? PolicyState::kNarrow : PolicyState::kWide;
}

void Findings::Add(const std::string& what) {
  std::lock_guard lock(mu_);
  if (count_++ < 20) {
    first_.push_back(what);
  }
}

uint64_t Findings::count() const {
  std::lock_guard lock(mu_);
  return count_;
}

std::vector<std::string> Findings::first() const {
  std::lock_guard lock(mu_);
  return first_;
}

FeedWorker::FeedWorker(size_t index, FeedRule rule, uint64_t seed, std::string endpoint,
                       const Ledger* ledger, const PolicyTimeline* timeline,
                       const std::set<uint64_t>* opted_out, Findings* findings, uint64_t drop_every)
    : index_(index),
      rule_(std::move(rule)),
      rng_(seed),
      endpoint_(std::move(endpoint)),
      ledger_(ledger),
      timeline_(timeline),
      opted_out_(opted_out),
      findings_(findings),
      drop_every_(drop_every) {}

FeedCounters FeedWorker::counters() const {
  FeedCounters c = counters_;
  c.deliveries = deliveries_.load();
  return c;
}

void FeedWorker::Finding(const std::string& what) {
  findings_->Add(rule_.subscription + ": " + what);
}

void FeedWorker::Churn(const std::atomic<bool>& stop, const std::atomic<bool>& traffic_stopped) {
  while (!stop.load()) {
    RunSession(stop, traffic_stopped);
    // Away for a moment: the hub keeps the backlog for us.
    std::this_thread::sleep_for(milliseconds(std::uniform_int_distribution<int>(0, 800)(rng_)));
  }
}

void FeedWorker::RunSession(const std::atomic<bool>& stop,
                            const std::atomic<bool>& traffic_stopped) {
  auto start = v1::Subscribe::START_RESUME;
  if (rule_.replays && counters_.sessions > 0 &&
      std::uniform_real_distribution<double>(0, 1)(rng_) < 0.12) {
    start = v1::Subscribe::START_EARLIEST;
  }
  auto sub = client::Subscriber::Open(SessionOptions(endpoint_, rule_, start));
  if (!sub.ok()) {
    ++counters_.open_failures;
    std::this_thread::sleep_for(milliseconds(300));
    return;
  }
  ++counters_.sessions;
  counters_.replays_from_earliest += start == v1::Subscribe::START_EARLIEST ? 1 : 0;
  const int64_t began = SoakNowMs();
  // Most sessions are short; a quarter stay for long enough to live through a hub restart.
  const bool long_session = std::uniform_real_distribution<double>(0, 1)(rng_) < 0.25;
  const int64_t ends =
      began + (long_session ? std::uniform_int_distribution<int64_t>(20'000, 40'000)(rng_)
                            : std::uniform_int_distribution<int64_t>(3000, 10'000)(rng_));
  const bool kill = std::uniform_real_distribution<double>(0, 1)(rng_) < 0.3;
  // A killed subscriber stops acknowledging a while before it dies: what it read since is
  // delivered again on resume.
  const int64_t last_ack =
      kill ? ends - std::uniform_int_distribution<int64_t>(500, 2500)(rng_) : ends;
  uint64_t prev = sub.value()->subscribed().start_seq();
  prev = prev > 0 ? prev - 1 : 0;
  int64_t last_heard = began;
  while (!stop.load() && SoakNowMs() < ends) {
    auto batch = sub.value()->Next(milliseconds(200));
    if (!batch.ok()) {
      ++counters_.session_errors;
      return;
    }
    const int64_t now = SoakNowMs();
    if (!batch.value()) {
      const int64_t silent_since = std::max(last_heard, hub_up_since_ms.load());
      if (!hub_down.load() && now - silent_since > StallLimitMs()) {
        ++counters_.stalls;
        // With traffic flowing every feed sees deliveries (empty ones at least) within a second,
        // hub restarts included: the client library failed to resume.
        if (!traffic_stopped.load()) {
          Finding("a session heard nothing for " + std::to_string(now - silent_since) +
                  " ms (limit " + std::to_string(StallLimitMs()) +
                  " ms) while the hub was up and traffic flowed (at +" + std::to_string(now) +
                  " ms)");
        }
        return;
      }
      continue;
    }
    last_heard = now;
    Take(batch.value()->events, prev, batch.value()->scanned_to_seq);
    prev = batch.value()->scanned_to_seq;
    if (now < last_ack) {
      (void)sub.value()->Ack(prev);
    }
  }
  if (kill) {
    ++counters_.kills_without_ack;
    return;  // the socket closes with linger 0: anything unsent is dropped, as in a crash
  }
  // Let the last Ack leave before the socket closes.
  (void)sub.value()->Next(milliseconds(50));
  ++counters_.graceful_disconnects;
}

Status FeedWorker::CatchUp(std::chrono::milliseconds timeout) {
  const auto deadline = Steady::now() + timeout;
  Status last = Status::Error("timeout", "no session");
  while (Steady::now() < deadline) {
    auto sub =
        client::Subscriber::Open(SessionOptions(endpoint_, rule_, v1::Subscribe::START_RESUME));
    if (!sub.ok()) {
      last = sub.status();
      std::this_thread::sleep_for(milliseconds(300));
      continue;
    }
    ++counters_.sessions;
    const uint64_t head = sub.value()->subscribed().head_seq();
    uint64_t prev = sub.value()->subscribed().start_seq();
    prev = prev > 0 ? prev - 1 : 0;
    if (prev >= head) {
      return Status::Ok();
    }
    while (Steady::now() < deadline) {
      auto batch = sub.value()->Next(milliseconds(200));
      if (!batch.ok()) {
        last = batch.status();
        break;
      }
      if (!batch.value()) {
        continue;
      }
      Take(batch.value()->events, prev, batch.value()->scanned_to_seq);
      prev = batch.value()->scanned_to_seq;
      (void)sub.value()->Ack(prev);
      if (prev >= head) {
        (void)sub.value()->Next(milliseconds(50));
        return Status::Ok();
      }
    }
  }
  return Status::Error("catch_up_timeout", rule_.subscription + " examined up to " +
                                               std::to_string(scanned()) + ": " + last.ToString());
}

void FeedWorker::Take(const std::vector<v1::DeliveredEvent>& events, uint64_t prev_scanned,
                      uint64_t scanned_to) {
  ++counters_.batches;
  Batch b;
  b.from = prev_scanned + 1;
  b.to = scanned_to;
  b.at_ms = SoakNowMs();
  b.session = static_cast<uint32_t>(counters_.sessions);
  uint64_t last_seq = 0;
  for (const auto& d : events) {
    const uint64_t seq = d.event().envelope().hub_seq();
    if (drop_every_ > 0 && seq % drop_every_ == 0) {
      continue;
    }
    if (seq <= last_seq) {
      Finding("hub_seq " + std::to_string(seq) + " after " + std::to_string(last_seq) +
              " within one delivery");
    }
    last_seq = seq;
    if (seq > scanned_to) {
      Finding("hub_seq " + std::to_string(seq) + " beyond the delivery's scanned_to_seq " +
              std::to_string(scanned_to));
    }
    if (received_.size() <= seq) {
      received_.resize(std::max<size_t>(seq + 1, received_.size() * 3 / 2), 0);
    }
    if (received_[seq] > 0) {
      ++counters_.duplicates;
    }
    if (received_[seq] < 255) {
      ++received_[seq];
    }
    CheckDelivered(d, &b.narrow_excluded);
  }
  deliveries_.fetch_add(events.size());
  batches_.push_back(b);
  if (scanned_to > scanned_max_.load()) {
    scanned_max_.store(scanned_to);
  }
}

void FeedWorker::CheckDelivered(const v1::DeliveredEvent& d, uint32_t* narrow_excluded) {
  const auto& env = d.event().envelope();
  const std::string where = env.event_id() + " (hub_seq " + std::to_string(env.hub_seq()) + ")";
  auto original = ledger_->Find(env.event_id());
  if (!original) {
    Finding(where + " is not an event the soak sent");
    return;
  }
  if (!original->valid) {
    Finding(where + " was sent invalid but delivered");
  }
  if (d.agreement_id() != rule_.agreement) {
    Finding(where + " delivered under '" + d.agreement_id() + "'");
  }
  const std::string type = EventTypeName(d.event());
  if (!Covers(rule_, env.publisher_ods(), env.site_ods(), type, false)) {
    Finding(where + " outside the agreement (" + type + " from " + env.publisher_ods() + ")");
  }
  if (rule_.reloaded && !Covers(rule_, env.publisher_ods(), env.site_ods(), type, true)) {
    ++*narrow_excluded;
  }
  if (!rule_.secondary_use) {
    if (ContentHash(d.event()) != original->content_hash) {
      Finding(where + " differs from what the publisher sent");
    }
    return;
  }
  if (opted_out_->count(original->nhs) > 0) {
    Finding(where + " is an opted-out patient's, delivered for secondary use");
  }
  const auto& p = env.patient();
  if (!p.nhs_number().empty() || !p.given_name().empty() || !p.family_name().empty() ||
      !p.address().empty() || !p.local_mrn().empty() || !p.mrn_assigning_ods().empty()) {
    Finding(where + " carries an NHS number, name, address or local MRN");
  }
  if (!d.event().activity().note().empty() || !d.event().referral().note().empty()) {
    Finding(where + " carries a free-text note");
  }
  if (SecondaryHashOfDelivered(d.event()) != original->secondary_hash) {
    Finding(where + " birth date, postcode, sex or practice not cut as the agreement says (got " +
            p.birth_date() + ", " + p.postcode() + ")");
  }
  if (!IsHex64(p.pseudonym())) {
    Finding(where + " pseudonym '" + p.pseudonym() + "' is not 64 hex digits");
  }
  auto [it, inserted] = pseudonyms_.emplace(original->nhs, p.pseudonym());
  if (!inserted && it->second != p.pseudonym()) {
    Finding(where + " one patient got two pseudonyms");
  }
  auto [owner, fresh] = pseudonym_owner_.emplace(p.pseudonym(), original->nhs);
  if (!fresh && owner->second != original->nhs) {
    Finding(where + " two patients share a pseudonym");
  }
  if (auto leaked = ledger_->FindIdentifierIn(original->nhs, d.SerializeAsString())) {
    Finding(where + " identifier '" + leaked->substr(0, 3) + "...' found in the delivered bytes");
  }
}

std::string FeedWorker::DescribeCoverage(uint64_t seq) const {
  std::string out;
  size_t shown = 0;
  for (const auto& b : batches_) {
    if (b.from <= seq && seq <= b.to && shown++ < 4) {
      out += " [session " + std::to_string(b.session) + " examined " + std::to_string(b.from) +
             ".." + std::to_string(b.to) + " at +" + std::to_string(b.at_ms) + " ms]";
    }
  }
  return out.empty() ? " [no batch examined it]" : out;
}

void FeedWorker::FinalCheck(const std::vector<SeqFacts>& facts,
                            const std::vector<std::string>& routes) {
  const uint64_t last = facts.empty() ? 0 : facts.size() - 1;
  // Examined ranges (all) and the ones examined while the agreement was surely wide, as
  // difference arrays over hub_seq.
  std::vector<int32_t> examined(last + 2, 0);
  std::vector<int32_t> examined_wide(last + 2, 0);
  for (const auto& b : batches_) {
    if (b.from > b.to || b.from > last) {
      continue;
    }
    const uint64_t to = std::min(b.to, last);
    const PolicyState state = rule_.reloaded ? timeline_->At(b.at_ms) : PolicyState::kWide;
    ++examined[b.from];
    --examined[to + 1];
    if (state == PolicyState::kWide) {
      ++examined_wide[b.from];
      --examined_wide[to + 1];
    }
    if (state == PolicyState::kNarrow && b.narrow_excluded > 0) {
      counters_.forbidden += b.narrow_excluded;
      Finding(std::to_string(b.narrow_excluded) + " events outside the narrowed agreement " +
              "delivered in hub_seq " + std::to_string(b.from) + ".." + std::to_string(b.to) +
              " at +" + std::to_string(b.at_ms) + " ms, while it was narrowed");
    }
  }
  const uint8_t bit = static_cast<uint8_t>(1u << index_);
  int32_t in_examined = 0;
  int32_t in_wide = 0;
  uint64_t unexamined = 0;
  std::string first_unexamined;
  std::string first_missing;
  for (uint64_t seq = 1; seq <= last; ++seq) {
    in_examined += examined[seq];
    in_wide += examined_wide[seq];
    const SeqFacts& f = facts[seq];
    const bool got = seq < received_.size() && received_[seq] > 0;
    counters_.distinct += got ? 1 : 0;
    if (in_examined <= 0) {
      ++unexamined;
      if (first_unexamined.empty()) {
        first_unexamined = std::to_string(seq);
      }
    }
    const bool blocked = rule_.secondary_use && f.opted_out;
    const bool allowed_wide = (f.wide & bit) != 0 && !blocked;
    const bool allowed_narrow = (f.narrow & bit) != 0 && !blocked;
    const bool required =
        f.present &&
        (rule_.reloaded ? allowed_narrow || (allowed_wide && in_wide > 0) : allowed_wide);
    counters_.expected += required ? 1 : 0;
    if (required && !got) {
      ++counters_.missing;
      if (counters_.missing <= 3) {
        first_missing += " " + std::to_string(seq) + " (" +
                         (f.route < routes.size() ? routes[f.route] : "?") + ")" +
                         DescribeCoverage(seq) + ";";
      }
    }
    if (got && !allowed_wide) {
      ++counters_.forbidden;
      Finding("hub_seq " + std::to_string(seq) + " received though its agreement excludes it");
    }
  }
  for (uint64_t seq = last + 1; seq < received_.size(); ++seq) {
    if (received_[seq] > 0) {
      Finding("hub_seq " + std::to_string(seq) + " received but not in the store");
    }
  }
  if (unexamined > 0) {
    Finding(std::to_string(unexamined) + " hub_seqs never examined (a gap in the feed), first " +
            first_unexamined);
  }
  if (counters_.missing > 0) {
    Finding(std::to_string(counters_.missing) + " events the agreement allowed never arrived, " +
            "first hub_seqs:" + first_missing);
  }
}

}  // namespace carehub::soak
