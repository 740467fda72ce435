#pragma once
// The hub's ingest data path, minus the socket. Prepare() runs, in this order (ingest_pipeline.cc):
//
//   authorise -> validate -> encode -> dedup -> sequence -> write batch
//
// and turns one decoded Publish into a PreparedBatch: a result per event and a store WriteBatch
// holding the accepted events, their dedup keys and routes, plus quarantine records for the
// rejected ones. Nothing is durable yet; the caller commits the batch (group commit, see
// GroupCommitter) and only then answers the publisher, with the results Finish() settled.
//
// Events come as views (core/event_view.h) with their bytes: read in place from a plain frame, or
// made from a parsed Publish. "encode" keeps each event's bytes as its publisher sent them when
// the caller has them (and the publisher left the hub's own fields alone), else encodes the parsed
// event canonically: the stored record is those bytes plus the hub fields (store/event_codec.h).
// Resends are matched by a hash of those bytes; one whose bytes differ from its original's is
// compared as an event before it is called a conflict, so a publisher's encoder is free to order
// fields its own way.
//
// Errors: an event that fails authorisation or validation is REJECTED (quarantined); a content
// clash is CONFLICT. When the dedup index cannot be read, the whole batch is answered RETRY with
// nothing written: a failed read must never be taken for "not stored" (that would accept a resend
// twice). Likewise a resend whose original cannot be read to compare it is answered RETRY, never
// CONFLICT or DUPLICATE.
//
// Dedup sees both the store and batches prepared but not yet committed (`pending_`), so a resend
// that arrives while its original is still being written is answered DUPLICATE — and that answer
// goes out only after the original's batch is committed, because batches commit in order.
//
// Not thread-safe: one ingest thread owns the pipeline.

#include <absl/container/flat_hash_map.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "carehub/core/clock.h"
#include "carehub/core/event_view.h"
#include "carehub/core/mutex.h"
#include "carehub/core/validation.h"
#include "carehub/hub/pending_keys.h"
#include "carehub/hub/quarantine_budget.h"
#include "carehub/hub/store.h"
#include "carehub/metrics/registry.h"
#include "carehub/v1/wire.pb.h"

namespace carehub::hub {

inline constexpr std::string_view kReasonPublisherNotAuthorised = "publisher_not_authorised";
inline constexpr std::string_view kReasonConflict = "conflict";
inline constexpr std::string_view kReasonStoreUnavailable = "store_unavailable";

// Decides whether an authenticated sender may publish under an ODS code (DESIGN §7). Empty
// identity means a plain (unauthenticated, loopback-only) connection.
using PublishAuthoriser = std::function<bool(std::string_view identity, std::string_view ods)>;

// Data quality of a publisher's accepted events (core/data_quality.h, the measures NHS England's
// Data Quality Maturity Index uses): how many carried each, and the summed delay from occurred to
// received (timeliness), over `events`.
struct PublisherQuality {
  uint64_t events = 0;
  uint64_t verified_nhs_number = 0;
  uint64_t valid_postcode = 0;
  uint64_t valid_practice = 0;
  uint64_t valid_codes = 0;
  int64_t delay_seconds_sum = 0;

  void Add(const PublisherQuality& other);
};

struct PreparedBatch {
  PreparedBatch() = default;
  // Reserves the write batch's buffer up front: growing it event by event costs copies.
  explicit PreparedBatch(size_t reserve_bytes) : writes(reserve_bytes) {}

  std::string routing_id;  // the ROUTER peer to answer
  std::string sender;      // authenticated identity, or "" in plain mode
  v1::PublishResult result;
  WriteBatch writes;
  // Dedup keys this batch claimed in the pending set, which holds views of them: a deque, so they
  // never move while the batch is in flight (PendingKeys).
  std::deque<std::string> pending_keys;
  // The stored records of the accepted events, kept until the batch is recycled (or its commit
  // fails): the pending entries point at them (PendingKeys::Entry::record).
  std::deque<std::string> records;
  uint64_t epoch = 0;
  uint64_t max_seq = 0;
  Clock::TimePoint received_at;
  // Accepted counts by (publisher, type), applied to metrics once committed.
  struct AcceptedLabel {
    std::string publisher;
    std::string type;
    uint64_t count;
    PublisherQuality quality;  // of these `count` events
  };
  std::vector<AcceptedLabel> accepted_labels;
  std::vector<RouteKey> new_routes;
  uint32_t quarantined = 0;        // quarantine records in `writes`
  uint64_t quarantined_bytes = 0;  // their serialized size
  uint64_t quarantine_cost = 0;    // what QuarantineBudget admitted for them
  // Frame-level errors are answered at once; only their quarantine record goes through commit.
  bool answer_after_commit = true;
  // Set for batches that did not come from a socket (quarantine replay): called with the result
  // instead of sending it.
  std::function<void(const v1::PublishResult&)> on_answer;
  bool committed = false;
  // Committed here but not acknowledged by a synchronous standby (docs/replication.md, block):
  // the publisher is answered RETRY, and its resend DUPLICATE once the standby has it.
  bool unreplicated = false;
  bool quarantine_rejects = true;
};

// What operators see per publisher on the status page.
struct PublisherActivity {
  uint64_t received = 0;
  uint64_t accepted = 0;
  uint64_t duplicate = 0;
  uint64_t rejected = 0;  // REJECTED and CONFLICT
  int64_t last_seen_unix_ms = 0;
  PublisherQuality quality;  // of the accepted events
};

class IngestPipeline {
 public:
  // `store`, `metrics` and `clock` are not owned and must outlive the pipeline. `authorise` may be
  // empty (plain mode: every local connection may publish for any organisation).
  // `quarantine` bounds what refused input may store (quarantine_budget.h).
  IngestPipeline(Store* store, metrics::Registry* metrics, ValidationLimits limits,
                 uint32_t dedup_window_days, const Clock& clock, PublishAuthoriser authorise,
                 QuarantineLimits quarantine = {});

