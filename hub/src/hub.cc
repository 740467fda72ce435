#include "hub.h"

#include <spdlog/spdlog.h>
#include <unistd.h>
#include <zmq.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>
#include <zmq.hpp>

#include "admin_server.h"
#include "carehub/client/curve.h"
#include "carehub/core/allocator.h"
#include "carehub/core/log.h"
#include "carehub/core/mutex.h"
#include "carehub/core/secret_file.h"
#include "carehub/hub/identities.h"
#include "carehub/hub/ingest_pipeline.h"
#include "carehub/hub/store.h"
#include "carehub/hub/store/power_cut.h"
#include "carehub/metrics/registry.h"
#include "carehub/policy/diff.h"
#include "carehub/policy/load.h"
#include "cluster/cluster_member.h"
#include "cluster/lease_gate.h"
#include "ingest_server.h"
#include "policy_holder.h"
#include "replication/not_primary_responder.h"
#include "replication/replica_follower.h"
#include "replication/replication_source.h"
#include "subscribe_server.h"
#include "zap_handler.h"

namespace carehub::hub {
namespace {

// Reads the hub's CURVE secret key and checks that it matches the public key beside it, so a
// mixed-up key file fails at start rather than as clients that cannot connect.
Result<std::string> LoadServerSecretKey(const std::filesystem::path& file) {
  auto keys = client::ReadKeyFile(file);
  if (!keys.ok()) {
    return Status::Error("bad_server_key", "security.server_key_file: " + keys.status().message());
  }
  char derived[41] = {};
  if (zmq_curve_public(derived, keys.value().secret_key.c_str()) != 0 ||
      keys.value().public_key != derived) {
    return Status::Error("bad_server_key",
                         "security.server_key_file: " + file.string() +
                             " holds a secret key that does not match its public key");
  }
  return keys.value().secret_key;
}

class HubImpl final : public Hub {
 public:
  explicit HubImpl(HubConfig config) : config_(std::move(config)) {}
  // The one place the daemon takes the real clock: every part below is handed this one.
  const Clock& clock_ = SystemClock::Instance();
  ~HubImpl() override { Stop(); }

  Status Init() {
    if (!spdlog::get("hub")) {
      SetUpLogging(config_.log_level, config_.log_format);
    }
    if (config_.curve) {
      auto secret = LoadServerSecretKey(config_.server_key_file);
      if (!secret.ok()) {
        return secret.status();
      }
      server_secret_ = std::move(secret).value();
      auto identities = LoadIdentities(config_.identities_file);
      if (!identities.ok()) {
        return identities.status();
      }
      identities_.Set(identities.value());
      // Before any CURVE socket binds: libzmq lets handshakes through while no handler is bound.
      zap_ = std::make_unique<ZapHandler>(context_, &identities_, &metrics_, &key_use_);
      Status zap_started = zap_->Start();
      if (!zap_started.ok()) {
        return zap_started;
      }
    }
    if (!config_.agreements_file.empty()) {
      auto loaded = policy::LoadPolicy(config_.agreements_file);
      if (!loaded.ok()) {
        return loaded.status();
      }
      policy_.Set(loaded.value());
    }
    // Both outcomes exist at 0 from the start, so the first refused reload shows in increase().
    for (bool applied : {true, false}) {
      (void)ReloadCounter(kAgreementsReload, applied);
      if (config_.curve) {
        (void)ReloadCounter(kIdentitiesReload, applied);
      }
    }
    // In a cluster every hub starts as a standby: it becomes the primary only once it holds the
    // leader lease (the member's first round, below, promotes it if it may lead).
    const bool standby =
        config_.cluster.enabled || (config_.replication.enabled &&
                                    config_.replication.role == ReplicationConfig::Role::kStandby);
    Status started = standby ? StartStandby() : StartPrimary(/*promoted=*/false);
    if (!started.ok()) {
      return started;
    }
    Status admin = StartAdmin();
    if (!admin.ok()) {
      return admin;
    }
    WriteEndpointsFile();
    if (auto ids = identities_.Get()) {
      Logger("security")
          ->info("CURVE on ingest and subscribe; identities loaded from {}: {} identities, {} keys",
                 config_.identities_file.string(), ids->identities().size(), ids->key_count());
    }
    if (auto p = policy_.Get()) {
      Logger("hub")->info("agreements loaded from {}: {} agreements, {} subscribers, {} opt-outs",
                          config_.agreements_file.string(), p->agreements().size(),
                          p->subscribers().size(), p->opt_out_count());
    }
    switch_thread_ = std::thread([this] { RunRoleSwitches(); });
    if (config_.cluster.enabled) {
      StartCluster();
    }
    return Status::Ok();
  }

  // --- Automatic failover (cluster/cluster_member.h) ---

