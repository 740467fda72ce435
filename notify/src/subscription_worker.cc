#include "carehub/notify/subscription_worker.h"

#include <algorithm>

#include "carehub/core/log.h"

namespace carehub::notify {
namespace {

using Steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::shared_ptr<spdlog::logger> Log() { return Logger("fhir-notify"); }

SubscriptionFacts FactsOf(const SubscriptionConfig& c, const std::string& base_url) {
  SubscriptionFacts f;
  f.fhir_id = c.fhir_id;
  f.base_url = base_url;
  f.topic = c.topic;
  f.purpose = c.purpose;
  f.payload = c.payload;
  f.routing_facts = c.routing_facts;
  return f;
}

metrics::Labels L(const SubscriptionConfig& c) { return {{"subscription", c.fhir_id}}; }

}  // namespace

SubscriptionWorker::SubscriptionWorker(SubscriptionConfig config, HubConnection hub,
                                       std::string base_url, std::unique_ptr<EventNumbers> numbers,
                                       std::unique_ptr<EndpointClient> endpoint,
                                       metrics::Registry* registry)
    : config_(std::move(config)),
      hub_(std::move(hub)),
      facts_(FactsOf(config_, base_url)),
      numbers_(std::move(numbers)),
      endpoint_(std::move(endpoint)),
      events_delivered_(registry->GetCounter("carehub_fhir_notify_events_total",
                                             "Events delivered (endpoint answered 2xx).",
                                             L(config_))),
      resources_delivered_(registry->GetCounter(
          "carehub_fhir_notify_resources_total",
          "Resource entries (full or id-only) in delivered notifications.", L(config_))),
      notifications_ok_(registry->GetCounter("carehub_fhir_notify_notifications_total",
                                             "Notification bundles answered 2xx.", L(config_))),
      heartbeats_(registry->GetCounter("carehub_fhir_notify_heartbeats_total",
                                       "Heartbeat notifications answered 2xx.", L(config_))),
      failures_(registry->GetCounter("carehub_fhir_notify_send_failures_total",
                                     "Notification attempts that got no 2xx.", L(config_))),
      replays_answered_(registry->GetCounter("carehub_fhir_notify_replays_total",
                                             "$events requests answered.", L(config_))),
      withheld_numbers_(registry->GetCounter(
          "carehub_fhir_notify_withheld_numbers_total",
          "Event numbers sent without focus: the hub no longer delivers their event.", L(config_))),
      unnumbered_skipped_(registry->GetCounter(
          "carehub_fhir_notify_unnumbered_skipped_total",
          "Events the hub delivered below the last numbered hub_seq that were never numbered "
          "(an agreement widened after the feed passed them).",
          L(config_))),
      event_number_(registry->GetGauge("carehub_fhir_notify_event_number",
                                       "The highest event number given.", L(config_))),
      delivered_number_(registry->GetGauge(
          "carehub_fhir_notify_delivered_event_number",
          "Every event number up to this one was answered 2xx (this run).", L(config_))),
      in_error_(registry->GetGauge("carehub_fhir_notify_in_error",
                                   "1 while the subscription's status is error.", L(config_))),
      post_seconds_(registry->GetHistogram("carehub_fhir_notify_post_seconds",
                                           "Time of one notification POST, answered or not.",
                                           metrics::LatencyBuckets(), L(config_))) {
  MutexLock lock(mu_);
  status_.events_since_start = numbers_->Count();
  event_number_.Set(static_cast<double>(numbers_->Count()));
}

SubscriptionWorker::~SubscriptionWorker() { Stop(); }

void SubscriptionWorker::Start() {
  thread_ = std::thread([this] { Run(); });
}

void SubscriptionWorker::Stop() {
  stop_.store(true, std::memory_order_release);
  {
    MutexLock lock(mu_);
    wake_.NotifyAll();
  }
  if (thread_.joinable()) {
    thread_.join();
  }
  std::deque<std::shared_ptr<ReplayRequest>> left;
  {
    MutexLock lock(mu_);
    left.swap(replays_);
    status_.status = "off";
  }
  for (auto& r : left) {
    r->done.set_value(Status::Error("stopped", "the service is stopping"));
  }
}

WorkerStatus SubscriptionWorker::status() const {
  MutexLock lock(mu_);
  WorkerStatus s = status_;
  s.events_since_start = numbers_->Count();
  return s;
}

StatusFacts SubscriptionWorker::CurrentFacts() const {
  MutexLock lock(mu_);
  StatusFacts f;
  f.status = status_.status;
  f.events_since_start = numbers_->Count();
  f.error = status_.status == "error" ? status_.last_error : "";
  return f;
}

void SubscriptionWorker::SetStatus(const std::string& status, const std::string& error) {
  MutexLock lock(mu_);
  if (status_.status != status) {
    Log()->info("subscription {}: status {} -> {}{}", config_.fhir_id, status_.status, status,
                error.empty() ? "" : " (" + error + ")");
  }
  status_.status = status;
  if (!error.empty()) {
    status_.last_error = error;
  }
  in_error_.Set(status == "error" ? 1 : 0);
}

void SubscriptionWorker::Fail(const std::string& what) {
  Log()->error("subscription {}: {}; this subscription stops", config_.fhir_id, what);
  MutexLock lock(mu_);
  status_.fatal_error = what;
  status_.status = "off";
  stop_.store(true, std::memory_order_release);
}

void SubscriptionWorker::Pause(milliseconds d) {
  const auto deadline = Steady::now() + d;
  while (!Stopping()) {
    if (retrying_ && live_) {
      // While a notification waits for its retry the hub's events are still counted (the
      // Backport IG: a subscription in error keeps its events-since-subscription-start).
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Steady::now());
      auto next = live_->Next(std::clamp(left, milliseconds(1), milliseconds(100)));
      if (!next.ok()) {
        live_.reset();
      } else if (next.value()) {
        Status s = TakeBatch(std::move(*next.value()));
        if (!s.ok()) {
          Fail("cannot number events: " + s.ToString());
          return;
        }
      }
    } else {
      MutexLock lock(mu_);
      while (!Stopping() && replays_.empty() && Steady::now() < deadline) {
        wake_.WaitUntil(mu_, deadline);
      }
    }
    ServeReplays();
    if (Steady::now() >= deadline) {
      return;
    }
  }
}

