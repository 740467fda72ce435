#include "hub_runner.h"

#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <vector>

namespace carehub::bench {
namespace {

std::string ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

Result<std::unique_ptr<HubRunner>> HubRunner::Start(HubRunOptions options) {
  std::unique_ptr<HubRunner> hub(new HubRunner(std::move(options)));
  auto s = hub->Launch();
  if (!s.ok()) {
    return s;
  }
  return hub;
}

Status HubRunner::Launch() {
  std::error_code ec;
  std::filesystem::create_directories(data_dir(), ec);
  if (ec) {
    return Status::Error("bench_setup", "cannot create " + data_dir().string());
  }
  std::filesystem::remove(data_dir() / "endpoints.json", ec);
  auto config = options_.dir / "hub.yaml";
  {
    std::ofstream out(config);
    out << "hub:\n  data_dir: " << data_dir().string() << "\n  durability: " << options_.durability
        << "\ningest:\n  endpoint: tcp://127.0.0.1:0\n  max_events_per_batch: 10000\n"
        << "subscribe:\n  endpoint: tcp://127.0.0.1:0\n  subscriber_timeout_ms: 120000\n"
        << "admin:\n  listen: 127.0.0.1:0\nlogging:\n  level: warn\n";
    if (!options_.server_key_file.empty() && !options_.identities_file.empty()) {
      out << "security:\n  mode: curve\n  server_key_file: " << options_.server_key_file.string()
          << "\n  identities: " << options_.identities_file.string() << "\n";
    } else {
      out << "security:\n  mode: plain\n";
    }
    if (!options_.agreements_file.empty()) {
      out << "policy:\n  agreements: " << options_.agreements_file.string() << "\n";
    }
    out << options_.extra_yaml;
  }
  auto log = options_.dir / "hub.log";
  const std::string bin = options_.binary.string();
  // The test harness's child process: the kernel kills the hub if the benchmark dies (a ctest
  // timeout, a closed pipe, kill -9), so no hub is left behind holding its ports, cores and files.
  auto spawned = itest::ChildProcess::Spawn({bin, "--config", config.string()}, log, log);
  if (!spawned.ok()) {
    return Status::Error("bench_setup", "cannot run " + bin + ": " + spawned.status().message());
  }
  child_.emplace(std::move(spawned).value());
  pid_ = child_->pid();
  auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (const auto ended = child_->Poll()) {
      pid_ = -1;
      child_.reset();
      return Status::Error("bench_setup",
                           "carehub exited (" + ended->ToString() + "): " + ReadAll(log));
    }
    auto text = ReadAll(data_dir() / "endpoints.json");
    if (!text.empty()) {
      auto j = nlohmann::json::parse(text, nullptr, false);
      if (!j.is_discarded() && j.value("pid", 0) == pid_) {
        ingest_ = j.value("ingest", "");
        subscribe_ = j.value("subscribe", "");
        admin_ = j.value("admin", "");
        replication_ = j.value("replication", "");
        return Status::Ok();
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return Status::Error("bench_setup", "carehub did not start in time: " + ReadAll(log));
}

Status HubRunner::Stop(std::chrono::milliseconds timeout) {
  if (!child_) {
    return Status::Ok();
  }
  child_->Signal(SIGTERM);
  std::optional<itest::ExitStatus> ended = child_->Wait(timeout);
  child_.reset();  // kills and reaps it if it is still running
  pid_ = -1;
  if (!ended || !ended->Exited(0)) {
    return Status::Error("hub_stop", "carehub did not stop cleanly (" +
                                         (ended ? ended->ToString() : "killed") + ")");
  }
  return Status::Ok();
}

HubRunner::~HubRunner() { (void)Stop(); }

uint64_t ProcStatusBytes(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      return std::stoull(line.substr(field.size() + 1)) * 1024;  // "VmHWM:   1234 kB"
    }
  }
  return 0;
}

uint64_t HubRunner::PeakRssBytes() const { return pid_ > 0 ? ProcStatusBytes(pid_, "VmHWM") : 0; }
uint64_t HubRunner::RssBytes() const { return pid_ > 0 ? ProcStatusBytes(pid_, "VmRSS") : 0; }

uint64_t DirectoryBytes(const std::filesystem::path& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) {
      auto size = it->file_size(size_ec);
      if (!size_ec) {
        total += size;
      }
    }
  }
  return total;
}