  void StartCluster() {
    ClusterMemberOptions options;
    options.etcd_endpoints = config_.cluster.etcd;
    options.cluster = config_.cluster.name;
    options.member = config_.replication.name;
    options.ttl = std::chrono::milliseconds(config_.cluster.ttl_ms);
    options.bootstrap_primary = config_.replication.role == ReplicationConfig::Role::kPrimary;
    options.member_info = nlohmann::json{
        {"ingest", config_.ingest_endpoint},
        {"subscribe", config_.subscribe_endpoint},
        {"replication", config_.replication.listen},
        {"admin",
         admin_address_}}.dump();
    ClusterHost host;
    host.state = [this] { return ClusterState(); };
    host.promote = [this](uint64_t epoch, bool forced) {
      QueueSwitch(Role::kPrimary, epoch, forced ? "forced" : "automatic failover");
    };
    host.demote = [this] { QueueSwitch(Role::kStandby, 0, "another hub holds the leader lease"); };
    host.allow_degrade = [this](bool allow) {
      if (config_.replication.block_on_loss) {
        return;  // block: never acknowledge on one disk, even with etcd's record
      }
      // Called from the member's thread while this hub is the primary; the switch thread holds
      // parts_mu_ while it replaces replication_.
      if (parts_mu_.TryLock()) {
        if (replication_) {
          replication_->SetBlockOnLoss(!allow);
        }
        parts_mu_.Unlock();
      }
    };
    cluster_ = std::make_unique<ClusterMember>(std::move(options), std::move(host), &lease_gate_,
                                               &metrics_);
    cluster_->Start();
  }

  // What the cluster member needs to know; never waits for a role switch in progress (the
  // member must keep renewing its lease meanwhile).
  ClusterHostState ClusterState() {
    ClusterHostState out;
    if (!parts_mu_.TryLock()) {
      MutexLock lock(switch_mu_);
      out.primary = switch_target_ == Role::kPrimary;
      return out;
    }
    if (role_.load() == Role::kPrimary && replication_) {
      auto r = replication_->Snapshot();
      out.primary = true;
      out.standby_in_sync = r.in_sync;
      out.standby_name = r.standby_name;
      out.caught_up = true;
      out.epoch = r.epoch;
      out.position = r.position;
    } else if (follower_) {
      auto f = follower_->Snapshot();
      out.caught_up = !f.copying && f.position > 0;
      out.epoch = f.epoch;
      out.position = f.position;
    }
    parts_mu_.Unlock();
    {
      MutexLock lock(switch_mu_);
      if (switch_pending_ || switching_) {
        out.primary = switch_target_ == Role::kPrimary;
      }
    }
    return out;
  }

  StoreOptions MakeStoreOptions() const {
    StoreOptions store_options;
    store_options.dir = config_.data_dir;
    store_options.dedup_window_days = config_.dedup_window_days;
    store_options.min_free_disk_bytes = config_.min_free_disk_bytes;
    store_options.salvage_wal = config_.salvage_wal;
    store_options.clock = &clock_;
    store_options.env = PowerCutEnvFromEnvironment();  // null unless a power-cut test asks
    if (config_.replication.enabled) {
      store_options.wal_archive_bytes = config_.replication.wal_keep_bytes;
    }
    return store_options;
  }