bool SubscriptionWorker::OpenLive() {
  milliseconds backoff = config_.retry.initial_backoff;
  while (!Stopping()) {
    client::SubscriberOptions options;
    options.endpoint = hub_.endpoint;
    options.subscription = config_.id;
    options.curve = hub_.curve;
    // Enough in flight for two full notifications: the hub keeps streaming while one is sent.
    options.window = std::max<uint32_t>(2 * config_.max_events_per_notification, 100);
    options.connect_timeout = milliseconds(3000);
    if (highest_taken_ > 0) {
      options.start = v1::Subscribe::START_AT_SEQ;
      options.start_seq = highest_taken_ + 1;
    } else {
      options.start = v1::Subscribe::START_RESUME;
    }
    auto opened = client::Subscriber::Open(options);
    if (opened.ok()) {
      live_ = std::move(opened).value();
      if (!tail_loaded_) {
        // Numbers given after the hub's cursor were perhaps never delivered: those events come
        // again and keep their numbers.
        const uint64_t cursor = live_->subscribed().cursor();
        auto first = numbers_->FirstNumberAfter(cursor);
        if (!first.ok()) {
          Fail("cannot read the event-number file: " + first.status().ToString());
          return false;
        }
        for (uint64_t n = first.value(); n <= numbers_->Count(); ++n) {
          auto seq = numbers_->HubSeqOf(n);
          if (!seq.ok()) {
            Fail("cannot read the event-number file: " + seq.status().ToString());
            return false;
          }
          tail_.emplace_back(n, seq.value());
        }
        tail_loaded_ = true;
        Log()->info("subscription {}: hub cursor {}, {} numbered events to resend, next number {}",
                    config_.fhir_id, cursor, tail_.size(), numbers_->Count() + 1);
      }
      return true;
    }
    Log()->warn("subscription {}: cannot subscribe at the hub: {}", config_.fhir_id,
                opened.status().ToString());
    Pause(backoff);
    backoff = std::min(backoff * 2, config_.retry.max_backoff);
  }
  return false;
}

