#include "carehub/hub/subscribe_server.h"

#include <poll.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <zmq_addon.hpp>

#include "carehub/core/crash_points.h"
#include "carehub/core/event_types.h"
#include "carehub/hub/frame_decode.h"

namespace carehub::hub {
namespace {

using Steady = std::chrono::steady_clock;

std::shared_ptr<spdlog::logger> Log() { return spdlog::get("subscribe"); }

}  // namespace

struct SubscribeServer::Session {
  std::string routing_id;
  std::string identity;
  std::string subscription;
  std::string subscriber;
  uint64_t next_seq = 1;  // next hub_seq to examine
  uint64_t cursor = 0;    // acknowledged
  uint64_t credit = 0;
  Steady::time_point last_heard;
  Steady::time_point last_sent;
  Steady::time_point last_progress_sent;
  uint64_t progress_unsent_from = 0;  // scanned but not yet reported; 0 when none
  // After a refused send (the subscriber's queue is full: it does not read) the next attempt
  // waits, doubling from 50 ms to 5 s: each attempt rescans the log and audits a disclosure.
  Steady::time_point blocked_until;
  std::chrono::milliseconds blocked_backoff{0};
  std::string notice_code;
  // Route plan, recomputed when the policy or the set of known routes changes.
  const policy::PolicySet* planned_for = nullptr;
  size_t planned_route_count = 0;
  bool use_route_index = false;
  std::vector<RouteKey> routes;
  metrics::Counter* delivered_counter = nullptr;
};

SubscribeServer::SubscribeServer(zmq::context_t& context, SubscribeServerOptions options,
                                 Store* store, const PolicyHolder* policy,
                                 const std::atomic<uint64_t>* committed_seq,
                                 metrics::Registry* metrics, const Clock& clock,
                                 SubscribeAuthoriser authorise)
    : options_(std::move(options)),
      store_(store),
      policy_(policy),
      committed_seq_(committed_seq),
      metrics_(metrics),
      clock_(clock),
      authorise_(std::move(authorise)),
      socket_(context, zmq::socket_type::router),
      wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

SubscribeServer::~SubscribeServer() {
  if (wake_fd_ >= 0) {
    close(wake_fd_);
  }
}

Result<std::string> SubscribeServer::Bind() {
  try {
    socket_.set(zmq::sockopt::router_mandatory, 1);
    socket_.set(zmq::sockopt::sndhwm, 100);
    socket_.set(zmq::sockopt::maxmsgsize, int64_t{1} << 20);
    socket_.set(zmq::sockopt::linger, 0);
    if (!options_.curve_secret_key.empty()) {
      socket_.set(zmq::sockopt::curve_server, 1);
      socket_.set(zmq::sockopt::curve_secretkey, options_.curve_secret_key);
      socket_.set(zmq::sockopt::zap_domain, "carehub-subscribe");
    }
    socket_.bind(options_.endpoint);
    return socket_.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    return Status::Error("bind_failed",
                         "cannot bind subscribe endpoint " + options_.endpoint + ": " + e.what());
  }
}

void SubscribeServer::Wake() {
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
}

void SubscribeServer::SendFrame(const std::string& routing_id, const v1::Frame& frame) {
  std::string bytes = frame.SerializeAsString();
  try {
    if (socket_.send(zmq::buffer(routing_id), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      (void)socket_.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
    }
  } catch (const zmq::error_t&) {
    // The peer is gone or full; sessions notice through their own sends and timeouts.
  }
}

void SubscribeServer::SendError(const std::string& routing_id, const std::string& code,
                                const std::string& message, bool fatal) {
  v1::Frame frame;
  frame.set_version(v1::PROTOCOL_VERSION_1);
  frame.mutable_error()->set_code(code);
  frame.mutable_error()->set_message(message);
  frame.mutable_error()->set_fatal(fatal);
  SendFrame(routing_id, frame);
}

void SubscribeServer::SendNotice(const std::string& routing_id, const std::string& code,
                                 const std::string& message) {
  v1::Frame frame;
  frame.set_version(v1::PROTOCOL_VERSION_1);
  frame.mutable_notice()->set_code(code);
  frame.mutable_notice()->set_message(message);
  SendFrame(routing_id, frame);
}

void SubscribeServer::HandleSubscribe(const std::string& routing_id, const std::string& identity,
                                      const v1::Subscribe& request) {
  auto policy = policy_->Get();
  auto refuse = [&](const std::string& code, const std::string& message) {
    metrics_->GetCounter("carehub_subscriptions_refused_total",
                         "Subscribe requests refused, by reason.", {{"reason", code}})
        .Inc();
    Log()->warn("subscription '{}' refused for {}: {}", request.subscription(),
                identity.empty() ? "plain connection" : identity, code);
    v1::AuditRecord audit;
    audit.set_at_unix_ms(ToUnixMillis(clock_.Now()));
    audit.set_kind("subscription_refused");
    audit.set_subscriber(identity);
    audit.set_subscription(request.subscription());
    audit.set_detail(code + ": " + message);
    (void)store_->AppendAudit(audit);
    SendError(routing_id, code, message, true);
  };
  const policy::SubscriptionRef* sub =
      policy ? policy->FindSubscription(request.subscription()) : nullptr;
  if (!sub) {
    refuse("unknown_subscription",
           "no subscriber has a subscription named '" + request.subscription() + "'");
    return;
  }
  if (authorise_ && !authorise_(identity, sub->subscriber)) {
    refuse("not_your_subscription",
           "subscription '" + sub->id + "' belongs to another subscriber");
    return;
  }
  // One live session per subscription: a new Subscribe (e.g. after a client restart) replaces it.
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (it->second->subscription == sub->id) {
      SendError(it->first, "superseded", "another connection opened this subscription", true);
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
  uint64_t head = committed_seq_->load();
  auto stored_cursor = store_->GetCursor(sub->id);
  uint64_t first = std::max<uint64_t>(store_->FirstSeq(), 1);
  std::optional<uint64_t> resolved = ResolveSubscribeStart(
      request, SubscribeStartInputs{stored_cursor, first, head},
      [this](int64_t unix_ms) { return store_->SeqAtTime(unix_ms); });
  if (!resolved) {
    refuse("bad_request", "unknown start mode");
    return;
  }
  const uint64_t start = *resolved;
  auto session = std::make_unique<Session>();
  session->routing_id = routing_id;
  session->identity = identity;
  session->subscription = sub->id;
  session->subscriber = sub->subscriber;
  session->next_seq = start;
  session->cursor = stored_cursor.value_or(start > 0 ? start - 1 : 0);
  session->credit = AddCredit(0, request.initial_credit());
  session->last_heard = Steady::now();
  session->last_sent = Steady::now();
  session->last_progress_sent = Steady::now();
  session->delivered_counter = &metrics_->GetCounter(
      "carehub_subscription_delivered_total", "Events delivered, by subscription.",
      {{"subscription", sub->id}});

  v1::Frame reply;
  reply.set_version(v1::PROTOCOL_VERSION_1);
  auto* ok = reply.mutable_subscribed();
  ok->set_subscription(sub->id);
  ok->set_start_seq(start);
  ok->set_cursor(stored_cursor.value_or(0));
  ok->set_head_seq(head);
  for (const auto* a : policy->AgreementsFor(*sub)) {
    ok->add_agreements(a->id);
  }
  SendFrame(routing_id, reply);
  Log()->info("subscription {} opened by {} from hub_seq {} (head {})", sub->id,
              sub->subscriber, start, head);
  sessions_[routing_id] = std::move(session);
}

void SubscribeServer::HandleMessage(std::vector<zmq::message_t>& parts) {
  if (parts.size() < 2) {
    return;
  }
  std::string routing_id = parts.front().to_string();
  zmq::message_t& payload = parts.back();
  SubscribeFrameDecision decision = DecodeSubscribeFrame(payload.to_string_view());
  if (decision.action == SubscribeFrameDecision::Action::kMalformed) {
    metrics_->GetCounter("carehub_frames_rejected_total",
                         "Frames that could not be processed, by reason.",
                         {{"reason", "malformed_frame"}})
        .Inc();
    SendError(routing_id, "malformed_frame", "not a carehub.v1.Frame of protocol version 1", false);
    return;
  }
  const v1::Frame& frame = decision.frame;
  auto it = sessions_.find(routing_id);
  Session* session = it == sessions_.end() ? nullptr : it->second.get();
  if (session) {
    session->last_heard = Steady::now();
  }
  switch (decision.action) {
    case SubscribeFrameDecision::Action::kSubscribe: {
      std::string identity;
      if (!options_.curve_secret_key.empty()) {
        const char* user = payload.gets("User-Id");
        identity = user ? user : "";
      }
      HandleSubscribe(routing_id, identity, frame.subscribe());
      return;
    }
    case SubscribeFrameDecision::Action::kCredit:
      if (session) {
        session->credit = AddCredit(session->credit, frame.credit().events());
        // Credit comes as the subscriber consumes: its queue has room again.
        session->blocked_until = Steady::time_point{};
        session->blocked_backoff = std::chrono::milliseconds(0);
      }
      return;
    case SubscribeFrameDecision::Action::kAck:
      if (session) {
        // Never beyond what this session has examined: an ack cannot skip unseen events.
        if (std::optional<uint64_t> up_to =
                AdvanceCursor(frame.ack().up_to_seq(), session->next_seq, session->cursor)) {
          session->cursor = *up_to;
          CAREHUB_CRASH_POINT("cursor.before_store");
          Status s = store_->PutCursor(session->subscription, *up_to);
          CAREHUB_CRASH_POINT("cursor.after_store");
          if (!s.ok()) {
            Log()->error("cannot store cursor of {}: {}", session->subscription, s.ToString());
          }
        }
      }
      return;
    case SubscribeFrameDecision::Action::kHeartbeat:
      if (!session) {
        SendError(routing_id, "no_subscription", "send Subscribe first", false);
      }
      return;
    case SubscribeFrameDecision::Action::kMalformed:
    case SubscribeFrameDecision::Action::kUnexpectedKind:
      SendError(routing_id, "unexpected_kind",
                "the subscribe endpoint accepts Subscribe, Credit, Ack and Heartbeat", false);
      return;
  }
}

bool SubscribeServer::Serve(Session& session,
                            const std::shared_ptr<const policy::PolicySet>& policy,
                            uint64_t head) {
  const policy::SubscriptionRef* sub = policy->FindSubscription(session.subscription);
  if (!sub) {
    SendError(session.routing_id, "subscription_removed",
              "the subscription is no longer in the agreements in force", true);
    session.credit = 0;
    session.last_heard = Steady::time_point{};  // expire it now
    return false;
  }
  auto now = clock_.Now();
  auto validity = policy->ValidityNow(*sub, now);
  if (!validity.valid) {
    if (session.notice_code != validity.code) {
      session.notice_code = validity.code;
      SendNotice(session.routing_id, validity.code, validity.message);
      Log()->info("subscription {} delivers nothing: {}", session.subscription, validity.message);
    }
    return false;
  }
  session.notice_code.clear();
  if (session.credit == 0 || session.next_seq > head || Steady::now() < session.blocked_until) {
    return false;
  }

  // Plan which part of the log to read.
  const size_t route_count = store_->KnownRouteCount();
  if (session.planned_for != policy.get() || session.planned_route_count != route_count) {
    auto known = store_->KnownRoutes();
    session.routes.clear();
    for (const auto& r : known) {
      if (policy->MayReceive(*sub, r.publisher_ods, r.event_type, r.site_ods)) {
        session.routes.push_back(r);
      }
    }
    // Reading through the index pays a seek per route; worth it only for a narrow feed.
    session.use_route_index = session.routes.size() * 4 < known.size();
    session.planned_for = policy.get();
    session.planned_route_count = known.size();
  }

  const uint64_t want = std::min<uint64_t>(session.credit, options_.max_delivery_batch);
  const uint64_t from = session.next_seq;
  uint64_t scanned_to = from - 1;
  v1::Frame frame;
  frame.set_version(v1::PROTOCOL_VERSION_1);
  auto* delivery = frame.mutable_delivery();
  std::map<std::string, uint32_t> withheld;
  std::set<std::string> agreements_used;
  uint64_t delivered = 0;
  uint64_t first_delivered = 0;

  auto consider = [&](uint64_t seq, std::string_view bytes) -> bool {
    v1::Event event;
    if (!event.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      scanned_to = seq;
      return true;
    }
    auto decision = policy->Decide(*sub, event, now);
    if (decision.verdict == policy::Verdict::kDeliver) {
      policy->Redact(*decision.agreement, &event);
      auto* d = delivery->add_events();
      *d->mutable_event() = std::move(event);
      d->set_agreement_id(decision.agreement->id);
      agreements_used.insert(decision.agreement->id);
      if (first_delivered == 0) {
        first_delivered = seq;
      }
      ++delivered;
    } else if (decision.verdict == policy::Verdict::kWithheld) {
      ++withheld[std::string(decision.withheld_reason)];
    }
    scanned_to = seq;
    return delivered < want;
  };

  if (session.use_route_index) {
    const size_t per_route = options_.max_delivery_batch;
    uint64_t covered_to = head;
    std::vector<uint64_t> seqs;
    for (const auto& route : session.routes) {
      auto found = store_->ScanRoute(route, from, head, per_route);
      if (found.size() == per_route) {
        covered_to = std::min(covered_to, found.back());
      }
      seqs.insert(seqs.end(), found.begin(), found.end());
    }
    std::sort(seqs.begin(), seqs.end());
    seqs.erase(std::upper_bound(seqs.begin(), seqs.end(), covered_to), seqs.end());
    bool stopped_early = false;
    for (size_t i = 0; i < seqs.size() && !stopped_early; i += 256) {
      std::vector<uint64_t> chunk(seqs.begin() + i,
                                  seqs.begin() + std::min(seqs.size(), i + 256));
      auto values = store_->MultiGetEvents(chunk);
      for (size_t j = 0; j < chunk.size(); ++j) {
        if (!consider(chunk[j], values[j])) {
          stopped_early = true;
          break;
        }
      }
    }
    if (!stopped_early) {
      scanned_to = covered_to;
    }
  } else {
    uint64_t examined = 0;
    bool stopped_early = false;
    store_->ScanEvents(from, head, [&](uint64_t seq, std::string_view bytes) {
      ++examined;
      if (!consider(seq, bytes)) {
        stopped_early = true;
        return false;
      }
      return examined < options_.max_scan_per_round;
    });
    if (!stopped_early && examined < options_.max_scan_per_round) {
      scanned_to = head;  // nothing else stored up to head (gaps from failed commits)
    }
  }
  if (scanned_to < from) {
    return false;
  }

  uint64_t withheld_total = 0;
  for (const auto& [reason, n] : withheld) {
    withheld_total += n;
  }
  // Every disclosure is audited (DESIGN §6): who, under which agreement, which range, how many, and
  // how many were withheld and why. The record is written before the delivery leaves, so a crash
  // in between can only over-report a disclosure, never hide one.
  v1::AuditRecord audit;
  const bool audited = delivered > 0 || withheld_total > 0;
  if (audited) {
    audit.set_at_unix_ms(ToUnixMillis(now));
    audit.set_kind("delivery");
    audit.set_subscriber(session.subscriber);
    audit.set_subscription(session.subscription);
    std::string agreements;
    for (const auto& a : agreements_used) {
      agreements += (agreements.empty() ? "" : ",") + a;
    }
    audit.set_agreement(agreements);
    audit.set_from_seq(from);
    audit.set_to_seq(scanned_to);
    audit.set_delivered(static_cast<uint32_t>(delivered));
    for (const auto& [reason, n] : withheld) {
      (*audit.mutable_withheld_by_reason())[reason] = n;
    }
    Status s = store_->AppendAudit(audit);
    if (!s.ok()) {
      // No audit, no disclosure.
      Log()->error("cannot write audit record, holding delivery: {}", s.ToString());
      return false;
    }
    CAREHUB_CRASH_POINT("deliver.after_audit");
  }
  auto audit_not_sent = [&] {
    if (audited) {
      audit.set_kind("delivery_not_sent");
      audit.set_at_unix_ms(ToUnixMillis(clock_.Now()));
      (void)store_->AppendAudit(audit);
    }
  };
  auto steady_now = Steady::now();
  bool caught_up = scanned_to >= head;
  bool report = delivered > 0 || withheld_total > 0 || caught_up ||
                steady_now - session.last_progress_sent > std::chrono::milliseconds(200);
  if (report) {
    delivery->set_scanned_to_seq(scanned_to);
    delivery->set_head_seq(head);
    std::string bytes = frame.SerializeAsString();
    try {
      bool sent = socket_
                      .send(zmq::buffer(session.routing_id),
                            zmq::send_flags::sndmore | zmq::send_flags::dontwait)
                      .has_value();
      if (sent) {
        CAREHUB_CRASH_POINT("deliver.mid_send");
        sent = socket_.send(zmq::buffer(bytes), zmq::send_flags::dontwait).has_value();
      }
      if (!sent) {
        audit_not_sent();
        session.blocked_backoff = std::clamp(session.blocked_backoff * 2,
                                             std::chrono::milliseconds(50),
                                             std::chrono::milliseconds(5000));
        session.blocked_until = Steady::now() + session.blocked_backoff;
        return false;  // subscriber's pipe is full: try again later, nothing advanced
      }
      session.blocked_backoff = std::chrono::milliseconds(0);
    } catch (const zmq::error_t& e) {
      audit_not_sent();
      if (e.num() == EHOSTUNREACH) {
        session.last_heard = Steady::time_point{};  // gone: expire
      }
      return false;
    }
    session.last_sent = steady_now;
    session.last_progress_sent = steady_now;
  }
  session.next_seq = scanned_to + 1;
  session.credit -= std::min(session.credit, delivered);
  if (delivered > 0) {
    session.delivered_counter->Inc(delivered);
  }
  for (const auto& [reason, n] : withheld) {
    metrics_
        ->GetCounter("carehub_subscription_withheld_total",
                     "Events an agreement covers but withheld, by subscription and reason.",
                     {{"subscription", session.subscription}, {"reason", reason}})
        .Inc(n);
  }
  {
    std::lock_guard lock(status_mu_);
    auto& t = totals_[session.subscription];
    t.first += delivered;
    t.second += withheld_total;
  }
  return session.credit > 0 && session.next_seq <= head;
}

void SubscribeServer::RefreshStatus(const std::shared_ptr<const policy::PolicySet>& policy,
                                    uint64_t head) {
  std::vector<SubscriptionStatus> out;
  if (policy) {
    for (const auto& subscriber : policy->subscribers()) {
      for (const auto& id : subscriber.subscriptions) {
        const auto* sub = policy->FindSubscription(id);
        if (!sub) {
          continue;
        }
        SubscriptionStatus s;
        s.id = id;
        s.subscriber = subscriber.id;
        s.purpose = std::string(policy::PurposeName(sub->purpose));
        for (const auto& [rid, session] : sessions_) {
          if (session->subscription == id) {
            s.connected = true;
            s.cursor = session->cursor;
            s.notice = session->notice_code;
          }
        }
        if (!s.connected) {
          s.cursor = store_->GetCursor(id).value_or(0);
        }
        s.lag = head > s.cursor ? head - s.cursor : 0;
        metrics_
            ->GetGauge("carehub_subscription_lag_events",
                       "Durable events not yet acknowledged, by subscription.",
                       {{"subscription", id}})
            .Set(static_cast<double>(s.lag));
        metrics_
            ->GetGauge("carehub_subscription_connected", "1 when a subscriber is connected.",
                       {{"subscription", id}})
            .Set(s.connected ? 1 : 0);
        out.push_back(std::move(s));
      }
    }
  }
  metrics_->GetGauge("carehub_connected_peers", "Connected ZeroMQ peers.",
                     {{"endpoint", "subscribe"}})
      .Set(static_cast<double>(sessions_.size()));
  std::lock_guard lock(status_mu_);
  for (auto& s : out) {
    auto t = totals_.find(s.id);
    if (t != totals_.end()) {
      s.delivered = t->second.first;
      s.withheld = t->second.second;
    }
  }
  status_ = std::move(out);
}

std::vector<SubscriptionStatus> SubscribeServer::Statuses() const {
  std::lock_guard lock(status_mu_);
  return status_;
}

void SubscribeServer::Run(const std::atomic<bool>& stop) {
  pthread_setname_np(pthread_self(), "carehub-deliver");
  std::vector<zmq::message_t> parts;
  bool busy = false;
  auto last_status = Steady::now() - std::chrono::hours(1);
  while (!stop.load()) {
    zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0},
                               {nullptr, wake_fd_, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 2, busy ? std::chrono::milliseconds(0) : std::chrono::milliseconds(50));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) {
        continue;
      }
      throw;
    }
    if (items[1].revents & ZMQ_POLLIN) {
      uint64_t v;
      (void)!read(wake_fd_, &v, sizeof(v));
    }
    if (items[0].revents & ZMQ_POLLIN) {
      for (int n = 0; n < 1000; ++n) {
        parts.clear();
        auto got =
            zmq::recv_multipart(socket_, std::back_inserter(parts), zmq::recv_flags::dontwait);
        if (!got) {
          break;
        }
        HandleMessage(parts);
      }
    }
    auto policy = policy_->Get();
    uint64_t head = committed_seq_->load();
    busy = false;
    auto now = Steady::now();
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      Session& session = *it->second;
      if (now - session.last_heard > options_.subscriber_timeout) {
        // last_heard is reset to the epoch when a send found the peer gone or the subscription
        // removed; otherwise the subscriber went silent past its timeout.
        const bool expired = session.last_heard == Steady::time_point{};
        Log()->info("subscription {} dropped: {}", session.subscription,
                    expired ? std::string("the subscriber is gone")
                            : "no word from the subscriber for " +
                                  std::to_string(options_.subscriber_timeout.count()) + " ms");
        metrics_
            ->GetCounter("carehub_subscriptions_dropped_total",
                         "Subscription sessions the hub ended and freed, by reason.",
                         {{"reason", expired ? "gone" : "timeout"}})
            .Inc();
        it = sessions_.erase(it);
        continue;
      }
      if (policy && Serve(session, policy, head)) {
        busy = true;
      }
      if (now - session.last_sent > options_.heartbeat_interval) {
        v1::Frame hb;
        hb.set_version(v1::PROTOCOL_VERSION_1);
        hb.mutable_heartbeat()->set_sent_at_unix_ms(ToUnixMillis(clock_.Now()));
        hb.mutable_heartbeat()->set_head_seq(head);
        SendFrame(session.routing_id, hb);
        session.last_sent = now;
      }
      ++it;
    }
    if (now - last_status > std::chrono::seconds(1)) {
      RefreshStatus(policy, head);
      last_status = now;
    }
  }
  // Cursors are already stored on every Ack; nothing else to flush.
}

}  // namespace carehub::hub
