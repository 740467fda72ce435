#include "carehub/hub/ingest_pipeline.h"

#include <sodium.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <tuple>

#include "carehub/core/data_quality.h"
#include "carehub/core/event_types.h"
#include "carehub/core/log.h"
#include "carehub/hub/store/event_codec.h"

namespace carehub::hub {
namespace {

std::shared_ptr<spdlog::logger> Log() { return Logger("ingest"); }

uint32_t DaysSinceEpoch(Clock::TimePoint t) {
  return static_cast<uint32_t>(
      std::chrono::duration_cast<std::chrono::hours>(t.time_since_epoch()).count() / 24);
}

// Event type names are a small fixed set: build each string once instead of per event.
const std::string& EventTypeNameCached(const EventView& event) {
  static const auto* activity = [] {
    auto* names = new std::vector<std::string>();
    for (int k = 0; k <= v1::ActivityKind_MAX; ++k) {
      names->push_back("activity." + ActivityKindName(static_cast<v1::ActivityKind>(k)));
    }
    return names;
  }();
  static const auto* referral = [] {
    auto* names = new std::vector<std::string>();
    for (int k = 0; k <= v1::ReferralStatus_MAX; ++k) {
      names->push_back("referral." + ReferralStatusName(static_cast<v1::ReferralStatus>(k)));
    }
    return names;
  }();
  static const std::string unknown = "unknown";
  if (event.has_activity() && event.activity().kind() >= 0 &&
      event.activity().kind() <= v1::ActivityKind_MAX) {
    return (*activity)[event.activity().kind()];
  }
  if (event.has_referral() && event.referral().status() >= 0 &&
      event.referral().status() <= v1::ReferralStatus_MAX) {
    return (*referral)[event.referral().status()];
  }
  return unknown;
}

// Metrics and the status page count by publisher, but the publisher_ods of a refused event is
// whatever the sender wrote: used as a label as is, every made-up code (each up to a frame's size)
// would add counters and a status entry for the life of the process. Codes that are not ODS-shaped
// or that the connection may not publish for are counted together instead.
std::string_view PublisherLabel(std::string_view publisher, std::string_view reason) {
  if (!IsValidOdsCode(publisher)) {
    return "invalid";
  }
  if (reason == kReasonPublisherNotAuthorised) {
    return "unauthorised";
  }
  return publisher;
}

}  // namespace

IngestPipeline::IngestPipeline(Store* store, metrics::Registry* metrics, ValidationLimits limits,
                               uint32_t dedup_window_days, const Clock& clock,
                               PublishAuthoriser authorise, QuarantineLimits quarantine)
    : store_(store),
      metrics_(metrics),
      limits_(limits),
      quarantine_budget_(quarantine),
      dedup_window_days_(dedup_window_days),
      clock_(clock),
      authorise_(std::move(authorise)) {
  // next_seq_ stays 0 (unknown) if the log cannot be read now: Prepare reads it before sequencing.
  (void)RestartFromStore();
  // Created at 0 for the known reasons, so the first drop shows in rate()/increase().
  (void)QuarantineDroppedCounter("peer_rate");
  (void)QuarantineDroppedCounter("total_cap");
  dedup_metrics_.seconds = &metrics_->GetHistogram(
      "carehub_dedup_lookup_seconds",
      "Time of one lookup of a batch's keys in the dedup index (one RocksDB MultiGet).",
      metrics::LatencyBuckets());
  auto keys = [this](const char* result) {
    return &metrics_->GetCounter(
        "carehub_dedup_lookup_keys_total",
        "Keys looked up in the dedup index, by outcome (stored: found, whatever its age; new: not "
        "there). Keys of batches not yet committed are answered before the index and not counted.",
        {{"result", result}});
  };
  dedup_metrics_.stored_keys = keys("stored");
  dedup_metrics_.new_keys = keys("new");
  auto blocks = [this](const char* block) {
    return &metrics_->GetCounter(
        "carehub_dedup_blocks_read_total",
        "Blocks the dedup index's lookups read from its files rather than the block cache, by "
        "kind (data, index, filter). A new key should need none: its filters answer from memory.",
        {{"block", block}});
  };
  dedup_metrics_.data_blocks = blocks("data");
  dedup_metrics_.index_blocks = blocks("index");
  dedup_metrics_.filter_blocks = blocks("filter");
}

void IngestPipeline::CountDedupLookup(const DedupLookupCost& cost) {
  dedup_metrics_.seconds->Observe(std::chrono::duration<double>(cost.elapsed).count());
  dedup_metrics_.stored_keys->Inc(cost.found);
  dedup_metrics_.new_keys->Inc(cost.keys - cost.found);
  dedup_metrics_.data_blocks->Inc(cost.data_blocks_read);
  dedup_metrics_.index_blocks->Inc(cost.index_blocks_read);
  dedup_metrics_.filter_blocks->Inc(cost.filter_blocks_read);
}

metrics::Counter& IngestPipeline::PublisherCounter(std::string_view publisher,
                                                   metrics::Counter* PublisherCounters::*slot,
                                                   const char* family, const char* help) {
  auto it = publisher_counters_.find(publisher);
  if (it == publisher_counters_.end()) {
    it = publisher_counters_.try_emplace(std::string(publisher)).first;
  }
  metrics::Counter*& c = it->second.*slot;
  if (c == nullptr) {
    c = &CounterFor(family, help, {{"publisher", std::string(publisher)}});
  }
  return *c;
}

metrics::Counter& IngestPipeline::ReceivedCounter(std::string_view publisher) {
  return PublisherCounter(publisher, &PublisherCounters::received, "carehub_events_received_total",
                          "Events received, by publisher.");
}

metrics::Counter& IngestPipeline::ConflictCounter(std::string_view publisher) {
  return PublisherCounter(publisher, &PublisherCounters::conflict, "carehub_events_conflict_total",
                          "Events whose key was stored with other content.");
}

metrics::Counter& IngestPipeline::DuplicateCounter(std::string_view publisher) {
  return PublisherCounter(publisher, &PublisherCounters::duplicate,
                          "carehub_events_duplicate_total", "Resent events answered DUPLICATE.");
}

metrics::Counter& IngestPipeline::AcceptedCounter(std::string_view publisher,
                                                  std::string_view type) {
  accepted_key_.assign(publisher);
  accepted_key_ += '\0';
  accepted_key_ += type;
  auto it = accepted_counters_.find(std::string_view(accepted_key_));
  if (it == accepted_counters_.end()) {
    auto& c = CounterFor("carehub_events_accepted_total", "Events stored, by publisher and type.",
                         {{"publisher", std::string(publisher)}, {"type", std::string(type)}});
    it = accepted_counters_.try_emplace(accepted_key_, &c).first;
  }
  return *it->second;
}

metrics::Counter& IngestPipeline::QuarantineDroppedCounter(const std::string& reason) {
  return CounterFor("carehub_quarantine_dropped_total",
                    "Refused input answered and counted but not stored in the quarantine, by "
                    "reason (peer_rate: the peer's byte budget; total_cap: the quarantine's size "
                    "limit).",
                    {{"reason", reason}});
}

Status IngestPipeline::RestartFromStore() {
  auto last = store_->events().LastSeq();
  if (!last.ok()) {
    return last.status();
  }
  next_seq_ = std::max(next_seq_, *last + 1);
  known_routes_.clear();
  for (const auto& r : store_->routes().Known()) {
    known_routes_.insert(RoutePrefix(r));
  }
  return Status::Ok();
}

metrics::Counter& IngestPipeline::CounterFor(const std::string& family, const std::string& help,
                                             const metrics::Labels& labels) {
  std::string key = family;
  for (const auto& [k, v] : labels) {
    key += '\0' + v;
  }
  auto it = counter_cache_.find(key);
  if (it != counter_cache_.end()) {
    return *it->second;
  }
  auto& c = metrics_->GetCounter(family, help, labels);
  counter_cache_.emplace(std::move(key), &c);
  return c;
}

void IngestPipeline::Reject(PreparedBatch* batch, v1::EventResult* result, const EventView& event,
                            std::string_view raw, std::string reason, std::string message) {
  const std::string_view publisher = event.envelope().publisher_ods();
  bool conflict = reason == kReasonConflict;
  result->set_status(conflict ? v1::EventResult::CONFLICT : v1::EventResult::REJECTED);
  result->set_reason(reason);
  result->set_message(message);

  if (batch->quarantine_rejects) {
    v1::QuarantineRecord q;
    q.set_id(store_->quarantine().NextId());
    q.set_at_unix_ms(ToUnixMillis(batch->received_at));
    q.set_sender(batch->sender);
    q.set_publisher_ods(std::string(publisher));
    q.set_event_id(std::string(event.envelope().event_id()));
    q.set_reason(reason);
    q.set_message(message);
    q.set_raw(std::string(raw));
    q.set_raw_size(raw.size());
    q.set_raw_kind("event");
    AddQuarantineRecord(batch, batch->routing_id, q);
  }

  if (conflict) {
    ConflictCounter(publisher).Inc();
  } else {
    CounterFor("carehub_events_rejected_total", "Events rejected, by publisher and reason.",
               {{"publisher", std::string(PublisherLabel(publisher, reason))}, {"reason", reason}})
        .Inc();
  }
  // Debug only: this is a per-event path. Operators see rejects through the counters, the
  // quarantine and the rate-limited per-batch warning in the ingest server.
  Log()->debug("event {} from {} {}: {}", event.envelope().event_id(), publisher,
               conflict ? "conflict" : "rejected", reason);
}

// A parsed Publish comes to the same path as views of its events (MakeEventView) and their bytes:
// as received where the caller has them and the publisher left the hub's own fields alone, else
// encoded canonically with those fields cleared, so neither the record nor the hash carries what
// the publisher wrote there.
std::unique_ptr<PreparedBatch> IngestPipeline::Prepare(std::string routing_id, std::string sender,
                                                       v1::Publish* publish,
                                                       bool quarantine_rejects,
                                                       std::span<const std::string_view> received) {
  const size_t n = static_cast<size_t>(publish->events_size());
  const bool as_received = received.size() == n;
  if (parsed_views_.size() < n) {
    parsed_views_.resize(n);
  }
  parsed_bytes_.resize(std::max(parsed_bytes_.size(), n));
  parsed_bytes_views_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    v1::Event* event = publish->mutable_events(static_cast<int>(i));
    const bool hub_fields_set = ClearHubFields(event);
    if (as_received && !hub_fields_set) {
      parsed_bytes_views_[i] = received[i];
    } else {
      CanonicalBytesInto(*event, &parsed_bytes_[i]);
      parsed_bytes_views_[i] = parsed_bytes_[i];
    }
    MakeEventView(*event, &parsed_views_[i]);
  }
  return Prepare(std::move(routing_id), std::move(sender), publish->batch_id(),
                 std::span(parsed_views_).first(n), parsed_bytes_views_, quarantine_rejects);
}

