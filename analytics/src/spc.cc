#include "carehub/analytics/spc.h"

#include <algorithm>
#include <cmath>

namespace carehub::analytics {
namespace {

// Sets `flag` on every point of each maximal run of consecutive indices where `in_run(i)` holds,
// when the run has at least `min_points` points; `direction` is given to points not yet directed.
template <typename Pred>
void FlagRuns(std::vector<XmrPoint>* points, int min_points, uint32_t flag, int direction,
              Pred in_run) {
  size_t i = 0;
  while (i < points->size()) {
    if (!in_run(i)) {
      ++i;
      continue;
    }
    size_t end = i;
    while (end < points->size() && in_run(end)) {
      ++end;
    }
    if (static_cast<int>(end - i) >= min_points) {
      for (size_t k = i; k < end; ++k) {
        (*points)[k].flags |= flag;
        if ((*points)[k].direction == 0) {
          (*points)[k].direction = direction;
        }
      }
    }
    i = end;
  }
}

// Byar's approximation to the exact Poisson confidence interval of an observed count `o`.
double ByarLower(double o, double z) {
  if (o <= 0) {
    return 0;
  }
  const double g = 1 - 1 / (9 * o) - z / (3 * std::sqrt(o));
  return o * g * g * g;
}
double ByarUpper(double o, double z) {
  const double g = 1 - 1 / (9 * (o + 1)) + z / (3 * std::sqrt(o + 1));
  return (o + 1) * g * g * g;
}

// The count o in [lo, hi] where f(o) = target, f increasing there (bisection to 1e-9 relative).
template <typename F>
double Solve(F f, double target, double lo, double hi) {
  for (int i = 0; i < 200 && hi - lo > 1e-9 * std::max(1.0, hi); ++i) {
    const double mid = (lo + hi) / 2;
    if (f(mid) < target) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return (lo + hi) / 2;
}

}  // namespace

XmrChart ComputeXmr(const std::vector<double>& values) {
  XmrChart chart;
  if (values.empty()) {
    return chart;
  }
  double sum = 0;
  for (double v : values) {
    sum += v;
  }
  chart.mean = sum / static_cast<double>(values.size());
  chart.points.resize(values.size());
  double range_sum = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    chart.points[i].value = values[i];
    if (i > 0) {
      chart.points[i].moving_range = std::fabs(values[i] - values[i - 1]);
      range_sum += chart.points[i].moving_range;
    }
  }
  if (values.size() < 2) {
    chart.upper_process_limit = chart.lower_process_limit = chart.mean;
    chart.upper_two_sigma = chart.lower_two_sigma = chart.mean;
    return chart;
  }
  chart.mean_moving_range = range_sum / static_cast<double>(values.size() - 1);
  const double three_sigma = kXmrLimitFactor * chart.mean_moving_range;
  chart.upper_process_limit = chart.mean + three_sigma;
  chart.lower_process_limit = chart.mean - three_sigma;
  chart.upper_two_sigma = chart.mean + three_sigma * 2 / 3;
  chart.lower_two_sigma = chart.mean - three_sigma * 2 / 3;

