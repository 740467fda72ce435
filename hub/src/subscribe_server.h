#pragma once
// The subscribe endpoint (DESIGN §6): a ZeroMQ ROUTER serving one subscription per subscriber
// connection. Reads the event log from the store (never from ingest's memory), so a slow or stalled
// subscriber costs ingest nothing and catches up from disk; only events up to the committed
// (durable) hub_seq are ever delivered.
//
// The delivery path, per round, for every session (ServeRound):
//
//   store -> match -> redact -> audit -> deliver
//
// take the policy snapshot in force and check each session is still entitled; read the next range
// of the log each subscription may cover (src/subscribe/log_reader.h: route index or log scan;
// sessions scanning the log from positions less than a batch apart share one read,
// src/subscribe/shared_scan.h), each event parsed once for all the sessions that read it
// (src/subscribe/decode_cache.h); decide each event and redact what is delivered
// (src/subscribe/disclosure.h: DeliveryBatch); write the audit record (AuditDisclosure). Then, for
// every session of the round at once (DeliverRound): wait until those audit records are durable
// (one WAL sync, riding the group commit's), and send each session one Delivery within its credit
// (SendDisclosure: no audit, no disclosure). The protocol's session state machine is
// src/subscribe/session.h.
//
// Errors: a failed read of the store stops that session's round, is counted and logged, and the
// next round reads again from the same position (with backoff); nothing is skipped.
//
// Run() blocks on the calling thread until `stop` is set; Wake() and Statuses() may be called from
// any thread. `store`, `policy`, `committed_seq` and `metrics` are not owned and must outlive the
// server.

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "carehub/core/clock.h"
#include "carehub/core/mutex.h"
#include "carehub/hub/store.h"
#include "carehub/metrics/registry.h"
#include "carehub/v1/wire.pb.h"
#include "key_use.h"
#include "policy_holder.h"
#include "subscribe/decode_cache.h"

namespace carehub::hub {

struct Session;
enum class SendOutcome;

struct SubscribeServerOptions {
  std::string endpoint;
  std::string curve_secret_key;  // empty: plain
  std::chrono::milliseconds heartbeat_interval{2000};
  std::chrono::milliseconds subscriber_timeout{30'000};
  uint32_t max_delivery_batch = 1000;
  // Events examined per session per round before yielding to other sessions.
  uint32_t max_scan_per_round = 20'000;
  // Events kept decoded for the other sessions that read them soon after (decode_cache.h): enough
  // for what live sessions read in a round at the head. Not more: in a backlog the sessions are
  // far apart, nothing is shared, and 32k slots (~2 KB each, cold in the CPU's caches) doubled
  // the delivery thread's CPU per delivery (fan-out bench).
  uint32_t decode_cache_events = 128;
  // durability: fsync — a batch leaves only once its audit record is durable: the server asks for
  // a WAL sync through this hook (GroupCommitter::RequestWalSync, which rides the next group
  // commit) and waits for it. Empty (durability: os): the record is written before the send and
  // reaches the disk with the next sync, as the events do.
  std::function<void()> request_wal_sync;
  // Replication (docs/replication.md): a batch leaves only once its audit record is on the
  // synchronous standby too; called with the store's position after the round's audit writes.
  // An error holds the round (delivery_not_sent), as a failed sync does. Empty without one.
  std::function<Status(uint64_t position)> wait_replicated;
  // Stamped on every delivery (docs/replication.md, fencing).
  uint64_t epoch = 0;
  // CURVE: records each message's identity and key (key_use.h); not owned; may be null.
  KeyUseTracker* key_use = nullptr;
};

// Decides whether an authenticated identity may open a subscriber's subscriptions. Empty identity
// means a plain (loopback-only) connection.
using SubscribeAuthoriser =
    std::function<bool(std::string_view identity, std::string_view subscriber)>;

struct SubscriptionStatus {
  std::string id;
  std::string subscriber;
  std::string purpose;
  bool connected = false;
  uint64_t cursor = 0;
  uint64_t lag = 0;  // committed head minus cursor
  uint64_t delivered = 0;
  uint64_t withheld = 0;
  std::string notice;  // why nothing is delivered, when that is the case
};

class SubscribeServer {
 public:
  SubscribeServer(zmq::context_t& context, SubscribeServerOptions options, Store* store,
                  const PolicyHolder* policy, const std::atomic<uint64_t>* committed_seq,
                  metrics::Registry* metrics, const Clock& clock, SubscribeAuthoriser authorise);
  ~SubscribeServer();

  Result<std::string> Bind();
  void Run(const std::atomic<bool>& stop);
  // Called from any thread when new events are durable.
  void Wake();

