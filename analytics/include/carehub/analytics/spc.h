#pragma once
// The statistics behind the report in the NHS's own conventions (docs/postgres-sink.md, "Funnel
// plots and SPC charts"):
//
//  - XmR process-behaviour charts (individuals and moving range) with the special-cause rules of
//    NHS England's "Making Data Count": mean, natural process limits mean ± 2.66 × mean moving
//    range, and per point the flags below.
//  - Funnel-plot control limits for comparing practices, at 95% (z = 1.959964) and 99.8%
//    (z = 3.090232) around the overall value (sum of numerators / sum of denominators), as the
//    PHE/OHID Fingertips funnel method: for a proportion, the observed proportions whose Wilson
//    score interval has the target as an end (algebraically p0 ± z·sqrt(p0(1−p0)/n)); for a rate
//    per population (Poisson), the observed counts whose Byar confidence interval has the expected
//    count n·r0 as an end, divided by n.
//
// Pure functions of their arguments: no I/O, no state, safe from any thread. Inputs that make no
// chart (no points, a zero denominator) give empty or zero results, never an error: the caller
// decides what to show for them.

#include <cstdint>
#include <string>
#include <vector>

namespace carehub::analytics {

// Making Data Count's rule parameters.
inline constexpr double kXmrLimitFactor = 2.66;  // 3 sigma = 2.66 × mean moving range
inline constexpr int kShiftPoints = 7;           // a run of >= 7 points on one side of the mean
inline constexpr int kTrendPoints = 6;           // >= 6 points each higher (lower) than the last

// Special-cause flags of one point (bits).
enum SpcFlag : uint32_t {
  kSpcOutsideLimits = 1u << 0,  // strictly beyond a process limit
  kSpcShift = 1u << 1,          // in a run of >= 7 points strictly above (or below) the mean;
                                // a point on the mean ends a run
  kSpcTrend = 1u << 2,          // in a run of >= 6 points each strictly higher (or lower) than
                                // the one before; an equal point ends a run
  kSpcTwoOfThree = 1u << 3,     // strictly beyond 2 sigma, with at least one other point of three
                                // consecutive ones beyond 2 sigma on the same side
};

struct XmrPoint {
  double value = 0;
  double moving_range = 0;  // |value − previous value|; 0 for the first point
  uint32_t flags = 0;       // SpcFlag bits
  // +1: a special cause pushing up (above the mean, or an increasing trend); −1: down; 0: none.
  int direction = 0;
};

struct XmrChart {
  std::vector<XmrPoint> points;
  double mean = 0;
  double mean_moving_range = 0;
  double upper_process_limit = 0;  // mean + 2.66 mR̄
  double lower_process_limit = 0;  // mean − 2.66 mR̄ (not clamped: a count chart may go below 0)
  double upper_two_sigma = 0;      // mean + (2/3) 2.66 mR̄
  double lower_two_sigma = 0;
};

// The chart of `values` in time order. Fewer than two values: mean only, no limits, no flags.
XmrChart ComputeXmr(const std::vector<double>& values);

// "outside limits, shift, trend, 2 of 3" (the flags set, in that order), or "" for none.
std::string DescribeSpcFlags(uint32_t flags);

enum class FunnelStatistic {
  kProportion,  // binomial: numerator <= denominator (e.g. DNAs of appointments)
  kRate,        // Poisson: events per head of a population (e.g. admissions per registered patient)
};

inline constexpr double kZ95 = 1.959963985;   // two-sided 95%: the 0.975 normal quantile
inline constexpr double kZ998 = 3.090232306;  // two-sided 99.8%: the 0.999 normal quantile

// Control limits as values of numerator / denominator (multiply for per cent or per 1,000).
// Clamped to >= 0, and to <= 1 for a proportion.
struct FunnelLimits {
  double lower_998 = 0;
  double lower_95 = 0;
  double upper_95 = 0;
  double upper_998 = 0;
};

// Limits around `target` (overall numerator / denominator) for one unit of size `denominator`.
// A denominator <= 0 or a target <= 0 gives all-zero limits.
FunnelLimits ComputeFunnelLimits(FunnelStatistic statistic, double target, double denominator);
// The limit for one z alone: the lower one when `upper` is false.
double FunnelLimit(FunnelStatistic statistic, double target, double denominator, double z,
                   bool upper);

enum class FunnelPosition { kBelow998, kBelow95, kWithin, kAbove95, kAbove998 };

// Where `value` (numerator / denominator) falls; strictly beyond a limit counts as beyond it.
FunnelPosition ClassifyFunnel(const FunnelLimits& limits, double value);
// "above 99.8% limit", "above 95% limit", "within limits", "below 95% limit", "below 99.8% limit".
std::string DescribeFunnelPosition(FunnelPosition position);

}  // namespace carehub::analytics
