#pragma once
// Pieces shared by the network- and storage-fault tests (reliability_*_test.cc): the replayable
// seed, deterministic events, and publishing with every answer checked. Header-only.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "carehub/core/status.h"
#include "harness/child_process.h"
#include "harness/raw_publisher.h"
#include "harness/workload.h"

namespace carehub::itest::reliability {

// False in sanitizer builds (make test-sanitize): the hub they start carries shadow memory and
// quarantined allocations, so its RSS says nothing about the bounds these tests assert. The
// behaviour around a bound is still checked there; only the RSS comparison is left to plain builds.
inline constexpr bool kRssBoundsApply = !kSanitizerBuild;

// CAREHUB_SEED from the environment when set (to replay a failure), else `fallback`; printed
// either way so every run can be replayed.
inline uint64_t TestSeed(const char* test, uint64_t fallback) {
  uint64_t seed = fallback;
  if (const char* env = std::getenv("CAREHUB_SEED")) {
    seed = std::strtoull(env, nullptr, 10);
  }
  std::printf("%s: seed %llu (replay with CAREHUB_SEED=%llu)\n", test,
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  return seed;
}

// `n` deterministic synthetic events with ids starting `prefix`.
inline std::vector<v1::Event> MakeEvents(uint64_t seed, const std::string& prefix, size_t n) {
  SyntheticGenerator gen(FixedSyntheticOptions(seed, prefix));
  std::vector<v1::Event> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(gen.Next());
  }
  return out;
}

// Publishes `events` on `pub` (batches of `batch`, 4 in flight) and returns event_id -> hub_seq;
// an error unless every event is ACCEPTED.
inline Result<std::map<std::string, uint64_t>> PublishAcked(RawPublisher& pub,
                                                            const std::vector<v1::Event>& events,
                                                            size_t batch) {
  auto results = pub.PublishAll(events, batch, 4, std::chrono::seconds(60));
  if (!results.ok()) {
    return results.status();
  }
  std::map<std::string, uint64_t> acked;
  for (size_t i = 0; i < events.size(); ++i) {
    const auto& r = (*results)[i];
    if (r.status() != v1::EventResult::ACCEPTED) {
      return Status::Error("not_accepted", events[i].envelope().event_id() + ": " +
                                               v1::EventResult::Status_Name(r.status()) + " " +
                                               r.reason());
    }
    acked[events[i].envelope().event_id()] = r.hub_seq();
  }
  return acked;
}

}  // namespace carehub::itest::reliability
