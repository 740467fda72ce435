#include "traffic.h"

#include <deque>
#include <random>
#include <thread>

#include "carehub/core/synthetic.h"
#include "harness/workload.h"

namespace carehub::soak {
namespace {

using std::chrono::milliseconds;

// Events are enqueued in small groups, as an adapter enqueues what arrived since its last poll.
constexpr int64_t kTickMs = 50;
// Resends pick one of the last this many valid events that are at least kResendLag old, so the
// original has usually been answered (a resend of an unanswered event is legal too).
constexpr size_t kResendPool = 4000;
constexpr size_t kResendLag = 500;

}  // namespace

PublisherWorker::PublisherWorker(size_t client, TrafficOptions options, Ledger* ledger,
                                 Findings* findings)
    : client_(client), options_(std::move(options)), ledger_(ledger), findings_(findings) {}

PublisherWorker::~PublisherWorker() { Close(); }

Status PublisherWorker::Open() {
  client::PublisherOptions po;
  po.endpoint = options_.endpoint;
  po.outbox_dir = options_.outbox_dir;
  po.max_batch_events = 500;
  po.resend_after = milliseconds(3000);
  po.heartbeat_interval = milliseconds(1000);
  auto pub = client::Publisher::Open(po);
  if (!pub.ok()) {
    return pub.status();
  }
  std::lock_guard lock(mu_);
  publisher_ = std::move(pub).value();
  return Status::Ok();
}

void PublisherWorker::AddStats(const client::PublisherStats& s, TrafficCounters* c) const {
  c->accepted += s.accepted;
  c->duplicate += s.duplicate;
  c->rejected += s.rejected;
  c->conflict += s.conflict;
  c->retried += s.retried;
}

void PublisherWorker::Close() {
  std::lock_guard lock(mu_);
  if (publisher_) {
    AddStats(publisher_->Stats(), &counters_);
    publisher_->Close();
    publisher_.reset();
  }
}

TrafficCounters PublisherWorker::counters() const {
  std::lock_guard lock(mu_);
  TrafficCounters c = counters_;
  if (publisher_) {
    auto s = publisher_->Stats();
    AddStats(s, &c);
    c.outbox_depth = s.outbox_depth;
  }
  return c;
}

bool PublisherWorker::Drain(std::chrono::milliseconds timeout) {
  std::lock_guard lock(mu_);
  return publisher_ && publisher_->Drain(timeout);
}

void PublisherWorker::Run(const std::atomic<bool>& stop) {
  auto synth = itest::FixedSyntheticOptions(options_.seed, options_.id_prefix);
  synth.population = options_.population;
  synth.publishers = options_.providers;
  SyntheticGenerator gen(synth);
  std::mt19937_64 rng(options_.seed * 0x9e3779b97f4a7c15ULL + 29);
  std::uniform_real_distribution<double> unit(0, 1);
  const auto invalid_kinds = itest::ClockIndependentInvalidKinds();
  std::deque<v1::Event> recent;
  double due = 0;
  bool reopened = false;
  auto next_tick = std::chrono::steady_clock::now();
  while (!stop.load()) {
    next_tick += milliseconds(kTickMs);
    std::this_thread::sleep_until(next_tick);
    if (!reopened && SoakNowMs() >= options_.reopen_at_ms) {
      reopened = true;
      Close();
      Status s = Open();
      if (!s.ok()) {
        findings_->Add("publisher " + options_.id_prefix + " cannot reopen its outbox: " +
                       s.ToString());
        return;
      }
      std::lock_guard lock(mu_);
      ++counters_.client_reopens;
    }
    due += options_.events_per_second * kTickMs / 1000.0;
    std::vector<v1::Event> batch;
    uint64_t valid = 0;
    uint64_t resends = 0;
    uint64_t invalid = 0;
    for (; due >= 1; due -= 1) {
      const double r = unit(rng);
      if (r < options_.invalid_ratio) {
        v1::Event e = gen.Next();
        gen.MakeInvalid(&e, invalid_kinds[rng() % invalid_kinds.size()]);
        ledger_->Record(client_, e, false);
        batch.push_back(std::move(e));
        ++invalid;
      } else if (r < options_.invalid_ratio + options_.resend_ratio && recent.size() > kResendLag) {
        batch.push_back(recent[rng() % (recent.size() - kResendLag)]);
        ++resends;
      } else {
        v1::Event e = gen.Next();
        ledger_->Record(client_, e, true);
        recent.push_back(e);
        if (recent.size() > kResendPool) {
          recent.pop_front();
        }
        batch.push_back(std::move(e));
        ++valid;
      }
    }
    if (batch.empty()) {
      continue;
    }
    std::lock_guard lock(mu_);
    ++counters_.enqueue_calls;
    Status s = publisher_ ? publisher_->Enqueue(batch) : Status::Error("closed", "no publisher");
    if (!s.ok()) {
      // Not enqueued means not sent: the ledger's entries stay unstored, which the final check
      // would report as lost, so say why here.
      ++counters_.enqueue_errors;
      findings_->Add("publisher " + options_.id_prefix + " Enqueue failed: " + s.ToString());
      continue;
    }
    counters_.sent_valid += valid;
    counters_.sent_resends += resends;
    counters_.sent_invalid += invalid;
  }
}

}  // namespace carehub::soak
