#include "carehub/hub/ingest_pipeline.h"

#include <sodium.h>
#include <algorithm>
#include <spdlog/spdlog.h>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "carehub/core/event_types.h"

namespace carehub::hub {
namespace {

uint32_t DaysSinceEpoch(Clock::TimePoint t) {
  return static_cast<uint32_t>(
      std::chrono::duration_cast<std::chrono::hours>(t.time_since_epoch()).count() / 24);
}

std::string CanonicalBytes(const v1::Event& event) {
  std::string out;
  out.reserve(event.ByteSizeLong());
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  event.SerializeWithCachedSizes(&coded);
  return out;
}

// The hub fields appended to the canonical bytes: protobuf merges a repeated embedded message, so
// parsing canonical + suffix yields the event with hub_seq and received_at set, with one
// serialization per event instead of two.
void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// The hub fields appended to the canonical bytes: protobuf merges a repeated embedded message, so
// parsing canonical + suffix yields the event with hub_seq and received_at set, with one
// serialization per event instead of two. Encoded by hand (it is on the hot path):
//   Event.envelope (1, LEN) { hub_seq (20, VARINT), received_at (21, LEN) { seconds (1), nanos (2) } }
void AppendHubFields(std::string* bytes, uint64_t hub_seq, Clock::TimePoint received_at) {
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                    received_at.time_since_epoch())
                    .count();
  uint64_t seconds = static_cast<uint64_t>(micros / 1'000'000);
  uint64_t nanos = static_cast<uint64_t>((micros % 1'000'000) * 1000);
  size_t ts_len = 1 + VarintSize(seconds) + (nanos ? 1 + VarintSize(nanos) : 0);
  size_t env_len = 2 + VarintSize(hub_seq) + 2 + VarintSize(ts_len) + ts_len;
  bytes->push_back(0x0A);  // field 1, LEN
  PutVarint(bytes, env_len);
  bytes->push_back(static_cast<char>(0xA0));  // field 20, VARINT
  bytes->push_back(0x01);
  PutVarint(bytes, hub_seq);
  bytes->push_back(static_cast<char>(0xAA));  // field 21, LEN
  bytes->push_back(0x01);
  PutVarint(bytes, ts_len);
  bytes->push_back(0x08);  // seconds
  PutVarint(bytes, seconds);
  if (nanos) {
    bytes->push_back(0x10);  // nanos
    PutVarint(bytes, nanos);
  }
}


// Event type names are a small fixed set: build each string once instead of per event.
const std::string& EventTypeNameCached(const v1::Event& event) {
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
std::string_view PublisherLabel(const std::string& publisher, std::string_view reason) {
  if (!IsValidOdsCode(publisher)) {
    return "invalid";
  }
  if (reason == kReasonPublisherNotAuthorised) {
    return "unauthorised";
  }
  return publisher;
}

}  // namespace

std::string RouteId(std::string_view publisher, std::string_view site, std::string_view type) {
  std::string id;
  id.reserve(publisher.size() + site.size() + type.size() + 3);
  id.append(publisher).push_back('\0');
  id.append(site).push_back('\0');
  id.append(type).push_back('\0');
  return id;
}

ContentHash HashContent(std::string_view canonical_bytes) {
  // SipHash-2-4 with 128-bit output (libsodium): it only has to tell a resend from a changed event
  // of the same publisher and event_id, and it costs a third of BLAKE2b on ~300-byte events. The
  // fixed key is part of the stored format: changing it would turn every resend into a CONFLICT.
  static const unsigned char kKey[crypto_shorthash_siphashx24_KEYBYTES] = {
      'c', 'a', 'r', 'e', 'h', 'u', 'b', '-', 'd', 'e', 'd', 'u', 'p', '-', 'v', '1'};
  ContentHash h{};
  static_assert(sizeof(h) == crypto_shorthash_siphashx24_BYTES);
  crypto_shorthash_siphashx24(h.data(),
                              reinterpret_cast<const unsigned char*>(canonical_bytes.data()),
                              canonical_bytes.size(), kKey);
  return h;
}

IngestPipeline::IngestPipeline(Store* store, metrics::Registry* metrics, ValidationLimits limits,
                               uint32_t dedup_window_days, const Clock& clock,
                               PublishAuthoriser authorise)
    : store_(store),
      metrics_(metrics),
      limits_(limits),
      dedup_window_days_(dedup_window_days),
      clock_(clock),
      authorise_(std::move(authorise)),
      next_seq_(store->LastSeq() + 1) {
  for (const auto& r : store_->KnownRoutes()) {
    known_routes_.insert(RouteId(r.publisher_ods, r.site_ods, r.event_type));
  }
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

void IngestPipeline::Reject(PreparedBatch* batch, v1::EventResult* result, const v1::Event& event,
                            std::string_view raw, std::string reason, std::string message) {
  const auto& publisher = event.envelope().publisher_ods();
  bool conflict = reason == kReasonConflict;
  result->set_status(conflict ? v1::EventResult::CONFLICT : v1::EventResult::REJECTED);
  result->set_reason(reason);
  result->set_message(message);

  if (batch->quarantine_rejects) {
    v1::QuarantineRecord q;
    q.set_id(store_->NextQuarantineId());
    q.set_at_unix_ms(ToUnixMillis(batch->received_at));
    q.set_sender(batch->sender);
    q.set_publisher_ods(publisher);
    q.set_event_id(event.envelope().event_id());
    q.set_reason(reason);
    q.set_message(message);
    q.set_raw(std::string(raw));
    q.set_raw_kind("event");
    store_->AddQuarantine(&batch->writes, q);
    ++batch->quarantined;
  }

  if (conflict) {
    CounterFor("carehub_events_conflict_total", "Events whose key was stored with other content.",
               {{"publisher", publisher}})
        .Inc();
  } else {
    CounterFor("carehub_events_rejected_total", "Events rejected, by publisher and reason.",
               {{"publisher", std::string(PublisherLabel(publisher, reason))},
                {"reason", reason}})
        .Inc();
  }
  // Debug only: this is a per-event path. Operators see rejects through the counters, the
  // quarantine and the rate-limited per-batch warning in the ingest server.
  spdlog::get("ingest")->debug("event {} from {} {}: {}", event.envelope().event_id(), publisher,
                               conflict ? "conflict" : "rejected", reason);
}

std::unique_ptr<PreparedBatch> IngestPipeline::Prepare(std::string routing_id, std::string sender,
                                                       v1::Publish* publish,
                                                       bool quarantine_rejects) {
  auto batch = NewBatch(512 * static_cast<size_t>(publish->events_size()));
  batch->routing_id = std::move(routing_id);
  batch->sender = std::move(sender);
  batch->epoch = epoch_;
  batch->received_at = clock_.Now();
  batch->result.set_batch_id(publish->batch_id());
  batch->quarantine_rejects = quarantine_rejects;
  const uint32_t today = DaysSinceEpoch(batch->received_at);

  const int n = publish->events_size();
  struct Candidate {
    int index;
    std::string key;
    std::string bytes;
    ContentHash hash;
  };
  std::vector<Candidate> candidates;
  candidates.reserve(n);
  auto* results = batch->result.mutable_results();
  results->Reserve(n);

  // 1. Authorise and validate each event on its own.
  for (int i = 0; i < n; ++i) {
    v1::Event* event = publish->mutable_events(i);
    auto* result = results->Add();
    result->set_event_id(event->envelope().event_id());
    // Hub fields are the hub's to set; whatever a publisher put there is ignored.
    if (event->has_envelope()) {
      event->mutable_envelope()->clear_hub_seq();
      event->mutable_envelope()->clear_received_at();
    }
    std::string bytes = CanonicalBytes(*event);
    const auto& publisher = event->envelope().publisher_ods();
    if (authorise_ && !authorise_(batch->sender, publisher)) {
      Reject(batch.get(), result, *event, bytes, std::string(kReasonPublisherNotAuthorised),
             "this connection's identity may not publish for organisation " + publisher);
      continue;
    }
    Status valid = ValidateEvent(*event, bytes.size(), limits_, batch->received_at);
    if (!valid.ok()) {
      Reject(batch.get(), result, *event, bytes, valid.code(), valid.message());
      continue;
    }
    Candidate c{i, Store::DedupKey(publisher, event->envelope().event_id()), std::move(bytes), {}};
    c.hash = HashContent(c.bytes);
    candidates.push_back(std::move(c));
  }

  // 2. Dedup: pending (uncommitted) keys first, then one MultiGet against the store for the rest.
  std::vector<std::string> lookup_keys;
  std::vector<size_t> lookup_of;
  for (size_t c = 0; c < candidates.size(); ++c) {
    if (!pending_.count(candidates[c].key)) {
      lookup_keys.push_back(candidates[c].key);
      lookup_of.push_back(c);
    }
  }
  auto found = store_->LookupDedup(lookup_keys);
  std::vector<std::optional<DedupEntry>> stored(candidates.size());
  for (size_t j = 0; j < lookup_of.size(); ++j) {
    if (found[j] && today - std::min(today, found[j]->day) <= dedup_window_days_) {
      stored[lookup_of[j]] = found[j];
    }
  }

  // 3. Decide and assign seqs. Keys are written afterwards in sorted order: RocksDB's memtable
  //    skiplist inserts are much cheaper when consecutive keys are near each other.
  std::vector<std::pair<std::string_view, const DedupEntry*>> dedup_puts;
  std::vector<DedupEntry> dedup_entries;
  dedup_entries.reserve(candidates.size());
  std::vector<std::pair<std::string, uint64_t>> route_puts;
  route_puts.reserve(candidates.size());
  for (size_t c = 0; c < candidates.size(); ++c) {
    auto& cand = candidates[c];
    auto* result = results->Mutable(cand.index);
    const v1::Event& event = publish->events(cand.index);
    const auto& publisher = event.envelope().publisher_ods();

    std::optional<Pending> prior;
    if (auto it = pending_.find(cand.key); it != pending_.end()) {
      prior = it->second;
    } else if (stored[c]) {
      prior = Pending{stored[c]->hub_seq, stored[c]->hash};
    }
    if (prior) {
      if (prior->hash == cand.hash) {
        result->set_status(v1::EventResult::DUPLICATE);
        result->set_hub_seq(prior->hub_seq);
        CounterFor("carehub_events_duplicate_total", "Resent events answered DUPLICATE.",
                   {{"publisher", publisher}})
            .Inc();
      } else {
        Reject(batch.get(), result, event, cand.bytes, std::string(kReasonConflict),
               "event_id was already stored (hub_seq " + std::to_string(prior->hub_seq) +
                   ") with different content; send corrections as a new event with lifecycle "
                   "UPDATE");
      }
      continue;
    }

    const uint64_t seq = next_seq_++;
    const std::string& type = EventTypeNameCached(event);
    std::string route = RouteId(publisher, event.envelope().site_ods(), type);
    if (known_routes_.insert(route).second) {
      RouteKey key{publisher, event.envelope().site_ods(), type};
      store_->AddKnownRoute(&batch->writes, key);
      batch->new_routes.push_back(std::move(key));
    }
    AppendHubFields(&cand.bytes, seq, batch->received_at);
    store_->AddEvent(&batch->writes, seq, cand.bytes);
    dedup_entries.push_back(DedupEntry{seq, cand.hash, today});
    auto [it, inserted] = pending_.insert_or_assign(cand.key, Pending{seq, cand.hash});
    dedup_puts.emplace_back(it->first, &dedup_entries.back());
    route_puts.emplace_back(std::move(route), seq);
    bool counted = false;
    for (auto& label : batch->accepted_labels) {
      if (label.publisher == publisher && label.type == type) {
        ++label.count;
        counted = true;
        break;
      }
    }
    if (!counted) {
      batch->accepted_labels.push_back({publisher, type, 1});
    }
    batch->max_seq = seq;
    result->set_status(v1::EventResult::ACCEPTED);
    result->set_hub_seq(seq);
  }
  std::sort(dedup_puts.begin(), dedup_puts.end());
  for (const auto& [key, entry] : dedup_puts) {
    store_->AddDedup(&batch->writes, key, *entry);
    batch->pending_keys.emplace_back(key);
  }
  std::stable_sort(route_puts.begin(), route_puts.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [route, seq] : route_puts) {
    store_->AddRouteById(&batch->writes, route, seq);
  }

  // Once per batch, under a lock the admin thread shares: counts by publisher for the status page.
  std::map<std::string, PublisherActivity> seen;
  for (int i = 0; i < n; ++i) {
    auto& a = seen[std::string(PublisherLabel(publish->events(i).envelope().publisher_ods(),
                                              results->Get(i).reason()))];
    ++a.received;
    switch (results->Get(i).status()) {
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
    CounterFor("carehub_events_received_total", "Events received, by publisher.",
               {{"publisher", publisher}})
        .Inc(a.received);
  }
  {
    std::lock_guard lock(activity_mu_);
    int64_t now_ms = ToUnixMillis(batch->received_at);
    for (auto& [publisher, a] : seen) {
      auto& total = activity_[publisher];
      total.received += a.received;
      total.duplicate += a.duplicate;
      total.rejected += a.rejected;
      total.last_seen_unix_ms = now_ms;
    }
  }
  return batch;
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
  batch->answer_after_commit = true;
  batch->on_answer = nullptr;
  batch->committed = false;
  batch->quarantine_rejects = true;
  free_batches_.push_back(std::move(batch));
}

std::map<std::string, PublisherActivity> IngestPipeline::Activity() const {
  std::lock_guard lock(activity_mu_);
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
  q.set_id(store_->NextQuarantineId());
  q.set_at_unix_ms(ToUnixMillis(batch->received_at));
  q.set_sender(batch->sender);
  q.set_reason(reason);
  q.set_message(message);
  // Keep at most 1 MiB of a hostile frame: enough to inspect, not enough to fill the disk.
  q.set_raw(std::string(raw.substr(0, 1u << 20)));
  q.set_raw_kind("frame");
  store_->AddQuarantine(&batch->writes, q);
  ++batch->quarantined;
  CounterFor("carehub_frames_rejected_total", "Frames that could not be processed, by reason.",
             {{"reason", reason}})
      .Inc();
  return batch;
}

void IngestPipeline::Finish(PreparedBatch* batch) {
  if (batch->committed) {
    for (const auto& key : batch->pending_keys) {
      pending_.erase(key);
    }
    if (batch->quarantined > 0) {
      store_->NoteQuarantineCommitted(batch->quarantined);
    }
    if (!batch->accepted_labels.empty()) {
      std::lock_guard lock(activity_mu_);
      for (const auto& label : batch->accepted_labels) {
        activity_[label.publisher].accepted += label.count;
      }
    }
    for (const auto& label : batch->accepted_labels) {
      CounterFor("carehub_events_accepted_total", "Events stored, by publisher and type.",
                 {{"publisher", label.publisher}, {"type", label.type}})
          .Inc(label.count);
    }
    return;
  }
  // The store refused the write. Nothing of this batch, or of any batch queued behind it, is
  // stored: forget all pending state and start again from what the store really holds.
  for (auto& r : *batch->result.mutable_results()) {
    r.set_status(v1::EventResult::RETRY);
    r.set_hub_seq(0);
    r.set_reason(std::string(kReasonStoreUnavailable));
    r.set_message("the hub could not store this batch; nothing was stored, resend it");
  }
  if (batch->epoch == epoch_) {
    ++epoch_;
    pending_.clear();
    known_routes_.clear();
    for (const auto& r : store_->KnownRoutes()) {
      known_routes_.insert(RouteId(r.publisher_ods, r.site_ods, r.event_type));
    }
    next_seq_ = std::max(next_seq_, store_->LastSeq() + 1);
  }
}

}  // namespace carehub::hub
