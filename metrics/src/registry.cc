#include "carehub/metrics/registry.h"

#include <cmath>
#include <sstream>
#include <stdexcept>

namespace carehub::metrics {
namespace {

void AtomicAdd(std::atomic<double>& target, double d) {
  double current = target.load(std::memory_order_relaxed);
  while (!target.compare_exchange_weak(current, current + d, std::memory_order_relaxed)) {
  }
}

std::string EscapeLabelValue(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string RenderLabels(const Labels& labels, const std::string& extra_key = "",
                         const std::string& extra_value = "") {
  if (labels.empty() && extra_key.empty()) {
    return "";
  }
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) {
      out += ",";
    }
    first = false;
    out += k + "=\"" + EscapeLabelValue(v) + "\"";
  }
  if (!extra_key.empty()) {
    if (!first) {
      out += ",";
    }
    out += extra_key + "=\"" + extra_value + "\"";
  }
  return out + "}";
}

std::string FormatDouble(double v) {
  if (std::isinf(v)) {
    return v > 0 ? "+Inf" : "-Inf";
  }
  if (std::isnan(v)) {
    return "NaN";
  }
  std::ostringstream s;
  s.precision(17);
  s << v;
  return s.str();
}

bool LabelsInclude(const Labels& labels, const Labels& match) {
  for (const auto& m : match) {
    bool found = false;
    for (const auto& l : labels) {
      if (l == m) {
        found = true;
        break;
      }
    }
    if (!found) {
      return false;
    }
  }
  return true;
}

}  // namespace

void Gauge::Add(double d) { AtomicAdd(value_, d); }

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)),
      counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    counts_[i].store(0);
  }
}

void Histogram::Observe(double value) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) {
    ++i;
  }
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  AtomicAdd(sum_, value);
  count_.fetch_add(1, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Take() const {
  Snapshot s;
  s.bounds = bounds_;
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(running);
  }
  s.sum = sum_.load(std::memory_order_relaxed);
  s.count = running;
  return s;
}

double Histogram::Quantile(double q) const {
  Snapshot s = Take();
  if (s.count == 0) {
    return 0;
  }
  double rank = q * static_cast<double>(s.count);
  double lower = 0;
  uint64_t below = 0;
  for (size_t i = 0; i < s.bounds.size(); ++i) {
    if (static_cast<double>(s.cumulative[i]) >= rank) {
      uint64_t in_bucket = s.cumulative[i] - below;
      double frac = in_bucket ? (rank - static_cast<double>(below)) / in_bucket : 1.0;
      return lower + (s.bounds[i] - lower) * frac;
    }
    lower = s.bounds[i];
    below = s.cumulative[i];
  }
  return s.bounds.empty() ? 0 : s.bounds.back();
}

std::vector<double> LatencyBuckets() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
          0.025,   0.05,   0.1,     0.25,   0.5,   1,      2.5,    5,     10};
}

Registry::Family& Registry::FamilyFor(const std::string& name, const std::string& help, Type type) {
  auto [it, inserted] = families_.try_emplace(name);
  if (inserted) {
    it->second.help = help;
    it->second.type = type;
  } else if (it->second.type != type) {
    // A programming error caught on first use in any test run, not input-dependent.
    throw std::logic_error("metric " + name + " registered with two types");
  }
  return it->second;
}

Counter& Registry::GetCounter(const std::string& name, const std::string& help,
                              const Labels& labels) {
  MutexLock lock(mu_);
  auto& slot = FamilyFor(name, help, Type::kCounter).counters[labels];
  if (!slot) {
    slot = std::make_unique<Counter>();
  }
  return *slot;
}

Gauge& Registry::GetGauge(const std::string& name, const std::string& help, const Labels& labels) {
  MutexLock lock(mu_);
  auto& slot = FamilyFor(name, help, Type::kGauge).gauges[labels];
  if (!slot) {
    slot = std::make_unique<Gauge>();
  }
  return *slot;
}

Histogram& Registry::GetHistogram(const std::string& name, const std::string& help,
                                  const std::vector<double>& bounds, const Labels& labels) {
  MutexLock lock(mu_);
  auto& slot = FamilyFor(name, help, Type::kHistogram).histograms[labels];
  if (!slot) {
    slot = std::make_unique<Histogram>(bounds);
  }
  return *slot;
}

uint64_t Registry::AddRefresher(std::function<void()> refresher) {
  MutexLock lock(mu_);
  const uint64_t handle = next_refresher_++;
  refreshers_.emplace_back(handle, std::move(refresher));
  return handle;
}

void Registry::RemoveRefresher(uint64_t handle) {
  MutexLock lock(mu_);
  std::erase_if(refreshers_, [handle](const auto& r) { return r.first == handle; });
}

std::string Registry::RenderPrometheus() {
  std::vector<std::pair<uint64_t, std::function<void()>>> refreshers;
  {
    MutexLock lock(mu_);
    refreshers = refreshers_;
  }
  for (auto& r : refreshers) {
    r.second();
  }
  MutexLock lock(mu_);
  std::string out;
  for (const auto& [name, family] : families_) {
    const char* type = family.type == Type::kCounter ? "counter"
                       : family.type == Type::kGauge ? "gauge"
                                                     : "histogram";
    out += "# HELP " + name + " " + family.help + "\n";
    out += "# TYPE " + name + " " + type + "\n";
    for (const auto& [labels, c] : family.counters) {
      out += name + RenderLabels(labels) + " " + std::to_string(c->Value()) + "\n";
    }
    for (const auto& [labels, g] : family.gauges) {
      out += name + RenderLabels(labels) + " " + FormatDouble(g->Value()) + "\n";
    }
    for (const auto& [labels, h] : family.histograms) {
      auto s = h->Take();
      for (size_t i = 0; i < s.bounds.size(); ++i) {
        out += name + "_bucket" + RenderLabels(labels, "le", FormatDouble(s.bounds[i])) + " " +
               std::to_string(s.cumulative[i]) + "\n";
      }
      out += name + "_bucket" + RenderLabels(labels, "le", "+Inf") + " " +
             std::to_string(s.count) + "\n";
      out += name + "_sum" + RenderLabels(labels) + " " + FormatDouble(s.sum) + "\n";
      out += name + "_count" + RenderLabels(labels) + " " + std::to_string(s.count) + "\n";
    }
  }
  return out;
}

uint64_t Registry::CounterTotal(const std::string& name, const Labels& match) const {
  MutexLock lock(mu_);
  auto it = families_.find(name);
  if (it == families_.end()) {
    return 0;
  }
  uint64_t total = 0;
  for (const auto& [labels, c] : it->second.counters) {
    if (LabelsInclude(labels, match)) {
      total += c->Value();
    }
  }
  return total;
}

}  // namespace carehub::metrics
