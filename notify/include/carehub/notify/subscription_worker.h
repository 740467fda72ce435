#pragma once
// One carehub subscription delivered to one FHIR endpoint (docs/fhir-notify.md). A worker owns a
// thread, which alone uses its hub Subscriber, its EndpointClient and the appending side of its
// EventNumbers, in this order:
//
//   handshake (retried until the endpoint answers 2xx; status "requested" until then)
//   loop:
//     pull hub deliveries while there is room for more in one notification (batching);
//     number new events durably (EventNumbers::Append: fdatasync) before anything is sent;
//     send the oldest unacknowledged events as one bundle; on 2xx, Ack the hub cursor up to the
//     hub's scanned_to_seq of the batches sent; on failure, retry the same events (rebuilt with
//     the current status) after a doubling backoff: nothing newer is sent before them;
//     after retry.error_after_failures failures in a row the status is "error" (still numbering
//     events); the next 2xx makes it "active" again;
//     nothing sent for heartbeat_period and nothing waiting: a heartbeat;
//     $events requests queued by other threads run between two sends (see ReplayEvents).
//
// After a restart the worker resumes from the hub's cursor (the last acknowledged hub_seq, moved
// only after a 2xx). Events numbered before the restart but not acknowledged come again from the
// hub and keep their numbers (at-least-once: a receiver may see a number twice, never two events
// under one number). An event so numbered that the hub no longer delivers (its agreement changed)
// is sent as its number alone, without focus, so no number is ever missing.
//
// Thread-safety: Start/Stop from the owning thread; status(), facts(), numbers() and
// ReplayEvents() from any thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "carehub/client/subscriber.h"
#include "carehub/core/mutex.h"
#include "carehub/core/status.h"
#include "carehub/metrics/registry.h"
#include "carehub/notify/config.h"
#include "carehub/notify/endpoint_client.h"
#include "carehub/notify/event_numbers.h"
#include "carehub/notify/notification.h"

namespace carehub::notify {

struct WorkerStatus {
  // "requested" (before the handshake succeeded), "active", "error", "off" (stopped or failed).
  std::string status = "requested";
  uint64_t events_since_start = 0;  // the highest event number given
  uint64_t delivered_through = 0;   // every number up to here was answered 2xx (this run)
  uint64_t consecutive_failures = 0;
  std::string last_error;
  // A failure the worker cannot continue after (e.g. the event-number file cannot be written).
  std::string fatal_error;
};

struct HubConnection {
  std::string endpoint;
  std::optional<client::CurveClientKeys> curve;
};

class SubscriptionWorker {
 public:
  // `registry` is not owned and must outlive the worker.
  SubscriptionWorker(SubscriptionConfig config, HubConnection hub, std::string base_url,
                     std::unique_ptr<EventNumbers> numbers,
                     std::unique_ptr<EndpointClient> endpoint, metrics::Registry* registry);
  ~SubscriptionWorker();  // Stops.
  SubscriptionWorker(const SubscriptionWorker&) = delete;
  SubscriptionWorker& operator=(const SubscriptionWorker&) = delete;

  void Start();
  // Asks the thread to finish (after the send in progress, if any) and joins it. Idempotent.
  void Stop();

  WorkerStatus status() const;
  const SubscriptionFacts& facts() const { return facts_; }
  const SubscriptionConfig& config() const { return config_; }

  // $events: the events numbered from..to (inclusive) read again from the hub's log (so with the
  // hub's redaction and a fresh audit record), as a query-event Bundle with `payload`. Runs on the
  // worker thread between two sends; waits at most `timeout`. Errors: "out_of_range",
  // "too_many" (over max_replay_events), "busy" (timeout), "hub_unreachable", "stopped".
  Result<nlohmann::json> ReplayEvents(uint64_t from, uint64_t to, Payload payload,
                                      std::chrono::milliseconds timeout);