// The data path, top to bottom. Each stage is a function below, in this order.
std::unique_ptr<PreparedBatch> IngestPipeline::Prepare(std::string routing_id, std::string sender,
                                                       uint64_t batch_id,
                                                       std::span<const EventView> events,
                                                       std::span<const std::string_view> received,
                                                       bool quarantine_rejects) {
  auto batch = NewBatch(512 * events.size());
  batch->routing_id = std::move(routing_id);
  batch->sender = std::move(sender);
  batch->epoch = epoch_;
  batch->received_at = clock_.Now();
  batch->result.set_batch_id(batch_id);
  batch->quarantine_rejects = quarantine_rejects;
  const uint32_t today = DaysSinceEpoch(batch->received_at);

  // authorise -> validate
  std::vector<Candidate> candidates = AuthoriseAndValidate(batch.get(), events, received);
  // dedup: what is already stored or pending under each key
  Status priors = next_seq_ == 0 ? RestartFromStore() : Status::Ok();
  if (priors.ok()) {
    priors = FindPriors(&candidates, today);
  }
  if (!priors.ok()) {
    Log()->error("cannot read the store, answering RETRY to a batch of {} events: {}",
                 events.size(), priors.ToString());
    FailAll(batch.get(), "the hub could not read its store; nothing was stored, resend it");
  } else {
    // sequence -> write batch
    DecideAndSequence(batch.get(), events, &candidates, today);
  }
  CountActivity(*batch, events);
  ReturnBytesBuffers(&candidates);
  return batch;
}

