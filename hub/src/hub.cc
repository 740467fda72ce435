#include "carehub/hub/hub.h"

#include <spdlog/spdlog.h>

#include <fstream>
#include <thread>
#include <unistd.h>
#include <zmq.hpp>

#include "carehub/hub/ingest_pipeline.h"
#include "carehub/hub/ingest_server.h"
#include "carehub/hub/store.h"
#include "carehub/metrics/registry.h"

namespace carehub::hub {
namespace {

class HubImpl final : public Hub {
 public:
  explicit HubImpl(HubConfig config) : config_(std::move(config)) {}
  ~HubImpl() override { Stop(); }

  Status Init() {
    if (!spdlog::get("hub")) {
      SetUpLogging(config_.log_level, config_.log_format);
    }
    auto store = Store::Open(StoreOptions{config_.data_dir, config_.dedup_window_days});
    if (!store.ok()) {
      return store.status();
    }
    store_ = std::move(store).value();
    pipeline_ = std::make_unique<IngestPipeline>(store_.get(), &metrics_, config_.validation,
                                                 config_.dedup_window_days,
                                                 SystemClock::Instance(), nullptr);
    IngestServerOptions ingest_options;
    ingest_options.endpoint = config_.ingest_endpoint;
    ingest_options.max_frame_bytes = config_.max_frame_bytes;
    ingest_options.max_events_per_batch = config_.max_events_per_batch;
    ingest_ = std::make_unique<IngestServer>(context_, ingest_options, pipeline_.get(),
                                             store_.get(),
                                             config_.durability == Durability::kFsync, &metrics_);
    auto bound = ingest_->Bind();
    if (!bound.ok()) {
      return bound.status();
    }
    ingest_endpoint_ = bound.value();
    ingest_thread_ = std::thread([this] { ingest_->Run(stop_); });
    WriteEndpointsFile();
    spdlog::get("hub")->info("hub started: ingest {} data {} durability {} last hub_seq {}",
                             ingest_endpoint_, config_.data_dir.string(),
                             config_.durability == Durability::kFsync ? "fsync" : "os",
                             store_->LastSeq());
    return Status::Ok();
  }

  // Tests and tools that start the hub with port 0 read the bound endpoints from here.
  void WriteEndpointsFile() {
    auto path = config_.data_dir / "endpoints.json";
    auto tmp = path;
    tmp += ".tmp";
    {
      std::ofstream out(tmp);
      out << "{\"ingest\": \"" << ingest_endpoint_ << "\", \"subscribe\": \""
          << subscribe_endpoint_ << "\", \"admin\": \"" << admin_address_ << "\", \"pid\": "
          << getpid() << "}\n";
    }
    std::filesystem::rename(tmp, path);
  }

  std::string ingest_endpoint() const override { return ingest_endpoint_; }
  std::string subscribe_endpoint() const override { return subscribe_endpoint_; }
  std::string admin_address() const override { return admin_address_; }

  Status Reload() override { return Status::Ok(); }

  void Stop() override {
    if (stopped_.exchange(true)) {
      return;
    }
    stop_.store(true);
    if (ingest_thread_.joinable()) {
      ingest_thread_.join();
    }
    ingest_.reset();
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
  std::unique_ptr<Store> store_;
  std::unique_ptr<IngestPipeline> pipeline_;
  std::unique_ptr<IngestServer> ingest_;
  std::thread ingest_thread_;
  std::atomic<bool> stop_{false};
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
