#include "cluster/cluster_member.h"

#include <pthread.h>

#include <nlohmann/json.hpp>

#include "carehub/core/log.h"

namespace carehub::hub {
namespace {

using json = nlohmann::json;
using Clock = LeaseGate::Clock;

auto Log() { return Logger("cluster"); }

// The gate closes at send time + this share of the granted TTL: the rest is the margin for a
// renewal's own latency to be irrelevant and for the standby's campaign to start only after.
constexpr double kGateShareOfTtl = 0.75;

std::string StateJson(const std::string& leader, const std::string& sync_standby, uint64_t epoch,
                      bool forced) {
  return json{
      {"leader", leader}, {"sync_standby", sync_standby}, {"epoch", epoch}, {"forced", forced}}
      .dump();
}

}  // namespace

ClusterMember::ClusterMember(ClusterMemberOptions options, ClusterHost host, LeaseGate* gate,
                             metrics::Registry* metrics)
    : options_(std::move(options)),
      host_(std::move(host)),
      gate_(gate),
      metrics_(metrics),
      etcd_(options_.etcd_endpoints, std::max(std::chrono::milliseconds(200), options_.ttl / 3)) {
  refresher_ = metrics_->AddRefresher([this] {
    auto s = Snapshot();
    metrics_->GetGauge("carehub_cluster_leader", "1 while this hub holds the leader lease.")
        .Set(s.leader ? 1 : 0);
    metrics_
        ->GetGauge("carehub_cluster_lease_remaining_seconds",
                   "Time until this hub's lease gate closes unless etcd renews it (leader only).")
        .Set(static_cast<double>(std::max<int64_t>(0, s.lease_remaining_ms)) / 1000.0);
    metrics_->GetGauge("carehub_cluster_etcd_reachable", "1 when the last etcd round succeeded.")
        .Set(s.etcd_reachable ? 1 : 0);
    metrics_->GetGauge("carehub_cluster_epoch", "The epoch of the leadership last seen in etcd.")
        .Set(static_cast<double>(s.epoch));
  });
  // Series from the start, so alerts see 0 rather than no data.
  for (const char* event : {"acquired", "lost"}) {
    metrics_->GetCounter("carehub_cluster_leader_changes_total",
                         "This hub taking or losing the leader lease.", {{"event", event}});
  }
  metrics_->GetCounter("carehub_cluster_etcd_errors_total", "etcd requests that failed.");
}

ClusterMember::~ClusterMember() {
  Stop();
  metrics_->RemoveRefresher(refresher_);
}

std::string ClusterMember::Key(const std::string& name) const {
  return "/carehub/" + options_.cluster + "/" + name;
}

void ClusterMember::Start() {
  Round();
  thread_ = std::thread([this] { Run(); });
}

void ClusterMember::Stop() {
  {
    MutexLock lock(stop_mu_);
    if (stopping_) {
      return;
    }
    stopping_ = true;
  }
  stop_cv_.NotifyAll();
  if (thread_.joinable()) {
    thread_.join();
  }
  gate_->Close();
  if (lease_ != 0) {
    // Revoking deletes the leader key with it: the standby campaigns at its next round.
    Status s = etcd_.Revoke(lease_);
    if (leader_revision_ != 0) {
      Log()->info("leader lease given up at shutdown{}", s.ok() ? "" : ": " + s.ToString());
    }
    lease_ = 0;
  }
}

Status ClusterMember::ForcePromotion() {
  Log()->critical(
      "FORCED PROMOTION requested by an operator: this hub will take the leader key as soon as "
      "it is free, without proof that it holds every acknowledged event");
  force_requested_.store(true);
  return Status::Ok();
}

Status ClusterMember::StepDown() {
  if (!Snapshot().leader) {
    return Status::Error("not_leader", "this hub does not hold the leader lease");
  }
  step_down_requested_.store(true);
  return Status::Ok();
}

ClusterSnapshot ClusterMember::Snapshot() const {
  MutexLock lock(mu_);
  ClusterSnapshot out = snapshot_;
  out.lease_remaining_ms = out.leader ? gate_->Remaining().count() : 0;
  return out;
}

void ClusterMember::NoteError(const std::string& what, const Status& s) {
  metrics_->GetCounter("carehub_cluster_etcd_errors_total", "etcd requests that failed.").Inc();
  bool first = false;
  {
    MutexLock lock(mu_);
    first = snapshot_.last_error.empty();  // the first error of a streak is logged
    snapshot_.etcd_reachable = false;
    snapshot_.last_error = what + ": " + s.ToString();
  }
  if (first) {
    Log()->error("etcd: {}: {}", what, s.ToString());
  }
}

void ClusterMember::Run() {
  pthread_setname_np(pthread_self(), "carehub-cluster");
  const auto interval = std::max(std::chrono::milliseconds(50), options_.ttl / 10);
  while (true) {
    {
      MutexLock lock(stop_mu_);
      const auto deadline = Clock::now() + interval;
      while (!stopping_) {
        if (stop_cv_.WaitUntil(stop_mu_, deadline) == std::cv_status::timeout) {
          break;
        }
      }
      if (stopping_) {
        return;
      }
    }
    Round();
  }
}

bool ClusterMember::RenewLease() {
  const auto sent = Clock::now();
  int64_t ttl = 0;
  if (lease_ != 0) {
    auto renewed = etcd_.KeepAlive(lease_);
    if (!renewed.ok()) {
      NoteError("lease renewal", renewed.status());
      return false;
    }
    ttl = renewed.value();
    if (ttl <= 0) {
      Log()->warn("lease {:x} expired before it could be renewed", lease_);
      lease_ = 0;
    }
  }
  if (lease_ == 0) {
    const int64_t seconds = std::max<int64_t>(
        1, std::chrono::duration_cast<std::chrono::seconds>(options_.ttl).count());
    auto granted = etcd_.Grant(seconds);
    if (!granted.ok()) {
      NoteError("lease grant", granted.status());
      return false;
    }
    lease_ = granted.value();
    ttl = seconds;
  }
  lease_until_ = sent + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                            static_cast<double>(ttl) * kGateShareOfTtl));
  return true;
}