Status SubscriptionWorker::CountBatch(const client::DeliveryBatch& batch) {
  if (ahead_.empty()) {
    content_through_ = highest_taken_;
  }
  std::vector<uint64_t> fresh_seqs;
  auto flush_tail_below = [&](uint64_t seq) {
    while (!tail_.empty() && tail_.front().second < seq) {
      ahead_.push_back(tail_.front());
      tail_.pop_front();
    }
  };
  // New numbers are given in hub_seq order after every number in ahead_, so they are appended
  // after the loop (a tail number may come first only while it is below the fresh ones).
  for (const auto& d : batch.events) {
    const uint64_t seq = d.event().envelope().hub_seq();
    if (seq <= highest_taken_) {
      continue;
    }
    flush_tail_below(seq);
    if (!tail_.empty() && tail_.front().second == seq) {
      ahead_.push_back(tail_.front());
      tail_.pop_front();
    } else if (seq > numbers_->LastHubSeq()) {
      fresh_seqs.push_back(seq);
    }
    highest_taken_ = seq;
  }
  flush_tail_below(batch.scanned_to_seq + 1);
  if (!fresh_seqs.empty()) {
    auto first = numbers_->Append(fresh_seqs);
    if (!first.ok()) {
      return first.status();
    }
    for (size_t i = 0; i < fresh_seqs.size(); ++i) {
      ahead_.emplace_back(first.value() + i, fresh_seqs[i]);
    }
    event_number_.Set(static_cast<double>(numbers_->Count()));
  }
  highest_taken_ = std::max(highest_taken_, batch.scanned_to_seq);
  return Status::Ok();
}

void SubscriptionWorker::RefetchCounted() {
  // The counted events' content was dropped: read them again from the hub, where they keep
  // their numbers through tail_, exactly as after a restart.
  live_.reset();
  for (auto it = ahead_.rbegin(); it != ahead_.rend(); ++it) {
    tail_.push_front(*it);
  }
  ahead_.clear();
  highest_taken_ = content_through_;
}

