// The first-deployment walkthrough of docs/operations.md, run as written: the ```sh blocks between
// "<!-- walkthrough: begin -->" and "<!-- walkthrough: end -->" are extracted from the doc and run
// in one bash (set -euo pipefail) against the real binaries, so the doc and the behaviour cannot
// drift apart. The only changes, all here and all mechanical:
//   - the documented ports (7400, 7401, 7480, 9470, 2575) become free ones, and /var/lib/carehub
//     and /etc/carehub a scratch dir (in the doc, the templates and the unit files alike);
//   - the templates of deploy/config/ are copied into the scratch /etc/carehub, as the package
//     installs them;
//   - `systemctl enable --now UNIT` runs the ExecStart line of deploy/systemd/UNIT.service in the
//     background, `systemctl reload UNIT` sends it SIGHUP (the units' ExecReload), and `chown` is
//     a no-op (no carehub group on a test machine).

#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "harness/ports.h"
#include "ops_common.h"

namespace carehub::itest::ops {
namespace {

namespace fs = std::filesystem;

size_t CountLinesOf(const fs::path& file) {
  std::ifstream in(file);
  size_t n = 0;
  for (std::string line; std::getline(in, line);) {
    n += line.empty() ? 0 : 1;
  }
  return n;
}

// The ```sh blocks of the walkthrough section, in order, as one script.
std::string ExtractWalkthrough(const std::string& doc) {
  const auto begin = doc.find("<!-- walkthrough: begin -->");
  const auto end = doc.find("<!-- walkthrough: end -->");
  if (begin == std::string::npos || end == std::string::npos || end < begin) {
    return "";
  }
  std::istringstream in(doc.substr(begin, end - begin));
  std::string script;
  bool in_block = false;
  for (std::string line; std::getline(in, line);) {
    if (!in_block && line == "```sh") {
      in_block = true;
    } else if (in_block && line == "```") {
      in_block = false;
    } else if (in_block) {
      script += line + "\n";
    }
  }
  return script;
}

struct Moves {
  std::map<int, int> ports;
  std::string state_dir;
  std::string etc_dir;
  std::string Apply(std::string text) const {
    for (const auto& [from, to] : ports) {
      text = std::regex_replace(text, std::regex("\\b" + std::to_string(from) + "\\b"),
                                std::to_string(to));
    }
    text = std::regex_replace(text, std::regex("/var/lib/carehub"), state_dir);
    return std::regex_replace(text, std::regex("/etc/carehub"), etc_dir);
  }
};

TEST(OpsWalkthrough, FirstCurveDeploymentAndDayTwoAsDocumented) {
  const fs::path source(CAREHUB_SOURCE_DIR);
  const std::string script = ExtractWalkthrough(ReadFileText(source / "docs" / "operations.md"));
  ASSERT_FALSE(script.empty()) << "no walkthrough section in docs/operations.md";
  ASSERT_NE(script.find("carehubctl reload"), std::string::npos);

  TempDir work("ops-walkthrough");
  const std::vector<int> offsets = {0, 1, 80, 70, 75};
  auto base = FindFreePortBase(offsets, 22);
  ASSERT_TRUE(base.has_value()) << "no free loopback ports";
  Moves moves;
  moves.ports = {
      {7400, *base}, {7401, *base + 1}, {7480, *base + 80}, {9470, *base + 70}, {2575, *base + 75}};
  moves.state_dir = (work.path() / "var-lib-carehub").string();
  moves.etc_dir = (work.path() / "etc-carehub").string();
  const fs::path etc = moves.etc_dir;
  const fs::path units = work.path() / "units";
  const fs::path logs = work.path() / "logs";
  fs::create_directories(etc);
  fs::create_directories(units);
  fs::create_directories(logs);
  // What systemd's StateDirectory= makes for the two units.
  fs::create_directories(moves.state_dir);
  fs::create_directories(moves.state_dir + "-adapter-hl7");
  // As the package installs them (0644: the walkthrough's step 6 sets the secrets' modes).
  for (const auto& entry : fs::directory_iterator(source / "deploy" / "config")) {
    if (entry.path().extension() == ".yaml") {
      std::ofstream(etc / entry.path().filename()) << moves.Apply(ReadFileText(entry.path()));
    }
  }
  for (const char* unit : {"carehub", "carehub-adapter-hl7"}) {
    std::string text =
        moves.Apply(ReadFileText(source / "deploy" / "systemd" / (std::string(unit) + ".service")));
    text = std::regex_replace(text, std::regex("/usr/bin/"),
                              BinaryPath("carehub").parent_path().string() + "/");
    std::ofstream(units / (std::string(unit) + ".service")) << text;
  }

  const std::string preamble =
      "set -euo pipefail\n"
      "export PATH='" +
      BinaryPath("carehub").parent_path().string() +
      "':\"$PATH\"\n"
      "export ETC='" +
      etc.string() +
      "'\n"
      "export CAREHUB_ADMIN=127.0.0.1:" +
      std::to_string(*base + 80) +
      "\n"
      "chown() { :; }\n"
      "systemctl() {\n"
      "  local unit\n"
      "  case \"$1\" in\n"
      "    enable) unit=$3\n"
      "      (cd / && exec $(sed -n 's/^ExecStart=//p' '" +
      units.string() + "'/\"$unit\".service)) >> '" + logs.string() +
      "'/\"$unit\".log 2>&1 &\n"
      "      echo $! > '" +
      logs.string() +
      "'/\"$unit\".pid ;;\n"
      "    reload) kill -HUP \"$(cat '" +
      logs.string() +
      "'/\"$2\".pid)\" ;;\n"
      "    *) echo \"systemctl shim: $*\" >&2; return 1 ;;\n"
      "  esac\n"
      "}\n";
  const fs::path script_file = work.path() / "walkthrough.sh";
  std::ofstream(script_file) << preamble << moves.Apply(script);

  auto run = RunCommand({SystemTool("bash"), script_file.string()}, work.path(),
                        std::chrono::seconds(240));
  // Stop what the walkthrough started, whatever happened.
  for (const char* unit : {"carehub-adapter-hl7", "carehub"}) {
    const std::string pid_text = ReadFileText(logs / (std::string(unit) + ".pid"));
    if (!pid_text.empty()) {
      const pid_t pid = std::stoi(pid_text);
      ::kill(pid, SIGTERM);
      for (int i = 0; i < 100 && ::kill(pid, 0) == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      ::kill(pid, SIGKILL);
    }
  }
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  const std::string hub_log = ReadFileText(logs / "carehub.log");
  ASSERT_TRUE(run->status.Exited(0))
      << "the walkthrough failed: " << run->status.ToString() << "\n--- stdout\n"
      << run->out << "\n--- stderr\n"
      << run->err << "\n--- hub log (tail)\n"
      << hub_log.substr(hub_log.size() > 4000 ? hub_log.size() - 4000 : 0) << "\n--- adapter log\n"
      << ReadFileText(logs / "carehub-adapter-hl7.log");

  // What the walkthrough's commands showed, checked here so the doc needs no test code.
  const std::string& out = run->out;
  EXPECT_NE(out.find("MSA|AA"), std::string::npos) << out;
  EXPECT_NE(out.find("OK agreements.yaml"), std::string::npos) << out;
  EXPECT_NE(out.find("agreements: reloaded from"), std::string::npos) << out;
  EXPECT_NE(out.find("change(s)"), std::string::npos) << out;
  EXPECT_NE(out.find("Keys in use"), std::string::npos) << out;
  EXPECT_NE(out.find("REMOVED"), std::string::npos) << out;
  EXPECT_NE(out.find("record 1 dismissed by"), std::string::npos) << out;
  EXPECT_NE(out.find("quarantine_dismissed"), std::string::npos) << out;
  EXPECT_NE(out.find("identities_changed"), std::string::npos) << out;
  // At least once: 1, or 2 if the first run's ack did not reach the hub before it exited.
  EXPECT_GE(CountLinesOf(etc / "ics.ndjson"), 1u) << "the subscriber did not get the admission";
  // The template logs JSON: every line of the hub's log is one JSON object.
  std::istringstream lines(hub_log);
  size_t n = 0;
  for (std::string line; std::getline(lines, line); ++n) {
    auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(parsed.is_object()) << "hub log line " << n << ": " << line;
  }
  EXPECT_GT(n, 5u);
}

}  // namespace
}  // namespace carehub::itest::ops