std::string IngestPipeline::TakeBytesBuffer() {
  if (spare_bytes_.empty()) {
    return {};
  }
  std::string buffer = std::move(spare_bytes_.back());
  spare_bytes_.pop_back();
  return buffer;
}

void IngestPipeline::GiveBackBytesBuffer(std::string buffer) {
  // Enough for the accepted events of the batches in flight (their records come back when each is
  // recycled); a buffer grown by an unusually large event is freed rather than kept for ever, and
  // one moved from (no heap buffer) is not worth keeping.
  constexpr size_t kMaxSpare = 16384;
  constexpr size_t kMaxKeptCapacity = 4096;
  static const size_t kInlineCapacity = std::string().capacity();
  if (spare_bytes_.size() < kMaxSpare && buffer.capacity() > kInlineCapacity &&
      buffer.capacity() <= kMaxKeptCapacity) {
    spare_bytes_.push_back(std::move(buffer));
  }
}

// The write batch holds copies of the accepted events' bytes by now; their buffers have moved to
// the batch's records (given back when it is recycled), the others come back here.
void IngestPipeline::ReturnBytesBuffers(std::vector<Candidate>* candidates) {
  for (auto& c : *candidates) {
    GiveBackBytesBuffer(std::move(c.bytes));
  }
}

// Authorises and validates each event on its own; the survivors come back with the bytes they are
// accepted as (a copy of `received`: the publisher's, or the canonical encoding the parsed-Publish
// Prepare made), dedup key and content hash.
std::vector<IngestPipeline::Candidate> IngestPipeline::AuthoriseAndValidate(
    PreparedBatch* batch, std::span<const EventView> events,
    std::span<const std::string_view> received) {
  const int n = static_cast<int>(events.size());
  std::vector<Candidate> candidates;
  candidates.reserve(n);
  auto* results = batch->result.mutable_results();
  results->Reserve(n);
  for (int i = 0; i < n; ++i) {
    const EventView& event = events[i];
    const std::string_view event_id = event.envelope().event_id();
    auto* result = results->Add();
    result->mutable_event_id()->assign(event_id.data(), event_id.size());
    std::string bytes = TakeBytesBuffer();
    ReceivedBytesInto(received[i], &bytes);
    const std::string_view publisher = event.envelope().publisher_ods();
    if (authorise_ && !authorise_(batch->sender, publisher)) {
      Reject(
          batch, result, event, bytes, std::string(kReasonPublisherNotAuthorised),
          "this connection's identity may not publish for organisation " + std::string(publisher));
      GiveBackBytesBuffer(std::move(bytes));
      continue;
    }
    Status valid = ValidateEvent(event, bytes.size(), limits_, batch->received_at);
    if (!valid.ok()) {
      Reject(batch, result, event, bytes, valid.code(), valid.message());
      GiveBackBytesBuffer(std::move(bytes));
      continue;
    }
    Candidate c{i, DedupKey(publisher, event_id), std::move(bytes), {}, {}};
    c.hash = HashContent(c.bytes);
    candidates.push_back(std::move(c));
  }
  return candidates;
}

