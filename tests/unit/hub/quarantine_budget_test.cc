// QuarantineBudget: the per-peer byte bucket refills at its rate, peers do not share a bucket, and
// the total limit counts stored and in-flight bytes. Time is passed in, so nothing here sleeps.

#include "carehub/hub/quarantine_budget.h"

#include <gtest/gtest.h>

namespace carehub::hub {
namespace {

using Verdict = QuarantineBudget::Verdict;
using std::chrono::seconds;

TEST(QuarantineBudget, APeerGetsItsMinuteOfBytesThenItsRefillRate) {
  QuarantineBudget budget({/*peer_bytes_per_minute=*/60'000, /*max_total_bytes=*/1'000'000, 4096});
  const auto t0 = QuarantineBudget::Steady::time_point{} + seconds(1000);
  // A burst of one minute's worth: six 10,000-byte records, not a seventh.
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(budget.Admit("a", 10'000, 0, t0), Verdict::kStore) << i;
  }
  EXPECT_EQ(budget.Admit("a", 10'000, 0, t0), Verdict::kPeerRate);
  // Another peer has its own bucket.
  EXPECT_EQ(budget.Admit("b", 10'000, 0, t0), Verdict::kStore);
  // 1,000 bytes a second: after 9 s not yet 10,000, after 10 s enough for one more.
  EXPECT_EQ(budget.Admit("a", 10'000, 0, t0 + seconds(9)), Verdict::kPeerRate);
  EXPECT_EQ(budget.Admit("a", 10'000, 0, t0 + seconds(10)), Verdict::kStore);
}

TEST(QuarantineBudget, TheTotalCountsStoredAndInFlightBytes) {
  QuarantineBudget budget({/*peer_bytes_per_minute=*/100'000, /*max_total_bytes=*/50'000, 4096});
  const auto t0 = QuarantineBudget::Steady::time_point{} + seconds(1000);
  EXPECT_EQ(budget.Admit("a", 30'000, /*stored_bytes=*/10'000, t0), Verdict::kStore);
  // 10,000 stored + 30,000 in flight + 20,000 > 50,000.
  EXPECT_EQ(budget.Admit("b", 20'000, 10'000, t0), Verdict::kTotalCap);
  // Once settled (the record is now counted in stored_bytes), the in-flight share is released.
  budget.Settle(30'000);
  EXPECT_EQ(budget.Admit("b", 20'000, 20'000, t0), Verdict::kStore);
}

}  // namespace
}  // namespace carehub::hub