  // The primary's parts: store, replication source, ingest, subscribe, retention. `promoted`:
  // this hub was a standby until now, and begins a new epoch (store/change_log.h).
  Status StartPrimary(bool promoted, uint64_t epoch_floor = 0, const std::string& why = "") {
    auto log = Logger("hub");
    auto store = Store::Open(MakeStoreOptions());
    if (!store.ok()) {
      return store.status();
    }
    store_ = std::move(store).value();
    auto last_seq = store_->events().LastSeq();
    if (!last_seq.ok()) {
      return last_seq.status();
    }
    committed_seq_.store(*last_seq);
    uint64_t epoch = 0;
    if (config_.replication.enabled) {
      auto current =
          promoted ? store_->changes().BeginEpoch(epoch_floor) : store_->changes().CurrentEpoch();
      if (!current.ok()) {
        return current.status();
      }
      epoch = current.value();
      ReplicationSourceOptions repl;
      repl.endpoint = config_.replication.listen;
      repl.curve_secret_key = server_secret_;
      repl.synchronous = config_.replication.synchronous;
      // A cluster's primary blocks until etcd records that no standby is in sync
      // (cluster_member.h); `degrade` then comes from the member.
      repl.block_on_loss = config_.replication.block_on_loss || config_.cluster.enabled;
      repl.sync_timeout = std::chrono::milliseconds(config_.replication.sync_timeout_ms);
      replication_ =
          std::make_unique<ReplicationSource>(context_, repl, store_.get(), &metrics_, epoch);
      auto bound = replication_->Bind();
      if (!bound.ok()) {
        return bound.status();
      }
      replication_endpoint_ = bound.value();
      replication_->Start();
    }
    // After the replication source started, so that a standby receives the key like any write
    // (it is written once, by the first primary of the store; a promoted standby has it already).
    if (Status s = store_->disclosures().EnsureKey(); !s.ok()) {
      return s;
    }

    // Plain mode (loopback only) leaves both empty: every local connection may do anything.
    PublishAuthoriser may_publish;
    SubscribeAuthoriser may_subscribe;
    if (config_.curve) {
      may_publish = [this](std::string_view identity, std::string_view ods) {
        auto set = identities_.Get();
        return set && MayPublish(*set, identity, ods);
      };
      may_subscribe = [this](std::string_view identity, std::string_view subscriber) {
        auto set = identities_.Get();
        return set && MaySubscribe(*set, identity, subscriber);
      };
    }
    pipeline_ = std::make_unique<IngestPipeline>(store_.get(), &metrics_, config_.validation,
                                                 config_.dedup_window_days, clock_,
                                                 std::move(may_publish), config_.quarantine);
    IngestServerOptions ingest_options;
    ingest_options.endpoint = config_.ingest_endpoint;
    ingest_options.max_frame_bytes = config_.max_frame_bytes;
    ingest_options.max_events_per_batch = config_.max_events_per_batch;
    ingest_options.curve_secret_key = server_secret_;
    if (config_.cluster.enabled) {
      ingest_options.may_acknowledge = [this] { return lease_gate_.Open(); };
    }
    ingest_options.key_use = &key_use_;
    if (replication_) {
      ingest_options.accepting_writes = [this] { return replication_->AcceptingWrites(); };
      ingest_options.wait_replicated = [this](uint64_t position) {
        return replication_->WaitReplicated(position);
      };
    }
    ingest_ = std::make_unique<IngestServer>(
        context_, ingest_options, pipeline_.get(), store_.get(), *last_seq,
        config_.durability == Durability::kFsync, &metrics_, [this](uint64_t seq) {
          committed_seq_.store(seq);
          if (subscribe_) {
            subscribe_->Wake();
          }
        });
    SubscribeServerOptions subscribe_options;
    subscribe_options.endpoint = config_.subscribe_endpoint;
    subscribe_options.heartbeat_interval = std::chrono::milliseconds(config_.heartbeat_interval_ms);
    subscribe_options.subscriber_timeout = std::chrono::milliseconds(config_.subscriber_timeout_ms);
    subscribe_options.max_delivery_batch = config_.max_delivery_batch;
    subscribe_options.curve_secret_key = server_secret_;
    subscribe_options.key_use = &key_use_;
    if (config_.durability == Durability::kFsync) {
      subscribe_options.request_wal_sync = [this] { ingest_->committer().RequestWalSync(); };
    }
    if (replication_) {
      subscribe_options.wait_replicated = [this](uint64_t position) {
        Status s = replication_->WaitReplicated(position);
        // Checked last, just before the send: a hub paused past its lease delivers nothing.
        if (s.ok() && config_.cluster.enabled && !lease_gate_.Open()) {
          return Status::Error("no_leader_lease", "this hub does not hold the leader lease");
        }
        return s;
      };
    }
    subscribe_options.epoch = epoch;
    subscribe_ = std::make_unique<SubscribeServer>(context_, subscribe_options, store_.get(),
                                                   &policy_, &committed_seq_, &metrics_, clock_,
                                                   std::move(may_subscribe));

    auto ingest_bound = ingest_->Bind();
    if (!ingest_bound.ok()) {
      return ingest_bound.status();
    }
    ingest_endpoint_ = ingest_bound.value();
    auto subscribe_bound = subscribe_->Bind();
    if (!subscribe_bound.ok()) {
      return subscribe_bound.status();
    }
    subscribe_endpoint_ = subscribe_bound.value();

    stop_.store(false);
    stop_subscribe_.store(false);
    ingest_thread_ = std::thread([this] { ingest_->Run(stop_); });
    subscribe_thread_ = std::thread([this] { subscribe_->Run(stop_subscribe_); });
    if (config_.retention_max_age_days > 0 || config_.retention_max_age_seconds > 0) {
      {
        MutexLock lock(retention_mu_);
        retention_stop_ = false;
      }
      retention_thread_ = std::thread([this] { RunRetention(); });
    }
    role_.store(Role::kPrimary);
    if (promoted) {
      // Who took over, when and why: part of the disclosure record's context for IG.
      v1::AuditRecord audit;
      audit.set_at_unix_ms(ToUnixMillis(clock_.Now()));
      audit.set_kind(why == "forced" ? "forced_promotion" : "promotion");
      audit.set_detail("hub " + config_.replication.name + " became the primary at epoch " +
                       std::to_string(epoch) + " (" + (why.empty() ? "operator" : why) + ")");
      Status audited = store_->audit().Append(audit);
      if (!audited.ok()) {
        log->error("cannot audit the promotion: {}", audited.ToString());
      }
    }
    log->info(
        "hub started as {}: ingest {} subscribe {} data {} durability {} allocator {} last hub_seq "
        "{}{}",
        promoted ? "primary (promoted)" : "primary", ingest_endpoint_, subscribe_endpoint_,
        config_.data_dir.string(), config_.durability == Durability::kFsync ? "fsync" : "os",
        AllocatorName(), *last_seq,
        replication_ ? " replication " + replication_endpoint_ + " epoch " + std::to_string(epoch) +
                           (config_.replication.synchronous ? " sync" : " async")
                     : std::string());
    return Status::Ok();
  }