  // Every subscription of the policy in force, connected or not. Thread-safe.
  std::vector<SubscriptionStatus> Statuses() const;

 private:
  void HandleMessage(std::vector<zmq::message_t>& parts);
  void HandleSubscribe(const std::string& routing_id, const std::string& identity,
                       const v1::Subscribe& request);
  void RefuseSubscribe(const std::string& routing_id, const std::string& identity,
                       const std::string& subscription, const std::string& code,
                       const std::string& message);
  // Where a new session starts, from the request's start mode and the stored cursor. Fails when
  // the store cannot be read ("store_*") or the mode is unknown ("bad_request").
  struct StartPoint {
    uint64_t start = 1;
    std::optional<uint64_t> stored_cursor;
  };
  Result<StartPoint> ResolveStart(const v1::Subscribe& request, const policy::SubscriptionRef& sub,
                                  uint64_t head);
  // Every session's round up to its audit record; what is to be sent goes to outgoing_.
  struct RoundRead;
  void ServeRound(const std::shared_ptr<const policy::PolicySet>& policy, uint64_t head);
  // store -> match -> redact, for one session through its ReadPlan...
  void ReadAlone(RoundRead& read, uint64_t head);
  // ...or for log-scanning sessions a batch apart or less, through one read (shared_scan.h)...
  void ReadTogether(const std::vector<RoundRead*>& group, uint64_t head);
  // ...or, for a session of the same view and range as another, by taking that one's batch.
  void TakeSharedRead(RoundRead& read);
  // audit: what a read decided, reported (or not), probed and audited into outgoing_.
  void AuditRead(RoundRead& read, uint64_t head);
  // Sends this round's outgoing_ once their audit records are durable. True when a session has
  // more to send right away.
  bool DeliverRound();
  // The session examined up to `scanned_to`: moves it on and counts.
  void Advance(Session& session, uint64_t scanned_to, uint64_t delivered,
               const std::map<std::string, uint32_t>& withheld);
  // The subscription a session serves, if it may still receive anything now: the subscription is
  // in the policy in force, the session's identity still holds it, and an agreement is valid now.
  // Else tells the subscriber why (fatal error or notice) and returns null. Runs every round, so a
  // grant that ends takes effect before the next batch.
  const policy::SubscriptionRef* CheckEntitled(Session& session, const policy::PolicySet& policy,
                                               Clock::TimePoint now);
  void CountDelivery(const Session& session, uint64_t delivered,
                     const std::map<std::string, uint32_t>& withheld);
  void OnReadFailed(Session& session, const Status& status);
  void SendHeartbeatIfDue(Session& session, uint64_t head);
  // Sends a heartbeat now. It is also the probe of whether the subscriber is still there (the
  // ROUTER answers EHOSTUNREACH for a peer that has gone): kPeerGone expires the session, so it
  // is dropped as "gone" at once instead of as "timeout" after subscriber_timeout_ms.
  SendOutcome SendHeartbeat(Session& session, uint64_t head);
  // Sends routing id + body without blocking.
  SendOutcome SendBytes(const std::string& routing_id, zmq::message_t body);
  void SendFrame(const std::string& routing_id, const v1::Frame& frame);
  void SendError(const std::string& routing_id, const std::string& code, const std::string& message,
                 bool fatal);
  void SendNotice(const std::string& routing_id, const std::string& code,
                  const std::string& message);
  void RefreshStatus(const std::shared_ptr<const policy::PolicySet>& policy, uint64_t head);

  SubscribeServerOptions options_;
  Store* store_;
  const PolicyHolder* policy_;
  const std::atomic<uint64_t>* committed_seq_;
  metrics::Registry* metrics_;
  const Clock& clock_;
  SubscribeAuthoriser authorise_;
  zmq::context_t& context_;  // socket_'s, for the monitor of its disconnects (Run)
  zmq::socket_t socket_;
  int wake_fd_ = -1;
  std::map<std::string, std::unique_ptr<Session>> sessions_;  // by routing id
  // This round's audited batches, waiting for their audit records to be durable (DeliverRound).
  struct Outgoing;
  std::vector<Outgoing> outgoing_;
  WriteBatch audit_writes_;  // reused by every AuditDisclosure of the delivery thread
  DecodeCache decoded_;
  mutable Mutex status_mu_;
  std::vector<SubscriptionStatus> status_ CAREHUB_GUARDED_BY(status_mu_);
  // Delivered, withheld by subscription.
  std::map<std::string, std::pair<uint64_t, uint64_t>> totals_ CAREHUB_GUARDED_BY(status_mu_);
};

}  // namespace carehub::hub