  // The events of one Publish as views (core/event_view.h): `events[i]` is read from
  // `received[i]`, the bytes the stored record copies. Both are valid for this call only. The
  // ingest server's path for every plain frame (frame_decode.h, ReadPublishInPlace), and where the
  // parsed-Publish Prepare below ends. `quarantine_rejects` is false for a quarantine replay: the
  // original record is updated with the outcome instead of a second record being written.
  std::unique_ptr<PreparedBatch> Prepare(std::string routing_id, std::string sender,
                                         uint64_t batch_id, std::span<const EventView> events,
                                         std::span<const std::string_view> received,
                                         bool quarantine_rejects = true);

  // A parsed Publish: frames that are not plain, and the quarantine replay. Events whose
  // publisher set the hub's own fields are cleared and encoded canonically; the others keep the
  // bytes in `received` when given (ReceivedEventBytes, valid for this call), else are encoded.
  std::unique_ptr<PreparedBatch> Prepare(std::string routing_id, std::string sender,
                                         v1::Publish* publish, bool quarantine_rejects = true,
                                         std::span<const std::string_view> received = {});

  // Settles a batch after its commit: on success, its pending keys become store-only; on failure
  // every result becomes RETRY and the pipeline forgets everything pending (later batches in the
  // same commit queue fail too: see GroupCommitter) and restarts from the store's last seq.
  void Finish(PreparedBatch* batch);

  // Takes back an answered batch so its buffers (write batch, results) are reused: allocating and
  // faulting in half a megabyte per batch was a measurable share of ingest CPU.
  void Recycle(std::unique_ptr<PreparedBatch> batch);

  // Quarantines a whole frame that could not be decoded (no per-event answer is possible).
  std::unique_ptr<PreparedBatch> QuarantineFrame(std::string routing_id, std::string sender,
                                                 std::string_view raw, std::string reason,
                                                 std::string message);

  // Thread-safe snapshot, by publisher ODS code.
  std::map<std::string, PublisherActivity> Activity() const;

  uint64_t epoch() const { return epoch_; }
  uint64_t next_seq() const { return next_seq_; }

 private:
  using Pending = PendingKeys::Entry;
  // An event that passed authorisation and validation, on its way through dedup and sequencing.
  struct Candidate {
    int index;          // in the Publish's events
    std::string key;    // dedup key
    std::string bytes;  // accepted bytes; the stored record once hub fields are appended
    ContentHash hash;
    std::optional<Pending> prior;  // the same key, pending or stored
  };
  // The stages of Prepare, in order.
  std::vector<Candidate> AuthoriseAndValidate(PreparedBatch* batch,
                                              std::span<const EventView> events,
                                              std::span<const std::string_view> received);
  Status FindPriors(std::vector<Candidate>* candidates, uint32_t today);
  void DecideAndSequence(PreparedBatch* batch, std::span<const EventView> events,
                         std::vector<Candidate>* candidates, uint32_t today);
  // A resend whose bytes (`accepted`) differ from its prior's: the same event encoded otherwise,
  // another event, or unknown because the store could not be read.
  enum class PriorMatch { kSame, kDifferent, kUnreadable };
  PriorMatch CompareWithPrior(std::string_view accepted, const Pending& prior);
  void CountActivity(const PreparedBatch& batch, std::span<const EventView> events);
  // Every result RETRY, nothing written: the store could not be read or written.
  static void FailAll(PreparedBatch* batch, const std::string& message);