  // The standby's parts: the follower (which owns the store) and the not-primary answers.
  Status StartStandby() {
    ReplicaFollowerOptions follow;
    follow.primary_endpoint = config_.replication.peer_replication;
    follow.name = config_.replication.name;
    follow.store = MakeStoreOptions();
    if (config_.curve) {
      auto keys = client::ReadKeyFile(config_.replication.key_file);
      if (!keys.ok()) {
        return Status::Error("bad_config", "replication.key_file: " + keys.status().message());
      }
      auto server = client::ReadKeyFile(config_.server_key_file);
      if (!server.ok()) {
        return server.status();
      }
      follow.curve = client::CurveClientKeys{keys.value().public_key, keys.value().secret_key,
                                             server.value().public_key};
    }
    auto follower = ReplicaFollower::Open(follow, &metrics_);
    if (!follower.ok()) {
      return follower.status();
    }
    follower_ = std::move(follower).value();
    NotPrimaryOptions answers;
    answers.ingest_endpoint = config_.ingest_endpoint;
    answers.subscribe_endpoint = config_.subscribe_endpoint;
    answers.curve_secret_key = server_secret_;
    answers.primary_ingest = config_.replication.peer_ingest;
    answers.primary_subscribe = config_.replication.peer_subscribe;
    responder_ = std::make_unique<NotPrimaryResponder>(context_, answers, &metrics_);
    Status bound = responder_->Bind();
    if (!bound.ok()) {
      return bound;
    }
    responder_->Start();
    follower_->Start();
    ingest_endpoint_ = config_.ingest_endpoint;
    subscribe_endpoint_ = config_.subscribe_endpoint;
    role_.store(Role::kStandby);
    Logger("hub")->info("hub started as standby {}: following {}, data {}, position {}",
                        config_.replication.name, config_.replication.peer_replication,
                        config_.data_dir.string(), follower_->Snapshot().position);
    return Status::Ok();
  }

  Status StartAdmin() {
    if (config_.admin_listen.empty()) {
      return Status::Ok();
    }
    std::string token;
    if (!config_.admin_token_file.empty()) {
      if (Status mode = CheckSecretFileMode(config_.admin_token_file, "admin token file");
          !mode.ok()) {
        return Status::Error("bad_config", mode.message());
      }
      std::ifstream in(config_.admin_token_file);
      std::getline(in, token);
      if (token.size() < 16) {
        return Status::Error("bad_config", "admin token file " + config_.admin_token_file.string() +
                                               " must hold a token of at least 16 characters");
      }
    }
    AdminContext ctx;
    ctx.metrics = &metrics_;
    ctx.role = role_.load() == Role::kPrimary ? "primary" : "standby";
    if (role_.load() == Role::kPrimary) {
      ctx.store = store_.get();
      ctx.pipeline = pipeline_.get();
      ctx.ingest = ingest_.get();
      ctx.subscribe = subscribe_.get();
      ctx.committed_seq = &committed_seq_;
      ctx.reload = [this] { return Reload(); };
      ctx.policy = &policy_;
      if (config_.curve) {
        ctx.key_use = &key_use_;
        ctx.identities = &identities_;
      }
    }
    ctx.endpoints_bound = [this] {
      return !ingest_endpoint_.empty() && !subscribe_endpoint_.empty();
    };
    ctx.ingest_endpoint = ingest_endpoint_;
    ctx.subscribe_endpoint = subscribe_endpoint_;
    ctx.durability = config_.durability == Durability::kFsync ? "fsync" : "os";
    ctx.hub_name = config_.replication.name;
    if (ctx.hub_name.empty()) {
      char host[256] = {};
      ctx.hub_name = gethostname(host, sizeof host - 1) == 0 ? host : "carehub";
    }
    if (config_.replication.enabled) {
      ctx.replication_json = [this] { return ReplicationJson(); };
      ctx.change_role = [this](const std::string& to, bool force) {
        return RequestRoleChange(to, force);
      };
    }
    admin_ = std::make_unique<AdminServer>(
        admin_address_.empty() ? config_.admin_listen : admin_address_, token, std::move(ctx));
    auto admin_bound = admin_->Start();
    if (!admin_bound.ok()) {
      return admin_bound.status();
    }
    admin_address_ = admin_bound.value();
    return Status::Ok();
  }

  // Tests and tools that start the hub with port 0 read the bound endpoints from here.
  void WriteEndpointsFile() {
    auto path = config_.data_dir / "endpoints.json";
    auto tmp = path;
    tmp += ".tmp";
    {
      std::ofstream out(tmp);
      out << "{\"ingest\": \"" << ingest_endpoint_ << "\", \"subscribe\": \"" << subscribe_endpoint_
          << "\", \"admin\": \"" << admin_address_ << "\", \"replication\": \""
          << replication_endpoint_ << "\", \"role\": \""
          << (role_.load() == Role::kPrimary ? "primary" : "standby") << "\", \"pid\": " << getpid()
          << "}\n";
    }
    std::filesystem::rename(tmp, path);
  }

