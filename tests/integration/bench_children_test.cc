// carehub-bench starts real daemons (carehub, nats-server) as its children. When the benchmark
// dies without cleaning up — a ctest timeout, a closed pipe (`carehub-bench | head`), kill -9 —
// they must die with it: a hub left running holds ports, files and a core of the 2-core machine
// every later test and measurement shares (one was found still running after a piped run).
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "harness/child_process.h"

namespace carehub::itest {
namespace {

namespace fs = std::filesystem;

// Pids of the processes whose command line mentions `text`, this test's own excepted.
std::vector<pid_t> ProcessesMentioning(const std::string& text) {
  std::vector<pid_t> found;
  std::error_code ec;
  for (auto it = fs::directory_iterator("/proc", ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    const pid_t pid = static_cast<pid_t>(std::stol(name));
    if (pid == getpid()) {
      continue;
    }
    std::string cmdline = ReadFileText(it->path() / "cmdline");
    for (char& c : cmdline) {
      c = c == '\0' ? ' ' : c;
    }
    if (cmdline.find(text) != std::string::npos) {
      found.push_back(pid);
    }
  }
  return found;
}

// The first file named `name` under `dir`, or empty.
fs::path FindFile(const fs::path& dir, const std::string& name) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->path().filename() == name) {
      return it->path();
    }
  }
  return {};
}

struct Case {
  const char* name;
  std::vector<std::string> section_args;
  const char* started_marker;  // a file the child writes once it runs
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class BenchChildrenTest : public ::testing::TestWithParam<Case> {};

TEST_P(BenchChildrenTest, AKilledBenchmarkLeavesNoDaemonRunning) {
  const Case& c = GetParam();
  TempDir work(std::string("bench-children-") + c.name);
  std::vector<std::string> argv = {std::string(CAREHUB_BIN_DIR) + "/carehub-bench", "--work-dir",
                                   work.path().string()};
  argv.insert(argv.end(), c.section_args.begin(), c.section_args.end());
  auto bench = ChildProcess::Spawn(argv, work.path() / "bench.out", work.path() / "bench.err");
  ASSERT_TRUE(bench.ok()) << bench.status().ToString();

  // The section's daemon is up once its marker file exists and a process of this run's work dir
  // runs (a daemon's command line names a file under it; the benchmark's own names the dir alone).
  // The marker can appear a moment before the daemon's exec, so both are waited for.
  const std::string run_files = work.path().string() + "/";
  const auto deadline = std::chrono::steady_clock::now() + Scaled(std::chrono::seconds(120));
  bool started = false;
  while (!started && std::chrono::steady_clock::now() < deadline && bench->running()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    started =
        !FindFile(work.path(), c.started_marker).empty() && !ProcessesMentioning(run_files).empty();
    (void)bench->Poll();
  }
  ASSERT_TRUE(started) << "the benchmark never started its daemon; its stderr:\n"
                       << ReadFileText(work.path() / "bench.err");

  bench->Signal(SIGKILL);
  ASSERT_TRUE(bench->Wait(std::chrono::seconds(30)).has_value());

  // The kernel signals the children as their parent dies; allow them to be reaped by init.
  std::vector<pid_t> left = ProcessesMentioning(run_files);
  const auto gone_by = std::chrono::steady_clock::now() + Scaled(std::chrono::seconds(10));
  while (!left.empty() && std::chrono::steady_clock::now() < gone_by) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    left = ProcessesMentioning(run_files);
  }
  for (pid_t pid : left) {
    ADD_FAILURE() << "process " << pid << " outlived the benchmark: "
                  << ReadFileText("/proc/" + std::to_string(pid) + "/cmdline");
    kill(pid, SIGKILL);  // not left behind for the tests after this one
  }
}

INSTANTIATE_TEST_SUITE_P(
    Daemons, BenchChildrenTest,
    ::testing::Values(Case{"hub", {"--ingest", "--events", "1000000"}, "endpoints.json"},
                      Case{"nats", {"--nats", "--nats-events", "1000000"}, "nats.log"}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace carehub::itest
