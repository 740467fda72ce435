#include "hub.h"

#include <spdlog/spdlog.h>
#include <unistd.h>
#include <zmq.h>

#include <chrono>
#include <fstream>
#include <thread>
#include <zmq.hpp>

#include "admin_server.h"
#include "carehub/client/curve.h"
#include "carehub/core/log.h"
#include "carehub/core/mutex.h"
#include "carehub/hub/identities.h"
#include "carehub/hub/ingest_pipeline.h"
#include "carehub/hub/store.h"
#include "carehub/hub/store/power_cut.h"
#include "carehub/metrics/registry.h"
#include "carehub/policy/diff.h"
#include "carehub/policy/load.h"
#include "ingest_server.h"
#include "policy_holder.h"
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
    auto log = Logger("hub");
    std::string server_secret;
    if (config_.curve) {
      auto secret = LoadServerSecretKey(config_.server_key_file);
      if (!secret.ok()) {
        return secret.status();
      }
      server_secret = std::move(secret).value();
      auto identities = LoadIdentities(config_.identities_file);
      if (!identities.ok()) {
        return identities.status();
      }
      identities_.Set(identities.value());
      // Before any CURVE socket binds: libzmq lets handshakes through while no handler is bound.
      zap_ = std::make_unique<ZapHandler>(context_, &identities_, &metrics_);
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
    StoreOptions store_options;
    store_options.dir = config_.data_dir;
    store_options.dedup_window_days = config_.dedup_window_days;
    store_options.min_free_disk_bytes = config_.min_free_disk_bytes;
    store_options.salvage_wal = config_.salvage_wal;
    store_options.clock = &clock_;
    store_options.env = PowerCutEnvFromEnvironment();  // null unless a power-cut test asks
    auto store = Store::Open(store_options);
    if (!store.ok()) {
      return store.status();
    }
    store_ = std::move(store).value();
    auto last_seq = store_->events().LastSeq();
    if (!last_seq.ok()) {
      return last_seq.status();
    }
    committed_seq_.store(*last_seq);

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
    pipeline_ =
        std::make_unique<IngestPipeline>(store_.get(), &metrics_, config_.validation,
                                         config_.dedup_window_days, clock_, std::move(may_publish),
                                         config_.quarantine);
    IngestServerOptions ingest_options;
    ingest_options.endpoint = config_.ingest_endpoint;
    ingest_options.max_frame_bytes = config_.max_frame_bytes;
    ingest_options.max_events_per_batch = config_.max_events_per_batch;
    ingest_options.curve_secret_key = server_secret;
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
    subscribe_options.curve_secret_key = server_secret;
    if (config_.durability == Durability::kFsync) {
      subscribe_options.request_wal_sync = [this] { ingest_->committer().RequestWalSync(); };
    }
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

    ingest_thread_ = std::thread([this] { ingest_->Run(stop_); });
    subscribe_thread_ = std::thread([this] { subscribe_->Run(stop_subscribe_); });
    if (config_.retention_max_age_days > 0 || config_.retention_max_age_seconds > 0) {
      retention_thread_ = std::thread([this] { RunRetention(); });
    }
    if (!config_.admin_listen.empty()) {
      std::string token;
      if (!config_.admin_token_file.empty()) {
        std::ifstream in(config_.admin_token_file);
        std::getline(in, token);
        if (token.size() < 16) {
          return Status::Error("bad_config", "admin token file " +
                                                 config_.admin_token_file.string() +
                                                 " must hold a token of at least 16 characters");
        }
      }
      AdminContext ctx;
      ctx.store = store_.get();
      ctx.metrics = &metrics_;
      ctx.pipeline = pipeline_.get();
      ctx.ingest = ingest_.get();
      ctx.subscribe = subscribe_.get();
      ctx.committed_seq = &committed_seq_;
      ctx.reload = [this] { return Reload(); };
      ctx.endpoints_bound = [this] {
        return !ingest_endpoint_.empty() && !subscribe_endpoint_.empty();
      };
      ctx.ingest_endpoint = ingest_endpoint_;
      ctx.subscribe_endpoint = subscribe_endpoint_;
      ctx.durability = config_.durability == Durability::kFsync ? "fsync" : "os";
      admin_ = std::make_unique<AdminServer>(config_.admin_listen, token, std::move(ctx));
      auto admin_bound = admin_->Start();
      if (!admin_bound.ok()) {
        return admin_bound.status();
      }
      admin_address_ = admin_bound.value();
    }
    WriteEndpointsFile();
    log->info("hub started: ingest {} subscribe {} admin {} data {} durability {} last hub_seq {}",
              ingest_endpoint_, subscribe_endpoint_, admin_address_, config_.data_dir.string(),
              config_.durability == Durability::kFsync ? "fsync" : "os", *last_seq);
    if (auto ids = identities_.Get()) {
      Logger("security")
          ->info("CURVE on ingest and subscribe; identities loaded from {}: {} identities, {} keys",
                 config_.identities_file.string(), ids->identities().size(), ids->key_count());
    }
    if (auto p = policy_.Get()) {
      log->info("agreements loaded from {}: {} agreements, {} subscribers, {} opt-outs",
                config_.agreements_file.string(), p->agreements().size(), p->subscribers().size(),
                p->opt_out_count());
    }
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
          << "\", \"admin\": \"" << admin_address_ << "\", \"pid\": " << getpid() << "}\n";
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

  Status Reload() override CAREHUB_EXCLUDES(reload_mu_) {
    MutexLock lock(reload_mu_);
    // Each file is reloaded on its own: an invalid one keeps its old set and does not stop the
    // other from taking effect.
    Status identities = config_.curve ? ReloadIdentities() : Status::Ok();
    // A CURVE hub without agreements (ingest only) still reloads its identities.
    Status agreements =
        config_.curve && config_.agreements_file.empty() ? Status::Ok() : ReloadAgreements();
    return identities.ok() ? agreements : identities;
  }

  // Identities take effect for new handshakes at once, and for the authorisers (so for every
  // message, also on connections already open) at once too: a removed identity can no longer
  // publish or open a subscription, even on a connection it opened before.
  Status ReloadIdentities() CAREHUB_REQUIRES(reload_mu_) {
    auto loaded = LoadIdentities(config_.identities_file);
    if (!loaded.ok()) {
      NoteReload(kIdentitiesReload, loaded.status().message(), /*applied=*/false);
      return loaded.status();
    }
    std::string detail;
    if (auto before = identities_.Get()) {
      for (const auto& change : DiffIdentities(*before, *loaded.value())) {
        detail += change + "\n";
      }
    }
    identities_.Set(loaded.value());
    NoteReload(kIdentitiesReload, detail, /*applied=*/true);
    return Status::Ok();
  }

  Status ReloadAgreements() CAREHUB_REQUIRES(reload_mu_) {
    if (config_.agreements_file.empty()) {
      return Status::Error("no_policy", "the hub was started without an agreements file");
    }
    auto loaded = policy::LoadPolicy(config_.agreements_file);
    if (!loaded.ok()) {
      NoteReload(kAgreementsReload, loaded.status().message(), /*applied=*/false);
      return loaded.status();
    }
    std::string detail;
    if (auto before = policy_.Get()) {
      for (const auto& change : policy::DiffPolicies(*before, *loaded.value())) {
        detail += change.ToString() + "\n";
      }
    }
    policy_.Set(loaded.value());
    NoteReload(kAgreementsReload, detail, /*applied=*/true);
    subscribe_->Wake();
    return Status::Ok();
  }

  // What a reload of one file is called in the audit trail, the metrics and the log.
  struct ReloadKind {
    const char* logger;
    const char* what;  // "identities", "agreements"
    const char* metric;
    const char* help;
    const std::filesystem::path HubConfig::*file;
  };
  static constexpr ReloadKind kIdentitiesReload{
      "security", "identities", "carehub_identities_reloads_total", "Identity reloads, by outcome.",
      &HubConfig::identities_file};
  static constexpr ReloadKind kAgreementsReload{
      "policy", "agreements", "carehub_policy_reloads_total", "Agreement reloads, by outcome.",
      &HubConfig::agreements_file};

  // Audits, counts and logs a reload: applied (with what changed) or refused (with why, the
  // previous set staying in force).
  void NoteReload(const ReloadKind& kind, std::string detail, bool applied) {
    if (applied && detail.empty()) {
      detail = "no changes";
    }
    v1::AuditRecord audit;
    audit.set_at_unix_ms(ToUnixMillis(clock_.Now()));
    audit.set_kind(std::string(kind.what) + (applied ? "_changed" : "_rejected"));
    audit.set_detail(detail);
    (void)store_->audit().Append(audit);
    metrics_.GetCounter(kind.metric, kind.help, {{"outcome", applied ? "applied" : "refused"}})
        .Inc();
    const std::string file = (config_.*kind.file).string();
    if (applied) {
      Logger(kind.logger)->info("{} reloaded from {}: {}", kind.what, file, detail);
    } else {
      Logger(kind.logger)
          ->error("{} reload refused, previous {} stay in force: {}", kind.what, kind.what, detail);
    }
  }

  void Stop() override {
    if (stopped_.exchange(true)) {
      return;
    }
    if (admin_) {
      admin_->Stop();
    }
    // Ingest first: it finishes in-flight batches, so subscribers see everything acknowledged.
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
    admin_.reset();
    ingest_.reset();
    subscribe_.reset();
    // After the CURVE sockets are closed, before the context is.
    zap_.reset();
    pipeline_.reset();
    store_.reset();
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
  Mutex reload_mu_;
  std::unique_ptr<Store> store_;
  std::atomic<uint64_t> committed_seq_{0};
  std::unique_ptr<IngestPipeline> pipeline_;
  std::unique_ptr<IngestServer> ingest_;
  std::unique_ptr<SubscribeServer> subscribe_;
  std::unique_ptr<AdminServer> admin_;
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