  // Retention by age (DESIGN §5): hourly, whole ranges of the log older than the limit are deleted
  // (RocksDB range deletes, so the cost does not depend on how many events go). Dedup keys expire
  // on their own window during compaction.
  void RunRetention() CAREHUB_EXCLUDES(retention_mu_) {
    auto log = Logger("store");
    while (true) {
      {
        MutexLock lock(retention_mu_);
        if (retention_stop_) {
          return;
        }
      }
      const std::chrono::seconds max_age =
          config_.retention_max_age_seconds > 0
              ? std::chrono::seconds(config_.retention_max_age_seconds)
              : std::chrono::hours(24) * static_cast<int64_t>(config_.retention_max_age_days);
      auto cutoff = clock_.Now() - max_age;
      auto deleted = store_->DeleteEventsBefore(ToUnixMillis(cutoff));
      if (!deleted.ok()) {
        log->error("retention failed: {}", deleted.status().ToString());
      } else if (deleted.value() > 0) {
        log->info("retention: deleted {} events older than {} s", deleted.value(), max_age.count());
        metrics_
            .GetCounter("carehub_retention_deleted_events_total",
                        "Events deleted by age retention.")
            .Inc(deleted.value());
      }
      // Sleep for the interval, or until Stop() sets retention_stop_.
      const auto deadline = std::chrono::steady_clock::now() +
                            std::chrono::seconds(config_.retention_interval_seconds);
      MutexLock lock(retention_mu_);
      while (!retention_stop_) {
        if (retention_cv_.WaitUntil(retention_mu_, deadline) == std::cv_status::timeout) {
          break;
        }
      }
    }
  }

  std::string ingest_endpoint() const override { return ingest_endpoint_; }
  std::string subscribe_endpoint() const override { return subscribe_endpoint_; }
  std::string admin_address() const override { return admin_address_; }

  ReloadReport Reload() override CAREHUB_EXCLUDES(reload_mu_) {
    MutexLock lock(reload_mu_);
    // Each file is reloaded on its own: an invalid one keeps its old set and does not stop the
    // other from taking effect.
    ReloadReport report;
    if (config_.curve) {
      report.files.push_back(ReloadIdentities());
    }
    // A CURVE hub without agreements (ingest only) still reloads its identities.
    if (!(config_.curve && config_.agreements_file.empty())) {
      report.files.push_back(ReloadAgreements());
    }
    return report;
  }

  // Identities take effect for new handshakes at once, and for the authorisers (so for every
  // message, also on connections already open) at once too: a removed identity can no longer
  // publish or open a subscription, even on a connection it opened before.
  ReloadFileOutcome ReloadIdentities() CAREHUB_REQUIRES(reload_mu_) {
    ReloadFileOutcome out;
    out.what = kIdentitiesReload.what;
    out.file = config_.identities_file.string();
    auto loaded = LoadIdentities(config_.identities_file);
    auto before = identities_.Get();
    if (!loaded.ok()) {
      out.error = loaded.status().message();
      out.error_code = loaded.status().code();
    } else {
      out.applied = true;
      if (before) {
        out.changes = DiffIdentities(*before, *loaded.value());
      }
      identities_.Set(loaded.value());
    }
    if (auto in_force = out.applied ? loaded.value() : before) {
      out.entries = in_force->identities().size();
      out.keys_or_subscribers = in_force->key_count();
    }
    NoteReload(kIdentitiesReload, out);
    return out;
  }

  ReloadFileOutcome ReloadAgreements() CAREHUB_REQUIRES(reload_mu_) {
    ReloadFileOutcome out;
    out.what = kAgreementsReload.what;
    out.file = config_.agreements_file.string();
    if (config_.agreements_file.empty()) {
      out.error_code = "no_policy";
      out.error = "the hub was started without an agreements file";
      return out;
    }
    auto loaded = policy::LoadPolicy(config_.agreements_file);
    auto before = policy_.Get();
    if (!loaded.ok()) {
      out.error = loaded.status().message();
      out.error_code = loaded.status().code();
    } else {
      out.applied = true;
      if (before) {
        for (const auto& change : policy::DiffPolicies(*before, *loaded.value())) {
          out.changes.push_back(change.ToString());
        }
      }
      policy_.Set(loaded.value());
    }
    if (auto in_force = out.applied ? loaded.value() : before) {
      out.entries = in_force->agreements().size();
      out.keys_or_subscribers = in_force->subscribers().size();
    }
    NoteReload(kAgreementsReload, out);
    if (out.applied && subscribe_) {
      subscribe_->Wake();
    }
    return out;
  }

  // What a reload of one file is called in the audit trail, the metrics and the log.
  struct ReloadKind {
    const char* logger;
    const char* what;  // "identities", "agreements"
    const char* metric;
    const char* help;
  };
  static constexpr ReloadKind kIdentitiesReload{"security", "identities",
                                                "carehub_identities_reloads_total",
                                                "Identity reloads, by outcome."};
  static constexpr ReloadKind kAgreementsReload{
      "policy", "agreements", "carehub_policy_reloads_total", "Agreement reloads, by outcome."};

  metrics::Counter& ReloadCounter(const ReloadKind& kind, bool applied) {
    return metrics_.GetCounter(kind.metric, kind.help,
                               {{"outcome", applied ? "applied" : "refused"}});
  }

