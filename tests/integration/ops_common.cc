#include "ops_common.h"

#include <httplib.h>
#include <unistd.h>

#include <cstdlib>
#include <regex>
#include <sstream>

#include "harness/workload.h"

namespace carehub::itest::ops {

std::filesystem::path DemoAgreements() {
  return std::filesystem::path(CAREHUB_SOURCE_DIR) / "config" / "agreements.yaml";
}

std::string DemoAgreementsYaml() {
  return "policy:\n  agreements: " + DemoAgreements().string() + "\n";
}

HttpAnswer HttpGet(const std::string& address, const std::string& path) {
  httplib::Client client("http://" + address);
  client.set_connection_timeout(std::chrono::seconds(3));
  client.set_read_timeout(std::chrono::seconds(15));
  auto res = client.Get(path);
  if (!res) {
    return {};
  }
  return {res->status, res->body};
}

Result<CommandResult> RunTool(const std::string& name, const std::vector<std::string>& args,
                              const std::filesystem::path& work_dir,
                              std::chrono::milliseconds timeout) {
  std::vector<std::string> argv{BinaryPath(name).string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, work_dir, timeout);
}

Result<nlohmann::json> RunPublish(const HubProcess& hub, const std::filesystem::path& work_dir,
                                  uint64_t events, uint64_t seed,
                                  const std::vector<std::string>& extra,
                                  std::chrono::milliseconds timeout) {
  std::vector<std::string> args{"--endpoint",
                                hub.ingest_endpoint(),
                                "--generate",
                                std::to_string(events),
                                "--seed",
                                std::to_string(seed),
                                "--now-unix",
                                std::to_string(kFixedNowUnix),
                                "--outbox",
                                (work_dir / ("outbox-" + std::to_string(seed))).string(),
                                "--no-sync-outbox",
                                "--timeout",
                                std::to_string(timeout.count() / 1000)};
  args.insert(args.end(), extra.begin(), extra.end());
  auto run = RunTool("carehub-publish", args, work_dir, timeout + std::chrono::seconds(10));
  if (!run.ok()) {
    return run.status();
  }
  if (!run->status.Exited(0)) {
    return Status::Error("publish_failed",
                         "carehub-publish " + run->status.ToString() + ": " + run->err + run->out);
  }
  auto summary = nlohmann::json::parse(run->out, nullptr, /*allow_exceptions=*/false);
  if (!summary.is_object()) {
    return Status::Error("publish_failed", "carehub-publish printed no JSON summary: " + run->out);
  }
  return summary;
}

std::vector<Sample> ParseSamples(const std::string& exposition) {
  // name{label="value",...} value [timestamp]
  static const std::regex kLine(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$)");
  static const std::regex kLabel(R"re(([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)")re");
  std::vector<Sample> out;
  std::istringstream in(exposition);
  std::string line;
  while (std::getline(in, line)) {
    std::smatch m;
    if (line.empty() || line[0] == '#' || !std::regex_match(line, m, kLine)) {
      continue;
    }
    Sample s;
    s.name = m[1];
    std::string labels = m[3];
    for (std::sregex_iterator it(labels.begin(), labels.end(), kLabel), end; it != end; ++it) {
      s.labels[(*it)[1]] = (*it)[2];
    }
    try {
      s.value = std::stod(m[4]);
    } catch (...) {
      continue;
    }
    out.push_back(std::move(s));
  }
  return out;
}

double SumSamples(const std::vector<Sample>& samples, const std::string& name,
                  const std::map<std::string, std::string>& match) {
  double sum = 0;
  for (const auto& s : samples) {
    if (s.name != name) {
      continue;
    }
    bool ok = true;
    for (const auto& [k, v] : match) {
      auto it = s.labels.find(k);
      ok = ok && it != s.labels.end() && it->second == v;
    }
    if (ok) {
      sum += s.value;
    }
  }
  return sum;
}

bool HasSample(const std::vector<Sample>& samples, const std::string& name) {
  for (const auto& s : samples) {
    if (s.name == name) {
      return true;
    }
  }
  return false;
}

namespace {

std::vector<std::string> ChromiumArgs(const std::filesystem::path& profile) {
  // No network on the CI machines: nothing may try to reach Google's services.
  return {SystemTool("chromium"),
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-quic",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
          "--disable-dev-shm-usage",
          "--user-data-dir=" + profile.string(),
          "--enable-logging=stderr",
          "--v=0"};
}

}  // namespace

// Console errors and uncaught exceptions in chromium's log (CONSOLE lines at any level that say
// "Uncaught" or "Error", and failed resource loads).
std::vector<std::string> ConsoleErrors(const std::string& log) {
  std::vector<std::string> out;
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    bool console = line.find("CONSOLE") != std::string::npos;
    if ((console &&
         (line.find("Uncaught") != std::string::npos || line.find("Error") != std::string::npos ||
          line.find("Failed to load resource") != std::string::npos)) ||
        line.find("Uncaught") != std::string::npos) {
      out.push_back(line);
    }
  }
  return out;
}

Result<CommandResult> RunChromium(const std::filesystem::path& work, const std::string& tag,
                                  std::vector<std::string> extra, const std::string& url) {
  auto argv = ChromiumArgs(work / ("profile-" + tag));
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back(url);
  return RunCommand(argv, work, std::chrono::seconds(45));
}

// Text of the element with this id in dumped HTML ("" when absent).
std::string ElementText(const std::string& html, const std::string& id) {
  std::smatch m;
  std::regex re("id=\"" + id + "\"[^>]*>([^<]*)<");
  return std::regex_search(html, m, re) ? m[1].str() : "";
}

}  // namespace carehub::itest::ops
