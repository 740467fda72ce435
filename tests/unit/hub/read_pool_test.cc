// ReadPool (hub/src/store/read_pool.h): every part runs exactly once, side by side, and RunAll
// returns only after all of them, with any number of callers at once.
#include "store/read_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace carehub::hub {
namespace {

TEST(ReadPoolTest, RunsEveryPartOnceAndReturnsAfterAll) {
  ReadPool pool(4, "test-readpool");
  std::vector<std::atomic<int>> runs(1000);
  std::atomic<int> finished{0};
  pool.RunAll(runs.size(), [&](size_t i) {
    if (i % 100 == 0) {  // a few slow parts: RunAll must wait for them too
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    runs[i].fetch_add(1);
    finished.fetch_add(1);
  });
  EXPECT_EQ(finished.load(), 1000);
  for (size_t i = 0; i < runs.size(); ++i) {
    EXPECT_EQ(runs[i].load(), 1) << i;
  }
}

// Five parts that each wait for all five to have started: done only if they run side by side
// (four pool threads and the caller). One after another, the first would wait forever; the wait
// is bounded so the test fails instead of hanging.
TEST(ReadPoolTest, PartsRunSideBySide) {
  ReadPool pool(4, "test-readpool");
  std::mutex mu;
  std::condition_variable cv;
  int started = 0;
  std::atomic<int> met{0};
  std::set<std::thread::id> threads;
  pool.RunAll(5, [&](size_t) {
    std::unique_lock lock(mu);
    ++started;
    threads.insert(std::this_thread::get_id());
    cv.notify_all();
    if (cv.wait_for(lock, std::chrono::seconds(60), [&] { return started == 5; })) {
      met.fetch_add(1);
    }
  });
  EXPECT_EQ(met.load(), 5);
  EXPECT_EQ(threads.size(), 5u);
  EXPECT_TRUE(threads.count(std::this_thread::get_id())) << "the caller takes a part too";
}

TEST(ReadPoolTest, ManyCallersAtOnce) {
  ReadPool pool(3, "test-readpool");
  constexpr int kCallers = 6;
  constexpr size_t kParts = 300;
  std::vector<std::vector<std::atomic<int>>> runs(kCallers);
  for (auto& r : runs) {
    r = std::vector<std::atomic<int>>(kParts);
  }
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&, c] {
      for (int round = 0; round < 20; ++round) {
        pool.RunAll(kParts, [&](size_t i) { runs[c][i].fetch_add(1); });
      }
    });
  }
  for (auto& t : callers) {
    t.join();
  }
  for (int c = 0; c < kCallers; ++c) {
    for (size_t i = 0; i < kParts; ++i) {
      ASSERT_EQ(runs[c][i].load(), 20) << "caller " << c << " part " << i;
    }
  }
}

TEST(ReadPoolTest, WithoutThreadsEveryPartRunsOnTheCaller) {
  ReadPool pool(0, "test-readpool");
  EXPECT_EQ(pool.threads(), 0);
  std::set<std::thread::id> threads;
  int runs = 0;
  pool.RunAll(10, [&](size_t) {
    threads.insert(std::this_thread::get_id());
    ++runs;
  });
  EXPECT_EQ(runs, 10);
  ASSERT_EQ(threads.size(), 1u);
  EXPECT_EQ(*threads.begin(), std::this_thread::get_id());
}

}  // namespace
}  // namespace carehub::hub