  // Counts and logs a reload: applied (with what changed) or refused (with why, the previous set
  // staying in force). Audits a refusal and an applied reload that changed something; a reload
  // that changed nothing is no change to the record (an `identities_changed` "no changes" on
  // every SIGHUP buried the real changes), so it is only counted and logged.
  void NoteReload(const ReloadKind& kind, const ReloadFileOutcome& out) {
    // The audit detail keeps one change per line (as `carehubctl audit --json` shows it); the log
    // line joins them with "; " so a text log stays one line per record too.
    std::string detail = out.error;
    std::string joined = out.error;
    for (const auto& change : out.changes) {
      detail += (detail.empty() ? "" : "\n") + change;
      joined += (joined.empty() ? "" : "; ") + change;
    }
    if (!out.applied || !out.changes.empty()) {
      v1::AuditRecord audit;
      audit.set_at_unix_ms(ToUnixMillis(clock_.Now()));
      audit.set_kind(std::string(kind.what) + (out.applied ? "_changed" : "_rejected"));
      audit.set_detail(detail);
      if (store_) {  // a standby's store takes only replicated writes
        (void)store_->audit().Append(audit);
      }
    }
    ReloadCounter(kind, out.applied).Inc();
    if (!out.applied) {
      Logger(kind.logger)
          ->error("{} reload refused, previous {} stay in force: {}", kind.what, kind.what, joined);
    } else if (out.changes.empty()) {
      Logger(kind.logger)->info("{} reloaded from {}: no changes", kind.what, out.file);
    } else {
      Logger(kind.logger)
          ->info("{} reloaded from {}: {} change(s): {}", kind.what, out.file, out.changes.size(),
                 joined);
    }
  }

  // --- Roles (docs/replication.md) ---

  enum class Role { kPrimary, kStandby };

  // From the admin API: checks the switch makes sense now and hands it to the switch thread (the
  // admin server is restarted by the switch, so the request cannot wait for it).
  Status RequestRoleChange(const std::string& to, bool force) CAREHUB_EXCLUDES(switch_mu_) {
    if (cluster_) {
      return ClusterRoleChange(to, force);
    }
    MutexLock lock(switch_mu_);
    if (switch_pending_ || switching_) {
      return Status::Error("switch_in_progress", "a role change is already under way");
    }
    const Role current = role_.load();
    Role target;
    if (to == "primary") {
      if (current == Role::kPrimary) {
        return Status::Error("already_primary", "this hub is already the primary");
      }
      auto snap = follower_->Snapshot();
      // Under sync + block nothing was acknowledged that this standby lacks, unless it is still
      // taking a full copy. Otherwise (async, degrade) it may lack acknowledged events.
      const bool strict = config_.replication.synchronous && config_.replication.block_on_loss;
      if (!force && snap.copying) {
        return Status::Error("not_in_sync",
                             "this standby is still receiving a full copy; promoting it would "
                             "lose what the copy has not brought (--force to do it anyway)");
      }
      if (!force && !strict && snap.position < snap.primary_position) {
        return Status::Error("not_in_sync",
                             "this standby is at position " + std::to_string(snap.position) +
                                 " of the primary's " + std::to_string(snap.primary_position) +
                                 " and replication is not sync+block: promoting it may lose "
                                 "acknowledged events (--force to do it anyway)");
      }
      target = Role::kPrimary;
    } else if (to == "standby") {
      if (current == Role::kStandby) {
        return Status::Error("already_standby", "this hub is already a standby");
      }
      target = Role::kStandby;
    } else {
      return Status::Error("bad_request", "role must be primary or standby");
    }
    Logger("hub")->warn("role change requested: {} -> {}{}",
                        current == Role::kPrimary ? "primary" : "standby", to,
                        force ? " (forced)" : "");
    switch_target_ = target;
    switch_epoch_ = 0;
    switch_why_ = force ? "forced" : "operator";
    switch_wait_for_standby_ = true;
    switch_pending_ = true;
    switch_cv_.NotifyAll();
    return Status::Ok();
  }

  // In a cluster, etcd decides who leads: an operator can only ask the leader to step down (a
  // switch-over to its in-sync standby) or force a standby to take a free leader key.
  Status ClusterRoleChange(const std::string& to, bool force) {
    if (to == "standby") {
      return cluster_->StepDown();
    }
    if (to != "primary") {
      return Status::Error("bad_request", "role must be primary or standby");
    }
    if (!force) {
      return Status::Error(
          "cluster_managed",
          "automatic failover (etcd) decides the primary: for a switch-over run `carehubctl "
          "demote` on the primary; --force makes this hub take the leader key when it is free "
          "even if it is not known to be in sync (it can lose acknowledged events)");
    }
    return cluster_->ForcePromotion();
  }

  // From the cluster member: a promotion (with the new epoch) or a demotion, run by the switch
  // thread. A newer request replaces one not yet started.
  void QueueSwitch(Role target, uint64_t epoch, const std::string& why)
      CAREHUB_EXCLUDES(switch_mu_) {
    MutexLock lock(switch_mu_);
    switch_target_ = target;
    switch_epoch_ = epoch;
    switch_why_ = why;
    switch_wait_for_standby_ = false;  // the other hub leads now: it does not follow this one
    switch_pending_ = true;
    switch_cv_.NotifyAll();
  }

