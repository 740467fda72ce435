#pragma once
// Automatic failover (docs/replication.md, "Automatic failover"): this hub's membership of a
// two-hub cluster coordinated by etcd, in the pattern of PostgreSQL's Patroni. No consensus of our
// own: etcd decides who leads, by a key held under a lease.
//
//   /carehub/<cluster>/leader          member name, under the leader's lease; its create
//                                      revision is the epoch (fencing token) of that leadership
//   /carehub/<cluster>/state           JSON {leader, sync_standby, epoch, forced}: written only by
//                                      the leader, in a transaction that checks it still leads
//   /carehub/<cluster>/members/<name>  JSON status of each member, under its lease
//
// One thread loops every ttl/10: renew the lease, read leader and state in one transaction, then
//   - leading: open the lease gate (lease_gate.h) until send time + 0.75 x TTL; record in state
//     which standby is in sync (sync_standby) as it changes;
//   - no leader: campaign if eligible — the last leader, the in-sync standby named in state, or,
//     for a cluster with no state yet, the hub configured as the first primary — with a
//     transaction that creates the leader key only if it is absent and state is as read;
//   - someone else leads: if this hub was serving as primary, close the gate and demote.
// A renewal that fails leaves the gate to close by itself on the monotonic clock: no answer and
// no delivery after it, whatever etcd is doing. An out-of-sync standby never campaigns unless an
// operator forces it (ForcePromotion).
//
// Thread-safety: Start/Stop from the owner; ForcePromotion, StepDown and the accessors from any
// thread. The host callbacks run on the member's thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "carehub/core/mutex.h"
#include "carehub/core/status.h"
#include "carehub/metrics/registry.h"
#include "cluster/etcd_client.h"
#include "cluster/lease_gate.h"

namespace carehub::hub {

struct ClusterMemberOptions {
  std::vector<std::string> etcd_endpoints;
  std::string cluster;  // key prefix /carehub/<cluster>/
  std::string member;   // this hub's name (replication.name)
  std::chrono::milliseconds ttl{3000};
  // May take the first leadership of a cluster that has no state in etcd yet.
  bool bootstrap_primary = false;
  std::string member_info;  // JSON object published as members/<name> (endpoints)
};

// What the member learns from the hub each round.
struct ClusterHostState {
  bool primary = false;          // serving (or switching to serve) as the primary
  bool standby_in_sync = false;  // primary: the standby holds everything acknowledged
  std::string standby_name;
  bool caught_up = false;  // standby: not in a full copy; applied what it was sent
  uint64_t epoch = 0;
  uint64_t position = 0;
};

struct ClusterHost {
  std::function<ClusterHostState()> state;
  // Become the primary of `epoch` (asynchronous; the member keeps the lease meanwhile).
  std::function<void(uint64_t epoch, bool forced)> promote;
  // Stop serving and follow the leader.
  std::function<void()> demote;
  // Primary: whether it may acknowledge on its own disk when the standby is not in sync
  // (on_standby_loss: degrade). Allowed only while etcd's state names no in-sync standby.
  std::function<void(bool allow)> allow_degrade;
};

struct ClusterSnapshot {
  bool leader = false;
  std::string leader_name;  // as last read ("" when none)
  uint64_t epoch = 0;       // the leader key's create revision
  std::string sync_standby;
  bool etcd_reachable = false;
  std::string last_error;
  int64_t lease_remaining_ms = 0;
  uint64_t leader_changes = 0;
};

class ClusterMember {
 public:
  // `gate` and `metrics` must outlive the member.
  ClusterMember(ClusterMemberOptions options, ClusterHost host, LeaseGate* gate,
                metrics::Registry* metrics);
  ~ClusterMember();
  ClusterMember(const ClusterMember&) = delete;
  ClusterMember& operator=(const ClusterMember&) = delete;

  // One round on the caller's thread (so a starting hub knows its role), then the loop.
  void Start();
  // Stops the loop; a leader closes its gate first, then revokes its lease so the standby can
  // take over at once instead of after the TTL.
  void Stop();

  // Operator actions (admin API). ForcePromotion: take the leader key when it is free even though
  // this hub is not known to be in sync (loud; what it can lose: docs/replication.md).
  Status ForcePromotion() CAREHUB_EXCLUDES(mu_);
  // Planned switch-over: a leader demotes, then gives up the key for its in-sync standby.
  Status StepDown() CAREHUB_EXCLUDES(mu_);

  ClusterSnapshot Snapshot() const CAREHUB_EXCLUDES(mu_);

 private:
  struct State {
    std::string leader;
    std::string sync_standby;
    uint64_t epoch = 0;
    bool forced = false;
  };
  void Run();
  void Round() CAREHUB_EXCLUDES(mu_);
  // Renews (or grants) the lease; false when this round cannot rely on it.
  bool RenewLease();
  // Both act on the round's snapshot of the hub (`host`), taken once at the start of Round.
  void Lead(const ClusterHostState& host, const State& state, int64_t state_revision);
  void Campaign(const ClusterHostState& host, const std::optional<State>& state,
                int64_t state_revision, bool forced);
  void LoseLeadership(const std::string& why);
  void PublishMember(const ClusterHostState& host);
  void NoteError(const std::string& what, const Status& s) CAREHUB_EXCLUDES(mu_);
  std::string Key(const std::string& name) const;

  ClusterMemberOptions options_;
  ClusterHost host_;
  LeaseGate* gate_;
  metrics::Registry* metrics_;
  EtcdClient etcd_;  // the loop's own
  std::thread thread_;
  Mutex stop_mu_;
  CondVar stop_cv_;
  bool stopping_ CAREHUB_GUARDED_BY(stop_mu_) = false;

  // The loop's own state.
  int64_t lease_ = 0;
  LeaseGate::Clock::time_point lease_until_{};
  int64_t leader_revision_ = 0;  // create revision of the leader key while we hold it
  std::string published_;
  LeaseGate::Clock::time_point hold_off_until_{};  // after a step-down, let the standby take it
  std::string refusal_logged_;                     // why this hub may not campaign, as last logged

  std::atomic<bool> force_requested_{false};
  std::atomic<bool> step_down_requested_{false};

  mutable Mutex mu_;
  ClusterSnapshot snapshot_ CAREHUB_GUARDED_BY(mu_);
  uint64_t refresher_ = 0;
};

}  // namespace carehub::hub
