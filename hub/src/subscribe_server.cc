#include "subscribe_server.h"

#include <poll.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>
#include <tuple>
#include <zmq_addon.hpp>

#include "carehub/client/connection_watch.h"
#include "carehub/core/crash_points.h"
#include "carehub/core/event_types.h"
#include "carehub/core/log.h"
#include "carehub/hub/frame_decode.h"
#include "carehub/hub/store/thread_setup.h"
#include "subscribe/disclosure.h"
#include "subscribe/log_reader.h"
#include "subscribe/session.h"
#include "subscribe/shared_scan.h"
#include "zap_handler.h"

namespace carehub::hub {
namespace {

using Steady = std::chrono::steady_clock;

std::shared_ptr<spdlog::logger> Log() { return Logger("subscribe"); }

// Every reason is created at start (at 0), so dashboards and alerts see a series from the first
// scrape and rate()/increase() count the first drop; a series born at 1 hides it.
constexpr const char* kDroppedReasons[] = {"timeout", "gone"};
// Delivery rounds held back because the subscriber's queue was full (it does not read): the batch
// is neither audited nor sent, and is read again after a back-off.
metrics::Counter& HeldCounter(metrics::Registry& metrics) {
  return metrics.GetCounter("carehub_subscription_deliveries_held_total",
                            "Delivery rounds held because the subscriber's queue was full.",
                            {{"reason", "peer_full"}});
}
metrics::Counter& ReadErrorCounter(metrics::Registry& metrics) {
  return metrics.GetCounter("carehub_store_read_errors_total",
                            "Reads of the store that failed, by data path.",
                            {{"path", "delivery"}});
}
// How much parsing the delivery path does: with sessions reading together (shared_scan.h) an event
// is parsed about once whatever the number of subscriptions at the head.
metrics::Counter& ParsesCounter(metrics::Registry& metrics) {
  return metrics.GetCounter("carehub_delivery_event_parses_total",
                            "Stored events the delivery thread parsed, for all sessions.");
}
// Batches decided, redacted and encoded once for several sessions: each session of one view (the
// same agreements) that read the range another had read in the same round took that one's batch.
metrics::Counter& SharedBatchCounter(metrics::Registry& metrics) {
  return metrics.GetCounter(
      "carehub_delivery_batches_shared_total",
      "Delivery batches a session took by reference from another session of the same view.");
}
// A ZeroMQ message over `bytes` without copying them: ZeroMQ holds a reference until its I/O
// thread has written them, so one encoded frame can go to several sessions.
zmq::message_t SharedMessage(const std::shared_ptr<const std::string>& bytes) {
  auto* held = new std::shared_ptr<const std::string>(bytes);
  return zmq::message_t(
      const_cast<char*>((*held)->data()), (*held)->size(),
      [](void*, void* hint) { delete static_cast<std::shared_ptr<const std::string>*>(hint); },
      held);
}
// Time a round waits for its audit records to be durable before sending (DeliverRound): with
// durability fsync, the delivery thread's idle time under load.
metrics::Histogram& SyncWaitHistogram(metrics::Registry& metrics) {
  return metrics.GetHistogram("carehub_delivery_audit_sync_wait_seconds",
                              "Time a delivery round waited for its audit records to be durable.",
                              metrics::LatencyBuckets());
}
metrics::Counter& DroppedCounter(metrics::Registry& metrics, const std::string& reason) {
  return metrics.GetCounter("carehub_subscriptions_dropped_total",
                            "Subscription sessions the hub ended and freed, by reason.",
                            {{"reason", reason}});
}

}  // namespace

struct SubscribeServer::Outgoing {
  Session* session;  // in sessions_: none is erased between ServeRound and DeliverRound
  AuditedBatch disclosure;
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
      context_(context),
      socket_(context, zmq::socket_type::router),
      wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
      decoded_(options_.decode_cache_events) {
  for (const char* reason : kDroppedReasons) {
    (void)DroppedCounter(*metrics_, reason);
  }
  (void)HeldCounter(*metrics_);
  (void)ParsesCounter(*metrics_);
  (void)SharedBatchCounter(*metrics_);
  (void)SyncWaitHistogram(*metrics_);
}

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
    MakeCurveServer(socket_, options_.curve_secret_key, kSubscribeZapDomain);
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
    if (socket_.send(zmq::buffer(routing_id),
                     zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
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

void SubscribeServer::RefuseSubscribe(const std::string& routing_id, const std::string& identity,
                                      const std::string& subscription, const std::string& code,
                                      const std::string& message) {
  metrics_
      ->GetCounter("carehub_subscriptions_refused_total", "Subscribe requests refused, by reason.",
                   {{"reason", code}})
      .Inc();
  Log()->warn("subscription '{}' refused for {}: {}", subscription,
              identity.empty() ? "plain connection" : identity, code);
  v1::AuditRecord audit;
  audit.set_at_unix_ms(ToUnixMillis(clock_.Now()));
  audit.set_kind("subscription_refused");
  audit.set_subscriber(identity);
  audit.set_subscription(subscription);
  audit.set_detail(code + ": " + message);
  (void)store_->audit().Append(audit);
  SendError(routing_id, code, message, true);
}

Result<SubscribeServer::StartPoint> SubscribeServer::ResolveStart(
    const v1::Subscribe& request, const policy::SubscriptionRef& sub, uint64_t head) {
  auto cursor_read = store_->cursors().Get(sub.id);
  auto first_read = store_->events().FirstSeq();
  Result<uint64_t> at_time = uint64_t{0};
  if (request.start() == v1::Subscribe::START_AT_TIME) {
    at_time = store_->events().SeqAtTime(request.time_unix_ms());
  }
  for (const Status* s : {&cursor_read.status(), &first_read.status(), &at_time.status()}) {
    if (!s->ok()) {
      return *s;  // not "no cursor": a session started from a wrong position would skip events
    }
  }
  StartPoint point;
  point.stored_cursor = cursor_read.value();
  const uint64_t first = std::max<uint64_t>(first_read.value(), 1);
  std::optional<uint64_t> resolved =
      ResolveSubscribeStart(request, SubscribeStartInputs{point.stored_cursor, first, head},
                            [&](int64_t) { return at_time.value(); });
  if (!resolved) {
    return Status::Error("bad_request", "unknown start mode");
  }
  point.start = *resolved;
  return point;
}

void SubscribeServer::HandleSubscribe(const std::string& routing_id, const std::string& identity,
                                      const v1::Subscribe& request) {
  auto policy = policy_->Get();
  const policy::SubscriptionRef* sub =
      policy ? policy->FindSubscription(request.subscription()) : nullptr;
  if (!sub) {
    RefuseSubscribe(routing_id, identity, request.subscription(), "unknown_subscription",
                    "no subscriber has a subscription named '" + request.subscription() + "'");
    return;
  }
  if (authorise_ && !authorise_(identity, sub->subscriber)) {
    RefuseSubscribe(routing_id, identity, request.subscription(), "not_your_subscription",
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
  const uint64_t head = committed_seq_->load();
  auto point = ResolveStart(request, *sub, head);
  if (!point.ok()) {
    const bool store_failed = point.status().code() != "bad_request";
    if (store_failed) {
      Log()->error("cannot open subscription {}: {}", sub->id, point.status().ToString());
    }
    RefuseSubscribe(
        routing_id, identity, request.subscription(),
        store_failed ? "store_unavailable" : point.status().code(),
        store_failed ? "the hub cannot read its store; try again" : point.status().message());
    return;
  }
  const uint64_t start = point.value().start;
  const std::optional<uint64_t> stored_cursor = point.value().stored_cursor;
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
  session->delivered_counter =
      &metrics_->GetCounter("carehub_subscription_delivered_total",
                            "Events delivered, by subscription.", {{"subscription", sub->id}});

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
  Log()->info("subscription {} opened by {} from hub_seq {} (head {})", sub->id, sub->subscriber,
              start, head);
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
    metrics_
        ->GetCounter("carehub_frames_rejected_total",
                     "Frames that could not be processed, by reason.",
                     {{"reason", "malformed_frame"}})
        .Inc();
    SendError(routing_id, "malformed_frame", "not a carehub.v1.Frame of protocol version 1", false);
    return;
  }
  const v1::Frame& frame = decision.frame;
  if (options_.key_use != nullptr && !options_.curve_secret_key.empty()) {
    const char* user = payload.gets("User-Id");
    const char* key = payload.gets(kKeyProperty);
    options_.key_use->NoteMessage(user ? user : "", key ? key : "");
  }
  auto it = sessions_.find(routing_id);
  Session* session = it == sessions_.end() ? nullptr : it->second.get();
  if (session) {
    session->last_heard = Steady::now();
  }
  using Action = SubscribeFrameDecision::Action;
  const bool needs_session = decision.action == Action::kCredit ||
                             decision.action == Action::kAck ||
                             decision.action == Action::kHeartbeat;
  if (needs_session && !session) {
    // As docs/protocol.md says: the client learns its session is gone (e.g. the hub restarted)
    // and subscribes again, instead of crediting or acknowledging into the void.
    SendError(routing_id, "no_subscription", "send Subscribe first", false);
    return;
  }
  switch (decision.action) {
    case Action::kSubscribe: {
      std::string identity;
      if (!options_.curve_secret_key.empty()) {
        const char* user = payload.gets("User-Id");
        identity = user ? user : "";
      }
      HandleSubscribe(routing_id, identity, frame.subscribe());
      return;
    }
    case Action::kCredit:
      session->OnCredit(frame.credit().events());
      return;
    case Action::kAck:
      if (std::optional<uint64_t> up_to = session->OnAck(frame.ack().up_to_seq())) {
        CAREHUB_CRASH_POINT("cursor.before_store");
        Status s = store_->cursors().Put(session->subscription, *up_to);
        CAREHUB_CRASH_POINT("cursor.after_store");
        if (!s.ok()) {
          Log()->error("cannot store cursor of {}: {}", session->subscription, s.ToString());
        }
      }
      return;
    case Action::kHeartbeat:
      return;  // last_heard is all it moves
    case Action::kMalformed:
    case Action::kUnexpectedKind:
      SendError(routing_id, "unexpected_kind",
                "the subscribe endpoint accepts Subscribe, Credit, Ack and Heartbeat", false);
      return;
  }
}

const policy::SubscriptionRef* SubscribeServer::CheckEntitled(Session& session,
                                                              const policy::PolicySet& policy,
                                                              Clock::TimePoint now) {
  const policy::SubscriptionRef* sub = policy.FindSubscription(session.subscription);
  if (!sub) {
    SendError(session.routing_id, "subscription_removed",
              "the subscription is no longer in the agreements in force", true);
    session.Expire();
    return nullptr;
  }
  // The identity that opened the session may have been removed (or no longer hold this
  // subscriber) since: access ends with the grant, on open connections too.
  if (authorise_ && !authorise_(session.identity, sub->subscriber)) {
    Log()->warn("subscription {} ended: identity {} may no longer receive it", session.subscription,
                session.identity);
    v1::AuditRecord audit;
    audit.set_at_unix_ms(ToUnixMillis(now));
    audit.set_kind("subscription_ended");
    audit.set_subscriber(session.identity);
    audit.set_subscription(session.subscription);
    audit.set_detail("identity_removed: the identity no longer holds this subscription");
    (void)store_->audit().Append(audit);
    SendError(session.routing_id, "identity_removed",
              "this connection's identity may no longer receive subscription '" + sub->id + "'",
              true);
    session.Expire();
    return nullptr;
  }
  auto validity = policy.ValidityNow(*sub, now);
  if (!validity.valid) {
    if (session.notice_code != validity.code) {
      session.notice_code = validity.code;
      SendNotice(session.routing_id, validity.code, validity.message);
      Log()->info("subscription {} delivers nothing: {}", session.subscription, validity.message);
    }
    return nullptr;
  }
  session.notice_code.clear();
  return sub;
}

// One session's part of a delivery round, from its read to its audit.
struct SubscribeServer::RoundRead {
  Session* session;
  uint64_t from;  // the first seq it reads
  uint64_t room;  // the most events its batch may take: min(credit, max_delivery_batch)
  DeliveryBatch batch;
  bool capped;  // the batch is limited by max_delivery_batch, not by the session's credit
  std::optional<uint32_t> view;        // policy::PolicySet::ViewOf its subscription
  std::optional<uint64_t> scanned_to;  // set once read; empty after a failed read
  Status read_error = Status::Ok();    // why the read failed
  // Another session's read of the same view and range, whose batch this one takes (no read).
  const RoundRead* shares = nullptr;
};

// One delivery round of every session, up to the audit: store -> match -> redact -> audit. What is
// to be sent waits in outgoing_ for DeliverRound.
void SubscribeServer::ServeRound(const std::shared_ptr<const policy::PolicySet>& policy,
                                 uint64_t head) {
  const auto now = clock_.Now();
  // Every disclosure is filed under the patients it concerns; without the index's key none may
  // leave (the primary creates it at start, so this is a store read error).
  std::optional<Result<PatientHasher>> patients;
  std::vector<RoundRead> reads;
  for (auto& [routing_id, s] : sessions_) {
    Session& session = *s;
    const policy::SubscriptionRef* sub = CheckEntitled(session, *policy, now);
    if (!sub || !session.WantsEvents(head)) {
      continue;
    }
    if (!patients) {
      patients = store_->disclosures().Hasher();
    }
    if (!patients->ok()) {
      Log()->error("cannot file disclosures, holding delivery of {}: {}", session.subscription,
                   patients->status().ToString());
      session.BackOff();
      continue;
    }
    UpdateReadPlan(&session.plan, *policy, *sub, store_->routes());
    const uint64_t cap = options_.max_delivery_batch;
    const uint64_t room = std::min<uint64_t>(session.credit, cap);
    reads.push_back({&session, session.next_seq, room,
                     DeliveryBatch(*policy, *sub, patients->value(), now, room),
                     session.credit >= cap, policy->ViewOf(*sub), std::nullopt});
  }
  // Sessions of one view about to read the same range with the same room would decide, redact and
  // encode the same batch: the first reads, the others take its batch (disclosure.h, ShareFrom).
  std::map<std::tuple<uint32_t, uint64_t, uint64_t, bool>, const RoundRead*> first_of_range;
  for (auto& read : reads) {
    if (read.view) {
      const auto [first, inserted] = first_of_range.try_emplace(
          {*read.view, read.from, read.room, read.session->plan.use_route_index}, &read);
      if (!inserted) {
        read.shares = first->second;
      }
    }
  }
  // store -> match -> redact. Sessions scanning the log from positions less than a batch apart
  // share one read (subscribe/shared_scan.h); a narrow session (route index) near such a group
  // joins it too: its events are already being read and parsed there, and deciding the others is
  // cheaper than reading and parsing its own again (callgrind: narrow readers alone were 28% of
  // the delivery thread for a sixth of its deliveries). Any other session reads alone.
  std::vector<RoundRead*> scanners, narrow;
  for (auto& read : reads) {
    if (read.shares == nullptr) {
      (read.session->plan.use_route_index ? narrow : scanners).push_back(&read);
    }
  }
  const auto by_from = [](const RoundRead* a, const RoundRead* b) { return a->from < b->from; };
  std::sort(scanners.begin(), scanners.end(), by_from);
  std::sort(narrow.begin(), narrow.end(), by_from);
  std::vector<bool> narrow_joined(narrow.size(), false);
  for (size_t first = 0; first < scanners.size();) {
    // Within a batch of the lowest, and never past what the group's scan reaches.
    const uint64_t window_end =
        scanners[first]->from + std::min(options_.max_delivery_batch, options_.max_scan_per_round);
    std::vector<RoundRead*> group;
    size_t end = first;
    for (; end < scanners.size() && scanners[end]->from < window_end; ++end) {
      group.push_back(scanners[end]);
    }
    for (size_t i = 0; i < narrow.size(); ++i) {
      if (!narrow_joined[i] && narrow[i]->from >= scanners[first]->from &&
          narrow[i]->from < window_end) {
        narrow_joined[i] = true;
        group.push_back(narrow[i]);
      }
    }
    if (group.size() == 1) {
      ReadAlone(*group.front(), head);
    } else {
      std::sort(group.begin(), group.end(), by_from);
      ReadTogether(group, head);
    }
    first = end;
  }
  for (size_t i = 0; i < narrow.size(); ++i) {
    if (!narrow_joined[i]) {
      ReadAlone(*narrow[i], head);
    }
  }
  for (auto& read : reads) {
    if (read.shares != nullptr) {
      TakeSharedRead(read);
    }
  }
  // audit
  for (auto& read : reads) {
    if (read.scanned_to) {
      AuditRead(read, head);
    }
  }
}

void SubscribeServer::ReadAlone(RoundRead& read, uint64_t head) {
  auto scanned = ReadLog(read.session->plan, *store_, read.from, head, options_.max_scan_per_round,
                         [&](uint64_t seq, std::string_view bytes) {
                           const DecodedEvent* event = decoded_.Decode(seq, bytes);
                           return event == nullptr || read.batch.Consider(*event);
                         });
  if (!scanned.ok()) {
    read.read_error = scanned.status();
    OnReadFailed(*read.session, read.read_error);
    return;  // nothing advanced: the next round reads from the same position
  }
  read.scanned_to = scanned.value();
}

void SubscribeServer::TakeSharedRead(RoundRead& read) {
  const RoundRead& decided = *read.shares;
  if (!decided.scanned_to) {
    OnReadFailed(*read.session, decided.read_error);  // nothing advanced, as for its own read
    return;
  }
  read.batch.ShareFrom(decided.batch);
  read.scanned_to = decided.scanned_to;
  SharedBatchCounter(*metrics_).Inc();
}

void SubscribeServer::ReadTogether(const std::vector<RoundRead*>& group, uint64_t head) {
  std::vector<ScanMember> members;
  members.reserve(group.size());
  for (RoundRead* read : group) {
    members.push_back({read->from,
                       [read](const DecodedEvent& event) { return read->batch.Consider(event); },
                       read->capped, 0});
  }
  Status s = ScanTogether(*store_, decoded_, members, head, options_.max_scan_per_round);
  for (size_t i = 0; i < group.size(); ++i) {
    if (!s.ok()) {
      group[i]->read_error = s;
      OnReadFailed(*group[i]->session, s);  // nothing advanced, as for a read alone
    } else {
      group[i]->scanned_to = members[i].scanned_to;
    }
  }
}

// A session's read, once decided and redacted: reported (or not), probed, audited, queued.
void SubscribeServer::AuditRead(RoundRead& read, uint64_t head) {
  Session& session = *read.session;
  const uint64_t from = read.from;
  const uint64_t scanned_to = *read.scanned_to;
  DeliveryBatch& batch = read.batch;
  if (scanned_to < from) {
    return;
  }
  // Progress alone (nothing delivered or withheld) is reported when caught up or every 200 ms, so
  // the subscriber's view of the head keeps moving without a frame per round.
  const bool report = batch.discloses() || scanned_to >= head ||
                      Steady::now() - session.last_progress_sent > std::chrono::milliseconds(200);
  if (!report) {
    Advance(session, scanned_to, batch.delivered(), batch.withheld());
    return;
  }
  // Probe before the audit: a subscriber that has gone (or stopped reading) gets no "delivery"
  // record for a batch that could never be sent; it used to get one, then "delivery_not_sent".
  // The heartbeat is harmless to a live subscriber. A peer can still go in the moment between
  // this probe and the send after the WAL sync; RecordNotSent covers that rare case.
  if (batch.discloses()) {
    const SendOutcome probe = SendHeartbeat(session, head);
    if (probe == SendOutcome::kPeerGone) {
      return;  // expired: dropped as "gone" in this loop
    }
    if (probe == SendOutcome::kPeerFull) {
      HeldCounter(*metrics_).Inc();
      session.BackOff();
      return;  // nothing advanced; the batch is read again later
    }
  }
  auto audited = AuditDisclosure(
      std::move(batch),
      {session.subscriber, session.subscription, from, scanned_to, head, options_.epoch}, *store_,
      clock_, &audit_writes_);
  if (!audited.ok()) {
    Log()->error("cannot write audit record, holding delivery of {}: {}", session.subscription,
                 audited.status().ToString());
    session.BackOff();
    return;
  }
  outgoing_.push_back({&session, std::move(audited).value()});
}

// deliver, for every session served this round: once the round's audit records are durable (one
// WAL sync covers them all, the group commit's when one is running), each frame is sent.
bool SubscribeServer::DeliverRound() {
  if (outgoing_.empty()) {
    return false;
  }
  Status durable = Status::Ok();
  const bool any_audited = std::any_of(outgoing_.begin(), outgoing_.end(),
                                       [](const Outgoing& o) { return o.disclosure.audited(); });
  if (any_audited && options_.request_wal_sync) {
    const auto wait_start = Steady::now();
    const uint64_t ticket = store_->WalSyncTicket();
    options_.request_wal_sync();
    // Bounded by the heartbeat interval, so that a stuck disk cannot silence the heartbeats.
    durable = store_->WaitWalSynced(ticket, options_.heartbeat_interval);
    SyncWaitHistogram(*metrics_).Observe(
        std::chrono::duration<double>(Steady::now() - wait_start).count());
  }
  if (any_audited && durable.ok() && options_.wait_replicated) {
    durable = options_.wait_replicated(store_->changes().Position());
  }
  bool busy = false;
  for (auto& out : outgoing_) {
    Session& session = *out.session;
    SendOutcome outcome = SendOutcome::kAuditFailed;
    if (durable.ok() || !out.disclosure.audited()) {
      outcome = SendDisclosure(out.disclosure, *store_, clock_,
                               [&](const std::shared_ptr<const std::string>& frame) {
                                 return SendBytes(session.routing_id, SharedMessage(frame));
                               });
    } else {
      RecordNotSent(out.disclosure, *store_, clock_);
    }
    const auto steady_now = Steady::now();
    switch (outcome) {
      case SendOutcome::kSent:
        session.blocked_backoff = std::chrono::milliseconds(0);
        session.last_sent = steady_now;
        session.last_progress_sent = steady_now;
        break;
      case SendOutcome::kAuditFailed:
        Log()->error("audit record not durable, holding delivery of {}: {}", session.subscription,
                     durable.ToString());
        session.BackOff();
        continue;
      case SendOutcome::kPeerFull:
        session.BackOff();
        continue;  // subscriber's pipe is full: try again later, nothing advanced
      case SendOutcome::kPeerGone:
        session.Expire();
        continue;
    }
    const auto& batch = out.disclosure.batch();
    Advance(session, out.disclosure.target().scanned_to, batch.delivered(), batch.withheld());
    busy = busy || (session.credit > 0 && session.next_seq <= out.disclosure.target().head);
  }
  outgoing_.clear();
  return busy;
}

void SubscribeServer::Advance(Session& session, uint64_t scanned_to, uint64_t delivered,
                              const std::map<std::string, uint32_t>& withheld) {
  session.next_seq = scanned_to + 1;
  session.credit -= std::min(session.credit, delivered);
  CountDelivery(session, delivered, withheld);
}

SendOutcome SubscribeServer::SendBytes(const std::string& routing_id, zmq::message_t body) {
  try {
    if (!socket_.send(zmq::buffer(routing_id),
                      zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      return SendOutcome::kPeerFull;
    }
    CAREHUB_CRASH_POINT("deliver.mid_send");
    if (!socket_.send(body, zmq::send_flags::dontwait)) {
      return SendOutcome::kPeerFull;
    }
    return SendOutcome::kSent;
  } catch (const zmq::error_t& e) {
    // ROUTER_MANDATORY: an unknown routing id means the peer has gone.
    return e.num() == EHOSTUNREACH ? SendOutcome::kPeerGone : SendOutcome::kPeerFull;
  }
}

void SubscribeServer::OnReadFailed(Session& session, const Status& status) {
  ReadErrorCounter(*metrics_).Inc();
  Log()->error("subscription {}: cannot read the store from hub_seq {} ({}); retrying from there",
               session.subscription, session.next_seq, status.ToString());
  session.BackOff();
}

void SubscribeServer::CountDelivery(const Session& session, uint64_t delivered,
                                    const std::map<std::string, uint32_t>& withheld) {
  if (delivered > 0) {
    session.delivered_counter->Inc(delivered);
  }
  uint64_t withheld_total = 0;
  for (const auto& [reason, n] : withheld) {
    withheld_total += n;
    metrics_
        ->GetCounter("carehub_subscription_withheld_total",
                     "Events an agreement covers but withheld, by subscription and reason.",
                     {{"subscription", session.subscription}, {"reason", reason}})
        .Inc(n);
  }
  MutexLock lock(status_mu_);
  auto& t = totals_[session.subscription];
  t.first += delivered;
  t.second += withheld_total;
}

void SubscribeServer::SendHeartbeatIfDue(Session& session, uint64_t head) {
  if (Steady::now() - session.last_sent <= options_.heartbeat_interval) {
    return;
  }
  (void)SendHeartbeat(session, head);
}

SendOutcome SubscribeServer::SendHeartbeat(Session& session, uint64_t head) {
  v1::Frame hb;
  hb.set_version(v1::PROTOCOL_VERSION_1);
  hb.mutable_heartbeat()->set_sent_at_unix_ms(ToUnixMillis(clock_.Now()));
  hb.mutable_heartbeat()->set_head_seq(head);
  const SendOutcome outcome = SendBytes(session.routing_id, zmq::message_t(hb.SerializeAsString()));
  if (outcome == SendOutcome::kPeerGone) {
    session.Expire();
  } else if (outcome == SendOutcome::kSent) {
    session.last_sent = Steady::now();
  }
  return outcome;
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
          // The status page's view only: an unreadable cursor shows as 0 (the read error is the
          // store's, and shows in its health).
          auto stored = store_->cursors().Get(id);
          s.cursor = stored.ok() && stored.value() ? *stored.value() : 0;
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
  metrics_
      ->GetGauge("carehub_connected_peers", "Connected ZeroMQ peers.", {{"endpoint", "subscribe"}})
      .Set(static_cast<double>(sessions_.size()));
  MutexLock lock(status_mu_);
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
  MutexLock lock(status_mu_);
  return status_;
}

void SubscribeServer::Run(const std::atomic<bool>& stop) {
  pthread_setname_np(pthread_self(), "carehub-deliver");
  PrepareStoreThread();
  std::vector<zmq::message_t> parts;
  bool busy = false;
  auto last_status = Steady::now() - std::chrono::hours(1);
  // A subscriber's connection that closes (the process exited) is seen here at once; every session
  // is then probed with a heartbeat, and the one whose peer has gone is dropped as "gone" within
  // a loop, instead of showing "connected" until subscriber_timeout_ms. Declared after socket_
  // exists and destroyed (end of Run) before it closes, as ConnectionWatch requires.
  client::ConnectionWatch disconnects(context_, socket_, options_.endpoint);
  uint64_t disconnects_seen = 0;
  uint64_t parses_counted = 0;
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
    disconnects.Poll();
    if (disconnects.disconnects() != disconnects_seen) {
      disconnects_seen = disconnects.disconnects();
      for (auto& [id, session] : sessions_) {
        (void)SendHeartbeat(*session, head);
      }
    }
    busy = false;
    auto now = Steady::now();
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      Session& session = *it->second;
      if (now - session.last_heard > options_.subscriber_timeout) {
        // last_heard is reset to the epoch when a send found the peer gone or the subscription
        // removed; otherwise the subscriber went silent past its timeout.
        const bool expired = session.expired();
        Log()->info("subscription {} dropped: {}", session.subscription,
                    expired ? std::string("the subscriber is gone")
                            : "no word from the subscriber for " +
                                  std::to_string(options_.subscriber_timeout.count()) + " ms");
        DroppedCounter(*metrics_, expired ? "gone" : "timeout").Inc();
        it = sessions_.erase(it);
        continue;
      }
      ++it;
    }
    if (policy) {
      ServeRound(policy, head);
      ParsesCounter(*metrics_).Inc(decoded_.parses() - parses_counted);
      parses_counted = decoded_.parses();
    }
    for (auto& [id, session] : sessions_) {
      SendHeartbeatIfDue(*session, head);
    }
    busy = DeliverRound();
    if (now - last_status > std::chrono::seconds(1)) {
      RefreshStatus(policy, head);
      last_status = now;
    }
  }
  // Cursors are already stored on every Ack; nothing else to flush.
}

}  // namespace carehub::hub