  std::vector<XmrPoint>& p = chart.points;
  const double mean = chart.mean;
  // Making Data Count shows trends over the other signals, then shifts, then the rest; the
  // direction a point gets follows the same order (a later rule does not overwrite it).
  // Trends: each maximal stretch of strictly increasing (decreasing) consecutive values.
  for (int dir : {+1, -1}) {
    size_t start = 0;
    for (size_t i = 1; i <= p.size(); ++i) {
      const bool continues =
          i < p.size() && (dir > 0 ? p[i].value > p[i - 1].value : p[i].value < p[i - 1].value);
      if (continues) {
        continue;
      }
      if (static_cast<int>(i - start) >= kTrendPoints) {
        for (size_t k = start; k < i; ++k) {
          p[k].flags |= kSpcTrend;
          if (p[k].direction == 0) {
            p[k].direction = dir;
          }
        }
      }
      start = i;
    }
  }
  FlagRuns(&p, kShiftPoints, kSpcShift, +1, [&](size_t i) { return p[i].value > mean; });
  FlagRuns(&p, kShiftPoints, kSpcShift, -1, [&](size_t i) { return p[i].value < mean; });
  for (size_t i = 0; i + 2 < p.size(); ++i) {
    for (int dir : {+1, -1}) {
      auto beyond = [&](const XmrPoint& q) {
        return dir > 0 ? q.value > chart.upper_two_sigma : q.value < chart.lower_two_sigma;
      };
      int count = 0;
      for (size_t k = i; k < i + 3; ++k) {
        count += beyond(p[k]) ? 1 : 0;
      }
      if (count < 2) {
        continue;
      }
      for (size_t k = i; k < i + 3; ++k) {
        if (beyond(p[k])) {
          p[k].flags |= kSpcTwoOfThree;
          if (p[k].direction == 0) {
            p[k].direction = dir;
          }
        }
      }
    }
  }
  for (XmrPoint& point : p) {
    if (point.value > chart.upper_process_limit || point.value < chart.lower_process_limit) {
      point.flags |= kSpcOutsideLimits;
      if (point.direction == 0) {
        point.direction = point.value > mean ? +1 : -1;
      }
    }
  }
  return chart;
}

std::string DescribeSpcFlags(uint32_t flags) {
  std::string out;
  auto add = [&](uint32_t bit, const char* name) {
    if ((flags & bit) != 0) {
      out += out.empty() ? "" : ", ";
      out += name;
    }
  };
  add(kSpcOutsideLimits, "outside limits");
  add(kSpcShift, "shift");
  add(kSpcTrend, "trend");
  add(kSpcTwoOfThree, "2 of 3");
  return out;
}

double FunnelLimit(FunnelStatistic statistic, double target, double denominator, double z,
                   bool upper) {
  if (denominator <= 0 || target <= 0) {
    return 0;
  }
  if (statistic == FunnelStatistic::kProportion) {
    // Fingertips' Wilson-score form solves (x − n·p0)² = z²·n·p0(1−p0) for x: the proportions
    // x/n whose score interval ends at p0 are p0 ± z·sqrt(p0(1−p0)/n).
    const double half = z * std::sqrt(target * (1 - target) / denominator);
    return std::clamp(upper ? target + half : target - half, 0.0, 1.0);
  }
  // Poisson: the observed count whose Byar interval has the expected count as its lower end is
  // the upper limit, and the one whose interval has it as its upper end is the lower limit.
  const double expected = target * denominator;
  if (upper) {
    double hi = expected + 1;
    while (ByarLower(hi, z) < expected) {
      hi *= 2;
    }
    return Solve([z](double o) { return ByarLower(o, z); }, expected, expected, hi) / denominator;
  }
  if (ByarUpper(0, z) >= expected) {
    return 0;  // even no events at all would not be surprisingly few
  }
  return Solve([z](double o) { return ByarUpper(o, z); }, expected, 0, expected) / denominator;
}

FunnelLimits ComputeFunnelLimits(FunnelStatistic statistic, double target, double denominator) {
  FunnelLimits limits;
  limits.lower_998 = FunnelLimit(statistic, target, denominator, kZ998, false);
  limits.lower_95 = FunnelLimit(statistic, target, denominator, kZ95, false);
  limits.upper_95 = FunnelLimit(statistic, target, denominator, kZ95, true);
  limits.upper_998 = FunnelLimit(statistic, target, denominator, kZ998, true);
  return limits;
}

FunnelPosition ClassifyFunnel(const FunnelLimits& limits, double value) {
  if (value > limits.upper_998) {
    return FunnelPosition::kAbove998;
  }
  if (value > limits.upper_95) {
    return FunnelPosition::kAbove95;
  }
  if (value < limits.lower_998) {
    return FunnelPosition::kBelow998;
  }
  if (value < limits.lower_95) {
    return FunnelPosition::kBelow95;
  }
  return FunnelPosition::kWithin;
}

std::string DescribeFunnelPosition(FunnelPosition position) {
  switch (position) {
    case FunnelPosition::kAbove998:
      return "above 99.8% limit";
    case FunnelPosition::kAbove95:
      return "above 95% limit";
    case FunnelPosition::kBelow998:
      return "below 99.8% limit";
    case FunnelPosition::kBelow95:
      return "below 95% limit";
    case FunnelPosition::kWithin:
      break;
  }
  return "within limits";
}

}  // namespace carehub::analytics