 private:
  struct HubBatch {
    std::vector<NumberedEvent> events;
    uint64_t scanned_to = 0;
  };
  struct ReplayRequest {
    uint64_t from = 0;
    uint64_t to = 0;
    Payload payload = Payload::kIdOnly;
    std::promise<Result<nlohmann::json>> done;
  };

  void Run();
  bool Stopping() const { return stop_.load(std::memory_order_acquire); }
  // Opens the live subscription (resume, or after the last hub_seq taken); false when stopping.
  bool OpenLive();
  // Pulls what the hub has ready (waiting up to `wait` for the first batch) into pending_.
  Status Pull(std::chrono::milliseconds wait);
  Status TakeBatch(client::DeliveryBatch batch);
  // While retrying: numbers the batch's events into ahead_ without keeping their content.
  Status CountBatch(const client::DeliveryBatch& batch);
  // Once pending_ is delivered: moves ahead_ back into tail_ and reopens before them.
  void RefetchCounted();
  // Sends `type` with `events` until a 2xx or Stop; false when stopping.
  bool Deliver(NotificationType type, const std::vector<NumberedEvent>& events);
  // Sends the oldest pending batches as one notification; acks the hub on success.
  bool SendPending();
  // Acknowledges ack_owed_ to the hub when a live session is open.
  void PayAck();
  // Waits up to `d`, waking early for Stop or a queued replay (which it then runs).
  void Pause(std::chrono::milliseconds d);
  void ServeReplays();
  Result<nlohmann::json> Replay(const ReplayRequest& request);
  void SetStatus(const std::string& status, const std::string& error);
  void Fail(const std::string& what);
  StatusFacts CurrentFacts() const;

  const SubscriptionConfig config_;
  const HubConnection hub_;
  const SubscriptionFacts facts_;
  std::unique_ptr<EventNumbers> numbers_;
  std::unique_ptr<EndpointClient> endpoint_;

  // Worker thread only.
  std::unique_ptr<client::Subscriber> live_;
  std::deque<HubBatch> pending_;
  size_t pending_events_ = 0;
  // Numbered before this run and not yet acknowledged to the hub: (number, hub_seq), in order.
  std::deque<std::pair<uint64_t, uint64_t>> tail_;
  bool tail_loaded_ = false;
  uint64_t highest_taken_ = 0;  // every hub_seq up to here is pending, delivered or counted
  // Counted while the endpoint failed (numbered, content not held): (number, hub_seq), in order;
  // content_through_ is highest_taken_ when counting began (content up to it is in pending_).
  std::deque<std::pair<uint64_t, uint64_t>> ahead_;
  uint64_t content_through_ = 0;
  bool retrying_ = false;  // a notification failed and waits for its retry
  std::chrono::steady_clock::time_point last_sent_{};
  std::chrono::milliseconds backoff_{0};
  uint64_t ack_owed_ = 0;  // a scanned_to_seq delivered but not yet acknowledged to the hub

  std::atomic<bool> stop_{false};
  std::thread thread_;

  mutable Mutex mu_;
  CondVar wake_;
  WorkerStatus status_ CAREHUB_GUARDED_BY(mu_);
  std::deque<std::shared_ptr<ReplayRequest>> replays_ CAREHUB_GUARDED_BY(mu_);

  // Metrics (references stay valid: the registry never removes a metric).
  metrics::Counter& events_delivered_;
  metrics::Counter& resources_delivered_;
  metrics::Counter& notifications_ok_;
  metrics::Counter& heartbeats_;
  metrics::Counter& failures_;
  metrics::Counter& replays_answered_;
  metrics::Counter& withheld_numbers_;
  metrics::Counter& unnumbered_skipped_;
  metrics::Gauge& event_number_;
  metrics::Gauge& delivered_number_;
  metrics::Gauge& in_error_;
  metrics::Histogram& post_seconds_;
};

}  // namespace carehub::notify