Status SubscriptionWorker::TakeBatch(client::DeliveryBatch batch) {
  if (batch.scanned_to_seq <= highest_taken_ && batch.events.empty()) {
    return Status::Ok();
  }
  if (retrying_ || !ahead_.empty()) {
    // The endpoint is failing: keep counting (numbering) events without holding their content.
    return CountBatch(batch);
  }
  HubBatch taken;
  std::vector<v1::DeliveredEvent> fresh;
  std::vector<uint64_t> fresh_seqs;
  auto flush_tail_below = [&](uint64_t seq) {
    while (!tail_.empty() && tail_.front().second < seq) {
      taken.events.push_back({tail_.front().first, std::nullopt});
      withheld_numbers_.Inc();
      tail_.pop_front();
    }
  };
  for (auto& d : batch.events) {
    const uint64_t seq = d.event().envelope().hub_seq();
    if (seq <= highest_taken_) {
      continue;  // a redelivery of something already pending or delivered
    }
    flush_tail_below(seq);
    if (!tail_.empty() && tail_.front().second == seq) {
      taken.events.push_back({tail_.front().first, std::move(d)});
      tail_.pop_front();
    } else if (seq <= numbers_->LastHubSeq()) {
      unnumbered_skipped_.Inc();
      Log()->warn("subscription {}: hub_seq {} was not in this feed when it was numbered; skipped",
                  config_.fhir_id, seq);
    } else {
      fresh_seqs.push_back(seq);
      fresh.push_back(std::move(d));
    }
    highest_taken_ = seq;
  }
  flush_tail_below(batch.scanned_to_seq + 1);
  if (!fresh.empty()) {
    auto first = numbers_->Append(fresh_seqs);
    if (!first.ok()) {
      return first.status();
    }
    for (size_t i = 0; i < fresh.size(); ++i) {
      taken.events.push_back({first.value() + i, std::move(fresh[i])});
    }
    event_number_.Set(static_cast<double>(numbers_->Count()));
  }
  highest_taken_ = std::max(highest_taken_, batch.scanned_to_seq);
  pending_events_ += taken.events.size();
  // A hub batch larger than one notification is split: each part may be acknowledged up to its
  // last event (everything before it was examined), the last part up to scanned_to_seq.
  const size_t max = config_.max_events_per_notification;
  size_t start = 0;
  while (taken.events.size() - start > max) {
    HubBatch part;
    part.events.assign(
        std::make_move_iterator(taken.events.begin() + static_cast<long>(start)),
        std::make_move_iterator(taken.events.begin() + static_cast<long>(start + max)));
    start += max;
    // A withheld number (no event) takes the hub_seq of nothing: ack no further than before.
    part.scanned_to = 0;
    for (const NumberedEvent& e : part.events) {
      if (e.event) {
        part.scanned_to = e.event->event().envelope().hub_seq();
      }
    }
    pending_.push_back(std::move(part));
  }
  taken.events.erase(taken.events.begin(), taken.events.begin() + static_cast<long>(start));
  taken.scanned_to = batch.scanned_to_seq;
  pending_.push_back(std::move(taken));
  return Status::Ok();
}

Status SubscriptionWorker::Pull(milliseconds wait) {
  while (pending_events_ < config_.max_events_per_notification && !Stopping()) {
    auto next = live_->Next(wait);
    if (!next.ok()) {
      return next.status();
    }
    if (!next.value()) {
      return Status::Ok();  // nothing more ready now
    }
    Status s = TakeBatch(std::move(*next.value()));
    if (!s.ok()) {
      return s;
    }
    // Drain what is already there without waiting again: that is the batching.
    wait = milliseconds(1);
  }
  return Status::Ok();
}

bool SubscriptionWorker::Deliver(NotificationType type, const std::vector<NumberedEvent>& events) {
  while (!Stopping()) {
    // Rebuilt per attempt: the status it reports may have changed (active -> error).
    size_t resources = 0;
    const std::string body =
        BuildNotificationText(facts_, type, CurrentFacts(), events, config_.payload, &resources);
    const auto started = Steady::now();
    auto answer = endpoint_->Post(body);
    post_seconds_.Observe(std::chrono::duration<double>(Steady::now() - started).count());
    std::string error;
    if (!answer.ok()) {
      error = "endpoint unreachable: " + answer.status().message();
    } else if (answer.value() < 200 || answer.value() > 299) {
      error = "endpoint answered HTTP " + std::to_string(answer.value());
    }
    if (error.empty()) {
      last_sent_ = Steady::now();
      backoff_ = milliseconds(0);
      retrying_ = false;
      notifications_ok_.Inc();
      if (type == NotificationType::kHeartbeat) {
        heartbeats_.Inc();
      }
      resources_delivered_.Inc(resources);
      {
        MutexLock lock(mu_);
        status_.consecutive_failures = 0;
      }
      SetStatus("active", "");
      return true;
    }
    failures_.Inc();
    uint64_t failures = 0;
    {
      MutexLock lock(mu_);
      failures = ++status_.consecutive_failures;
      status_.last_error = error;
    }
    if (failures >= config_.retry.error_after_failures) {
      SetStatus("error", error);
    }
    retrying_ = true;
    backoff_ = backoff_.count() == 0 ? config_.retry.initial_backoff
                                     : std::min(backoff_ * 2, config_.retry.max_backoff);
    Log()->warn("subscription {}: {} notification not delivered ({}, attempt {}); retry in {} ms",
                config_.fhir_id, NotificationTypeCode(type), error, failures, backoff_.count());
    Pause(backoff_);
  }
  return false;
}