void ClusterMember::Round() {
  const bool renewed = RenewLease();
  if (!renewed) {
    if (leader_revision_ != 0 && !gate_->Open()) {
      LoseLeadership(
          "the leader lease could not be renewed in time (etcd: " + Snapshot().last_error + ")");
    }
    return;
  }
  // Leader and state in one read: one revision of the store.
  auto read = etcd_.Txn({},
                        {EtcdOp{EtcdOp::Kind::kGet, Key("leader"), "", 0},
                         EtcdOp{EtcdOp::Kind::kGet, Key("state"), "", 0}},
                        {});
  if (!read.ok() || read.value().gets.size() != 2) {
    NoteError("read leader",
              read.ok() ? Status::Error("etcd_bad_answer", "short answer") : read.status());
    if (leader_revision_ != 0 && !gate_->Open()) {
      LoseLeadership("etcd cannot be read");
    }
    return;
  }
  // The hub as it stands after the etcd round trips, for every decision below.
  const ClusterHostState host = host_.state();
  const auto& leader = read.value().gets[0];
  const auto& state_kv = read.value().gets[1];
  std::optional<State> state;
  int64_t state_revision = 0;
  if (state_kv) {
    state_revision = state_kv->mod_revision;
    try {
      auto j = json::parse(state_kv->value);
      state = State{j.value("leader", ""), j.value("sync_standby", ""),
                    j.value("epoch", uint64_t{0}), j.value("forced", false)};
    } catch (const json::exception& e) {
      Log()->error("unreadable cluster state in etcd ({}): {}", e.what(), state_kv->value);
    }
  }
  {
    MutexLock lock(mu_);
    if (!snapshot_.etcd_reachable && !snapshot_.last_error.empty()) {
      Log()->info("etcd reachable again ({})", etcd_.endpoint());
    }
    snapshot_.etcd_reachable = true;
    snapshot_.last_error.clear();
    snapshot_.leader_name = leader ? leader->value : "";
    snapshot_.epoch = leader ? static_cast<uint64_t>(leader->create_revision) : 0;
    snapshot_.sync_standby = state ? state->sync_standby : "";
  }

  const bool mine = leader && leader->value == options_.member && leader->lease == lease_ &&
                    leader->create_revision == leader_revision_;
  if (mine) {
    gate_->OpenUntil(lease_until_);
    Lead(host, state.value_or(State{}), state_revision);
  } else {
    if (leader_revision_ != 0) {
      LoseLeadership(leader ? "the leader key is held by " + leader->value
                            : "the leader key is gone");
    }
    if (!leader) {
      Campaign(host, state, state_revision, force_requested_.load());
    } else if (leader->value == options_.member) {
      // Ours from before a restart (its lease is not ours any more): give it up, then campaign.
      (void)etcd_.Txn({EtcdCompare{Key("leader"), EtcdCompare::Target::kCreateRevision,
                                   leader->create_revision, ""}},
                      {EtcdOp{EtcdOp::Kind::kDelete, Key("leader"), "", 0}}, {});
      Log()->warn("the leader key names this hub from an earlier run; released it");
    } else if (host.primary) {
      Log()->warn("{} holds the leader key (epoch {}): this hub stops serving as primary",
                  leader->value, leader->create_revision);
      gate_->Close();
      host_.demote();
    }
  }
  PublishMember(host_.state());
}