  void RunRoleSwitches() CAREHUB_EXCLUDES(switch_mu_) {
    while (true) {
      Role target;
      uint64_t epoch = 0;
      std::string why;
      bool wait_for_standby = true;
      {
        MutexLock lock(switch_mu_);
        while (!switch_pending_ && !switch_stop_) {
          switch_cv_.Wait(switch_mu_);
        }
        if (switch_stop_) {
          return;
        }
        target = switch_target_;
        epoch = switch_epoch_;
        why = switch_why_;
        wait_for_standby = switch_wait_for_standby_;
        switch_pending_ = false;
        switching_ = true;
      }
      Status s = SwitchRole(target, epoch, why, wait_for_standby);
      if (!s.ok()) {
        Logger("hub")->critical("role change failed, this hub serves nothing until restarted: {}",
                                s.ToString());
      }
      MutexLock lock(switch_mu_);
      switching_ = false;
    }
  }

  Status SwitchRole(Role target, uint64_t epoch, const std::string& why, bool wait_for_standby)
      CAREHUB_EXCLUDES(reload_mu_) {
    MutexLock reload_lock(reload_mu_);  // a reload (SIGHUP) never sees half a switch
    MutexLock parts_lock(parts_mu_);
    auto log = Logger("hub");
    if (admin_) {
      admin_->Stop();
      admin_.reset();
    }
    Status s;
    if (target == Role::kPrimary) {
      if (follower_) {
        auto snap = follower_->Snapshot();
        StopStandby();
        log->warn("promoting ({}): this hub becomes the primary at position {}", why,
                  snap.position);
      } else {
        // Already the primary: a new leadership (epoch) of the same hub, e.g. after etcd came
        // back. The old epoch's sessions end; clients reconnect.
        log->warn("primary again ({}): beginning epoch {}", why, epoch);
        StopPrimaryServing();
        StopPrimaryStore();
      }
      s = StartPrimary(/*promoted=*/true, epoch, why);
    } else if (role_.load() == Role::kStandby && follower_) {
      s = Status::Ok();  // already following
    } else {
      log->warn("demoting ({}): stopping ingest and delivery", why);
      StopPrimaryServing();
      if (replication_ && wait_for_standby) {
        Status caught_up = replication_->WaitCaughtUp(std::chrono::seconds(10));
        if (!caught_up.ok()) {
          log->error(
              "demoting with the standby behind (it will need this hub's tail resent by "
              "publishers, and this hub a full copy): {}",
              caught_up.ToString());
        } else {
          log->info("the standby has everything this hub committed");
        }
      }
      StopPrimaryStore();
      s = StartStandby();
    }
    Status admin = StartAdmin();
    WriteEndpointsFile();
    return s.ok() ? admin : s;
  }

  // Stops ingest (in-flight batches are committed and answered), delivery and retention; the
  // store and the replication source stay, so the standby can take the tail.
  void StopPrimaryServing() {
    stop_.store(true);
    if (ingest_thread_.joinable()) {
      ingest_thread_.join();
    }
    stop_subscribe_.store(true);
    {
      MutexLock lock(retention_mu_);
      retention_stop_ = true;
    }
    retention_cv_.NotifyAll();
    if (retention_thread_.joinable()) {
      retention_thread_.join();
    }
    if (subscribe_thread_.joinable()) {
      subscribe_thread_.join();
    }
  }

  void StopPrimaryStore() {
    ingest_.reset();
    subscribe_.reset();
    if (replication_) {
      replication_->Stop();
      replication_.reset();
    }
    pipeline_.reset();
    store_.reset();
  }

  void StopStandby() {
    if (responder_) {
      responder_->Stop();
      responder_.reset();
    }
    if (follower_) {
      follower_->Stop();
      follower_.reset();
    }
  }

