#pragma once
// A small Prometheus metrics registry: counters, gauges and histograms with labels, rendered in the
// text exposition format (version 0.0.4). There is no maintained Prometheus C++ client in Debian 12,
// and what we need is small.
//
// Thread-safety: every method is safe to call from any thread. Get*() takes a lock; hot paths look a
// metric up once and keep the reference (metrics are never removed, references stay valid).

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "carehub/core/mutex.h"

namespace carehub::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void Inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double d);
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double value);
  // Cumulative counts per bound (last is +Inf), sum and count.
  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot Take() const;
  // Estimated quantile (0..1) by linear interpolation within buckets.
  double Quantile(double q) const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<double> sum_{0};
  std::atomic<uint64_t> count_{0};
};

// Latency buckets in seconds from 50 µs to 10 s.
std::vector<double> LatencyBuckets();

class Registry {
 public:
  Counter& GetCounter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& GetGauge(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram& GetHistogram(const std::string& name, const std::string& help,
                          const std::vector<double>& bounds, const Labels& labels = {});

  // A callback run at render time to refresh gauges whose value lives elsewhere (store size, lag).
  // Returns a handle for RemoveRefresher, which the owner of what the callback reads must call
  // before that goes away (and before no render can still be running it).
  uint64_t AddRefresher(std::function<void()> refresher);
  void RemoveRefresher(uint64_t handle);

  std::string RenderPrometheus();

  // Sum of a counter family over all label sets whose labels include `match` (for tests and status).
  uint64_t CounterTotal(const std::string& name, const Labels& match = {}) const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Family {
    std::string help;
    Type type;
    std::map<Labels, std::unique_ptr<Counter>> counters;
    std::map<Labels, std::unique_ptr<Gauge>> gauges;
    std::map<Labels, std::unique_ptr<Histogram>> histograms;
  };
  Family& FamilyFor(const std::string& name, const std::string& help, Type type)
      CAREHUB_REQUIRES(mu_);

  mutable Mutex mu_;
  std::map<std::string, Family> families_ CAREHUB_GUARDED_BY(mu_);
  std::vector<std::pair<uint64_t, std::function<void()>>> refreshers_ CAREHUB_GUARDED_BY(mu_);
  uint64_t next_refresher_ CAREHUB_GUARDED_BY(mu_) = 1;
};

}  // namespace carehub::metrics