  void Reject(PreparedBatch* batch, v1::EventResult* result, const EventView& event,
              std::string_view raw, std::string reason, std::string message);
  void NoteAccepted(PreparedBatch* batch, std::string_view publisher, const std::string& type,
                    const EventView& event);
  // Reads where the log ends and the known routes; next_seq_ only ever grows.
  Status RestartFromStore();
  metrics::Counter& CounterFor(const std::string& family, const std::string& help,
                               const metrics::Labels& labels);
  // The labelled counters with one definition each (created at 0 before their first event).
  // The per-publisher ones and the accepted ones are found through caches keyed by their labels'
  // bytes, without building a key or a label set: a batch of 20 events from 18 publishers looked
  // up ~70 counters through CounterFor, a tenth of the ingest thread at 1,000 such batches/s.
  metrics::Counter& ReceivedCounter(std::string_view publisher);
  metrics::Counter& ConflictCounter(std::string_view publisher);
  metrics::Counter& DuplicateCounter(std::string_view publisher);
  metrics::Counter& AcceptedCounter(std::string_view publisher, std::string_view type);
  metrics::Counter& QuarantineDroppedCounter(const std::string& reason);

  Store* store_;
  metrics::Registry* metrics_;
  // Stores `record` in `batch` if the quarantine budget admits it; else counts and logs the drop.
  void AddQuarantineRecord(PreparedBatch* batch, const std::string& routing_id,
                           const v1::QuarantineRecord& record);

  ValidationLimits limits_;
  QuarantineBudget quarantine_budget_;
  uint32_t dedup_window_days_;
  const Clock& clock_;
  PublishAuthoriser authorise_;
  uint64_t next_seq_ = 0;  // 0: not yet read from the store
  uint64_t epoch_ = 1;
  PendingKeys pending_;
  // What FindPriors' lookups in the store's dedup index cost (DedupLookupCost), as metrics: time
  // per lookup, keys by outcome, blocks read from files by kind. Owned by metrics_.
  struct DedupLookupMetrics {
    metrics::Histogram* seconds = nullptr;
    metrics::Counter* stored_keys = nullptr;
    metrics::Counter* new_keys = nullptr;
    metrics::Counter* data_blocks = nullptr;
    metrics::Counter* index_blocks = nullptr;
    metrics::Counter* filter_blocks = nullptr;
  };
  DedupLookupMetrics dedup_metrics_;
  void CountDedupLookup(const DedupLookupCost& cost);
  // Lets the string-keyed tables below be looked up by string_view, without a key string.
  struct ViewHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  // Looked up by string_view: the route of each accepted event is built in route_buf_.
  std::unordered_set<std::string, ViewHash, std::equal_to<>> known_routes_;
  std::string route_buf_;
  // Canonical-bytes buffers of earlier batches, reused: a fresh string per event (and a second
  // allocation when the hub fields were appended) was a measurable share of the ingest thread.
  std::vector<std::string> spare_bytes_;
  // The parsed-Publish Prepare's views of its events and their bytes, reused from call to call.
  std::vector<EventView> parsed_views_;
  std::vector<std::string> parsed_bytes_;
  std::vector<std::string_view> parsed_bytes_views_;
  std::string TakeBytesBuffer();
  void GiveBackBytesBuffer(std::string buffer);
  void ReturnBytesBuffers(std::vector<Candidate>* candidates);
  std::unordered_map<std::string, metrics::Counter*> counter_cache_;
  // Each filled on first use (PublisherCounter).
  struct PublisherCounters {
    metrics::Counter* received = nullptr;
    metrics::Counter* conflict = nullptr;
    metrics::Counter* duplicate = nullptr;
  };
  // The counter `family` of `publisher`, kept in its `slot`.
  metrics::Counter& PublisherCounter(std::string_view publisher,
                                     metrics::Counter* PublisherCounters::*slot, const char* family,
                                     const char* help);
  absl::flat_hash_map<std::string, PublisherCounters, ViewHash, std::equal_to<>>
      publisher_counters_;
  absl::flat_hash_map<std::string, metrics::Counter*, ViewHash, std::equal_to<>>
      accepted_counters_;     // "publisher\0type"
  std::string accepted_key_;  // AcceptedCounter's lookup key, reused
  // CountActivity's per-batch counts by publisher label (views of the batch's events or of
  // literals, valid for that call only), reused.
  absl::flat_hash_map<std::string_view, PublisherActivity> batch_activity_;
  // DecideAndSequence's index of batch->accepted_labels by (publisher, type), views valid for
  // that call only.
  absl::flat_hash_map<std::pair<std::string_view, std::string_view>, size_t> label_index_;
  std::vector<std::unique_ptr<PreparedBatch>> free_batches_;
  std::unique_ptr<PreparedBatch> NewBatch(size_t reserve_bytes);
  mutable Mutex activity_mu_;
  std::map<std::string, PublisherActivity> activity_ CAREHUB_GUARDED_BY(activity_mu_);
};

}  // namespace carehub::hub
