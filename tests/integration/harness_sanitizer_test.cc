// The harness's part in `make test-sanitize`: a sanitizer report on a child's stderr fails the test
// that started the child, and CAREHUB_TIME_SCALE stretches the harness's waits, never shortens them.

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include "harness/child_process.h"

namespace carehub::itest {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(FindSanitizerReport, FindsEachSanitizersReportFromItsFirstLine) {
  const std::string log = "2026-11-23 hub started\n";
  EXPECT_EQ(FindSanitizerReport(log), "");
  for (const std::string report :
       {"==12==ERROR: AddressSanitizer: heap-use-after-free on address 0x6020\n",
        "==12==ERROR: LeakSanitizer: detected memory leaks\n",
        "WARNING: ThreadSanitizer: data race (pid=12)\n",
        "hub/src/store.cc:10:5: runtime error: signed integer overflow\n"
        "SUMMARY: UndefinedBehaviorSanitizer: undefined-behavior hub/src/store.cc:10:5\n"}) {
    EXPECT_EQ(FindSanitizerReport(log + report + "after\n"), report + "after\n") << report;
  }
}

TEST(FindSanitizerReport, IgnoresOrdinaryLogLines) {
  EXPECT_EQ(FindSanitizerReport("ingest: std::runtime_error caught; sanitizer of inputs on\n"), "");
}

// The whole path a hub's report takes: stderr file, reap, failure in the running test.
TEST(ChildProcessSanitizerCheck, ReportOnChildStderrFailsTheTestInSanitizerBuilds) {
  TempDir dir("sanitizer-check");
  auto run = [&] {
    auto child = ChildProcess::Spawn(
        {"/bin/sh", "-c", "echo '==7==ERROR: AddressSanitizer: heap-use-after-free' >&2; exit 1"},
        dir.path() / "out", dir.path() / "err");
    ASSERT_TRUE(child.ok()) << child.status().ToString();
    ASSERT_TRUE(child->Wait(seconds(10)).has_value());
  };
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  EXPECT_NONFATAL_FAILURE(run(), "sanitizer report from child pid");
#else
  // Outside sanitizer builds nothing is searched (a plain build's children print no reports).
  run();
#endif
}

TEST(ChildProcessSanitizerCheck, EarlierRunsOutputInTheSameFileIsNotBlamedOnTheNextChild) {
  TempDir dir("sanitizer-check");
  const auto err = dir.path() / "err";
  auto first = ChildProcess::Spawn(
      {"/bin/sh", "-c", "echo 'WARNING: ThreadSanitizer: data race' >&2"}, dir.path() / "out", err);
  ASSERT_TRUE(first.ok());
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  EXPECT_NONFATAL_FAILURE((void)first->Wait(seconds(10)), "data race");
#else
  (void)first->Wait(seconds(10));
#endif
  auto second = ChildProcess::Spawn({"/bin/sh", "-c", "echo clean >&2"}, dir.path() / "out", err);
  ASSERT_TRUE(second.ok());
  auto status = second->Wait(seconds(10));
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->Exited(0));
}

TEST(Scaled, MultipliesByTheTimeScaleAndNeverShortens) {
  const char* set = std::getenv("CAREHUB_TIME_SCALE");
  const double scale = set ? std::max(1.0, std::strtod(set, nullptr)) : 1.0;
  EXPECT_EQ(Scaled(milliseconds(1000)).count(), static_cast<int64_t>(1000 * scale));
  EXPECT_GE(Scaled(milliseconds(1)), milliseconds(1));
}

}  // namespace
}  // namespace carehub::itest
