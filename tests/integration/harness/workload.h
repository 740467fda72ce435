#pragma once
// Deterministic ingest workloads: synthetic events with a known mix of first sends, resends and
// invalid events, and for each the answer the hub must give. Same options, same events, on every
// run: the generator's clock is pinned (kFixedNowUnix) rather than read from the wall clock.

#include <cstdint>
#include <string>
#include <vector>

#include "carehub/core/synthetic.h"
#include "carehub/v1/event.pb.h"

namespace carehub::itest {

// 2026-01-01T00:00:00Z: the generator clock for every integration workload. Generated events
// occur in the 90 days before it, so they are valid whenever the tests run later than that.
inline constexpr int64_t kFixedNowUnix = 1'767'225'600;

// Generator options with the fixed clock.
SyntheticOptions FixedSyntheticOptions(uint64_t seed, const std::string& id_prefix);

// The invalid kinds whose reason does not depend on the wall clock: all but kFutureOccurredAt
// (a day after the pinned generator clock is in the past by now) and kOversized (over the frame
// limits some tests configure).
std::vector<InvalidKind> ClockIndependentInvalidKinds();

struct WorkloadOptions {
  uint64_t seed = 1;
  std::string id_prefix = "w-";
  size_t events = 1000;
  // Share of events that are resends of an earlier valid event (same bytes).
  double resend_ratio = 0;
  // Share of events made invalid.
  double invalid_ratio = 0;
  uint32_t population = 10'000;
};

struct Workload {
  enum class Kind { kFirst, kResend, kInvalid };
  std::vector<v1::Event> events;
  std::vector<Kind> kinds;
  // For kResend: index of the first send of the same event. For others: own index.
  std::vector<size_t> original;
  // For kInvalid: the reason MakeInvalid returned. Empty otherwise.
  std::vector<std::string> reasons;
  size_t first_count = 0;
  size_t resend_count = 0;
  size_t invalid_count = 0;
};

Workload MakeWorkload(const WorkloadOptions& options);

}  // namespace carehub::itest