void ClusterMember::Lead(const ClusterHostState& host, const State& state, int64_t state_revision) {
  if (step_down_requested_.exchange(false)) {
    Log()->warn("stepping down (operator switch-over): demoting, then releasing the leader key");
    gate_->Close();
    host_.demote();
    hold_off_until_ = Clock::now() + 3 * options_.ttl;
    (void)etcd_.Txn(
        {EtcdCompare{Key("leader"), EtcdCompare::Target::kCreateRevision, leader_revision_, ""}},
        {EtcdOp{EtcdOp::Kind::kDelete, Key("leader"), "", 0}}, {});
    LoseLeadership("stepped down for a switch-over");
    return;
  }
  if (!host.primary) {
    return;  // still promoting
  }
  // Name the standby that holds everything acknowledged; only it may take over. A standby back in
  // sync is named after the primary blocks again on its loss; one that left sync is un-named
  // before the primary may degrade (it blocks meanwhile). So etcd never names a standby that
  // lacks an event acknowledged by the primary (Patroni's synchronous mode).
  const std::string sync_standby = host.standby_in_sync ? host.standby_name : "";
  const uint64_t epoch = static_cast<uint64_t>(leader_revision_);
  if (!sync_standby.empty()) {
    host_.allow_degrade(false);
  }
  if (state.leader == options_.member && state.sync_standby == sync_standby &&
      state.epoch == epoch) {
    if (sync_standby.empty()) {
      host_.allow_degrade(true);
    }
    return;
  }
  auto written = etcd_.Txn(
      {EtcdCompare{Key("leader"), EtcdCompare::Target::kCreateRevision, leader_revision_, ""},
       EtcdCompare{Key("state"), EtcdCompare::Target::kModRevision, state_revision, ""}},
      {EtcdOp{EtcdOp::Kind::kPut, Key("state"),
              StateJson(options_.member, sync_standby, epoch, state.forced && sync_standby.empty()),
              0}},
      {});
  if (!written.ok()) {
    NoteError("write state", written.status());
  } else if (written.value().succeeded) {
    Log()->info("cluster state: leader {} epoch {} sync standby {}", options_.member, epoch,
                sync_standby.empty() ? "(none)" : sync_standby);
    if (sync_standby.empty()) {
      host_.allow_degrade(true);
    }
  }
}

