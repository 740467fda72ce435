#include "carehub/hub/quarantine_budget.h"

#include <algorithm>

namespace carehub::hub {
namespace {

constexpr size_t kMaxBucketsBeforeSweep = 4096;

}  // namespace

QuarantineBudget::Verdict QuarantineBudget::Admit(const std::string& peer, uint64_t cost,
                                                  uint64_t stored_bytes, Steady::time_point now) {
  if (stored_bytes + in_flight_ + cost > limits_.max_total_bytes) {
    return Verdict::kTotalCap;
  }
  const double capacity = static_cast<double>(limits_.peer_bytes_per_minute);
  if (buckets_.size() >= kMaxBucketsBeforeSweep) {
    ForgetRefilled(now);
  }
  auto [it, inserted] = buckets_.try_emplace(peer, Bucket{capacity, now});
  Bucket& b = it->second;
  const double elapsed = std::chrono::duration<double>(now - b.refilled).count();
  b.tokens = std::min(capacity, b.tokens + std::max(0.0, elapsed) * capacity / 60.0);
  b.refilled = now;
  if (b.tokens < static_cast<double>(cost)) {
    return Verdict::kPeerRate;
  }
  b.tokens -= static_cast<double>(cost);
  in_flight_ += cost;
  return Verdict::kStore;
}

void QuarantineBudget::ForgetRefilled(Steady::time_point now) {
  const double capacity = static_cast<double>(limits_.peer_bytes_per_minute);
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    const double elapsed = std::chrono::duration<double>(now - it->second.refilled).count();
    if (it->second.tokens + elapsed * capacity / 60.0 >= capacity) {
      it = buckets_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace carehub::hub