bool SubscriptionWorker::SendPending() {
  std::vector<NumberedEvent> events;
  size_t batches = 0;
  uint64_t ack_to = 0;
  for (HubBatch& b : pending_) {
    if (batches > 0 && events.size() + b.events.size() > config_.max_events_per_notification) {
      break;
    }
    // Moved, not copied: the events live in this vector until delivered (or the worker stops,
    // when they are not acknowledged and come again from the hub on the next run).
    events.insert(events.end(), std::make_move_iterator(b.events.begin()),
                  std::make_move_iterator(b.events.end()));
    ack_to = std::max(ack_to, b.scanned_to);
    ++batches;
  }
  if (!events.empty() && !Deliver(NotificationType::kEventNotification, events)) {
    return false;
  }
  pending_events_ -= events.size();
  for (size_t i = 0; i < batches; ++i) {
    pending_.pop_front();
  }
  if (!events.empty()) {
    events_delivered_.Inc(events.size());
    delivered_number_.Set(static_cast<double>(events.back().number));
    MutexLock lock(mu_);
    status_.delivered_through = events.back().number;
  }
  // The cursor moves only now that the endpoint has the events (or they were not ours). Without a
  // live session (a replay closed it) the ack is owed until the session is open again.
  ack_owed_ = std::max(ack_owed_, ack_to);
  PayAck();
  return true;
}

void SubscriptionWorker::PayAck() {
  if (live_ && ack_owed_ > 0) {
    (void)live_->Ack(ack_owed_);
    ack_owed_ = 0;
  }
}

void SubscriptionWorker::Run() {
  Log()->info("subscription {}: delivering to {} ({}, {})", config_.fhir_id, config_.endpoint.url,
              PayloadName(config_.payload),
              config_.purpose == Purpose::kSecondaryUse ? "secondary use" : "direct care");
  if (!Deliver(NotificationType::kHandshake, {})) {
    return;
  }
  while (!Stopping()) {
    ServeReplays();
    if (pending_.empty() && !ahead_.empty()) {
      RefetchCounted();
    }
    if (!live_ && !OpenLive()) {
      break;
    }
    PayAck();
    const auto since_sent = Steady::now() - last_sent_;
    const auto until_heartbeat =
        std::chrono::duration_cast<milliseconds>(config_.heartbeat_period - since_sent);
    const milliseconds wait = pending_.empty()
                                  ? std::clamp(until_heartbeat, milliseconds(1), milliseconds(100))
                                  : milliseconds(1);
    Status pulled = Pull(wait);
    if (!pulled.ok()) {
      if (pulled.code() == "io_error" || pulled.code() == "corrupt" ||
          pulled.code() == kInternalErrorCode) {
        Fail("cannot number events: " + pulled.ToString());
        break;
      }
      Log()->warn("subscription {}: hub session ended: {}; subscribing again", config_.fhir_id,
                  pulled.ToString());
      live_.reset();
      Pause(config_.retry.initial_backoff);
      continue;
    }
    if (!pending_.empty()) {
      if (!SendPending()) {
        break;
      }
      continue;
    }
    if (Steady::now() - last_sent_ >= config_.heartbeat_period) {
      if (!Deliver(NotificationType::kHeartbeat, {})) {
        break;
      }
    }
  }
  // Give the last Ack a moment to leave before the socket closes.
  if (live_) {
    (void)live_->Next(milliseconds(50));
  }
}

void SubscriptionWorker::ServeReplays() {
  while (true) {
    std::shared_ptr<ReplayRequest> request;
    {
      MutexLock lock(mu_);
      if (replays_.empty()) {
        return;
      }
      request = replays_.front();
      replays_.pop_front();
    }
    request->done.set_value(Replay(*request));
    replays_answered_.Inc();
  }
}