void ClusterMember::Campaign(const ClusterHostState& host, const std::optional<State>& state,
                             int64_t state_revision, bool forced) {
  if (Clock::now() < hold_off_until_ && !forced) {
    return;
  }
  std::string why_not;
  if (!state) {
    if (!options_.bootstrap_primary) {
      why_not = "a new cluster's first leader is the hub configured as primary";
    }
  } else if (state->leader != options_.member && state->sync_standby != options_.member) {
    why_not = "not in sync (the leader was " + state->leader + ", its in-sync standby " +
              (state->sync_standby.empty() ? std::string("none") : state->sync_standby) + ")";
  } else if (!host.primary && !host.caught_up) {
    why_not = "still taking a full copy";
  }
  if (!why_not.empty() && !forced) {
    if (refusal_logged_ != why_not) {  // once per reason, not every round
      Log()->warn("no leader, and this hub may not take over: {}", why_not);
      refusal_logged_ = why_not;
    }
    return;
  }
  std::vector<EtcdCompare> compare = {
      EtcdCompare{Key("leader"), EtcdCompare::Target::kCreateRevision, 0, ""},
      EtcdCompare{Key("state"), EtcdCompare::Target::kModRevision, state_revision, ""}};
  auto taken = etcd_.Txn(compare,
                         {EtcdOp{EtcdOp::Kind::kPut, Key("leader"), options_.member, lease_},
                          EtcdOp{EtcdOp::Kind::kPut, Key("state"),
                                 StateJson(options_.member, "", 0, forced && !why_not.empty()), 0}},
                         {});
  if (!taken.ok()) {
    NoteError("campaign", taken.status());
    return;
  }
  if (!taken.value().succeeded) {
    return;  // someone else moved first; the next round sees who
  }
  force_requested_.store(false);
  leader_revision_ = taken.value().revision;
  gate_->OpenUntil(lease_until_);
  metrics_
      ->GetCounter("carehub_cluster_leader_changes_total",
                   "This hub taking or losing the leader lease.", {{"event", "acquired"}})
      .Inc();
  {
    MutexLock lock(mu_);
    snapshot_.leader = true;
    snapshot_.leader_name = options_.member;
    snapshot_.epoch = static_cast<uint64_t>(leader_revision_);
    ++snapshot_.leader_changes;
  }
  if (forced && !why_not.empty()) {
    Log()->critical("FORCED: took the leader key at epoch {} although {}", leader_revision_,
                    why_not);
  } else {
    Log()->warn("took the leader key: epoch {}", leader_revision_);
  }
  host_.promote(static_cast<uint64_t>(leader_revision_), forced && !why_not.empty());
}

void ClusterMember::LoseLeadership(const std::string& why) {
  gate_->Close();
  leader_revision_ = 0;
  metrics_
      ->GetCounter("carehub_cluster_leader_changes_total",
                   "This hub taking or losing the leader lease.", {{"event", "lost"}})
      .Inc();
  {
    MutexLock lock(mu_);
    snapshot_.leader = false;
    ++snapshot_.leader_changes;
  }
  Log()->error("no longer the leader: {}; not acknowledging or delivering anything", why);
}

void ClusterMember::PublishMember(const ClusterHostState& host) {
  json info = options_.member_info.empty() ? json::object() : json::parse(options_.member_info);
  info["name"] = options_.member;
  info["role"] = host.primary ? "primary" : "standby";
  info["epoch"] = host.epoch;
  info["caught_up"] = host.caught_up;
  const std::string value = info.dump();
  // Position changes every round under load; publish the role/epoch changes, not every commit.
  if (value == published_) {
    return;
  }
  auto put = etcd_.Put(Key("members/" + options_.member), value, lease_);
  if (put.ok()) {
    published_ = value;
  }
}

}  // namespace carehub::hub
