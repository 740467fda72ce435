#include "harness/hub_process.h"

#include <signal.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

namespace carehub::itest {
namespace {

YAML::Node MergeNodes(const YAML::Node& base, const YAML::Node& over) {
  if (!base.IsMap() || !over.IsMap()) {
    return YAML::Clone(over);
  }
  YAML::Node out = YAML::Clone(base);
  for (const auto& kv : over) {
    const auto key = kv.first.as<std::string>();
    YAML::Node existing = out[key];
    if (existing.IsDefined() && !existing.IsNull()) {
      out[key] = MergeNodes(existing, kv.second);
    } else {
      out[key] = YAML::Clone(kv.second);
    }
  }
  return out;
}

// The last `max_bytes` of the log: enough to see why a start failed.
std::string LogTail(const std::filesystem::path& path, size_t max_bytes = 4000) {
  std::string text = ReadFileText(path);
  return text.size() > max_bytes ? text.substr(text.size() - max_bytes) : text;
}

}  // namespace

std::filesystem::path BinaryPath(const std::string& name) {
  return std::filesystem::path(CAREHUB_BIN_DIR) / name;
}

Result<std::string> MergeYaml(const std::string& base, const std::string& overrides) {
  try {
    YAML::Node b = YAML::Load(base);
    YAML::Node o = YAML::Load(overrides);
    if (!b.IsMap()) {
      return Status::Error("bad_yaml", "base config is not a YAML mapping");
    }
    if (!o.IsDefined() || o.IsNull()) {
      return base;
    }
    if (!o.IsMap()) {
      return Status::Error("bad_yaml", "overrides are not a YAML mapping: " + overrides);
    }
    YAML::Emitter out;
    out << MergeNodes(b, o);
    return std::string(out.c_str()) + "\n";
  } catch (const YAML::Exception& e) {
    return Status::Error("bad_yaml", e.what());
  }
}

HubProcessOptions HubOptions(std::string tag, std::string extra_yaml, std::string durability) {
  HubProcessOptions o;
  o.tag = std::move(tag);
  o.extra_yaml = std::move(extra_yaml);
  o.durability = std::move(durability);
  return o;
}

Result<std::string> HubProcess::ConfigYaml(const std::filesystem::path& dir,
                                           const HubProcessOptions& options) {
  // Loopback and port 0 everywhere: tests run in parallel and must never collide on a port.
  // No agreements: ingest tests need none; subscription tests add `policy:` in extra_yaml.
  std::ostringstream base;
  base << "hub:\n"
       << "  data_dir: " << (dir / "data").string() << "\n"
       << "  durability: " << options.durability << "\n"
       << "ingest:\n"
       << "  endpoint: tcp://127.0.0.1:0\n"
       << "subscribe:\n"
       << "  endpoint: tcp://127.0.0.1:0\n"
       << "admin:\n"
       << "  listen: 127.0.0.1:0\n"
       << "logging:\n"
       << "  level: info\n"
       << "  format: text\n";
  return MergeYaml(base.str(), options.extra_yaml);
}

HubProcess::HubProcess(HubProcessOptions options)
    : options_(std::move(options)), dir_(options_.tag) {}

HubProcess::~HubProcess() = default;

Result<std::unique_ptr<HubProcess>> HubProcess::Start(HubProcessOptions options) {
  std::unique_ptr<HubProcess> hub(new HubProcess(std::move(options)));
  if (!std::filesystem::is_directory(hub->dir())) {
    return Status::Error("no_temp_dir", "cannot create temp dir " + hub->dir().string());
  }
  auto yaml = ConfigYaml(hub->dir(), hub->options_);
  if (!yaml.ok()) {
    return yaml.status();
  }
  {
    std::ofstream out(hub->config_path());
    out << yaml.value();
    if (!out) {
      return Status::Error("write_failed", "cannot write " + hub->config_path().string());
    }
  }
  Status s = hub->Launch();
  if (!s.ok()) {
    return s;
  }
  return hub;
}

Status HubProcess::Launch() {
  // A stale endpoints.json from the previous run must not be mistaken for this run's.
  std::error_code ec;
  auto endpoints_file = data_dir() / "endpoints.json";
  std::filesystem::remove(endpoints_file, ec);
  std::vector<std::string> argv;
  if (!options_.environment.empty()) {
    // env(1) execs the hub in place: the pid stays the child's.
    argv.push_back("/usr/bin/env");
    argv.insert(argv.end(), options_.environment.begin(), options_.environment.end());
  }
  argv.insert(argv.end(), {BinaryPath("carehub").string(), "--config", config_path().string()});
  auto child = ChildProcess::Spawn(argv, dir() / "hub.out", log_path());
  if (!child.ok()) {
    return child.status();
  }
  child_.emplace(std::move(child).value());
  auto deadline = std::chrono::steady_clock::now() + Scaled(options_.start_timeout);
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto exited = child_->Poll()) {
      return Status::Error("hub_exited", "carehub exited during start-up (" + exited->ToString() +
                                             "); log:\n" + LogTail(log_path()));
    }
    std::string text = ReadFileText(endpoints_file);
    if (!text.empty()) {
      auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (!json.is_discarded() && json.value("pid", -1) == child_->pid()) {
        ingest_endpoint_ = json.value("ingest", "");
        subscribe_endpoint_ = json.value("subscribe", "");
        admin_address_ = json.value("admin", "");
        return Status::Ok();
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Kill();
  return Status::Error("hub_start_timeout", "carehub did not write endpoints.json within " +
                                                std::to_string(options_.start_timeout.count()) +
                                                " ms; log:\n" + LogTail(log_path()));
}

Status HubProcess::Restart() {
  if (running()) {
    return Status::Error("hub_running", "Restart() needs the hub stopped or killed first");
  }
  child_.reset();
  return Launch();
}

Result<ExitStatus> HubProcess::Stop(std::chrono::milliseconds timeout) {
  if (!child_) {
    return Status::Error("not_started", "the hub was never started");
  }
  if (auto exited = child_->Poll()) {
    return *exited;
  }
  child_->Signal(SIGTERM);
  if (auto exited = child_->Wait(timeout)) {
    return *exited;
  }
  Kill();
  return Status::Error("stop_timeout",
                       "carehub did not exit within " + std::to_string(timeout.count()) +
                           " ms of SIGTERM and was killed; log:\n" + LogTail(log_path()));
}

void HubProcess::Kill() {
  if (child_ && child_->running()) {
    child_->Signal(SIGKILL);
    // SIGKILL cannot be caught: the wait is bounded only to keep every loop bounded.
    (void)child_->Wait(std::chrono::seconds(30));
  }
}

void HubProcess::Signal(int sig) const {
  if (child_) {
    child_->Signal(sig);
  }
}

std::optional<ExitStatus> HubProcess::Wait(std::chrono::milliseconds timeout) {
  if (!child_) {
    return std::nullopt;
  }
  return child_->Wait(timeout);
}

bool HubProcess::running() { return child_ && !child_->Poll() && child_->running(); }

std::optional<uint64_t> HubProcess::RssBytes() const {
  if (!child_ || !child_->running()) {
    return std::nullopt;
  }
  std::ifstream in("/proc/" + std::to_string(child_->pid()) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      std::istringstream fields(line.substr(6));
      uint64_t kib = 0;
      fields >> kib;
      return kib * 1024;
    }
  }
  return std::nullopt;
}

Result<std::unique_ptr<hub::Store>> HubProcess::OpenStore() const {
  if (child_ && child_->running()) {
    return Status::Error("hub_running", "stop the hub before opening its store");
  }
  hub::StoreOptions options;
  options.dir = data_dir();
  // Inspection reads little; no need for the daemon's large cache.
  options.block_cache_bytes = 8u << 20;
  return hub::Store::Open(options);
}

std::vector<StoredEvent> ReadAllEvents(hub::Store& store) {
  std::vector<StoredEvent> out;
  const uint64_t last = MustRead(store.events().LastSeq(), "last seq");
  Status scanned = store.events().Scan(0, last, [&](uint64_t seq, std::string_view bytes) {
    StoredEvent e;
    e.hub_seq = seq;
    if (!e.event.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      // An unparsable stored event is a finding: keep it with an empty event so counts show it.
      e.event.Clear();
    }
    out.push_back(std::move(e));
    return true;
  });
  MustSucceed(scanned, "scan events");
  return out;
}

std::vector<v1::QuarantineRecord> ReadAllQuarantine(hub::Store& store) {
  std::vector<v1::QuarantineRecord> out;
  uint64_t after = 0;
  // Bounded: each round either advances `after` or ends the loop.
  while (true) {
    auto page = MustRead(store.quarantine().List(after, 10'000), "list quarantine");
    if (page.empty()) {
      break;
    }
    after = page.back().id();
    for (auto& r : page) {
      out.push_back(std::move(r));
    }
  }
  return out;
}

v1::Event WithoutHubFields(v1::Event event) {
  if (event.has_envelope()) {
    event.mutable_envelope()->clear_hub_seq();
    event.mutable_envelope()->clear_received_at();
  }
  return event;
}

}  // namespace carehub::itest