  // The replication part of /api/v1/status (a JSON object).
  std::string ReplicationJson() {
    nlohmann::json j;
    j["name"] = config_.replication.name;
    j["mode"] = config_.replication.synchronous ? "sync" : "async";
    j["on_standby_loss"] = config_.replication.block_on_loss ? "block" : "degrade";
    if (role_.load() == Role::kPrimary && replication_) {
      auto r = replication_->Snapshot();
      j["role"] = "primary";
      j["endpoint"] = replication_endpoint_;
      j["epoch"] = r.epoch;
      j["position"] = r.position;
      j["standby"] = {{"connected", r.standby_connected},
                      {"name", r.standby_name},
                      {"in_sync", r.in_sync},
                      {"copying", r.copying},
                      {"acked_position", r.acked},
                      {"lag_changes", r.position - std::min(r.position, r.acked)},
                      {"lag_ms", r.lag_ms},
                      {"bytes_shipped", r.bytes_shipped},
                      {"full_copies", r.full_copies}};
      j["accepting_writes"] = replication_->AcceptingWrites() && (!cluster_ || lease_gate_.Open());
    } else if (follower_) {
      auto f = follower_->Snapshot();
      j["role"] = "standby";
      j["following"] = config_.replication.peer_replication;
      j["primary_ingest"] = config_.replication.peer_ingest;
      j["epoch"] = f.epoch;
      j["position"] = f.position;
      j["primary_position"] = f.primary_position;
      j["connected"] = f.connected;
      j["copying"] = f.copying;
      j["full_copies"] = f.full_copies;
      j["last_error"] = f.last_error;
    }
    if (cluster_) {
      auto c = cluster_->Snapshot();
      j["cluster"] = {{"name", config_.cluster.name},
                      {"ttl_ms", config_.cluster.ttl_ms},
                      {"leader", c.leader_name},
                      {"this_hub_leads", c.leader},
                      {"epoch", c.epoch},
                      {"sync_standby", c.sync_standby},
                      {"lease_remaining_ms", c.lease_remaining_ms},
                      {"etcd_reachable", c.etcd_reachable},
                      {"last_error", c.last_error}};
    }
    return j.dump();
  }

  void Stop() override {
    if (stopped_.exchange(true)) {
      return;
    }
    {
      MutexLock lock(switch_mu_);
      switch_stop_ = true;
    }
    switch_cv_.NotifyAll();
    if (switch_thread_.joinable()) {
      switch_thread_.join();
    }
    if (admin_) {
      admin_->Stop();
    }
    // Ingest first: it finishes in-flight batches, so subscribers see everything acknowledged.
    StopPrimaryServing();
    admin_.reset();
    if (cluster_) {
      cluster_->Stop();  // gives up the lease: the standby takes over without waiting for the TTL
    }
    StopPrimaryStore();
    StopStandby();
    // After the CURVE sockets are closed, before the context is.
    zap_.reset();
    context_.shutdown();
    context_.close();
    if (auto log = spdlog::get("hub")) {
      log->info("hub stopped");
      log->flush();
    }
  }

 private:
  HubConfig config_;
  zmq::context_t context_{1};
  metrics::Registry metrics_;
  PolicyHolder policy_;
  IdentityHolder identities_;
  std::unique_ptr<ZapHandler> zap_;
  // One reload at a time: each reload reads the set in force, diffs it against the file for the
  // audit log and swaps it; two interleaved reloads would audit a diff against a stale set.
  // Which key each identity uses (status "keys", docs/security.md "Key rotation").
  KeyUseTracker key_use_;
  Mutex reload_mu_;
  std::unique_ptr<Store> store_;
  std::atomic<uint64_t> committed_seq_{0};
  std::unique_ptr<IngestPipeline> pipeline_;
  std::unique_ptr<IngestServer> ingest_;
  std::unique_ptr<SubscribeServer> subscribe_;
  std::unique_ptr<AdminServer> admin_;
  std::string server_secret_;  // CURVE; empty in plain mode
  std::atomic<Role> role_{Role::kPrimary};
  std::unique_ptr<ReplicationSource> replication_;  // primary with a standby configured
  std::string replication_endpoint_;
  std::unique_ptr<ReplicaFollower> follower_;       // standby
  std::unique_ptr<NotPrimaryResponder> responder_;  // standby
  Mutex switch_mu_;
  CondVar switch_cv_;
  bool switch_pending_ CAREHUB_GUARDED_BY(switch_mu_) = false;
  bool switch_stop_ CAREHUB_GUARDED_BY(switch_mu_) = false;
  bool switching_ CAREHUB_GUARDED_BY(switch_mu_) = false;
  Role switch_target_ CAREHUB_GUARDED_BY(switch_mu_) = Role::kPrimary;
  uint64_t switch_epoch_ CAREHUB_GUARDED_BY(switch_mu_) = 0;
  std::string switch_why_ CAREHUB_GUARDED_BY(switch_mu_);
  bool switch_wait_for_standby_ CAREHUB_GUARDED_BY(switch_mu_) = true;
  // Held by a role switch while it replaces the parts below; the cluster member only tries it.
  Mutex parts_mu_;
  LeaseGate lease_gate_;
  std::unique_ptr<ClusterMember> cluster_;  // automatic failover, when configured
  std::thread switch_thread_;
  std::thread ingest_thread_;
  std::thread subscribe_thread_;
  std::thread retention_thread_;
  Mutex retention_mu_;
  CondVar retention_cv_;
  bool retention_stop_ CAREHUB_GUARDED_BY(retention_mu_) = false;
  std::atomic<bool> stop_{false};
  std::atomic<bool> stop_subscribe_{false};
  std::atomic<bool> stopped_{false};
  std::string ingest_endpoint_;
  std::string subscribe_endpoint_;
  std::string admin_address_;
};

}  // namespace

Result<std::unique_ptr<Hub>> Hub::Start(const HubConfig& config) {
  auto hub = std::make_unique<HubImpl>(config);
  Status s = hub->Init();
  if (!s.ok()) {
    return s;
  }
  return std::unique_ptr<Hub>(std::move(hub));
}

}  // namespace carehub::hub
