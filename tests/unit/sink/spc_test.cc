// The statistics of the NHS-convention report (analytics/spc.h) on small series worked by hand:
// each expected mean, mean moving range and flag below was computed on paper from the series
// written next to it (the arithmetic is in the comments), not by running the code under test.
// The funnel limits are checked against their definitions: the Wilson score interval (for a
// proportion) and Byar's Poisson interval (for a rate) of an observed value sitting on a limit
// must have the target as an end, computed here from the textbook formulas.

#include "carehub/analytics/spc.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace carehub::analytics {
namespace {

constexpr uint32_t kOut = kSpcOutsideLimits;
constexpr uint32_t kShift = kSpcShift;
constexpr uint32_t kTrend = kSpcTrend;
constexpr uint32_t k2of3 = kSpcTwoOfThree;

std::vector<uint32_t> Flags(const XmrChart& chart) {
  std::vector<uint32_t> out;
  for (const XmrPoint& p : chart.points) {
    out.push_back(p.flags);
  }
  return out;
}

TEST(XmrTest, QuietSeriesHasLimitsAndNoSignals) {
  // 10 12 11 13 14: mean 60/5 = 12; moving ranges 2 1 2 1, mean 6/4 = 1.5;
  // limits 12 ± 2.66 × 1.5 = 12 ± 3.99.
  const XmrChart c = ComputeXmr({10, 12, 11, 13, 14});
  EXPECT_DOUBLE_EQ(c.mean, 12.0);
  EXPECT_DOUBLE_EQ(c.mean_moving_range, 1.5);
  EXPECT_NEAR(c.upper_process_limit, 15.99, 1e-12);
  EXPECT_NEAR(c.lower_process_limit, 8.01, 1e-12);
  EXPECT_NEAR(c.upper_two_sigma, 14.66, 1e-12);  // 12 + (2/3) 3.99
  EXPECT_EQ(Flags(c), std::vector<uint32_t>(5, 0));
  EXPECT_EQ(c.points[0].moving_range, 0);
  EXPECT_EQ(c.points[3].moving_range, 2);
}

TEST(XmrTest, RunOfExactlySevenAboveTheMeanIsAShift) {
  // Six 9s, four 11s, seven 12s: sum 54 + 44 + 84 = 182, mean 182/17 = 10.706, so the 11s are
  // above the mean too but stand alone between 9s. Moving ranges: 2 2 2 2 3 0 0 0 0 0 0 3 2 2 2 2
  // = 22 over 16 = 1.375; limits 10.706 ± 3.6575: nothing outside; 2 sigma 13.144: nothing beyond.
  const std::vector<double> v = {9, 11, 9, 11, 9, 12, 12, 12, 12, 12, 12, 12, 9, 11, 9, 11, 9};
  const XmrChart c = ComputeXmr(v);
  EXPECT_NEAR(c.mean, 182.0 / 17, 1e-12);
  EXPECT_NEAR(c.mean_moving_range, 22.0 / 16, 1e-12);
  std::vector<uint32_t> want(v.size(), 0);
  for (int i = 5; i <= 11; ++i) {
    want[i] = kShift;
  }
  EXPECT_EQ(Flags(c), want);
  EXPECT_EQ(c.points[5].direction, +1);
  EXPECT_EQ(c.points[4].direction, 0);

  // Six 12s instead of seven: no shift (and nothing else).
  std::vector<double> six = v;
  six.erase(six.begin() + 11);
  EXPECT_EQ(Flags(ComputeXmr(six)), std::vector<uint32_t>(six.size(), 0));
}

TEST(XmrTest, PointOnTheMeanEndsARun) {
  // 1 1 1 3 3 3 2 3 3 3 3 1 1 1 1: sum 30, mean exactly 2. The 3s at indices 3..5 and 7..10 are
  // seven points above the mean, but the 2 at index 6 sits on it and splits them (3 + 4).
  // The 1s (indices 11..14) are four below. No shift anywhere.
  const std::vector<double> v = {1, 1, 1, 3, 3, 3, 2, 3, 3, 3, 3, 1, 1, 1, 1};
  const XmrChart c = ComputeXmr(v);
  EXPECT_DOUBLE_EQ(c.mean, 2.0);
  for (const XmrPoint& p : c.points) {
    EXPECT_EQ(p.flags & kShift, 0u);
  }
}

TEST(XmrTest, SixRisingPointsAreATrendAndFiveAreNot) {
  // 10 9 11 10 [9 10 11 12 13 14] 10 11 10 9 10: indices 4..9 rise at every step (six points).
  // Sum 159, mean 10.6; moving ranges 1 2 1 1 1 1 1 1 1 4 1 1 1 1 = 18 over 14 = 1.2857;
  // UPL 10.6 + 3.42 = 14.02 (14 is inside); 2 sigma 10.6 + 2.28 = 12.88: 13 and 14 are beyond,
  // two of the three points 8..10 (and of 7..9): 2 of 3 on indices 8 and 9.
  const std::vector<double> v = {10, 9, 11, 10, 9, 10, 11, 12, 13, 14, 10, 11, 10, 9, 10};
  const XmrChart c = ComputeXmr(v);
  EXPECT_NEAR(c.mean, 10.6, 1e-12);
  EXPECT_NEAR(c.mean_moving_range, 18.0 / 14, 1e-12);
  std::vector<uint32_t> want(v.size(), 0);
  for (int i = 4; i <= 9; ++i) {
    want[i] = kTrend;
  }
  want[8] |= k2of3;
  want[9] |= k2of3;
  EXPECT_EQ(Flags(c), want);
  EXPECT_EQ(c.points[4].direction, +1);  // the trend's direction, though 9 is below the mean

  // Index 4 set to 10: 10 10 10 breaks the rise, leaving 10 11 12 13 14 (five points): no trend.
  // Mean 160/15 = 10.667, moving ranges sum 16 over 14 = 1.1429: UPL 10.667 + 3.040 = 13.707, so
  // 14 is outside; 2 sigma 12.693: 13 and 14 beyond (2 of 3).
  std::vector<double> five = v;
  five[4] = 10;
  std::vector<uint32_t> want_five(v.size(), 0);
  want_five[8] = k2of3;
  want_five[9] = k2of3 | kOut;
  EXPECT_EQ(Flags(ComputeXmr(five)), want_five);
}

TEST(XmrTest, FallingTrendIsFlaggedDownwards) {
  // 5 6 5 [9 8 7 6 5 4] 5 6 5 6: indices 3..8 fall at every step (six points). Sum 77, mean 5.923;
  // moving ranges 1 1 4 1 1 1 1 1 1 1 1 1 = 15 over 12 = 1.25; limits 5.923 ± 3.325 (2.598 ..
  // 9.248): 9 is inside; 2 sigma 8.140: only the 9 beyond, alone: no 2 of 3. Above the mean:
  // 6 (index 1) alone, then 9 8 7 6 (indices 3..6) four: no shift.
  const std::vector<double> v = {5, 6, 5, 9, 8, 7, 6, 5, 4, 5, 6, 5, 6};
  const XmrChart c = ComputeXmr(v);
  std::vector<uint32_t> want(v.size(), 0);
  for (int i = 3; i <= 8; ++i) {
    want[i] = kTrend;
  }
  EXPECT_EQ(Flags(c), want);
  EXPECT_EQ(c.points[3].direction, -1);
}

TEST(XmrTest, TwoOfThreeNeedsTwoBeyondTwoSigmaOnOneSide) {
  // 10 11 10 9 10 11 10 14 13 14 10 9 10 11 10 9: sum 171, mean 10.6875; moving ranges
  // 1 1 1 1 1 1 4 1 1 4 1 1 1 1 1 = 21 over 15 = 1.4; 2 sigma 10.6875 + 2.4827 = 13.170: the 14s
  // (indices 7 and 9) are beyond, the 13 between them is not; UPL 14.4115: nothing outside.
  const std::vector<double> v = {10, 11, 10, 9, 10, 11, 10, 14, 13, 14, 10, 9, 10, 11, 10, 9};
  const XmrChart c = ComputeXmr(v);
  EXPECT_NEAR(c.mean_moving_range, 1.4, 1e-12);
  std::vector<uint32_t> want(v.size(), 0);
  want[7] = k2of3;
  want[9] = k2of3;
  EXPECT_EQ(Flags(c), want);
}

TEST(XmrTest, PointBeyondTheLimitIsOutside) {
  // 10 11 10 9 10 11 10 20 10 9 10 11: sum 131, mean 10.917; moving ranges 1 1 1 1 1 1 10 10 1 1 1
  // = 29 over 11 = 2.636; UPL 10.917 + 7.013 = 17.929: the 20 is outside (and alone beyond 2
  // sigma, 15.592: no 2 of 3).
  const std::vector<double> v = {10, 11, 10, 9, 10, 11, 10, 20, 10, 9, 10, 11};
  const XmrChart c = ComputeXmr(v);
  EXPECT_NEAR(c.mean_moving_range, 29.0 / 11, 1e-12);
  std::vector<uint32_t> want(v.size(), 0);
  want[7] = kOut;
  EXPECT_EQ(Flags(c), want);
  EXPECT_EQ(c.points[7].direction, +1);
  EXPECT_EQ(DescribeSpcFlags(kOut | kShift | kTrend | k2of3),
            "outside limits, shift, trend, 2 of 3");
}

TEST(XmrTest, TooFewPointsGiveNoLimits) {
  EXPECT_TRUE(ComputeXmr({}).points.empty());
  const XmrChart one = ComputeXmr({4});
  EXPECT_EQ(one.mean, 4);
  EXPECT_EQ(one.points[0].flags, 0u);
}

// Wilson score interval of x/n (Wilson 1927; Newcombe 1998, method 3), from its formula.
double WilsonEnd(double p, double n, double z, bool upper) {
  const double centre = p + z * z / (2 * n);
  const double spread = z * std::sqrt(p * (1 - p) / n + z * z / (4 * n * n));
  return (centre + (upper ? spread : -spread)) / (1 + z * z / n);
}

TEST(FunnelTest, ProportionLimitsAreWhereTheWilsonIntervalReachesTheTarget) {
  // p0 = 0.2, n = 100: 0.2 ± 1.959964 × sqrt(0.2 × 0.8 / 100) = 0.2 ± 0.0784.
  const FunnelLimits l = ComputeFunnelLimits(FunnelStatistic::kProportion, 0.2, 100);
  EXPECT_NEAR(l.upper_95, 0.27839856, 1e-6);
  EXPECT_NEAR(l.lower_95, 0.12160144, 1e-6);
  EXPECT_NEAR(l.upper_998, 0.2 + 3.090232 * 0.04, 1e-6);
  // On each limit the observed proportion's Wilson interval has 0.2 as its end.
  EXPECT_NEAR(WilsonEnd(l.upper_95, 100, kZ95, false), 0.2, 1e-9);
  EXPECT_NEAR(WilsonEnd(l.lower_95, 100, kZ95, true), 0.2, 1e-9);
  EXPECT_NEAR(WilsonEnd(l.upper_998, 100, kZ998, false), 0.2, 1e-9);
  EXPECT_NEAR(WilsonEnd(l.lower_998, 100, kZ998, true), 0.2, 1e-9);
  // Clamped to [0, 1]: p0 = 0.05, n = 37 has 0.05 − 0.0702 < 0.
  EXPECT_EQ(ComputeFunnelLimits(FunnelStatistic::kProportion, 0.05, 37).lower_95, 0.0);
}

// Byar's approximation to the exact Poisson interval of an observed count o (Breslow and Day
// 1987, as PHE's rate methods use it), from its formula.
double ByarEnd(double o, double z, bool upper) {
  if (upper) {
    return (o + 1) * std::pow(1 - 1 / (9 * (o + 1)) + z / (3 * std::sqrt(o + 1)), 3);
  }
  return o * std::pow(1 - 1 / (9 * o) - z / (3 * std::sqrt(o)), 3);
}

TEST(FunnelTest, RateLimitsAreWhereByarsIntervalReachesTheExpectedCount) {
  // 10 per 1,000 in a list of 1,000: expected 10 events.
  const FunnelLimits l = ComputeFunnelLimits(FunnelStatistic::kRate, 0.01, 1000);
  EXPECT_NEAR(ByarEnd(l.upper_95 * 1000, kZ95, false), 10, 1e-6);
  EXPECT_NEAR(ByarEnd(l.lower_95 * 1000, kZ95, true), 10, 1e-6);
  EXPECT_NEAR(ByarEnd(l.upper_998 * 1000, kZ998, false), 10, 1e-6);
  EXPECT_NEAR(ByarEnd(l.lower_998 * 1000, kZ998, true), 10, 1e-6);
  // Exact Poisson: 17 observed has a 95% lower end 9.90 and 18 has 10.67, so the upper limit
  // count lies between them; 4 observed has an upper end 10.24 and 3 has 8.77.
  EXPECT_GT(l.upper_95 * 1000, 17);
  EXPECT_LT(l.upper_95 * 1000, 18);
  EXPECT_GT(l.lower_95 * 1000, 3);
  EXPECT_LT(l.lower_95 * 1000, 4);
  // Expected 2: even 0 events is not surprisingly few at 95% (Byar's upper end of 0 is 3.67).
  EXPECT_EQ(ComputeFunnelLimits(FunnelStatistic::kRate, 0.002, 1000).lower_95, 0.0);
}

TEST(FunnelTest, PositionIsStrictlyBeyondALimit) {
  const FunnelLimits l{0.1, 0.2, 0.4, 0.5};
  EXPECT_EQ(ClassifyFunnel(l, 0.51), FunnelPosition::kAbove998);
  EXPECT_EQ(ClassifyFunnel(l, 0.5), FunnelPosition::kAbove95);
  EXPECT_EQ(ClassifyFunnel(l, 0.4), FunnelPosition::kWithin);
  EXPECT_EQ(ClassifyFunnel(l, 0.19), FunnelPosition::kBelow95);
  EXPECT_EQ(ClassifyFunnel(l, 0.09), FunnelPosition::kBelow998);
  EXPECT_EQ(DescribeFunnelPosition(FunnelPosition::kAbove998), "above 99.8% limit");
}

}  // namespace
}  // namespace carehub::analytics