Result<nlohmann::json> SubscriptionWorker::Replay(const ReplayRequest& request) {
  auto first_seq = numbers_->HubSeqOf(request.from);
  auto last_seq = numbers_->HubSeqOf(request.to);
  if (!first_seq.ok() || !last_seq.ok()) {
    return !first_seq.ok() ? first_seq.status() : last_seq.status();
  }
  // One live session per subscription at the hub: a second Subscribe would supersede the live
  // one, so the live session is closed for the replay and opened again after it.
  live_.reset();
  client::SubscriberOptions options;
  options.endpoint = hub_.endpoint;
  options.subscription = config_.id;
  options.curve = hub_.curve;
  options.start = v1::Subscribe::START_AT_SEQ;
  options.start_seq = first_seq.value();
  options.window = 5000;
  options.connect_timeout = milliseconds(3000);
  auto opened = client::Subscriber::Open(options);
  if (!opened.ok()) {
    return Status::Error("hub_unreachable", opened.status().ToString());
  }
  auto& replay = *opened.value();
  std::vector<NumberedEvent> events;
  uint64_t number = request.from;
  auto skip_to = [&](uint64_t seq) -> Status {
    // Numbers whose event is not in the replay (withheld now) go out without focus.
    while (number <= request.to) {
      auto s = numbers_->HubSeqOf(number);
      if (!s.ok()) {
        return s.status();
      }
      if (s.value() >= seq) {
        break;
      }
      events.push_back({number++, std::nullopt});
    }
    return Status::Ok();
  };
  const auto deadline = Steady::now() + std::chrono::seconds(30);
  uint64_t scanned = first_seq.value() - 1;
  while (scanned < last_seq.value()) {
    if (Steady::now() > deadline) {
      return Status::Error("busy", "the hub did not replay the range within 30 s");
    }
    auto next = replay.Next(milliseconds(200));
    if (!next.ok()) {
      return Status::Error("hub_unreachable", next.status().ToString());
    }
    if (!next.value()) {
      continue;
    }
    for (auto& d : next.value()->events) {
      const uint64_t seq = d.event().envelope().hub_seq();
      if (seq > last_seq.value()) {
        break;
      }
      CAREHUB_RETURN_IF_ERROR(skip_to(seq));
      if (number > request.to) {
        break;
      }
      auto s = numbers_->HubSeqOf(number);
      if (!s.ok()) {
        return s.status();
      }
      if (s.value() == seq) {
        events.push_back({number++, std::move(d)});
      }
    }
    scanned = std::max(scanned, next.value()->scanned_to_seq);
  }
  CAREHUB_RETURN_IF_ERROR(skip_to(UINT64_MAX));
  // The replay session never acknowledges: the subscription's cursor stays where delivery put it.
  return BuildNotification(facts_, NotificationType::kQueryEvent, CurrentFacts(), events,
                           request.payload);
}

Result<nlohmann::json> SubscriptionWorker::ReplayEvents(uint64_t from, uint64_t to, Payload payload,
                                                        milliseconds timeout) {
  const uint64_t count = numbers_->Count();
  if (from == 0 || to < from || to > count) {
    return Status::Error("out_of_range", "event numbers " + std::to_string(from) + ".." +
                                             std::to_string(to) + " are not within 1.." +
                                             std::to_string(count));
  }
  if (to - from + 1 > config_.max_replay_events) {
    return Status::Error("too_many", "at most " + std::to_string(config_.max_replay_events) +
                                         " events per $events call");
  }
  auto request = std::make_shared<ReplayRequest>();
  request->from = from;
  request->to = to;
  request->payload = payload;
  auto future = request->done.get_future();
  {
    MutexLock lock(mu_);
    if (Stopping()) {
      return Status::Error("stopped", "the service is stopping");
    }
    replays_.push_back(request);
    wake_.NotifyAll();
  }
  if (future.wait_for(timeout) != std::future_status::ready) {
    return Status::Error("busy", "the subscription's worker did not get to the request in time");
  }
  return future.get();
}

}  // namespace carehub::notify
