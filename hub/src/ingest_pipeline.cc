#include "carehub/hub/ingest_pipeline.h"

#include <sodium.h>
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
void AppendHubFields(std::string* bytes, uint64_t hub_seq, Clock::TimePoint received_at) {
  v1::Event suffix;
  auto* env = suffix.mutable_envelope();
  env->set_hub_seq(hub_seq);
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                    received_at.time_since_epoch())
                    .count();
  env->mutable_received_at()->set_seconds(micros / 1'000'000);
  env->mutable_received_at()->set_nanos(static_cast<int32_t>((micros % 1'000'000) * 1000));
  suffix.AppendToString(bytes);
}

}  // namespace

ContentHash HashContent(std::string_view canonical_bytes) {
  ContentHash h{};
  crypto_generichash(h.data(), h.size(), reinterpret_cast<const unsigned char*>(canonical_bytes.data()),
                     canonical_bytes.size(), nullptr, 0);
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
    known_routes_.insert(r.publisher_ods + '\0' + r.site_ods + '\0' + r.event_type);
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

  if (conflict) {
    CounterFor("carehub_events_conflict_total", "Events whose key was stored with other content.",
               {{"publisher", publisher}})
        .Inc();
  } else {
    CounterFor("carehub_events_rejected_total", "Events rejected, by publisher and reason.",
               {{"publisher", publisher}, {"reason", reason}})
        .Inc();
  }
  // Debug only: this is a per-event path and the hub logs a per-batch summary above debug.
  spdlog::get("ingest")->debug("event {} from {} {}: {}", event.envelope().event_id(), publisher,
                               conflict ? "conflict" : "rejected", reason);
}

std::unique_ptr<PreparedBatch> IngestPipeline::Prepare(std::string routing_id, std::string sender,
                                                       v1::Publish* publish) {
  auto batch = std::make_unique<PreparedBatch>();
  batch->routing_id = std::move(routing_id);
  batch->sender = std::move(sender);
  batch->epoch = epoch_;
  batch->received_at = clock_.Now();
  batch->result.set_batch_id(publish->batch_id());
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
    CounterFor("carehub_events_received_total", "Events received, by publisher.",
               {{"publisher", publisher}})
        .Inc();
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

  // 3. Decide, assign seqs and build the write batch.
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
    std::string type = EventTypeName(event);
    RouteKey route{publisher, event.envelope().site_ods(), type};
    std::string route_id = route.publisher_ods + '\0' + route.site_ods + '\0' + route.event_type;
    if (known_routes_.insert(route_id).second) {
      store_->AddKnownRoute(&batch->writes, route);
      batch->new_routes.push_back(route);
    }
    AppendHubFields(&cand.bytes, seq, batch->received_at);
    store_->AddEvent(&batch->writes, seq, cand.bytes);
    store_->AddDedup(&batch->writes, cand.key, DedupEntry{seq, cand.hash, today});
    store_->AddRoute(&batch->writes, route, seq);
    pending_[cand.key] = Pending{seq, cand.hash};
    batch->pending_keys.push_back(std::move(cand.key));
    batch->accepted_labels.emplace_back(publisher, std::move(type));
    batch->max_seq = seq;
    result->set_status(v1::EventResult::ACCEPTED);
    result->set_hub_seq(seq);
  }

  // Once per batch, under a lock the admin thread shares: counts by publisher for the status page.
  std::map<std::string, PublisherActivity> seen;
  for (int i = 0; i < n; ++i) {
    auto& a = seen[publish->events(i).envelope().publisher_ods()];
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
    if (!batch->new_routes.empty()) {
      store_->NoteRoutesCommitted(batch->new_routes);
    }
    if (!batch->accepted_labels.empty()) {
      std::lock_guard lock(activity_mu_);
      for (const auto& [publisher, type] : batch->accepted_labels) {
        ++activity_[publisher].accepted;
      }
    }
    for (const auto& [publisher, type] : batch->accepted_labels) {
      CounterFor("carehub_events_accepted_total", "Events stored, by publisher and type.",
                 {{"publisher", publisher}, {"type", type}})
          .Inc();
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
      known_routes_.insert(r.publisher_ods + '\0' + r.site_ods + '\0' + r.event_type);
    }
    next_seq_ = std::max(next_seq_, store_->LastSeq() + 1);
  }
}

}  // namespace carehub::hub