uint64_t HubRunner::DataDirBytes() const { return DirectoryBytes(data_dir()); }

std::map<std::string, HubRunner::ThreadUse> HubRunner::ThreadUsage() const {
  std::map<std::string, ThreadUse> out;
  if (pid_ <= 0) {
    return out;
  }
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  std::error_code ec;
  const std::filesystem::path tasks = "/proc/" + std::to_string(pid_) + "/task";
  for (auto it = std::filesystem::directory_iterator(tasks, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    // "tid (comm) state ppid ..." with minflt the 10th field, utime and stime the 14th and 15th;
    // comm may hold spaces or parentheses, so fields are counted from the last ')'.
    const std::string stat = ReadAll(it->path() / "stat");
    const auto open = stat.find('(');
    const auto close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close < open) {
      continue;
    }
    std::istringstream fields(stat.substr(close + 2));
    std::string field;
    double utime = 0, stime = 0;
    uint64_t minflt = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i) {
      if (i == 10) {
        minflt = std::strtoull(field.c_str(), nullptr, 10);
      } else if (i == 14) {
        utime = std::atof(field.c_str());
      } else if (i == 15) {
        stime = std::atof(field.c_str());
      }
    }
    ThreadUse& use = out[stat.substr(open + 1, close - open - 1)];
    use.cpu_seconds += (utime + stime) / ticks;
    use.minor_faults += minflt;
  }
  return out;
}

std::string HubRunner::Metrics() const { return Get("/metrics"); }

std::string HubRunner::Get(const std::string& path) const {
  auto colon = admin_.rfind(':');
  if (colon == std::string::npos) {
    return "";
  }
  httplib::Client client(admin_.substr(0, colon), std::stoi(admin_.substr(colon + 1)));
  client.set_read_timeout(10, 0);
  auto res = client.Get(path);
  return res && res->status == 200 ? res->body : "";
}

HubRunner::Settled HubRunner::WaitCompactionsSettled(std::chrono::seconds limit) const {
  const auto start = std::chrono::steady_clock::now();
  auto waited = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  for (int quiet = 0; quiet < 3;) {
    if (waited() > static_cast<double>(limit.count())) {
      return {false, waited()};
    }
    const std::string text = Metrics();
    // A scrape without the gauges (failed, or taken before they exist) proves nothing.
    const auto running = ScrapeTotal(text, "carehub_store_compactions_running");
    const auto pending = ScrapeTotal(text, "carehub_store_compaction_pending_bytes");
    quiet = running == 0.0 && pending == 0.0 ? quiet + 1 : 0;
    if (quiet < 3) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  return {true, waited()};
}

HistogramTotals ScrapeHistogram(const std::string& text, const std::string& name) {
  return {ScrapeSum(text, name + "_sum"), ScrapeSum(text, name + "_count")};
}

double ScrapeCountAbove(const std::string& text, const std::string& name, double bound) {
  // Lines `<name>_bucket{le="<bound>"} <count>`; the bound as the registry prints it (17 digits).
  const std::string prefix = name + "_bucket{le=\"";
  std::optional<double> at_bound, total;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) != 0) {
      continue;
    }
    const auto quote = line.find('"', prefix.size());
    const auto space = line.rfind(' ');
    if (quote == std::string::npos || space == std::string::npos) {
      continue;
    }
    const std::string le = line.substr(prefix.size(), quote - prefix.size());
    const double count = std::atof(line.c_str() + space + 1);
    if (le == "+Inf") {
      total = count;
    } else if (std::fabs(std::atof(le.c_str()) - bound) <= 1e-12 * std::max(1.0, bound)) {
      at_bound = count;
    }
  }
  return at_bound && total ? *total - *at_bound : 0;
}

std::optional<double> ScrapeTotal(const std::string& text, const std::string& name) {
  std::optional<double> total;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name, 0) == 0 && line.size() > name.size() &&
        (line[name.size()] == ' ' || line[name.size()] == '{')) {
      const auto space = line.rfind(' ');
      total = total.value_or(0) + std::atof(line.c_str() + space + 1);
    }
  }
  return total;
}

double ScrapeSum(const std::string& text, const std::string& name) {
  return ScrapeTotal(text, name).value_or(0);
}

}  // namespace carehub::bench