// Finds each candidate's prior: pending (prepared, not yet committed) keys first, then one
// MultiGet against the store for the rest. Keys older than the dedup window do not count (a
// resend after the window is a new event). Fails when the store cannot be read.
Status IngestPipeline::FindPriors(std::vector<Candidate>* candidates, uint32_t today) {
  std::vector<std::string_view> lookup_keys;
  std::vector<Candidate*> lookup_of;
  lookup_keys.reserve(candidates->size());
  lookup_of.reserve(candidates->size());
  for (auto& c : *candidates) {
    if (auto pending = pending_.Find(c.key)) {
      c.prior = pending;
    } else {
      lookup_keys.push_back(c.key);
      lookup_of.push_back(&c);
    }
  }
  if (lookup_keys.empty()) {
    return Status::Ok();
  }
  DedupLookupCost cost;
  auto found = store_->dedup().Lookup(lookup_keys, &cost);
  if (!found.ok()) {
    return found.status();
  }
  CountDedupLookup(cost);
  for (size_t j = 0; j < lookup_of.size(); ++j) {
    const auto& entry = (*found)[j];
    if (entry && today - std::min(today, entry->day) <= dedup_window_days_) {
      lookup_of[j]->prior = Pending{entry->hub_seq, entry->hash};
    }
  }
  return Status::Ok();
}

// Answers each candidate DUPLICATE (same content as its prior), CONFLICT (other content) or
// ACCEPTED with the next hub_seq, and adds the accepted events, their dedup keys and routes to the
// write batch. A key accepted here becomes pending, so a resend in a later batch (or later in this
// one) is a duplicate before this batch is even committed.
void IngestPipeline::DecideAndSequence(PreparedBatch* batch, std::span<const EventView> events,
                                       std::vector<Candidate>* candidates, uint32_t today) {
  auto* results = batch->result.mutable_results();
  // Keys are written afterwards in sorted order: RocksDB's memtable skiplist inserts are much
  // cheaper when consecutive keys are near each other.
  std::vector<std::pair<std::string_view, const DedupEntry*>> dedup_puts;
  std::vector<DedupEntry> dedup_entries;
  dedup_entries.reserve(candidates->size());
  // Views of known_routes_' strings, which stay put while this runs.
  std::vector<std::pair<std::string_view, uint64_t>> route_puts;
  route_puts.reserve(candidates->size());
  label_index_.clear();
  for (auto& cand : *candidates) {
    auto* result = results->Mutable(cand.index);
    const EventView& event = events[cand.index];
    const std::string_view publisher = event.envelope().publisher_ods();
    // A key accepted earlier in this batch is pending now, though it was not when priors were
    // read: claiming the key in pending_ finds that prior or makes this event the key's first,
    // in one hash lookup (the seq is the one it gets if accepted). A candidate that already has a
    // prior needs no claim: only an acceptance adds to pending_, and a key with a prior is never
    // accepted.
    std::string* record = nullptr;
    if (!cand.prior) {
      // When claimed, the key has moved to the back of batch->pending_keys (its dedup put below
      // reads it there); when not, cand.key is untouched and the prior is the earlier claim.
      // The entry points at this event's record slot, filled below if the event is accepted.
      record = &batch->records.emplace_back();
      cand.prior =
          pending_.Claim(&cand.key, Pending{next_seq_, cand.hash, record}, &batch->pending_keys);
      if (cand.prior) {
        batch->records.pop_back();
      }
    }
    if (cand.prior) {
      const PriorMatch match = cand.prior->hash == cand.hash
                                   ? PriorMatch::kSame
                                   : CompareWithPrior(cand.bytes, *cand.prior);
      if (match == PriorMatch::kUnreadable) {
        result->set_status(v1::EventResult::RETRY);
        result->set_reason(std::string(kReasonStoreUnavailable));
        result->set_message(
            "the hub could not read the event stored under this event_id to compare it; nothing "
            "was stored, resend it");
        continue;
      }
      if (match == PriorMatch::kSame) {
        result->set_status(v1::EventResult::DUPLICATE);
        result->set_hub_seq(cand.prior->hub_seq);
        DuplicateCounter(publisher).Inc();
        // Which event is resent, and how often: for its trace (a merge; nothing is read).
        store_->resends().Add(&batch->writes, cand.key, ToUnixMillis(batch->received_at));
      } else {
        Reject(batch, result, event, cand.bytes, std::string(kReasonConflict),
               "event_id was already stored (hub_seq " + std::to_string(cand.prior->hub_seq) +
                   ") with different content; send corrections as a new event with lifecycle "
                   "UPDATE");
      }
      continue;
    }

    const uint64_t seq = next_seq_++;
    const std::string& type = EventTypeNameCached(event);
    RoutePrefixInto(&route_buf_, publisher, event.envelope().site_ods(), type);
    auto route = known_routes_.find(std::string_view(route_buf_));
    if (route == known_routes_.end()) {
      route = known_routes_.insert(route_buf_).first;
      RouteKey key{std::string(publisher), std::string(event.envelope().site_ods()), type};
      store_->routes().AddKnown(&batch->writes, key);
      batch->new_routes.push_back(std::move(key));
    }
    AppendHubFields(&cand.bytes, seq, batch->received_at);
    store_->events().Add(&batch->writes, seq, cand.bytes);
    *record = std::move(cand.bytes);
    dedup_entries.push_back(DedupEntry{seq, cand.hash, today});
    dedup_puts.emplace_back(batch->pending_keys.back(), &dedup_entries.back());
    route_puts.emplace_back(*route, seq);
    NoteAccepted(batch, publisher, type, event);
    batch->max_seq = seq;
    result->set_status(v1::EventResult::ACCEPTED);
    result->set_hub_seq(seq);
  }
  std::sort(dedup_puts.begin(), dedup_puts.end());
  for (const auto& [key, entry] : dedup_puts) {
    store_->dedup().Add(&batch->writes, key, *entry);
  }
  // One route-index entry per route of the batch: stable, so each route's seqs stay ascending.
  std::stable_sort(route_puts.begin(), route_puts.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<uint64_t> route_seqs;
  for (size_t i = 0; i < route_puts.size();) {
    route_seqs.clear();
    size_t j = i;
    for (; j < route_puts.size() && route_puts[j].first == route_puts[i].first; ++j) {
      route_seqs.push_back(route_puts[j].second);
    }
    store_->routes().Add(&batch->writes, route_puts[i].first, route_seqs);
    i = j;
  }
}

// Only for a resend whose bytes differ from its prior's (the hashes are of the bytes): the same
// event from an encoder that orders or packs fields otherwise is a DUPLICATE, not a CONFLICT.
IngestPipeline::PriorMatch IngestPipeline::CompareWithPrior(std::string_view accepted,
                                                            const Pending& prior) {
  // Parsed only here: a resend in other bytes is rare, and these bytes passed validation.
  v1::Event event;
  if (!event.ParseFromArray(accepted.data(), static_cast<int>(accepted.size()))) {
    Log()->error("accepted bytes of a resend of hub_seq {} do not parse", prior.hub_seq);
    return PriorMatch::kUnreadable;
  }
  v1::Event original;
  if (prior.record != nullptr) {
    if (!original.ParseFromString(*prior.record)) {
      Log()->error("pending record of hub_seq {} does not parse", prior.hub_seq);
      return PriorMatch::kUnreadable;
    }
  } else {
    auto stored = store_->events().Get(prior.hub_seq);
    if (!stored.ok()) {
      Log()->error("cannot read hub_seq {} to compare a resend of event {}: {}", prior.hub_seq,
                   event.envelope().event_id(), stored.status().ToString());
      return PriorMatch::kUnreadable;
    }
    if (!stored->has_value()) {
      // Retention has cut the original while its key is inside the dedup window: only the hash
      // is left, and it differs.
      return PriorMatch::kDifferent;
    }
    original = std::move(**stored);
  }
  return SameEventContent(event, original) ? PriorMatch::kSame : PriorMatch::kDifferent;
}

void PublisherQuality::Add(const PublisherQuality& other) {
  events += other.events;
  verified_nhs_number += other.verified_nhs_number;
  valid_postcode += other.valid_postcode;
  valid_practice += other.valid_practice;
  valid_codes += other.valid_codes;
  delay_seconds_sum += other.delay_seconds_sum;
}

void IngestPipeline::NoteAccepted(PreparedBatch* batch, std::string_view publisher,
                                  const std::string& type, const EventView& event) {
  const DataQualityMeasures m = MeasureDataQuality(event);
  PublisherQuality q;
  q.events = 1;
  q.verified_nhs_number = m.verified_nhs_number ? 1 : 0;
  q.valid_postcode = m.valid_postcode ? 1 : 0;
  q.valid_practice = m.valid_practice ? 1 : 0;
  q.valid_codes = m.valid_codes ? 1 : 0;
  // Received (the hub's clock) minus occurred: what the feed's consumers wait.
  q.delay_seconds_sum = ToUnixMillis(batch->received_at) / 1000 -
                        static_cast<int64_t>(event.envelope().occurred_at().seconds());
  // One label per (publisher, type) in the batch: up to a few hundred in a batch mixing a hundred
  // publishers, so found by hash rather than by a walk of the list.
  const auto [it, added] = label_index_.try_emplace(std::pair(publisher, std::string_view(type)),
                                                    batch->accepted_labels.size());
  if (!added) {
    auto& label = batch->accepted_labels[it->second];
    ++label.count;
    label.quality.Add(q);
    return;
  }
  batch->accepted_labels.push_back({std::string(publisher), type, 1, q});
}

void IngestPipeline::FailAll(PreparedBatch* batch, const std::string& message) {
  batch->writes.Clear();
  batch->pending_keys.clear();
  batch->records.clear();
  batch->new_routes.clear();
  batch->accepted_labels.clear();
  batch->quarantined = 0;
  batch->quarantined_bytes = 0;  // quarantine_cost stays: Finish gives it back to the budget
  batch->max_seq = 0;
  for (auto& r : *batch->result.mutable_results()) {
    r.set_status(v1::EventResult::RETRY);
    r.set_hub_seq(0);
    r.set_reason(std::string(kReasonStoreUnavailable));
    r.set_message(message);
  }
}

// Once per batch, under a lock the admin thread shares: counts by publisher for the status page.
void IngestPipeline::CountActivity(const PreparedBatch& batch, std::span<const EventView> events) {
  auto& seen = batch_activity_;
  seen.clear();
  const auto& results = batch.result.results();
  for (size_t i = 0; i < events.size(); ++i) {
    const int r = static_cast<int>(i);
    auto& a = seen[PublisherLabel(events[i].envelope().publisher_ods(), results.Get(r).reason())];
    ++a.received;
    switch (results.Get(r).status()) {
      case v1::EventResult::DUPLICATE:
        ++a.duplicate;
        break;
      case v1::EventResult::REJECTED:
      case v1::EventResult::CONFLICT:
        ++a.rejected;
        break;
      default:
        break;
    }
  }
  for (const auto& [publisher, a] : seen) {
    ReceivedCounter(publisher).Inc(a.received);
    // A publisher's per-publisher counters exist (at 0) from its first event on, not from its
    // first duplicate or conflict: an alert on increase() then counts that first one too. The
    // label is the stored-event one (PublisherLabel), so the set stays bounded.
    if (publisher != "invalid" && publisher != "unauthorised") {
      (void)ConflictCounter(publisher);
      (void)DuplicateCounter(publisher);
    }
  }
  MutexLock lock(activity_mu_);
  const int64_t now_ms = ToUnixMillis(batch.received_at);
  for (auto& [publisher, a] : seen) {
    auto& total = activity_[std::string(publisher)];
    total.received += a.received;
    total.duplicate += a.duplicate;
    total.rejected += a.rejected;
    total.last_seen_unix_ms = now_ms;
  }
}

std::unique_ptr<PreparedBatch> IngestPipeline::NewBatch(size_t reserve_bytes) {
  if (free_batches_.empty()) {
    return std::make_unique<PreparedBatch>(reserve_bytes);
  }
  auto batch = std::move(free_batches_.back());
  free_batches_.pop_back();
  return batch;
}

void IngestPipeline::Recycle(std::unique_ptr<PreparedBatch> batch) {
  for (auto& record : batch->records) {
    GiveBackBytesBuffer(std::move(record));
  }
  batch->records.clear();
  if (free_batches_.size() >= 64) {
    return;
  }
  batch->routing_id.clear();
  batch->sender.clear();
  batch->result.Clear();
  batch->writes.Clear();
  batch->pending_keys.clear();
  batch->epoch = 0;
  batch->max_seq = 0;
  batch->accepted_labels.clear();
  batch->new_routes.clear();
  batch->quarantined = 0;
  batch->quarantined_bytes = 0;
  batch->quarantine_cost = 0;
  batch->answer_after_commit = true;
  batch->on_answer = nullptr;
  batch->committed = false;
  batch->unreplicated = false;
  batch->quarantine_rejects = true;
  free_batches_.push_back(std::move(batch));
}

std::map<std::string, PublisherActivity> IngestPipeline::Activity() const {
  MutexLock lock(activity_mu_);
  return activity_;
}

std::unique_ptr<PreparedBatch> IngestPipeline::QuarantineFrame(std::string routing_id,
                                                               std::string sender,
                                                               std::string_view raw,
                                                               std::string reason,
                                                               std::string message) {
  auto batch = std::make_unique<PreparedBatch>();
  batch->routing_id = std::move(routing_id);
  batch->sender = std::move(sender);
  batch->epoch = epoch_;
  batch->received_at = clock_.Now();
  batch->answer_after_commit = false;
  v1::QuarantineRecord q;
  q.set_id(store_->quarantine().NextId());
  q.set_at_unix_ms(ToUnixMillis(batch->received_at));
  q.set_sender(batch->sender);
  q.set_reason(reason);
  q.set_message(message);
  // A prefix and the whole frame's size and digest: enough to diagnose and to match the sender's
  // copy, not enough for a hostile peer to fill the disk.
  q.set_raw(std::string(raw.substr(0, quarantine_budget_.limits().frame_prefix_bytes)));
  q.set_raw_size(raw.size());
  std::string digest(crypto_hash_sha256_BYTES, '\0');
  crypto_hash_sha256(reinterpret_cast<unsigned char*>(digest.data()),
                     reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
  q.set_raw_sha256(std::move(digest));
  q.set_raw_kind("frame");
  AddQuarantineRecord(batch.get(), batch->routing_id, q);
  CounterFor("carehub_frames_rejected_total", "Frames that could not be processed, by reason.",
             {{"reason", reason}})
      .Inc();
  return batch;
}

void IngestPipeline::AddQuarantineRecord(PreparedBatch* batch, const std::string& routing_id,
                                         const v1::QuarantineRecord& record) {
  const uint64_t size = record.ByteSizeLong();
  const uint64_t cost = QuarantineBudget::Cost(size);
  // The authenticated identity; on a plain (loopback-only) hub, the connection.
  const std::string peer = batch->sender.empty() ? "connection:" + routing_id : batch->sender;
  const auto verdict = quarantine_budget_.Admit(peer, cost, store_->quarantine().Bytes(),
                                                QuarantineBudget::Steady::now());
  if (verdict != QuarantineBudget::Verdict::kStore) {
    const bool total = verdict == QuarantineBudget::Verdict::kTotalCap;
    QuarantineDroppedCounter(total ? "total_cap" : "peer_rate").Inc();
    static LogRateLimiter limiter(1);
    if (limiter.Allow()) {
      Logger("ingest")->warn(
          "quarantine record not stored ({}): {} from {} ({} bytes); see "
          "carehub_quarantine_dropped_total",
          total ? "the quarantine is at its size limit" : "this peer is over its byte budget",
          record.reason(), batch->sender.empty() ? "a plain connection" : batch->sender, size);
    }
    return;
  }
  store_->quarantine().Add(&batch->writes, record);
  ++batch->quarantined;
  batch->quarantined_bytes += size;
  batch->quarantine_cost += cost;
}

void IngestPipeline::Finish(PreparedBatch* batch) {
  quarantine_budget_.Settle(batch->quarantine_cost);
  if (batch->committed) {
    pending_.Release(batch->pending_keys);
    if (batch->quarantined > 0) {
      store_->quarantine().NoteCommitted(batch->quarantined, batch->quarantined_bytes);
    }
    if (!batch->accepted_labels.empty()) {
      MutexLock lock(activity_mu_);
      for (const auto& label : batch->accepted_labels) {
        auto& a = activity_[label.publisher];
        a.accepted += label.count;
        a.quality.Add(label.quality);
      }
    }
    for (const auto& label : batch->accepted_labels) {
      AcceptedCounter(label.publisher, label.type).Inc(label.count);
    }
    return;
  }
  // The store refused the write. Nothing of this batch, or of any batch queued behind it, is
  // stored: forget all pending state and start again from what the store really holds.
  FailAll(batch, "the hub could not store this batch; nothing was stored, resend it");
  if (batch->epoch == epoch_) {
    ++epoch_;
    pending_.Clear();
    // If the log cannot be read now, next_seq_ stays above every seq handed out: still safe.
    (void)RestartFromStore();
  }
}

}  // namespace carehub::hub
